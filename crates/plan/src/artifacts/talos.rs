//! Talos machine-config patches in the nodes' format, and Omni ConfigPatches that carry them.
//! research/talos.md: in 1.14 Flannel is removed by deleting its document, kube-proxy by
//! `KubeProxyConfig enabled: false`; in v1alpha1 by `cni.name: none` and `proxy.disabled`.

use super::Artifacts;
use crate::context::Cluster;
use serde_json::{Value, json};

/// A patch and its inverse.
pub struct TalosPatch {
    pub name: &'static str,
    pub apply: Vec<Value>,
    pub rollback: Vec<Value>,
}

pub fn disable_flannel(cluster: &Cluster) -> TalosPatch {
    if cluster.talos_multidoc {
        TalosPatch {
            name: "disable-flannel",
            apply: vec![
                json!({"apiVersion": "v1alpha1", "kind": "KubeFlannelCNIConfig", "$patch": "delete"}),
            ],
            rollback: vec![
                json!({"apiVersion": "v1alpha1", "kind": "KubeFlannelCNIConfig", "backendType": "vxlan", "backendPort": 4789}),
            ],
        }
    } else {
        TalosPatch {
            name: "disable-flannel",
            apply: vec![json!({"cluster": {"network": {"cni": {"name": "none"}}}})],
            rollback: vec![json!({"cluster": {"network": {"cni": {"name": "flannel"}}}})],
        }
    }
}

pub fn enable_flannel(cluster: &Cluster) -> TalosPatch {
    let disable = disable_flannel(cluster);
    TalosPatch {
        name: "enable-flannel",
        apply: disable.rollback,
        rollback: disable.apply,
    }
}

/// Talos applies a CNI from a manifest URL: `cni.name: custom` with `urls` (v1alpha1), or a
/// `KubeExternalManifestConfig` document (1.14, where cni.urls fold into extra manifests).
pub fn install_from_url(cluster: &Cluster, cni: &str, url: &str) -> TalosPatch {
    if cluster.talos_multidoc {
        TalosPatch {
            name: "install-cni",
            apply: vec![
                json!({"apiVersion": "v1alpha1", "kind": "KubeExternalManifestConfig", "name": cni, "url": url}),
            ],
            rollback: vec![
                json!({"apiVersion": "v1alpha1", "kind": "KubeExternalManifestConfig", "name": cni, "$patch": "delete"}),
            ],
        }
    } else {
        TalosPatch {
            name: "install-cni",
            apply: vec![
                json!({"cluster": {"network": {"cni": {"name": "custom", "urls": [url]}}}}),
            ],
            rollback: vec![json!({"cluster": {"network": {"cni": {"name": "none"}}}})],
        }
    }
}

pub fn disable_kube_proxy(cluster: &Cluster) -> TalosPatch {
    if cluster.talos_multidoc {
        TalosPatch {
            name: "disable-kube-proxy",
            apply: vec![
                json!({"apiVersion": "v1alpha1", "kind": "KubeProxyConfig", "enabled": false}),
            ],
            rollback: vec![
                json!({"apiVersion": "v1alpha1", "kind": "KubeProxyConfig", "enabled": true}),
            ],
        }
    } else {
        TalosPatch {
            name: "disable-kube-proxy",
            apply: vec![json!({"cluster": {"proxy": {"disabled": true}}})],
            rollback: vec![json!({"cluster": {"proxy": {"disabled": false}}})],
        }
    }
}

/// Writes the patch (and, on Omni, the ConfigPatch resource) and its rollback; returns
/// (apply file, rollback file).
pub fn write(artifacts: &mut Artifacts, cluster: &Cluster, patch: &TalosPatch) -> (String, String) {
    let apply = artifacts.add_documents(
        &format!("talos/{}.yaml", patch.name),
        &format!("Talos patch ({}): {}", cluster.talos_format(), patch.name),
        &patch.apply,
    );
    let rollback = artifacts.add_documents(
        &format!("talos/rollback-{}.yaml", patch.name),
        &format!(
            "Talos patch ({}): undo {}",
            cluster.talos_format(),
            patch.name
        ),
        &patch.rollback,
    );
    if cluster.omni {
        // Rollback on Omni deletes the ConfigPatch, so only the forward resource is written.
        let data: String = patch
            .apply
            .iter()
            .map(super::yaml)
            .collect::<Vec<_>>()
            .join("---\n");
        let resource = json!({
            "metadata": {
                "namespace": "default",
                "type": "ConfigPatches.omni.sidero.dev",
                "id": format!("400-cniswap-{}", patch.name),
                "labels": {"omni.sidero.dev/cluster": cluster.name},
            },
            "spec": {"data": data},
        });
        artifacts.add_yaml(
            &format!("omni/400-cniswap-{}.yaml", patch.name),
            &format!(
                "Omni ConfigPatch for cluster {}: {}",
                cluster.name, patch.name
            ),
            &resource,
        );
    }
    (apply, rollback)
}

/// The commands that apply (or, with `undo`, take back) a Talos patch on a group of nodes.
pub fn apply_commands(
    cluster: &Cluster,
    patch: &str,
    file: &str,
    targets: &str,
    undo: bool,
) -> Vec<String> {
    if cluster.omni {
        if let Some(template) = &cluster.omni_template {
            let change = if undo {
                "remove the entry"
            } else {
                "add the entry"
            };
            return vec![
                format!(
                    "# {template} is a cluster template ({change}); standalone ConfigPatches are deleted by template sync:"
                ),
                format!(
                    "#   patches:\n#     - name: cniswap-{patch}\n#       file: artifacts/talos/{patch}.yaml"
                ),
                format!("omnictl cluster template sync -f {template}"),
            ];
        }
        if undo {
            return vec![format!(
                "omnictl delete configpatches.omni.sidero.dev 400-cniswap-{patch}"
            )];
        }
        return vec![format!(
            "omnictl apply -f artifacts/omni/400-cniswap-{patch}.yaml"
        )];
    }
    vec![format!(
        "talosctl -n {targets} patch machineconfig --patch @{file}"
    )]
}
