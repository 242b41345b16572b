//! Helm values spread over several files, merged the way Flux and kustomize merge them before
//! Helm sees them: a HelmRelease's `valuesFrom` (ConfigMaps defined in the repository, often
//! by a kustomize `configMapGenerator`; `valuesKey`, `targetPath`) under its inline `values`,
//! and kustomize `helmCharts` (`valuesFile`, `additionalValuesFiles`, then `valuesInline`).
//!
//! Flux: entries of `valuesFrom` are merged in order and the inline `values` last, on top
//! (fluxcd.io/flux/components/helm/helmreleases/#values-references). Secrets are never read,
//! so a value a Secret provides is recorded as unresolved rather than guessed.

use crate::load::resolve_relative;
use crate::store::{ConfigMapEntry, GeneratedConfigMap, HelmValues, SourceFile, ValuesReference};
use crate::{Snapshot, read};
use cniswap_config::{Node as YamlNode, Value, helm, redact};
use std::path::Path;

/// Flux's default data key for `valuesFrom`.
const DEFAULT_VALUES_KEY: &str = "values.yaml";

/// A kustomize `kustomization.yaml` (kustomize's own apiVersion, or no kind at all in a file
/// of that name), not Flux's `Kustomization` custom resource.
pub(crate) fn is_kustomization(doc: &YamlNode, rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    let api = doc.get("apiVersion").and_then(YamlNode::as_str);
    match doc.get("kind").and_then(YamlNode::as_str) {
        Some("Kustomization" | "Component") => {
            api.is_none_or(|a| a.starts_with("kustomize.config.k8s.io"))
        }
        None => matches!(
            name,
            "kustomization.yaml" | "kustomization.yml" | "Kustomization"
        ),
        Some(_) => false,
    }
}

/// Records a kustomization's `configMapGenerator` files and `helmCharts`; `disk` is the file
/// on disk, so generator files that were not read on their own can be read later.
pub(crate) fn read_kustomization(snapshot: &mut Snapshot, rel: &str, disk: &Path, doc: &YamlNode) {
    let namespace = doc.get("namespace").and_then(YamlNode::scalar_text);
    let dir = disk.parent().unwrap_or(Path::new(""));
    let remember = |snapshot: &mut Snapshot, file: &str| {
        let label = resolve_relative(rel, file);
        snapshot.value_files.insert(label.clone(), dir.join(file));
        label
    };
    for generator in doc
        .get("configMapGenerator")
        .map(YamlNode::as_seq)
        .unwrap_or_default()
    {
        let Some(name) = generator.get("name").and_then(YamlNode::scalar_text) else {
            continue;
        };
        let namespace = generator
            .get("namespace")
            .and_then(YamlNode::scalar_text)
            .or_else(|| namespace.clone());
        for entry in generator
            .get("files")
            .map(YamlNode::as_seq)
            .unwrap_or_default()
        {
            let Some(text) = entry.scalar_text() else {
                continue;
            };
            // `key=path`, or `path` with its file name as the key.
            let (key, file) = match text.split_once('=') {
                Some((key, file)) => (key.to_string(), file.to_string()),
                None => (
                    text.rsplit('/').next().unwrap_or(&text).to_string(),
                    text.clone(),
                ),
            };
            let path = remember(snapshot, &file);
            snapshot.generated_config_maps.push(GeneratedConfigMap {
                kustomization: rel.to_string(),
                namespace: namespace.clone(),
                name: name.clone(),
                key,
                path,
            });
        }
    }
    for chart in doc
        .get("helmCharts")
        .map(YamlNode::as_seq)
        .unwrap_or_default()
    {
        let Some(name) = chart.get("name").and_then(YamlNode::scalar_text) else {
            continue;
        };
        let mut values_from = Vec::new();
        let files = chart
            .get("valuesFile")
            .into_iter()
            .chain(
                chart
                    .get("additionalValuesFiles")
                    .map(YamlNode::as_seq)
                    .unwrap_or_default(),
            )
            .filter_map(YamlNode::scalar_text);
        for file in files {
            values_from.push(ValuesReference {
                kind: "File".into(),
                name: remember(snapshot, &file),
                values_key: String::new(),
                target_path: None,
                optional: false,
            });
        }
        let inline = chart
            .get("valuesInline")
            .cloned()
            .unwrap_or_else(|| YamlNode::synthetic(Value::Map(Vec::new())));
        let mut values = HelmValues::new(
            rel,
            name,
            chart.get("version").and_then(YamlNode::scalar_text),
            inline,
        );
        values.release = true;
        values.namespace = chart
            .get("namespace")
            .and_then(YamlNode::scalar_text)
            .or_else(|| namespace.clone());
        values.values_from = values_from;
        snapshot.pending_helm_charts.push(values);
    }
}

