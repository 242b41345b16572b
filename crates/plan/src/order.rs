//! Node order: workers before control planes, zones interleaved within each group, so that one
//! zone is never emptied at once and the control plane goes last (DESIGN.md "Strategies").

use crate::context::PlanNode;
use std::collections::BTreeMap;

pub fn migration_order(nodes: Vec<PlanNode>) -> Vec<PlanNode> {
    let (control_planes, workers): (Vec<PlanNode>, Vec<PlanNode>) =
        nodes.into_iter().partition(|n| n.control_plane);
    let mut out = interleave_zones(workers);
    out.extend(interleave_zones(control_planes));
    out
}

fn interleave_zones(nodes: Vec<PlanNode>) -> Vec<PlanNode> {
    let mut by_zone: BTreeMap<String, Vec<PlanNode>> = BTreeMap::new();
    for node in nodes {
        by_zone
            .entry(node.zone.clone().unwrap_or_default())
            .or_default()
            .push(node);
    }
    for list in by_zone.values_mut() {
        list.sort_by(|a, b| a.name.cmp(&b.name));
        list.reverse();
    }
    let mut out = Vec::new();
    while by_zone.values().any(|l| !l.is_empty()) {
        for list in by_zone.values_mut() {
            if let Some(node) = list.pop() {
                out.push(node);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(name: &str, cp: bool, zone: &str) -> PlanNode {
        PlanNode {
            name: name.into(),
            control_plane: cp,
            zone: Some(zone.into()),
            ip: None,
            pods: Vec::new(),
            bare_pods: Vec::new(),
            unschedulable: false,
        }
    }

    #[test]
    fn workers_first_zones_interleaved() {
        let order = migration_order(vec![
            node("cp1", true, "a"),
            node("w1", false, "a"),
            node("w2", false, "a"),
            node("w3", false, "b"),
            node("cp2", true, "b"),
        ]);
        let names: Vec<&str> = order.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, ["w1", "w3", "w2", "cp1", "cp2"]);
    }
}
