//! Every command that reads a live cluster fails cleanly (exit 2, the server, the context and a
//! next step) when the server cannot be reached. Against the real API server of the lab, the
//! same commands are tested in `crates/lab/tests`.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use std::process::Command;

/// `kubectl-cniswap` as installed: a symbolic link to the one binary.
fn plugin_link(dir: &std::path::Path) -> String {
    let link = dir.join("kubectl-cniswap");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_cniswap"), &link).unwrap();
    link.display().to_string()
}

/// A kubeconfig for an https server on a port nothing listens on.
fn unreachable_kubeconfig(dir: &std::path::Path) -> std::path::PathBuf {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: lab\n  cluster:\n    server: https://127.0.0.1:9\n    insecure-skip-tls-verify: true\ncontexts:\n- name: nowhere\n  context: {cluster: lab, user: u}\ncurrent-context: nowhere\nusers:\n- name: u\n  user: {token: not-a-real-token}\n",
    )
    .unwrap();
    path
}

#[test]
fn live_commands_report_an_unreachable_server_without_panicking() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = unreachable_kubeconfig(dir.path());
    let kubeconfig = kubeconfig.to_str().unwrap();
    let out_dir = dir.path().join("out");
    let out_dir = out_dir.to_str().unwrap();
    let commands: Vec<Vec<&str>> = vec![
        vec!["inspect"],
        vec!["snapshot", "--out-dir", out_dir],
        vec!["plan", "--to", "cilium"],
        vec!["lint", "--live"],
    ];
    let plugin = plugin_link(dir.path());
    for binary in [env!("CARGO_BIN_EXE_cniswap"), plugin.as_str()] {
        for command in &commands {
            let mut args = command.clone();
            args.extend(["--kubeconfig", kubeconfig, "--context", "nowhere"]);
            let out = Command::new(binary)
                .args(&args)
                .env("NO_COLOR", "1")
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{binary} {args:?}: {stderr}");
            assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
            assert!(
                stderr.contains("https://127.0.0.1:9 (context nowhere)"),
                "names the server and context: {args:?}: {stderr}"
            );
            assert!(stderr.contains("help:"), "gives a next step: {stderr}");
            assert!(
                !stderr.contains("not-a-real-token"),
                "credentials stay out of messages: {stderr}"
            );
            assert!(
                !stderr.contains("ERROR"),
                "one message, not kube-rs' log line as well: {stderr}"
            );
        }
    }
}

#[test]
fn kubeconfig_in_the_environment_does_not_conflict_with_a_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let kubeconfig = unreachable_kubeconfig(dir.path());
    let snapshot = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/talos-flannel-homelab");
    let out = Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args([
            "inspect",
            "--snapshot",
            snapshot.to_str().unwrap(),
            "-o",
            "json",
        ])
        .env("KUBECONFIG", &kubeconfig)
        .output()
        .unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kubeconfig_lists_in_the_environment_are_read_like_kubectl_reads_them() {
    // KUBECONFIG=a:b merges both files; the context lives in the second one.
    let dir = tempfile::tempdir().unwrap();
    let second = unreachable_kubeconfig(dir.path());
    let first = dir.path().join("empty-kubeconfig");
    std::fs::write(
        &first,
        "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n",
    )
    .unwrap();
    let list = format!("{}:{}", first.display(), second.display());
    let out = Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args(["inspect", "--context", "nowhere"])
        .env("KUBECONFIG", list)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("https://127.0.0.1:9 (context nowhere)"),
        "the context was found through the list: {stderr}"
    );
}

#[test]
fn the_plugin_link_says_kubectl_cniswap_and_the_binary_says_cniswap() {
    let dir = tempfile::tempdir().unwrap();
    let plugin = plugin_link(dir.path());
    for (binary, usage) in [
        (plugin.as_str(), "Usage: kubectl cniswap inspect"),
        (env!("CARGO_BIN_EXE_cniswap"), "Usage: cniswap inspect"),
    ] {
        let out = Command::new(binary)
            .args(["inspect", "--help"])
            .env("NO_COLOR", "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{binary}: {stdout}");
        assert!(stdout.contains(usage), "{binary}: {stdout}");
    }
    // A usage error names the plugin too.
    let out = Command::new(&plugin)
        .arg("--no-such-flag")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("kubectl cniswap"), "{stderr}");
}
