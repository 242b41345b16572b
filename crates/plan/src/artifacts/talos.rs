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

/// Writes the patch and its rollback; returns (apply file, rollback file).
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
    (apply, rollback)
}

/// Omni's machine set for a role, as Omni names the default ones.
fn machine_set(cluster: &Cluster, role: &str) -> String {
    if role == "controlplane" {
        format!("{}-control-planes", cluster.name)
    } else {
        format!("{}-workers", cluster.name)
    }
}

/// On Omni, writes what carries the patch to one role's machines: an entry for the template's
/// ControlPlane or Workers document (template sync deletes standalone ConfigPatches), or a
/// ConfigPatch labelled for the machine set. Rollback removes it, so only the forward form exists.
pub fn write_omni(
    artifacts: &mut Artifacts,
    cluster: &Cluster,
    patch: &TalosPatch,
    role: &str,
    file: &str,
) {
    if let Some(template) = &cluster.omni_template {
        let document = if role == "controlplane" {
            "ControlPlane"
        } else {
            "Workers (every one)"
        };
        let entry = json!([{"name": format!("cniswap-{}-{role}", patch.name), "file": file}]);
        artifacts.add_yaml(
            &format!("omni/template-{}-{role}.yaml", patch.name),
            &format!(
                "Entry for the `patches:` list of the `kind: {document}` document in {template} (paths are relative to where omnictl runs: the plan directory)"
            ),
            &entry,
        );
        return;
    }
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
            "id": format!("400-cniswap-{}-{role}", patch.name),
            "labels": {
                "omni.sidero.dev/cluster": cluster.name,
                "omni.sidero.dev/machine-set": machine_set(cluster, role),
            },
        },
        "spec": {"data": data},
    });
    artifacts.add_yaml(
        &format!("omni/400-cniswap-{}-{role}.yaml", patch.name),
        &format!(
            "Omni ConfigPatch for the {} machine set: {}",
            machine_set(cluster, role),
            patch.name
        ),
        &resource,
    );
}

/// The commands that apply (or, with `undo`, take back) a Talos patch on one role's nodes.
pub fn apply_commands(
    cluster: &Cluster,
    patch: &str,
    file: &str,
    targets: &str,
    role: &str,
    undo: bool,
) -> Vec<String> {
    if cluster.omni {
        let id = format!("cniswap-{patch}-{role}");
        if let Some(template) = &cluster.omni_template {
            let document = if role == "controlplane" {
                "ControlPlane"
            } else {
                "Workers"
            };
            let change = if undo {
                format!("# remove the {id} entry from the {document} patches: in {template}")
            } else {
                format!(
                    "# add the entry in artifacts/omni/template-{patch}-{role}.yaml to the {document} patches: in {template}"
                )
            };
            return vec![
                change,
                format!("omnictl cluster template validate -f {template}"),
                format!("omnictl cluster template diff -f {template}"),
                format!("omnictl cluster template sync -f {template}"),
            ];
        }
        if undo {
            return vec![format!(
                "omnictl delete configpatches.omni.sidero.dev 400-{id}"
            )];
        }
        return vec![format!("omnictl apply -f artifacts/omni/400-{id}.yaml")];
    }
    vec![format!(
        "talosctl -n {targets} patch machineconfig --patch @{file}"
    )]
}
