//! Issue 17 item 6: rollbacks and runbooks. Calico's documented operator uninstall order,
//! forward and backward; waits that retry; the Omni step done when the control planes render
//! the new CNI; the Talos backup; stale backups; the cluster's name; current spellings;
//! firewall prerequisites.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

mod common;

use cniswap_model::CniKind;
use cniswap_plan::{Action, Probe, Step, StrategyChoice};
use common::{example, options, plan_for};

fn position(steps: &[Step], what: &str, pred: &dyn Fn(&Action) -> bool) -> usize {
    steps
        .iter()
        .position(|s| pred(&s.action))
        .unwrap_or_else(|| {
            panic!(
                "no step {what} in {:#?}",
                steps.iter().map(|s| &s.description).collect::<Vec<_>>()
            )
        })
}

fn deletes(kind: &'static str) -> impl Fn(&Action) -> bool {
    move |a| matches!(a, Action::DeleteObject { object, .. } if object.kind == kind)
}

fn waits_for_teardown(a: &Action) -> bool {
    let Action::Verify { probes, .. } = a else {
        return false;
    };
    let empty = |ns: &str| {
        probes
            .iter()
            .any(|p| matches!(p, Probe::NoPods { namespace } if namespace == ns))
    };
    empty("calico-system")
        && empty("calico-apiserver")
        && probes.iter().any(|p| matches!(p, Probe::Absent { object } if object.kind == "apiservice" && object.name == "v3.projectcalico.org"))
}

fn deletes_calico_crds(a: &Action) -> bool {
    matches!(a, Action::DeleteCrds { groups, .. } if groups.iter().any(|g| g == "projectcalico.org"))
}

/// The old CNI is the Tigera operator's Calico: its cleanup keeps Calico's documented order
/// (APIServer and Installation while the operator runs, then the wait for calico-system,
/// calico-apiserver and the APIService, then the operator, the CRDs last), and the rollback
/// puts the custom resources back after the operator and CRDs.
#[test]
fn operator_calico_is_removed_in_the_documented_order() {
    let plan = plan_for(
        &example("kubeadm-calico-vxlan"),
        &options(CniKind::Cilium, StrategyChoice::Cutover),
    )
    .unwrap()
    .plan;
    let cleanup = plan.phases.last().unwrap();
    let steps = &cleanup.steps;
    let nowhere = position(
        steps,
        "nodeSelector patch",
        &|a| matches!(a, Action::PatchObject { object, patch, .. } if object.kind == "installation" && patch.contains("nodeSelector")),
    );
    let operator = position(
        steps,
        "operator start",
        &|a| matches!(a, Action::ScaleDeployment { name, replicas, .. } if name == "tigera-operator" && *replicas > 0),
    );
    let apiserver = position(steps, "APIServer delete", &deletes("apiserver"));
    let installation = position(steps, "Installation delete", &deletes("installation"));
    let wait = position(steps, "teardown wait", &waits_for_teardown);
    let namespace = position(
        steps,
        "operator removal",
        &|a| matches!(a, Action::DeleteObject { object, .. } if object.kind == "namespace" && object.name == "tigera-operator"),
    );
    let crds = position(steps, "CRD delete", &deletes_calico_crds);
    assert!(
        nowhere < operator
            && operator < apiserver
            && apiserver < installation
            && installation < wait
            && wait < namespace
            && namespace < crds,
        "order: {nowhere} {operator} {apiserver} {installation} {wait} {namespace} {crds}"
    );

    // Backward: CRDs, the operator, then the APIServer and the Installation from backups, and
    // the nodeSelector patch undone from the backup taken before it.
    let back = &cleanup.rollback;
    let restores = |file: &'static str| move |a: &Action| matches!(a, Action::RestoreBackup { path, .. } if path.contains(file));
    let crds_back = position(back, "CRD restore", &restores("-crds/"));
    let operator_back = position(
        back,
        "operator reinstall",
        &|a| matches!(a, Action::ManualGate { question, .. } if question.contains("Tigera operator")),
    );
    let installation_back = position(back, "Installation restore", &restores("installation"));
    let apiserver_back = position(back, "APIServer restore", &restores("apiserver"));
    assert!(crds_back < operator_back && operator_back < installation_back.min(apiserver_back));
    let patch = steps[nowhere].action.backup().unwrap();
    let delete = steps[installation].action.backup().unwrap();
    assert_eq!(
        patch, delete,
        "the Installation is saved once, before the patch; the delete keeps that copy"
    );
}

