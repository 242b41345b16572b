use crate::decode::Object;
use crate::objects::*;
use cniswap_config::Node as YamlNode;
use cniswap_model::text::escape_control;
use cniswap_model::{SkippedInput, TalosConfigFacts, UnreadKind};
use std::collections::BTreeMap;

/// Kubernetes objects of a snapshot, by kind, in their minimal form.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Objects {
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub daemonsets: Vec<Workload>,
    pub deployments: Vec<Workload>,
    pub statefulsets: Vec<Workload>,
    pub config_maps: Vec<ConfigMap>,
    pub pdbs: Vec<PodDisruptionBudget>,
    pub validating_webhooks: Vec<WebhookConfiguration>,
    pub mutating_webhooks: Vec<WebhookConfiguration>,
    pub services: Vec<Service>,
    pub network_policies: Vec<Named>,
    pub namespaces: Vec<Named>,
    pub csi_drivers: Vec<Named>,
    pub crds: Vec<CustomResourceDefinition>,
    pub storage_classes: Vec<StorageClass>,
    pub cni_configs: Vec<CustomResource>,
    pub cni_policies: Vec<CustomResource>,
    /// Kinds cniswap does not read, with counts (`apiVersion/kind`).
    pub other_kinds: BTreeMap<String, usize>,
    /// Secrets seen and dropped without keeping any of their content.
    pub secrets_dropped: usize,
}

impl Objects {
    /// Adds an object (flattening Lists); returns how many objects it held.
    pub fn add(&mut self, object: Object) -> usize {
        match object {
            Object::Node(o) => self.nodes.push(o),
            Object::Pod(o) => self.pods.push(o),
            Object::DaemonSet(o) => self.daemonsets.push(o),
            Object::Deployment(o) => self.deployments.push(o),
            Object::StatefulSet(o) => self.statefulsets.push(o),
            Object::ConfigMap(o) => self.config_maps.push(o),
            Object::PodDisruptionBudget(o) => self.pdbs.push(o),
            Object::ValidatingWebhookConfiguration(o) => self.validating_webhooks.push(o),
            Object::MutatingWebhookConfiguration(o) => self.mutating_webhooks.push(o),
            Object::Service(o) => self.services.push(o),
            Object::NetworkPolicy(o) => self.network_policies.push(o),
            Object::Namespace(o) => self.namespaces.push(o),
            Object::CsiDriver(o) => self.csi_drivers.push(o),
            Object::CustomResourceDefinition(o) => self.crds.push(o),
            Object::StorageClass(o) => self.storage_classes.push(o),
            Object::CniConfig(o) => self.cni_configs.push(o),
            Object::CniPolicy(o) => self.cni_policies.push(o),
            Object::Secret => self.secrets_dropped += 1,
            Object::List(items) => return items.into_iter().map(|o| self.add(o)).sum(),
            Object::Other { api_version, kind } => {
                *self
                    .other_kinds
                    .entry(format!("{api_version}/{kind}"))
                    .or_default() += 1;
            }
            Object::NotKubernetes => return 0,
        }
        1
    }

