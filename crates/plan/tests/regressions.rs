//! One regression test per defect of issue 9 §2 and §3 (the mechanical checks over every plan
//! are in all_plans.rs, hostile input in hostile.rs).

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

mod common;

use cniswap_model::CniKind;
use cniswap_plan::{
    Action, InstallChoice, KubeProxyChoice, PlanOptions, Probe, RebootChoice, StrategyChoice,
};
use common::{example, file, options, plan_for, steps};

fn position(plan: &cniswap_plan::Plan, pred: impl Fn(&Action) -> bool) -> usize {
    steps(plan)
        .iter()
        .position(|s| pred(&s.action))
        .unwrap_or_else(|| panic!("no such step"))
}

/// Item 1: Flannel -> Calico on Talos: the migration Job is rendered for Talos' Flannel
/// (kube-system/kube-flannel, VXLAN 4789), Talos stops rendering Flannel before the Job runs,
/// and Flannel is removed only once calico-node runs on every node.
#[test]
fn item_1_calico_migration_job_is_rendered_for_the_clusters_flannel() {
    let out = plan_for(
        &example("talos-flannel-homelab"),
        &options(CniKind::Calico, StrategyChoice::Rolling),
    )
    .unwrap();
    let patch: serde_json::Value = serde_saphyr::from_str(file(
        &out,
        "artifacts/calico/flannel-migration/job-env-patch.yaml",
    ))
    .unwrap();
    let env = &patch["spec"]["template"]["spec"]["containers"][0]["env"];
    let value = |name: &str| {
        env.as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .map(|e| e["value"].as_str().unwrap().to_string())
    };
    assert_eq!(
        value("FLANNEL_DAEMONSET_NAME").as_deref(),
        Some("kube-flannel")
    );
    assert_eq!(
        value("FLANNEL_DAEMONSET_NAMESPACE").as_deref(),
        Some("kube-system")
    );
    assert_eq!(value("FLANNEL_PORT").as_deref(), Some("4789"));
    assert_eq!(value("FLANNEL_VNI").as_deref(), Some("1"));
    let plan = &out.plan;
    let talos = position(
        plan,
        |a| matches!(a, Action::TalosPatch { file, .. } if file.ends_with("disable-flannel.yaml")),
    );
    let render = position(
        plan,
        |a| matches!(a, Action::RenderManifest { file, .. } if file.ends_with("rendered-job.yaml")),
    );
    let job = position(
        plan,
        |a| matches!(a, Action::ApplyManifest { file } if file.ends_with("rendered-job.yaml")),
    );
    let wait = position(plan, |a| matches!(a, Action::WaitJob { .. }));
    let proven = position(plan, |a| {
        matches!(a, Action::Verify { probes, .. }
            if probes.iter().any(|p| matches!(p, Probe::AgentsReady { daemonset, .. } if daemonset == "calico-node"))
            && probes.iter().any(|p| matches!(p, Probe::NoNodeLabelled { key, except: Some(v) } if key == "projectcalico.org/node-network-during-migration" && v == "calico")))
    });
    let delete = position(
        plan,
        |a| matches!(a, Action::DeleteObject { object, .. } if object.name == "kube-flannel" && object.kind == "daemonset"),
    );
    assert!(talos < job && render < job && job < wait && wait < proven && proven < delete);
    // Nothing sets the environment of a Job that already ran.
    assert!(!common::commands(plan).iter().any(|c| c.contains("set env")));
}

