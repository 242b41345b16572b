//! Cilium chart keys per version: the 1.16.0 key set plus the recorded additions and removals.

use super::{KeyTree, Minor};

pub struct Change {
    pub version: Minor,
    pub path: &'static str,
    pub added: bool,
    pub hint: &'static str,
}

pub fn changes() -> &'static [Change] {
    static CHANGES: std::sync::OnceLock<Vec<Change>> = std::sync::OnceLock::new();
    CHANGES.get_or_init(|| {
        include_str!("data/cilium-changes.txt")
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .filter_map(|line| {
                let (version, rest) = line.split_once(' ')?;
                let added = version.starts_with('+');
                let version = super::parse_minor(&version[1..])?;
                let (path, hint) = rest.split_once(' ').unwrap_or((rest, ""));
                Some(Change {
                    version,
                    path,
                    added,
                    hint: hint.trim(),
                })
            })
            .collect()
    })
}

/// The key tree for a chart version (`None`: the newest known keys).
pub fn tree(version: Option<Minor>) -> KeyTree {
    let mut tree = KeyTree::parse(include_str!("data/cilium-1.16.txt"));
    for change in changes() {
        let applies = version.is_none_or(|v| v >= change.version);
        match (change.added, applies) {
            (true, true) => tree.add(change.path, None),
            (false, true) => tree.remove(change.path),
            // A removed key is still valid for the older versions it existed in.
            (false, false) => tree.add(change.path, None),
            (true, false) => {}
        }
    }
    tree
}

/// A recorded removal of `path` that applies to `version`.
pub fn removal(path: &str, version: Option<Minor>) -> Option<&'static Change> {
    changes()
        .iter()
        .find(|c| !c.added && c.path == path && version.is_none_or(|v| v >= c.version))
}

/// A recorded addition of `path` after `version`.
pub fn added_later(path: &str, version: Option<Minor>) -> Option<&'static Change> {
    let version = version?;
    changes()
        .iter()
        .find(|c| c.added && c.path == path && version < c.version)
}
