//! Plans for the example snapshots: golden plan.yaml and runbook.md, artifacts that lint clean,
//! and invariants over generated clusters (rollback for every phase, backups before deletes,
//! kube-proxy never removed without a replacement, control planes last).

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

mod common;

use cniswap_model::{CniKind, Severity};
use cniswap_plan::{Action, InstallChoice, KubeProxyChoice, Plan, PlanOptions, StrategyChoice};
use common::{assert_invariants, examples, file, options, plan_for};
use std::path::Path;

const CASES: &[(&str, CniKind)] = &[
    ("talos-flannel-homelab", CniKind::Cilium),
    ("talos-flannel-homelab", CniKind::Calico),
    ("talos-1.14-multidoc", CniKind::Cilium),
    ("talos-1.14-multidoc", CniKind::Calico),
    ("kubeadm-calico-vxlan", CniKind::Cilium),
    ("kubeadm-calico-vxlan", CniKind::Flannel),
    ("talos-flannel-to-cilium-half-migrated", CniKind::Cilium),
    ("talos-flannel-to-cilium-half-migrated", CniKind::Flannel),
];

#[test]
fn golden_plans_and_runbooks_for_the_examples() {
    for (example, target) in CASES {
        let snapshot = cniswap_snapshot::load(&examples().join(example)).unwrap();
        let output = plan_for(&snapshot, &options(*target, StrategyChoice::Auto)).unwrap();
        insta::assert_snapshot!(
            format!("{example}-to-{target}-plan"),
            file(&output, "plan.yaml")
        );
        insta::assert_snapshot!(
            format!("{example}-to-{target}-runbook"),
            file(&output, "runbook.md")
        );
        // The other strategies that apply here, as plans (the runbook renders the same steps).
        for strategy in [
            StrategyChoice::Fresh,
            StrategyChoice::Cutover,
            StrategyChoice::Rolling,
        ] {
            let Some(other) = plan_for(&snapshot, &options(*target, strategy)) else {
                continue;
            };
            if other.plan.strategy == output.plan.strategy {
                continue;
            }
            let yaml = file(&other, "plan.yaml");
            insta::assert_snapshot!(
                format!("{example}-to-{target}-{}-plan", other.plan.strategy),
                yaml
            );
        }
    }
}

