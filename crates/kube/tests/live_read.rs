//! `read_cluster` against a request-level mock API server: pagination, RBAC gaps, CRD-driven
//! custom resources, and that Secrets are never requested.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use kube::Client;
use std::sync::{Arc, Mutex};

fn json(status: StatusCode, body: serde_json::Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .unwrap()
}

fn pod(name: &str, node: &str) -> serde_json::Value {
    serde_json::json!({
        "metadata": {"name": name, "namespace": "default", "ownerReferences": [{"kind": "ReplicaSet", "name": "rs"}],
                     "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "big"}},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx", "args": ["--verbose"]}]},
        "status": {"phase": "Running"}
    })
}

fn connection(client: Client) -> cniswap_kube::Connection {
    cniswap_kube::Connection {
        client,
        server: "https://mock:6443".to_string(),
        context: Some("test".to_string()),
    }
}

fn mock_api(log: Arc<Mutex<Vec<String>>>) -> Client {
    let service = tower::service_fn(move |req: Request<kube::client::Body>| {
        let log = log.clone();
        async move {
            let uri = req.uri().to_string();
            log.lock().unwrap().push(uri.clone());
            let path = req.uri().path().to_string();
            let query = req.uri().query().unwrap_or("").to_string();
            let empty = serde_json::json!({"items": [], "metadata": {}});
            let response = match path.as_str() {
                "/api/v1/nodes" => json(
                    StatusCode::OK,
                    serde_json::json!({"items": [
                    {"metadata": {"name": "n1", "labels": {"node-role.kubernetes.io/control-plane": ""}},
                     "status": {"nodeInfo": {"osImage": "Talos (v1.10.5)", "kubeletVersion": "v1.33.2"}}}
                ], "metadata": {}}),
                ),
                // Two pages: the first returns a continue token with characters that need encoding.
                "/api/v1/pods" if !query.contains("continue=") => json(
                    StatusCode::OK,
                    serde_json::json!({
                    "items": [pod("a", "n1")], "metadata": {"continue": "tok/en+1="}}),
                ),
                "/api/v1/pods" => {
                    assert!(query.contains("continue=tok%2Fen%2B1%3D"), "{query}");
                    json(
                        StatusCode::OK,
                        serde_json::json!({"items": [pod("b", "n1")], "metadata": {"continue": ""}}),
                    )
                }
                "/apis/policy/v1/poddisruptionbudgets" => json(
                    StatusCode::FORBIDDEN,
                    serde_json::json!({
                    "kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 403, "reason": "Forbidden",
                    "message": "poddisruptionbudgets.policy is forbidden"}),
                ),
                "/apis/apiextensions.k8s.io/v1/customresourcedefinitions" => json(
                    StatusCode::OK,
                    serde_json::json!({"items": [
                    {"metadata": {"name": "ippools.crd.projectcalico.org"},
                     "spec": {"group": "crd.projectcalico.org", "names": {"kind": "IPPool", "plural": "ippools"},
                              "versions": [{"name": "v1", "served": true, "storage": true}]}}
                ], "metadata": {}}),
                ),
                "/apis/crd.projectcalico.org/v1/ippools" => json(
                    StatusCode::OK,
                    serde_json::json!({"items": [
                    {"apiVersion": "crd.projectcalico.org/v1", "kind": "IPPool", "metadata": {"name": "default-ipv4-ippool"},
                     "spec": {"cidr": "10.244.0.0/16", "vxlanMode": "Always"}}
                ], "metadata": {}}),
                ),
                "/api/v1/configmaps" if query.ends_with("%3Dcilium-config") => json(
                    StatusCode::OK,
                    serde_json::json!({"items": [
                    {"metadata": {"name": "cilium-config", "namespace": "kube-system"}, "data": {"cni-exclusive": "false"}}
                ], "metadata": {}}),
                ),
                _ => json(StatusCode::OK, empty),
            };
            Ok::<_, std::convert::Infallible>(response)
        }
    });
    Client::new(service, "default")
}

