use serde::{Deserialize, Serialize};
use std::fmt;

/// A CNI plugin cniswap knows how to recognise. Canal and Weave are sources only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CniKind {
    Flannel,
    Canal,
    Calico,
    Cilium,
    Weave,
}

impl CniKind {
    pub const ALL: [CniKind; 5] = [
        CniKind::Flannel,
        CniKind::Canal,
        CniKind::Calico,
        CniKind::Cilium,
        CniKind::Weave,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            CniKind::Flannel => "flannel",
            CniKind::Canal => "canal",
            CniKind::Calico => "calico",
            CniKind::Cilium => "cilium",
            CniKind::Weave => "weave",
        }
    }

    /// Whether cniswap can migrate *to* this CNI (Canal and Weave are sources only).
    pub fn is_target(self) -> bool {
        matches!(self, CniKind::Flannel | CniKind::Calico | CniKind::Cilium)
    }
}

impl fmt::Display for CniKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
