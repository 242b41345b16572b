//! Helm values files, plain or wrapped in a Flux HelmRelease / Argo CD Application.

use crate::yaml::Node;

/// Returns the values tree of a document: the document itself for a plain values file,
/// `spec.values` of a Flux HelmRelease, or `spec.source.helm.valuesObject` / `values` of an
/// Argo CD Application (a string `values` is parsed as YAML, positions kept relative to the
/// file when its text is given as `source`).
pub fn values_of(doc: &Node, source: Option<&str>) -> Option<Node> {
    match doc.get("kind").and_then(Node::as_str) {
        // Values may all come from `valuesFrom`: the inline part is then empty.
        Some("HelmRelease") => doc.path(&["spec", "values"]).cloned().or_else(|| {
            doc.path(&["spec", "valuesFrom"])
                .map(|_| Node::synthetic(crate::yaml::Value::Map(Vec::new())))
        }),
        Some("Application") => {
            let helm = doc.path(&["spec", "source", "helm"]).or_else(|| {
                doc.path(&["spec", "sources"])?
                    .as_seq()
                    .iter()
                    .find_map(|s| s.get("helm"))
            })?;
            if let Some(obj) = helm.get("valuesObject") {
                return Some(obj.clone());
            }
            let holder = helm.get("values")?;
            holder.as_str()?;
            crate::yaml::parse_embedded(holder, source)
                .ok()?
                .into_iter()
                .next()
        }
        Some(_) => None,
        None => doc.is_map().then(|| doc.clone()),
    }
}

/// Merges `overlay` into `base` as Helm coalesces values: maps merge key by key, any other
/// value (lists included) replaces, and `null` removes the key.
pub fn merge_values(base: &mut Node, overlay: &Node) {
    use crate::yaml::Value;
    let (Value::Map(base_entries), Value::Map(entries)) = (&mut base.value, &overlay.value) else {
        *base = overlay.clone();
        return;
    };
    for (key, value) in entries {
        let name = key.scalar_text();
        let existing = base_entries
            .iter()
            .position(|(k, _)| name.is_some() && k.scalar_text() == name);
        match (existing, &value.value) {
            (Some(i), Value::Null) => {
                base_entries.remove(i);
            }
            (Some(i), _) => merge_values(&mut base_entries[i].1, value),
            (None, Value::Null) => {}
            (None, _) => base_entries.push((key.clone(), value.clone())),
        }
    }
}

/// Sets `value` at the dotted `path` of `values` (Flux `targetPath`, Helm `--set` style; a
/// `\.` keeps a dot in a key), creating maps on the way.
pub fn set_at_path(values: &mut Node, path: &str, value: Node) {
    use crate::yaml::Value;
    let mut keys: Vec<String> = Vec::new();
    let mut current = String::new();
    let mut chars = path.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'.') => {
                current.push('.');
                chars.next();
            }
            '.' => keys.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    keys.push(current);
    let mut node = values;
    for (i, key) in keys.iter().enumerate() {
        if !matches!(node.value, Value::Map(_)) {
            node.value = Value::Map(Vec::new());
        }
        let Value::Map(entries) = &mut node.value else {
            return;
        };
        let index = match entries
            .iter()
            .position(|(k, _)| k.scalar_text().as_deref() == Some(key.as_str()))
        {
            Some(index) => index,
            None => {
                entries.push((
                    Node::synthetic(Value::Str(key.clone())),
                    Node::synthetic(Value::Map(Vec::new())),
                ));
                entries.len() - 1
            }
        };
        if i + 1 == keys.len() {
            entries[index].1 = value;
            return;
        }
        node = &mut entries[index].1;
    }
}

/// Top-level keys that only Cilium values have; two of them make a map Cilium values.
const CILIUM_MARKERS: &[&str] = &[
    "kubeProxyReplacement",
    "k8sServiceHost",
    "hubble",
    "cni",
    "ipam",
    "bpf",
    "l2announcements",
    "routingMode",
    "tunnelProtocol",
    "cgroup",
];

/// Whether a map looks like Cilium Helm values (used when no chart name says so).
pub fn looks_like_cilium_values(values: &Node) -> bool {
    CILIUM_MARKERS
        .iter()
        .filter(|k| values.get(k).is_some())
        .count()
        >= 2
}

