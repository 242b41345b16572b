//! Plans for the example snapshots: golden plan.yaml and runbook.md, artifacts that lint clean,
//! and invariants over generated clusters (rollback for every phase, backups before deletes,
//! kube-proxy never removed without a replacement, control planes last).

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use cniswap_model::{CniKind, Severity};
use cniswap_plan::{Action, InstallChoice, KubeProxyChoice, Plan, PlanOptions, StrategyChoice};
use std::path::{Path, PathBuf};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn options(target: CniKind, strategy: StrategyChoice) -> PlanOptions {
    PlanOptions {
        target,
        strategy,
        kube_proxy: None,
        install: None,
        values: Vec::new(),
        batch_size: 1,
    }
}

fn plan_for(
    snapshot: &cniswap_snapshot::Snapshot,
    options: &PlanOptions,
) -> Option<cniswap_plan::Output> {
    let facts = cniswap_facts::detect(snapshot);
    cniswap_plan::plan(snapshot, &facts, options).ok()
}

/// A written file of the plan by its path (`plan.yaml`, `artifacts/...`).
fn file<'a>(output: &'a cniswap_plan::Output, path: &str) -> &'a str {
    &output
        .files
        .iter()
        .find(|(p, _)| p == path)
        .unwrap_or_else(|| panic!("{path} not written"))
        .1
}

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
/// controller removes Flannel itself.
fn assert_old_daemonsets_removed(plan: &Plan) {
    if plan.strategy == "fresh" || (plan.strategy == "rolling" && plan.to == "calico") {
        return;
    }
    let deleted = plan
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .filter(|s| matches!(&s.action, Action::DeleteObject { kind, name, .. } if kind == "DaemonSet" && name != "kube-proxy"))
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

/// The properties every plan keeps.
fn assert_invariants(plan: &Plan) {
    let all: Vec<&cniswap_plan::Step> = plan.phases.iter().flat_map(|p| &p.steps).collect();
    for phase in &plan.phases {
        assert!(
            !phase.rollback.is_empty(),
            "phase {} has no rollback",
            phase.name
        );
    }
    for step in plan
        .phases
        .iter()
        .flat_map(|p| p.steps.iter().chain(&p.rollback))
    {
        if let Action::DeleteObject { backup, .. } = &step.action {
            let saved = step
                .commands
                .iter()
                .position(|c| c.contains(&format!("> {backup}")));
            let deleted = step.commands.iter().position(|c| c.contains(" delete "));
            let generated = backup.starts_with("artifacts/");
            assert!(
                generated || saved.is_some_and(|s| deleted.is_none_or(|d| s < d)),
                "{} deletes without backing up first: {:?}",
                step.id,
                step.commands
            );
        }
    }
    let removes_kube_proxy = all.iter().any(|s| matches!(&s.action, Action::DeleteObject { name, .. } if name == "kube-proxy"))
        || all.iter().any(|s| matches!(&s.action, Action::TalosPatch { file, .. } if file.ends_with("disable-kube-proxy.yaml")));
    if removes_kube_proxy {
        assert_eq!(plan.kube_proxy, "replace");
        assert_ne!(
            plan.to, "flannel",
            "kube-proxy removed with Flannel as the target"
        );
    }
    // Control planes after workers in every per-node sequence.
    let node_order: Vec<(&str, bool)> = all
        .iter()
        .filter_map(|s| match &s.action {
            Action::Drain { node }
            | Action::NodeClean { node, .. }
            | Action::RecreatePods { node } => Some(node.as_str()),
            _ => None,
        })
        .map(|n| {
            (
                n,
                plan.estimates
                    .per_node
                    .iter()
                    .any(|e| e.node == n && e.role == "control-plane"),
            )
        })
        .collect();
    for phase in &plan.phases {
        let mut seen_control_plane = false;
        for step in &phase.steps {
            if let Action::Drain { node } | Action::RecreatePods { node } = &step.action {
                let cp = node_order.iter().any(|(n, cp)| n == node && *cp);
                assert!(
                    cp || !seen_control_plane,
                    "worker {node} after a control plane in {}",
                    phase.name
                );
                seen_control_plane |= cp;
            }
        }
    }
}

mod generated {
    use super::*;
    use proptest::prelude::*;

    /// A kubectl-shaped cluster: `workers` + `control_planes` nodes over `zones` zones, the
    /// source CNI's DaemonSet and agent pods, an app pod per node, maybe kube-proxy.
    pub(super) fn cluster_yaml(
        source: CniKind,
        control_planes: usize,
        workers: usize,
        zones: usize,
        kube_proxy: bool,
    ) -> String {
        let (ns, ds, image) = match source {
            CniKind::Calico => (
                "calico-system",
                "calico-node",
                "quay.io/calico/node:v3.29.1",
            ),
            CniKind::Cilium => ("kube-system", "cilium", "quay.io/cilium/cilium:v1.16.5"),
            CniKind::Canal => ("kube-system", "canal", "docker.io/calico/node:v3.29.1"),
            CniKind::Weave => (
                "kube-system",
                "weave-net",
                "ghcr.io/weaveworks/launcher/weave-kube:2.8.1",
            ),
            _ => (
                "kube-flannel",
                "kube-flannel-ds",
                "ghcr.io/flannel-io/flannel:v0.25.1",
            ),
        };
        let mut out = String::new();
        let total = control_planes + workers;
        let mut daemonsets = vec![(ns, ds, image)];
        if kube_proxy {
            daemonsets.push((
                "kube-system",
                "kube-proxy",
                "registry.k8s.io/kube-proxy:v1.33.2",
            ));
        }
        for i in 0..total {
            let role = if i < control_planes {
                "    node-role.kubernetes.io/control-plane: \"\"\n"
            } else {
                ""
            };
            out.push_str(&format!(
                "apiVersion: v1\nkind: Node\nmetadata:\n  name: n{i}\n  labels:\n{role}    topology.kubernetes.io/zone: z{}\nspec:\n  podCIDR: 10.244.{i}.0/24\nstatus:\n  addresses:\n  - type: InternalIP\n    address: 192.168.1.{}\n  nodeInfo:\n    osImage: Debian GNU/Linux 12\n    kubeletVersion: v1.33.2\n  conditions:\n  - type: Ready\n    status: \"True\"\n---\n",
                i % zones.max(1),
                10 + i
            ));
            out.push_str(&format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: app-{i}\n  namespace: default\n  ownerReferences:\n  - kind: ReplicaSet\n    name: app\n    controller: true\nspec:\n  nodeName: n{i}\n  containers:\n  - name: app\n    image: app:1\nstatus:\n  phase: Running\n---\n"));
        }
        for (ns, name, image) in daemonsets {
            out.push_str(&format!("apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: {name}\n  namespace: {ns}\n  labels:\n    k8s-app: {name}\nspec:\n  selector:\n    matchLabels:\n      k8s-app: {name}\n  template:\n    metadata:\n      labels:\n        k8s-app: {name}\n    spec:\n      containers:\n      - name: {name}\n        image: {image}\nstatus:\n  desiredNumberScheduled: {total}\n  numberReady: {total}\n---\n"));
            for i in 0..total {
                out.push_str(&format!("apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}-{i}\n  namespace: {ns}\n  labels:\n    k8s-app: {name}\n  ownerReferences:\n  - kind: DaemonSet\n    name: {name}\n    controller: true\nspec:\n  nodeName: n{i}\n  hostNetwork: true\n  containers:\n  - name: {name}\n    image: {image}\nstatus:\n  phase: Running\n  conditions:\n  - type: Ready\n    status: \"True\"\n---\n"));
            }
        }
        out.push_str("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kubeadm-config\n  namespace: kube-system\ndata:\n  ClusterConfiguration: |\n    networking:\n      podSubnet: 10.244.0.0/16\n      serviceSubnet: 10.96.0.0/12\n");
        out
    }

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
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("cluster")).unwrap();
            std::fs::write(dir.path().join("cluster/all.yaml"), cluster_yaml(source, control_planes, workers, zones, kube_proxy)).unwrap();
            let snapshot = cniswap_snapshot::load(dir.path()).unwrap();
            let kube_proxy_choice = if replace { KubeProxyChoice::Replace } else { KubeProxyChoice::Keep };
            let opts = PlanOptions { kube_proxy: Some(kube_proxy_choice), batch_size: batch, ..options(target, strategy) };
            let facts = cniswap_facts::detect(&snapshot);
            prop_assert!(facts.cnis.iter().any(|c| c.kind == source && c.running), "{source} not detected");
            match cniswap_plan::plan(&snapshot, &facts, &opts) {
                Err(e) => {
                    // The only refusals: a strategy that cannot work here, or Flannel as kube-proxy's replacement.
                    let expected = e.message.contains("is not possible here") || (replace && target == CniKind::Flannel);
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
    let output = plan_for(&snapshot, &options(CniKind::Cilium, StrategyChoice::Auto)).unwrap();
    let plan = output.plan;
    assert_eq!(plan.strategy, "cutover", "{}", plan.strategy_reason);
    assert!(
        plan.strategy_reason.contains("bundled into k3s"),
        "{}",
        plan.strategy_reason
    );
    let settings = plan
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .find(|s| s.description.contains("/etc/rancher/k3s/config.yaml"))
        .unwrap();
    assert!(
        settings
            .commands
            .iter()
            .any(|c| c.contains("flannel-backend: none")),
        "{:?}",
        settings.commands
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
    assert!(
        !blocking.contains(&"CAL003") && blocking.contains(&"MIG003"),
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
    let install = output
        .plan
        .phases
        .iter()
        .flat_map(|p| &p.steps)
        .find(|s| s.description.starts_with("Install Flannel"))
        .unwrap();
    let at = |needle: &str| {
        install
            .commands
            .iter()
            .position(|c| c.contains(needle))
            .unwrap_or_else(|| panic!("{needle}: {:?}", install.commands))
    };
    assert!(
        at("create quota cniswap-hold --hard=pods=0")
            < at("kubectl apply -f artifacts/flannel/kube-flannel.yml")
    );
    assert!(at("kubectl apply -f artifacts/flannel/kube-flannel.yml") < at("nodeSelector"));
    assert!(at("nodeSelector") < at("delete quota cniswap-hold"));
    // The network is the cluster's; the manifest already carries it, so no edit is needed.
    assert!(install.commands.iter().any(
        |c| c == "grep -q '\"Network\": \"10.244.0.0/16\"' artifacts/flannel/kube-flannel.yml"
    ));
}

/// Canal and Weave are sources only: cutover to each target, with files that lint clean.
#[test]
fn canal_and_weave_clusters_cut_over_to_every_target() {
    for source in [CniKind::Canal, CniKind::Weave] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("cluster")).unwrap();
        std::fs::write(
            dir.path().join("cluster/all.yaml"),
            generated::cluster_yaml(source, 1, 3, 2, true),
        )
        .unwrap();
        let snapshot = cniswap_snapshot::load(dir.path()).unwrap();
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
            let cleans = output.plan.phases.iter().flat_map(|p| &p.steps).filter(|s| matches!(&s.action, Action::NodeClean { cni, .. } if *cni == source.to_string())).count();
            assert_eq!(cleans, 4, "{source} -> {target}: one node clean per node");
        }
    }
}