/// The target is Calico by the operator: rolling the install back deletes the APIServer and
/// the Installation and waits for the teardown before the operator's release goes, and the
/// CRDs (which helm keeps) after it.
#[test]
fn a_calico_install_rolls_back_in_the_documented_order() {
    let plan = plan_for(
        &example("talos-flannel-homelab"),
        &options(CniKind::Calico, StrategyChoice::Cutover),
    )
    .unwrap()
    .plan;
    let phase = plan
        .phases
        .iter()
        .find(|p| {
            p.steps.iter().any(
                |s| matches!(&s.action, Action::HelmUpgrade { release, .. } if release == "calico"),
            )
        })
        .expect("a phase installs the operator");
    let back = &phase.rollback;
    let apiserver = position(back, "APIServer delete", &deletes("apiserver"));
    let installation = position(back, "Installation delete", &deletes("installation"));
    let wait = position(back, "teardown wait", &waits_for_teardown);
    let release = position(
        back,
        "release rollback",
        &|a| matches!(a, Action::HelmRollback { release, .. } if release == "calico"),
    );
    let crds = position(back, "CRD delete", &deletes_calico_crds);
    assert!(
        apiserver < installation && installation < wait && wait < release && release < crds,
        "order: {apiserver} {installation} {wait} {release} {crds}"
    );
}

/// A wait in the runbook for something another controller does (an object going, a namespace
/// emptying) retries until its time is up instead of failing at once, in a subshell; the
/// operator's TigeraStatus, created by the operator after helm returns, is awaited to exist
/// before its condition.
#[test]
fn runbook_waits_retry_until_their_time_is_up() {
    let plan = plan_for(
        &example("kubeadm-calico-vxlan"),
        &options(CniKind::Cilium, StrategyChoice::Cutover),
    )
    .unwrap()
    .plan;
    let wait = common::all_steps(&plan)
        .into_iter()
        .find(|s| waits_for_teardown(&s.action))
        .unwrap();
    for command in &wait.commands {
        assert!(
            command.starts_with("( t=0; while out=$(") && command.ends_with("done; exit 1 )"),
            "{command}"
        );
        assert!(common::parses(command), "{command}");
    }
    // Run against a kubectl that still finds the object once, then not: the wait passes on
    // its second read; a kubectl that cannot reach the cluster fails it at once.
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = |body: &str| {
        let path = bin.join("kubectl");
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&path)
            .status()
            .unwrap();
    };
    let path = format!("{}:/usr/bin:/bin", bin.display());
    let first = wait
        .commands
        .iter()
        .find(|c| c.contains("get installation default"))
        .unwrap();
    script("[ -e seen ] && exit 0; touch seen; printf 'installation.operator.tigera.io/default'");
    let started = std::time::Instant::now();
    assert!(common::run_sh(first, dir.path(), &path), "{first}");
    assert!(
        started.elapsed() >= std::time::Duration::from_secs(4),
        "it waited for the second read"
    );
    script("exit 1");
    let started = std::time::Instant::now();
    assert!(!common::run_sh(first, dir.path(), &path), "{first}");
    assert!(started.elapsed() < std::time::Duration::from_secs(4));
    let to_calico = plan_for(
        &example("talos-flannel-homelab"),
        &options(CniKind::Calico, StrategyChoice::Cutover),
    )
    .unwrap()
    .plan;
    let commands = common::commands(&to_calico);
    let status = commands
        .iter()
        .find(|c| c.contains("tigerastatus/calico"))
        .unwrap();
    assert!(
        status.contains("--for=create"),
        "a TigeraStatus not created yet is waited for: {status}"
    );
}

/// The homelab cluster managed by Omni, known from its nodes' labels.
fn omni_homelab() -> (tempfile::TempDir, cniswap_snapshot::Snapshot) {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["cluster", "talos"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for entry in
            std::fs::read_dir(common::examples().join("talos-flannel-homelab").join(sub)).unwrap()
        {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.path().join(sub).join(entry.file_name())).unwrap();
        }
    }
    let mut snapshot = cniswap_snapshot::load(dir.path()).unwrap();
    for node in &mut snapshot.objects.nodes {
        node.metadata
            .labels
            .insert("omni.sidero.dev/cluster".into(), "homelab".into());
    }
    (dir, snapshot)
}

