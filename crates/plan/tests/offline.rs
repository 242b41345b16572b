//! Plans for clusters without the internet: `--chart`, `--manifest`, `--image-registry`, and
//! Calico by its manifest. Every helm command uses the chart copied into artifacts/, nothing is
//! downloaded, every image the plan installs comes from the mirror, and a plan that would
//! still fetch something is refused naming it.

#![allow(clippy::unwrap_used)] // tests may panic: a panic is a failed test

mod common;

use cniswap_model::CniKind;
use cniswap_plan::local::{LocalChart, LocalSources};
use cniswap_plan::{Action, InstallChoice, PlanOptions, Render, StrategyChoice};
use common::*;

const MIRROR: &str = "lab.cniswap.local";

fn cilium_chart() -> LocalChart {
    LocalChart {
        name: "cilium".into(),
        source: "/lab/charts/cilium".into(),
        files: vec![
            (
                "Chart.yaml".into(),
                "apiVersion: v2\nname: cilium\nversion: 1.20.2\n".into(),
            ),
            (
                "values.yaml".into(),
                "image:\n  repository: quay.io/cilium/cilium\n  tag: v1.20.2\n  useDigest: true\noperator:\n  image:\n    repository: quay.io/cilium/operator\n    suffix: \"\"\n    useDigest: true\nenvoy:\n  image:\n    repository: quay.io/cilium/cilium-envoy\n".into(),
            ),
            (
                "templates/daemonset.yaml".into(),
                "# {{ .Values.image.repository }}\n".into(),
            ),
        ],
    }
}

const CALICO_YAML: &str = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: calico-node\n  namespace: kube-system\nspec:\n  template:\n    spec:\n      initContainers:\n        - name: install-cni\n          image: docker.io/calico/cni:v3.28.5\n      containers:\n        - name: calico-node\n          image: docker.io/calico/node:v3.28.5@sha256:0123\n";
const FLANNEL_YML: &str = "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: kube-flannel-ds\n  namespace: kube-flannel\nspec:\n  template:\n    spec:\n      containers:\n      - name: kube-flannel\n        image: ghcr.io/flannel-io/flannel:v0.28.10\n";

fn offline(target: CniKind, strategy: StrategyChoice, local: LocalSources) -> PlanOptions {
    PlanOptions {
        kube_proxy: Some(cniswap_plan::KubeProxyChoice::Keep),
        local,
        ..options(target, strategy)
    }
}

fn flannel_cluster() -> (tempfile::TempDir, cniswap_snapshot::Snapshot) {
    generated_snapshot(&cluster_yaml(CniKind::Flannel, 1, 2, 1, true))
}

fn plan(
    snapshot: &cniswap_snapshot::Snapshot,
    options: &PlanOptions,
) -> Result<cniswap_plan::Output, cniswap_plan::PlanError> {
    let facts = cniswap_facts::detect(snapshot);
    cniswap_plan::plan(snapshot, &facts, options)
}

