//! Rolling: node by node with both dataplanes present.
//! - to Cilium: Cilium's dual-overlay procedure (distinct pool and port, `cni.customConf`,
//!   a CiliumNodeConfig per switched node), plus Talos patches and Flannel/Calico cleanup.
//! - Flannel to Calico: Calico's shared-overlay migration controller (same pod CIDR).
//! - Calico or Cilium to Flannel: the old agent is taken off one node at a time by a node
//!   label, Flannel starts there on the node podCIDRs, the old node state is cleaned.

use super::{Builder, S, s};
use crate::artifacts::cilium;
use crate::context::{CALICO_VERSION, InstallChoice};
use crate::install;
use crate::model::Action;
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
        CniKind::Cilium if sources.iter().all(|s| matches!(s, CniKind::Flannel | CniKind::Calico)) => {
            Ok("Cilium's dual-overlay migration: the old CNI routes through the Linux stack, so both run side by side on a distinct pool and port".into())
        }
        CniKind::Calico if sources == &[CniKind::Flannel] => {
            let flannel = cluster.facts.cnis.iter().find(|c| c.kind == CniKind::Flannel).and_then(|c| c.flannel.clone()).unwrap_or_default();
            if flannel.backend.as_deref().is_some_and(|b| b != "vxlan") || flannel.direct_routing == Some(true) {
                Err("Calico's shared-overlay migration needs Flannel's vxlan backend without DirectRouting (FLN001)".into())
            } else {
                Ok("Calico's shared-overlay (VTEP reuse) migration keeps the pod CIDR and both overlays talk during the switch".into())
            }
        }
        CniKind::Flannel if sources.iter().all(|s| matches!(s, CniKind::Calico | CniKind::Cilium)) => {
            let old_pools: Vec<&String> = cluster.facts.cnis.iter().filter(|c| sources.contains(&c.kind)).flat_map(|c| &c.pod_cidrs).collect();
            let overlap = old_pools.iter().any(|p| cluster.pod_cidrs.iter().any(|c| crate::overlap(p, c)));
            if overlap {
                Err("the old CNI allocates from the node podCIDR range Flannel needs: the pools overlap, so only cutover works".into())
            } else {
                Ok("Flannel takes the node podCIDRs, which the old CNI's pool does not use, so both can run side by side".into())
            }
        }
        _ => Err(format!("no side-by-side procedure exists from {} to {target}", sources.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", "))),
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
    match b.options.target {
        CniKind::Cilium => to_cilium(b),
        CniKind::Calico => flannel_to_calico(b),
        _ => to_flannel(b),
    }
}

/// A comment line before a drain that would stop on pods without a controller (MIG002).
fn bare_pod_warning(node: &crate::context::PlanNode) -> Option<String> {
    (!node.bare_pods.is_empty()).then(|| {
        format!(
            "# {} ha{} no controller: drain stops there. Delete (nobody recreates them) or add --force.",
            node.bare_pods.join(", "),
            if node.bare_pods.len() == 1 { "s" } else { "ve" }
        )
    })
}

fn per_node_start(node: &crate::context::PlanNode) -> Vec<S> {
    let mut drain = s(
        Action::Drain {
            node: node.name.clone(),
        },
        format!(
            "Drain {} (evictions respect PodDisruptionBudgets).",
            node.name
        ),
        bare_pod_warning(node)
            .into_iter()
            .chain([format!(
                "kubectl drain {} --ignore-daemonsets --delete-emptydir-data --timeout=15m",
                node.name
            )])
            .collect(),
        format!("only DaemonSet pods remain on {}", node.name),
        900,
    );
    drain.pods = node.pods.clone();
    vec![
        s(
            Action::Cordon {
                node: node.name.clone(),
            },
            format!("Cordon {}.", node.name),
            vec![format!("kubectl cordon {}", node.name)],
            format!("{} is SchedulingDisabled", node.name),
            60,
        ),
        drain,
    ]
}

