//! End-to-end tests of the `cniswap` binary on the example snapshots and on bad input.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn cniswap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .expect("run cniswap")
}

fn inspect_json(example: &str) -> serde_json::Value {
    let path = examples().join(example);
    let out = cniswap(&[
        "inspect",
        "--snapshot",
        path.to_str().unwrap(),
        "-o",
        "json",
    ]);
    // 1 = error findings, which several examples have on purpose.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("valid JSON")
}

/// Rule IDs of the findings of an inspect JSON report.
fn rules(report: &serde_json::Value) -> Vec<String> {
    report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap().to_string())
        .collect()
}

fn cni<'a>(facts: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    facts["cnis"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {}", facts["cnis"]))
}

#[test]
fn talos_flannel_homelab() {
    let report = inspect_json("talos-flannel-homelab");
    assert_eq!(report["schema_version"], 1);
    assert_eq!(rules(&report), ["MIG003", "MIG002", "MIG004"]);
    let f = &report["facts"];
    assert_eq!(f["platform"]["kind"], "talos");
    assert_eq!(f["platform"]["version"], "v1.10.5");
    let flannel = cni(f, "flannel");
    assert_eq!(flannel["running"], true);
    assert_eq!(flannel["install"], "talos");
    assert_eq!(
        flannel["flannel"]["port"], 4789,
        "Talos renders VXLAN on 4789"
    );
    assert_eq!(flannel["active_nodes"].as_array().unwrap().len(), 3);
    assert_eq!(f["kube_proxy"]["present"], true);
    assert_eq!(f["kube_proxy"]["mode"], "nftables");
    assert_eq!(f["dns"]["talos_host_dns"]["forward_kube_dns_to_host"], true);
    assert_eq!(f["workloads"]["bare_pods"][0]["name"], "netshoot");
    assert_eq!(f["workloads"]["blocking_pdbs"][0]["name"], "immich-server");
    assert!(
        f["workloads"]["storage_on_pod_network"][0]
            .as_str()
            .unwrap()
            .contains("driver.longhorn.io")
    );
    assert_eq!(f["talos"]["configs"][0]["format"], "v1alpha1");
}

