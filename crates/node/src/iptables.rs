//! `iptables-save` output: parsing, ownership, and the filtered table that one atomic
//! `iptables-restore` per table and backend applies (foreign chains and rules are kept
//! verbatim, with their counters).

use crate::owner;
use cniswap_model::Owner;

/// One `*table ... COMMIT` block.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub name: String,
    /// `:NAME POLICY [p:b]` lines in order (built-in chains have a policy, others `-`).
    pub chains: Vec<Chain>,
    /// `-A CHAIN ...` lines in order, with `[p:b]` counter prefixes when saved with -c.
    pub rules: Vec<RuleLine>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Chain {
    pub name: String,
    pub line: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct RuleLine {
    pub chain: String,
    pub line: String,
}

impl RuleLine {
    /// The `-j`/`-g` target.
    pub fn target(&self) -> Option<&str> {
        let words: Vec<&str> = self.line.split_whitespace().collect();
        words
            .windows(2)
            .find(|w| w[0] == "-j" || w[0] == "-g")
            .map(|w| w[1])
    }

    /// The text of `--comment`, unquoted.
    pub fn comment(&self) -> Option<String> {
        let start = self.line.find("--comment ")? + "--comment ".len();
        let rest = &self.line[start..];
        if let Some(quoted) = rest.strip_prefix('"') {
            Some(quoted[..quoted.find('"')?].to_string())
        } else {
            Some(rest.split_whitespace().next()?.to_string())
        }
    }
}

/// Parses `iptables-save [-c]` output.
pub fn parse(text: &str) -> Vec<Table> {
    let mut tables = Vec::new();
    let mut current: Option<Table> = None;
    for line in text.lines() {
        if let Some(name) = line.strip_prefix('*') {
            current = Some(Table {
                name: name.trim().to_string(),
                chains: Vec::new(),
                rules: Vec::new(),
            });
        } else if line.starts_with("COMMIT") {
            tables.extend(current.take());
        } else if let (Some(table), Some(rest)) = (current.as_mut(), line.strip_prefix(':')) {
            let name = rest
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            table.chains.push(Chain {
                name,
                line: line.to_string(),
            });
        } else if let Some(table) = current.as_mut() {
            // `[p:b] -A CHAIN ...` (with counters) or `-A CHAIN ...`.
            let body = line.trim_start_matches(|c: char| c != '-').trim_start();
            if let Some(rest) = body.strip_prefix("-A ") {
                let chain = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_string();
                table.rules.push(RuleLine {
                    chain,
                    line: line.to_string(),
                });
            }
        }
    }
    tables
}

/// Who owns a rule: its chain's owner, else its target's, else its comment's.
pub fn rule_owner(rule: &RuleLine) -> Option<(Owner, String)> {
    if let Some((owner, why)) = owner::chain(&rule.chain) {
        return Some((owner, format!("in {} ({why})", rule.chain)));
    }
    if let Some((owner, why)) = rule.target().and_then(owner::chain) {
        return Some((
            owner,
            format!("jumps to {} ({why})", rule.target().unwrap_or_default()),
        ));
    }
    let comment = rule.comment()?;
    owner::comment(&comment).map(|o| (o, format!("comment \"{comment}\"")))
}

/// `iptables-restore --noflush` input that removes the chains and rules `remove` selects from
/// one table in a single commit: jumps from other chains first, then the owned chains are
/// flushed and deleted. Everything else is left exactly as it is (no built-in chain is
/// re-declared, which iptables-nft would otherwise create as new base chains).
/// Returns `None` when nothing would change.
pub fn removal_script(table: &Table, remove: impl Fn(Owner) -> bool) -> Option<String> {
    let owned_chain = |name: &str| owner::chain(name).is_some_and(|(o, _)| remove(o));
    let chains: Vec<&str> = table
        .chains
        .iter()
        .filter(|c| owned_chain(&c.name))
        .map(|c| c.name.as_str())
        .collect();
    let jumps: Vec<String> = table
        .rules
        .iter()
        .filter(|r| !owned_chain(&r.chain) && rule_owner(r).is_some_and(|(o, _)| remove(o)))
        .map(|r| format!("-D {}", without_counters(&r.line).trim_start_matches("-A ")))
        .collect();
    if chains.is_empty() && jumps.is_empty() {
        return None;
    }
    let mut out = format!("*{}\n", table.name);
    for line in &jumps {
        out.push_str(line);
        out.push('\n');
    }
    for chain in &chains {
        out.push_str(&format!("-F {chain}\n"));
    }
    for chain in &chains {
        out.push_str(&format!("-X {chain}\n"));
    }
    out.push_str("COMMIT\n");
    Some(out)
}

/// A rule line without its `[packets:bytes]` prefix.
fn without_counters(line: &str) -> &str {
    match line.strip_prefix('[') {
        Some(rest) => rest.split_once("] ").map_or(line, |(_, r)| r),
        None => line,
    }
}

/// `iptables-restore --noflush` input that re-adds chains and rules to a table.
pub fn additions<'a>(
    table: &str,
    chains: impl Iterator<Item = &'a str>,
    rules: impl Iterator<Item = &'a str>,
) -> String {
    render(table, chains, rules)
}

fn render<'a>(
    table: &str,
    chains: impl Iterator<Item = &'a str>,
    rules: impl Iterator<Item = &'a str>,
) -> String {
    let mut out = format!("*{table}\n");
    for c in chains {
        out.push_str(c);
        out.push('\n');
    }
    for r in rules {
        out.push_str(r);
        out.push('\n');
    }
    out.push_str("COMMIT\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAVE: &str = "# Generated by iptables-save\n*nat\n:PREROUTING ACCEPT [0:0]\n:POSTROUTING ACCEPT [3:180]\n:FLANNEL-POSTRTG - [0:0]\n:KUBE-POSTROUTING - [0:0]\n[5:300] -A POSTROUTING -m comment --comment \"flanneld masq\" -j FLANNEL-POSTRTG\n[0:0] -A POSTROUTING -m comment --comment \"kubernetes postrouting rules\" -j KUBE-POSTROUTING\n[0:0] -A FLANNEL-POSTRTG -s 10.244.0.0/16 -j RETURN\n[0:0] -A KUBE-POSTROUTING -j MASQUERADE\nCOMMIT\n";

    #[test]
    fn removes_only_the_owners_chains_and_jumps() {
        let tables = parse(SAVE);
        assert_eq!(tables.len(), 1);
        assert_eq!(tables[0].rules.len(), 4);
        let script = removal_script(&tables[0], |o| o == Owner::Flannel).unwrap();
        assert_eq!(
            script,
            "*nat\n-D POSTROUTING -m comment --comment \"flanneld masq\" -j FLANNEL-POSTRTG\n-F FLANNEL-POSTRTG\n-X FLANNEL-POSTRTG\nCOMMIT\n"
        );
        assert!(!script.contains("KUBE"));
        assert!(removal_script(&tables[0], |o| o == Owner::Weave).is_none());
    }

    #[test]
    fn comments_and_targets() {
        let rule = RuleLine {
            chain: "FORWARD".into(),
            line: "-A FORWARD -m comment --comment \"cali:wUHhoiAYhphO9Mso\" -j ACCEPT".into(),
        };
        assert_eq!(rule.comment().as_deref(), Some("cali:wUHhoiAYhphO9Mso"));
        assert_eq!(rule.target(), Some("ACCEPT"));
        assert_eq!(rule_owner(&rule).unwrap().0, Owner::Calico);
    }
}