/// Item 2: Rolling to Cilium: the final values are followed by a restart of the agents and the
/// operator and a check that every agent reports kube-proxy replacement, before kube-proxy
/// goes.
#[test]
fn item_2_final_values_restart_the_agents_before_kube_proxy_goes() {
    let opts = PlanOptions {
        kube_proxy: Some(KubeProxyChoice::Replace),
        ..options(CniKind::Cilium, StrategyChoice::Rolling)
    };
    let plan = plan_for(&example("kubeadm-calico-vxlan"), &opts)
        .unwrap()
        .plan;
    let all = steps(&plan);
    let install = position(
        &plan,
        |a| matches!(a, Action::HelmUpgrade { values, .. } if values[0].ends_with("values-final.yaml")),
    );
    let after = |pred: &dyn Fn(&Action) -> bool| {
        install + all[install..].iter().position(|s| pred(&s.action)).unwrap()
    };
    // The agents restart node by node (each a node step), then the operator.
    let agents =
        after(&|a| matches!(a, Action::RestartAgent { daemonset, .. } if daemonset == "cilium"));
    let restarted: Vec<&str> = all[install..]
        .iter()
        .filter_map(|s| match &s.action {
            Action::RestartAgent { node, .. } => Some(node.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(restarted.len(), plan.estimates.per_node.len());
    let operator =
        after(&|a| matches!(a, Action::RolloutRestart { name, .. } if name == "cilium-operator"));
    let check = after(&|a| {
        matches!(a, Action::VerifySettings { settings, report: Some(r), .. }
            if settings.iter().any(|s| s.key == "kube-proxy-replacement" && s.value == "true")
            && r.line.contains("True"))
    });
    let kube_proxy = position(
        &plan,
        |a| matches!(a, Action::DeleteObject { object, .. } if object.name == "kube-proxy"),
    );
    assert!(install < agents && agents < operator && operator < check && check < kube_proxy);
}

/// Item 3: The migration and final installs prove their own values (a digest in the release
/// description); their checks differ.
#[test]
fn item_3_helm_checks_prove_their_own_values() {
    let plan = plan_for(
        &example("talos-flannel-to-cilium-half-migrated"),
        &options(CniKind::Cilium, StrategyChoice::Rolling),
    )
    .unwrap()
    .plan;
    let upgrades: Vec<&cniswap_plan::Step> = steps(&plan)
        .into_iter()
        .filter(|s| matches!(s.action, Action::HelmUpgrade { .. }))
        .collect();
    assert_eq!(upgrades.len(), 2);
    assert_ne!(upgrades[0].check, upgrades[1].check);
    for step in upgrades {
        let Action::HelmUpgrade { values_sha256, .. } = &step.action else {
            unreachable!()
        };
        assert!(step.check.as_ref().unwrap().contains(values_sha256));
        assert!(step.commands.iter().any(|c| c.contains(&format!(
            "--description=cniswap values sha256:{values_sha256}"
        ))));
    }
}

/// Item 4: Node cleans run the agent in kube-system, attached; the dry run comes first and is
/// seen; nothing uses `kubectl debug`.
#[test]
fn item_4_node_cleans_run_attached_in_kube_system() {
    let plan = plan_for(
        &example("talos-flannel-homelab"),
        &options(CniKind::Cilium, StrategyChoice::Cutover),
    )
    .unwrap()
    .plan;
    let cleans: Vec<&cniswap_plan::Step> = steps(&plan)
        .into_iter()
        .filter(|s| matches!(s.action, Action::NodeClean { .. }))
        .collect();
    assert_eq!(cleans.len(), 6, "a dry run and a clean per node");
    for pair in cleans.chunks(2) {
        assert!(matches!(
            pair[0].action,
            Action::NodeClean { dry_run: true, .. }
        ));
        assert!(matches!(
            pair[1].action,
            Action::NodeClean { dry_run: false, .. }
        ));
        for step in pair {
            let run = step.commands.iter().find(|c| c.contains(" run ")).unwrap();
            assert!(
                run.starts_with("kubectl -n kube-system run cniswap-clean"),
                "{run}"
            );
            assert!(run.contains("--rm --attach"), "{run}");
        }
    }
    assert!(
        !common::commands(&plan)
            .iter()
            .any(|c| c.contains("kubectl debug"))
    );
}

/// Item 5: Calico sources: the condition Calico leaves is cleared; calico-node is scheduled on
/// no node before the Tigera operator starts again, and every node loses Calico's CNI config.
#[test]
fn item_5_calico_leaves_no_condition_and_no_config() {
    let plan = plan_for(
        &example("kubeadm-calico-vxlan"),
        &options(CniKind::Flannel, StrategyChoice::Cutover),
    )
    .unwrap()
    .plan;
    for node in &plan.estimates.per_node {
        assert!(steps(&plan).iter().any(|s| matches!(&s.action, Action::ClearNodeCondition { node: n, condition } if *n == node.node && condition == "NetworkUnavailable")));
    }
    let cleanup = plan.phases.last().unwrap();
    let at = |pred: &dyn Fn(&Action) -> bool| {
        cleanup.steps.iter().position(|s| pred(&s.action)).unwrap()
    };
    // calico-node is scheduled nowhere before the operator starts; the Installation goes
    // while the operator runs (Calico's documented order, tests/runbooks.rs).
    let nowhere =
        at(&|a| matches!(a, Action::PatchObject { object, .. } if object.kind == "installation"));
    let operator = at(
        &|a| matches!(a, Action::ScaleDeployment { name, replicas: 1, .. } if name == "tigera-operator"),
    );
    let installation =
        at(&|a| matches!(a, Action::DeleteObject { object, .. } if object.kind == "installation"));
    let files = at(
        &|a| matches!(a, Action::NodeFiles { remove, .. } if remove.iter().any(|f| f.ends_with("10-calico.conflist"))),
    );
    let inventory = at(
        &|a| matches!(a, Action::Verify { probes, .. } if probes.iter().any(|p| matches!(p, Probe::NodeInventory { .. }))),
    );
    assert!(
        nowhere < operator && operator < installation && installation < files && files < inventory
    );
}

/// Item 6: Unknown kube-proxy presence refuses with a question; with an answer, kube-proxy is
/// deleted before any node clean touches its state.
#[test]
fn item_6_unknown_kube_proxy_asks() {
    // The homelab cluster with the kube-system DaemonSets left out of the snapshot.
    let dir = tempfile::tempdir().unwrap();
    let cluster = dir.path().join("cluster");
    std::fs::create_dir_all(&cluster).unwrap();
    for entry in std::fs::read_dir(common::examples().join("kubeadm-calico-vxlan/cluster")).unwrap()
    {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), cluster.join(entry.file_name())).unwrap();
    }
    let mut snapshot = cniswap_snapshot::load(dir.path()).unwrap();
    snapshot
        .objects
        .daemonsets
        .retain(|d| d.metadata.namespace() != "kube-system");
    let facts = cniswap_facts::detect(&snapshot);
    let err = cniswap_plan::plan(
        &snapshot,
        &facts,
        &options(CniKind::Cilium, StrategyChoice::Cutover),
    )
    .err()
    .unwrap();
    assert!(
        err.message.contains("cannot tell whether it runs"),
        "{}",
        err.message
    );
    assert!(err.help.contains("--kube-proxy keep") && err.help.contains("--kube-proxy replace"));
    let opts = PlanOptions {
        kube_proxy: Some(KubeProxyChoice::Replace),
        ..options(CniKind::Cilium, StrategyChoice::Cutover)
    };
    let plan = cniswap_plan::plan(&snapshot, &facts, &opts).unwrap();
    let delete = position(
        &plan.plan,
        |a| matches!(a, Action::DeleteObject { object, .. } if object.name == "kube-proxy"),
    );
    let clean = position(&plan.plan, |a| {
        matches!(
            a,
            Action::NodeClean {
                include_kube_proxy: true,
                ..
            }
        )
    });
    assert!(delete < clean);
}

/// Item 7: Flannel -> Calico rollback gives each node back to Flannel before Calico goes from
/// the cluster: per node drain, Calico off (label `none`), its state cleaned (its VXLAN device
/// holds Flannel's port and VNI), Flannel back (label `flannel`), renewal (a reboot on Talos),
/// check, uncordon; a guard first proves Flannel's DaemonSet is still there.
#[test]
fn item_7_calico_migration_rollback_is_calicos_revert() {
    let plan = plan_for(
        &example("talos-flannel-homelab"),
        &options(CniKind::Calico, StrategyChoice::Rolling),
    )
    .unwrap()
    .plan;
    let phase = plan
        .phases
        .iter()
        .find(|p| p.name == "Migrate with Calico's controller")
        .unwrap();
    let at = |pred: &dyn Fn(&Action) -> bool| {
        phase
            .rollback
            .iter()
            .position(|s| pred(&s.action))
            .unwrap_or_else(|| panic!("missing in {:#?}", phase.rollback))
    };
    let guard = at(
        &|a| matches!(a, Action::Verify { probes, .. } if probes.iter().any(|p| matches!(p, Probe::Present { .. }))),
    );
    let remove_calico = at(
        &|a| matches!(a, Action::DeleteManifest { file, .. } if file.contains("calico") && !file.contains("job")),
    );
    for node in &plan.estimates.per_node {
        let n = node.node.as_str();
        let label = |value: &'static str| {
            at(
                &move |a| matches!(a, Action::LabelNode { node, value: Some(v), .. } if node == n && v == value),
            )
        };
        let drain = at(&|a| matches!(a, Action::Drain { node, .. } if node == n));
        let clean = at(
            &|a| matches!(a, Action::NodeClean { node, cni, dry_run: false, .. } if node == n && cni == "calico"),
        );
        let reboot = at(&|a| matches!(a, Action::RebootNode { node, .. } if node == n));
        let uncordon = phase
            .rollback
            .iter()
            .rposition(|s| matches!(&s.action, Action::Uncordon { node, .. } if node == n))
            .unwrap();
        let first_uncordon = at(
            &|a| matches!(a, Action::PatchObject { object, patch, .. } if object.name == n && patch.contains("unschedulable")),
        );
        assert!(guard < first_uncordon && first_uncordon < drain);
        let (off, back) = (label("none"), label("flannel"));
        assert!(guard < drain && drain < off && off < clean && clean < back);
        // Labelled before the reboot: the node needs Flannel's config to come back Ready.
        assert!(back < reboot && reboot < uncordon && uncordon < remove_calico);
    }
    assert!(phase.rollback.iter().any(|s| matches!(&s.action, Action::NodeSelector { key, value: None, .. } if key == "projectcalico.org/node-network-during-migration")));
}