#[test]
fn talos_114_multidoc_keeps_flannel_despite_cni_none_patch() {
    let f = &inspect_json("talos-1.14-multidoc")["facts"];
    let configs = f["talos"]["configs"].as_array().unwrap();
    let full = configs.iter().find(|c| c["kind"] == "full").unwrap();
    assert_eq!(full["format"], "multi-document");
    assert_eq!(full["flannel_document"], true);
    assert_eq!(full["cni"], "flannel");
    assert_eq!(full["node"], "10.5.0.2");
    assert_eq!(full["kube_prism_port"], 7445);
    assert_eq!(full["pod_subnets"], serde_json::json!(["10.244.0.0/16"]));
    assert!(
        configs
            .iter()
            .any(|c| c["kind"] == "patch" && c["cni"] == "none")
    );
    assert_eq!(
        f["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|n| n["zone"] == "zone-a")
            .count(),
        2
    );
}

#[test]
fn kubeadm_calico_operator_vxlan() {
    let f = &inspect_json("kubeadm-calico-vxlan")["facts"];
    assert_eq!(f["platform"]["kind"], "kubeadm");
    let calico = cni(f, "calico");
    assert_eq!(calico["install"], "tigera-operator");
    assert_eq!(calico["version"], "v3.31.0");
    assert_eq!(calico["calico"]["dataplane"], "Iptables");
    assert_eq!(
        calico["calico"]["encapsulation"],
        serde_json::json!(["VXLAN"])
    );
    assert_eq!(calico["calico"]["bgp"], "Disabled");
    assert_eq!(f["kube_proxy"]["mode"], "iptables");
    assert_eq!(f["workloads"]["network_policies"], 2);
    assert_eq!(f["workloads"]["cni_policies"].as_array().unwrap().len(), 2);
    assert_eq!(
        f["workloads"]["fail_closed_webhooks"][0]["service"],
        "kyverno/kyverno-svc"
    );
    assert_eq!(
        f["dns"]["coredns"]["nodes"],
        serde_json::json!(["k8s-node-01"])
    );
    let pods: Vec<&str> = f["cidrs"]["pod"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["source"].as_str().unwrap())
        .collect();
    assert!(
        pods.iter().any(|s| s.contains("kubeadm-config"))
            && pods.iter().any(|s| s.contains("--cluster-cidr"))
    );
}

#[test]
fn seed_002_half_migrated_shows_every_pitfall_input() {
    let f = &inspect_json("talos-flannel-to-cilium-half-migrated")["facts"];
    let running: Vec<&str> = f["cnis"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["running"] == true)
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(running, vec!["flannel", "cilium"], "both dataplanes run");
    let cilium = &cni(f, "cilium")["cilium"];
    assert_eq!(cilium["cni_exclusive"], false);
    assert_eq!(cilium["kube_proxy_replacement"], "strict");
    assert_eq!(cilium["tunnel_port"], 8473);
    assert_eq!(cilium["ipam_mode"], "cluster-pool");
    assert_eq!(cilium["host_legacy_routing"], true);
    assert_eq!(
        cni(f, "cilium")["pod_cidrs"],
        serde_json::json!(["10.245.0.0/16"])
    );
    assert_eq!(
        f["kubernetes"]["mixed_versions"], true,
        "Talos 1.10.2 and 1.10.5 nodes"
    );
    assert_eq!(f["kube_proxy"]["replaced_by"], "cilium");
    assert_eq!(f["kube_proxy"]["present"], true);
    assert_eq!(f["dns"]["talos_host_dns"]["forward_kube_dns_to_host"], true);
    assert_eq!(f["dns"]["coredns"]["ready"], 0);
    let talos_cni: Vec<&str> = f["talos"]["configs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["cni"].as_str())
        .collect();
    assert!(
        talos_cni.iter().all(|c| *c == "none"),
        "Talos stopped rendering Flannel, yet its DaemonSet runs"
    );
}

#[test]
fn yaml_output_has_the_same_top_level_keys() {
    let path = examples().join("kubeadm-calico-vxlan");
    let out = cniswap(&[
        "inspect",
        "--snapshot",
        path.to_str().unwrap(),
        "-o",
        "yaml",
    ]);
    assert!(matches!(out.status.code(), Some(0 | 1)));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("schema_version: 1")
            && text.contains("facts:")
            && text.contains("findings:")
            && text.contains("rule: MIG003"),
        "{text}"
    );
}

#[test]
fn text_output_in_a_pipe_has_no_colour_codes() {
    let path = examples().join("talos-flannel-homelab");
    let out = cniswap(&["inspect", "--snapshot", path.to_str().unwrap()]);
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(!text.contains('\u{1b}'), "ANSI escapes in a pipe");
    assert!(text.contains("flannel v0.26.7") && text.contains("UDP port 4789"));
}

// ---------------------------------------------------------------- bad input

fn expect_input_error(args: &[&str], needle: &str) -> String {
    let out = cniswap(args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(stderr.contains(needle), "expected {needle:?} in: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

#[test]
fn truncated_yaml_names_file_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("cluster")).unwrap();
    let file = dir.path().join("cluster/nodes.yaml");
    std::fs::write(&file, "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Node\n  metadata: {name: \"n1\n").unwrap();
    let stderr = expect_input_error(
        &["inspect", "--snapshot", dir.path().to_str().unwrap()],
        "cluster/nodes.yaml:",
    );
    assert!(stderr.contains("help:"), "{stderr}");
}

#[test]
fn truncated_json_names_position() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pods.json");
    std::fs::write(
        &file,
        "{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [{\"kind\": \"Pod\", ",
    )
    .unwrap();
    expect_input_error(
        &["inspect", "--snapshot", file.to_str().unwrap()],
        "pods.json:1:",
    );
}

#[test]
fn wrong_field_type_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pod.json");
    std::fs::write(
        &file,
        r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"hostNetwork":"yes"}}"#,
    )
    .unwrap();
    expect_input_error(
        &["inspect", "--snapshot", file.to_str().unwrap()],
        "pod.json:1:",
    );
}

#[test]
fn document_without_kind_in_cluster_dir_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("cluster")).unwrap();
    std::fs::write(
        dir.path().join("cluster/values.yaml"),
        "ipam:\n  mode: kubernetes\n",
    )
    .unwrap();
    expect_input_error(
        &["inspect", "--snapshot", dir.path().to_str().unwrap()],
        "without `kind`",
    );
}

