//! Rolling: node by node with both dataplanes present.
//! - to Cilium: Cilium's dual-overlay procedure (distinct pool and port, `cni.customConf`,
//!   a CiliumNodeConfig per switched node), plus Talos patches and Flannel/Calico cleanup.
//! - Flannel to Calico: Calico's shared-overlay migration controller (calico_migration.rs).
//! - Calico or Cilium to Flannel: the old agent is taken off one node at a time by a node
//!   label, Flannel starts there on the node podCIDRs, the old node state is cleaned.

use super::Builder;
use crate::artifacts::cilium;
use crate::context::{InstallChoice, PlanNode};
use crate::install::{self, FLANNEL_NODE_LABEL};
use crate::model::{ObjectRef, PatchType, Probe};
use crate::ops::{self, S};
use cniswap_model::CniKind;

/// Why rolling is possible here, or why not.
pub fn prerequisites(cluster: &crate::context::Cluster, target: CniKind) -> Result<String, String> {
    if cluster.nodes.len() < 2 {
        return Err("a single node cannot keep a pod network while it switches".into());
    }
    if cluster
        .facts
        .cnis
        .iter()
        .any(|c| c.install == Some(cniswap_model::InstallMethod::Bundled))
    {
        return Err("the CNI is bundled into k3s/RKE2 and changes only with the distribution's config on every server".into());
    }
    let sources = &cluster.sources;
    if sources.is_empty() {
        return Err("no other CNI runs: nothing to migrate side by side".into());
    }
    match target {
        CniKind::Cilium
            if sources
                .iter()
                .all(|s| matches!(s, CniKind::Flannel | CniKind::Calico)) =>
        {
            if crate::artifacts::cilium::running_migration(cluster).is_none() {
                crate::known::free_pool(cluster).map_err(|q| q.message)?;
            }
            Ok("Cilium's dual-overlay migration: the old CNI routes through the Linux stack, so both run side by side on a distinct pool and port".into())
        }
        CniKind::Calico if sources == &[CniKind::Flannel] => {
            let flannel = cluster
                .facts
                .cnis
                .iter()
                .find(|c| c.kind == CniKind::Flannel)
                .and_then(|c| c.flannel.clone())
                .unwrap_or_default();
            if flannel.backend.as_deref().is_some_and(|b| b != "vxlan")
                || flannel.direct_routing == Some(true)
            {
                Err("Calico's shared-overlay migration needs Flannel's vxlan backend without DirectRouting (FLN001)".into())
            } else if cluster.daemonset_of(CniKind::Flannel).is_none() {
                Err("Calico's migration controller needs Flannel's DaemonSet, and the snapshot shows none".into())
            } else {
                Ok("Calico's shared-overlay (VTEP reuse) migration keeps the pod CIDR and both overlays talk during the switch".into())
            }
        }
        CniKind::Flannel
            if sources
                .iter()
                .all(|s| matches!(s, CniKind::Calico | CniKind::Cilium)) =>
        {
            let old_pools: Vec<&String> = cluster
                .facts
                .cnis
                .iter()
                .filter(|c| sources.contains(&c.kind))
                .flat_map(|c| &c.pod_cidrs)
                .collect();
            let overlap = old_pools
                .iter()
                .any(|p| cluster.pod_cidrs.iter().any(|c| crate::overlap(p, c)));
            if overlap {
                Err("the old CNI allocates from the node podCIDR range Flannel needs: the pools overlap, so only cutover works".into())
            } else {
                Ok("Flannel takes the node podCIDRs, which the old CNI's pool does not use, so both can run side by side".into())
            }
        }
        _ => Err(format!(
            "no side-by-side procedure exists from {} to {target}",
            sources
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// Rolling to Calico is Calico's own flannel-migration, which ships as manifests only.
pub fn uses_calico_migration_manifests(
    target: CniKind,
    strategy: crate::context::StrategyChoice,
) -> bool {
    target == CniKind::Calico && strategy == crate::context::StrategyChoice::Rolling
}

pub fn build(b: &mut Builder) {
    policy_window(b);
    match b.options.target {
        CniKind::Cilium => to_cilium(b),
        CniKind::Calico => super::calico_migration::build(b),
        _ => to_flannel(b),
    }
}

/// While nodes run different CNIs, the old one keeps enforcing policies on the nodes not yet
/// switched and does not know the pods of the migration pool, so an allow by selector can
/// drop traffic from switched pods. Stated with the policies it concerns; allow rules for
/// the window are not generated (yet).
fn policy_window(b: &mut Builder) {
    let cluster = b.cluster;
    let policies = cluster.facts.workloads.network_policies + cluster.cni_policies.len();
    let k3s = cluster.facts.platform.kind == cniswap_model::PlatformKind::K3s;
    let enforcers: Vec<String> = cluster
        .sources
        .iter()
        .filter_map(|cni| match cni {
            CniKind::Calico | CniKind::Canal | CniKind::Cilium | CniKind::Weave => {
                Some(cni.to_string())
            }
            CniKind::Flannel if k3s => {
                Some("k3s' embedded network policy controller (unless disabled)".to_string())
            }
            _ => None,
        })
        .collect();
    if policies == 0 || enforcers.is_empty() {
        return;
    }
    b.risks.push(crate::model::Risk {
        rule: None,
        effect: format!(
            "{} enforced by {} on the nodes not yet switched, which does not know the migration pool's pod addresses: traffic from switched pods that a policy allows by selector may be dropped until every node is switched",
            crate::names::count(policies, "policy is", "policies are"),
            enforcers.join(", ")
        ),
        handling: "stated: no allow rules are staged for the migration pool; if the workloads cannot tolerate it, plan with --strategy cutover (one window, no mixed enforcement)".into(),
    });
}

/// Cordon and drain a node.
pub fn start_node(node: &PlanNode) -> Vec<S> {
    vec![ops::cordon(node), ops::drain(node)]
}

/// Check a switched node, then uncordon it (unless it was cordoned before the plan).
fn end_node(node: &PlanNode, goal: &str, mut probes: Vec<Probe>, image: &str) -> Vec<S> {
    // The node's pods reach every node, Services, DNS and the API server.
    probes.push(super::verify::cniswap_verify(image, Some(&node.name), None));
    vec![
        ops::verify(
            goal,
            probes,
            format!(
                "Check {}: {goal}, and `cniswap verify --focus {}` passes.",
                node.name, node.name
            ),
            goal,
        ),
        ops::uncordon(&node.name),
    ]
}

/// Check a node given back to the old CNI, then uncordon it. Without the check a rollback
/// uncordoned the node while its recreated pods were still starting, and traffic to them was
/// lost after the node's switch had ended (seen on the lab).
pub fn end_node_back(node: &PlanNode, old: CniKind, image: &str) -> Vec<S> {
    // Flannel and Canal give pods addresses from the node's podCIDR; other CNIs from pools
    // the node's own check (verify --focus) covers.
    let probes = match old {
        CniKind::Flannel | CniKind::Canal => vec![Probe::PodAddress {
            node: node.name.clone(),
            cidr: None,
        }],
        _ => Vec::new(),
    };
    end_node(
        node,
        &format!("{} runs its pods on {old} again", node.name),
        probes,
        image,
    )
}

/// The label that makes the CiliumNodeConfig apply to a node.
const CILIUM_NODE_LABEL: &str = "io.cilium.migration/cilium-default";

fn to_cilium(b: &mut Builder) {
    let (pool, port) = cilium::migration_network(b.cluster);
    let resumed = cilium::running_migration(b.cluster).is_some();
    let values = cilium::migration_values(b.cluster, &b.options.values, &pool);
    let values_file = cilium::write_values(
        &mut b.artifacts,
        "values-migration.yaml",
        "Cilium Helm values for the dual-overlay migration",
        &values,
    );
    let node_config = b.artifacts.add_yaml(
        "cilium/ciliumnodeconfig.yaml",
        "Switches a labelled node to Cilium when its Cilium pod restarts",
        &cilium::node_config(),
    );

    let mut prepare = Vec::new();
    let mut prepare_undo = Vec::new();
    if b.cluster.sources.contains(&CniKind::Calico) && b.cluster.operator_managed(CniKind::Calico) {
        b.resolves(
            "CAL003",
            None,
            "the first step of \"Install Cilium beside the old CNI\" pins Calico's address detection to the node InternalIP",
        );
        let installation = ObjectRef::new("installation", None, "default");
        let backup = "backups/installation-default.yaml".to_string();
        prepare.push(ops::patch_object(
            installation,
            PatchType::Merge,
            serde_json::json!({"spec": {"calicoNetwork": {"nodeAddressAutodetectionV4": {"firstFound": null, "kubernetes": "NodeInternalIP"}}}}),
            ".spec.calicoNetwork.nodeAddressAutodetectionV4.kubernetes",
            "NodeInternalIP",
            Some(backup.clone()),
            "Pin Calico's node address detection to the InternalIP before Cilium adds cilium_host (cilium#31273).".into(),
        ));
        prepare_undo.push(ops::replace_from_backup(
            &backup,
            "Put the Installation back as it was (address detection included).".into(),
        ));
    }
    let token = format!(
        "values-migration-{}",
        &crate::names::sha256(b.artifacts.text(&values_file).unwrap_or_default())[..12]
    );
    let uninstall = if install::method(b) == InstallChoice::Helm {
        let what = if resumed {
            format!(
                "Re-install the running Cilium with the migration settings, keeping its pool {pool} and VXLAN port {port} so the pods it already runs keep working."
            )
        } else {
            format!(
                "Install Cilium beside the old CNI: pool {pool}, VXLAN port {port}, no CNI config written yet, no policy enforcement."
            )
        };
        let (install, undo) = install::helm_cilium(b, &values_file, "migration", &what);
        prepare.push(install);
        vec![undo]
    } else {
        // The migration stage is always applied with kubectl: only the final state belongs in
        // the Talos config, where bootstraps and upgrade-k8s apply it again.
        let render = install::cilium_render(b, &values_file);
        let (apply, undo) = install::rendered(
            b,
            InstallChoice::Manifests,
            "cilium",
            "migration",
            render,
            "kube-system",
            "cilium",
        );
        prepare.extend(apply);
        undo
    };
    prepare.extend(install::settle_cilium(b, &values, &token, true));
    prepare.push(crate::ops::s(
        crate::model::Action::ApplyManifest {
            file: node_config.clone(),
        },
        "Create the CiliumNodeConfig that switches labelled nodes.",
        vec![sh!("kubectl apply --server-side -f {}", node_config)],
        "`kubectl -n kube-system get ciliumnodeconfig cilium-default` matches the file",
        60,
    ));
    // Undone: the CiliumNodeConfig, Cilium, then its state on every node.
    prepare_undo.splice(0..0, b.clean_target_everywhere());
    prepare_undo.splice(0..0, uninstall);
    let (delete_config, _) = ops::delete_object(
        ObjectRef::new("ciliumnodeconfig", Some("kube-system"), "cilium-default"),
        " (the per-node switch)",
    );
    prepare_undo.insert(0, delete_config);
    b.phase(
        "Install Cilium beside the old CNI",
        "Cilium runs on every node with the migration settings without taking over any pod.",
        prepare,
        prepare_undo,
    );

    let old = b
        .cluster
        .sources
        .first()
        .copied()
        .unwrap_or(CniKind::Flannel);
    let mut steps = Vec::new();
    let mut rollback = Vec::new();
    for batch in b.batches() {
        for node in batch {
            steps.extend(start_node(node));
            steps.push(ops::label_node(
                &node.name,
                CILIUM_NODE_LABEL,
                Some("true"),
                format!("Label {} so the CiliumNodeConfig applies there.", node.name),
            ));
            steps.push(install::restart_agent(
                b.cluster,
                CniKind::Cilium,
                &node.name,
                format!(
                    "Restart Cilium on {} so it writes 05-cilium.conflist (exclusive), and wait.",
                    node.name
                ),
            ));
            steps.extend(b.renew_node(node, CniKind::Cilium));
            steps.extend(end_node(
                node,
                &format!("a new pod on {} gets an address from {pool}", node.name),
                vec![Probe::PodAddress {
                    node: node.name.clone(),
                    cidr: Some(pool.clone()),
                }],
                &b.agent_image(),
            ));
            // Replicated storage heals before the next node is drained.
            steps.extend(b.between_nodes(node));
            // Undo, node by node (in reverse): off the CiliumNodeConfig, the conflist
            // removed and the old CNI's configs renamed back, then the node renewed.
            let mut undo = start_node(node);
            undo.push(ops::label_node(
                &node.name,
                CILIUM_NODE_LABEL,
                None,
                format!("Remove the migration label from {}.", node.name),
            ));
            undo.push(install::restart_agent(
                b.cluster,
                CniKind::Cilium,
                &node.name,
                format!(
                    "Restart Cilium on {} so it no longer writes its CNI config.",
                    node.name
                ),
            ));
            undo.push(ops::node_files(
                &node.name,
                &["/etc/cni/net.d/05-cilium.conflist"],
                Some("/etc/cni/net.d"),
                format!(
                    "Give {} back to the old CNI: remove 05-cilium.conflist and rename *.cilium_bak back.",
                    node.name
                ),
            &b.helper_image(),
        ));
            undo.extend(b.renew_node(node, old));
            undo.extend(end_node_back(node, old, &b.agent_image()));
            rollback.splice(0..0, undo);
        }
    }
    b.phase(
        "Switch the nodes",
        "Every node runs its pods on Cilium; the old CNI only carries pods not yet recreated.",
        steps,
        rollback,
    );

    finalize(
        b,
        vec![
            Probe::NodesLabelled {
                key: CILIUM_NODE_LABEL.into(),
                value: "true".into(),
            },
            Probe::AgentsReady {
                namespace: "kube-system".into(),
                daemonset: "cilium".into(),
            },
        ],
        Some((&pool, &values, &values_file, &node_config)),
        true,
    );
}

/// After the switch: a gate that proves the target serves every node, then Talos stops
/// rendering the old CNI, the old CNI goes, the final values (agents restarted and checked),
/// kube-proxy when replaced, node cleanup.
/// `cilium`: (pool, migration values, their file, the CiliumNodeConfig file) for Cilium.
pub fn finalize(
    b: &mut Builder,
    switched: Vec<Probe>,
    cilium: Option<(&str, &serde_json::Value, &str, &str)>,
    clean_nodes: bool,
) {
    let target = b.options.target;
    let mut steps = vec![ops::verify(
        &format!("{target} serves every node"),
        switched,
        format!(
            "Check that every node was switched and {target} runs everywhere: the old CNI may go."
        ),
        format!("every node is switched and the {target} agent is Ready on each"),
    )];
    let (stop, mut rollback) = b.stop_sources();
    steps.extend(stop);
    if b.cluster.sources.contains(&CniKind::Calico) {
        for node in &b.cluster.nodes {
            steps.push(ops::clear_network_unavailable(&node.name));
        }
    }
    if let Some((pool, migration_values, migration_file, node_config)) = cilium {
        let final_values = crate::artifacts::cilium::final_values(
            b.cluster,
            b.replace_kube_proxy,
            &b.options.values,
            Some(pool),
        );
        let (install, _) = install::target(b, Some(pool));
        steps.extend(install);
        let final_file = "artifacts/cilium/values-final.yaml";
        let token = format!(
            "values-final-{}",
            &crate::names::sha256(b.artifacts.text(final_file).unwrap_or_default())[..12]
        );
        steps.extend(install::settle_cilium_node_by_node(
            b,
            &final_values,
            &token,
        ));
        // Back to the migration settings: the same values and restart as the first phase.
        let migration_token = format!(
            "values-migration-{}",
            &crate::names::sha256(b.artifacts.text(migration_file).unwrap_or_default())[..12]
        );
        let mut back = if install::method(b) == InstallChoice::Helm {
            vec![
                install::helm_cilium(
                    b,
                    migration_file,
                    "migration",
                    "Put Cilium back on the migration values.",
                )
                .0,
            ]
        } else {
            let manifest = "artifacts/cilium/rendered-migration.yaml".to_string();
            vec![crate::ops::s(
                crate::model::Action::ApplyManifest {
                    file: manifest.clone(),
                },
                "Put Cilium back on the migration settings.",
                vec![sh!("kubectl apply --server-side -f {}", manifest)],
                "the objects of the migration manifests exist as rendered",
                600,
            )]
        };
        back.extend(install::settle_cilium(
            b,
            migration_values,
            &migration_token,
            true,
        ));
        let (delete_config, _) = ops::delete_object(
            ObjectRef::new("ciliumnodeconfig", Some("kube-system"), "cilium-default"),
            ": every node is switched",
        );
        steps.push(delete_config);
        // The CiliumNodeConfig comes back before the agents restart on the migration values,
        // so the switched nodes keep writing Cilium's CNI config.
        let mut undo = vec![crate::ops::s(
            crate::model::Action::ApplyManifest {
                file: node_config.to_string(),
            },
            "Recreate the CiliumNodeConfig deleted in this phase.",
            vec![sh!("kubectl apply --server-side -f {}", node_config)],
            "`kubectl -n kube-system get ciliumnodeconfig cilium-default` matches the file",
            60,
        )];
        undo.extend(back);
        rollback.splice(0..0, undo);
    }
    if b.replace_kube_proxy {
        if b.cluster.talos {
            let patch = crate::artifacts::talos::disable_kube_proxy(b.cluster);
            let (apply, undo) = b.talos_patch(&patch, "Talos stops deploying kube-proxy");
            steps.extend(apply);
            rollback.splice(0..0, undo);
        }
        if let Some((delete, restore)) = b.delete_kube_proxy() {
            steps.push(delete);
            rollback.insert(0, restore);
        }
        let (keep_off, undo) = b.keep_kube_proxy_off();
        steps.extend(keep_off);
        rollback.splice(0..0, undo);
    }
    if clean_nodes {
        for node in &b.cluster.nodes {
            let (clean, restore) = b.clean_node(&node.name, b.replace_kube_proxy);
            steps.extend(clean);
            rollback.splice(0..0, restore);
        }
    }
    if target == CniKind::Flannel && !b.cluster.talos {
        // New nodes get Flannel too: its DaemonSet stops selecting by the migration label.
        steps.push(ops::node_selector(
            "kube-flannel",
            "kube-flannel-ds",
            FLANNEL_NODE_LABEL,
            None,
            "Let Flannel run on every node, new ones included.".into(),
        ));
        rollback.insert(
            0,
            ops::node_selector(
                "kube-flannel",
                "kube-flannel-ds",
                FLANNEL_NODE_LABEL,
                Some("flannel"),
                "Let Flannel run only on nodes switched to it again.".into(),
            ),
        );
    }
    if target == CniKind::Flannel && b.cluster.talos {
        steps.push(ops::node_selector(
            "kube-system",
            "kube-flannel",
            FLANNEL_NODE_LABEL,
            None,
            "Let Talos' Flannel run on every node, new ones included.".into(),
        ));
    }
    if target == CniKind::Flannel {
        steps.push(ops::label_all(
            FLANNEL_NODE_LABEL,
            None,
            "Remove the migration labels.".into(),
        ));
    }
    steps.push(ops::verify(
        "one CNI, no leftovers",
        vec![
            Probe::Cniswap {
                args: vec!["inspect".into()],
            },
            Probe::Cniswap {
                args: vec![
                    "lint".into(),
                    "--live".into(),
                    "--severity".into(),
                    "error".into(),
                ],
            },
        ],
        "Check that only the target runs and no node keeps old state.".into(),
        "no MIG001, MIG011 or NOD005 finding",
    ));
    b.phase(
        "Finish",
        "Only the target runs, with its final settings; no node keeps the old CNI's state.",
        steps,
        rollback,
    );
}

fn to_flannel(b: &mut Builder) {
    let sources = b.cluster.sources.clone();
    let mut prepare = vec![ops::label_all(
        FLANNEL_NODE_LABEL,
        Some("old"),
        "Label every node for the old CNI, so it can leave one node at a time.".into(),
    )];
    let mut undo = vec![ops::label_all(
        FLANNEL_NODE_LABEL,
        None,
        "Remove the cniswap.io/cni labels.".into(),
    )];
    for cni in &sources {
        if let Some((pause, resume)) = b.pause_controller(*cni) {
            prepare.push(pause);
            undo.insert(0, resume);
        }
        if let Some((ns, name)) = b.cluster.daemonset_of(*cni) {
            prepare.push(ops::node_selector(
                &ns,
                &name,
                FLANNEL_NODE_LABEL,
                Some("old"),
                format!("Let {ns}/{name} run only on nodes labelled for the old CNI."),
            ));
            undo.insert(
                0,
                ops::node_selector(
                    &ns,
                    &name,
                    FLANNEL_NODE_LABEL,
                    None,
                    format!("Let {ns}/{name} run on every node again."),
                ),
            );
        }
    }
    // Flannel may run already (beside a half-done migration away from it): then it stays
    // on every node, and only the old CNI leaves node by node.
    let flannel_runs = b
        .cluster
        .facts
        .cnis
        .iter()
        .any(|c| c.kind == CniKind::Flannel && c.running);
    if !flannel_runs {
        let (install, uninstall) = install::target(b, None);
        prepare.extend(install);
        undo.splice(0..0, b.clean_target_everywhere());
        undo.splice(0..0, uninstall);
        if b.cluster.talos {
            // Talos renders its Flannel without a selector; outside Talos the install sets it.
            prepare.push(
                ops::node_selector(
                    "kube-system",
                    "kube-flannel",
                    FLANNEL_NODE_LABEL,
                    Some("flannel"),
                    "Let Talos' Flannel run only on switched nodes.".into(),
                )
                .note("Until this step, Talos' Flannel starts on every node beside the old CNI; run it right after the Talos patch.")
                .note("talosctl upgrade-k8s re-applies Talos' manifests: do not run it before the migration ends, or check the selector after it."),
            );
        }
    }
    b.phase(
        "Prepare both CNIs",
        "The old CNI runs on every node; Flannel is installed and waits for switched nodes.",
        prepare,
        undo,
    );

    let old = sources.first().copied().unwrap_or(CniKind::Calico);
    let mut steps = Vec::new();
    let mut rollback = Vec::new();
    for batch in b.batches() {
        for node in batch {
            steps.extend(start_node(node));
            steps.push(ops::label_node(
                &node.name,
                FLANNEL_NODE_LABEL,
                Some("flannel"),
                format!(
                    "Move {} to Flannel: the old agent leaves, Flannel starts.",
                    node.name
                ),
            ));
            steps.push(install::restart_agent(
                b.cluster,
                CniKind::Flannel,
                &node.name,
                format!(
                    "Wait until Flannel runs on {} (restarted, so it sets up the node now).",
                    node.name
                ),
            ));
            if sources.contains(&CniKind::Calico) {
                steps.push(ops::clear_network_unavailable(&node.name));
            }
            let (clean, restore) = b.clean_node(&node.name, false);
            steps.extend(clean);
            let inventory = crate::agent::pod(
                "inventory",
                &node.name,
                &b.agent_image(),
                crate::agent::cniswap(&["node", "inventory", "--root", "/host"]),
            );
            steps.extend(end_node(
                node,
                "a new pod gets an address from the node's podCIDR, and the node's first CNI config is Flannel's",
                vec![
                    Probe::PodAddress {
                        node: node.name.clone(),
                        cidr: None,
                    },
                    Probe::NodeInventory {
                        node: node.name.clone(),
                        pod: inventory,
                    },
                ],
                &b.agent_image(),
            ));
            // Replicated storage heals before the next node is drained.
            steps.extend(b.between_nodes(node));
            let mut back = start_node(node);
            back.extend(restore);
            back.push(ops::label_node(
                &node.name,
                FLANNEL_NODE_LABEL,
                Some("old"),
                format!("Move {} back to the old CNI.", node.name),
            ));
            back.extend(b.renew_node(node, old));
            back.extend(end_node_back(node, old, &b.agent_image()));
            rollback.splice(0..0, back);
        }
    }
    b.phase(
        "Switch the nodes",
        "Every node runs Flannel; the old CNI runs nowhere.",
        steps,
        rollback,
    );
    let (ns, ds) = install::agent_daemonset(b.cluster, CniKind::Flannel);
    finalize(
        b,
        vec![
            Probe::NodesLabelled {
                key: FLANNEL_NODE_LABEL.into(),
                value: "flannel".into(),
            },
            Probe::AgentsReady {
                namespace: ns,
                daemonset: ds,
            },
        ],
        None,
        false,
    );
}
