//! Installs without the internet (`--chart`, `--manifest`, `--image-registry`): a local chart
//! directory or manifest is copied into the plan's artifacts (so apply's artifact digests cover
//! it) and used by every command instead of a repository URL or a download; every image the
//! plan installs is pulled from a mirror as `HOST[/PREFIX]/<upstream repository path>:<tag>`.

use crate::PlanError;
use crate::artifacts::Artifacts;
use serde_json::{Value, json};

/// What the user supplied instead of the internet. Empty: charts from their repositories,
/// manifests downloaded, images from their upstream registries.
#[derive(Debug, Clone, Default)]
pub struct LocalSources {
    /// `--chart NAME=DIR`, read by the caller: the chart's files (path in the chart, text).
    pub charts: Vec<LocalChart>,
    /// `--manifest NAME=FILE`, read by the caller: (name, text).
    pub manifests: Vec<(String, String)>,
    /// `--image-registry HOST[/PREFIX]`.
    pub image_registry: Option<String>,
}

#[derive(Debug, Clone)]
pub struct LocalChart {
    /// `cilium` or `tigera-operator`.
    pub name: String,
    /// Where it was read from (for messages only).
    pub source: String,
    /// Every file of the chart directory: (path relative to it, text).
    pub files: Vec<(String, String)>,
}

/// Chart names `--chart` accepts.
pub const CHARTS: &[&str] = &["cilium", "tigera-operator"];
/// Manifest names `--manifest` accepts: Calico's manifest install (calico.yaml), Flannel's
/// release manifest (kube-flannel.yml), and Calico's flannel-migration pair.
pub const MANIFESTS: &[&str] = &[
    "calico",
    "flannel",
    "calico-flannel-migration",
    "calico-migration-job",
];

impl LocalSources {
    pub fn chart(&self, name: &str) -> Option<&LocalChart> {
        self.charts.iter().find(|c| c.name == name)
    }

    pub fn manifest(&self, name: &str) -> Option<&str> {
        self.manifests
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, t)| t.as_str())
    }

    /// Refuses names cniswap does not know, doubles, charts without a Chart.yaml version and
    /// registries that are no image reference prefix.
    pub fn check(&self) -> Result<(), PlanError> {
        for (i, chart) in self.charts.iter().enumerate() {
            if !CHARTS.contains(&chart.name.as_str()) {
                return Err(crate::error(
                    format!(
                        "--chart {}: cniswap installs no chart of that name",
                        chart.name
                    ),
                    format!("name one of {} (--chart cilium=DIR)", CHARTS.join(", ")),
                ));
            }
            if self.charts[..i].iter().any(|c| c.name == chart.name) {
                return Err(crate::error(
                    format!("--chart {} is given twice", chart.name),
                    "give each chart once",
                ));
            }
            chart.version()?;
        }
        for (i, (name, _)) in self.manifests.iter().enumerate() {
            if !MANIFESTS.contains(&name.as_str()) {
                return Err(crate::error(
                    format!("--manifest {name}: cniswap installs no manifest of that name"),
                    format!(
                        "name one of {} (--manifest calico=calico.yaml)",
                        MANIFESTS.join(", ")
                    ),
                ));
            }
            if self.manifests[..i].iter().any(|(n, _)| n == name) {
                return Err(crate::error(
                    format!("--manifest {name} is given twice"),
                    "give each manifest once",
                ));
            }
        }
        if let Some(registry) = &self.image_registry {
            let valid = !registry.is_empty()
                && !registry.starts_with('/')
                && !registry.ends_with('/')
                && !registry.contains("//")
                && !registry.contains('@')
                && registry
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | ':'));
            if !valid {
                return Err(crate::error(
                    format!("--image-registry {registry:?} is not HOST[/PREFIX]"),
                    "pass a registry host and an optional path, e.g. registry.example.com:5000/mirror",
                ));
            }
        }
        Ok(())
    }
}

