//! Talos and Omni steps through `talosctl` and `omnictl`: machine-config patches, reboots,
//! Omni resources; each proven by reading the configuration back. Machine configs hold the
//! cluster's secrets: they are compared here and never journaled or printed.

use crate::KubeActions;
use crate::errors::failed;
use crate::subset;
use crate::tools;
use cniswap_exec::{ActionError, Failure};
use serde_json::Value;
use std::time::Duration;

const QUERY: Duration = Duration::from_secs(60);

pub fn patch_args(ips: &[String], file: &str) -> Vec<String> {
    tools::args(&[
        "--nodes",
        &ips.join(","),
        "patch",
        "machineconfig",
        "--patch",
        &format!("@{file}"),
        "--mode=no-reboot",
    ])
}

pub fn etcd_snapshot_args(endpoint: &str, file: &str) -> Vec<String> {
    tools::args(&["--nodes", endpoint, "etcd", "snapshot", file])
}

const CONFIG_PATCHES: &str = "configpatches.omni.sidero.dev";

pub fn get_args(ip: &str) -> Vec<String> {
    tools::args(&["--nodes", ip, "get", "machineconfig", "--output", "yaml"])
}

pub fn reboot_args(ip: &str) -> Vec<String> {
    tools::args(&["--nodes", ip, "reboot", "--wait=false"])
}

/// The machine-config documents in `talosctl get machineconfig -o yaml` output: the resource's
/// `spec` holds them as text (or inline).
fn config_documents(output: &str) -> Result<Vec<Value>, String> {
    let resources: Vec<Value> =
        serde_saphyr::from_multiple(output).map_err(|e| format!("not YAML: {e}"))?;
    let mut docs = Vec::new();
    for r in resources.into_iter().filter(|r| !r.is_null()) {
        match r.get("spec") {
            Some(Value::String(text)) => {
                let inner: Vec<Value> = serde_saphyr::from_multiple(text)
                    .map_err(|e| format!("spec is not YAML: {e}"))?;
                docs.extend(inner.into_iter().filter(|d| !d.is_null()));
            }
            Some(spec) => docs.push(spec.clone()),
            None => docs.push(r),
        }
    }
    Ok(docs)
}

/// Which config document a patch document applies to: the same kind (and name) for the
/// multi-document format, the v1alpha1 document otherwise.
fn same_document(patch: &Value, doc: &Value) -> bool {
    match patch.get("kind") {
        Some(kind) => {
            doc.get("kind") == Some(kind)
                && patch.get("name").is_none_or(|n| doc.get("name") == Some(n))
        }
        None => {
            doc.get("kind").is_none()
                || doc.get("version").and_then(Value::as_str) == Some("v1alpha1")
        }
    }
}

/// Where the config does not contain the patch (`None`: it does).
pub fn patch_missing(patch_docs: &[Value], config: &[Value]) -> Option<String> {
    for p in patch_docs {
        let target = config.iter().find(|d| same_document(p, d));
        let deleting = p.get("$patch").and_then(Value::as_str) == Some("delete");
        if deleting {
            if target.is_some() {
                return Some(format!(
                    "document {} should be deleted",
                    p.get("kind").and_then(Value::as_str).unwrap_or("v1alpha1")
                ));
            }
            continue;
        }
        let mut body = p.clone();
        if let Some(o) = body.as_object_mut() {
            o.remove("apiVersion");
            o.remove("kind");
            o.remove("name");
        }
        if let Some(m) = subset::missing(&body, target, "") {
            return Some(m);
        }
    }
    None
}

impl KubeActions {
    pub async fn node_ips(&self, nodes: &[String]) -> Result<Vec<String>, ActionError> {
        let mut ips = Vec::new();
        for n in nodes {
            let node = self.node(n).await?;
            ips.push(crate::nodes::internal_ip(&node).ok_or_else(|| {
                failed(format!("node {n} has no InternalIP for talosctl to reach"))
            })?);
        }
        Ok(ips)
    }

    /// Patches the machine config of the nodes at these addresses.
    pub async fn talos_patch_on(
        &self,
        ips: &[String],
        file: &str,
        timeout: Duration,
    ) -> Result<String, ActionError> {
        // talosctl reads a checked private copy of the patch.
        let scratch = crate::files::Scratch::new()?;
        let copy = self.artifact_copy(&scratch, file)?;
        Ok(
            tools::run_ok("talosctl", &patch_args(ips, &copy), &self.dir, timeout)
                .await?
                .transcript(),
        )
    }