#[test]
fn binary_file_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("nodes.yaml"),
        [0x7f, b'E', b'L', b'F', 0, 0, 1, 2],
    )
    .unwrap();
    expect_input_error(
        &["inspect", "--snapshot", dir.path().to_str().unwrap()],
        "binary",
    );
}

#[test]
fn empty_directory_is_an_input_error() {
    let dir = tempfile::tempdir().unwrap();
    expect_input_error(
        &["inspect", "--snapshot", dir.path().to_str().unwrap()],
        "no snapshot files found",
    );
}

#[test]
fn missing_path_is_an_input_error() {
    expect_input_error(
        &["inspect", "--snapshot", "/nonexistent/cniswap-snapshot"],
        "cannot read snapshot",
    );
}

#[test]
fn unreadable_file_is_an_input_error() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("nodes.yaml");
    std::fs::write(&file, "apiVersion: v1\nkind: Node\nmetadata: {name: a}\n").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o000)).unwrap();
    // root ignores file modes; the test is only meaningful for other users.
    if std::fs::read(&file).is_ok() {
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::remove_file(&file).unwrap();
        std::os::unix::fs::symlink("/nonexistent/target", &file).unwrap();
    }
    expect_input_error(
        &["inspect", "--snapshot", dir.path().to_str().unwrap()],
        "nodes.yaml",
    );
}

#[test]
fn unknown_files_are_listed_as_skipped_not_ignored() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), "hello").unwrap();
    std::fs::write(
        dir.path().join("node.yaml"),
        "apiVersion: v1\nkind: Node\nmetadata: {name: a}\n",
    )
    .unwrap();
    let out = cniswap(&[
        "inspect",
        "--snapshot",
        dir.path().to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["facts"]["inputs"]["skipped"][0]["path"], "notes.txt");
}

#[test]
fn usage_error_exits_2() {
    let out = cniswap(&["inspect", "--output", "xml"]);
    assert_eq!(out.status.code(), Some(2));
}

// ---------------------------------------------------------------- secrets