#[test]
fn a_local_cilium_chart_is_copied_and_used_by_every_helm_command() {
    let (_dir, snapshot) = flannel_cluster();
    let local = LocalSources {
        charts: vec![cilium_chart()],
        image_registry: Some(MIRROR.into()),
        ..LocalSources::default()
    };
    for strategy in [StrategyChoice::Rolling, StrategyChoice::Cutover] {
        let out = plan(
            &snapshot,
            &offline(CniKind::Cilium, strategy, local.clone()),
        )
        .unwrap();
        // The copy, byte for byte, listed as artifacts (apply's digests cover them).
        assert_eq!(
            file(&out, "artifacts/charts/cilium/Chart.yaml"),
            "apiVersion: v2\nname: cilium\nversion: 1.20.2\n"
        );
        assert!(
            out.plan
                .artifacts
                .iter()
                .any(|a| a.path == "artifacts/charts/cilium/templates/daemonset.yaml")
        );
        let mut helm_steps = 0;
        for step in all_steps(&out.plan) {
            match &step.action {
                Action::HelmUpgrade {
                    repo,
                    chart,
                    version,
                    ..
                } => {
                    helm_steps += 1;
                    assert_eq!(
                        (repo.as_str(), chart.as_str(), version.as_str()),
                        ("", "artifacts/charts/cilium", "1.20.2"),
                        "{strategy:?} {}",
                        step.id
                    );
                }
                Action::RenderManifest {
                    render: Render::Helm { repo, chart, .. },
                    ..
                } => {
                    assert_eq!(
                        (repo.as_str(), chart.as_str()),
                        ("", "artifacts/charts/cilium")
                    );
                }
                Action::Download { url, .. } => panic!("{strategy:?}: downloads {url}"),
                _ => {}
            }
        }
        assert!(helm_steps > 0, "{strategy:?}: no helm step");
        for command in commands(&out.plan) {
            assert!(
                !command.contains("--repo") && !command.contains("curl "),
                "{strategy:?}: a command reaches the internet: {command}"
            );
        }
        // Every image from the mirror, digests off; the node agent too.
        let values = out
            .files
            .iter()
            .find(|(p, _)| p.starts_with("artifacts/cilium/values-"))
            .unwrap()
            .1
            .clone();
        assert!(
            values.contains("repository: lab.cniswap.local/cilium/cilium"),
            "{values}"
        );
        assert!(
            values.contains("repository: lab.cniswap.local/cilium/operator"),
            "{values}"
        );
        assert!(
            values.contains("repository: lab.cniswap.local/cilium/cilium-envoy"),
            "{values}"
        );
        assert!(values.contains("useDigest: false"), "{values}");
        assert!(
            out.plan
                .agent_image
                .starts_with("lab.cniswap.local/cniswap/cniswap:"),
            "{}",
            out.plan.agent_image
        );
    }
}

#[test]
fn calico_by_its_manifest_renders_the_local_copy_with_the_pool_and_the_mirror() {
    let (_dir, snapshot) = flannel_cluster();
    let local = LocalSources {
        manifests: vec![("calico".into(), CALICO_YAML.into())],
        image_registry: Some(MIRROR.into()),
        ..LocalSources::default()
    };
    let out = plan(
        &snapshot,
        &offline(CniKind::Calico, StrategyChoice::Cutover, local),
    )
    .unwrap();
    assert_eq!(
        out.plan.install, "manifest",
        "picked because --manifest calico was given"
    );
    assert_eq!(
        file(&out, "artifacts/calico/manifest/calico.yaml"),
        CALICO_YAML
    );
    let kustomization = file(&out, "artifacts/calico/manifest/kustomization.yaml");
    assert!(
        kustomization.contains("newName: lab.cniswap.local/calico/node"),
        "{kustomization}"
    );
    assert!(
        kustomization.contains("newName: lab.cniswap.local/calico/cni"),
        "{kustomization}"
    );
    let pool = file(&out, "artifacts/calico/manifest/pool-patch.yaml");
    assert!(
        pool.contains("10.244.0.0/16") && pool.contains("CALICO_IPV4POOL_CIDR"),
        "{pool}"
    );
    let steps = all_steps(&out.plan);
    assert!(
        steps.iter().any(|s| matches!(&s.action, Action::ApplyManifest { file } if file == "artifacts/calico/manifest/rendered.yaml"))
    );
    assert!(steps.iter().any(|s| matches!(&s.action,
        Action::WaitDaemonSetReady { namespace, name } if namespace == "kube-system" && name == "calico-node")));
    // Each node's switch restarts calico-node where the manifest runs it, never calico-system.
    let restarts: Vec<&String> = steps
        .iter()
        .filter_map(|s| match &s.action {
            Action::RestartAgent {
                namespace,
                daemonset,
                ..
            } if daemonset == "calico-node" => Some(namespace),
            _ => None,
        })
        .collect();
    assert!(
        !restarts.is_empty() && restarts.iter().all(|ns| *ns == "kube-system"),
        "{restarts:?}"
    );
    assert!(
        !steps.iter().any(|s| matches!(
            s.action,
            Action::HelmUpgrade { .. } | Action::Download { .. }
        )),
        "no operator, no download"
    );
    // The final check looks for calico-node where the manifest runs it.
    assert!(
        steps.iter().any(|s| matches!(&s.action, Action::Verify { probes, .. }
            if probes.iter().any(|p| matches!(p, cniswap_plan::Probe::AgentsReady { namespace, daemonset }
                if namespace == "kube-system" && daemonset == "calico-node"))))
    );
}

