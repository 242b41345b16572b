//! Suppressions: `# cniswap:ignore RULE[,RULE...] reason` on the finding's line or on a
//! comment line right above it, and `.cniswap.yaml`:
//!
//! ```yaml
//! select: [TAL, CIL]       # run only these rules (IDs, ID prefixes, names or ALL)
//! ignore:
//!   - TAL008               # never run this rule (an ID, a prefix or a name)
//!   - rules: [CIL001]      # silence it for some paths, with a reason
//!     paths: ["kubernetes/apps/**/cilium/**"]
//!     reason: Multus needs cni.exclusive false
//! ```

use cniswap_model::{Finding, Location};
use cniswap_snapshot::Snapshot;
use globset::{Glob, GlobSet, GlobSetBuilder};
use serde::{Deserialize, Serialize};
use std::path::Path;

const MARKER: &str = "cniswap:ignore";

#[derive(Debug, Clone, Serialize)]
pub struct Suppressed {
    pub finding: Finding,
    /// `inline: <reason>` or `.cniswap.yaml: <reason>`.
    pub by: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    select: Vec<String>,
    #[serde(default)]
    ignore: Vec<IgnoreItem>,
}

/// An `ignore:` item: a rule code alone turns the rule off (like ruff's `ignore`); an entry
/// with `rules`/`paths`/`reason` silences findings and keeps them in the report.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum IgnoreItem {
    Code(String),
    Entry(IgnoreEntry),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IgnoreEntry {
    rules: Vec<String>,
    #[serde(default)]
    paths: Vec<String>,
    #[serde(default)]
    reason: Option<String>,
}

struct CompiledEntry {
    rules: Vec<String>,
    /// `None` = every path.
    paths: Option<GlobSet>,
    reason: String,
}

/// The parsed `.cniswap.yaml`.
#[derive(Default)]
pub struct SuppressionConfig {
    entries: Vec<CompiledEntry>,
    /// Which rules run (`select:`/`ignore:` codes, `--select`/`--ignore`).
    pub selection: Selection,
}

/// Which rules run, as ruff selects them: `select` codes (default: every rule), minus `ignore`
/// codes. A code is a rule ID (`TAL008`), an ID prefix (`TAL`, `CIL01`), a rule name
/// (`cni-manifest-url-not-pinned`) or `ALL`. When both match a rule, the more specific code
/// (the longer one) wins, so `select: [TAL008]` with `ignore: [TAL]` runs TAL008.
#[derive(Debug, Default, Clone)]
pub struct Selection {
    select: Vec<String>,
    ignore: Vec<String>,
}

impl Selection {
    /// Replaces the selected codes (`--select` overrides the file's `select:`).
    pub fn select(&mut self, codes: &[String]) -> Result<(), String> {
        self.select = codes
            .iter()
            .map(|c| checked_code(c))
            .collect::<Result<_, _>>()?;
        Ok(())
    }

    /// Adds codes to ignore (`--ignore` adds to the file's list).
    pub fn ignore(&mut self, codes: &[String]) -> Result<(), String> {
        for code in codes {
            self.ignore.push(checked_code(code)?);
        }
        Ok(())
    }

    /// Whether the rule runs.
    pub fn enabled(&self, id: &str, name: &str) -> bool {
        let best = |codes: &[String]| {
            codes
                .iter()
                .filter(|c| code_matches(c, id, name))
                .map(|c| if c == "ALL" { 0 } else { c.len() })
                .max()
        };
        let selected = if self.select.is_empty() {
            Some(0)
        } else {
            best(&self.select)
        };
        match (selected, best(&self.ignore)) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(s), Some(i)) => s > i,
        }
    }

    pub fn is_default(&self) -> bool {
        self.select.is_empty() && self.ignore.is_empty()
    }
}

fn code_matches(code: &str, id: &str, name: &str) -> bool {
    code == "ALL" || id.starts_with(code) || name == code.to_ascii_lowercase()
}

/// A code in canonical form (IDs upper-cased), or why it names no rule.
fn checked_code(code: &str) -> Result<String, String> {
    let code = code.trim();
    let upper = code.to_ascii_uppercase();
    if upper == "ALL" {
        return Ok(upper);
    }
    let canonical = if crate::RULES
        .iter()
        .any(|r| r.meta.name == code.to_ascii_lowercase())
    {
        code.to_ascii_lowercase()
    } else {
        upper
    };
    if crate::RULES
        .iter()
        .any(|r| code_matches(&canonical, r.meta.id, r.meta.name))
    {
        return Ok(canonical);
    }
    let nearest = crate::RULES
        .iter()
        .min_by_key(|r| strsim::damerau_levenshtein(r.meta.id, &canonical))
        .map_or("TAL001", |r| r.meta.id);
    Err(format!(
        "`{code}` matches no rule (did you mean {nearest}?)\nhelp: a code is a rule ID (TAL008), an ID prefix (TAL, CIL01), a rule name or ALL; `cniswap explain --list` shows every rule"
    ))
}