    pub fn len(&self) -> usize {
        self.nodes.len()
            + self.pods.len()
            + self.daemonsets.len()
            + self.deployments.len()
            + self.statefulsets.len()
            + self.config_maps.len()
            + self.pdbs.len()
            + self.validating_webhooks.len()
            + self.mutating_webhooks.len()
            + self.services.len()
            + self.network_policies.len()
            + self.namespaces.len()
            + self.csi_drivers.len()
            + self.crds.len()
            + self.storage_classes.len()
            + self.cni_configs.len()
            + self.cni_policies.len()
            + self.other_kinds.values().sum::<usize>()
            + self.secrets_dropped
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Removes one equal object for each object of `other` (those that are present).
    pub fn remove_each(&mut self, other: &Objects) {
        fn take<T: PartialEq>(from: &mut Vec<T>, items: &[T]) {
            for item in items {
                if let Some(i) = from.iter().position(|x| x == item) {
                    from.remove(i);
                }
            }
        }
        // Destructured so that a new kind cannot be forgotten here.
        let Objects {
            nodes,
            pods,
            daemonsets,
            deployments,
            statefulsets,
            config_maps,
            pdbs,
            validating_webhooks,
            mutating_webhooks,
            services,
            network_policies,
            namespaces,
            csi_drivers,
            crds,
            storage_classes,
            cni_configs,
            cni_policies,
            other_kinds,
            secrets_dropped,
        } = other;
        take(&mut self.nodes, nodes);
        take(&mut self.pods, pods);
        take(&mut self.daemonsets, daemonsets);
        take(&mut self.deployments, deployments);
        take(&mut self.statefulsets, statefulsets);
        take(&mut self.config_maps, config_maps);
        take(&mut self.pdbs, pdbs);
        take(&mut self.validating_webhooks, validating_webhooks);
        take(&mut self.mutating_webhooks, mutating_webhooks);
        take(&mut self.services, services);
        take(&mut self.network_policies, network_policies);
        take(&mut self.namespaces, namespaces);
        take(&mut self.csi_drivers, csi_drivers);
        take(&mut self.crds, crds);
        take(&mut self.storage_classes, storage_classes);
        take(&mut self.cni_configs, cni_configs);
        take(&mut self.cni_policies, cni_policies);
        for (kind, n) in other_kinds {
            if let Some(count) = self.other_kinds.get_mut(kind) {
                *count = count.saturating_sub(*n);
                if *count == 0 {
                    self.other_kinds.remove(kind);
                }
            }
        }
        self.secrets_dropped = self.secrets_dropped.saturating_sub(*secrets_dropped);
    }

    pub fn daemonset(&self, namespace: &str, name: &str) -> Option<&Workload> {
        self.daemonsets
            .iter()
            .find(|d| d.metadata.name == name && d.metadata.namespace() == namespace)
    }

    pub fn config_map(&self, namespace: &str, name: &str) -> Option<&ConfigMap> {
        self.config_maps
            .iter()
            .find(|c| c.metadata.name == name && c.metadata.namespace() == namespace)
    }
}

/// A Talos machine config, patch, Omni patch or talhelper config, already redacted.
#[derive(Debug, Clone, PartialEq)]
pub struct TalosSource {
    pub summary: TalosConfigFacts,
    /// The (redacted) documents, kept for the linter.
    pub docs: Vec<YamlNode>,
    /// For Omni ConfigPatches: the `omni.sidero.dev/cluster` label.
    pub omni_cluster: Option<String>,
    /// The node role the patch is limited to (`controlplane` / `worker`); `None` = every node.
    pub role: Option<String>,
    /// For Omni ConfigPatches: the resource's `metadata` (id, labels), kept for the linter.
    pub omni_metadata: Option<YamlNode>,
}

impl TalosSource {
    pub fn new(summary: TalosConfigFacts, docs: Vec<YamlNode>) -> Self {
        TalosSource {
            summary,
            docs,
            omni_cluster: None,
            role: None,
            omni_metadata: None,
        }
    }
}

/// A Kubernetes object a lint rule reads with its position (Calico Installation,
/// FelixConfiguration, IPPool, Cilium CRs, CNI ConfigMaps).
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub file: String,
    pub doc: YamlNode,
}

/// Kinds kept as [`Manifest`]s when read from files.
pub const LINTED_KINDS: &[&str] = &[
    "Installation",
    "FelixConfiguration",
    "IPPool",
    "CiliumL2AnnouncementPolicy",
    "CiliumNodeConfig",
    "KubeProxyConfiguration",
];

/// ConfigMaps kept as [`Manifest`]s when read from files.
pub const LINTED_CONFIG_MAPS: &[&str] = &[
    "kubernetes-services-endpoint",
    "kube-flannel-cfg",
    "cilium-config",
];

