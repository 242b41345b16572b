//! `read_cluster` against the lab's real API server (real TLS, RBAC and pagination), checked
//! with the server's own audit log: every list is paginated, Secrets are never requested, a
//! kind RBAC forbids is recorded as unread with the server's 403, and a server whose
//! certificate the kubeconfig does not trust is an error that says so. Needs root, Go and the packages
//! scripts/test.sh installs. Faults a real server cannot produce on demand (a connection
//! dropped mid-list) stay in `live_read.rs`.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use cniswap_lab::{Lab, Options};
use serde_json::{Value, json};

const READER: &str = "cniswap-test-reader";
/// More namespaces than one page (500) holds.
const NAMESPACES: usize = 520;

/// Read access to what inspect lists, except PodDisruptionBudgets.
fn reader_rbac() -> Vec<Value> {
    let list = json!(["get", "list"]);
    vec![
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": READER},
        "rules": [
            {"apiGroups": [""], "resources": ["nodes", "pods", "configmaps", "services", "namespaces"], "verbs": list},
            {"apiGroups": ["apps"], "resources": ["daemonsets", "deployments"], "verbs": list},
            {"apiGroups": ["admissionregistration.k8s.io"], "resources": ["*"], "verbs": list},
            {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": list},
            {"apiGroups": ["storage.k8s.io"], "resources": ["csidrivers", "storageclasses"], "verbs": list},
            {"apiGroups": ["apiextensions.k8s.io"], "resources": ["customresourcedefinitions"], "verbs": list},
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": READER},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": READER},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": READER}]}),
    ]
}

/// The audit events of `user`.
fn audit_events(lab: &Lab, user: &str) -> Vec<Value> {
    std::fs::read_to_string(lab.audit_log())
        .unwrap()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|event| event["user"]["username"] == user)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_a_real_api_server_paginated_without_secrets() {
    let root = tempfile::tempdir().unwrap();
    let mut options = Options::new(root.path().join("lab"));
    options.real_nodes = 0;
    options.kwok_nodes = 3;
    options.kwok_pods_per_node = 2;
    let lab = Lab::up(options, &mut |m| eprintln!("lab: {m}"))
        .await
        .unwrap();
    let cluster = lab.cluster().await.unwrap();
    let namespaces: Vec<Value> = (0..NAMESPACES)
        .map(|i| json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": format!("team-{i:03}")}}))
        .collect();
    cluster.apply_concurrently(&namespaces, 16).await.unwrap();
    cluster.apply(&reader_rbac()).await.unwrap();
    let kubeconfig = lab.kubeconfig_for(READER, &[]).unwrap();

    let connection = cniswap_kube::connect(&cniswap_kube::LiveOptions {
        kubeconfig: Some(kubeconfig.clone()),
        ..Default::default()
    })
    .await
    .unwrap();
    let snapshot = cniswap_kube::read_cluster(&connection, &mut |_, _| {})
        .await
        .unwrap();

    assert_eq!(snapshot.objects.nodes.len(), 3, "the three kwok nodes");
    // Shell completion's node names: the same three nodes, from one metadata-only list.
    let mut listed: Vec<String> = snapshot
        .objects
        .nodes
        .iter()
        .map(|n| n.metadata.name.to_string())
        .collect();
    listed.sort();
    assert_eq!(cniswap_kube::node_names(&connection).await.unwrap(), listed);
    assert!(
        snapshot.objects.namespaces.len() > NAMESPACES,
        "all {} namespaces, across pages: got {}",
        NAMESPACES,
        snapshot.objects.namespaces.len()
    );
    assert_eq!(snapshot.objects.pods.len(), 6, "the kwok pods");
    let skipped: Vec<String> = snapshot
        .unread
        .iter()
        .map(|k| format!("{} {}", k.path, k.cause))
        .collect();
    assert!(
        skipped
            .iter()
            .any(|s| s.contains("poddisruptionbudgets") && s.contains("403")),
        "the forbidden kind is unread (unknown, not empty) with the server's answer: {skipped:?}"
    );

    let events = audit_events(&lab, READER);
    assert!(
        !events.is_empty(),
        "the audit log has the reader's requests"
    );
    for event in &events {
        let uri = event["requestURI"].as_str().unwrap();
        assert_ne!(
            event["objectRef"]["resource"], "secrets",
            "asked for Secrets: {uri}"
        );
        if event["verb"] == "list" {
            assert!(uri.contains("limit=500"), "every list is paginated: {uri}");
        }
    }
    let namespace_pages = events
        .iter()
        .filter(|e| e["verb"] == "list" && e["objectRef"]["resource"] == "namespaces")
        .count();
    assert!(
        namespace_pages >= 2,
        "{NAMESPACES} namespaces take two pages: {namespace_pages}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["requestURI"].as_str().unwrap().contains("continue=")),
        "the second page was asked for with the continue token"
    );

    // The same server behind a certificate authority the kubeconfig does not trust.
    let other_ca = cniswap_lab::pki::Pki::create(&root.path().join("other-ca")).unwrap();
    let text = std::fs::read_to_string(&kubeconfig).unwrap();
    let mut config: Value = serde_json::from_str(&text).unwrap();
    config["clusters"][0]["cluster"]["certificate-authority"] = json!(other_ca.ca());
    let untrusted = root.path().join("untrusted.kubeconfig");
    std::fs::write(&untrusted, config.to_string()).unwrap();
    let connection = cniswap_kube::connect(&cniswap_kube::LiveOptions {
        kubeconfig: Some(untrusted),
        ..Default::default()
    })
    .await
    .unwrap();
    let error = cniswap_kube::read_cluster(&connection, &mut |_, _| {})
        .await
        .unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains(&lab.api_server),
        "names the server: {message}"
    );
    assert!(
        message.to_lowercase().contains("certificate"),
        "says the certificate is the problem: {message}"
    );
    assert!(error.hint().contains("certificate"), "{}", error.hint());

    lab.down().unwrap();
}