    /// Whether the machine configs of the nodes (at these addresses) contain the patch.
    pub async fn talos_patched_on(
        &self,
        nodes: &[String],
        ips: &[String],
        file: &str,
    ) -> Result<(bool, String), ActionError> {
        let patch = self.documents(file)?;
        for (node, ip) in nodes.iter().zip(ips) {
            let ran = tools::run("talosctl", &get_args(ip), &self.dir, QUERY).await?;
            if ran.code != 0 {
                // Output may hold secrets: only its first stderr line is kept.
                return Err(ActionError::transient(
                    Failure::new(format!(
                        "talosctl could not read the machine config of {node}: {}",
                        ran.stderr.lines().next().unwrap_or("no output")
                    ))
                    .command(ran.argv),
                ));
            }
            let config = config_documents(&ran.stdout).map_err(|e| {
                failed(format!("the machine config of {node} from talosctl is {e}"))
            })?;
            if let Some(why) = patch_missing(&patch, &config) {
                return Ok((false, format!("{node}: {why}")));
            }
        }
        Ok((
            true,
            format!("the machine configs of {} contain {file}", nodes.join(", ")),
        ))
    }

    pub async fn talos_reboot(
        &self,
        address: &str,
        timeout: Duration,
    ) -> Result<String, ActionError> {
        Ok(
            tools::run_ok("talosctl", &reboot_args(address), &self.dir, timeout)
                .await?
                .transcript(),
        )
    }

    /// `talosctl etcd snapshot` into a temporary file, renamed into place when complete.
    pub async fn etcd_snapshot(
        &self,
        endpoint: &str,
        file: &str,
        timeout: Duration,
    ) -> Result<String, ActionError> {
        // talosctl writes into a private directory; the snapshot is copied in from there,
        // owner-only (it holds every Secret of the cluster).
        let scratch = crate::files::Scratch::new()?;
        let tmp = scratch.path(file);
        let ran = tools::run_ok(
            "talosctl",
            &etcd_snapshot_args(endpoint, &tmp.display().to_string()),
            &self.dir,
            timeout,
        )
        .await?;
        self.put_from(file, &tmp, cniswap_exec::Access::Private)?;
        Ok(ran.transcript())
    }

    pub async fn omni_config_patch(
        &self,
        patch_id: &str,
        file: &str,
        remove: bool,
        backup: Option<&str>,
        timeout: Duration,
    ) -> Result<String, ActionError> {
        if !remove {
            let scratch = crate::files::Scratch::new()?;
            let copy = self.artifact_copy(&scratch, file)?;
            return Ok(tools::run_ok(
                "omnictl",
                &tools::args(&["apply", "--file", &copy]),
                &self.dir,
                timeout,
            )
            .await?
            .transcript());
        }
        let mut out = String::new();
        if let Some(backup) = backup
            && !self.holds(backup)?
        {
            let ran = tools::run_ok(
                "omnictl",
                &tools::args(&["get", CONFIG_PATCHES, patch_id, "--output", "yaml"]),
                &self.dir,
                QUERY,
            )
            .await?;
            self.save(backup, ran.stdout.as_bytes())?;
            out.push_str(&format!("backed up ConfigPatch {patch_id} to {backup}\n"));
        }
        out.push_str(
            &tools::run_ok(
                "omnictl",
                &tools::args(&["delete", CONFIG_PATCHES, patch_id]),
                &self.dir,
                timeout,
            )
            .await?
            .transcript(),
        );
        Ok(out)
    }

    pub async fn omni_patch_exists(&self, patch_id: &str) -> Result<bool, ActionError> {
        let ran = tools::run(
            "omnictl",
            &tools::args(&["get", CONFIG_PATCHES, patch_id, "--output", "yaml"]),
            &self.dir,
            QUERY,
        )
        .await?;
        Ok(ran.code == 0 && !ran.stdout.trim().is_empty())
    }

    /// The names of the `patches:` entries of the template document of kind `document`.
    fn template_entries(&self, template: &str, document: &str) -> Result<Vec<String>, ActionError> {
        let docs = self.documents(template)?;
        Ok(docs
            .iter()
            .filter(|d| d["kind"] == document)
            .flat_map(|d| d["patches"].as_array().cloned().unwrap_or_default())
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect())
    }

    fn entry_names(&self, entry: &str) -> Result<Vec<String>, ActionError> {
        Ok(self
            .documents(entry)?
            .iter()
            .flat_map(|d| d.as_array().cloned().unwrap_or_default())
            .filter_map(|p| p["name"].as_str().map(str::to_string))
            .collect())
    }

    /// Whether the template lists (or, with `remove`, lacks) the entry's patches.
    pub fn template_in_place(
        &self,
        template: &str,
        document: &str,
        entry: &str,
        remove: bool,
    ) -> Result<(bool, String), ActionError> {
        let have = self.template_entries(template, document)?;
        let want = self.entry_names(entry)?;
        let listed = want.iter().all(|w| have.contains(w));
        let none = want.iter().all(|w| !have.contains(w));
        Ok(if remove {
            (
                none,
                format!(
                    "{template} {} {}",
                    if none {
                        "no longer lists"
                    } else {
                        "still lists"
                    },
                    want.join(", ")
                ),
            )
        } else {
            (
                listed,
                format!(
                    "{template} {} {}",
                    if listed { "lists" } else { "does not list" },
                    want.join(", ")
                ),
            )
        })
    }