/// Omni renders a ConfigPatch into the machines later: each patch step is followed by a wait
/// until every machine of the role (the control planes first) has it in its config, and the
/// runbook shows only the CNI and proxy parts of a config (it holds secrets).
#[test]
fn an_omni_patch_is_done_when_the_machines_render_it() {
    let (_dir, snapshot) = omni_homelab();
    let opts = cniswap_plan::PlanOptions {
        kube_proxy: Some(cniswap_plan::KubeProxyChoice::Keep),
        ..options(CniKind::Cilium, StrategyChoice::Cutover)
    };
    let plan = plan_for(&snapshot, &opts).unwrap().plan;
    let steps = common::steps(&plan);
    let control_planes: Vec<String> = plan
        .estimates
        .per_node
        .iter()
        .filter(|n| n.role == "control-plane")
        .map(|n| n.node.clone())
        .collect();
    let mut patches = 0;
    for (i, step) in steps.iter().enumerate() {
        let Action::OmniConfigPatch {
            patch_id,
            remove: false,
            ..
        } = &step.action
        else {
            continue;
        };
        patches += 1;
        let Action::Verify { probes, .. } = &steps[i + 1].action else {
            panic!("{patch_id} is not followed by a wait for its rendering");
        };
        let [Probe::TalosConfigHas { nodes, file, .. }] = probes.as_slice() else {
            panic!("{probes:?}");
        };
        assert!(file.starts_with("artifacts/talos/"), "{file}");
        if patch_id.ends_with("-controlplane") {
            assert_eq!(nodes, &control_planes);
        }
        for command in &steps[i + 1].commands {
            assert!(
                command.contains("| grep -E -A3"),
                "only a filtered config: {command}"
            );
        }
    }
    assert!(patches >= 2, "a patch per role");
}

/// On Talos the backup snapshot holds every node's machine config (redacted by the reader)
/// and uses the current spelling of the output directory.
#[test]
fn the_talos_backup_saves_the_machine_configs() {
    let plan = plan_for(
        &example("talos-flannel-homelab"),
        &options(CniKind::Cilium, StrategyChoice::Rolling),
    )
    .unwrap()
    .plan;
    let step = common::steps(&plan)
        .into_iter()
        .find(|s| matches!(s.action, Action::Snapshot { .. }))
        .unwrap();
    let Action::Snapshot { talos_nodes, .. } = &step.action else {
        unreachable!()
    };
    assert_eq!(talos_nodes.len(), plan.estimates.per_node.len());
    let command = &step.commands[0];
    assert!(
        command.contains("--out-dir backups/snapshot.tmp")
            && command.contains(&format!("--talos-nodes '{}'", talos_nodes.join(","))),
        "{command}"
    );
    let kubeadm = plan_for(
        &example("kubeadm-calico-vxlan"),
        &options(CniKind::Cilium, StrategyChoice::Cutover),
    )
    .unwrap()
    .plan;
    let step = common::steps(&kubeadm)
        .into_iter()
        .find(|s| matches!(s.action, Action::Snapshot { .. }))
        .unwrap();
    assert!(matches!(&step.action, Action::Snapshot { talos_nodes, .. } if talos_nodes.is_empty()));
    assert!(!step.commands[0].contains("--talos-nodes"));
}

/// The cluster's own name, with where it was read: Talos' clusterName, kubeadm's, or said to
/// be unknown; never the word "cluster" made up.
#[test]
fn plans_name_the_cluster_from_its_records() {
    let talos = plan_for(
        &example("talos-flannel-homelab"),
        &options(CniKind::Cilium, StrategyChoice::Cutover),
    )
    .unwrap();
    assert_eq!(talos.plan.cluster, "homelab");
    let runbook = common::file(&talos, "runbook.md");
    assert!(runbook.lines().next().unwrap().ends_with("on homelab"));
    let fact = talos
        .plan
        .proven
        .iter()
        .find(|p| p.fact == "cluster name")
        .unwrap();
    assert!(fact.source.contains("clusterName"), "{fact:?}");

    let named = common::cluster_yaml(CniKind::Flannel, 1, 2, 1, true).replace(
        "    networking:\n",
        "    clusterName: prod-eu\n    networking:\n",
    );
    let (_dir, snapshot) = common::generated_snapshot(&named);
    let out = plan_for(
        &snapshot,
        &options(CniKind::Cilium, StrategyChoice::Cutover),
    )
    .unwrap();
    assert_eq!(out.plan.cluster, "prod-eu");

    let (_dir, snapshot) =
        common::generated_snapshot(&common::cluster_yaml(CniKind::Flannel, 1, 2, 1, true));
    let out = plan_for(
        &snapshot,
        &options(CniKind::Cilium, StrategyChoice::Cutover),
    )
    .unwrap();
    assert_eq!(out.plan.cluster, "unnamed");
    let fact = out
        .plan
        .proven
        .iter()
        .find(|p| p.fact == "cluster name")
        .unwrap();
    assert!(fact.source.starts_with("no record names it"), "{fact:?}");
}

fn firewall(plan: &cniswap_plan::Plan) -> String {
    plan.estimates
        .risks
        .iter()
        .find(|r| r.effect.contains("needs these open between the nodes"))
        .map(|r| format!("{} | {}", r.effect, r.handling))
        .unwrap_or_else(|| panic!("no firewall prerequisite: {:#?}", plan.estimates.risks))
}