/// Lints every generated file in the state it is applied in: migration files against the
/// cluster with the planned strategy; final values as the state after the switch; rollback
/// patches as a return to the source CNI.
fn assert_artifacts_lint_clean(snapshot_dir: &Path, output: &cniswap_plan::Output) {
    let plan = &output.plan;
    let dir = tempfile::tempdir().unwrap();
    for (path, text) in &output.files {
        let path = dir.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let target: CniKind = serde_json::from_value(serde_json::json!(plan.to)).unwrap();
    let source: Option<CniKind> = plan
        .from
        .first()
        .map(|s| serde_json::from_value(serde_json::json!(s)).unwrap());
    let strategy = match plan.strategy.as_str() {
        "fresh" => cniswap_lint::Strategy::Fresh,
        "cutover" => cniswap_lint::Strategy::Cutover,
        _ => cniswap_lint::Strategy::Rolling,
    };
    for artifact in &plan.artifacts {
        let file = dir.path().join(&artifact.path);
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        // Patches that stop the old CNI are applied together with the steps that delete what
        // Talos leaves (TAL002/TAL003 are the plan's next steps): check them on their own.
        let with_follow_up = artifact.path.contains("/talos/") || artifact.path.contains("/omni/");
        let (mut snapshot, lint_target) = if name.starts_with("rollback-") {
            (
                cniswap_snapshot::Snapshot::default(),
                cniswap_lint::Target {
                    cni: source,
                    ..Default::default()
                },
            )
        } else if name.contains("final") || with_follow_up {
            (
                cniswap_snapshot::Snapshot::default(),
                cniswap_lint::Target {
                    cni: Some(target),
                    ..Default::default()
                },
            )
        } else {
            (
                cniswap_snapshot::load(snapshot_dir).unwrap(),
                cniswap_lint::Target {
                    cni: Some(target),
                    strategy: Some(strategy),
                    estimated_outage_minutes: None,
                },
            )
        };
        cniswap_snapshot::load_paths(&mut snapshot, std::slice::from_ref(&file)).unwrap();
        let facts = cniswap_facts::detect(&snapshot);
        let result = cniswap_lint::lint(
            &snapshot,
            &facts,
            lint_target,
            &cniswap_lint::SuppressionConfig::default(),
        );
        let bad: Vec<String> = result
            .findings
            .iter()
            .filter(|f| f.severity >= Severity::Warning)
            // The generated values replace the cluster's current values on purpose (the plan's
            // helm upgrade); CIL018 compares the two and reports that they differ.
            .filter(|f| f.rule != "CIL018")
            .filter(|f| {
                f.location
                    .as_ref()
                    .is_some_and(|l| l.file.ends_with(&artifact.path))
            })
            .map(|f| {
                format!(
                    "{} {}: {}",
                    f.rule,
                    f.location.as_ref().unwrap().line,
                    f.message
                )
            })
            .collect();
        assert!(
            bad.is_empty(),
            "{} -> {target} ({}): {} does not lint clean:\n{}",
            snapshot_dir.display(),
            plan.strategy,
            artifact.path,
            bad.join("\n")
        );
    }
}

#[test]
fn every_generated_file_lints_clean_for_every_strategy() {
    let mut checks = std::collections::BTreeSet::new();
    for (example, target) in CASES {
        let snapshot = cniswap_snapshot::load(&examples().join(example)).unwrap();
        for strategy in [
            StrategyChoice::Auto,
            StrategyChoice::Cutover,
            StrategyChoice::Rolling,
            StrategyChoice::Fresh,
        ] {
            for kube_proxy in [KubeProxyChoice::Keep, KubeProxyChoice::Replace] {
                if kube_proxy == KubeProxyChoice::Replace && *target == CniKind::Flannel {
                    continue;
                }
                let opts = PlanOptions {
                    kube_proxy: Some(kube_proxy),
                    ..options(*target, strategy)
                };
                let Some(output) = plan_for(&snapshot, &opts) else {
                    continue;
                };
                assert_invariants(&output.plan);
                assert_artifacts_lint_clean(&examples().join(example), &output);
                assert_old_daemonsets_removed(&output.plan);
                let steps = output
                    .plan
                    .phases
                    .iter()
                    .flat_map(|p| p.steps.iter().chain(&p.rollback));
                for step in steps {
                    checks.extend(step.check.clone());
                    checks.extend(step.commands.iter().cloned());
                }
            }
        }
    }
    // Every command and "already done" check is valid shell.
    assert!(checks.len() > 100, "{}", checks.len());
    for check in &checks {
        let ok = std::process::Command::new("sh")
            .args(["-n", "-c", check])
            .status()
            .unwrap()
            .success();
        assert!(ok, "not valid shell: {check}");
    }
}

#[test]
fn talos_patches_follow_the_config_format() {
    let v1 = cniswap_snapshot::load(&examples().join("talos-flannel-homelab")).unwrap();
    let out = plan_for(&v1, &options(CniKind::Cilium, StrategyChoice::Cutover)).unwrap();
    let patch = file(&out, "artifacts/talos/disable-flannel.yaml");
    assert!(
        patch.contains("name: none") && !patch.contains("KubeFlannelCNIConfig"),
        "{patch}"
    );

    let multidoc = cniswap_snapshot::load(&examples().join("talos-1.14-multidoc")).unwrap();
    let opts = PlanOptions {
        kube_proxy: Some(KubeProxyChoice::Replace),
        ..options(CniKind::Cilium, StrategyChoice::Cutover)
    };
    let out = plan_for(&multidoc, &opts).unwrap();
    let patch = file(&out, "artifacts/talos/disable-flannel.yaml");
    assert!(
        patch.contains("kind: KubeFlannelCNIConfig") && patch.contains("$patch: delete"),
        "{patch}"
    );
    let proxy = file(&out, "artifacts/talos/disable-kube-proxy.yaml");
    assert!(
        proxy.contains("kind: KubeProxyConfig") && proxy.contains("enabled: false"),
        "{proxy}"
    );
    let values = file(&out, "artifacts/cilium/values-final.yaml");
    assert!(
        values.contains("kubeProxyReplacement: true") && values.contains("k8sServicePort: 7445"),
        "{values}"
    );
}

/// Talos never deletes what it rendered, and nothing else removes a replaced CNI's agent
/// (TAL002): each source's DaemonSet is backed up and deleted, except where Calico's migration
/// controller removes Flannel itself (the plan's delete then finds it gone).
fn assert_old_daemonsets_removed(plan: &Plan) {
    if plan.strategy == "fresh" {
        return;
    }
    let deleted = plan
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .filter(|s| matches!(&s.action, Action::DeleteObject { object, .. } if object.kind == "daemonset" && object.name != "kube-proxy"))
        .count();
    assert!(
        deleted >= plan.from.len(),
        "{} -> {} ({}): {deleted} DaemonSet deletions for {:?}",
        plan.cluster,
        plan.to,
        plan.strategy,
        plan.from
    );
}

mod generated {
    use super::*;
    use common::cluster_yaml;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

        #[test]
        fn every_plan_keeps_the_invariants(
            source in prop::sample::select(vec![CniKind::Flannel, CniKind::Calico, CniKind::Cilium, CniKind::Canal, CniKind::Weave]),
            target in prop::sample::select(vec![CniKind::Flannel, CniKind::Calico, CniKind::Cilium]),
            control_planes in 1usize..4,
            workers in 0usize..6,
            zones in 1usize..4,
            kube_proxy in any::<bool>(),
            strategy in prop::sample::select(vec![StrategyChoice::Auto, StrategyChoice::Cutover, StrategyChoice::Rolling]),
            replace in any::<bool>(),
            batch in 1usize..4,
        ) {
            prop_assume!(source != target);
            let (_dir, snapshot) = common::generated_snapshot(&cluster_yaml(source, control_planes, workers, zones, kube_proxy));
            let kube_proxy_choice = if replace { KubeProxyChoice::Replace } else { KubeProxyChoice::Keep };
            let opts = PlanOptions { kube_proxy: Some(kube_proxy_choice), batch_size: batch, ..options(target, strategy) };
            let facts = cniswap_facts::detect(&snapshot);
            prop_assert!(facts.cnis.iter().any(|c| c.kind == source && c.running), "{source} not detected");
            match cniswap_plan::plan(&snapshot, &facts, &opts) {
                Err(e) => {
                    // The only refusals: a strategy that cannot work here, Flannel as kube-proxy's
                    // replacement, or a replacement that would reach the API through one of several
                    // control planes (the generated cluster has no VIP: issue 17 asks for one).
                    let expected = e.message.contains("is not possible here")
                        || (replace && target == CniKind::Flannel)
                        || (replace && control_planes > 1 && e.help.contains("--api-endpoint"));
                    prop_assert!(expected, "{source} -> {target} {strategy:?}: {}", e.message);
                }
                Ok(output) => {
                    assert_invariants(&output.plan);
                    assert_old_daemonsets_removed(&output.plan);
                    // Workers are listed before control planes in the estimate order too.
                    let roles: Vec<&str> = output.plan.estimates.per_node.iter().map(|n| n.role.as_str()).collect();
                    let first_cp = roles.iter().position(|r| *r == "control-plane").unwrap_or(roles.len());
                    prop_assert!(roles[first_cp..].iter().all(|r| *r == "control-plane"), "{roles:?}");
                }
            }
        }
    }
}

