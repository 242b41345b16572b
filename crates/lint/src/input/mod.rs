//! Typed views over a snapshot, one per kind of input the rules read (RULES.md "Inputs").

pub mod calico;
pub mod cilium;
pub mod flannel;
pub mod talos;
pub mod version;

use cniswap_snapshot::Snapshot;

/// Repositories often hold several clusters side by side (`hetzner/`, `proxmox/`). A file's
/// group is the first directory below the common parent of every file read; files directly
/// in that parent have the empty group, which belongs to every group.
pub struct Grouping {
    common: Vec<String>,
}

impl Grouping {
    pub fn new(snapshot: &Snapshot) -> Self {
        let dirs: Vec<Vec<&str>> = snapshot
            .sources
            .iter()
            .map(|s| {
                let mut parts: Vec<&str> = s.path.split('/').collect();
                parts.pop();
                parts
            })
            .collect();
        let common = dirs.first().map_or_else(Vec::new, |first| {
            first
                .iter()
                .enumerate()
                .take_while(|(i, part)| dirs.iter().all(|d| d.get(*i) == Some(part)))
                .map(|(_, part)| part.to_string())
                .collect()
        });
        Grouping { common }
    }

    /// The group of a file label (`path` or `path#id`).
    pub fn group_of(&self, label: &str) -> String {
        let file = label.split('#').next().unwrap_or_default();
        let mut parts: Vec<&str> = file.split('/').collect();
        parts.pop();
        parts
            .get(self.common.len())
            .map_or_else(String::new, |p| (*p).to_string())
    }
}

/// Whether two groups can describe the same cluster.
pub fn same_group(a: &str, b: &str) -> bool {
    a.is_empty() || b.is_empty() || a == b
}