/// Charts whose values are not Cilium's even when they share key names.
pub fn is_other_cni_chart(chart: &str) -> bool {
    ["tigera-operator", "calico", "flannel", "canal", "weave"]
        .iter()
        .any(|c| chart.contains(c))
}

/// The chart a HelmRelease or Application installs, when it says.
pub fn chart_of(doc: &Node) -> Option<String> {
    doc.path(&["spec", "chart", "spec", "chart"])
        .or_else(|| doc.path(&["spec", "source", "chart"]))
        .or_else(|| doc.path(&["spec", "chartRef", "name"]))
        .and_then(Node::scalar_text)
}

/// The OCIRepository a Flux HelmRelease points at with `spec.chartRef`.
pub fn chart_ref_of(doc: &Node) -> Option<String> {
    (doc.path(&["spec", "chartRef", "kind"])?.as_str()? == "OCIRepository")
        .then(|| doc.path(&["spec", "chartRef", "name"])?.scalar_text())
        .flatten()
}

/// A Flux OCIRepository's name and pinned tag (`spec.ref.tag`, else `spec.ref.semver`).
pub fn oci_repository_tag(doc: &Node) -> Option<(String, String)> {
    if doc.get("kind")?.as_str()? != "OCIRepository" {
        return None;
    }
    let name = doc.path(&["metadata", "name"])?.scalar_text()?;
    let reference = doc.path(&["spec", "ref"])?;
    let tag = reference
        .get("tag")
        .or_else(|| reference.get("semver"))?
        .scalar_text()?;
    Some((name, tag))
}

/// The chart version a HelmRelease or Application pins, when it says.
pub fn chart_version_of(doc: &Node) -> Option<String> {
    doc.path(&["spec", "chart", "spec", "version"])
        .or_else(|| doc.path(&["spec", "source", "targetRevision"]))
        .and_then(Node::scalar_text)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::parse_documents;

    #[test]
    fn unwraps_flux_helmrelease() {
        let doc = &parse_documents(
            "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nspec:\n  chart:\n    spec: {chart: cilium, version: 1.16.5}\n  values:\n    cni: {exclusive: false}\n",
        )
        .unwrap()[0];
        let values = values_of(doc, None).unwrap();
        assert_eq!(
            values.path(&["cni", "exclusive"]).unwrap().as_bool(),
            Some(false)
        );
        assert_eq!(chart_of(doc).as_deref(), Some("cilium"));
        assert_eq!(chart_version_of(doc).as_deref(), Some("1.16.5"));
    }

    #[test]
    fn values_merge_as_helm_coalesces_them() {
        let mut base = parse_documents(
            "cni: {exclusive: true, chainingMode: none}\nbpf: {masquerade: true}\ndevices: [eth0]\n",
        )
        .unwrap()
        .remove(0);
        let overlay = parse_documents("cni: {exclusive: false}\nbpf: null\ndevices: [eth1]\n")
            .unwrap()
            .remove(0);
        merge_values(&mut base, &overlay);
        assert_eq!(
            base.path(&["cni", "exclusive"]).unwrap().as_bool(),
            Some(false)
        );
        assert_eq!(
            base.path(&["cni", "chainingMode"]).unwrap().as_str(),
            Some("none")
        );
        assert!(base.get("bpf").is_none());
        assert_eq!(base.get("devices").unwrap().string_list(), ["eth1"]);
        set_at_path(
            &mut base,
            "ipam.operator.clusterPoolIPv4PodCIDRList",
            overlay.get("devices").unwrap().clone(),
        );
        assert_eq!(
            base.path(&["ipam", "operator", "clusterPoolIPv4PodCIDRList"])
                .unwrap()
                .string_list(),
            ["eth1"]
        );
        set_at_path(
            &mut base,
            "podAnnotations.a\\.b/c",
            overlay.get("devices").unwrap().clone(),
        );
        assert!(base.path(&["podAnnotations", "a.b/c"]).is_some());
    }

    #[test]
    fn argo_values_string_is_parsed() {
        let doc = &parse_documents(
            "kind: Application\nspec:\n  source:\n    chart: cilium\n    helm:\n      values: |\n        ipam:\n          mode: kubernetes\n",
        )
        .unwrap()[0];
        let values = values_of(doc, None).unwrap();
        assert_eq!(
            values.path(&["ipam", "mode"]).unwrap().as_str(),
            Some("kubernetes")
        );
    }
}