impl LocalChart {
    /// The chart's version from its Chart.yaml.
    pub fn version(&self) -> Result<String, PlanError> {
        let text = self
            .files
            .iter()
            .find(|(p, _)| p == "Chart.yaml")
            .map(|(_, t)| t)
            .ok_or_else(|| {
                crate::error(
                    format!(
                        "--chart {}={}: the directory has no Chart.yaml",
                        self.name, self.source
                    ),
                    "pass the chart's own directory (the one holding Chart.yaml and templates/)",
                )
            })?;
        let chart: Value = serde_saphyr::from_str(text).map_err(|e| {
            crate::error(
                format!(
                    "--chart {}: {}/Chart.yaml is not YAML: {e}",
                    self.name, self.source
                ),
                "pass an unpacked Helm chart",
            )
        })?;
        // `version: 1.0` reads as a number: take it as written.
        let version = match chart.get("version") {
            Some(Value::String(v)) => v.clone(),
            Some(Value::Number(n)) => n.to_string(),
            _ => String::new(),
        };
        let declared = chart.get("name").and_then(Value::as_str).unwrap_or("");
        if version.is_empty() {
            return Err(crate::error(
                format!(
                    "--chart {}: {}/Chart.yaml has no version",
                    self.name, self.source
                ),
                "pass an unpacked Helm chart",
            ));
        }
        if declared != self.name {
            return Err(crate::error(
                format!(
                    "--chart {}={}: its Chart.yaml names the chart {declared:?}",
                    self.name, self.source
                ),
                format!("pass the {} chart's directory", self.name),
            ));
        }
        Ok(version)
    }

    /// The chart's default values (values.yaml), or null.
    pub fn values(&self) -> Value {
        self.files
            .iter()
            .find(|(p, _)| p == "values.yaml")
            .and_then(|(_, t)| serde_saphyr::from_str(t).ok())
            .unwrap_or(Value::Null)
    }
}

/// The plan directory's copy of a chart, as helm's chart argument (relative to the plan
/// directory, where apply runs helm).
pub fn chart_dir(name: &str) -> String {
    format!("artifacts/charts/{name}")
}

/// Copies a local chart into the artifacts (byte for byte); returns its directory.
pub fn copy_chart(artifacts: &mut Artifacts, chart: &LocalChart) -> String {
    for (path, text) in &chart.files {
        artifacts.add_raw(
            &format!("charts/{}/{path}", chart.name),
            &format!("the {} chart, copied from {}", chart.name, chart.source),
            text.clone(),
        );
    }
    chart_dir(&chart.name)
}

/// The mirror's name of an image: `registry/<path without the upstream host>:<tag>`, digest
/// dropped (the mirror's copy has its own). A first component with a dot or colon, or
/// `localhost`, is a registry host (the image reference rules); Docker Hub's short names have
/// none (`calico/node`, `busybox` as `library/busybox` stays `busybox`).
pub fn mirrored(registry: &str, reference: &str) -> String {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let (name, tag) = match without_digest.rsplit_once(':') {
        Some((n, t)) if !t.contains('/') => (n, Some(t)),
        _ => (without_digest, None),
    };
    let path = repository_path(name);
    match tag {
        Some(tag) => format!("{registry}/{path}:{tag}"),
        None => format!("{registry}/{path}"),
    }
}

/// A repository without its registry host.
pub fn repository_path(repository: &str) -> &str {
    match repository.split_once('/') {
        Some((first, rest))
            if first.contains('.') || first.contains(':') || first == "localhost" =>
        {
            rest
        }
        _ => repository,
    }
}

/// Every image a manifest names (`image:` fields of any object), each once, in order.
pub fn manifest_images(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in text.lines() {
        let trimmed = line.trim_start().trim_start_matches("- ").trim_start();
        let Some(rest) = trimmed.strip_prefix("image:") else {
            continue;
        };
        let value = rest
            .split(" #")
            .next()
            .unwrap_or("")
            .trim()
            .trim_matches(|c| c == '"' || c == '\'');
        if !value.is_empty() && !out.iter().any(|o| o == value) {
            out.push(value.to_string());
        }
    }
    out
}

