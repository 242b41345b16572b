//! The lab's own dataplane check: a server pod on every real node, then from a client pod on
//! every real node: every server by pod IP (same node and across nodes), the servers through a
//! ClusterIP Service, and DNS by name. It proves the lab carries traffic the way a cluster with
//! Flannel and kube-proxy does, before any cniswap code is trusted to measure it.

use crate::cluster::Cluster;
use crate::error::{LabError, Result};
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, ListParams, LogParams, PostParams};
use serde_json::json;
use std::time::{Duration, Instant};

const NAMESPACE: &str = "lab-dataplane";
const PORT: u16 = 8080;

/// One probe: from a pod on `from` to `target`, and whether it answered as expected.
#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    pub from: String,
    pub target: String,
    pub ok: bool,
}

#[derive(Debug, Default)]
pub struct Report {
    pub probes: Vec<Probe>,
}

impl Report {
    pub fn failures(&self) -> Vec<&Probe> {
        self.probes.iter().filter(|p| !p.ok).collect()
    }
}

/// Runs the check on `nodes` with `busybox`, and removes what it deployed.
pub async fn check(cluster: &Cluster, nodes: &[String], busybox: &str) -> Result<Report> {
    let result = run(cluster, nodes, busybox).await;
    let namespaces: Api<Namespace> = Api::all(cluster.client.clone());
    let _ = namespaces.delete(NAMESPACE, &DeleteParams::default()).await;
    result
}

fn tolerate_all() -> serde_json::Value {
    json!([{"operator": "Exists"}])
}

async fn run(cluster: &Cluster, nodes: &[String], busybox: &str) -> Result<Report> {
    cluster
        .apply(&[json!({"apiVersion": "v1", "kind": "Namespace",
                        "metadata": {"name": NAMESPACE}})])
        .await?;
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NAMESPACE);
    for node in nodes {
        let server = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("server-{node}"), "namespace": NAMESPACE,
                         "labels": {"app": "lab-server"}},
            "spec": {
                "nodeName": node,
                "tolerations": tolerate_all(),
                "containers": [{
                    "name": "httpd", "image": busybox, "imagePullPolicy": "Never",
                    "command": ["sh", "-c", format!(
                        "mkdir -p /www && echo served-by-{node} > /www/index.html && exec httpd -f -p {PORT} -h /www")],
                    "readinessProbe": {"tcpSocket": {"port": PORT}, "periodSeconds": 1},
                }],
            },
        });
        cluster.apply(&[server]).await?;
    }
    cluster
        .apply(&[json!({
            "apiVersion": "v1", "kind": "Service",
            "metadata": {"name": "lab-server", "namespace": NAMESPACE},
            "spec": {"selector": {"app": "lab-server"},
                     "ports": [{"port": 80, "targetPort": PORT, "protocol": "TCP"}]},
        })])
        .await?;

    let servers = wait_ready(&pods, nodes.len(), Duration::from_secs(120)).await?;
    let mut script = String::from("fail=0\n");
    for (node, ip) in &servers {
        script.push_str(&format!(
            "if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 {ip} {PORT} | grep -q served-by-{node}; then echo 'OK pod@{node}'; else echo 'FAIL pod@{node}'; fail=1; fi\n"
        ));
    }
    script.push_str(
        "if printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 lab-server.lab-dataplane.svc.cluster.local 80 | grep -q served-by-; then echo 'OK service'; else echo 'FAIL service'; fail=1; fi\n",
    );
    script.push_str(
        "if nslookup kubernetes.default.svc.cluster.local | grep -q 'Address.*10.96.0.1$'; then echo 'OK dns'; else echo 'FAIL dns'; fail=1; fi\n",
    );
    script.push_str("exit $fail\n");

    for node in nodes {
        let client = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": format!("client-{node}"), "namespace": NAMESPACE},
            "spec": {
                "nodeName": node,
                "restartPolicy": "Never",
                "tolerations": tolerate_all(),
                "containers": [{"name": "probe", "image": busybox, "imagePullPolicy": "Never",
                                "command": ["sh", "-c", script]}],
            },
        });
        pods.create(
            &PostParams::default(),
            &serde_json::from_value(client)
                .map_err(|e| LabError::Other(format!("client pod: {e}")))?,
        )
        .await
        .map_err(LabError::api(format!("create client pod on {node}")))?;
    }

    let mut report = Report::default();
    for node in nodes {
        let name = format!("client-{node}");
        wait_finished(&pods, &name, Duration::from_secs(120)).await?;
        let log = pods
            .logs(&name, &LogParams::default())
            .await
            .map_err(LabError::api(format!("logs of {name}")))?;
        for line in log.lines() {
            let (ok, target) = match line.split_once(' ') {
                Some(("OK", target)) => (true, target),
                Some(("FAIL", target)) => (false, target),
                _ => continue,
            };
            report.probes.push(Probe {
                from: node.clone(),
                target: target.to_string(),
                ok,
            });
        }
    }
    Ok(report)
}

/// Waits for `count` ready server pods and returns (node, pod IP) for each.
async fn wait_ready(
    pods: &Api<Pod>,
    count: usize,
    timeout: Duration,
) -> Result<Vec<(String, String)>> {
    let start = Instant::now();
    loop {
        let list = pods
            .list(&ListParams::default().labels("app=lab-server"))
            .await
            .map_err(LabError::api("list server pods"))?;
        let ready: Vec<(String, String)> = list
            .items
            .iter()
            .filter(|pod| {
                pod.status
                    .as_ref()
                    .and_then(|s| s.conditions.as_ref())
                    .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
            })
            .filter_map(|pod| {
                Some((
                    pod.spec.as_ref()?.node_name.clone()?,
                    pod.status.as_ref()?.pod_ip.clone()?,
                ))
            })
            .collect();
        if ready.len() == count {
            return Ok(ready);
        }
        if start.elapsed() > timeout {
            return Err(LabError::Timeout {
                what: "the dataplane server pods".into(),
                seconds: timeout.as_secs(),
                detail: format!(" ({} of {count} ready)", ready.len()),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

async fn wait_finished(pods: &Api<Pod>, name: &str, timeout: Duration) -> Result<()> {
    let start = Instant::now();
    loop {
        let pod = pods
            .get(name)
            .await
            .map_err(LabError::api(format!("get pod {name}")))?;
        let phase = pod.status.and_then(|s| s.phase).unwrap_or_default();
        if phase == "Succeeded" || phase == "Failed" {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(LabError::Timeout {
                what: format!("pod {name} to finish"),
                seconds: timeout.as_secs(),
                detail: format!(" (phase {phase})"),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
