//! Objects of any kind: finding a kind's API (discovery, cached), reading, server-side apply
//! with a dry-run comparison as proof, and the backup files deletes write first.

use crate::KubeActions;
use crate::errors::{api, failed, is_not_found};
use cniswap_exec::ActionError;
use kube::api::{Api, DynamicObject, Patch, PatchParams};
use kube::discovery::{ApiCapabilities, ApiResource, Discovery, Scope};
use serde_json::Value;

pub const FIELD_MANAGER: &str = "cniswap";

/// A kind the API serves, with whether its objects live in namespaces.
#[derive(Clone)]
pub struct Kind {
    pub resource: ApiResource,
    pub namespaced: bool,
}

/// Fields the server sets; a backup without them can be applied again.
pub fn strip_server_fields(object: &mut Value) {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in [
            "resourceVersion",
            "uid",
            "creationTimestamp",
            "managedFields",
            "generation",
            "selfLink",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
        ] {
            meta.remove(key);
        }
    }
    if let Some(o) = object.as_object_mut() {
        o.remove("status");
    }
}

/// What two versions of an object are compared on: everything but bookkeeping and status.
/// Controllers write status on their own time (a PodDisruptionBudget's after its spec
/// changed), so a status in flux is no difference a step made or must prove.
pub fn comparable(mut object: Value) -> Value {
    if let Some(meta) = object.get_mut("metadata").and_then(Value::as_object_mut) {
        for key in ["resourceVersion", "managedFields", "generation"] {
            meta.remove(key);
        }
    }
    if let Some(o) = object.as_object_mut() {
        o.remove("status");
    }
    object
}

/// Whether every field a JSON merge patch names reads the same in `would` (the object with
/// the patch applied) and `live`.
pub fn merge_patch_in_place(patch: &Value, would: &Value, live: &Value) -> bool {
    match patch {
        Value::Object(fields) => fields.iter().all(|(key, part)| {
            let (w, l) = (would.get(key), live.get(key));
            match part {
                Value::Object(_) => {
                    merge_patch_in_place(part, w.unwrap_or(&Value::Null), l.unwrap_or(&Value::Null))
                }
                _ => w == l,
            }
        }),
        _ => would == live,
    }
}

/// Reads a YAML file of one or more documents (a `List` expands to its items).
/// The documents of a file's bytes (`path` names it in errors); `List` kinds are unpacked.
pub fn parse_documents(path: &std::path::Path, bytes: &[u8]) -> Result<Vec<Value>, ActionError> {
    let text = std::str::from_utf8(bytes)
        .map_err(|e| failed(format!("{} is not UTF-8 text: {e}", path.display())))?;
    let docs: Vec<Value> = serde_saphyr::from_multiple(text)
        .map_err(|e| failed(format!("{} is not valid YAML: {e}", path.display())))?;
    let mut out = Vec::new();
    for doc in docs {
        if doc.is_null() {
            continue;
        }
        if doc.get("kind").and_then(Value::as_str) == Some("List")
            || doc
                .get("kind")
                .and_then(Value::as_str)
                .is_some_and(|k| k.ends_with("List"))
                && doc.get("items").is_some()
        {
            out.extend(doc["items"].as_array().cloned().unwrap_or_default());
        } else {
            out.push(doc);
        }
    }
    Ok(out)
}

pub fn describe(object: &Value) -> String {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("?");
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or("?");
    match object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
    {
        Some(ns) => format!("{ns}/{kind}/{name}"),
        None => format!("{kind}/{name}"),
    }
}

impl KubeActions {
    async fn discovery(&mut self, refresh: bool) -> Result<&Discovery, ActionError> {
        if refresh || self.discovery.is_none() {
            let d = Discovery::new(self.client.clone())
                .run()
                .await
                .map_err(|e| api("discovery of the API server's kinds", "apis", e))?;
            self.discovery = Some(d);
        }
        Ok(self.discovery.as_ref().expect("set above"))
    }

    /// A kind by the name plans use: `DaemonSet`, `daemonset`, `daemonsets`, `clusterrole`.
    pub async fn kind(&mut self, name: &str) -> Result<Kind, ActionError> {
        self.served_kind(name).await?.ok_or_else(|| {
            failed(format!(
                "the API server serves no kind called {name} (is the CRD that defines it installed?)"
            ))
        })
    }