#[test]
fn k3s_bundled_flannel_is_switched_off_in_the_distribution_config() {
    let mut yaml = String::new();
    for i in 0..3 {
        let role = if i == 0 {
            "    node-role.kubernetes.io/control-plane: \"true\"\n"
        } else {
            ""
        };
        yaml.push_str(&format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: k{i}\n  labels:\n{role}    kubernetes.io/hostname: k{i}\n  annotations:\n    flannel.alpha.coreos.com/backend-type: vxlan\nspec:\n  podCIDR: 10.42.{i}.0/24\nstatus:\n  nodeInfo:\n    osImage: Ubuntu 24.04\n    kubeletVersion: v1.33.2+k3s1\n  conditions:\n  - type: Ready\n    status: \"True\"\n---\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("cluster")).unwrap();
    std::fs::write(dir.path().join("cluster/nodes.yaml"), yaml).unwrap();
    let snapshot = cniswap_snapshot::load(dir.path()).unwrap();
    // No kube-system DaemonSet and no k3s node-args: whether kube-proxy runs is unknown.
    assert!(plan_for(&snapshot, &options(CniKind::Cilium, StrategyChoice::Auto)).is_none());
    let opts = PlanOptions {
        kube_proxy: Some(KubeProxyChoice::Keep),
        ..options(CniKind::Cilium, StrategyChoice::Auto)
    };
    let output = plan_for(&snapshot, &opts).unwrap();
    let plan = output.plan;
    assert_eq!(plan.strategy, "cutover", "{}", plan.strategy_reason);
    assert!(
        plan.strategy_reason.contains("bundled into k3s"),
        "{}",
        plan.strategy_reason
    );
    // The server's own service gets it (tests/distributions.rs has the whole procedure).
    let settings = plan
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .find_map(|s| match &s.action {
            Action::NodeService {
                node,
                unit,
                settings,
                dropin,
                ..
            } if node == "k0" => Some((unit, settings, dropin)),
            _ => None,
        })
        .unwrap();
    assert_eq!(settings.0, "k3s");
    assert_eq!(settings.2, "/etc/rancher/k3s/config.yaml.d/90-cniswap.yaml");
    assert!(
        settings.1.iter().any(|c| c == "flannel-backend: none"),
        "{:?}",
        settings.1
    );
    assert_invariants(&plan);
}

#[test]
fn every_install_method_yields_files_that_lint_clean() {
    for (example, target) in CASES {
        let snapshot = cniswap_snapshot::load(&examples().join(example)).unwrap();
        let talos = example.starts_with("talos");
        let installs = [
            InstallChoice::Manifests,
            InstallChoice::TalosUrls,
            InstallChoice::Omni,
        ];
        for (install, strategy) in installs
            .iter()
            .flat_map(|i| [(*i, StrategyChoice::Cutover), (*i, StrategyChoice::Rolling)])
        {
            if !talos && install != InstallChoice::Manifests {
                continue;
            }
            let opts = PlanOptions {
                install: Some(install),
                ..options(*target, strategy)
            };
            let Some(output) = plan_for(&snapshot, &opts) else {
                continue;
            };
            assert_invariants(&output.plan);
            assert_artifacts_lint_clean(&examples().join(example), &output);
            if *target == CniKind::Flannel
                || (*target == CniKind::Calico && strategy == StrategyChoice::Rolling)
            {
                assert_ne!(
                    output.plan.install, "helm",
                    "{example} {target:?} {strategy:?}"
                );
                continue;
            }
            let steps: Vec<_> = output.plan.phases.iter().flat_map(|p| &p.steps).collect();
            assert!(
                !steps
                    .iter()
                    .any(|s| matches!(s.action, Action::HelmUpgrade { .. })),
                "{example} {install:?}: --install {} must not run helm upgrade",
                install.as_str()
            );
            let rendered = steps
                .iter()
                .flat_map(|s| &s.commands)
                .any(|c| c.contains("helm template") && c.contains("/rendered-final.yaml"));
            assert!(
                rendered,
                "{example} {target:?} {strategy:?} {install:?}: manifests are rendered"
            );
            if install != InstallChoice::Manifests {
                let patch = output
                    .files
                    .iter()
                    .find(|(p, _)| p.ends_with("install-cni.yaml"))
                    .unwrap_or_else(|| panic!("{example} {install:?}: no install-cni patch"));
                let expected = if example.contains("1.14") {
                    "KubeExternalManifestConfig"
                } else {
                    "name: custom"
                };
                assert!(patch.1.contains(expected), "{}", patch.1);
            }
        }
    }
}

#[test]
fn findings_the_plan_resolves_do_not_block_it() {
    let half =
        cniswap_snapshot::load(&examples().join("talos-flannel-to-cilium-half-migrated")).unwrap();
    let plan = plan_for(&half, &options(CniKind::Cilium, StrategyChoice::Auto))
        .unwrap()
        .plan;
    let resolved = |rule: &str| {
        plan.preflight
            .iter()
            .filter(|f| f.rule == rule)
            .all(|f| plan.handled.iter().any(|h| h.covers(f)))
    };
    for rule in ["CIL001", "CIL002", "CIL004", "CIL005"] {
        assert!(
            plan.preflight.iter().any(|f| f.rule == rule),
            "{rule} is still listed"
        );
        assert!(
            resolved(rule),
            "{rule}: the generated values fix the user's values"
        );
    }
    // The migration values keep policies unenforced on purpose: CIL010 stays a warning to read.
    assert!(!resolved("CIL010"));
    assert!(!cniswap_plan::has_errors(&plan));
    // Resumes the migration that was started: same pool, port and Cilium version.
    let install = plan
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .find(|s| matches!(s.action, Action::HelmUpgrade { .. }))
        .unwrap();
    assert!(
        install.description.contains("10.245.0.0/16") && install.description.contains("8473"),
        "{}",
        install.description
    );
    assert!(
        install
            .commands
            .iter()
            .any(|c| c.contains("--version 1.16.5")),
        "{:?}",
        install.commands
    );

    let calico = cniswap_snapshot::load(&examples().join("kubeadm-calico-vxlan")).unwrap();
    let plan = plan_for(&calico, &options(CniKind::Cilium, StrategyChoice::Rolling))
        .unwrap()
        .plan;
    let blocking: Vec<&str> = cniswap_plan::blocking(&plan)
        .iter()
        .map(|f| f.rule.as_str())
        .collect();
    assert!(
        plan.handled.iter().any(|h| h.rule == "CAL003"),
        "a step pins Calico's address detection"
    );
    // The PodDisruptionBudget that allows no disruption is relaxed for the window and
    // restored after verification: it no longer refuses the plan.
    assert!(
        plan.handled.iter().any(|h| h.rule == "MIG003"),
        "a step relaxes the blocking PDB"
    );
    assert!(
        !blocking.contains(&"CAL003") && !blocking.contains(&"MIG003"),
        "{blocking:?}"
    );
}

/// The homelab cluster, managed by Omni: with ConfigPatches, or with a cluster template.
fn omni_homelab(template: bool) -> (tempfile::TempDir, cniswap_snapshot::Snapshot) {
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster");
    std::fs::create_dir_all(&cluster).unwrap();
    for entry in std::fs::read_dir(examples().join("talos-flannel-homelab/cluster")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), cluster.join(entry.file_name())).unwrap();
    }
    std::fs::create_dir_all(dir.path().join("omni")).unwrap();
    let file = if template {
        (
            "omni/cluster.yaml",
            "kind: Cluster\nname: homelab\nkubernetes:\n  version: v1.33.2\ntalos:\n  version: v1.10.5\npatches:\n  - name: hostdns\n    inline:\n      machine:\n        features:\n          hostDNS:\n            enabled: true\n---\nkind: ControlPlane\nmachines:\n  - 6d1e0a3c-0000-4000-8000-000000000001\n---\nkind: Workers\nmachines:\n  - 6d1e0a3c-0000-4000-8000-000000000002\n",
        )
    } else {
        (
            "omni/patch.yaml",
            "metadata:\n  namespace: default\n  type: ConfigPatches.omni.sidero.dev\n  id: 200-hostdns\n  labels:\n    omni.sidero.dev/cluster: homelab\nspec:\n  data: |\n    machine:\n      features:\n        hostDNS:\n          enabled: true\n",
        )
    };
    std::fs::write(dir.path().join(file.0), file.1).unwrap();
    let snapshot = cniswap_snapshot::load(dir.path()).unwrap();
    (dir, snapshot)
}