/// Item 8: Rolling Cilium rollback recreates the CiliumNodeConfig the finish phase deletes, before
/// the agents go back to the migration values.
#[test]
fn item_8_rollback_recreates_the_cilium_node_config() {
    let plan = plan_for(
        &example("talos-flannel-homelab"),
        &options(CniKind::Cilium, StrategyChoice::Rolling),
    )
    .unwrap()
    .plan;
    let finish = plan.phases.iter().find(|p| p.name == "Finish").unwrap();
    assert!(finish.steps.iter().any(|s| matches!(&s.action, Action::DeleteObject { object, .. } if object.kind == "ciliumnodeconfig")));
    let recreate = finish
        .rollback
        .iter()
        .position(|s| matches!(&s.action, Action::ApplyManifest { file } if file.ends_with("ciliumnodeconfig.yaml")))
        .unwrap();
    let migration = finish
        .rollback
        .iter()
        .position(|s| matches!(&s.action, Action::HelmUpgrade { values, .. } if values[0].ends_with("values-migration.yaml")))
        .unwrap();
    let restart = finish
        .rollback
        .iter()
        .position(|s| matches!(&s.action, Action::RolloutRestart { name, .. } if name == "cilium"))
        .unwrap();
    assert!(recreate < migration && migration < restart);
}

