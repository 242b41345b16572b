//! Weave Net (archived 2022; source only).

use super::{find_daemonset, from_daemonset};
use cniswap_model::{CniFacts, CniKind};
use cniswap_snapshot::Snapshot;

pub fn detect(snapshot: &Snapshot) -> Option<CniFacts> {
    let ds = find_daemonset(snapshot, &["weave-net"])?;
    Some(from_daemonset(CniKind::Weave, snapshot, ds, "weave-kube"))
}
