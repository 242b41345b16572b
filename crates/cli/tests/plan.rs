//! `cniswap plan` end to end: refusal on error findings, the plan directory, the summary,
//! and the requests that cannot work (exit 2 with the reason).

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use std::path::Path;
use std::process::Command;

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
        .display()
        .to_string()
}

fn cniswap(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args(args)
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// The homelab cluster under Omni with a ConfigPatch Omni never applies (TAL016): nothing in
/// the plan fixes that.
fn unresolvable(dir: &Path) -> String {
    let snapshot = dir.join("snapshot");
    copy_dir(Path::new(&example("talos-flannel-homelab")), &snapshot);
    std::fs::create_dir_all(snapshot.join("omni")).unwrap();
    std::fs::write(
        snapshot.join("omni/hostdns.yaml"),
        "metadata:\n  namespace: default\n  type: ConfigPatches.omni.sidero.dev\n  id: 200-hostdns\n  labels:\n    omni.sidero.dev/cluster: homelab\nspec:\n  data: |\n    machine:\n      features:\n        hostDNS:\n          enabled: true\n",
    )
    .unwrap();
    std::fs::write(
        snapshot.join("omni/unlabelled.yaml"),
        "metadata:\n  namespace: default\n  type: ConfigPatches.omni.sidero.dev\n  id: 210-sysctl\nspec:\n  data: |\n    machine:\n      sysctls:\n        net.core.somaxconn: \"65535\"\n",
    )
    .unwrap();
    snapshot.display().to_string()
}

#[test]
fn error_findings_refuse_the_plan_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("plan");
    let plan_args = |snapshot: &str, extra: &[&str]| {
        let mut args = vec![
            "plan",
            "--snapshot",
            snapshot,
            "--to",
            "cilium",
            "--out-dir",
        ];
        args.push(out_dir.to_str().unwrap());
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let run = |args: Vec<String>| cniswap(&args.iter().map(String::as_str).collect::<Vec<_>>());

    let snapshot = unresolvable(dir.path());
    let out = run(plan_args(&snapshot, &[]));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Refused:") && text.contains("error[TAL016]"),
        "{text}"
    );
    // The budget that allows no disruption is handled by the plan, not a reason to refuse.
    assert!(
        text.contains("error[MIG003]") && text.contains("resolved by this plan"),
        "{text}"
    );
    assert!(!out_dir.exists(), "a refused plan writes nothing");
    let out = run(plan_args(&snapshot, &["--force"]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let runbook = std::fs::read_to_string(out_dir.join("runbook.md")).unwrap();
    let unresolved = runbook.find("## Unresolved").unwrap();
    assert!(runbook[unresolved..].contains("TAL016"), "{runbook}");
    std::fs::remove_dir_all(&out_dir).unwrap();

    // Seed 002: the errors are all in the Cilium values the plan replaces.
    let half = example("talos-flannel-to-cilium-half-migrated");
    let out = run(plan_args(&half, &[]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("error[CIL001]") && text.contains("resolved by this plan"),
        "{text}"
    );
    for file in [
        "plan.yaml",
        "runbook.md",
        "artifacts/cilium/values-migration.yaml",
        "artifacts/cilium/ciliumnodeconfig.yaml",
        "artifacts/talos/disable-flannel.yaml",
    ] {
        assert!(out_dir.join(file).exists(), "{file} missing");
    }
    let plan: serde_json::Value =
        serde_saphyr::from_str(&std::fs::read_to_string(out_dir.join("plan.yaml")).unwrap())
            .unwrap();
    assert_eq!(plan["schema_version"], 2);
    assert_eq!(plan["strategy"], "rolling");
}

#[test]
fn a_clean_cluster_gets_its_plan_and_a_summary() {
    let snapshot = example("kubeadm-calico-vxlan");
    let out = cniswap(&["plan", "--snapshot", &snapshot, "--to", "flannel"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Strategy: cutover") && text.contains("Use --out-dir DIR"),
        "{text}"
    );
    assert!(
        text.contains("node agent image: ghcr.io/cniswap/cniswap:")
            && text.contains("every node must pull it"),
        "{text}"
    );
}

#[test]
fn the_agent_image_is_a_parameter() {
    let dir = tempfile::tempdir().unwrap();
    let out = cniswap(&[
        "plan",
        "--snapshot",
        &example("kubeadm-calico-vxlan"),
        "--to",
        "flannel",
        "--agent-image",
        "registry.example.com/cniswap:0.1.0",
        "--out-dir",
        dir.path().join("p").to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let plan = std::fs::read_to_string(dir.path().join("p/plan.yaml")).unwrap();
    assert!(plan.contains("agent_image: registry.example.com/cniswap:0.1.0"));
    assert!(plan.contains("image: registry.example.com/cniswap:0.1.0"));
}

#[test]
fn impossible_requests_are_usage_errors() {
    let homelab = example("talos-flannel-homelab");
    let kubeadm = example("kubeadm-calico-vxlan");
    let cases: &[(&[&str], &str)] = &[
        (
            &["--snapshot", &homelab, "--to", "flannel"],
            "already is the cluster's only CNI",
        ),
        (
            &[
                "--snapshot",
                &kubeadm,
                "--to",
                "flannel",
                "--kube-proxy",
                "replace",
            ],
            "Flannel cannot replace kube-proxy",
        ),
        (
            &[
                "--snapshot",
                &homelab,
                "--to",
                "cilium",
                "--strategy",
                "fresh",
            ],
            "configures a cluster before bootstrap",
        ),
        (
            &[
                "--snapshot",
                &homelab,
                "--to",
                "cilium",
                "--batch-size",
                "0",
            ],
            "--batch-size 0",
        ),
        (
            &[
                "--snapshot",
                &homelab,
                "--to",
                "cilium",
                "--install",
                "omni",
            ],
            "Omni does not manage this cluster",
        ),
    ];
    for (args, message) in cases {
        let mut all = vec!["plan"];
        all.extend_from_slice(args);
        let out = cniswap(&all);
        assert_eq!(out.status.code(), Some(2), "{all:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(message), "{all:?}: {stderr}");
    }
}

/// A snapshot that cannot tell whether kube-proxy runs: the plan asks instead of guessing.
#[test]
fn unknown_kube_proxy_is_a_question() {
    let dir = tempfile::tempdir().unwrap();
    let snapshot = dir.path().join("snap");
    std::fs::create_dir_all(snapshot.join("cluster")).unwrap();
    // Only the nodes and pods of the kubeadm example: no DaemonSet was read.
    for file in ["nodes.yaml", "pods.yaml"] {
        let from = Path::new(&example("kubeadm-calico-vxlan"))
            .join("cluster")
            .join(file);
        if from.exists() {
            std::fs::copy(from, snapshot.join("cluster").join(file)).unwrap();
        }
    }
    let snap = snapshot.to_str().unwrap();
    let out = cniswap(&[
        "plan",
        "--snapshot",
        snap,
        "--to",
        "cilium",
        "--strategy",
        "cutover",
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("--kube-proxy keep") && stderr.contains("--kube-proxy replace"),
        "{stderr}"
    );
}

/// `--chart`, `--manifest` and `--image-registry` through the binary: the chart read from a
/// directory and written into the plan, the mirror in the values and the node agent image,
/// and bad arguments named with the next step (exit 2) before the cluster is read.
#[test]
fn local_charts_manifests_and_a_mirror_make_a_plan_without_the_internet() {
    let dir = tempfile::tempdir().unwrap();
    let chart = dir.path().join("cilium");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(
        chart.join("Chart.yaml"),
        "apiVersion: v2\nname: cilium\nversion: 1.20.2\n",
    )
    .unwrap();
    std::fs::write(
        chart.join("values.yaml"),
        "image:\n  repository: quay.io/cilium/cilium\n  useDigest: true\n",
    )
    .unwrap();
    std::fs::write(chart.join("templates/ds.yaml"), "kind: DaemonSet\n").unwrap();
    let out_dir = dir.path().join("plan");
    let chart_arg = format!("cilium={}", chart.display());
    let out = cniswap(&[
        "plan",
        "--snapshot",
        &example("talos-flannel-homelab"),
        "--to",
        "cilium",
        "--chart",
        &chart_arg,
        "--image-registry",
        "lab.cniswap.local",
        "--out-dir",
        out_dir.to_str().unwrap(),
        "--force",
    ]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.status.code(), Some(0), "{said}");
    assert!(
        said.contains("lab.cniswap.local/cniswap/cniswap:"),
        "{said}"
    );
    assert_eq!(
        std::fs::read_to_string(out_dir.join("artifacts/charts/cilium/templates/ds.yaml")).unwrap(),
        "kind: DaemonSet\n"
    );
    let plan = std::fs::read_to_string(out_dir.join("plan.yaml")).unwrap();
    assert!(plan.contains("chart: artifacts/charts/cilium"), "{plan}");
    assert!(
        !plan.contains("helm.cilium.io"),
        "no repository left: {plan}"
    );

    for (args, wanted) in [
        (vec!["--chart", "nginx=/x"], "no chart of that name"),
        (vec!["--chart", "cilium"], "is not NAME=PATH"),
        (
            vec!["--chart", "cilium=/nonexistent/chart"],
            "cannot read the chart directory",
        ),
        (
            vec!["--manifest", "calico=/nonexistent.yaml"],
            "nonexistent.yaml",
        ),
        (vec!["--image-registry", "a b"], "is not HOST[/PREFIX]"),
    ] {
        let snapshot = example("talos-flannel-homelab");
        let mut all = vec!["plan", "--snapshot", &snapshot, "--to", "cilium"];
        all.extend(args.iter().copied());
        let out = cniswap(&all);
        let said = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {said}");
        assert!(said.contains(wanted), "{args:?}: {said}");
    }
}

/// The summary's timeline section: from its title to the line after the totals' line.
fn timeline_section(summary: &str) -> String {
    let mut out = String::new();
    let mut inside = false;
    for line in summary.lines() {
        if line.starts_with("Pod-network outage per node") || line.starts_with("Each node's switch")
        {
            inside = true;
        } else if inside && !line.starts_with("  ") {
            break;
        }
        if inside {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

#[test]
fn the_summary_draws_each_nodes_outage_in_migration_order() {
    // Rolling on Talos: workers first, the control plane last; one bar per node.
    let out = cniswap(&[
        "plan",
        "--snapshot",
        &example("talos-flannel-homelab"),
        "--to",
        "cilium",
        "--force",
    ]);
    let summary = String::from_utf8_lossy(&out.stdout);
    assert!(!summary.contains('\u{1b}'), "NO_COLOR output is plain");
    insta::assert_snapshot!("timeline_talos_rolling", timeline_section(&summary));

    // Cutover: the bars are each node's own switch, and the summary says the whole window.
    let out = cniswap(&[
        "plan",
        "--snapshot",
        &example("kubeadm-calico-vxlan"),
        "--to",
        "flannel",
    ]);
    let summary = String::from_utf8_lossy(&out.stdout);
    insta::assert_snapshot!("timeline_kubeadm_cutover", timeline_section(&summary));
}
