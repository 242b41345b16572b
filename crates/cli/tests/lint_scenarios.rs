//! Scenarios built from public GitOps repositories (issue 18), each in tests/scenarios/<name>
//! with a SOURCE.md that names where the excerpts come from and the findings an expert expects,
//! decided before lint was run. Each test checks exactly those findings, at file and line.
#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/scenarios")
        .join(name)
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

/// `RULE file:line` for every finding of `lint . ARGS -o json`, sorted.
fn findings(dir: &Path, args: &[&str]) -> Vec<String> {
    let mut all = vec!["lint", "."];
    all.extend(args);
    all.extend(["-o", "json"]);
    let out = cniswap_in(dir, &all);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "exit {:?}: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut found: Vec<String> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            let at = f["location"].as_object().map_or("-".to_string(), |l| {
                format!("{}:{}", l["file"].as_str().unwrap(), l["line"])
            });
            format!("{} {at}", f["rule"].as_str().unwrap())
        })
        .collect();
    found.sort();
    found
}

#[test]
fn talhelper_patches_and_flux_values_from_a_generated_config_map() {
    let dir = scenario("talhelper-flux-valuesfrom");
    let values = "kubernetes/apps/kube-system/cilium/app/helm/values.yaml";
    assert_eq!(
        findings(&dir, &[]),
        [
            format!("CIL001 {values}:12"),
            format!("CIL004 {values}:8"),
            format!("CIL017 {values}:8"),
            format!("TAL007 {values}:5"),
        ]
    );
    // The values were read as the HelmRelease's (through valuesFrom), not as a loose file.
    let out = cniswap_in(&dir, &["lint", ".", "-o", "json"]);
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for finding in report["findings"].as_array().unwrap() {
        assert_eq!(
            finding["object"], "kubernetes/apps/kube-system/cilium/app/helmrelease.yaml",
            "{finding}"
        );
    }
    // The `@` patches were read without being named, and the finding says where the
    // forwarding is set.
    let out = cniswap_in(&dir, &["lint", "."]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("set in talos/patches/controller/machine-features.yaml:6"),
        "{text}"
    );
    assert!(!text.contains("Skipped"), "{text}");
}

#[test]
fn inline_values_are_merged_over_values_from() {
    let dir = scenario("flux-inline-plus-valuesfrom");
    assert_eq!(findings(&dir, &[]), Vec::<String>::new());
    // Negative control: the same release without its valuesFrom (inline values alone) is
    // what lint used to check, and it does fire.
    let work = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(work.path().join("talos")).unwrap();
    std::fs::copy(
        dir.join("talos/cni.yaml"),
        work.path().join("talos/cni.yaml"),
    )
    .unwrap();
    let release = std::fs::read_to_string(dir.join("cluster/cilium/helmrelease.yaml")).unwrap();
    let (head, rest) = release.split_once("  valuesFrom:\n").unwrap();
    let inline = &rest[rest.find("  values:\n").unwrap()..];
    std::fs::write(
        work.path().join("helmrelease.yaml"),
        format!("{head}{inline}"),
    )
    .unwrap();
    let alone = findings(work.path(), &[]);
    let rules: Vec<&str> = alone.iter().map(|f| &f[..6]).collect();
    assert_eq!(rules, ["CIL003", "CIL003", "CIL004", "CIL004"], "{alone:?}");
}

#[test]
fn talos_1_13_with_a_resolver_config_is_read_as_1_13() {
    let dir = scenario("talos-1.13-resolver-config");
    assert_eq!(
        findings(&dir, &["--to", "cilium"]),
        ["TAL006 controlplane.yaml:9"]
    );
    let out = cniswap_in(&dir, &["-v", "lint", ".", "--to", "cilium"]);
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(
        log.contains(
            "Talos 1.13 for controlplane.yaml (from the installer image in controlplane.yaml)"
        ),
        "{log}"
    );
}

