//! Suppressions: `# cniswap:ignore RULE[,RULE...] reason` on the finding's line or on a
//! comment line right above it, and `.cniswap.yaml`:
//!
//! ```yaml
//! ignore:
//!   - rules: [CIL001]
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
    ignore: Vec<IgnoreEntry>,
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
                format!("{e}\nhelp: expected `ignore: [{{rules: [CIL001], paths: [\"dir/**\"], reason: \"...\"}}]`")
            })?
        };
        let mut entries = Vec::new();
        for entry in file.ignore {
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
        Ok(SuppressionConfig { entries })
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
    fn config_rejects_unknown_rules_and_keys() {
        assert!(SuppressionConfig::parse("ignore:\n  - rules: [NOPE1]\n").is_err());
        assert!(SuppressionConfig::parse("ignores: []\n").is_err());
        assert!(
            SuppressionConfig::parse("ignore:\n  - rules: [CIL001]\n    paths: [\"a/**\"]\n")
                .is_ok()
        );
    }
}
