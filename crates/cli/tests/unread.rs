//! Issue 17 item 1 through the binary, offline: a snapshot that records kinds the cluster
//! refused to list (`cluster/unread.json`, as `cniswap snapshot` writes it) is partial.
//! inspect and lint exit 2 naming each kind with the server's answer and the ClusterRole to
//! grant; plan refuses. The live case is in unread_lab.rs.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn cniswap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args(args)
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// The kubeadm example with two kinds recorded as refused.
fn partial_snapshot(dir: &Path) -> PathBuf {
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/kubeadm-calico-vxlan");
    let snap = dir.join("snap");
    let status = Command::new("cp")
        .arg("-r")
        .arg(&example)
        .arg(&snap)
        .status()
        .unwrap();
    assert!(status.success());
    std::fs::write(
        snap.join("cluster/unread.json"),
        r#"{"unread": [
            {"resource": "poddisruptionbudgets", "group": "policy", "path": "/apis/policy/v1/poddisruptionbudgets", "cause": "403 Forbidden: poddisruptionbudgets.policy is forbidden"},
            {"resource": "networkpolicies", "group": "networking.k8s.io", "path": "/apis/networking.k8s.io/v1/networkpolicies", "cause": "403 Forbidden: networkpolicies.networking.k8s.io is forbidden"}
        ]}"#,
    )
    .unwrap();
    snap
}

fn assert_partial(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    for kind in [
        "poddisruptionbudgets.policy (403",
        "networkpolicies.networking.k8s.io (403",
    ] {
        assert!(stderr.contains(kind), "{kind}: {stderr}");
    }
    assert!(
        stderr.contains("--resource=poddisruptionbudgets.policy,networkpolicies.networking.k8s.io"),
        "{stderr}"
    );
    stderr
}

#[test]
fn a_partial_snapshot_makes_inspect_lint_and_plan_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let snap = partial_snapshot(dir.path());
    let snap = snap.to_str().unwrap();

    let inspect = cniswap(&["inspect", "--snapshot", snap]);
    assert_partial(&inspect);
    let report = String::from_utf8_lossy(&inspect.stdout);
    assert!(report.contains("Could not read (2)"), "{report}");

    let json = cniswap(&["inspect", "--snapshot", snap, "-o", "json"]);
    assert_partial(&json);
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(
        report["facts"]["inputs"]["unread"][0]["resource"],
        "poddisruptionbudgets"
    );

    assert_partial(&cniswap(&["lint", "--snapshot", snap]));

    let plan = cniswap(&["plan", "--snapshot", snap, "--to", "cilium"]);
    let stderr = assert_partial(&plan);
    assert!(
        stderr.contains("cannot plan from a partial read"),
        "{stderr}"
    );

    // The same snapshot without the record plans (the example is whole).
    std::fs::remove_file(Path::new(snap).join("cluster/unread.json")).unwrap();
    let whole = cniswap(&["plan", "--snapshot", snap, "--to", "cilium"]);
    assert!(
        matches!(whole.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&whole.stderr)
    );
}