/// Whether a document is one the linter reads with positions.
pub fn is_linted_manifest(doc: &YamlNode) -> bool {
    match doc.get("kind").and_then(YamlNode::as_str) {
        Some("ConfigMap") => doc
            .path(&["metadata", "name"])
            .and_then(YamlNode::as_str)
            .is_some_and(|n| LINTED_CONFIG_MAPS.contains(&n)),
        Some(kind) => LINTED_KINDS.contains(&kind),
        None => false,
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct OmniTemplateSource {
    pub file: String,
    pub cluster: Option<String>,
    pub talos_version: Option<String>,
    pub kubernetes_version: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HelmValues {
    pub file: String,
    /// cilium, tigera-operator, flannel, ... (from `helm/<chart>.yaml` or the release).
    pub chart: String,
    pub chart_version: Option<String>,
    pub values: YamlNode,
    /// From a Flux HelmRelease or Argo CD Application (a managed release), not a loose file.
    pub release: bool,
    /// The release's namespace (`metadata.namespace`), where Flux looks up `valuesFrom`.
    pub namespace: Option<String>,
    /// Flux `valuesFrom` entries, in order; merged under the inline values after loading.
    pub values_from: Vec<ValuesReference>,
    /// Files whose values were merged in (`valuesFrom` ConfigMaps, kustomize `valuesFile`).
    pub merged_from: Vec<String>,
    /// Value sources the release names that were not read (Secrets never are; a ConfigMap
    /// not among the inputs): a setting missing from `values` may be set there.
    pub unresolved: Vec<String>,
    /// The values for after the migration (`values-final*.yaml`, or marked
    /// `# cniswap:final`): not checked against the settings a migration needs meanwhile.
    pub after_migration: bool,
}

impl HelmValues {
    /// Values of a file or release, nothing merged yet.
    pub fn new(file: &str, chart: String, chart_version: Option<String>, values: YamlNode) -> Self {
        HelmValues {
            file: file.to_string(),
            chart,
            chart_version,
            values,
            release: false,
            namespace: None,
            values_from: Vec::new(),
            merged_from: Vec::new(),
            unresolved: Vec::new(),
            after_migration: false,
        }
    }
}

/// One Flux HelmRelease `valuesFrom` entry.
#[derive(Debug, Clone, PartialEq)]
pub struct ValuesReference {
    /// `ConfigMap` or `Secret`.
    pub kind: String,
    pub name: String,
    /// The data key (Flux default `values.yaml`).
    pub values_key: String,
    /// Where a single value goes (`a.b.c`); `None`: the key holds a values document.
    pub target_path: Option<String>,
    pub optional: bool,
}

/// One data entry of a ConfigMap defined in the inputs (a manifest, or a kustomize
/// `configMapGenerator` file), for `valuesFrom`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConfigMapEntry {
    pub file: String,
    pub namespace: Option<String>,
    pub name: String,
    pub key: String,
    /// The value as parsed YAML, positions in `file`.
    pub value: YamlNode,
}

/// A kustomize `configMapGenerator` file entry, resolved once every file is read.
#[derive(Debug, Clone, PartialEq)]
pub struct GeneratedConfigMap {
    pub kustomization: String,
    pub namespace: Option<String>,
    pub name: String,
    pub key: String,
    /// The file, relative to the snapshot root like every label.
    pub path: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NodeInventory {
    pub node: String,
    pub file: String,
    pub data: cniswap_model::Inventory,
}

/// Everything one load produced.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// `snapshot:<path>` or `live:<context>`.
    pub source: String,
    pub objects: Objects,
    pub talos: Vec<TalosSource>,
    pub omni_templates: Vec<OmniTemplateSource>,
    pub helm: Vec<HelmValues>,
    /// Positioned CNI objects from files, for the linter.
    pub manifests: Vec<Manifest>,
    /// Patch files that a talhelper config or Omni template limits to one role
    /// (path relative to the snapshot root -> `controlplane` / `worker`).
    pub patch_roles: BTreeMap<String, String>,
    /// Patch files a talhelper config or Omni template references (resolved paths), to tell
    /// which of them were not among the inputs.
    pub referenced_patches: std::collections::BTreeSet<String>,
    /// Node roles a talhelper config or Omni template declares (`controlplane`, `worker`):
    /// effective configs are built only for roles that exist.
    pub declared_roles: std::collections::BTreeSet<String>,
    /// Node addresses a cluster description declares (talhelper `nodes[].ipAddress`), with
    /// their positions, for rules about the node network.
    pub node_addresses: Vec<YamlNode>,
    /// ConfigMap data entries defined in the inputs, for Flux `valuesFrom`.
    pub config_map_entries: Vec<ConfigMapEntry>,
    /// kustomize `configMapGenerator` files, for Flux `valuesFrom`.
    pub generated_config_maps: Vec<GeneratedConfigMap>,
    /// Values files a kustomization names (label -> path on disk), read when no other input
    /// brought them.
    pub value_files: BTreeMap<String, std::path::PathBuf>,
    /// talhelper `@path` patch files (label -> path on disk), read after the other inputs
    /// when they were not among them.
    pub talhelper_patch_files: BTreeMap<String, std::path::PathBuf>,
    /// kustomize `helmCharts` releases, added once their values files are read.
    pub pending_helm_charts: Vec<HelmValues>,
    /// Flux OCIRepository name -> pinned tag, to resolve HelmRelease `chartRef` versions.
    pub oci_tags: BTreeMap<String, String>,
    pub node_inventories: Vec<NodeInventory>,
    /// Redacted text of every config file read into memory (not cluster/ dumps), so findings
    /// can show the source line without ever re-reading a file that holds secrets. A YAML
    /// node's `pos.source` is its index here plus one.
    pub sources: Vec<SourceFile>,
    pub files_read: usize,
    /// Bytes of the files read, against the input budget (`CNISWAP_MAX_INPUT_BYTES`).
    pub bytes_read: u64,
    pub skipped: Vec<SkippedInput>,
    /// Files read in part, with what was left out.
    pub partly_read: Vec<SkippedInput>,
    /// Kinds the cluster refused to list (or a snapshot says were refused): unknown, not
    /// empty. Written to and read from `cluster/unread.json`.
    pub unread: Vec<UnreadKind>,
    /// Files listed in `skipped` because they could not be read (invalid YAML, no permission):
    /// only `lint PATH...` goes on after such a file.
    pub unreadable: usize,
    /// Canonical paths of the files read, so overlapping inputs are read once.
    pub read_files: std::collections::BTreeSet<std::path::PathBuf>,
}

/// The file of `cluster/` that lists the kinds a live read could not list.
pub const UNREAD_FILE: &str = "unread.json";

/// Why a file with another extension was not read.
pub const NOT_YAML_OR_JSON: &str = "not a YAML or JSON file (by extension)";

/// Why a rollback file was not read with the others (see `load::is_rollback_file`).
pub const ROLLBACK_FILE: &str = "rollback file (marked `# cniswap:rollback`, or named rollback-*): it restores the configuration from before the migration on purpose, so it is not checked against --to or merged with the other configs";

#[derive(Debug, Clone, PartialEq)]
pub struct SourceFile {
    pub path: String,
    pub text: String,
    /// Byte offset of the start of each line, so a finding's line is found in O(log n)
    /// rather than by scanning the file once per finding.
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: impl Into<String>, text: String) -> Self {
        let line_starts = std::iter::once(0)
            .chain(text.match_indices('\n').map(|(i, _)| i + 1))
            .filter(|start| *start < text.len())
            .collect();
        SourceFile {
            path: path.into(),
            text,
            line_starts,
        }
    }

    /// Line `number` (1-based) without its line ending, as `str::lines` would give it.
    pub fn line(&self, number: usize) -> Option<&str> {
        let start = *self.line_starts.get(number.checked_sub(1)?)?;
        let end = self
            .line_starts
            .get(number)
            .copied()
            .unwrap_or(self.text.len());
        let line = &self.text[start..end];
        let line = line.strip_suffix('\n').unwrap_or(line);
        Some(line.strip_suffix('\r').unwrap_or(line))
    }
}

impl Snapshot {
    /// The source file read from `path`.
    pub fn source_named(&self, path: &str) -> Option<&SourceFile> {
        self.sources.iter().find(|s| s.path == path)
    }

    /// The file a YAML node came from, by its `pos.source` index.
    pub fn source_file(&self, source: u32) -> Option<&SourceFile> {
        self.sources.get((source as usize).checked_sub(1)?)
    }

    /// Records a kind that could not be listed (once per path).
    pub fn mark_unread(&mut self, kind: UnreadKind) {
        tracing::info!(
            "could not list {}: {}",
            escape_control(&kind.path),
            escape_control(&kind.cause)
        );
        if !self.unread.iter().any(|k| k.path == kind.path) {
            self.unread.push(kind);
        }
    }

    pub fn skip(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        let (path, reason) = (path.into(), reason.into());
        tracing::info!(
            "skipped {}: {}",
            escape_control(&path),
            escape_control(&reason)
        );
        self.skipped.push(SkippedInput { path, reason });
    }

    /// A file that was read, but not all of it (template expressions blanked out, documents
    /// not recognised): checked, and reported apart from the files that were skipped.
    pub fn read_in_part(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        let (path, reason) = (path.into(), reason.into());
        tracing::info!(
            "read {} in part: {}",
            escape_control(&path),
            escape_control(&reason)
        );
        self.partly_read.push(SkippedInput { path, reason });
    }
}

#[cfg(test)]
mod tests {
    use super::SourceFile;

    #[test]
    fn lines_by_number_match_str_lines() {
        for text in ["a\nb\r\n\nc", "a\n", "", "\n\n", "x"] {
            let file = SourceFile::new("f", text.to_string());
            let expected: Vec<&str> = text.lines().collect();
            let got: Vec<&str> = (1..=expected.len() + 1)
                .map_while(|n| file.line(n))
                .collect();
            assert_eq!(got, expected, "{text:?}");
            assert_eq!(file.line(0), None);
        }
    }
}