#[derive(Debug, thiserror::Error)]
#[error("{file}: {message}")]
pub struct SuppressionError {
    pub file: String,
    pub message: String,
}

impl SuppressionConfig {
    pub fn load(path: &Path) -> Result<Self, SuppressionError> {
        let error = |message: String| SuppressionError {
            file: path.display().to_string(),
            message,
        };
        let text = cniswap_snapshot::read_config_file(path).map_err(|e| error(e.message))?;
        Self::parse(&text).map_err(error)
    }

    pub fn parse(text: &str) -> Result<Self, String> {
        let file: ConfigFile = if text.trim().is_empty() {
            ConfigFile::default()
        } else {
            serde_saphyr::from_str(text).map_err(|e| {
                format!("{e}\nhelp: expected `select: [TAL, CIL]` and `ignore: [TAL008, {{rules: [CIL001], paths: [\"dir/**\"], reason: \"...\"}}]`")
            })?
        };
        let mut entries = Vec::new();
        let mut selection = Selection::default();
        selection.select(&file.select)?;
        for item in file.ignore {
            let entry = match item {
                IgnoreItem::Code(code) => {
                    selection.ignore(&[code])?;
                    continue;
                }
                IgnoreItem::Entry(entry) => entry,
            };
            for rule in &entry.rules {
                if crate::find_rule(rule).is_none() {
                    return Err(format!(
                        "unknown rule `{rule}` in ignore list\nhelp: `cniswap explain --list` shows every rule ID"
                    ));
                }
            }
            let paths = if entry.paths.is_empty() {
                None
            } else {
                let mut set = GlobSetBuilder::new();
                for pattern in &entry.paths {
                    set.add(
                        Glob::new(pattern)
                            .map_err(|e| format!("bad path pattern `{pattern}`: {e}"))?,
                    );
                }
                Some(set.build().map_err(|e| e.to_string())?)
            };
            entries.push(CompiledEntry {
                rules: entry.rules.iter().map(|r| r.to_ascii_uppercase()).collect(),
                paths,
                reason: entry.reason.unwrap_or_else(|| "no reason given".into()),
            });
        }
        Ok(SuppressionConfig { entries, selection })
    }

    fn matches(&self, finding: &Finding) -> Option<&str> {
        self.entries.iter().find_map(|entry| {
            let rule = entry.rules.contains(&finding.rule);
            let path = match (&entry.paths, &finding.location) {
                (None, _) => true,
                (Some(set), Some(location)) => set.is_match(&location.file),
                (Some(_), None) => false,
            };
            (rule && path).then_some(entry.reason.as_str())
        })
    }
}

pub(crate) fn apply(
    findings: Vec<Finding>,
    snapshot: &Snapshot,
    config: &SuppressionConfig,
) -> (Vec<Finding>, Vec<Suppressed>) {
    let mut kept = Vec::new();
    let mut suppressed = Vec::new();
    for finding in findings {
        let by = inline_reason(&finding, snapshot)
            .map(|r| format!("inline: {r}"))
            .or_else(|| {
                config
                    .matches(&finding)
                    .map(|r| format!(".cniswap.yaml: {r}"))
            });
        match by {
            Some(by) => suppressed.push(Suppressed { finding, by }),
            None => kept.push(finding),
        }
    }
    (kept, suppressed)
}

/// A `# cniswap:ignore` comment that names something that is not a rule ID: it suppresses
/// nothing, and the user should know.
#[derive(Debug, Clone, Serialize)]
pub struct UnknownSuppression {
    pub location: Location,
    /// What the comment names.
    pub rule: String,
    /// What to write instead.
    pub hint: String,
}

/// Every inline suppression comment of every file read that names no rule ID.
pub(crate) fn unknown_inline(snapshot: &Snapshot) -> Vec<UnknownSuppression> {
    let mut out = Vec::new();
    for source in &snapshot.sources {
        for (i, line) in source.text.lines().enumerate() {
            let Some(hash) = line.find('#') else {
                continue;
            };
            let Some(at) = line[hash..].find(MARKER).map(|n| hash + n) else {
                continue;
            };
            let rest = line[at + MARKER.len()..].trim_start();
            let ids = rest.split_whitespace().next().unwrap_or_default();
            let location = Location {
                file: source.path.clone(),
                line: i + 1,
                column: line[..at].chars().count() + 1,
            };
            if ids.is_empty() {
                out.push(UnknownSuppression {
                    location,
                    rule: String::new(),
                    hint: "the comment names no rule: write `# cniswap:ignore <ID> <reason>`"
                        .into(),
                });
                continue;
            }
            for id in ids.split(',').map(str::trim).filter(|id| !id.is_empty()) {
                let hint = match crate::find_rule(id) {
                    Some(rule) if rule.meta.id.eq_ignore_ascii_case(id) => continue,
                    Some(rule) => format!(
                        "`{id}` is the name of {}; inline comments take the ID: `# cniswap:ignore {} <reason>`",
                        rule.meta.id, rule.meta.id
                    ),
                    None => format!(
                        "`{id}` is not a rule ID, so the comment suppresses nothing (`cniswap explain --list` shows every rule)"
                    ),
                };
                out.push(UnknownSuppression {
                    location: location.clone(),
                    rule: id.to_string(),
                    hint,
                });
            }
        }
    }
    out
}

