//! `cniswap plan` end to end: refusal on error findings, the plan directory, the summary.

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

    // A PodDisruptionBudget that allows no disruption: nothing in the plan can fix that.
    let calico = example("kubeadm-calico-vxlan");
    let out = run(plan_args(&calico, &[]));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("Refused:") && text.contains("error[MIG003]"),
        "{text}"
    );
    assert!(!out_dir.exists(), "a refused plan writes nothing");
    let out = run(plan_args(&calico, &["--force"]));
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out_dir.join("plan.yaml").exists());
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
    assert_eq!(plan["schema_version"], 1);
    assert_eq!(plan["strategy"], "rolling");
}

#[test]
fn a_clean_cluster_gets_its_plan_and_a_summary() {
    let snapshot = example("kubeadm-calico-vxlan");
    let out = cniswap(&[
        "plan",
        "--snapshot",
        &snapshot,
        "--to",
        "flannel",
        "--force",
    ]);
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
}

#[test]
fn impossible_requests_are_usage_errors() {
    let snapshot = example("talos-flannel-homelab");
    let out = cniswap(&["plan", "--snapshot", &snapshot, "--to", "flannel"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already is the cluster's only CNI"));
    let out = cniswap(&[
        "plan",
        "--snapshot",
        &example("kubeadm-calico-vxlan"),
        "--to",
        "flannel",
        "--kube-proxy",
        "replace",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Flannel cannot replace kube-proxy"));
}