/// A helmfile (`helmfile.yaml`, `helmfile.yaml.gotmpl`): a `releases:` list of charts.
pub(crate) fn is_helmfile(doc: &YamlNode) -> bool {
    doc.get("kind").is_none()
        && doc.get("releases").is_some_and(|r| {
            let releases = r.as_seq();
            !releases.is_empty() && releases.iter().all(|r| r.get("chart").is_some())
        })
}

/// Records a helmfile's releases: `version`, and `values:` entries (files relative to the
/// helmfile, merged in order; inline maps in place) like helmfile passes them to Helm.
pub(crate) fn read_helmfile(snapshot: &mut Snapshot, rel: &str, disk: &Path, doc: &YamlNode) {
    let dir = disk.parent().unwrap_or(Path::new(""));
    for release in doc
        .get("releases")
        .map(YamlNode::as_seq)
        .unwrap_or_default()
    {
        let Some(chart) = release.get("chart").and_then(YamlNode::scalar_text) else {
            continue;
        };
        let name = chart.rsplit('/').next().unwrap_or(&chart).to_string();
        let mut values_from = Vec::new();
        let mut inline = YamlNode::synthetic(Value::Map(Vec::new()));
        for entry in release
            .get("values")
            .map(YamlNode::as_seq)
            .unwrap_or_default()
        {
            match entry.scalar_text() {
                Some(file) => {
                    let label = resolve_relative(rel, &file);
                    snapshot.value_files.insert(label.clone(), dir.join(&file));
                    values_from.push(ValuesReference {
                        kind: "File".into(),
                        name: label,
                        values_key: String::new(),
                        target_path: None,
                        optional: false,
                    });
                }
                None if entry.is_map() => helm::merge_values(&mut inline, entry),
                None => {}
            }
        }
        let mut values = HelmValues::new(
            rel,
            name,
            release.get("version").and_then(YamlNode::scalar_text),
            inline,
        );
        values.release = true;
        values.namespace = release.get("namespace").and_then(YamlNode::scalar_text);
        values.values_from = values_from;
        snapshot.pending_helm_charts.push(values);
    }
}

/// A HelmRelease's `valuesFrom` entries.
pub(crate) fn references(doc: &YamlNode) -> Vec<ValuesReference> {
    doc.path(&["spec", "valuesFrom"])
        .map(YamlNode::as_seq)
        .unwrap_or_default()
        .iter()
        .filter_map(|entry| {
            Some(ValuesReference {
                kind: entry.get("kind")?.scalar_text()?,
                name: entry.get("name")?.scalar_text()?,
                values_key: entry
                    .get("valuesKey")
                    .and_then(YamlNode::scalar_text)
                    .unwrap_or_else(|| DEFAULT_VALUES_KEY.into()),
                target_path: entry.get("targetPath").and_then(YamlNode::scalar_text),
                optional: entry.get("optional").and_then(YamlNode::as_bool) == Some(true),
            })
        })
        .collect()
}

/// Records the data of a ConfigMap manifest, each entry parsed as YAML where it is YAML (a
/// values document) and kept as its string otherwise (a `targetPath` value).
pub(crate) fn read_config_map(
    snapshot: &mut Snapshot,
    rel: &str,
    doc: &YamlNode,
    source: Option<&str>,
) {
    let Some(name) = doc
        .path(&["metadata", "name"])
        .and_then(YamlNode::scalar_text)
    else {
        return;
    };
    let namespace = doc
        .path(&["metadata", "namespace"])
        .and_then(YamlNode::scalar_text);
    for (key, value) in doc.get("data").map(YamlNode::entries).unwrap_or_default() {
        let Some(key) = key.scalar_text() else {
            continue;
        };
        let parsed = value
            .as_str()
            .filter(|_| key.ends_with(".yaml") || key.ends_with(".yml"))
            .and_then(|_| cniswap_config::yaml::parse_embedded(value, source).ok())
            .and_then(|docs| docs.into_iter().next())
            .filter(YamlNode::is_map);
        snapshot.config_map_entries.push(ConfigMapEntry {
            file: rel.to_string(),
            namespace: namespace.clone(),
            name: name.clone(),
            key,
            value: parsed.unwrap_or_else(|| value.clone()),
        });
    }
}

