//! `cniswap verify` without a cluster: the manifests it prints (what it deploys, the RBAC to
//! run it) and how it fails when it cannot run. The checks themselves run on the lab's real
//! nodes (tests/verify_lab.rs) and the agent in network namespaces (tests/agent.rs).

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use serde_json::Value;
use std::process::Command;

fn cniswap(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .output()
        .unwrap()
}

fn documents(yaml: &str) -> Vec<Value> {
    yaml.split("\n---\n")
        .map(|d| d.trim_start_matches("---\n"))
        .filter(|d| {
            d.lines()
                .any(|l| !l.starts_with('#') && !l.trim().is_empty())
        })
        .map(|d| serde_saphyr::from_str(d).unwrap())
        .collect()
}

#[test]
fn print_manifests_shows_what_is_deployed_and_the_rbac() {
    let out = cniswap(&[
        "verify",
        "--print-manifests",
        "--image",
        "registry.example/cniswap:1",
    ]);
    assert!(out.status.success());
    let docs = documents(&String::from_utf8(out.stdout).unwrap());
    let kinds: Vec<(&str, &str)> = docs
        .iter()
        .map(|d| {
            (
                d["kind"].as_str().unwrap(),
                d["metadata"]["name"].as_str().unwrap(),
            )
        })
        .collect();
    for expected in [
        ("Namespace", "cniswap-verify"),
        ("DaemonSet", "cniswap-probe"),
        ("DaemonSet", "cniswap-probe-peer"),
        ("DaemonSet", "cniswap-probe-host"),
        ("Service", "cniswap-probe"),
        ("Service", "cniswap-probe-headless"),
        ("ClusterRole", "cniswap-verify"),
        ("Role", "cniswap-verify"),
    ] {
        assert!(kinds.contains(&expected), "{expected:?} in {kinds:?}");
    }
    let ds = docs
        .iter()
        .find(|d| d["kind"] == "DaemonSet" && d["metadata"]["name"] == "cniswap-probe")
        .unwrap();
    let container = &ds["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(container["image"], "registry.example/cniswap:1");
    assert_eq!(container["command"][0], "/usr/local/bin/cniswap");
    // The user's role can port-forward but not exec, and reads only what verify needs.
    let role = docs
        .iter()
        .find(|d| d["kind"] == "Role" && d["metadata"]["name"] == "cniswap-verify")
        .unwrap();
    let resources: Vec<&str> = role["rules"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
        })
        .collect();
    assert!(resources.contains(&"pods/portforward"));
    assert!(!resources.contains(&"pods/exec"));
    assert!(!resources.contains(&"secrets"));

    let restricted = cniswap(&["verify", "--print-manifests", "--no-host"]);
    let docs = documents(&String::from_utf8(restricted.stdout).unwrap());
    assert_eq!(
        docs[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
        "restricted"
    );
    assert!(
        !docs
            .iter()
            .any(|d| d["metadata"]["name"] == "cniswap-probe-host")
    );
}

#[test]
fn an_unreachable_cluster_is_exit_2_with_the_server_and_a_next_step() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = dir.path().join("config");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- cluster: {server: \"https://127.0.0.1:1\", insecure-skip-tls-verify: true}\n  name: c\ncontexts:\n- context: {cluster: c, user: u}\n  name: x\ncurrent-context: x\nusers:\n- name: u\n  user: {token: not-a-secret}\n",
    )
    .unwrap();
    let out = cniswap(&["verify", "--kubeconfig", kubeconfig.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("https://127.0.0.1:1"), "{stderr}");
    assert!(stderr.contains("help:"), "{stderr}");
    assert!(!stderr.contains("not-a-secret"), "{stderr}");
}

#[test]
fn bad_flags_are_exit_2() {
    let out = cniswap(&["verify", "--skip", "bogus", "--kubeconfig", "/nonexistent"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown check \"bogus\""));
    let out = cniswap(&["verify", "--interval", "200ms"]);
    assert_eq!(out.status.code(), Some(2), "--interval needs --continuous");
}