/// kustomize `images:` entries that point a manifest's images at the mirror.
pub fn kustomize_images(registry: &str, text: &str) -> Vec<Value> {
    manifest_images(text)
        .iter()
        .map(|image| {
            let without_digest = image.split('@').next().unwrap_or(image);
            let name = match without_digest.rsplit_once(':') {
                Some((n, t)) if !t.contains('/') => n,
                _ => without_digest,
            };
            let mirror = mirrored(registry, image);
            let (new_name, new_tag) = match mirror.rsplit_once(':') {
                Some((n, t)) if !t.contains('/') => (n.to_string(), Some(t.to_string())),
                _ => (mirror.clone(), None),
            };
            let mut entry = json!({"name": name, "newName": new_name});
            if let Some(tag) = new_tag {
                entry["newTag"] = json!(tag);
            }
            // A digest pins the upstream copy; the mirror's has its own.
            if image.contains('@') {
                entry["digest"] = Value::Null;
            }
            entry
        })
        .collect()
}

/// Helm values that point every image of a chart at the mirror: each map of the chart's
/// values with a `repository` string (Cilium's `image`, `operator.image`, `envoy.image`, ...)
/// gets the mirrored repository and `useDigest: false`. Without the chart's values (a chart
/// from its repository), Cilium's known image keys.
pub fn mirrored_chart_values(registry: &str, chart: &str, defaults: &Value) -> Value {
    let mut out = json!({});
    if chart == "tigera-operator" {
        // The operator composes `<registry>/<imagePath or calico>/<name>` itself.
        return json!({
            "tigeraOperator": {"registry": registry},
            "installation": {"registry": format!("{registry}/")},
        });
    }
    if defaults.is_object() {
        walk(registry, defaults, &mut Vec::new(), &mut out);
        return out;
    }
    for (path, repository) in [
        ("image", "quay.io/cilium/cilium"),
        ("operator/image", "quay.io/cilium/operator"),
        ("envoy/image", "quay.io/cilium/cilium-envoy"),
        ("preflight/image", "quay.io/cilium/cilium"),
        ("certgen/image", "quay.io/cilium/certgen"),
        ("hubble/relay/image", "quay.io/cilium/hubble-relay"),
        (
            "hubble/ui/backend/image",
            "quay.io/cilium/hubble-ui-backend",
        ),
        ("hubble/ui/frontend/image", "quay.io/cilium/hubble-ui"),
        (
            "clustermesh/apiserver/image",
            "quay.io/cilium/clustermesh-apiserver",
        ),
        ("nodeinit/image", "quay.io/cilium/startup-script"),
    ] {
        let keys: Vec<&str> = path.split('/').collect();
        set(
            &mut out,
            &keys,
            json!({
                "repository": format!("{registry}/{}", repository_path(repository)),
                "useDigest": false,
            }),
        );
    }
    out
}

fn walk(registry: &str, value: &Value, at: &mut Vec<String>, out: &mut Value) {
    let Some(map) = value.as_object() else {
        return;
    };
    if let Some(repository) = map.get("repository").and_then(Value::as_str)
        && !repository.is_empty()
    {
        let keys: Vec<&str> = at.iter().map(String::as_str).collect();
        let mut image =
            json!({"repository": format!("{registry}/{}", repository_path(repository))});
        if map.contains_key("useDigest") {
            image["useDigest"] = json!(false);
        }
        set(out, &keys, image);
        return;
    }
    for (key, child) in map {
        at.push(key.clone());
        walk(registry, child, at, out);
        at.pop();
    }
}