/// Item 9: A download creates its directory (curl exits 23 when it does not exist).
#[test]
fn item_9_downloads_create_their_directory() {
    let plan = plan_for(
        &example("kubeadm-calico-vxlan"),
        &options(CniKind::Flannel, StrategyChoice::Cutover),
    )
    .unwrap()
    .plan;
    let download = steps(&plan)
        .into_iter()
        .find(|s| matches!(s.action, Action::Download { .. }))
        .unwrap();
    let Action::Download { file, .. } = &download.action else {
        unreachable!()
    };
    let dir = tempfile::tempdir().unwrap();
    // A curl that, like the real one, fails when the output's directory does not exist.
    let bin = dir.path().join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::fs::write(
        bin.join("curl"),
        "#!/bin/sh\nwhile [ \"$1\" != -o ]; do shift; done\nprintf 'kind: DaemonSet\\n' > \"$2\" || exit 23\n",
    )
    .unwrap();
    std::process::Command::new("chmod")
        .arg("+x")
        .arg(bin.join("curl"))
        .status()
        .unwrap();
    let path = format!("{}:/usr/bin:/bin", bin.display());
    assert!(
        common::run_sh(&download.commands[0], dir.path(), &path),
        "{:?}",
        download.commands
    );
    assert!(dir.path().join(file).exists());
}

