//! Writing a snapshot in the directory layout that `load` reads back.

use crate::store::Snapshot;
use serde::Serialize;
use std::io::Write;
use std::path::Path;

#[derive(Serialize)]
struct Item<'a, T> {
    #[serde(rename = "apiVersion")]
    api_version: &'a str,
    kind: &'a str,
    #[serde(flatten)]
    inner: &'a T,
}

#[derive(Serialize)]
struct List<T> {
    #[serde(rename = "apiVersion")]
    api_version: &'static str,
    kind: &'static str,
    items: Vec<T>,
}

fn write_list<T: Serialize>(
    dir: &Path,
    file: &str,
    api_version: &str,
    kind: &str,
    items: &[T],
) -> std::io::Result<usize> {
    if items.is_empty() {
        return Ok(0);
    }
    let list = List {
        api_version: "v1",
        kind: "List",
        items: items
            .iter()
            .map(|inner| Item {
                api_version,
                kind,
                inner,
            })
            .collect(),
    };
    let out = std::fs::File::create(dir.join(file))?;
    let mut out = std::io::BufWriter::new(out);
    serde_json::to_writer_pretty(&mut out, &list).map_err(std::io::Error::other)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(1)
}

/// Writes the Kubernetes objects of `snapshot` as `cluster/<kind>.json` Lists and Talos configs as
/// `talos/<name>.yaml` (they were redacted when read). Returns the number of files written.
pub fn write_snapshot(snapshot: &Snapshot, dir: &Path) -> std::io::Result<usize> {
    let cluster = dir.join("cluster");
    std::fs::create_dir_all(&cluster)?;
    let o = &snapshot.objects;
    let mut files = 0;
    files += write_list(&cluster, "nodes.json", "v1", "Node", &o.nodes)?;
    files += write_list(&cluster, "pods.json", "v1", "Pod", &o.pods)?;
    files += write_list(
        &cluster,
        "daemonsets.json",
        "apps/v1",
        "DaemonSet",
        &o.daemonsets,
    )?;
    files += write_list(
        &cluster,
        "deployments.json",
        "apps/v1",
        "Deployment",
        &o.deployments,
    )?;
    files += write_list(
        &cluster,
        "statefulsets.json",
        "apps/v1",
        "StatefulSet",
        &o.statefulsets,
    )?;
    files += write_list(
        &cluster,
        "configmaps.json",
        "v1",
        "ConfigMap",
        &o.config_maps,
    )?;
    files += write_list(
        &cluster,
        "poddisruptionbudgets.json",
        "policy/v1",
        "PodDisruptionBudget",
        &o.pdbs,
    )?;
    files += write_list(
        &cluster,
        "validatingwebhookconfigurations.json",
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        &o.validating_webhooks,
    )?;
    files += write_list(
        &cluster,
        "mutatingwebhookconfigurations.json",
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
        &o.mutating_webhooks,
    )?;
    files += write_list(&cluster, "services.json", "v1", "Service", &o.services)?;
    files += write_list(
        &cluster,
        "networkpolicies.json",
        "networking.k8s.io/v1",
        "NetworkPolicy",
        &o.network_policies,
    )?;
    files += write_list(
        &cluster,
        "namespaces.json",
        "v1",
        "Namespace",
        &o.namespaces,
    )?;
    files += write_list(
        &cluster,
        "csidrivers.json",
        "storage.k8s.io/v1",
        "CSIDriver",
        &o.csi_drivers,
    )?;
    files += write_list(
        &cluster,
        "customresourcedefinitions.json",
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        &o.crds,
    )?;
    files += write_list(
        &cluster,
        "storageclasses.json",
        "storage.k8s.io/v1",
        "StorageClass",
        &o.storage_classes,
    )?;
    // Custom resources carry their own apiVersion and kind.
    for (name, items) in [
        ("cni-config.json", &o.cni_configs),
        ("cni-policies.json", &o.cni_policies),
    ] {
        if !items.is_empty() {
            let list = List {
                api_version: "v1",
                kind: "List",
                items: items.iter().collect(),
            };
            let text = serde_json::to_string_pretty(&list).map_err(std::io::Error::other)?;
            std::fs::write(cluster.join(name), text + "\n")?;
            files += 1;
        }
    }
    if !snapshot.talos.is_empty() {
        let talos = dir.join("talos");
        std::fs::create_dir_all(&talos)?;
        for (i, source) in snapshot.talos.iter().enumerate() {
            let name = source
                .summary
                .node
                .clone()
                .unwrap_or_else(|| format!("config-{i}"));
            let docs: Vec<serde_json::Value> = source.docs.iter().map(|d| d.to_json()).collect();
            let text = serde_saphyr::to_string_multiple(&docs).map_err(std::io::Error::other)?;
            std::fs::write(talos.join(format!("{}.yaml", file_name(&name))), text)?;
            files += 1;
        }
    }
    Ok(files)
}

fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