#[tokio::test]
async fn reads_paginated_lists_and_reports_forbidden_kinds() {
    let log = Arc::new(Mutex::new(Vec::new()));
    let client = mock_api(log.clone());
    let mut seen = Vec::new();
    let snapshot = cniswap_kube::read_cluster(&connection(client), &mut |what, _| {
        seen.push(what.to_string())
    })
    .await
    .unwrap();

    assert_eq!(snapshot.source, "live:test");
    assert_eq!(snapshot.objects.nodes.len(), 1);
    assert_eq!(snapshot.objects.pods.len(), 2, "both pages were read");
    let pod = &snapshot.objects.pods[0];
    assert!(
        pod.metadata.annotations.is_empty(),
        "irrelevant annotations are not kept"
    );
    assert!(
        pod.spec.containers[0].args.is_empty(),
        "pod args are compacted"
    );
    assert_eq!(snapshot.objects.cni_configs.len(), 1);
    assert_eq!(snapshot.objects.cni_configs[0].kind, "IPPool");
    assert_eq!(snapshot.objects.config_maps.len(), 1);
    assert!(
        snapshot
            .unread
            .iter()
            .any(|k| k.path == "/apis/policy/v1/poddisruptionbudgets"
                && k.qualified() == "poddisruptionbudgets.policy"
                && k.cause.contains("403")),
        "the forbidden kind is unread, not empty: {:?}",
        snapshot.unread
    );

    let requests = log.lock().unwrap().clone();
    assert!(
        requests.iter().all(|r| r.contains("limit=500")),
        "every list is paginated"
    );
    assert!(
        !requests.iter().any(|r| r.contains("secrets")),
        "secrets are never requested"
    );
    assert!(seen.contains(&"pods".to_string()) && seen.last().map(String::as_str) == Some("done"));
}

#[tokio::test]
async fn unreachable_server_is_an_error_naming_the_kind() {
    let service = tower::service_fn(|_req: Request<kube::client::Body>| async {
        Err::<Response<Full<Bytes>>, _>(std::io::Error::new(
            std::io::ErrorKind::ConnectionRefused,
            "connection refused",
        ))
    });
    let client = Client::new(service, "default");
    let err = cniswap_kube::read_cluster(&connection(client), &mut |_, _| {})
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("cannot list nodes"), "{message}");
    assert!(
        message.contains("https://mock:6443 (context test)"),
        "names the server and context: {message}"
    );
    assert!(
        message.contains("connection refused"),
        "says why: {message}"
    );
    assert!(err.hint().contains("reachable"), "{}", err.hint());
}

/// A server that returns a hostile node name and a kubeadm-config with a secret argument.
fn hostile_api(node: &'static str) -> Client {
    let service = tower::service_fn(move |req: Request<kube::client::Body>| async move {
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        let response = match path.as_str() {
            "/api/v1/nodes" => json(
                StatusCode::OK,
                serde_json::json!({"items": [{"metadata": {"name": node}}], "metadata": {}}),
            ),
            "/api/v1/configmaps" if query.ends_with("%3Dkubeadm-config") => json(
                StatusCode::OK,
                serde_json::json!({"items": [
                {"metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
                 "data": {"ClusterConfiguration": "apiServer:\n  extraArgs:\n    oidc-client-secret: MARKER-live\nnetworking:\n  podSubnet: 10.244.0.0/16\n"}}
            ], "metadata": {}}),
            ),
            _ => json(
                StatusCode::OK,
                serde_json::json!({"items": [], "metadata": {}}),
            ),
        };
        Ok::<_, std::convert::Infallible>(response)
    });
    Client::new(service, "default")
}

#[tokio::test]
async fn live_objects_are_checked_and_redacted_like_files() {
    // A name that could only come from a forged server is refused, naming the server.
    let err = cniswap_kube::read_cluster(
        &connection(hostile_api("talos-w-1;touch pwned;#")),
        &mut |_, _| {},
    )
    .await
    .unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("talos-w-1;touch pwned;#") && message.contains("https://mock:6443"),
        "{message}"
    );
    // Secrets inside ConfigMap data never reach the snapshot (and `snapshot` output).
    let snapshot = cniswap_kube::read_cluster(&connection(hostile_api("n1")), &mut |_, _| {})
        .await
        .unwrap();
    let data = format!("{:?}", snapshot.objects.config_maps);
    assert!(!data.contains("MARKER"), "{data}");
    assert!(data.contains("10.244.0.0/16"), "{data}");
}