#[test]
fn flannel_from_a_local_manifest_downloads_nothing() {
    let (_dir, snapshot) = generated_snapshot(&cluster_yaml(CniKind::Calico, 1, 2, 1, true));
    let local = LocalSources {
        manifests: vec![("flannel".into(), FLANNEL_YML.into())],
        image_registry: Some("mirror.example:5000/k8s".into()),
        ..LocalSources::default()
    };
    let out = plan(
        &snapshot,
        &offline(CniKind::Flannel, StrategyChoice::Cutover, local),
    )
    .unwrap();
    assert_eq!(
        file(&out, "artifacts/flannel/kube-flannel.yml"),
        FLANNEL_YML
    );
    let kustomization = file(&out, "artifacts/flannel/kustomization.yaml");
    assert!(
        kustomization.contains("newName: mirror.example:5000/k8s/flannel-io/flannel"),
        "{kustomization}"
    );
    assert!(
        !all_steps(&out.plan)
            .iter()
            .any(|s| matches!(s.action, Action::Download { .. }))
    );
}

#[test]
fn a_plan_that_would_still_fetch_something_is_refused_naming_it() {
    let (_dir, snapshot) = flannel_cluster();
    // A mirror for the images, but the chart would come from its repository.
    let local = LocalSources {
        image_registry: Some(MIRROR.into()),
        ..LocalSources::default()
    };
    let e = plan(
        &snapshot,
        &offline(CniKind::Cilium, StrategyChoice::Rolling, local),
    )
    .err()
    .expect("refused");
    assert!(
        e.message.contains("cilium (https://helm.cilium.io)"),
        "{}",
        e.message
    );
    assert!(e.help.contains("--chart NAME=DIR"), "{}", e.help);
    // Calico's manifest without --manifest calico: its download is named.
    let local = LocalSources {
        image_registry: Some(MIRROR.into()),
        ..LocalSources::default()
    };
    let mut options = offline(CniKind::Calico, StrategyChoice::Cutover, local);
    options.install = Some(InstallChoice::Manifest);
    let e = plan(&snapshot, &options).err().expect("refused");
    assert!(e.message.contains("calico-vxlan.yaml"), "{}", e.message);
}

#[test]
fn without_the_flags_plans_are_as_before() {
    let (_dir, snapshot) = flannel_cluster();
    let out = plan(
        &snapshot,
        &offline(
            CniKind::Cilium,
            StrategyChoice::Rolling,
            LocalSources::default(),
        ),
    )
    .unwrap();
    assert!(all_steps(&out.plan).iter().any(|s| matches!(&s.action,
        Action::HelmUpgrade { repo, chart, .. } if repo == "https://helm.cilium.io" && chart == "cilium")));
    assert!(out.plan.agent_image.starts_with("ghcr.io/cniswap/cniswap:"));
    assert!(
        !out.files
            .iter()
            .any(|(p, _)| p.starts_with("artifacts/charts/"))
    );
    // Calico stays with the operator unless asked or already installed by manifest.
    let out = plan(
        &snapshot,
        &offline(
            CniKind::Calico,
            StrategyChoice::Cutover,
            LocalSources::default(),
        ),
    )
    .unwrap();
    assert_eq!(out.plan.install, "helm");
}

#[test]
fn cilium_has_no_manifest_install() {
    let (_dir, snapshot) = flannel_cluster();
    let mut options = offline(
        CniKind::Cilium,
        StrategyChoice::Cutover,
        LocalSources::default(),
    );
    options.install = Some(InstallChoice::Manifest);
    let e = plan(&snapshot, &options).err().expect("refused");
    assert!(
        e.message.contains("Cilium has no manifest"),
        "{}",
        e.message
    );
}