#[test]
fn omni_clusters_get_config_patches_or_template_entries() {
    let opts = PlanOptions {
        kube_proxy: Some(KubeProxyChoice::Keep),
        ..options(CniKind::Cilium, StrategyChoice::Cutover)
    };
    let commands = |out: &cniswap_plan::Output| -> Vec<String> {
        out.plan
            .phases
            .iter()
            .flat_map(|p| p.steps.iter().chain(&p.rollback))
            .flat_map(|s| s.commands.clone())
            .collect()
    };

    let (_dir, standalone) = omni_homelab(false);
    let out = plan_for(&standalone, &opts).unwrap();
    let resource = file(
        &out,
        "artifacts/omni/400-cniswap-disable-flannel-worker.yaml",
    );
    assert!(
        resource.contains("omni.sidero.dev/cluster: homelab")
            && resource.contains("ConfigPatches.omni.sidero.dev"),
        "{resource}"
    );
    assert!(
        resource.contains("omni.sidero.dev/machine-set: homelab-workers"),
        "{resource}"
    );
    let cmds = commands(&out);
    assert!(
        cmds.iter().any(|c| c
            == "omnictl apply -f artifacts/omni/400-cniswap-disable-flannel-controlplane.yaml"),
        "{cmds:?}"
    );
    assert!(cmds.iter().any(|c| {
        c.starts_with(
            "omnictl delete configpatches.omni.sidero.dev 400-cniswap-disable-flannel-worker",
        )
    }));
    assert!(
        !cmds
            .iter()
            .any(|c| c.contains("talosctl") && c.contains("patch machineconfig")),
        "Omni owns the configs: {cmds:?}"
    );

    let (_dir, templated) = omni_homelab(true);
    let out = plan_for(&templated, &opts).unwrap();
    assert!(
        !out.files
            .iter()
            .any(|(p, _)| p.starts_with("artifacts/omni/400-")),
        "template sync would delete standalone patches"
    );
    let entry = file(&out, "artifacts/omni/template-disable-flannel-worker.yaml");
    let parsed: serde_json::Value = serde_saphyr::from_str(entry).unwrap();
    assert_eq!(parsed[0]["name"], "cniswap-disable-flannel-worker");
    assert_eq!(parsed[0]["file"], "artifacts/talos/disable-flannel.yaml");
    let cmds = commands(&out);
    assert!(
        cmds.iter()
            .any(|c| c == "omnictl cluster template sync -f omni/cluster.yaml"),
        "{cmds:?}"
    );
    assert_artifacts_lint_clean(&examples().join("talos-flannel-homelab"), &out);
}

