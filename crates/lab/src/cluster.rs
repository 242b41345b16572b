//! Talking to the lab's API server: applying the add-ons and waiting for them.

use crate::error::{LabError, Result};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment};
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Node;
use kube::api::{
    Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, Patch, PatchParams,
};
use kube::config::{KubeConfigOptions, Kubeconfig};
use serde_json::Value;
use std::path::Path;
use std::time::{Duration, Instant};

const FIELD_MANAGER: &str = "cniswap-lab";

/// A client of the lab's API server (as its admin).
#[derive(Clone)]
pub struct Cluster {
    pub client: kube::Client,
}

impl Cluster {
    pub async fn connect(kubeconfig: &Path) -> Result<Cluster> {
        let config = Kubeconfig::read_from(kubeconfig)
            .map_err(|e| LabError::Other(format!("read {}: {e}", kubeconfig.display())))?;
        let config = kube::Config::from_custom_kubeconfig(config, &KubeConfigOptions::default())
            .await
            .map_err(|e| LabError::Other(format!("load {}: {e}", kubeconfig.display())))?;
        let client = kube::Client::try_from(config).map_err(LabError::api("create a client"))?;
        Ok(Cluster { client })
    }

    /// Whether the API server answers `/readyz` with ok.
    pub async fn ready(&self) -> bool {
        let request = http::Request::get("/readyz").body(Vec::new());
        match request {
            Ok(request) => self
                .client
                .request_text(request)
                .await
                .is_ok_and(|text| text.trim() == "ok"),
            Err(_) => false,
        }
    }

    /// Server-side applies each object (idempotent: re-applying changes nothing).
    pub async fn apply(&self, objects: &[Value]) -> Result<()> {
        for object in objects {
            let kind = object["kind"].as_str().unwrap_or_default();
            let api_version = object["apiVersion"].as_str().unwrap_or_default();
            let name = object["metadata"]["name"].as_str().unwrap_or_default();
            let (plural, namespaced) = crate::manifests::resource(kind)
                .ok_or_else(|| LabError::Other(format!("the lab cannot apply kind {kind}")))?;
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            let resource = ApiResource::from_gvk_with_plural(
                &GroupVersionKind::gvk(group, version, kind),
                plural,
            );
            let api: Api<DynamicObject> = match object["metadata"]["namespace"].as_str() {
                Some(namespace) if namespaced => {
                    Api::namespaced_with(self.client.clone(), namespace, &resource)
                }
                _ => Api::all_with(self.client.clone(), &resource),
            };
            api.patch(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(object),
            )
            .await
            .map_err(LabError::api(format!("apply {kind} {name}")))?;
        }
        Ok(())
    }

    /// Applies many independent objects with `parallel` requests in flight.
    pub async fn apply_concurrently(&self, objects: &[Value], parallel: usize) -> Result<()> {
        use futures::stream::{self, StreamExt, TryStreamExt};
        stream::iter(objects.chunks(1))
            .map(|chunk| self.apply(chunk))
            .buffer_unordered(parallel.max(1))
            .try_collect::<Vec<()>>()
            .await
            .map(|_| ())
    }

    /// Waits until every named node reports Ready.
    pub async fn wait_nodes_ready(&self, names: &[String], timeout: Duration) -> Result<()> {
        let nodes: Api<Node> = Api::all(self.client.clone());
        let start = Instant::now();
        loop {
            let list = nodes
                .list(&ListParams::default())
                .await
                .map_err(LabError::api("list nodes"))?;
            let not_ready: Vec<&String> = names
                .iter()
                .filter(|name| {
                    !list
                        .items
                        .iter()
                        .any(|node| node.metadata.name.as_ref() == Some(*name) && node_ready(node))
                })
                .collect();
            if not_ready.is_empty() {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(LabError::Timeout {
                    what: "nodes to become Ready".into(),
                    seconds: timeout.as_secs(),
                    detail: format!(
                        "; not Ready: {}",
                        not_ready
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits until a DaemonSet has a ready, up-to-date pod on every node it selects.
    pub async fn wait_daemonset(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<()> {
        let api: Api<DaemonSet> = Api::namespaced(self.client.clone(), namespace);
        let start = Instant::now();
        loop {
            let ds = api
                .get(name)
                .await
                .map_err(LabError::api(format!("get daemonset {namespace}/{name}")))?;
            let status = ds.status.unwrap_or_default();
            let observed = status.observed_generation == ds.metadata.generation;
            if observed
                && status.desired_number_scheduled > 0
                && status.number_ready == status.desired_number_scheduled
                && status.updated_number_scheduled.unwrap_or(0) == status.desired_number_scheduled
            {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(LabError::Timeout {
                    what: format!("DaemonSet {namespace}/{name}"),
                    seconds: timeout.as_secs(),
                    detail: format!(
                        " ({} of {} ready)",
                        status.number_ready, status.desired_number_scheduled
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Waits until a Deployment has all its replicas available.
    pub async fn wait_deployment(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<()> {
        let api: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let start = Instant::now();
        loop {
            let deployment = api
                .get(name)
                .await
                .map_err(LabError::api(format!("get deployment {namespace}/{name}")))?;
            let wanted = deployment
                .spec
                .as_ref()
                .and_then(|s| s.replicas)
                .unwrap_or(1);
            let status = deployment.status.unwrap_or_default();
            if status.available_replicas.unwrap_or(0) >= wanted
                && status.updated_replicas.unwrap_or(0) >= wanted
            {
                return Ok(());
            }
            if start.elapsed() > timeout {
                return Err(LabError::Timeout {
                    what: format!("Deployment {namespace}/{name}"),
                    seconds: timeout.as_secs(),
                    detail: format!(
                        " ({} of {wanted} available)",
                        status.available_replicas.unwrap_or(0)
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Whether a leader-election Lease is held (how a controller-manager or scheduler shows it
    /// is working).
    pub async fn lease_held(&self, namespace: &str, name: &str) -> bool {
        let api: Api<Lease> = Api::namespaced(self.client.clone(), namespace);
        api.get_opt(name)
            .await
            .ok()
            .flatten()
            .and_then(|lease| lease.spec)
            .and_then(|spec| spec.holder_identity)
            .is_some_and(|holder| !holder.is_empty())
    }
}

pub fn node_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|conditions| {
            conditions
                .iter()
                .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}
