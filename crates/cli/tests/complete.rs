//! Dynamic shell completion through the binary, as a shell calls it (`COMPLETE=SHELL cniswap
//! -- WORDS...`): registration scripts, rule IDs from the catalogue, and node names that never
//! hang a Tab nor print an error when the cluster cannot answer.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn complete(shell: &str, index: usize, words: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_cniswap"));
    command
        .env("COMPLETE", shell)
        .env("_CLAP_COMPLETE_INDEX", index.to_string())
        .env_remove("KUBECONFIG")
        .args(["--"])
        .args(words);
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn lines(out: &Output) -> Vec<String> {
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn each_shell_gets_a_registration_script_that_calls_the_binary_back() {
    for (shell, marker) in [
        ("bash", "complete -o nospace -o bashdefault"),
        ("zsh", "#compdef cniswap"),
        (
            "fish",
            "complete --keep-order --exclusive --command cniswap",
        ),
    ] {
        let out = Command::new(env!("CARGO_BIN_EXE_cniswap"))
            .env("COMPLETE", shell)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(0), "{shell}");
        let script = String::from_utf8_lossy(&out.stdout);
        assert!(script.contains(marker), "{shell}:\n{script}");
        assert!(
            script.contains(env!("CARGO_BIN_EXE_cniswap")),
            "{shell}:\n{script}"
        );
    }
}

#[test]
fn rule_ids_come_from_the_catalogue() {
    let out = complete("bash", 2, &["cniswap", "explain", "TAL00"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let ids = lines(&out);
    assert!(ids.contains(&"TAL001".to_string()), "{ids:?}");
    assert!(ids.iter().all(|id| id.starts_with("TAL00")), "{ids:?}");
    // fish shows each rule's title beside its ID.
    let out = complete("fish", 2, &["cniswap", "explain", "MIG001"], &[]);
    assert_eq!(lines(&out), ["MIG001\ttwo CNIs active on the same nodes"]);
    // --select and --ignore: families and ALL too, after a comma as well.
    let out = complete("bash", 3, &["cniswap", "lint", "--select", "A"], &[]);
    assert_eq!(lines(&out), ["ALL"]);
    let out = complete(
        "bash",
        3,
        &["cniswap", "lint", "--ignore", "TAL001,CI"],
        &[],
    );
    let codes = lines(&out);
    assert_eq!(
        codes.first().map(String::as_str),
        Some("TAL001,CIL"),
        "{codes:?}"
    );
    assert!(codes.contains(&"TAL001,CIL001".to_string()), "{codes:?}");
}

#[test]
fn node_names_without_a_cluster_are_nothing_and_quick() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().display().to_string();
    // No kubeconfig at all.
    let started = Instant::now();
    let out = complete(
        "bash",
        3,
        &["cniswap", "verify", "--focus", "w"],
        &[("HOME", &home)],
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    assert!(started.elapsed() < Duration::from_secs(2));

    // A kubeconfig (named on the line being completed) whose server accepts and never answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let kubeconfig = dir.path().join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\nusers:\n- name: u\n  user: {{token: not-a-real-token}}\n"
        ),
    )
    .unwrap();
    let kubeconfig = kubeconfig.display().to_string();
    let started = Instant::now();
    let out = complete(
        "bash",
        5,
        &[
            "cniswap",
            "verify",
            "--kubeconfig",
            &kubeconfig,
            "--node",
            "w",
        ],
        &[("HOME", &home)],
    );
    let waited = started.elapsed();
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stdout.is_empty() && out.stderr.is_empty(), "{out:?}");
    // The deadline is 2 s; the process ends then, whatever the connection is doing.
    assert!(waited >= Duration::from_secs(2), "{waited:?}");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    drop(listener);
}