#[test]
fn rolling_to_flannel_holds_its_daemonset_until_the_selector_is_set() {
    // The kubeadm Calico cluster, with Calico's pool moved off the node podCIDRs.
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster");
    std::fs::create_dir_all(&cluster).unwrap();
    for entry in std::fs::read_dir(examples().join("kubeadm-calico-vxlan/cluster")).unwrap() {
        let entry = entry.unwrap();
        let mut text = std::fs::read_to_string(entry.path()).unwrap();
        if entry.file_name() == "config.yaml" {
            text = text.replace("cidr: 10.244.0.0/16", "cidr: 192.168.0.0/16");
        }
        std::fs::write(cluster.join(entry.file_name()), text).unwrap();
    }
    let snapshot = cniswap_snapshot::load(dir.path()).unwrap();
    let output = plan_for(
        &snapshot,
        &options(CniKind::Flannel, StrategyChoice::Rolling),
    )
    .unwrap();
    assert_invariants(&output.plan);
    // Flannel's manifest is rendered with a nodeSelector, so it never starts on a node that
    // still runs the old CNI, and with the cluster's network.
    let selector = file(&output, "artifacts/flannel/node-selector-patch.yaml");
    let parsed: serde_json::Value = serde_saphyr::from_str(selector).unwrap();
    assert_eq!(
        parsed["spec"]["template"]["spec"]["nodeSelector"]["cniswap.io/cni"],
        "flannel"
    );
    let kustomization: serde_json::Value =
        serde_saphyr::from_str(file(&output, "artifacts/flannel/kustomization.yaml")).unwrap();
    assert_eq!(kustomization["resources"][0], "kube-flannel.yml");
    assert_eq!(kustomization["patches"].as_array().unwrap().len(), 2);
    let net_conf: serde_json::Value =
        serde_saphyr::from_str(file(&output, "artifacts/flannel/net-conf-patch.yaml")).unwrap();
    let net_conf: serde_json::Value =
        serde_json::from_str(net_conf["data"]["net-conf.json"].as_str().unwrap()).unwrap();
    assert_eq!(net_conf["Network"], "10.244.0.0/16");
    let steps = common::steps(&output.plan);
    let render = steps
        .iter()
        .position(|s| matches!(&s.action, Action::RenderManifest { file, .. } if file == "artifacts/flannel/rendered.yaml"))
        .unwrap();
    let apply = steps
        .iter()
        .position(|s| matches!(&s.action, Action::ApplyManifest { file } if file == "artifacts/flannel/rendered.yaml"))
        .unwrap();
    assert!(render < apply);
    assert!(
        steps[render]
            .commands
            .iter()
            .any(|c| c.contains("\"Network\":\"10.244.0.0/16\""))
    );
}

/// Canal and Weave are sources only: cutover to each target, with files that lint clean.
#[test]
fn canal_and_weave_clusters_cut_over_to_every_target() {
    for source in [CniKind::Canal, CniKind::Weave] {
        let (dir, snapshot) =
            common::generated_snapshot(&common::cluster_yaml(source, 1, 3, 2, true));
        for target in [CniKind::Flannel, CniKind::Calico, CniKind::Cilium] {
            let output = plan_for(&snapshot, &options(target, StrategyChoice::Auto)).unwrap();
            assert_eq!(
                output.plan.strategy, "cutover",
                "{source} -> {target}: {}",
                output.plan.strategy_reason
            );
            assert_eq!(output.plan.from, vec![source.to_string()]);
            assert_invariants(&output.plan);
            assert_old_daemonsets_removed(&output.plan);
            assert_artifacts_lint_clean(dir.path(), &output);
            let cleans = output.plan.phases.iter().flat_map(|p| &p.steps).filter(|s| matches!(&s.action, Action::NodeClean { cni, dry_run: false, .. } if *cni == source.to_string())).count();
            assert_eq!(cleans, 4, "{source} -> {target}: one node clean per node");
        }
    }
}
