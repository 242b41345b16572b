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
    assert_eq!(stdout(&out).lines().count(), 74);
    let out = cniswap_in(&root(), &["explain", "CIL0O1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("did you mean CIL001"));
}

/// shared/corpus: real public configs, flattened as `path__to__file`. The test needs them and
/// fails (never skips) without them: `CNISWAP_CORPUS` names the directory, else it is
/// `../shared/corpus` next to the repository.
fn corpus() -> PathBuf {
    let (path, from) = match std::env::var_os("CNISWAP_CORPUS") {
        Some(dir) => (PathBuf::from(dir), "CNISWAP_CORPUS"),
        None => (
            root().join("../shared/corpus"),
            "../shared/corpus next to the repository",
        ),
    };
    assert!(
        path.is_dir(),
        "the corpus of public configurations is missing: {} ({from}) is not a directory. \
         Set CNISWAP_CORPUS to the corpus directory (see README.md, \"Run the tests\").",
        path.display()
    );
    path
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

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn write(dir: &Path, files: &[(&str, &str)]) {
    for (path, text) in files {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", stdout(out)))
}

fn skipped(report: &serde_json::Value) -> Vec<(String, String)> {
    report["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["path"].as_str().unwrap().to_string(),
                s["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// A GitOps repository as people have them: an app chart with templates, a Cilium values file
/// in a `cilium/` directory, another chart's values, a broken file and a README.
fn gitops_repo(dir: &Path) {
    write(
        dir,
        &[
            (
                "charts/app/Chart.yaml",
                "apiVersion: v2\nname: app\nversion: 0.1.0\n",
            ),
            ("charts/app/values.yaml", "replicas: 1\n"),
            (
                "charts/app/templates/deployment.yaml",
                "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: {{ .Release.Name }}\n  labels:\n    {{- include \"app.labels\" . | nindent 4 }}\n",
            ),
            (
                "kubernetes/cilium/values.yaml",
                "cni:\n  exclusive: false\n",
            ),
            (
                "kubernetes/ingress/values.yaml",
                "controller:\n  replicas: 2\n",
            ),
            ("kubernetes/broken.yaml", "a: [\n"),
            ("README.md", "# repo\n"),
        ],
    );
}

#[test]
fn a_helm_chart_and_a_broken_file_do_not_hide_the_other_findings() {
    let dir = tempfile::tempdir().unwrap();
    gitops_repo(dir.path());
    let out = cniswap_in(dir.path(), &["lint", ".", "-o", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let report = json(&out);
    let rules: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    // cilium/values.yaml is Cilium's values by its directory, and its finding is reported.
    assert_eq!(rules, ["CIL001"], "{report}");
    assert_eq!(
        report["findings"][0]["location"]["file"],
        "kubernetes/cilium/values.yaml"
    );
    let skipped = skipped(&report);
    let reason = |path: &str| {
        skipped
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, r)| r.as_str())
            .unwrap_or_else(|| panic!("{path} not listed as skipped: {skipped:?}"))
    };
    assert!(reason("charts/app/templates/deployment.yaml").contains("Helm chart template"));
    assert!(reason("charts/app/Chart.yaml").contains("Helm chart metadata"));
    assert!(reason("kubernetes/ingress/values.yaml").contains("Helm values of chart `ingress`"));
    assert!(reason("kubernetes/broken.yaml").starts_with("cannot be read at 2:1: invalid YAML"));
    assert!(reason("README.md").contains("not a YAML or JSON file"));
    assert!(
        stderr(&out).contains("1 file could not be read and was not checked"),
        "{}",
        stderr(&out)
    );

    // The text report lists every skipped input with why.
    let out = cniswap_in(dir.path(), &["lint", "."]);
    let text = stdout(&out);
    for line in [
        "charts/app/templates/deployment.yaml: Helm chart template (chart `app`)",
        "kubernetes/ingress/values.yaml: Helm values of chart `ingress`",
        "kubernetes/broken.yaml: cannot be read at 2:1",
        "not read: 1 file not YAML or JSON by extension (README.md)",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
}

#[test]
fn verbose_says_how_each_file_was_read() {
    let dir = tempfile::tempdir().unwrap();
    gitops_repo(dir.path());
    write(
        dir.path(),
        &[(
            "talos/cp.yaml",
            "machine:\n  type: controlplane\n---\napiVersion: v1alpha1\nkind: KubePrismConfig\nport: 7445\n",
        )],
    );
    let out = cniswap_in(dir.path(), &["lint", ".", "-v"]);
    let log = stderr(&out);
    for line in [
        "INFO read kubernetes/cilium/values.yaml as Helm values (chart cilium)",
        "INFO read talos/cp.yaml as Talos v1alpha1 config, Talos KubePrismConfig document",
        "INFO skipped charts/app/templates/deployment.yaml: Helm chart template",
        "INFO skipped kubernetes/ingress/values.yaml: Helm values of chart `ingress`",
    ] {
        assert!(log.contains(line), "{line}\n{log}");
    }
    assert!(!log.contains("DEBUG"), "{log}");
    // -vv: each document, with its line.
    let log = stderr(&cniswap_in(dir.path(), &["lint", ".", "-vv"]));
    assert!(
        log.contains("DEBUG talos/cp.yaml:4: Talos KubePrismConfig document"),
        "{log}"
    );
    // Without -v, stderr has only the warning about the broken file.
    let log = stderr(&cniswap_in(dir.path(), &["lint", "."]));
    assert!(!log.contains("INFO"), "{log}");
}

#[test]
fn paths_overlapping_the_snapshot_are_read_once_and_open_as_printed() {
    let root = root();
    let alone = cniswap_in(&root, &["lint", "--snapshot", SEED_002, "-o", "json"]);
    let alone = json(&alone);
    for paths in [
        vec![SEED_002],
        vec![
            "examples/talos-flannel-to-cilium-half-migrated/talos",
            "examples/talos-flannel-to-cilium-half-migrated/helm/cilium.yaml",
        ],
    ] {
        let mut args = vec!["lint"];
        args.extend(&paths);
        args.extend(["--snapshot", SEED_002, "-o", "json"]);
        let report = json(&cniswap_in(&root, &args));
        assert_eq!(
            report["findings"], alone["findings"],
            "{paths:?}: findings differ from the snapshot alone (read twice?)"
        );
    }
    // Every location opens from the working directory as printed.
    let findings = alone["findings"].as_array().unwrap();
    assert!(findings.iter().any(|f| f["location"].is_object()));
    for f in findings {
        if let Some(file) = f["location"]["file"].as_str() {
            assert!(
                file.starts_with(&format!("{SEED_002}/")),
                "{file} is not relative to the working directory"
            );
            assert!(root.join(file).is_file(), "{file} does not open");
        }
    }
}

#[test]
fn an_unknown_rule_in_an_inline_suppression_warns() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[(
            "cilium-values.yaml",
            "cni:\n  exclusive: false # cniswap:ignore CIL0001 Multus\nipam:\n  mode: kubernetes # cniswap:ignore cni-exclusive-disabled\n",
        )],
    );
    let out = cniswap_in(dir.path(), &["lint", "."]);
    let text = stdout(&out);
    assert!(
        text.contains("warning: inline suppression names no known rule")
            && text.contains("at cilium-values.yaml:2:22: `CIL0001` is not a rule ID")
            && text.contains("`cni-exclusive-disabled` is the name of CIL001"),
        "{text}"
    );
    let report = json(&cniswap_in(dir.path(), &["lint", ".", "-o", "json"]));
    assert_eq!(report["unknown_suppressions"][0]["rule"], "CIL0001");
    assert_eq!(report["unknown_suppressions"][0]["location"]["line"], 2);
    let github = stdout(&cniswap_in(dir.path(), &["lint", ".", "-o", "github"]));
    assert!(
        github.contains("::warning file=cilium-values.yaml,line=2,col=22,"),
        "{github}"
    );
    let sarif = json(&cniswap_in(dir.path(), &["lint", ".", "-o", "sarif"]));
    let notes = &sarif["runs"][0]["invocations"][0]["toolConfigurationNotifications"];
    assert_eq!(notes.as_array().map(Vec::len), Some(2), "{sarif}");
}

#[test]
fn carets_cover_the_whole_value() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        &[(
            "talos/patch.yaml",
            "cluster:\n  network:\n    cni:\n      name: custom\n      urls:\n        - https://raw.githubusercontent.com/cilium/cilium/main/install/kubernetes/quick-install.yaml\n",
        )],
    );
    let out = cniswap_in(dir.path(), &["lint", "."]);
    insta::assert_snapshot!("tal008_caret_covers_url", stdout(&out));
}

#[test]
fn rollback_files_are_not_checked_against_the_target() {
    let dir = tempfile::tempdir().unwrap();
    // A 1.14 forward patch that removes Flannel, and its rollback that brings it back: the
    // rollback is marked by its comment (named anything) or by its name.
    write(
        dir.path(),
        &[
            (
                "talos/disable-flannel.yaml",
                "apiVersion: v1alpha1\nkind: KubeFlannelCNIConfig\n$patch: delete\n",
            ),
            (
                "talos/undo.yaml",
                "# cniswap:rollback restores Flannel\napiVersion: v1alpha1\nkind: KubeFlannelCNIConfig\nbackendType: vxlan\n",
            ),
            (
                "talos/rollback-other.yaml",
                "apiVersion: v1alpha1\nkind: KubeFlannelCNIConfig\nbackendType: vxlan\n",
            ),
        ],
    );
    let out = cniswap_in(dir.path(), &["lint", ".", "--to", "cilium", "-o", "json"]);
    let report = json(&out);
    assert_eq!(report["findings"], serde_json::json!([]), "{report}");
    let skipped = skipped(&report);
    for file in ["talos/undo.yaml", "talos/rollback-other.yaml"] {
        assert!(
            skipped
                .iter()
                .any(|(p, r)| p == file && r.starts_with("rollback file")),
            "{file}: {skipped:?}"
        );
    }
}

/// Every plan cniswap writes lints clean as shipped: its artifacts, with the plan's own target.
#[test]
fn generated_plan_artifacts_lint_clean() {
    let root = root();
    let work = tempfile::tempdir().unwrap();
    let mut checked = 0;
    for example in [
        "talos-flannel-homelab",
        "talos-1.14-multidoc",
        "kubeadm-calico-vxlan",
        "talos-flannel-to-cilium-half-migrated",
    ] {
        for to in ["flannel", "calico", "cilium"] {
            let dir = work.path().join(format!("{example}-{to}"));
            let out = cniswap_in(
                &root,
                &[
                    "plan",
                    "--snapshot",
                    &format!("examples/{example}"),
                    "--to",
                    to,
                    "--force",
                    "--out-dir",
                    dir.to_str().unwrap(),
                ],
            );
            if out.status.code() == Some(2) || !dir.join("artifacts").is_dir() {
                continue; // not a plan for this pair (the CNI already runs), or no files
            }
            let out = cniswap_in(
                &root,
                &[
                    "lint",
                    dir.join("artifacts").to_str().unwrap(),
                    "--to",
                    to,
                    "-o",
                    "json",
                ],
            );
            let report = json(&out);
            assert_eq!(
                report["findings"],
                serde_json::json!([]),
                "{example} -> {to}: generated artifacts have findings"
            );
            checked += 1;
        }
    }
    assert!(checked >= 6, "only {checked} plans had artifacts");
    // The runbook lints the rolling plan's artifacts with the flags the plan ran with: the
    // migration values and the final values (after the migration) both lint clean.
    let dir = work.path().join("rolling-cilium");
    let out = cniswap_in(
        &root,
        &[
            "plan",
            "--snapshot",
            "examples/talos-flannel-homelab",
            "--to",
            "cilium",
            "--strategy",
            "rolling",
            "--force",
            "--out-dir",
            dir.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(dir.join("artifacts/cilium/values-final.yaml").is_file());
    let artifacts = dir.join("artifacts");
    let out = cniswap_in(
        &root,
        &[
            "lint",
            artifacts.to_str().unwrap(),
            "--to",
            "cilium",
            "--strategy",
            "rolling",
            "-o",
            "json",
        ],
    );
    assert_eq!(json(&out)["findings"], serde_json::json!([]));
}
