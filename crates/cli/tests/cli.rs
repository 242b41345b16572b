//! The command line itself: output options, deprecated spellings, help texts, colour, and
//! escaping of untrusted text in every human output.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
        .display()
        .to_string()
}

fn cniswap_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args(args)
        .current_dir(dir)
        .env_remove("KUBECONFIG")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE")
        .output()
        .expect("run cniswap")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut all: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    all.sort();
    all
}

const HALF: &str = "talos-flannel-to-cilium-half-migrated";

#[test]
fn plan_dash_o_is_a_format_and_out_dir_a_directory() {
    let work = tempfile::tempdir().unwrap();
    let snapshot = example(HALF);
    let out = cniswap_in(
        work.path(),
        &[
            "plan",
            "--snapshot",
            &snapshot,
            "--to",
            "cilium",
            "-o",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["schema_version"], 1);
    assert_eq!(plan["to"], "cilium");
    assert!(
        entries(work.path()).is_empty(),
        "-o json wrote {:?}",
        entries(work.path())
    );

    let out = cniswap_in(
        work.path(),
        &[
            "plan",
            "--snapshot",
            &snapshot,
            "--to",
            "cilium",
            "-o",
            "yaml",
        ],
    );
    let yaml: serde_json::Value = serde_saphyr::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(yaml, plan);

    let out = cniswap_in(
        work.path(),
        &[
            "plan",
            "--snapshot",
            &snapshot,
            "--to",
            "cilium",
            "--out-dir",
            "p",
            "-o",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(work.path().join("p/plan.yaml").is_file());
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
}

#[test]
fn old_spellings_still_work_with_a_deprecation_note() {
    let work = tempfile::tempdir().unwrap();
    let snapshot = example(HALF);
    // plan -o DIR
    let out = cniswap_in(
        work.path(),
        &[
            "plan",
            "--snapshot",
            &snapshot,
            "--to",
            "cilium",
            "-o",
            "old-plan",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(work.path().join("old-plan/plan.yaml").is_file());
    assert!(
        text(&out.stderr).contains("deprecated")
            && text(&out.stderr).contains("--out-dir old-plan"),
        "{}",
        text(&out.stderr)
    );
    // snapshot --output DIR
    let out = cniswap_in(
        work.path(),
        &["snapshot", "--snapshot", &snapshot, "--output", "old-snap"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        work.path()
            .join("old-snap/talos/controlplane.yaml")
            .is_file()
    );
    assert!(text(&out.stderr).contains("--out-dir old-snap"));
    // lint --format FORMAT
    let out = cniswap_in(
        work.path(),
        &[
            "lint",
            &format!("{snapshot}/helm/cilium.yaml"),
            "--format",
            "json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(report["findings"].as_array().is_some_and(|f| !f.is_empty()));
    assert!(
        text(&out.stderr)
            .contains("`cniswap lint --format` is deprecated: write `-o/--output FORMAT`"),
        "{}",
        text(&out.stderr)
    );
    // ... and the new spelling says nothing on stderr.
    let out = cniswap_in(
        work.path(),
        &[
            "lint",
            &format!("{snapshot}/helm/cilium.yaml"),
            "-o",
            "json",
        ],
    );
    assert!(text(&out.stderr).is_empty(), "{}", text(&out.stderr));
    // A directory and --out-dir together cannot mean anything.
    let out = cniswap_in(
        work.path(),
        &[
            "plan",
            "--snapshot",
            &snapshot,
            "--to",
            "cilium",
            "-o",
            "x",
            "--out-dir",
            "y",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn snapshot_needs_a_directory() {
    let work = tempfile::tempdir().unwrap();
    let out = cniswap_in(
        work.path(),
        &["snapshot", "--snapshot", &example(HALF), "-o", "json"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--out-dir DIR"),
        "{}",
        text(&out.stderr)
    );
    assert!(entries(work.path()).is_empty());
}

#[test]
fn explain_has_machine_formats() {
    let work = tempfile::tempdir().unwrap();
    let out = cniswap_in(work.path(), &["explain", "CIL001", "-o", "json"]);
    assert_eq!(out.status.code(), Some(0));
    let rule: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(rule["id"], "CIL001");
    assert_eq!(rule["name"], "cni-exclusive-disabled");
    assert!(rule["docs"].as_str().unwrap().starts_with("# CIL001"));
    let out = cniswap_in(work.path(), &["explain", "--list", "-o", "yaml"]);
    let rules: serde_json::Value = serde_saphyr::from_str(&text(&out.stdout)).unwrap();
    assert_eq!(rules.as_array().unwrap().len(), 69);
}