fn set(out: &mut Value, keys: &[&str], value: Value) {
    let mut overlay = value;
    for key in keys.iter().rev() {
        overlay = json!({ *key: overlay });
    }
    crate::artifacts::merge(out, &overlay);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mirrored_names_keep_the_upstream_path_and_tag_and_drop_the_digest() {
        let r = "lab.cniswap.local";
        assert_eq!(
            mirrored(r, "quay.io/cilium/cilium:v1.20.2@sha256:abc"),
            "lab.cniswap.local/cilium/cilium:v1.20.2"
        );
        assert_eq!(
            mirrored(r, "docker.io/calico/node:v3.28.5"),
            "lab.cniswap.local/calico/node:v3.28.5"
        );
        assert_eq!(
            mirrored(r, "calico/cni:v3.28.5"),
            "lab.cniswap.local/calico/cni:v3.28.5"
        );
        assert_eq!(mirrored("m:5000/x", "localhost:5000/a/b"), "m:5000/x/a/b");
        assert_eq!(mirrored(r, "busybox"), "lab.cniswap.local/busybox");
    }

    #[test]
    fn manifest_images_are_found_in_lists_and_quotes() {
        let text = "spec:\n  containers:\n    - image: docker.io/calico/node:v3.28.5\n      name: a\n    - name: b\n      image: \"docker.io/calico/cni:v3.28.5\" # pinned\n  initContainers:\n  - image: docker.io/calico/node:v3.28.5\n";
        assert_eq!(
            manifest_images(text),
            vec![
                "docker.io/calico/node:v3.28.5",
                "docker.io/calico/cni:v3.28.5"
            ]
        );
        let entries = kustomize_images("m.example/p", text);
        assert_eq!(
            entries[0],
            json!({"name": "docker.io/calico/node", "newName": "m.example/p/calico/node", "newTag": "v3.28.5"})
        );
    }

    #[test]
    fn chart_values_point_every_repository_at_the_mirror() {
        let defaults = json!({
            "image": {"repository": "quay.io/cilium/cilium", "tag": "v1.20.2", "useDigest": true},
            "operator": {"image": {"repository": "quay.io/cilium/operator", "suffix": "", "useDigest": true}},
            "hubble": {"enabled": false, "relay": {"image": {"repository": "quay.io/cilium/hubble-relay"}}},
            "debug": {"enabled": false},
        });
        let values = mirrored_chart_values("m.example", "cilium", &defaults);
        assert_eq!(
            values,
            json!({
                "image": {"repository": "m.example/cilium/cilium", "useDigest": false},
                "operator": {"image": {"repository": "m.example/cilium/operator", "useDigest": false}},
                "hubble": {"relay": {"image": {"repository": "m.example/cilium/hubble-relay"}}},
            })
        );
        let known = mirrored_chart_values("m.example", "cilium", &Value::Null);
        assert_eq!(
            known["operator"]["image"]["repository"],
            "m.example/cilium/operator"
        );
        assert_eq!(known["image"]["useDigest"], false);
    }

    #[test]
    fn bad_names_versions_and_registries_are_refused() {
        let chart = |name: &str, yaml: &str| LocalChart {
            name: name.into(),
            source: "/charts/x".into(),
            files: vec![("Chart.yaml".into(), yaml.into())],
        };
        let sources = |charts: Vec<LocalChart>, registry: Option<&str>| LocalSources {
            charts,
            manifests: Vec::new(),
            image_registry: registry.map(str::to_string),
        };
        assert!(
            sources(
                vec![chart("cilium", "name: cilium\nversion: 1.20.2\n")],
                None
            )
            .check()
            .is_ok()
        );
        let e = sources(vec![chart("nginx", "name: nginx\nversion: 1\n")], None)
            .check()
            .unwrap_err();
        assert!(e.message.contains("no chart of that name"), "{}", e.message);
        let e = sources(vec![chart("cilium", "name: cilium\n")], None)
            .check()
            .unwrap_err();
        assert!(e.message.contains("has no version"), "{}", e.message);
        let e = sources(
            vec![chart("cilium", "name: tigera-operator\nversion: 1\n")],
            None,
        )
        .check()
        .unwrap_err();
        assert!(e.message.contains("names the chart"), "{}", e.message);
        for bad in ["", "/x", "x/", "a b", "x@sha256:1", "a//b"] {
            assert!(sources(Vec::new(), Some(bad)).check().is_err(), "{bad:?}");
        }
        let manifests = LocalSources {
            manifests: vec![("weave".into(), String::new())],
            ..LocalSources::default()
        };
        assert!(manifests.check().unwrap_err().message.contains("weave"));
    }
}