    /// A kind by name, or `None` when the server does not serve it (even after a fresh
    /// discovery): a custom resource whose definition was never installed, or was removed.
    pub async fn served_kind(&mut self, name: &str) -> Result<Option<Kind>, ActionError> {
        for refresh in [false, true] {
            let discovery = self.discovery(refresh).await?;
            let wanted = name.to_lowercase();
            // `plural.group` (volumes.longhorn.io) names one group's kind.
            let qualified = wanted.split_once('.');
            let mut found: Option<(ApiResource, ApiCapabilities)> = None;
            for group in discovery.groups() {
                for (resource, caps) in group.recommended_resources() {
                    let named = resource.kind.to_lowercase() == wanted
                        || resource.plural == wanted
                        || qualified
                            .is_some_and(|(p, g)| resource.plural == p && resource.group == g);
                    if named {
                        // The core and apps groups win over CRDs of the same kind name.
                        let better = found.as_ref().is_none_or(|(r, _)| {
                            !r.group.is_empty() && r.group != "apps" && resource.group.is_empty()
                        });
                        if better {
                            found = Some((resource, caps));
                        }
                    }
                }
            }
            if let Some((resource, caps)) = found {
                return Ok(Some(Kind {
                    resource,
                    namespaced: caps.scope == Scope::Namespaced,
                }));
            }
        }
        Ok(None)
    }