    /// The template is the user's file: cniswap does not rewrite it. It asks for the edit, and
    /// once the template says what the plan needs, validates and syncs it.
    pub async fn omni_template(
        &self,
        template: &str,
        document: &str,
        entry: &str,
        remove: bool,
        step: &str,
        timeout: Duration,
    ) -> Result<String, ActionError> {
        let (ready, what) = self.template_in_place(template, document, entry, remove)?;
        if !ready {
            let edit = if remove {
                format!(
                    "remove the entries of {entry} from the `kind: {document}` document's patches: in {template}"
                )
            } else {
                format!(
                    "add the entries of {entry} to the `kind: {document}` document's patches: in {template}"
                )
            };
            return Err(ActionError::blocked(
                Failure::new(format!(
                    "{what}: the Omni cluster template is yours to edit"
                ))
                .object(template.to_string())
                .next(format!(
                    "{edit}, then run `cniswap apply` again (step {step} validates and syncs it)"
                )),
            ));
        }
        let mut out = tools::run_ok(
            "omnictl",
            &tools::args(&["cluster", "template", "validate", "--file", template]),
            &self.dir,
            QUERY,
        )
        .await?
        .transcript();
        out.push_str(
            &tools::run_ok(
                "omnictl",
                &tools::args(&["cluster", "template", "sync", "--file", template]),
                &self.dir,
                timeout,
            )
            .await?
            .transcript(),
        );
        Ok(out)
    }

    /// Nothing left to sync: `omnictl cluster template diff` prints nothing.
    pub async fn template_synced(&self, template: &str) -> Result<(bool, String), ActionError> {
        let ran = tools::run(
            "omnictl",
            &tools::args(&["cluster", "template", "diff", "--file", template]),
            &self.dir,
            QUERY,
        )
        .await?;
        Ok(if ran.code == 0 && ran.stdout.trim().is_empty() {
            (true, format!("Omni matches {template}"))
        } else {
            (false, format!("Omni differs from {template}"))
        })
    }

    /// Every resource of the file reads back from Omni with its spec.
    pub async fn omni_applied(&self, file: &str) -> Result<(bool, String), ActionError> {
        for doc in self.documents(file)? {
            let meta = &doc["metadata"];
            let (Some(kind), Some(id)) = (meta["type"].as_str(), meta["id"].as_str()) else {
                return Err(failed(format!(
                    "{file}: a resource without metadata.type and metadata.id"
                )));
            };
            let namespace = meta["namespace"].as_str().unwrap_or("default");
            let ran = tools::run(
                "omnictl",
                &tools::args(&[
                    "get",
                    kind,
                    id,
                    "--namespace",
                    namespace,
                    "--output",
                    "yaml",
                ]),
                &self.dir,
                QUERY,
            )
            .await?;
            if ran.code != 0 {
                return Ok((false, format!("Omni has no {kind} {id}")));
            }
            let live: Vec<Value> = serde_saphyr::from_multiple(&ran.stdout)
                .map_err(|e| failed(format!("omnictl printed something that is not YAML: {e}")))?;
            if let Some(why) = subset::missing(
                &doc["spec"],
                live.first().and_then(|l| l.get("spec")),
                "spec",
            ) {
                return Ok((false, format!("{kind} {id}: {why}")));
            }
        }
        Ok((true, format!("Omni holds every resource of {file}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_configs_from_talosctl_output_and_matches_patches() {
        let output = "node: 10.0.0.1\nmetadata:\n  type: MachineConfigs.config.talos.dev\n  id: v1alpha1\nspec: |\n  version: v1alpha1\n  cluster:\n    network:\n      cni:\n        name: none\n  ---\n  apiVersion: v1alpha1\n  kind: KubePrismConfig\n  port: 7445\n";
        let config = config_documents(output).unwrap();
        assert_eq!(config.len(), 2);
        let patch: Vec<Value> = serde_saphyr::from_multiple(
            "cluster:\n  network:\n    cni:\n      name: none\n---\napiVersion: v1alpha1\nkind: KubeFlannelCNIConfig\n$patch: delete\n",
        )
        .unwrap();
        assert_eq!(patch_missing(&patch, &config), None);
        let other: Vec<Value> =
            serde_saphyr::from_multiple("cluster:\n  network:\n    cni:\n      name: flannel\n")
                .unwrap();
        assert!(patch_missing(&other, &config).is_some());
    }
}
