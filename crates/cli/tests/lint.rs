//! End-to-end tests of `cniswap lint` and `cniswap explain`: renderings (snapshot tests),
//! exit codes, suppressions, secrets, and the real public configurations of shared/corpus.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn cniswap_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args(args)
        .current_dir(dir)
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run cniswap")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

const SEED_002: &str = "examples/talos-flannel-to-cilium-half-migrated";

#[test]
fn text_output_is_rustc_style_with_source_line_and_help() {
    let out = cniswap_in(
        &root(),
        &[
            "lint",
            &format!("{SEED_002}/helm/cilium.yaml"),
            "--to",
            "cilium",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    insta::assert_snapshot!("seed_002_values_text", stdout(&out));
}

#[test]
fn json_output_has_the_documented_finding_fields() {
    let out = cniswap_in(&root(), &["lint", SEED_002, "-o", "json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let first = &report["findings"][0];
    for key in ["rule", "name", "severity", "message", "help"] {
        assert!(first.get(key).is_some(), "missing {key}: {first}");
    }
    insta::assert_json_snapshot!("seed_002_json", report);
}

#[test]
fn sarif_output_has_real_regions() {
    let out = cniswap_in(&root(), &["lint", SEED_002, "-o", "sarif"]);
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(sarif["version"], "2.1.0");
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    let cil001 = results.iter().find(|r| r["ruleId"] == "CIL001").unwrap();
    let region = &cil001["locations"][0]["physicalLocation"]["region"];
    assert_eq!(
        (region["startLine"].as_i64(), region["startColumn"].as_i64()),
        (Some(10), Some(14))
    );
    insta::assert_json_snapshot!("seed_002_sarif_results", results);
}

#[test]
fn github_output_is_workflow_commands() {
    let out = cniswap_in(
        &root(),
        &[
            "lint",
            &format!("{SEED_002}/helm/cilium.yaml"),
            "-o",
            "github",
        ],
    );
    let text = stdout(&out);
    assert!(
        text.lines().all(|l| l.starts_with("::error ")
            || l.starts_with("::warning ")
            || l.starts_with("::notice ")),
        "{text}"
    );
    assert!(text.contains("file=examples/talos-flannel-to-cilium-half-migrated/helm/cilium.yaml,line=10,col=14,title=CIL001 cni-exclusive-disabled::"), "{text}");
}

#[test]
fn the_seed_002_pitfalls_are_all_found() {
    // The post-mortem's failures: cni.exclusive false, kubeProxyReplacement strict, Flannel still
    // deployed after `cni: none`, two CNIs, an upgrade in flight, storage on the pod network.
    let out = cniswap_in(&root(), &["lint", SEED_002, "--to", "cilium", "-o", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rules: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    for rule in [
        "CIL001", "CIL002", "TAL002", "TAL005", "MIG004", "MIG012", "MIG013", "CIL010", "CIL011",
    ] {
        assert!(rules.contains(&rule), "{rule} missing from {rules:?}");
    }
}

#[test]
fn severity_threshold_decides_the_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cilium-values.yaml"),
        "cni:\n  exclusive: false\nipam:\n  mode: kubernetes\n",
    )
    .unwrap();
    // A warning only: exit 1 at the default threshold (warning), 0 with --severity error.
    assert_eq!(
        cniswap_in(dir.path(), &["lint", "."]).status.code(),
        Some(1)
    );
    assert_eq!(
        cniswap_in(dir.path(), &["lint", ".", "--severity", "error"])
            .status
            .code(),
        Some(0)
    );
}

#[test]
fn inline_and_config_suppressions_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("cilium-values.yaml"),
        "cni:\n  # cniswap:ignore CIL001 Multus owns the CNI config directory\n  exclusive: false\ncgroup:\n  automount: {enabled: false}\n",
    )
    .unwrap();
    let out = cniswap_in(dir.path(), &["lint", ".", "-o", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["suppressed"], 1);
    assert_eq!(
        report["suppressed"][0]["by"],
        "inline: Multus owns the CNI config directory"
    );
    assert!(
        report["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "CIL017")
    );

    std::fs::write(dir.path().join(".cniswap.yaml"), "ignore:\n  - rules: [CIL017]\n    paths: [\"./cilium-*.yaml\", \"cilium-*.yaml\"]\n    reason: reviewed\n").unwrap();
    let out = cniswap_in(dir.path(), &["lint", ".", "-o", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["summary"]["suppressed"], 2, "{report}");
    assert_eq!(out.status.code(), Some(0));

    std::fs::write(
        dir.path().join(".cniswap.yaml"),
        "ignore:\n  - rules: [XYZ999]\n",
    )
    .unwrap();
    let out = cniswap_in(dir.path(), &["lint", "."]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown rule `XYZ999`"));
}

#[test]
fn secrets_never_appear_in_lint_output() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("patch.yaml"),
        "metadata:\n  type: ConfigPatches.omni.sidero.dev\n  id: 400-x\n  labels:\n    omni.sidero.dev/cluster: lab\nspec:\n  data: |\n    cluster:\n      secret: c2VjcmV0LXZhbHVlLXRoYXQtbXVzdC1ub3QtbGVhaw==\n      clusterName: other\n",
    )
    .unwrap();
    for format in ["text", "json", "sarif", "github"] {
        let out = cniswap_in(dir.path(), &["lint", ".", "-o", format]);
        let text = stdout(&out);
        assert!(text.contains("TAL015"), "{format}: {text}");
        assert!(
            !text.contains("c2VjcmV0"),
            "{format} leaked the secret: {text}"
        );
    }
}

#[test]
fn unparseable_templates_are_reported_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("machine.yaml.j2"),
        "machine:\n  network: {{ broken\n    - [\n",
    )
    .unwrap();
    let out = cniswap_in(dir.path(), &["lint", "."]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("template does not parse as YAML until rendered"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to lint"));
}

#[test]
fn explain_prints_docs_and_lists_rules() {
    let out = cniswap_in(&root(), &["explain", "TAL007"]);
    assert_eq!(out.status.code(), Some(0));
    let text = stdout(&out);
    for section in [
        "# TAL007 host-dns-forwarding-vs-bpf-host-routing",
        "## What it does",
        "## Why is this bad",
        "## Example",
        "## Fix",
        "## References",
        "talos#10002",
    ] {
        assert!(text.contains(section), "{section}");
    }
    let out = cniswap_in(&root(), &["explain", "--list"]);
    assert_eq!(stdout(&out).lines().count(), 69);
    let out = cniswap_in(&root(), &["explain", "CIL0O1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean CIL001"));
}

/// shared/corpus: real public configs, flattened as `path__to__file`. The test needs them;
/// CNISWAP_CORPUS points elsewhere when the checkout is not next to ../shared.
fn corpus() -> PathBuf {
    let candidates = [
        std::env::var_os("CNISWAP_CORPUS").map(PathBuf::from),
        Some(root().join("../shared/corpus")),
        Some(PathBuf::from("/work/shared/corpus")),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|p| p.is_dir())
        .expect("shared/corpus not found: set CNISWAP_CORPUS to its directory")
}

/// Restores a corpus repository's directory layout (talconfig patches refer to relative paths).
fn materialise(repo: &Path, into: &Path) {
    for entry in std::fs::read_dir(repo).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().to_string_lossy().replace("__", "/");
        let target = into.join(name);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::copy(entry.path(), target).unwrap();
    }
}

#[test]
fn every_corpus_repository_lints_without_panic_or_input_error() {
    let corpus = corpus();
    let mut repos: Vec<PathBuf> = std::fs::read_dir(&corpus)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .collect();
    repos.sort();
    assert!(
        repos.len() >= 25,
        "expected the corpus repositories, found {}",
        repos.len()
    );
    let work = tempfile::tempdir().unwrap();
    let mut summary = String::new();
    for repo in &repos {
        let name = repo.file_name().unwrap().to_string_lossy().to_string();
        materialise(repo, &work.path().join(&name));
        let out = cniswap_in(work.path(), &["lint", &name, "-o", "json"]);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{name}: exit {:?}\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        summary.push_str(&format!("{name}\n"));
        for f in report["findings"].as_array().unwrap() {
            let at = f["location"].as_object().map_or(String::new(), |l| {
                format!(
                    "{}:{}",
                    l["file"]
                        .as_str()
                        .unwrap()
                        .trim_start_matches(&format!("{name}/")),
                    l["line"]
                )
            });
            summary.push_str(&format!(
                "  {} {} {at}\n",
                f["rule"].as_str().unwrap(),
                f["severity"].as_str().unwrap()
            ));
        }
    }
    // Every line of this snapshot was reviewed against the repository (see the issue note).
    insta::assert_snapshot!("corpus_findings", summary);
}