/// A full Talos machine config with secrets generated at test time (no secret is stored in
/// the repository): none of them may reach inspect's output or a written snapshot.
#[test]
fn talos_secrets_never_reach_output_or_snapshots() {
    let seed = std::process::id();
    let secret = |name: &str| format!("{name}-{seed:x}-c2VjcmV0LXZhbHVl");
    let secrets = [
        "token",
        "cakey",
        "clustersecret",
        "clustertoken",
        "clustercakey",
        "aggkey",
        "sakey",
        "etcdkey",
        "secretbox",
        "aescbc",
        "wgkey",
    ]
    .map(secret);
    let config = format!(
        "version: v1alpha1\nmachine:\n  type: controlplane\n  token: {}\n  ca:\n    crt: Y2VydA==\n    key: {}\n  network:\n    interfaces:\n      - interface: wg0\n        wireguard:\n          privateKey: {}\n  install:\n    image: ghcr.io/siderolabs/installer:v1.10.5\ncluster:\n  secret: {}\n  token: {}\n  secretboxEncryptionSecret: {}\n  aescbcEncryptionSecret: {}\n  ca:\n    crt: Y2VydA==\n    key: |\n      {}\n  aggregatorCA:\n    crt: Y2VydA==\n    key: {}\n  serviceAccount:\n    key: {}\n  etcd:\n    ca:\n      crt: Y2VydA==\n      key: {}\n  network:\n    podSubnets: [10.244.0.0/16]\n",
        secrets[0],
        secrets[1],
        secrets[10],
        secrets[2],
        secrets[3],
        secrets[8],
        secrets[9],
        secrets[4],
        secrets[5],
        secrets[6],
        secrets[7]
    );
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("talos")).unwrap();
    std::fs::write(dir.path().join("talos/cp.yaml"), &config).unwrap();
    std::fs::create_dir(dir.path().join("cluster")).unwrap();
    std::fs::write(
        dir.path().join("cluster/secret.yaml"),
        format!("apiVersion: v1\nkind: Secret\nmetadata: {{name: s, namespace: default}}\nstringData:\n  password: {}\n", secret("k8ssecret")),
    )
    .unwrap();

    for format in ["text", "json", "yaml"] {
        let out = cniswap(&[
            "inspect",
            "--snapshot",
            dir.path().to_str().unwrap(),
            "-o",
            format,
            "-vvv",
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for s in secrets.iter().chain([secret("k8ssecret")].iter()) {
            assert!(
                !all.contains(s.as_str()),
                "secret {s} leaked in {format} output"
            );
        }
        if format == "json" {
            let report: serde_json::Value =
                serde_json::from_str(&String::from_utf8_lossy(&out.stdout)).unwrap();
            assert_eq!(
                report["facts"]["talos"]["configs"][0]["redacted"]
                    .as_array()
                    .unwrap()
                    .len(),
                11
            );
        }
    }

    let written = tempfile::tempdir().unwrap();
    let out = cniswap(&[
        "snapshot",
        "--snapshot",
        dir.path().to_str().unwrap(),
        "--out-dir",
        written.path().to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for entry in walk(written.path()) {
        let text = std::fs::read_to_string(&entry).unwrap();
        for s in secrets.iter().chain([secret("k8ssecret")].iter()) {
            assert!(
                !text.contains(s.as_str()),
                "secret {s} written to {}",
                entry.display()
            );
        }
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(walk(&path))
        } else {
            files.push(path)
        }
    }
    files
}

#[test]
fn snapshot_round_trip_keeps_facts() {
    for example in [
        "talos-flannel-homelab",
        "kubeadm-calico-vxlan",
        "talos-flannel-to-cilium-half-migrated",
        "talos-1.14-multidoc",
    ] {
        let original = inspect_json(example);
        let dir = tempfile::tempdir().unwrap();
        let src = examples().join(example);
        let out = cniswap(&[
            "snapshot",
            "--snapshot",
            src.to_str().unwrap(),
            "--out-dir",
            dir.path().to_str().unwrap(),
        ]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = cniswap(&[
            "inspect",
            "--snapshot",
            dir.path().to_str().unwrap(),
            "-o",
            "json",
        ]);
        assert!(
            matches!(out.status.code(), Some(0 | 1)),
            "{example}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let again: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        for key in [
            "platform",
            "cnis",
            "kube_proxy",
            "nodes",
            "workloads",
            "dns",
        ] {
            let (a, b) = (&original["facts"][key], &again["facts"][key]);
            if key == "cnis" || key == "dns" || key == "platform" || key == "kube_proxy" {
                // Evidence and sources name the files they came from, which differ after a rewrite.
                assert_eq!(
                    strip_sources(a),
                    strip_sources(b),
                    "{example}: {key} changed after a snapshot round trip"
                );
            } else {
                assert_eq!(a, b, "{example}: {key} changed after a snapshot round trip");
            }
        }
    }
}

fn strip_sources(v: &serde_json::Value) -> serde_json::Value {
    match v {
        serde_json::Value::Object(map) => map
            .iter()
            .filter(|(k, _)| !matches!(k.as_str(), "evidence" | "sources" | "source"))
            .map(|(k, v)| (k.clone(), strip_sources(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        serde_json::Value::Array(items) => {
            items.iter().map(strip_sources).collect::<Vec<_>>().into()
        }
        other => other.clone(),
    }
}

#[test]
fn completions_and_man_pages_are_generated() {
    let out = cniswap(&["completions", "bash"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stdout).contains("cniswap"));
    let dir = tempfile::tempdir().unwrap();
    let out = cniswap(&["man", "--out-dir", dir.path().to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0));
    assert!(dir.path().join("cniswap.1").exists() && dir.path().join("cniswap-inspect.1").exists());
}

#[test]
fn inspect_reports_the_findings_each_example_supports() {
    let expect: &[(&str, &[&str])] = &[
        ("kubeadm-calico-vxlan", &["MIG003", "MIG005", "MIG013"]),
        // The `cni: none` patch on a 1.14 config is rejected by Talos (V1Alpha1ConflictValidate).
        ("talos-1.14-multidoc", &["TAL011", "TAL011"]),
        (
            "talos-flannel-to-cilium-half-migrated",
            &[
                "MIG001", "CIL004", "CIL004", "CIL001", "CIL002", "CIL005", "MIG002", "MIG004",
                "MIG012", "MIG013", "TAL005", "TAL002",
            ],
        ),
    ];
    for (example, rules_expected) in expect {
        let report = inspect_json(example);
        assert_eq!(&rules(&report), rules_expected, "{example}");
    }
}