fn per_node_end(node: &crate::context::PlanNode, check: &str) -> Vec<S> {
    vec![
        s(
            Action::Verify {
                check: check.to_string(),
            },
            format!("Verify {}: {check}.", node.name),
            vec![
                format!(
                    "kubectl get pods -A -o wide --field-selector spec.nodeName={}",
                    node.name
                ),
                "cniswap inspect".into(),
            ],
            check.to_string(),
            300,
        ),
        s(
            Action::Uncordon {
                node: node.name.clone(),
            },
            format!("Uncordon {}.", node.name),
            vec![format!("kubectl uncordon {}", node.name)],
            format!("{} is schedulable", node.name),
            60,
        ),
    ]
}

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
    if b.cluster.sources.contains(&CniKind::Calico) {
        b.resolves.push((
            "CAL003",
            "the first step of \"Install Cilium beside the old CNI\" pins Calico's address detection to the node InternalIP".into(),
        ));
        let backup = "backups/calico-autodetection-v4.json";
        let pin = r#"{"spec":{"calicoNetwork":{"nodeAddressAutodetectionV4":{"firstFound":false,"kubernetes":"NodeInternalIP"}}}}"#;
        prepare.push(s(
            Action::PatchObject {
                kind: "Installation".into(),
                name: "default".into(),
                patch: pin.into(),
                jsonpath: ".spec.calicoNetwork.nodeAddressAutodetectionV4.kubernetes".into(),
                expected: "NodeInternalIP".into(),
            },
            "Pin Calico's node address detection to the InternalIP before Cilium adds cilium_host (cilium#31273).",
            vec![
                format!("test -s {backup} || kubectl get installation default -o jsonpath='{{.spec.calicoNetwork.nodeAddressAutodetectionV4}}' > {backup}"),
                format!("kubectl patch installation default --type merge -p '{pin}'"),
            ],
            "the Installation shows nodeAddressAutodetectionV4.kubernetes: NodeInternalIP",
            300,
        ));
        prepare_undo.push(s(
            Action::PatchObject {
                kind: "Installation".into(),
                name: "default".into(),
                patch: format!("the content of {backup}"),
                jsonpath: String::new(),
                expected: String::new(),
            },
            "Restore the previous address detection from its backup.",
            vec![
                r#"kubectl patch installation default --type merge -p '{"spec":{"calicoNetwork":{"nodeAddressAutodetectionV4":null}}}'"#.into(),
                // An empty backup means the field was unset: clearing it was the restore.
                format!(r#"test ! -s {backup} || kubectl patch installation default --type merge -p "{{\"spec\":{{\"calicoNetwork\":{{\"nodeAddressAutodetectionV4\":$(cat {backup})}}}}}}""#),
            ],
            format!("the Installation's nodeAddressAutodetectionV4 equals {backup}"),
            300,
        ));
    }
    let uninstall_migration = if install::method(b) == InstallChoice::Helm {
        let what = if resumed {
            format!(
                "Re-install the running Cilium with the migration settings, keeping its pool {pool} and VXLAN port {port} so the pods it already runs keep working"
            )
        } else {
            format!(
                "Install Cilium beside the old CNI: pool {pool}, VXLAN port {port}, no CNI config written yet, no policy enforcement."
            )
        };
        prepare.push(install::helm_cilium(b.cluster, &values_file, &what));
        vec![install::helm_uninstall("cilium", "kube-system")]
    } else {
        // The migration stage is always applied with kubectl: only the final state belongs in
        // the Talos config, where bootstraps and upgrade-k8s apply it again.
        let render = install::render_cilium(b.cluster, &values_file);
        let (apply, undo) = install::rendered(
            b,
            InstallChoice::Manifests,
            "cilium",
            "migration",
            &render,
            "kube-system",
            "cilium",
        );
        prepare.extend(apply);
        undo
    };
    prepare.push(s(
        Action::ApplyManifest {
            file: node_config.clone(),
        },
        "Create the CiliumNodeConfig that switches labelled nodes.",
        vec![format!("kubectl apply -f {node_config}")],
        "`kubectl -n kube-system get ciliumnodeconfig cilium-default` exists",
        60,
    ));
    prepare_undo.splice(0..0, uninstall_migration);
    prepare_undo.insert(
        0,
        s(
            Action::DeleteObject {
                kind: "CiliumNodeConfig".into(),
                namespace: Some("kube-system".into()),
                name: "cilium-default".into(),
                backup: node_config.clone(),
            },
            "Delete the CiliumNodeConfig (its definition is the artifact).",
            vec!["kubectl -n kube-system delete ciliumnodeconfig cilium-default".into()],
            "the CiliumNodeConfig is gone",
            60,
        ),
    );
    b.phase(
        "Install Cilium beside the old CNI",
        "Cilium runs on every node without taking over any pod.",
        prepare,
        prepare_undo,
    );

    let mut steps = Vec::new();
    let mut rollback = Vec::new();
    for batch in b.batches() {
        for node in batch {
            steps.extend(per_node_start(node));
            steps.push(s(
                Action::LabelNode {
                    node: node.name.clone(),
                    label: "io.cilium.migration/cilium-default=true".into(),
                    remove: false,
                },
                format!("Label {} so the CiliumNodeConfig applies there.", node.name),
                vec![format!(
                    "kubectl label node {} --overwrite io.cilium.migration/cilium-default=true",
                    node.name
                )],
                format!("{} has the label", node.name),
                60,
            ));
            steps.push(s(
                Action::WaitDaemonSetReady {
                    namespace: "kube-system".into(),
                    name: "cilium".into(),
                    node: Some(node.name.clone()),
                },
                format!(
                    "Restart Cilium on {} so it writes 05-cilium.conflist (exclusive), and wait.",
                    node.name
                ),
                install::restart_agent_commands("kube-system", "cilium", &node.name),
                format!("the Cilium pod on {} is Ready", node.name),
                300,
            ));
            steps.push(b.reboot(node, CniKind::Cilium));
            steps.extend(per_node_end(
                node,
                &format!("new pods on the node get addresses from {pool}"),
            ));
            let old = b
                .cluster
                .sources
                .first()
                .copied()
                .unwrap_or(CniKind::Flannel);
            rollback.insert(0, b.reboot(node, old));
            rollback.insert(0, s(
                Action::ManualGate { question: format!("Remove Cilium's config from {}?", node.name) },
                format!("Give {} back to the old CNI: drop 05-cilium.conflist, rename *.cilium_bak back.", node.name),
                vec![format!(
                    "kubectl debug node/{} --profile=sysadmin --image=busybox -- sh -c 'rm -f /host/etc/cni/net.d/05-cilium.conflist; for f in /host/etc/cni/net.d/*.cilium_bak; do [ -e \"$f\" ] && mv \"$f\" \"${{f%.cilium_bak}}\"; done'",
                    node.name
                )],
                format!("the old CNI's config sorts first on {}", node.name),
                300,
            ));
            rollback.insert(
                0,
                s(
                    Action::LabelNode {
                        node: node.name.clone(),
                        label: "io.cilium.migration/cilium-default".into(),
                        remove: true,
                    },
                    format!("Remove the migration label from {}.", node.name),
                    vec![format!(
                        "kubectl label node {} io.cilium.migration/cilium-default-",
                        node.name
                    )],
                    format!("{} has no migration label", node.name),
                    60,
                ),
            );
        }
    }
    b.phase(
        "Switch the nodes",
        "Every node runs its pods on Cilium; the old CNI only carries pods not yet recreated.",
        steps,
        rollback,
    );

    finalize(b, Some(&pool));
}

