//! iptables (legacy and nft backends, IPv4 and IPv6), nftables tables and ipsets.

use crate::iptables;
use crate::owner;
use crate::tools;
use cniswap_model::{Item, ItemKind, Owner};
use serde_json::{Value, json};

/// (backend, family, save command, restore command)
pub const IPTABLES: &[(&str, &str, &str, &str)] = &[
    (
        "legacy",
        "ipv4",
        "iptables-legacy-save",
        "iptables-legacy-restore",
    ),
    (
        "legacy",
        "ipv6",
        "ip6tables-legacy-save",
        "ip6tables-legacy-restore",
    ),
    ("nft", "ipv4", "iptables-nft-save", "iptables-nft-restore"),
    ("nft", "ipv6", "ip6tables-nft-save", "ip6tables-nft-restore"),
];

pub fn collect(items: &mut Vec<Item>, unreadable: &mut Vec<String>) {
    for (backend, family, save, _) in IPTABLES {
        let text = match tools::run(save, &["-c"], None) {
            Ok(text) => text,
            Err(e) => {
                unreadable.push(format!("{save}: {}", e.message));
                continue;
            }
        };
        for table in iptables::parse(&text) {
            for chain in &table.chains {
                let Some((owner, why)) = owner::chain(&chain.name) else {
                    continue;
                };
                items.push(Item {
                    kind: ItemKind::IptablesChain,
                    id: format!("iptables {backend} {family} {} chain {}", table.name, chain.name),
                    owner,
                    why: why.to_string(),
                    detail: json!({"backend": backend, "family": family, "table": table.name, "chain": chain.name, "line": chain.line}),
                });
            }
            for rule in &table.rules {
                // Rules inside an owned chain go with the chain; list the ones elsewhere.
                if owner::chain(&rule.chain).is_some() {
                    continue;
                }
                let Some((owner, why)) = iptables::rule_owner(rule) else {
                    continue;
                };
                items.push(Item {
                    kind: ItemKind::IptablesRule,
                    id: format!("iptables {backend} {family} {} {}", table.name, rule.line.trim()),
                    owner,
                    why,
                    detail: json!({"backend": backend, "family": family, "table": table.name, "chain": rule.chain, "line": rule.line}),
                });
            }
        }
    }

    match tools::run("nft", &["-j", "list", "tables"], None) {
        Ok(text) => {
            let parsed: Value = serde_json::from_str(&text).unwrap_or_default();
            for entry in parsed
                .get("nftables")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let Some(table) = entry.get("table") else {
                    continue;
                };
                let family = table
                    .get("family")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let name = table
                    .get("name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if owner::is_xtables_table(family, name) {
                    continue;
                }
                let owner = owner::nft_table(family, name);
                items.push(Item {
                    kind: ItemKind::NftTable,
                    id: format!("nft table {family} {name}"),
                    owner,
                    why: if owner == Owner::Unknown {
                        "not a known table".into()
                    } else {
                        format!("table {family} {name}")
                    },
                    detail: json!({"family": family, "name": name}),
                });
            }
        }
        Err(e) => unreadable.push(format!("nft: {}", e.message)),
    }

    match tools::run("ipset", &["list", "-n"], None) {
        Ok(text) => {
            for name in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                let owner = owner::ipset(name);
                items.push(Item {
                    kind: ItemKind::Ipset,
                    id: format!("ipset {name}"),
                    owner,
                    why: if owner == Owner::Unknown {
                        "not a known set".into()
                    } else {
                        "set name prefix".into()
                    },
                    detail: json!({"name": name}),
                });
            }
        }
        Err(e) => unreadable.push(format!("ipset: {}", e.message)),
    }
}