#[test]
fn rules_are_selected_and_ignored_like_ruff() {
    let dir = scenario("talhelper-flux-valuesfrom");
    let values = "kubernetes/apps/kube-system/cilium/app/helm/values.yaml";
    assert_eq!(
        findings(&dir, &["--ignore", "CIL"]),
        [format!("TAL007 {values}:5")]
    );
    assert_eq!(
        findings(&dir, &["--select", "CIL001,talos-cgroup-automount"]),
        [format!("CIL001 {values}:12"), format!("CIL004 {values}:8")]
    );
    // The more specific code wins: select a prefix, ignore one rule of it.
    assert_eq!(
        findings(&dir, &["--select", "CIL", "--ignore", "CIL017,CIL004"]),
        [format!("CIL001 {values}:12")]
    );
    let work = tempfile::tempdir().unwrap();
    let config = work.path().join("cniswap.yaml");
    std::fs::write(
        &config,
        "select: [ALL]\nignore:\n  - TAL007\n  - rules: [CIL001]\n    reason: Multus\n",
    )
    .unwrap();
    assert_eq!(
        findings(&dir, &["--config", config.to_str().unwrap()]),
        [format!("CIL004 {values}:8"), format!("CIL017 {values}:8")]
    );
    let out = cniswap_in(&dir, &["lint", ".", "--ignore", "TAL99"]);
    assert_eq!(out.status.code(), Some(2));
    let error = String::from_utf8_lossy(&out.stderr);
    assert!(error.contains("`TAL99` matches no rule"), "{error}");
    // The text report counts per rule.
    let out = cniswap_in(&dir, &["lint", "."]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Per rule:\n"), "{text}");
    assert!(text.contains("1  TAL007  error"), "{text}");
}

#[test]
fn sarif_results_always_have_a_location() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // Cluster findings of a snapshot have no file of their own.
    let out = cniswap_in(
        &root,
        &[
            "lint",
            "--snapshot",
            "examples/talos-flannel-to-cilium-half-migrated",
            "--to",
            "cilium",
            "-o",
            "sarif",
        ],
    );
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert!(!results.is_empty());
    for result in results {
        let uri = &result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"];
        assert!(uri.as_str().is_some_and(|u| !u.is_empty()), "{result}");
    }
}

#[test]
fn repeated_findings_are_grouped_and_real_manifests_are_not_refused() {
    let work = tempfile::tempdir().unwrap();
    let url = "https://raw.githubusercontent.com/cilium/cilium/main/install/kubernetes/quick-install.yaml";
    for cluster in ["hetzner", "proxmox"] {
        std::fs::create_dir_all(work.path().join(cluster)).unwrap();
        std::fs::write(
            work.path().join(format!("{cluster}/patch.yaml")),
            format!(
                "cluster:\n  network:\n    cni:\n      name: custom\n      urls:\n        - {url}\n"
            ),
        )
        .unwrap();
    }
    // Chart output with `labels: null`, and a kustomize base with a placeholder name.
    std::fs::write(
        work.path().join("hetzner/manifests.yaml"),
        "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: cilium\n  namespace: kube-system\n  labels: null\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: _\ndata:\n  a: b\n",
    )
    .unwrap();
    let out = cniswap_in(work.path(), &["lint", "."]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(text.matches("warning[TAL008]").count(), 1, "{text}");
    assert!(
        text.contains("also at 1 other place: proxmox/patch.yaml:6"),
        "{text}"
    );
    assert!(
        text.contains("hetzner/manifests.yaml:8: ConfigMap _: not read as a cluster object"),
        "{text}"
    );
}

#[test]
fn helmfile_releases_and_go_template_values() {
    let dir = scenario("helmfile-gotmpl");
    assert_eq!(findings(&dir, &[]), ["TAL007 values/cilium.yaml.gotmpl:17"]);
    let out = cniswap_in(&dir, &["lint", "."]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("Cilium 1.17.4 runs"), "{text}");
    assert!(text.contains("set in talos/patch.yaml:7"), "{text}");
    assert!(
        text.contains("Read in part (1 input):\n  values/cilium.yaml.gotmpl"),
        "{text}"
    );
}