/// After the switch: Talos stops rendering the old CNI, the old CNI goes, final values, node
/// cleanup, kube-proxy when replaced.
fn finalize(b: &mut Builder, pool: Option<&str>) {
    let target = b.options.target;
    let sources = b.cluster.sources.clone();
    let (mut steps, mut rollback) = b.stop_sources();
    if target == CniKind::Cilium {
        let (install, uninstall) = install::target(b, pool);
        steps.extend(install);
        let back_to_migration = if install::method(b) == InstallChoice::Helm {
            s(
                Action::HelmRollback {
                    release: "cilium".into(),
                    namespace: "kube-system".into(),
                },
                "Roll Cilium back to the migration values.",
                vec!["helm -n kube-system rollback cilium 0  # the previous revision".into()],
                "helm shows the migration values again",
                600,
            )
        } else {
            let manifest = "artifacts/cilium/rendered-migration.yaml".to_string();
            s(
                Action::ApplyManifest {
                    file: manifest.clone(),
                },
                "Put Cilium back on the migration settings.",
                vec![
                    format!("kubectl apply --server-side -f {manifest}"),
                    "kubectl -n kube-system rollout status ds/cilium --timeout=10m".into(),
                ],
                "`kubectl -n kube-system get cm cilium-config -o yaml` shows the migration settings",
                600,
            )
        };
        // Keep the Talos half of the uninstall (the URL patch), so Talos stops applying the
        // final manifests; the last step would remove Cilium altogether.
        let mut talos_undo = uninstall;
        talos_undo.pop();
        talos_undo.push(back_to_migration);
        rollback.splice(0..0, talos_undo);
        steps.push(s(
            Action::DeleteObject {
                kind: "CiliumNodeConfig".into(),
                namespace: Some("kube-system".into()),
                name: "cilium-default".into(),
                backup: "artifacts/cilium/ciliumnodeconfig.yaml".into(),
            },
            "Delete the CiliumNodeConfig: every node is switched.",
            vec!["kubectl -n kube-system delete ciliumnodeconfig cilium-default".into()],
            "it is gone",
            60,
        ));
    }
    if b.replace_kube_proxy {
        if b.cluster.talos {
            let patch = crate::artifacts::talos::disable_kube_proxy(b.cluster);
            let (apply, undo) = b.talos_patch(&patch, "Talos stops deploying kube-proxy");
            steps.extend(apply);
            rollback.extend(undo);
        }
        if b.cluster.facts.kube_proxy.present {
            let (delete, restore) = b.delete_kube_proxy();
            steps.push(delete);
            rollback.insert(0, restore);
        }
    }
    let nodes: Vec<_> = b.cluster.nodes.iter().collect();
    for node in nodes {
        for cni in &sources {
            let (clean, restore) = b.node_clean(node, *cni, b.replace_kube_proxy);
            steps.push(clean);
            rollback.insert(0, restore);
        }
    }
    steps.push(s(
        Action::Verify {
            check: "one CNI, no leftovers".into(),
        },
        "Check that only the target runs and no node keeps old state.",
        vec!["cniswap inspect".into(), "cniswap lint --live".into()],
        "no MIG001, MIG011 or NOD005 finding",
        600,
    ));
    b.phase(
        "Finish",
        "Only the target runs, with its final settings; no node keeps the old CNI's state.",
        steps,
        rollback,
    );
}

