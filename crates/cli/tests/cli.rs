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
    assert_eq!(plan["schema_version"], 2);
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
    assert_eq!(rules.as_array().unwrap().len(), 74);
}

fn cniswap_env(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_cniswap"));
    cmd.args(args)
        .current_dir(dir)
        .env_remove("KUBECONFIG")
        .env_remove("NO_COLOR")
        .env_remove("CLICOLOR_FORCE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("run cniswap")
}

#[test]
fn colour_with_color_always_and_plain_in_pipes() {
    let work = tempfile::tempdir().unwrap();
    let root = work.path().join("root");
    std::fs::create_dir(&root).unwrap();
    let half = example(HALF);
    let commands: Vec<Vec<&str>> = vec![
        vec!["plan", "--snapshot", &half, "--to", "cilium"],
        vec!["explain", "CIL001"],
        vec!["explain", "--list"],
        vec!["inspect", "--snapshot", &half],
        vec!["node", "inventory", "--root", root.to_str().unwrap()],
    ];
    for args in commands {
        let always = cniswap_in(work.path(), &[&["--color", "always"][..], &args].concat());
        assert!(
            text(&always.stdout).contains("\u{1b}["),
            "{args:?}: no colour with --color always"
        );
        let piped = cniswap_in(work.path(), &args);
        assert!(
            !text(&piped.stdout).contains('\u{1b}'),
            "{args:?}: colour in a pipe"
        );
    }
    // inspect colours its findings, not only headings.
    let out = cniswap_in(
        work.path(),
        &["--color", "always", "inspect", "--snapshot", &half],
    );
    let findings = text(&out.stdout);
    let findings = &findings[findings.find("Findings").unwrap()..];
    assert!(
        findings.lines().skip(1).all(|l| l.contains("\u{1b}[")),
        "{findings}"
    );
}

/// Lines of `text` that a terminal or a CI runner would act on: a workflow command at the
/// start of a line, or an escape sequence anywhere.
fn forged(text: &str) -> Vec<String> {
    text.lines()
        .filter(|l| l.trim_start().starts_with("::") || l.contains('\u{1b}'))
        .map(str::to_string)
        .collect()
}

#[test]
fn control_characters_in_names_never_reach_a_line_start_or_the_terminal() {
    let work = tempfile::tempdir().unwrap();
    let repo = work.path().join("repo");
    std::fs::create_dir(&repo).unwrap();
    // A finding points into this file, so its name is printed in every format.
    let evil = "x\n::error file=a.yaml,line=1::forged\u{1b}[2J-cilium-values.yaml";
    std::fs::write(
        repo.join(evil),
        "cni:\n  exclusive: false\nipam:\n  mode: kubernetes\n",
    )
    .unwrap();
    // A skipped file, and a value with an escape sequence that a finding quotes.
    std::fs::write(
        repo.join("\u{1b}]0;owned\u{7}\n::warning::x.yaml"),
        "a: [\n",
    )
    .unwrap();
    std::fs::write(
        repo.join("talos.yaml"),
        "machine:\n  type: worker\ncluster:\n  network:\n    cni:\n      name: \"none\u{1b}[31m\\n::error::x\"\n      urls: [\"https://example.com/\u{1b}[2J/main/x.yaml\"]\n",
    )
    .unwrap();

    for args in [
        vec!["lint", "repo"],
        vec!["lint", "repo", "-v"],
        vec!["lint", "repo", "-vv", "--to", "cilium"],
        vec!["snapshot", "--snapshot", "repo", "--out-dir", "snap"],
        vec!["inspect", "--snapshot", "repo"],
        vec!["inspect", "--snapshot", "no\nsuch\u{1b}[2J::error::dir"],
    ] {
        let out = cniswap_env(work.path(), &args, &[("NO_COLOR", "1")]);
        assert!(
            matches!(out.status.code(), Some(0..=2)),
            "{args:?}: exit {:?}",
            out.status.code()
        );
        for (stream, bytes) in [("stdout", &out.stdout), ("stderr", &out.stderr)] {
            let lines = forged(&text(bytes));
            assert!(lines.is_empty(), "{args:?} {stream}: {lines:#?}");
        }
    }
    let out = cniswap_env(work.path(), &["lint", "repo", "-o", "github"], &[]);
    let github = text(&out.stdout);
    for line in github.lines() {
        assert!(
            line.starts_with("::error ")
                || line.starts_with("::warning ")
                || line.starts_with("::notice ")
                || line.starts_with("cniswap: "),
            "not a workflow command of ours: {line:?}\n{github}"
        );
        if let Some(rest) = line.strip_prefix("::") {
            // Exactly one command per line: the forged `::error` of the file name is escaped.
            assert_eq!(rest.matches("::").count(), 1, "{line}");
        }
    }
    assert!(
        github.contains("file=repo/x%0A%3A%3Aerror file=a.yaml%2Cline=1%3A%3Aforged"),
        "{github}"
    );
}

#[test]
fn reports_say_what_the_facts_say() {
    let work = tempfile::tempdir().unwrap();
    let out = cniswap_in(work.path(), &["inspect", "--snapshot", &example(HALF)]);
    let report = text(&out.stdout);
    // Only Talos versions differ: say so, and which.
    assert!(
        report.contains("Talos versions differ (v1.10.2 on 4 nodes, v1.10.5 on 2 nodes)"),
        "{report}"
    );
    assert!(!report.contains("mixed versions"), "{report}");
    assert!(
        report.contains("Kubernetes v1.33.1 on 6 nodes\n"),
        "{report}"
    );
    // The node x CNI table: agents whose pods exist but are not ready are shown, not `-`,
    // beside the node's pod range.
    let header = report
        .lines()
        .find(|l| l.trim_start().starts_with("NODE "))
        .unwrap();
    assert_eq!(header, "  NODE          POD-CIDR       FLANNEL    CILIUM");
    let row = report
        .lines()
        .find(|l| l.trim_start().starts_with("talos-cp-02 ") && l.contains("/24"))
        .unwrap();
    assert_eq!(row, "  talos-cp-02   10.244.1.0/24  not ready  not ready");
    assert!(
        report.contains("  talos-cp-01   10.244.0.0/24  running    running\n"),
        "{report}"
    );

    // Counts agree with their nouns.
    let out = cniswap_in(
        work.path(),
        &[
            "plan",
            "--snapshot",
            &example("talos-flannel-homelab"),
            "--to",
            "cilium",
            "--force",
        ],
    );
    let summary = text(&out.stdout);
    assert!(summary.contains("(3 steps, 1 rollback step)"), "{summary}");
    // (", 11 rollback steps)" is right; ", 1 rollback steps)" is not.)
    assert!(!summary.contains(", 1 rollback steps"), "{summary}");
}