/// Item 10: The agent image is a plan parameter; the runbook says every node must pull it.
#[test]
fn item_10_agent_image_is_a_parameter() {
    let opts = PlanOptions {
        agent_image: Some("registry.example.com/mirror/cniswap:0.1.0".into()),
        ..options(CniKind::Cilium, StrategyChoice::Cutover)
    };
    let out = plan_for(&example("talos-flannel-homelab"), &opts).unwrap();
    assert_eq!(
        out.plan.agent_image,
        "registry.example.com/mirror/cniswap:0.1.0"
    );
    for step in steps(&out.plan) {
        if let Action::NodeClean { pod, .. } = &step.action {
            assert_eq!(pod.image, "registry.example.com/mirror/cniswap:0.1.0");
        }
    }
    assert!(file(&out, "runbook.md").contains("every node must be able to pull it"));
    let default = plan_for(
        &example("talos-flannel-homelab"),
        &options(CniKind::Cilium, StrategyChoice::Cutover),
    )
    .unwrap();
    assert_eq!(
        default.plan.agent_image,
        cniswap_plan::default_agent_image()
    );
    assert!(
        default
            .plan
            .agent_image
            .starts_with("ghcr.io/cniswap/cniswap:")
    );
}

/// The homelab cluster managed by Omni, known only from its nodes' labels.
fn omni_by_labels(extra: Option<(&str, &str)>) -> (tempfile::TempDir, cniswap_snapshot::Snapshot) {
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
    if let Some((path, text)) = extra {
        let file = dir.path().join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    let mut snapshot = cniswap_snapshot::load(dir.path()).unwrap();
    for node in &mut snapshot.objects.nodes {
        node.metadata
            .labels
            .insert("omni.sidero.dev/cluster".into(), "homelab".into());
    }
    (dir, snapshot)
}

/// Item 11: Omni: ConfigPatches carry the cluster's name; fresh leaves configs and bootstrap to
/// Omni; no talosctl runs with an empty node list; a broken existing patch is replaced.
#[test]
fn item_11_omni_names_fresh_and_broken_patches() {
    let (_dir, snapshot) = omni_by_labels(None);
    let opts = PlanOptions {
        kube_proxy: Some(KubeProxyChoice::Keep),
        ..options(CniKind::Cilium, StrategyChoice::Cutover)
    };
    let out = plan_for(&snapshot, &opts).unwrap();
    let patch: serde_json::Value = serde_saphyr::from_str(file(
        &out,
        "artifacts/omni/400-cniswap-disable-flannel-worker.yaml",
    ))
    .unwrap();
    assert_eq!(
        patch["metadata"]["labels"]["omni.sidero.dev/cluster"],
        "homelab"
    );
    assert_eq!(
        patch["metadata"]["labels"]["omni.sidero.dev/machine-set"],
        "homelab-workers"
    );
    for c in common::commands(&out.plan) {
        assert!(
            !c.contains("talosctl -n  ") && !c.contains("talosctl -n ''"),
            "{c}"
        );
        assert!(
            !(c.contains("talosctl") && c.contains("patch machineconfig")),
            "Omni owns the configs: {c}"
        );
    }

    // Fresh on Omni: no gen config, no bootstrap.
    let mut fresh = snapshot.clone();
    fresh.objects.nodes.clear();
    fresh.objects.pods.clear();
    let mut template = fresh.clone();
    template
        .omni_templates
        .push(cniswap_snapshot::OmniTemplateSource {
            file: "omni/cluster.yaml".into(),
            cluster: Some("homelab".into()),
            talos_version: None,
            kubernetes_version: None,
        });
    let out = plan_for(&template, &options(CniKind::Cilium, StrategyChoice::Fresh)).unwrap();
    for c in common::commands(&out.plan) {
        assert!(
            !c.contains("gen config") && !c.contains("talosctl bootstrap"),
            "{c}"
        );
    }
    assert!(
        steps(&out.plan)
            .iter()
            .any(|s| matches!(s.action, Action::OmniTemplatePatch { remove: false, .. }))
    );

    // A broken Omni ConfigPatch (the v1alpha1 "no CNI" form on a 1.14 config) is backed up
    // and deleted before the plan's own patches.
    let broken = "metadata:\n  namespace: default\n  type: ConfigPatches.omni.sidero.dev\n  id: 300-cni-none\n  labels:\n    omni.sidero.dev/cluster: homelab\nspec:\n  data: |\n    cluster:\n      network:\n        cni:\n          name: none\n";
    let dir = tempfile::tempdir().unwrap();
    for sub in ["cluster", "talos"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for entry in
            std::fs::read_dir(common::examples().join("talos-1.14-multidoc").join(sub)).unwrap()
        {
            let entry = entry.unwrap();
            if entry.file_name() != "cni-none.patch.yaml" {
                std::fs::copy(entry.path(), dir.path().join(sub).join(entry.file_name())).unwrap();
            }
        }
    }
    std::fs::create_dir_all(dir.path().join("omni")).unwrap();
    std::fs::write(dir.path().join("omni/cni-none.yaml"), broken).unwrap();
    let snapshot = cniswap_snapshot::load(dir.path()).unwrap();
    let out = plan_for(
        &snapshot,
        &options(CniKind::Cilium, StrategyChoice::Cutover),
    )
    .unwrap();
    let plan = &out.plan;
    assert!(
        plan.preflight.iter().any(|f| f.rule == "TAL001"),
        "{:?}",
        plan.preflight.iter().map(|f| &f.rule).collect::<Vec<_>>()
    );
    let remove = position(
        plan,
        |a| matches!(a, Action::OmniConfigPatch { patch_id, remove: true, backup: Some(_), .. } if patch_id == "300-cni-none"),
    );
    let ours = position(
        plan,
        |a| matches!(a, Action::OmniConfigPatch { patch_id, remove: false, .. } if patch_id.contains("disable-flannel")),
    );
    assert!(remove < ours);
    assert!(plan.handled.iter().any(|h| h.rule == "TAL001"));
}

/// Item 12: A delete's backup is written once, atomically (all_plans.rs runs every one).
#[test]
fn item_12_a_rerun_keeps_the_first_backup() {
    let plan = plan_for(
        &example("talos-flannel-homelab"),
        &options(CniKind::Cilium, StrategyChoice::Cutover),
    )
    .unwrap()
    .plan;
    let delete = steps(&plan)
        .into_iter()
        .find(|s| matches!(&s.action, Action::DeleteObject { object, .. } if object.name == "kube-flannel"))
        .unwrap();
    let backup = delete.action.backup().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let first = common::fake_tools(&dir.path().join("a"), "kind: DaemonSet", 0);
    for command in &delete.commands {
        assert!(common::run_sh(command, dir.path(), &first));
    }
    // Run again after the delete: kubectl finds nothing, the backup stays.
    let gone = common::fake_tools(&dir.path().join("b"), "", 0);
    for command in &delete.commands {
        assert!(common::run_sh(command, dir.path(), &gone));
    }
    assert_eq!(
        std::fs::read_to_string(dir.path().join(backup)).unwrap(),
        "kind: DaemonSet"
    );
    // The restore does not skip a good backup.
    let restore = plan
        .phases
        .iter()
        .flat_map(|p| &p.rollback)
        .find(|s| matches!(&s.action, Action::RestoreBackup { path, .. } if path == backup))
        .unwrap();
    assert!(restore.commands[0].starts_with(&format!("test ! -s {backup} ||")));
}

/// Item 13: Verification resolves the FQDN and probes each node with a pinned, tolerating pod.
#[test]
fn item_13_verification_uses_fqdn_and_pinned_probes() {
    let plan = plan_for(
        &example("talos-flannel-homelab"),
        &options(CniKind::Cilium, StrategyChoice::Rolling),
    )
    .unwrap()
    .plan;
    let probes: Vec<&Probe> = steps(&plan)
        .into_iter()
        .filter_map(|s| match &s.action {
            Action::Verify { probes, .. } => Some(probes),
            _ => None,
        })
        .flatten()
        .collect();
    // DNS by FQDN is part of `cniswap verify` (kubernetes.default.svc.<domain>, with the
    // cluster's domain), which the Verify phase runs across every node pair (issue 13).
    let verify = |args: &[&str]| {
        probes.iter().any(|p| {
            matches!(p, Probe::Cniswap { args: a } if a.iter().map(String::as_str).collect::<Vec<_>>() == args)
        })
    };
    assert!(verify(&[
        "verify",
        "--image",
        &plan.agent_image,
        "--cluster-domain",
        "cluster.local"
    ]));
    for node in &plan.estimates.per_node {
        assert!(probes.iter().any(|p| matches!(p, Probe::PodAddress { node: n, cidr: Some(c) } if *n == node.node && c == "10.245.0.0/16")));
        // Each switched node's pods are checked against every node.
        assert!(verify(&[
            "verify",
            "--image",
            &plan.agent_image,
            "--focus",
            &node.node
        ]));
    }
    let commands = common::commands(&plan);
    assert!(
        !commands
            .iter()
            .any(|c| c.ends_with("nslookup kubernetes.default"))
    );
    let probe = commands
        .iter()
        .find(|c| c.contains("run cniswap-probe-ip-talos-w-1"))
        .unwrap();
    assert!(
        probe.contains("\"nodeName\":\"talos-w-1\"")
            && probe.contains("\"tolerations\":[{\"operator\":\"Exists\"}]"),
        "{probe}"
    );
}

/// Item 14: Risks are stated and handled by steps (relax behind a gate, restore after), so the
/// examples with a blocking budget and a fail-closed webhook are planned, not refused.
#[test]
fn item_14_risks_are_handled_with_backup_and_restore() {
    let only_control_plane = |reboot| {
        let opts = PlanOptions {
            reboot,
            ..options(CniKind::Cilium, StrategyChoice::Rolling)
        };
        let plan = plan_for(&example("kubeadm-calico-vxlan"), &opts)
            .unwrap()
            .plan;
        plan.estimates
            .risks
            .iter()
            .any(|r| r.effect.contains("only control plane"))
    };
    // The only control plane's API server stops only when the node reboots.
    assert!(only_control_plane(RebootChoice::Always));
    assert!(!only_control_plane(RebootChoice::Auto));
    let out = plan_for(
        &example("kubeadm-calico-vxlan"),
        &options(CniKind::Cilium, StrategyChoice::Rolling),
    )
    .unwrap();
    let plan = &out.plan;
    assert!(
        !cniswap_plan::has_errors(plan),
        "{:?}",
        cniswap_plan::blocking(plan)
    );
    let risks: Vec<Option<&str>> = plan
        .estimates
        .risks
        .iter()
        .map(|r| r.rule.as_deref())
        .collect();
    for rule in ["MIG003", "MIG005", "MIG007"] {
        assert!(risks.contains(&Some(rule)), "{risks:?}");
    }
    let gate = position(
        plan,
        |a| matches!(a, Action::ManualGate { question, .. } if question.starts_with("Relax these safeguards")),
    );
    let relax = position(
        plan,
        |a| matches!(a, Action::PatchObject { object, expected, backup: Some(_), .. } if object.kind == "poddisruptionbudget" && expected == "1"),
    );
    let webhook = position(
        plan,
        |a| matches!(a, Action::PatchObject { expected, .. } if expected == "Ignore"),
    );
    let drain = position(plan, |a| matches!(a, Action::Drain { .. }));
    let restore_pdb = position(
        plan,
        |a| matches!(a, Action::RestoreBackup { path, replace: true } if path.contains("poddisruptionbudget")),
    );
    let restore_webhook = position(
        plan,
        |a| matches!(a, Action::PatchObject { expected, .. } if expected == "Fail"),
    );
    let verify = plan.phases.iter().position(|p| p.name == "Verify").unwrap();
    let restore_phase = plan
        .phases
        .iter()
        .position(|p| p.name == "Restore safeguards")
        .unwrap();
    assert!(gate < relax && gate < webhook && relax < drain && webhook < drain);
    assert!(drain < restore_pdb && drain < restore_webhook && verify < restore_phase);
}

/// Item 15: Agent pods by label; bare pods deleted, not "recreated"; no jq; Talos patches never
/// reboot; user cordons kept; impossible requests refused with the reason.
#[test]
fn item_15_smaller_defects() {
    let out = plan_for(
        &example("talos-flannel-homelab"),
        &options(CniKind::Cilium, StrategyChoice::Rolling),
    )
    .unwrap();
    let plan = &out.plan;
    let restart = steps(plan)
        .into_iter()
        .find(|s| matches!(s.action, Action::RestartAgent { .. }))
        .unwrap();
    assert!(
        restart.commands[0].contains("-l 'k8s-app=cilium'"),
        "{:?}",
        restart.commands
    );
    let drain = steps(plan)
        .into_iter()
        .find(|s| matches!(&s.action, Action::Drain { node, .. } if node == "talos-w-1"))
        .unwrap();
    assert!(drain.pods_deleted.contains(&"default/netshoot".to_string()));
    assert!(
        !drain
            .pods_recreated
            .contains(&"default/netshoot".to_string())
    );
    let uncordon = steps(plan)
        .into_iter()
        .find(|s| matches!(s.action, Action::Uncordon { .. }))
        .unwrap();
    assert!(
        uncordon.commands[0].contains("[ \"$out\" = true ] || kubectl uncordon"),
        "{:?}",
        uncordon.commands
    );

    let running = example("talos-flannel-homelab");
    let facts = cniswap_facts::detect(&running);
    let refuse = |opts: PlanOptions| {
        cniswap_plan::plan(&running, &facts, &opts)
            .err()
            .unwrap()
            .message
    };
    assert!(refuse(options(CniKind::Cilium, StrategyChoice::Fresh)).contains("runs 3 nodes"));
    assert!(
        refuse(PlanOptions {
            batch_size: 0,
            ..options(CniKind::Cilium, StrategyChoice::Rolling)
        })
        .contains("--batch-size 0")
    );
    assert!(
        refuse(PlanOptions {
            install: Some(InstallChoice::Omni),
            ..options(CniKind::Cilium, StrategyChoice::Rolling)
        })
        .contains("Omni does not manage this cluster")
    );
}

/// Item 16: A --force plan shows the error findings no step resolves at the top of its runbook.
#[test]
fn item_16_unresolved_errors_top_the_runbook() {
    let mut plan = plan_for(
        &example("talos-flannel-homelab"),
        &options(CniKind::Cilium, StrategyChoice::Rolling),
    )
    .unwrap()
    .plan;
    let mut finding = plan.preflight[0].clone();
    finding.rule = "TAL011".into();
    finding.severity = cniswap_model::Severity::Error;
    finding.message = "the config is rejected".into();
    plan.preflight.push(finding);
    let runbook = cniswap_plan::runbook(&plan);
    let unresolved = runbook.find("## Unresolved").unwrap();
    assert!(unresolved < runbook.find("## Before you start").unwrap());
    assert!(runbook[unresolved..].contains("TAL011"));
}