fn flannel_to_calico(b: &mut Builder) {
    let (ns, ds) = b
        .cluster
        .daemonset_of(CniKind::Flannel)
        .unwrap_or(("kube-flannel".into(), "kube-flannel-ds".into()));
    let base = format!(
        "https://raw.githubusercontent.com/projectcalico/calico/{CALICO_VERSION}/manifests/flannel-migration"
    );
    let env = b.artifacts.add_yaml(
        "calico/flannel-migration-env.yaml",
        "Where the migration controller finds Flannel (Talos deploys it as kube-system/kube-flannel)",
        &serde_json::json!({"FLANNEL_DAEMONSET_NAME": ds, "FLANNEL_DAEMONSET_NAMESPACE": ns}),
    );
    let order: Vec<String> = b.cluster.nodes.iter().map(|n| n.name.clone()).collect();
    let mut install = s(
        Action::ApplyManifest {
            file: format!("{base}/calico.yaml"),
        },
        "Install Calico in flannel-migration mode (it runs nowhere until a node is switched).",
        vec![format!("kubectl apply -f {base}/calico.yaml")],
        "DaemonSet kube-system/calico-node exists",
        600,
    );
    install.pods = Vec::new();
    let migrate = s(
        Action::ApplyManifest {
            file: format!("{base}/migration-job.yaml"),
        },
        format!(
            "Run Calico's migration controller: it cordons, drains and switches nodes one by one (workers first; here: {}).",
            order.join(", ")
        ),
        vec![
            format!("kubectl apply -f {base}/migration-job.yaml"),
            format!(
                "kubectl -n kube-system set env job/flannel-migration --from-file={env}  # if Flannel is not kube-flannel/kube-flannel-ds"
            ),
            format!(
                "kubectl -n kube-system wait job/flannel-migration --for=condition=Complete --timeout={}m",
                5 * order.len().max(1) + 10
            ),
        ],
        "job flannel-migration Complete; every node labelled projectcalico.org/node-network-during-migration=calico",
        u32::try_from(300 * order.len().max(1) + 600).unwrap_or(u32::MAX),
    );
    b.phase(
        "Migrate with Calico's controller",
        "Every node runs Calico on the same pod CIDR; Flannel's DaemonSet is gone.",
        vec![install, migrate],
        vec![s(
            Action::ManualGate { question: "Undo a partial Calico migration?".into() },
            "Calico documents a manual undo for a partial migration only: relabel the nodes for Flannel and delete Calico.",
            vec![
                "kubectl label node --all projectcalico.org/node-network-during-migration=flannel --overwrite".into(),
                format!("kubectl delete -f {base}/migration-job.yaml"),
                format!("kubectl delete -f {base}/calico.yaml"),
            ],
            "Flannel pods run on every node",
            900,
        )],
    );
    finalize(b, None);
}