/// Merges every release's referenced values, once all files are read.
pub(crate) fn resolve(snapshot: &mut Snapshot) {
    let charts = std::mem::take(&mut snapshot.pending_helm_charts);
    let first_pending = snapshot.helm.len();
    snapshot.helm.extend(charts);
    let mut consumed: Vec<String> = Vec::new();
    for i in 0..snapshot.helm.len() {
        if snapshot.helm[i].values_from.is_empty() {
            continue;
        }
        let release = snapshot.helm[i].clone();
        let mut merged = YamlNode::synthetic(Value::Map(Vec::new()));
        let mut merged_from = Vec::new();
        let mut unresolved = Vec::new();
        for reference in &release.values_from {
            match lookup(snapshot, &release, reference) {
                Some((file, value)) => {
                    match &reference.target_path {
                        Some(path) => helm::set_at_path(&mut merged, path, value),
                        None => helm::merge_values(&mut merged, &value),
                    }
                    consumed.push(file.clone());
                    merged_from.push(file);
                }
                None if reference.optional => {}
                None => unresolved.push(describe(reference)),
            }
        }
        helm::merge_values(&mut merged, &release.values);
        let helm = &mut snapshot.helm[i];
        helm.values = merged;
        merged_from.dedup();
        helm.merged_from = merged_from;
        helm.unresolved = unresolved;
    }
    // helmfile and kustomize releases of charts that are not a CNI's are not kept.
    let mut index = 0;
    snapshot.helm.retain(|h| {
        index += 1;
        index <= first_pending || crate::load::is_cni_values(&h.chart, &h.values)
    });
    // A values file merged into a release is linted as part of it, not again on its own as if
    // it were the whole install.
    snapshot
        .helm
        .retain(|h| h.release || !consumed.contains(&h.file));
}

fn describe(reference: &ValuesReference) -> String {
    match reference.kind.as_str() {
        "Secret" => format!(
            "Secret {} (key {}; Secrets are never read)",
            reference.name, reference.values_key
        ),
        "File" => format!("values file {} (not found)", reference.name),
        kind => format!(
            "{kind} {} (key {}; not among the inputs)",
            reference.name, reference.values_key
        ),
    }
}

/// The value a reference names and the file it is in.
fn lookup(
    snapshot: &mut Snapshot,
    release: &HelmValues,
    reference: &ValuesReference,
) -> Option<(String, YamlNode)> {
    let same_namespace = |ns: &Option<String>| match (ns, &release.namespace) {
        (Some(a), Some(b)) => a == b,
        _ => true,
    };
    match reference.kind.as_str() {
        "ConfigMap" => {
            if let Some(entry) = snapshot.config_map_entries.iter().find(|e| {
                e.name == reference.name
                    && e.key == reference.values_key
                    && same_namespace(&e.namespace)
            }) {
                return Some((entry.file.clone(), entry.value.clone()));
            }
            let path = snapshot
                .generated_config_maps
                .iter()
                .find(|g| {
                    g.name == reference.name
                        && g.key == reference.values_key
                        && same_namespace(&g.namespace)
                })?
                .path
                .clone();
            let value = file_values(snapshot, &path)?;
            let value = match &reference.target_path {
                // A generated key that holds one value, not a document.
                Some(_) => snapshot
                    .source_named(&path)
                    .map(|s| YamlNode::synthetic(Value::Str(s.text.trim_end().to_string())))
                    .unwrap_or(value),
                None => value,
            };
            Some((path, value))
        }
        "File" => {
            let value = file_values(snapshot, &reference.name)?;
            Some((reference.name.clone(), value))
        }
        _ => None,
    }
}

/// The first document of a file, with positions: from the file as read, or read now when it
/// was passed over on its own (a values file too small to be recognised as Cilium's).
fn file_values(snapshot: &mut Snapshot, label: &str) -> Option<YamlNode> {
    let index = match snapshot.sources.iter().position(|s| s.path == label) {
        Some(index) => index,
        None => {
            let disk = snapshot.value_files.get(label)?.clone();
            let text = read::read_config_file(&disk).ok()?;
            let redacted = redact::redact_yaml(&text).ok()?;
            snapshot.sources.push(SourceFile::new(label, redacted.text));
            snapshot.files_read += 1;
            snapshot.skipped.retain(|s| s.path != label);
            snapshot.sources.len() - 1
        }
    };
    let source = u32::try_from(index + 1).ok()?;
    let mut docs = cniswap_config::yaml::parse_documents(&snapshot.sources[index].text).ok()?;
    let mut doc = docs.drain(..).next().filter(YamlNode::is_map)?;
    doc.set_source(source);
    Some(doc)
}