    /// A kind from an object's apiVersion and kind.
    pub async fn kind_of(&mut self, object: &Value) -> Result<Kind, ActionError> {
        let api_version = object
            .get("apiVersion")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = object
            .get("kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
        for refresh in [false, true] {
            let discovery = self.discovery(refresh).await?;
            let gvk = kube::api::GroupVersionKind::gvk(group, version, kind);
            if let Some((resource, caps)) = discovery.resolve_gvk(&gvk) {
                return Ok(Kind {
                    resource,
                    namespaced: caps.scope == Scope::Namespaced,
                });
            }
        }
        // A custom resource whose definition is not established yet is worth another try.
        Err(ActionError::transient(cniswap_exec::Failure::new(format!(
            "the API server does not serve {api_version} {kind} (yet)"
        ))))
    }

    pub fn dynamic(&self, kind: &Kind, namespace: Option<&str>) -> Api<DynamicObject> {
        match (kind.namespaced, namespace) {
            (true, Some(ns)) => Api::namespaced_with(self.client.clone(), ns, &kind.resource),
            (true, None) => Api::all_with(self.client.clone(), &kind.resource),
            (false, _) => Api::all_with(self.client.clone(), &kind.resource),
        }
    }

    /// The object as JSON, or `None` when it does not exist.
    pub async fn get_value(
        &mut self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Option<Value>, ActionError> {
        let api_ = self.dynamic(kind, namespace);
        let what = object_name(kind, namespace, name);
        match api_.get_opt(name).await {
            Ok(Some(o)) => Ok(Some(
                serde_json::to_value(o).map_err(|e| failed(format!("{what}: {e}")))?,
            )),
            Ok(None) => Ok(None),
            Err(e) => Err(api(&format!("GET {what}"), &what, e)),
        }
    }

    /// Server-side apply of one object (cniswap's field manager, taking over conflicting
    /// fields). With `dry_run`, returns what the object would become.
    pub async fn apply_object(
        &mut self,
        object: &Value,
        dry_run: bool,
    ) -> Result<Value, ActionError> {
        let mut object = object.clone();
        strip_server_fields(&mut object);
        let kind = self.kind_of(&object).await?;
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .ok_or_else(|| failed(format!("{} has no metadata.name", describe(&object))))?
            .to_string();
        let namespace = if kind.namespaced {
            let ns = object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string();
            object["metadata"]["namespace"] = Value::String(ns.clone());
            Some(ns)
        } else {
            None
        };
        let api_ = self.dynamic(&kind, namespace.as_deref());
        let mut params = PatchParams::apply(FIELD_MANAGER).force();
        params.dry_run = dry_run;
        let what = object_name(&kind, namespace.as_deref(), &name);
        let applied = api_
            .patch(&name, &params, &Patch::Apply(&object))
            .await
            .map_err(|e| {
                api(
                    &format!(
                        "server-side apply{} of {what}",
                        if dry_run { " (dry run)" } else { "" }
                    ),
                    &what,
                    e,
                )
            })?;
        serde_json::to_value(applied).map_err(|e| failed(format!("{what}: {e}")))
    }

    /// Whether the server already holds `object` as written: a dry-run apply changes nothing.
    /// Returns the first object that differs, if any.
    pub async fn matches(&mut self, object: &Value) -> Result<Option<String>, ActionError> {
        let kind = self.kind_of(object).await;
        let kind = match kind {
            Ok(k) => k,
            // A kind the server does not serve yet: the object cannot be there.
            Err(ActionError::Transient(_)) => return Ok(Some(describe(object))),
            Err(e) => return Err(e),
        };
        let name = object
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let namespace = kind.namespaced.then(|| {
            object
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or("default")
                .to_string()
        });
        let Some(live) = self.get_value(&kind, namespace.as_deref(), &name).await? else {
            return Ok(Some(format!("{} does not exist", describe(object))));
        };
        let would = self.apply_object(object, true).await?;
        if comparable(would) == comparable(live) {
            Ok(None)
        } else {
            Ok(Some(format!("{} differs from the file", describe(object))))
        }
    }

    /// Merge-patches an object (JSON merge patch).
    pub async fn merge_patch(
        &mut self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
        dry_run: bool,
    ) -> Result<Value, ActionError> {
        self.patch_as(
            kind,
            namespace,
            name,
            cniswap_plan::PatchType::Merge,
            patch,
            dry_run,
        )
        .await
    }

    /// Patches an object as a JSON merge, strategic merge or JSON patch.
    pub async fn patch_as(
        &mut self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        patch_type: cniswap_plan::PatchType,
        patch: &Value,
        dry_run: bool,
    ) -> Result<Value, ActionError> {
        let api_ = self.dynamic(kind, namespace);
        let params = PatchParams {
            dry_run,
            ..PatchParams::default()
        };
        let what = object_name(kind, namespace, name);
        let result = match patch_type {
            cniswap_plan::PatchType::Merge => api_.patch(name, &params, &Patch::Merge(patch)).await,
            cniswap_plan::PatchType::Strategic => {
                api_.patch(name, &params, &Patch::Strategic(patch)).await
            }
            cniswap_plan::PatchType::Json => {
                let ops: json_patch::Patch = serde_json::from_value(patch.clone())
                    .map_err(|e| failed(format!("{what}: the JSON patch is not valid: {e}")))?;
                api_.patch(name, &params, &Patch::<()>::Json(ops)).await
            }
        };
        let patched = result.map_err(|e| api(&format!("PATCH {what}"), &what, e))?;
        serde_json::to_value(patched).map_err(|e| failed(format!("{what}: {e}")))
    }

    /// Writes `object` whole over the live one (PUT with the live resourceVersion), or creates it.
    pub async fn replace_object(
        &mut self,
        object: &Value,
        dry_run: bool,
    ) -> Result<Value, ActionError> {
        let mut object = object.clone();
        strip_server_fields(&mut object);
        let kind = self.kind_of(&object).await?;
        let (namespace, name) = place(&kind, &object);
        let what = object_name(&kind, namespace.as_deref(), &name);
        let api_ = self.dynamic(&kind, namespace.as_deref());
        let params = kube::api::PostParams {
            dry_run,
            field_manager: Some(FIELD_MANAGER.into()),
        };
        let mut typed: DynamicObject =
            serde_json::from_value(object.clone()).map_err(|e| failed(format!("{what}: {e}")))?;
        let result = match self.get_value(&kind, namespace.as_deref(), &name).await? {
            Some(live) => {
                typed.metadata.resource_version = live
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    .map(str::to_string);
                api_.replace(&name, &params, &typed).await
            }
            None => api_.create(&params, &typed).await,
        }
        .map_err(|e| api(&format!("PUT {what}"), &what, e))?;
        serde_json::to_value(result).map_err(|e| failed(format!("{what}: {e}")))
    }

    /// Whether the live object equals `object` (a dry-run replace changes nothing).
    pub async fn replaced(&mut self, object: &Value) -> Result<Option<String>, ActionError> {
        let kind = self.kind_of(object).await?;
        let (namespace, name) = place(&kind, object);
        let Some(live) = self.get_value(&kind, namespace.as_deref(), &name).await? else {
            return Ok(Some(format!("{} does not exist", describe(object))));
        };
        let would = self.replace_object(object, true).await?;
        Ok((comparable(would) != comparable(live))
            .then(|| format!("{} differs from its backup", describe(object))))
    }

    /// Whether a merge patch would change nothing (dry run on the server).
    pub async fn patch_is_in_place(
        &mut self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
        patch: &Value,
    ) -> Result<bool, ActionError> {
        let Some(live) = self.get_value(kind, namespace, name).await? else {
            return Ok(false);
        };
        let would = self.merge_patch(kind, namespace, name, patch, true).await?;
        Ok(comparable(would) == comparable(live))
    }

    /// Deletes an object; `Ok(false)` when it was already gone.
    pub async fn delete(
        &mut self,
        kind: &Kind,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<bool, ActionError> {
        let api_ = self.dynamic(kind, namespace);
        let what = object_name(kind, namespace, name);
        match api_
            .delete(name, &kube::api::DeleteParams::background())
            .await
        {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(api(&format!("DELETE {what}"), &what, e)),
        }
    }
}

/// An object's namespace (the default one for namespaced kinds without it) and name.
pub fn place(kind: &Kind, object: &Value) -> (Option<String>, String) {
    let name = object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    let namespace = kind.namespaced.then(|| {
        object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .unwrap_or("default")
            .to_string()
    });
    (namespace, name)
}

pub fn object_name(kind: &Kind, namespace: Option<&str>, name: &str) -> String {
    match namespace {
        Some(ns) if kind.namespaced => format!("{ns}/{}/{name}", kind.resource.kind),
        _ => format!("{}/{name}", kind.resource.kind),
    }
}

/// kubectl's copy of the whole object as last applied: a second copy of every value (the
/// environment, embedded kubeconfigs) that putting the object back does not need.
pub const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The YAML text of a backup: each object without server fields and without kubectl's
/// last-applied copy, one document each. Backups are written owner-only (crates/exec PlanDir):
/// they hold what the cluster held.
pub fn backup_text(objects: &[(String, Option<Value>)]) -> String {
    let mut out = String::new();
    for (name, object) in objects {
        out.push_str(&format!("# cniswap backup of {name}\n"));
        match object {
            Some(o) => {
                let mut o = o.clone();
                strip_server_fields(&mut o);
                if let Some(annotations) = o
                    .pointer_mut("/metadata/annotations")
                    .and_then(Value::as_object_mut)
                {
                    annotations.remove(LAST_APPLIED);
                    if annotations.is_empty()
                        && let Some(meta) = o.get_mut("metadata").and_then(Value::as_object_mut)
                    {
                        meta.remove("annotations");
                    }
                }
                out.push_str(&serde_saphyr::to_string(&o).unwrap_or_default());
            }
            None => out.push_str("# (absent when backed up)\n"),
        }
        out.push_str("---\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::comparable;
    use serde_json::json;

    #[test]
    fn backups_leave_out_kubectls_second_copy_of_the_object() {
        let object = json!({"kind": "ConfigMap", "metadata": {"name": "c", "namespace": "n",
            "annotations": {super::LAST_APPLIED: "{\"data\":{\"kubeconfig\":\"token: MARKER\"}}"}},
            "data": {"kubeconfig": "token: kept-for-restore"}});
        let text = super::backup_text(&[("n/ConfigMap/c".into(), Some(object))]);
        assert!(!text.contains("MARKER"), "{text}");
        assert!(!text.contains("annotations"), "{text}");
        assert!(
            text.contains("kept-for-restore"),
            "what a restore needs stays: {text}"
        );
    }

    #[test]
    fn a_status_written_by_a_controller_is_no_difference() {
        let backup = json!({"kind": "PodDisruptionBudget", "metadata": {"name": "p", "resourceVersion": "1"},
                            "spec": {"maxUnavailable": 0}, "status": {"observedGeneration": 1}});
        let live = json!({"kind": "PodDisruptionBudget", "metadata": {"name": "p", "resourceVersion": "9"},
                          "spec": {"maxUnavailable": 0}, "status": {"observedGeneration": 3}});
        assert_eq!(comparable(backup.clone()), comparable(live));
        let changed = json!({"kind": "PodDisruptionBudget", "metadata": {"name": "p"},
                             "spec": {"maxUnavailable": 1}});
        assert_ne!(comparable(backup), comparable(changed));
    }
}

#[cfg(test)]
mod merge_patch_tests {
    use super::merge_patch_in_place;
    use serde_json::json;

    #[test]
    fn only_the_fields_a_merge_patch_names_are_compared() {
        let patch = json!({"spec": {"unschedulable": null}});
        let live = json!({"spec": {"taints": [{"key": "a"}]}, "metadata": {"name": "n"}});
        // The taint went between the two reads: not the patch's business.
        let would = json!({"spec": {}, "metadata": {"name": "n"}});
        assert!(merge_patch_in_place(&patch, &would, &live));
        let cordoned = json!({"spec": {"unschedulable": true}});
        assert!(!merge_patch_in_place(&patch, &would, &cordoned));
        let labels = json!({"metadata": {"labels": {"a": "1"}}});
        assert!(!merge_patch_in_place(
            &labels,
            &json!({"metadata": {"labels": {"a": "1"}}}),
            &json!({"metadata": {"labels": {"a": "2"}}})
        ));
    }
}