fn to_flannel(b: &mut Builder) {
    let sources = b.cluster.sources.clone();
    let mut prepare = vec![s(
        Action::LabelNode {
            node: "all".into(),
            label: "cniswap.io/cni=old".into(),
            remove: false,
        },
        "Label every node for the old CNI, so it can leave one node at a time.",
        vec!["kubectl label node --all cniswap.io/cni=old --overwrite".into()],
        "every node has cniswap.io/cni=old",
        60,
    )];
    let mut undo = vec![s(
        Action::LabelNode {
            node: "all".into(),
            label: "cniswap.io/cni".into(),
            remove: true,
        },
        "Remove the cniswap.io/cni labels.",
        vec!["kubectl label node --all cniswap.io/cni-".into()],
        "no node has the label",
        60,
    )];
    for cni in &sources {
        if let Some((pause, resume)) = b.pause_controller(*cni) {
            prepare.push(pause);
            undo.insert(0, resume);
        }
        if let Some((ns, name)) = b.cluster.daemonset_of(*cni) {
            prepare.push(s(
                Action::PatchDaemonSetNodeSelector { namespace: ns.clone(), name: name.clone(), selector: "cniswap.io/cni=old".into() },
                format!("Let {ns}/{name} run only on nodes labelled for the old CNI."),
                vec![format!(r#"kubectl -n {ns} patch daemonset {name} -p '{{"spec":{{"template":{{"spec":{{"nodeSelector":{{"cniswap.io/cni":"old"}}}}}}}}}}'"#)],
                format!("{ns}/{name} has the nodeSelector"),
                300,
            ));
            undo.insert(0, s(
                Action::PatchDaemonSetNodeSelector { namespace: ns.clone(), name: name.clone(), selector: String::new() },
                format!("Drop the nodeSelector of {ns}/{name}."),
                vec![format!(r#"kubectl -n {ns} patch daemonset {name} --type json -p '[{{"op":"remove","path":"/spec/template/spec/nodeSelector/cniswap.io~1cni"}}]'"#)],
                format!("{ns}/{name} runs on every node"),
                300,
            ));
        }
    }
    let (install, uninstall) = install::target(b, None);
    prepare.extend(install);
    if b.cluster.talos {
        // Talos renders its Flannel without a selector; outside Talos the install sets it.
        prepare.push(s(
            Action::PatchDaemonSetNodeSelector { namespace: "kube-system".into(), name: "kube-flannel".into(), selector: "cniswap.io/cni=flannel".into() },
            "Let Flannel run only on switched nodes.",
            vec![
                r#"kubectl -n kube-system patch daemonset kube-flannel -p '{"spec":{"template":{"spec":{"nodeSelector":{"cniswap.io/cni":"flannel"}}}}}'"#.into(),
                "# talosctl upgrade-k8s re-applies Talos' manifests: do not run it before the migration ends, or check the selector after it".into(),
            ],
            "kube-system/kube-flannel has the nodeSelector",
            300,
        ));
    }
    undo.splice(0..0, uninstall);
    b.phase(
        "Prepare both CNIs",
        "The old CNI runs on every node; Flannel is installed and waits for switched nodes.",
        prepare,
        undo,
    );

    let (flannel_ns, flannel_ds) = install::agent_daemonset(b.cluster, CniKind::Flannel);
    let mut steps = Vec::new();
    let mut rollback = Vec::new();
    for batch in b.batches() {
        for node in batch {
            steps.extend(per_node_start(node));
            steps.push(s(
                Action::LabelNode {
                    node: node.name.clone(),
                    label: "cniswap.io/cni=flannel".into(),
                    remove: false,
                },
                format!(
                    "Move {} to Flannel: the old agent leaves, Flannel starts.",
                    node.name
                ),
                vec![
                    format!(
                        "kubectl label node {} cniswap.io/cni=flannel --overwrite",
                        node.name
                    ),
                    install::wait_agent_command(&flannel_ns, &flannel_ds),
                ],
                format!(
                    "only Flannel's agent runs on {}, and it is ready",
                    node.name
                ),
                300,
            ));
            for cni in &sources {
                let (clean, restore) = b.node_clean(node, *cni, false);
                steps.push(clean);
                rollback.insert(0, restore);
            }
            steps.extend(per_node_end(
                node,
                "new pods get addresses from the node's podCIDR",
            ));
            rollback.insert(
                0,
                s(
                    Action::LabelNode {
                        node: node.name.clone(),
                        label: "cniswap.io/cni=old".into(),
                        remove: false,
                    },
                    format!("Move {} back to the old CNI.", node.name),
                    vec![format!(
                        "kubectl label node {} cniswap.io/cni=old --overwrite",
                        node.name
                    )],
                    format!("the old agent runs on {} again", node.name),
                    300,
                ),
            );
        }
    }
    b.phase(
        "Switch the nodes",
        "Every node runs Flannel; the old CNI runs nowhere.",
        steps,
        rollback,
    );
    finalize(b, None);
}
