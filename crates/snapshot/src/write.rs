//! Writing a snapshot in the directory layout that `load` reads back.

use crate::store::Snapshot;
use serde::Serialize;
use std::io::Write;
use std::path::{Component, Path};

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

/// Creates a file that does not exist yet: never opens an existing path, so a planted
/// symbolic link is an error instead of a write elsewhere.
fn create(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
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
    write_json(&dir.join(file), &list)?;
    Ok(items.len())
}

fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(create(path)?);
    serde_json::to_writer_pretty(&mut out, value).map_err(std::io::Error::other)?;
    out.write_all(b"\n")?;
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()
}

fn write_text(dir: &Path, rel: &str, text: &str) -> std::io::Result<()> {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let mut file = create(&path)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()
}

/// What [`write_snapshot`] wrote; reading the directory back finds exactly these counts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    pub files: usize,
    /// Kubernetes objects written (in `cluster/` lists and in copied config files).
    pub objects: usize,
    pub talos_configs: usize,
    /// Secret objects seen and not written (never any of their content).
    pub secrets_dropped: usize,
    /// Objects of kinds cniswap does not read, not written.
    pub other_kinds_dropped: usize,
}

/// Where a config file read as `label` goes in the snapshot: the same relative path, so names
/// and the roles they imply survive (`talos/controlplane.yaml` stays); `talosctl:<node>`
/// becomes `talos/<node>.yaml`.
fn destination(label: &str) -> String {
    if let Some(node) = label.strip_prefix("talosctl:") {
        return format!("talos/{}.yaml", file_name(node));
    }
    let parts: Vec<String> = Path::new(label)
        .components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(file_name(&part.to_string_lossy())),
            _ => None,
        })
        .filter(|p| !p.is_empty() && p != "." && p != "..")
        .collect();
    match parts.first().map(String::as_str) {
        None => "config.yaml".to_string(),
        // Those areas are read as object dumps and inventories, not config files.
        Some("cluster" | "nodes") => format!("files/{}", parts.join("/")),
        Some(_) => parts.join("/"),
    }
}

/// `text` without the YAML documents that hold a Secret (or a List with one), so a copied
/// config file never carries a Secret's data. A document that does not parse on its own is
/// dropped too: better lost than leaked.
fn without_secrets(text: &str) -> String {
    let mut chunks: Vec<String> = vec![String::new()];
    for line in text.split_inclusive('\n') {
        let separator =
            line.starts_with("---") && line[3..].chars().next().is_none_or(char::is_whitespace);
        if separator {
            chunks.push(String::new());
        }
        if let Some(last) = chunks.last_mut() {
            last.push_str(line);
        }
    }
    chunks
        .into_iter()
        .filter(|chunk| {
            let mut objects = crate::Objects::default();
            let parsed = crate::load_reader(chunk.as_bytes(), crate::Format::Yaml, |o| {
                objects.add(o);
                Ok(())
            });
            parsed.is_ok() && objects.secrets_dropped == 0
        })
        .collect()
}