/// Each target's ports, as the plan configures it, are stated with their upstream source.
#[test]
fn the_new_cnis_ports_are_stated_before_the_install() {
    let rolling = plan_for(
        &example("talos-flannel-homelab"),
        &options(CniKind::Cilium, StrategyChoice::Rolling),
    )
    .unwrap()
    .plan;
    let text = firewall(&rolling);
    for needed in ["UDP 8473", "TCP 4240", "ICMP", "TCP 4244", "docs.cilium.io"] {
        assert!(text.contains(needed), "{needed}: {text}");
    }
    let calico = plan_for(
        &example("talos-flannel-homelab"),
        &options(CniKind::Calico, StrategyChoice::Cutover),
    )
    .unwrap()
    .plan;
    let text = firewall(&calico);
    for needed in ["UDP 4789", "TCP 5473", "TCP 5443", "docs.tigera.io"] {
        assert!(text.contains(needed), "{needed}: {text}");
    }
    let flannel = plan_for(
        &example("kubeadm-calico-vxlan"),
        &options(CniKind::Flannel, StrategyChoice::Cutover),
    )
    .unwrap()
    .plan;
    let text = firewall(&flannel);
    assert!(
        text.contains("UDP 8472") && !text.contains("4789"),
        "{text}"
    );
}

/// Issue 17 item 4 (part): Calico on k3s carries `containerIPForwarding: Enabled` in its
/// Installation; on kubeadm it does not.
#[test]
fn calico_on_k3s_forwards_in_the_pods() {
    let k3s = common::cluster_yaml(CniKind::Flannel, 1, 2, 1, true)
        .replace("kubeletVersion: v1.33.2", "kubeletVersion: v1.33.2+k3s1");
    let (_dir, snapshot) = common::generated_snapshot(&k3s);
    assert_eq!(
        cniswap_facts::detect(&snapshot).platform.kind,
        cniswap_model::PlatformKind::K3s
    );
    let out = plan_for(
        &snapshot,
        &options(CniKind::Calico, StrategyChoice::Cutover),
    )
    .unwrap();
    let values: serde_json::Value =
        serde_saphyr::from_str(common::file(&out, "artifacts/calico/values.yaml")).unwrap();
    assert_eq!(
        values["installation"]["calicoNetwork"]["containerIPForwarding"],
        "Enabled"
    );
    let (_dir, snapshot) =
        common::generated_snapshot(&common::cluster_yaml(CniKind::Flannel, 1, 2, 1, true));
    let out = plan_for(
        &snapshot,
        &options(CniKind::Calico, StrategyChoice::Cutover),
    )
    .unwrap();
    let values: serde_json::Value =
        serde_saphyr::from_str(common::file(&out, "artifacts/calico/values.yaml")).unwrap();
    assert!(values["installation"]["calicoNetwork"]["containerIPForwarding"].is_null());
}

/// Issue 17 item 6: the runbook retires each phase's backups after its rollback, as `cniswap
/// apply` does, and the command it prints moves them aside (never deletes) in a real shell.
#[test]
fn the_runbook_retires_a_rolled_back_phases_backups() {
    let out = plan_for(
        &example("kubeadm-calico-vxlan"),
        &options(CniKind::Cilium, StrategyChoice::Cutover),
    )
    .unwrap();
    let runbook = common::file(&out, "runbook.md");
    let preflight = &out.plan.phases[0];
    let files = preflight.backups_written();
    assert!(files.contains(&"backups/snapshot".to_string()), "{files:?}");
    assert!(
        files.contains(&"backups/objects.yaml".to_string()),
        "{files:?}"
    );
    let section = runbook
        .split("### Rollback of phase 1")
        .nth(1)
        .and_then(|s| s.split("## Phase 2").next())
        .unwrap();
    assert!(section.contains("retire the phase's backups"), "{section}");
    let command = section
        .lines()
        .find(|l| l.starts_with("for f in"))
        .unwrap_or_else(|| panic!("{section}"));
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("backups/snapshot/cluster")).unwrap();
    std::fs::write(dir.path().join("backups/objects.yaml"), "kind: DaemonSet\n").unwrap();
    let ran = std::process::Command::new("sh")
        .arg("-ec")
        .arg(command)
        .current_dir(dir.path())
        .status()
        .unwrap();
    assert!(ran.success());
    let names: Vec<String> = std::fs::read_dir(dir.path().join("backups"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(!names.contains(&"objects.yaml".to_string()), "{names:?}");
    assert!(
        names.iter().any(|n| n.starts_with("objects.yaml.retired-")),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n.starts_with("snapshot.retired-")),
        "{names:?}"
    );
}