fn inline_reason(finding: &Finding, snapshot: &Snapshot) -> Option<String> {
    let location = finding.location.as_ref()?;
    let source = snapshot.source_named(&location.file)?;
    let line = source.line(location.line)?;
    let mut candidates = vec![line];
    // Comment-only lines directly above the finding also count.
    let mut above = location.line.checked_sub(1);
    while let Some(number) = above.filter(|n| *n > 0) {
        let text = source.line(number)?.trim_start();
        if !text.starts_with('#') {
            break;
        }
        candidates.push(text);
        above = number.checked_sub(1);
    }
    candidates
        .into_iter()
        .find_map(|text| ignore_comment(text, &finding.rule))
}

/// Parses `# cniswap:ignore CIL001,CIL010 reason` and returns the reason when it names `rule`.
fn ignore_comment(line: &str, rule: &str) -> Option<String> {
    let comment = &line[line.find('#')?..];
    let rest = comment[comment.find(MARKER)? + MARKER.len()..].trim_start();
    let (ids, reason) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
    ids.split(',')
        .any(|id| id.trim().eq_ignore_ascii_case(rule))
        .then(|| {
            let reason = reason.trim();
            if reason.is_empty() {
                "no reason given".into()
            } else {
                reason.to_string()
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_comment_names_rules_and_reason() {
        assert_eq!(
            ignore_comment(
                "  exclusive: false # cniswap:ignore CIL001 multus",
                "CIL001"
            )
            .as_deref(),
            Some("multus")
        );
        assert_eq!(
            ignore_comment("# cniswap:ignore CIL010,CIL001", "CIL001").as_deref(),
            Some("no reason given")
        );
        assert_eq!(ignore_comment("# cniswap:ignore CIL010 x", "CIL001"), None);
        assert_eq!(ignore_comment("exclusive: false", "CIL001"), None);
    }

    #[test]
    fn unknown_inline_rule_ids_are_found() {
        let mut snapshot = Snapshot::default();
        snapshot.sources.push(cniswap_snapshot::SourceFile::new(
            "values.yaml",
            "cni:\n  # cniswap:ignore CIL999 typo\n  exclusive: false # cniswap:ignore CIL001,cni-exclusive-disabled ok\nx: 1 # cniswap:ignore\n".into(),
        ));
        let unknown = unknown_inline(&snapshot);
        let found: Vec<(&str, usize, usize)> = unknown
            .iter()
            .map(|u| (u.rule.as_str(), u.location.line, u.location.column))
            .collect();
        assert_eq!(
            found,
            [
                ("CIL999", 2, 5),
                ("cni-exclusive-disabled", 3, 22),
                ("", 4, 8)
            ]
        );
        assert!(unknown[1].hint.contains("name of CIL001"));
    }

    #[test]
    fn select_and_ignore_work_like_ruff() {
        let config = SuppressionConfig::parse(
            "select: [TAL, CIL001]\nignore:\n  - TAL008\n  - rules: [TAL001]\n    reason: r\n",
        )
        .unwrap();
        let s = &config.selection;
        assert!(s.enabled("TAL001", "flannel-document-still-present"));
        assert!(!s.enabled("TAL008", "cni-manifest-url-not-pinned"));
        assert!(s.enabled("CIL001", "cni-exclusive-disabled"));
        assert!(!s.enabled("CIL002", "x"));
        assert_eq!(
            config.entries.len(),
            1,
            "the entry form still silences by path"
        );
        // The more specific code wins; names work; ALL.
        let mut s = Selection::default();
        s.select(&["TAL008".into()]).unwrap();
        s.ignore(&["TAL".into()]).unwrap();
        assert!(s.enabled("TAL008", "cni-manifest-url-not-pinned"));
        let mut s = Selection::default();
        s.ignore(&["cni-manifest-url-not-pinned".into()]).unwrap();
        assert!(!s.enabled("TAL008", "cni-manifest-url-not-pinned"));
        assert!(s.enabled("TAL007", "y"));
        let mut s = Selection::default();
        s.select(&["ALL".into()]).unwrap();
        s.ignore(&["CIL".into()]).unwrap();
        assert!(!s.enabled("CIL001", "z") && s.enabled("NOD001", "w"));
        let error = Selection::default().ignore(&["TAL99".into()]).unwrap_err();
        assert!(error.contains("did you mean"), "{error}");
    }

    #[test]
    fn config_rejects_unknown_rules_and_keys() {
        assert!(SuppressionConfig::parse("ignore:\n  - rules: [NOPE1]\n").is_err());
        assert!(SuppressionConfig::parse("ignores: []\n").is_err());
        assert!(
            SuppressionConfig::parse("ignore:\n  - rules: [CIL001]\n    paths: [\"a/**\"]\n")
                .is_ok()
        );
    }
}
