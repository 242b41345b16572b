//! Talos machine-config patches in the nodes' format, and Omni ConfigPatches that carry them.
//! research/talos.md: in 1.14 Flannel is removed by deleting its document, kube-proxy by
//! `KubeProxyConfig enabled: false`; in v1alpha1 by `cni.name: none` and `proxy.disabled`.

use super::Artifacts;
use crate::context::{Cluster, PlanNode};
use crate::model::Action;
use crate::ops::{S, s};
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

/// Talos' own Flannel again. A config that applies a CNI from URLs (`cni.name: custom`) loses
/// its `cni` section whole: Talos rejects `urls` beside any other name, and a missing section
/// means Flannel. The rollback puts back `custom` with exactly the URLs it had.
pub fn enable_flannel(cluster: &Cluster) -> TalosPatch {
    let disable = disable_flannel(cluster);
    if cluster.talos_cni_urls.is_empty() {
        return TalosPatch {
            name: "enable-flannel",
            apply: disable.rollback,
            rollback: disable.apply,
        };
    }
    let drop_urls = json!({"cluster": {"network": {"cni": {"$patch": "delete"}}}});
    let restore_urls = json!({"cluster": {"network": {"cni": {"name": "custom", "urls": cluster.talos_cni_urls}}}});
    let (mut apply, mut rollback) = (vec![drop_urls], vec![restore_urls]);
    if cluster.talos_multidoc {
        apply.extend(disable.rollback);
        rollback.extend(disable.apply);
    }
    TalosPatch {
        name: "enable-flannel",
        apply,
        rollback,
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
fn machine_set(cluster: &str, role: &str) -> String {
    if role == "controlplane" {
        format!("{cluster}-control-planes")
    } else {
        format!("{cluster}-workers")
    }
}

/// The id of cniswap's Omni ConfigPatch for a patch and role (weight 400: machine sets).
pub fn omni_id(patch: &TalosPatch, role: &str) -> String {
    format!("400-cniswap-{}-{role}", patch.name)
}

/// The Omni ConfigPatch resource that carries a Talos patch to one role's machine set.
pub fn omni_config_patch(cluster: &str, patch: &TalosPatch, role: &str) -> Value {
    json!({
        "metadata": {
            "namespace": "default",
            "type": "ConfigPatches.omni.sidero.dev",
            "id": omni_id(patch, role),
            "labels": {
                "omni.sidero.dev/cluster": cluster,
                "omni.sidero.dev/machine-set": machine_set(cluster, role),
            },
        },
        // The patch documents, serialized as Talos reads them.
        "spec": {"data": super::documents(&patch.apply)},
    })
}

/// Omni renders a ConfigPatch (or template entry) into the machines' configs later: the step
/// is done when every node of the role has it, not when the resource exists.
pub fn rendered(role: &str, nodes: &[&PlanNode], file: &str, why: &str) -> S {
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    crate::ops::verify(
        &format!("the {role} machines render the patch"),
        vec![crate::model::Probe::TalosConfigHas {
            nodes: names.clone(),
            endpoints: Cluster::talos_endpoints(nodes),
            file: file.to_string(),
        }],
        format!(
            "Wait until Omni has rendered the patch into the config of every {role} machine ({}): {why}.",
            names.join(", ")
        ),
        format!(
            "the machine config of each of {} contains {file}",
            names.join(", ")
        ),
    )
}

/// The step that applies a Talos patch to one role's nodes (talosctl, an Omni ConfigPatch, or
/// an Omni template entry), and the step that takes it back.
pub fn steps(
    artifacts: &mut Artifacts,
    cluster: &Cluster,
    patch: &TalosPatch,
    role: &str,
    nodes: &[&PlanNode],
    (file, rollback_file): (&str, &str),
    why: &str,
) -> (S, S) {
    let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
    let endpoints = Cluster::talos_endpoints(nodes);
    if let Some(template) = &cluster.omni_template {
        let document = if role == "controlplane" {
            "ControlPlane"
        } else {
            "Workers"
        };
        let entry_name = format!("cniswap-{}-{role}", patch.name);
        let entry = artifacts.add_yaml(
            &format!("omni/template-{}-{role}.yaml", patch.name),
            &format!(
                "Entry for the `patches:` list of the `kind: {document}` document in {template} (paths are relative to where omnictl runs: the plan directory)"
            ),
            &json!([{"name": entry_name, "file": file}]),
        );
        let sync = |remove: bool| {
            let action = Action::OmniTemplatePatch {
                template: template.clone(),
                document: document.into(),
                entry: entry.clone(),
                remove,
            };
            let note = if remove {
                format!(
                    "Remove the {entry_name} entry from the {document} document's patches: in {template}."
                )
            } else {
                format!(
                    "Add the entry in {entry} to the {document} document's patches: in {template}."
                )
            };
            s(
                action,
                if remove {
                    format!(
                        "Take the {role} patch ({}) out of the Omni cluster template.",
                        patch.name
                    )
                } else {
                    format!("Patch the {role} machines through the Omni cluster template: {why}.")
                },
                vec![
                    sh!("omnictl cluster template validate -f {}", template),
                    sh!("omnictl cluster template diff -f {}", template),
                    sh!("omnictl cluster template sync -f {}", template),
                ],
                if remove {
                    "`omnictl cluster template diff` shows nothing and the entry is gone"
                        .to_string()
                } else {
                    "`omnictl cluster template diff` shows nothing and the entry is in the template"
                        .to_string()
                },
                600,
            )
            .note(note)
        };
        return (sync(false), sync(true));
    }
    if cluster.omni {
        let omni_cluster = cluster.omni_cluster.clone().unwrap_or_default();
        let id = omni_id(patch, role);
        let resource = artifacts.add_yaml(
            &format!("omni/{id}.yaml"),
            &format!(
                "Omni ConfigPatch for the {} machine set: {}",
                machine_set(&omni_cluster, role),
                patch.name
            ),
            &omni_config_patch(&omni_cluster, patch, role),
        );
        let apply = s(
            Action::OmniConfigPatch {
                patch_id: id.clone(),
                cluster: omni_cluster.clone(),
                file: resource.clone(),
                remove: false,
                backup: None,
            },
            format!("Patch the {role} machines through Omni: {why}."),
            vec![sh!("omnictl apply -f {}", resource)],
            format!("`omnictl get configpatches.omni.sidero.dev {id}` exists"),
            600,
        );
        let undo = s(
            Action::OmniConfigPatch {
                patch_id: id.clone(),
                cluster: omni_cluster,
                file: resource.clone(),
                remove: true,
                backup: Some(resource),
            },
            format!("Delete the Omni ConfigPatch {id} ({role}, {}).", patch.name),
            vec![sh!("omnictl delete configpatches.omni.sidero.dev {}", id)],
            format!("`omnictl get configpatches.omni.sidero.dev` lists no {id}"),
            600,
        );
        return (apply, undo);
    }
    let talosctl = |file: &str, undo: bool| {
        let targets = endpoints.join(",");
        let patch_arg = format!("@{file}");
        s(
            Action::TalosPatch {
                role: role.into(),
                nodes: names.clone(),
                endpoints: endpoints.clone(),
                file: file.into(),
            },
            if undo {
                format!("Undo the {role} patch ({}).", patch.name)
            } else {
                format!("Patch the {role} Talos configs: {why}.")
            },
            vec![sh!(
                "talosctl -n {} patch machineconfig --mode=no-reboot --patch {}",
                targets,
                patch_arg
            )],
            format!("`talosctl -n {targets} get machineconfig -o yaml` shows {file} applied"),
            300,
        )
        .note("--mode=no-reboot: a change that needs a reboot fails instead of rebooting the node.")
    };
    (talosctl(file, false), talosctl(rollback_file, true))
}
