//! Applying verify's objects (server-side apply) and removing them afterwards.

use crate::VerifyError;
use cniswap_verify::names;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Client, ResourceExt};
use serde_json::Value;
use std::time::{Duration, Instant};

/// What verify put in the cluster, so it can remove exactly that.
#[derive(Debug, Clone)]
pub struct Deployed {
    pub namespace: String,
    /// Delete the whole namespace (verify created it, or an earlier `--keep` run did).
    pub delete_namespace: bool,
    pub objects: Vec<(ApiResource, String)>,
}

fn resource(object: &Value) -> Result<(ApiResource, String, Option<String>), VerifyError> {
    let api_version = object["apiVersion"].as_str().unwrap_or_default();
    let kind = object["kind"].as_str().unwrap_or_default();
    let (group, version) = match api_version.split_once('/') {
        Some((g, v)) => (g, v),
        None => ("", api_version),
    };
    let name = object["metadata"]["name"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let namespace = object["metadata"]["namespace"].as_str().map(str::to_string);
    Ok((
        ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, kind)),
        name,
        namespace,
    ))
}

fn api(client: &Client, ar: &ApiResource, namespace: Option<&str>) -> Api<DynamicObject> {
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, ar),
        None => Api::all_with(client.clone(), ar),
    }
}

/// Checks the namespace is verify's (or absent), then applies every object.
pub async fn apply(
    client: &Client,
    namespace: &str,
    objects: &[Value],
    server: &str,
    token_kept: bool,
) -> Result<Deployed, VerifyError> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let existing = namespaces
        .get_opt(namespace)
        .await
        .map_err(|e| VerifyError::api(server, &format!("read namespace {namespace}"), &e))?;
    let mut delete_namespace = true;
    if let Some(ns) = &existing {
        let ours =
            ns.labels().get(names::MANAGED_BY.0).map(String::as_str) == Some(names::MANAGED_BY.1);
        if !ours {
            return Err(VerifyError::CouldNotRun {
                message: format!(
                    "namespace {namespace} exists and was not created by cniswap verify (no label {}={})",
                    names::MANAGED_BY.0,
                    names::MANAGED_BY.1
                ),
                help: "pick another with --namespace, or delete it if it is a leftover".into(),
            });
        }
        if ns.metadata.deletion_timestamp.is_some() {
            wait_gone_namespace(&namespaces, namespace, Duration::from_secs(120)).await?;
        } else {
            // Created by an administrator from `--print-manifests` (with the RBAC): keep it.
            delete_namespace =
                ns.annotations().get("cniswap.io/keep").map(String::as_str) != Some("true");
        }
    }
    let exists_now = namespaces
        .get_opt(namespace)
        .await
        .map_err(|e| VerifyError::api(server, &format!("read namespace {namespace}"), &e))?
        .is_some();
    let params = PatchParams::apply(names::FIELD_MANAGER).force();
    let mut reused = false;
    let mut deployed = Deployed {
        namespace: namespace.to_string(),
        delete_namespace,
        objects: vec![],
    };
    for object in objects {
        let (ar, name, ns) = resource(object)?;
        if ar.kind == "Namespace" && exists_now {
            continue;
        }
        // Agents of a run that goes on now (`verify --continuous` beside apply, whose plan runs
        // `verify --focus NODE`), with this run's token and image, are used as they are:
        // re-applying a spec that differs in, say, the pull policy would restart them under
        // that run's probes. Then they, and the namespace, are that run's to remove.
        if exists_now && token_kept && ar.kind == "DaemonSet" {
            let current = api(client, &ar, ns.as_deref())
                .get_opt(&name)
                .await
                .map_err(|e| VerifyError::api(server, &format!("read {} {name}", ar.kind), &e))?;
            if let Some(current) = current
                && same_image(&current.data, object)
            {
                reused = true;
                continue;
            }
        }
        api(client, &ar, ns.as_deref())
            .patch(&name, &params, &Patch::Apply(object))
            .await
            .map_err(|e| VerifyError::api(server, &format!("apply {} {name}", ar.kind), &e))?;
        if ar.kind != "Namespace" {
            deployed.objects.push((ar, name));
        }
    }
    if reused {
        // Another run's agents were reused: everything here is that run's to remove.
        deployed.delete_namespace = false;
        deployed.objects.clear();
    }
    Ok(deployed)
}

/// Whether a running object's pod template runs the image `wanted`'s does (objects without a
/// pod template: always).
fn same_image(running: &Value, wanted: &Value) -> bool {
    let image = |o: &Value| o.pointer("/spec/template/spec/containers/0/image").cloned();
    image(running) == image(wanted)
}

async fn wait_gone_namespace(
    namespaces: &Api<Namespace>,
    name: &str,
    timeout: Duration,
) -> Result<(), VerifyError> {
    let start = Instant::now();
    loop {
        match namespaces.get_opt(name).await {
            Ok(None) => return Ok(()),
            Ok(Some(_)) | Err(_) if start.elapsed() < timeout => {
                tokio::time::sleep(Duration::from_millis(500)).await
            }
            _ => {
                return Err(VerifyError::CouldNotRun {
                    message: format!(
                        "namespace {name} is still terminating after {}s",
                        timeout.as_secs()
                    ),
                    help: format!(
                        "check what holds it: kubectl get all -n {name}; kubectl get ns {name} -o yaml"
                    ),
                });
            }
        }
    }
}

/// Removes what [`apply`] created and waits until it is gone (pods included).
pub async fn remove(
    client: &Client,
    deployed: &Deployed,
    timeout: Duration,
) -> Result<(), VerifyError> {
    let ns = &deployed.namespace;
    let background = DeleteParams::background();
    if deployed.delete_namespace {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        match namespaces.delete(ns, &background).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(VerifyError::CouldNotRun {
                    message: format!("cannot delete namespace {ns}: {}", crate::describe(&e)),
                    help: format!("delete it by hand: kubectl delete namespace {ns}"),
                });
            }
        }
        return wait_gone_namespace(&namespaces, ns, timeout).await;
    }
    for (ar, name) in deployed.objects.iter().rev() {
        match api(client, ar, Some(ns)).delete(name, &background).await {
            Ok(_) => {}
            Err(kube::Error::Api(s)) if s.code == 404 => {}
            Err(e) => {
                return Err(VerifyError::CouldNotRun {
                    message: format!(
                        "cannot delete {} {name} in {ns}: {}",
                        ar.kind,
                        crate::describe(&e)
                    ),
                    help: format!(
                        "delete it by hand: kubectl -n {ns} delete {} {name}",
                        ar.kind.to_lowercase()
                    ),
                });
            }
        }
    }
    // The DaemonSets' pods go with them; wait until none is left (none deleted: the agents
    // are another run's, and stay).
    if !deployed
        .objects
        .iter()
        .any(|(ar, _)| ar.kind == "DaemonSet")
    {
        return Ok(());
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let selector = ListParams::default().labels("app.kubernetes.io/name=cniswap-probe");
    let start = Instant::now();
    loop {
        let left = pods
            .list(&selector)
            .await
            .map(|l| l.items.len())
            .unwrap_or(1);
        if left == 0 {
            return Ok(());
        }
        if start.elapsed() > timeout {
            return Err(VerifyError::CouldNotRun {
                message: format!(
                    "{left} probe pods in {ns} are still there after {}s",
                    timeout.as_secs()
                ),
                help: format!("kubectl -n {ns} get pods -l app.kubernetes.io/name=cniswap-probe"),
            });
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
