use cniswap_model::{TalosConfigFacts, TalosFacts};
use cniswap_snapshot::Snapshot;

pub fn detect(snapshot: &Snapshot) -> Option<TalosFacts> {
    if snapshot.talos.is_empty() {
        return None;
    }
    Some(TalosFacts {
        configs: snapshot.talos.iter().map(|t| t.summary.clone()).collect(),
    })
}

/// The effective value of a Talos setting and the file it came from: a complete machine config
/// wins (it is what nodes run); otherwise the last patch that sets it.
pub fn effective<T>(
    talos: Option<&TalosFacts>,
    get: impl Fn(&TalosConfigFacts) -> Option<T>,
) -> Option<(T, String)> {
    let configs = &talos?.configs;
    configs
        .iter()
        .filter(|c| c.kind == "full")
        .find_map(|c| get(c).map(|v| (v, c.file.clone())))
        .or_else(|| {
            configs
                .iter()
                .rev()
                .find_map(|c| get(c).map(|v| (v, c.file.clone())))
        })
}