/// Writes `snapshot` into `dir` (new or empty) in the layout `load` reads back: config files
/// that were read (Talos configs, Omni resources, Helm values, CNI manifests) under their own
/// relative names, already redacted; the other Kubernetes objects as `cluster/<kind>.json`
/// Lists; node inventories as `nodes/<node>.json`. Every file is created new (an existing
/// path, a planted symlink included, is an error) and synced.
pub fn write_snapshot(snapshot: &Snapshot, dir: &Path) -> std::io::Result<Written> {
    let mut written = Written {
        secrets_dropped: snapshot.objects.secrets_dropped,
        talos_configs: snapshot.talos.len(),
        ..Written::default()
    };
    // Copied config files carry their own objects: keep those out of the cluster/ lists.
    let mut rest = snapshot.objects.clone();
    let mut used = std::collections::BTreeSet::new();
    for source in &snapshot.sources {
        let mut rel = destination(&source.path);
        let mut n = 1;
        while !used.insert(rel.clone()) {
            n += 1;
            rel = match rel.rsplit_once('.') {
                Some((stem, ext)) => format!("{stem}-{n}.{ext}"),
                None => format!("{rel}-{n}"),
            };
        }
        let mut text = std::borrow::Cow::Borrowed(source.text.as_str());
        let mut probe = crate::load::probe(&rel, &text);
        if probe.objects.secrets_dropped > 0 {
            text = std::borrow::Cow::Owned(without_secrets(&text));
            probe = crate::load::probe(&rel, &text);
        }
        write_text(dir, &rel, &text)?;
        rest.remove_each(&probe.objects);
        written.objects += probe.objects.len();
        written.files += 1;
    }
    let cluster = dir.join("cluster");
    std::fs::create_dir_all(&cluster)?;
    let o = &rest;
    let mut lists = 0;
    macro_rules! list {
        ($dir:expr, $file:expr, $api:expr, $kind:expr, $items:expr $(,)?) => {
            let n = write_list($dir, $file, $api, $kind, $items)?;
            written.objects += n;
            lists += usize::from(n > 0);
        };
    }
    list!(&cluster, "nodes.json", "v1", "Node", &o.nodes);
    list!(&cluster, "pods.json", "v1", "Pod", &o.pods);
    list!(
        &cluster,
        "daemonsets.json",
        "apps/v1",
        "DaemonSet",
        &o.daemonsets,
    );
    list!(
        &cluster,
        "deployments.json",
        "apps/v1",
        "Deployment",
        &o.deployments,
    );
    list!(
        &cluster,
        "statefulsets.json",
        "apps/v1",
        "StatefulSet",
        &o.statefulsets,
    );
    list!(
        &cluster,
        "configmaps.json",
        "v1",
        "ConfigMap",
        &o.config_maps,
    );
    list!(
        &cluster,
        "poddisruptionbudgets.json",
        "policy/v1",
        "PodDisruptionBudget",
        &o.pdbs,
    );
    list!(
        &cluster,
        "validatingwebhookconfigurations.json",
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        &o.validating_webhooks,
    );
    list!(
        &cluster,
        "mutatingwebhookconfigurations.json",
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
        &o.mutating_webhooks,
    );
    list!(&cluster, "services.json", "v1", "Service", &o.services);
    list!(
        &cluster,
        "networkpolicies.json",
        "networking.k8s.io/v1",
        "NetworkPolicy",
        &o.network_policies,
    );
    list!(
        &cluster,
        "namespaces.json",
        "v1",
        "Namespace",
        &o.namespaces,
    );
    list!(
        &cluster,
        "csidrivers.json",
        "storage.k8s.io/v1",
        "CSIDriver",
        &o.csi_drivers,
    );
    list!(
        &cluster,
        "customresourcedefinitions.json",
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        &o.crds,
    );
    list!(
        &cluster,
        "storageclasses.json",
        "storage.k8s.io/v1",
        "StorageClass",
        &o.storage_classes,
    );
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
            write_json(&cluster.join(name), &list)?;
            written.objects += items.len();
            lists += 1;
        }
    }
    if !snapshot.unread.is_empty() {
        // Kinds the cluster refused stay unknown when the snapshot is read back.
        write_json(
            &cluster.join(crate::store::UNREAD_FILE),
            &serde_json::json!({ "unread": snapshot.unread }),
        )?;
        lists += 1;
    }
    written.other_kinds_dropped = o.other_kinds.values().sum();
    written.files += lists;
    if lists == 0 && std::fs::read_dir(&cluster)?.next().is_none() {
        std::fs::remove_dir(&cluster)?;
    }
    if !snapshot.node_inventories.is_empty() {
        std::fs::create_dir_all(dir.join("nodes"))?;
        for inventory in &snapshot.node_inventories {
            let mut rel = format!("nodes/{}.json", file_name(&inventory.node));
            let mut n = 1;
            while !used.insert(rel.clone()) {
                n += 1;
                rel = format!("nodes/{}-{n}.json", file_name(&inventory.node));
            }
            write_json(&dir.join(&rel), &inventory.data)?;
            written.files += 1;
        }
    }
    Ok(written)
}

fn file_name(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '.' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
