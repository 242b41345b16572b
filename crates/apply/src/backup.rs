//! Backups and deletes: a delete writes its backup first (atomically, never over an earlier
//! backup: the first one holds the state before the plan), then deletes, then waits until the
//! object is gone. CRD deletes back up each definition and every custom resource of it.

use crate::KubeActions;
use crate::errors::failed;
use crate::objects::{Kind, backup_text, object_name};
use cniswap_exec::{ActionError, RunContext};
use kube::api::ListParams;
use serde_json::Value;
use std::time::Instant;

/// `namespace/kind/name`, `kind/name` or `/kind/name`.
pub fn parse_ref(reference: &str) -> Result<(Option<String>, String, String), ActionError> {
    let parts: Vec<&str> = reference.split('/').collect();
    match parts.as_slice() {
        [ns, kind, name] => Ok((
            Some(ns.to_string()).filter(|n| !n.is_empty()),
            kind.to_string(),
            name.to_string(),
        )),
        [kind, name] => Ok((None, kind.to_string(), name.to_string())),
        _ => Err(failed(format!(
            "{reference}: expected namespace/kind/name or kind/name"
        ))),
    }
}

fn refuse_secrets(kind: &str, what: &str) -> Result<(), ActionError> {
    if kind.eq_ignore_ascii_case("secret") || kind.eq_ignore_ascii_case("secrets") {
        return Err(failed(format!(
            "{what}: cniswap never reads or backs up Secrets"
        )));
    }
    Ok(())
}

impl KubeActions {
    pub async fn backup(&mut self, objects: &[String], file: &str) -> Result<String, ActionError> {
        if self.holds(file)? {
            return Ok(format!("{file} already exists: kept"));
        }
        let mut read = Vec::new();
        for reference in objects {
            let (ns, kind, name) = parse_ref(reference)?;
            refuse_secrets(&kind, reference)?;
            // A kind the server does not serve has no objects: recorded as absent.
            let value = match self.served_kind(&kind).await? {
                Some(k) => self.get_value(&k, ns.as_deref(), &name).await?,
                None => None,
            };
            read.push((reference.clone(), value));
        }
        self.save(file, backup_text(&read).as_bytes())?;
        let present = read.iter().filter(|(_, v)| v.is_some()).count();
        Ok(format!(
            "wrote {file}: {present} object(s), {} absent",
            read.len() - present
        ))
    }

    pub fn backup_holds(&self, file: &str, objects: &[String]) -> (bool, String) {
        let Ok(Some(bytes)) = self.saved(file) else {
            return (
                false,
                format!("{file} does not exist (or is not a regular file)"),
            );
        };
        let text = String::from_utf8_lossy(&bytes);
        let missing: Vec<&String> = objects
            .iter()
            .filter(|o| !text.contains(&format!("# cniswap backup of {o}\n")))
            .collect();
        if text.trim().is_empty() {
            (false, format!("{file} is empty"))
        } else if missing.is_empty() {
            (true, format!("{file} holds {} object(s)", objects.len()))
        } else {
            (
                false,
                format!(
                    "{file} lacks {}",
                    missing
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )
        }
    }

    /// CRDs whose name matches the pattern.
    async fn matching_crds(&mut self, pattern: &str) -> Result<Vec<Value>, ActionError> {
        let re = crd_pattern(pattern)?;
        let kind = self.kind("CustomResourceDefinition").await?;
        let api_ = self.dynamic(&kind, None);
        let list = api_
            .list(&ListParams::default())
            .await
            .map_err(|e| crate::errors::api("LIST customresourcedefinitions", "crds", e))?;
        Ok(list
            .items
            .into_iter()
            .filter(|c| c.metadata.name.as_deref().is_some_and(&re))
            .filter_map(|c| serde_json::to_value(c).ok())
            .collect())
    }

    pub async fn absent(
        &mut self,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(bool, String), ActionError> {
        if kind == "CustomResourceDefinition" {
            let left: Vec<String> = self
                .matching_crds(name)
                .await?
                .iter()
                .filter_map(|c| {
                    c.pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .collect();
            return Ok(if left.is_empty() {
                (true, format!("no CRD matches {name}"))
            } else {
                (false, format!("CRDs left: {}", left.join(", ")))
            });
        }
        if kind == "Manifest" {
            let docs = self.documents(name)?;
            for doc in docs {
                let k = self.kind_of(&doc).await;
                let Ok(k) = k else { continue };
                let n = doc
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let ns = k.namespaced.then(|| {
                    doc.pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or("default")
                        .to_string()
                });
                if self.get_value(&k, ns.as_deref(), n).await?.is_some() {
                    return Ok((
                        false,
                        format!("{} is still there", crate::objects::describe(&doc)),
                    ));
                }
            }
            return Ok((true, format!("no object of {name} is left")));
        }
        let Some(k) = self.served_kind(kind).await? else {
            return Ok((
                true,
                format!("{name} is gone: the API server serves no kind called {kind}"),
            ));
        };
        let ns = if k.namespaced { namespace } else { None };
        let what = object_name(&k, ns, name);
        Ok(match self.get_value(&k, ns, name).await? {
            None => (true, format!("{what} is gone")),
            Some(_) => (false, format!("{what} still exists")),
        })
    }

    /// Backs up, deletes, and waits until the object is gone.
    pub async fn delete_with_backup(
        &mut self,
        step: &str,
        kind: &str,
        namespace: Option<&str>,
        name: &str,
        backup: &str,
        ctx: &RunContext<'_>,
    ) -> Result<String, ActionError> {
        refuse_secrets(kind, name)?;
        let mut out = String::new();
        let targets: Vec<(Kind, Option<String>, String)> = if kind == "CustomResourceDefinition" {
            let crds = self.matching_crds(name).await?;
            if !self.holds(backup)? {
                self.save_dir(backup)?;
            }
            let mut targets = Vec::new();
            for crd in &crds {
                let crd_name = crd
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let dir = backup.trim_end_matches('/');
                let file = format!("{dir}/crd-{crd_name}.yaml");
                if !self.holds(&file)? {
                    let resources = self.custom_resources(crd).await?;
                    // Resources first: a crash between the two leaves the definition unsaved,
                    // so the next attempt saves both again.
                    let resources_file = format!("{dir}/resources-{crd_name}.yaml");
                    if !self.holds(&resources_file)? {
                        self.save(&resources_file, backup_text(&resources).as_bytes())?;
                    }
                    self.save(
                        &file,
                        backup_text(&[(
                            format!("CustomResourceDefinition/{crd_name}"),
                            Some(crd.clone()),
                        )])
                        .as_bytes(),
                    )?;
                    out.push_str(&format!(
                        "backed up {crd_name} and {} resource(s)\n",
                        resources.len()
                    ));
                }
                let k = self.kind("CustomResourceDefinition").await?;
                targets.push((k, None, crd_name));
            }
            targets
        } else if kind == "Manifest" {
            let mut targets = Vec::new();
            let mut saved = Vec::new();
            for doc in self.documents(name)? {
                let Ok(k) = self.kind_of(&doc).await else {
                    continue;
                };
                let n = doc
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                let ns = k.namespaced.then(|| {
                    doc.pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        .unwrap_or("default")
                        .to_string()
                });
                if let Some(live) = self.get_value(&k, ns.as_deref(), &n).await? {
                    saved.push((object_name(&k, ns.as_deref(), &n), Some(live)));
                }
                targets.push((k, ns, n));
            }
            if !self.holds(backup)? {
                self.save(backup, backup_text(&saved).as_bytes())?;
                out.push_str(&format!(
                    "backed up {} object(s) to {backup}\n",
                    saved.len()
                ));
            }
            targets
        } else {
            // Never installed (or its CRD already removed): nothing of it can exist.
            let Some(k) = self.served_kind(kind).await? else {
                return Ok(format!(
                    "{name} was already gone: the API server serves no kind called {kind}"
                ));
            };
            let ns = if k.namespaced {
                namespace.map(str::to_string)
            } else {
                None
            };
            if !self.holds(backup)? {
                match self.get_value(&k, ns.as_deref(), name).await? {
                    Some(v) => {
                        self.save(
                            backup,
                            backup_text(&[(object_name(&k, ns.as_deref(), name), Some(v))])
                                .as_bytes(),
                        )?;
                        out.push_str(&format!(
                            "backed up {} to {backup}\n",
                            object_name(&k, ns.as_deref(), name)
                        ));
                    }
                    None => {
                        return Ok(format!(
                            "{} was already gone",
                            object_name(&k, ns.as_deref(), name)
                        ));
                    }
                }
            }
            vec![(k, ns, name.to_string())]
        };
        ctx.crash.point(step, "mid");
        for (k, ns, n) in &targets {
            if self.delete(k, ns.as_deref(), n).await? {
                out.push_str(&format!("deleted {}\n", object_name(k, ns.as_deref(), n)));
            }
        }
        let deadline = Instant::now() + ctx.timeout;
        let mut wake = match targets.as_slice() {
            [(k, ns, n)] => Some(self.wake_on_dynamic(k, ns.as_deref(), n)),
            _ => None,
        };
        loop {
            let (gone, what) = self.absent(kind, namespace, name).await?;
            if gone {
                return Ok(out);
            }
            if Instant::now() >= deadline {
                return Err(failed(format!(
                    "{what} {} s after its delete (finalizers?)",
                    ctx.timeout.as_secs()
                )));
            }
            match wake.as_mut() {
                Some(w) => w.next(crate::wake::FALLBACK).await,
                None => self.pause(self.poll).await,
            }
        }
    }

    async fn custom_resources(
        &mut self,
        crd: &Value,
    ) -> Result<Vec<(String, Option<Value>)>, ActionError> {
        let group = crd
            .pointer("/spec/group")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let kind = crd
            .pointer("/spec/names/kind")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let version = crd
            .pointer("/spec/versions")
            .and_then(Value::as_array)
            .and_then(|v| v.iter().find(|v| v["storage"] == true).or(v.first()))
            .and_then(|v| v["name"].as_str())
            .unwrap_or_default();
        let probe = serde_json::json!({"apiVersion": format!("{group}/{version}"), "kind": kind});
        let Ok(k) = self.kind_of(&probe).await else {
            return Ok(Vec::new());
        };
        let api_ = self.dynamic(&k, None);
        let list = api_
            .list(&ListParams::default())
            .await
            .map_err(|e| crate::errors::api(&format!("LIST {kind}"), kind, e))?;
        Ok(list
            .items
            .into_iter()
            .filter_map(|o| {
                let name = format!(
                    "{}/{kind}/{}",
                    o.metadata.namespace.clone().unwrap_or_default(),
                    o.metadata.name.clone().unwrap_or_default()
                );
                let mut v = serde_json::to_value(o).ok()?;
                v["apiVersion"] = Value::String(format!("{group}/{version}"));
                v["kind"] = Value::String(kind.to_string());
                Some((name, Some(v)))
            })
            .collect())
    }

    /// Applies every file of a backup directory (definitions first) or one backup file.
    /// Puts back every object of a backup directory (definitions first) or file: merged in
    /// by server-side apply, or with `replace` written whole over the live object.
    pub async fn restore(&mut self, path: &str, replace: bool) -> Result<String, ActionError> {
        let mut out = String::new();
        let docs = self.backup_documents(path)?;
        for doc in &docs {
            // A definition in the same backup comes first and may take a moment to be served;
            // without one, waiting would not help: the kind is gone from the cluster.
            if !defines_kind(&docs, doc)
                && let Err(ActionError::Transient(_)) = self.kind_of(doc).await
            {
                return Err(failed(format!(
                    "the backup {path} holds {}, but the API server serves no {} {}: install the CRD that defines it (or the CNI that brings it), then run the rollback again",
                    crate::objects::describe(doc),
                    doc.get("apiVersion").and_then(Value::as_str).unwrap_or("?"),
                    doc.get("kind").and_then(Value::as_str).unwrap_or("?"),
                )));
            }
        }
        for doc in docs {
            if replace {
                self.replace_object(&doc, false).await?;
            } else {
                self.apply_object(&doc, false).await?;
            }
            out.push_str(&format!("restored {}\n", crate::objects::describe(&doc)));
        }
        if out.is_empty() {
            out.push_str(&format!("{path} holds nothing to put back"));
        }
        Ok(out)
    }

    pub async fn restored(
        &mut self,
        path: &str,
        replace: bool,
    ) -> Result<(bool, String), ActionError> {
        for doc in self.backup_documents(path)? {
            let diff = if replace {
                self.replaced(&doc).await?
            } else {
                self.matches(&doc).await?
            };
            if let Some(diff) = diff {
                return Ok((false, diff));
            }
        }
        Ok((
            true,
            format!("every object of {path} is on the server as saved"),
        ))
    }

    pub fn backup_documents(&self, path: &str) -> Result<Vec<Value>, ActionError> {
        let files = match self
            .plan_dir
            .entry(path.trim_end_matches('/'))
            .map_err(crate::files::plan_dir_failed)?
        {
            cniswap_exec::plandir::Entry::Missing => {
                return Err(failed(format!(
                    "the backup {path} does not exist: the step that writes it never ran"
                )));
            }
            cniswap_exec::plandir::Entry::Dir => {
                let dir = path.trim_end_matches('/');
                let mut names: Vec<String> = self
                    .saved_names(dir)?
                    .into_iter()
                    .filter(|n| n.ends_with(".yaml") && !n.starts_with('.'))
                    .collect();
                // Definitions before the resources that need them.
                names.sort_by_key(|n| (!n.starts_with("crd-"), n.clone()));
                names.into_iter().map(|n| format!("{dir}/{n}")).collect()
            }
            _ => vec![path.to_string()],
        };
        let mut docs = Vec::new();
        for f in files {
            let bytes = self.saved(&f)?.unwrap_or_default();
            docs.extend(crate::objects::parse_documents(&self.dir.join(&f), &bytes)?);
        }
        Ok(docs)
    }
}

/// Whether `docs` holds the CustomResourceDefinition of `doc`'s kind.
fn defines_kind(docs: &[Value], doc: &Value) -> bool {
    let kind = doc.get("kind").and_then(Value::as_str).unwrap_or_default();
    let group = doc
        .get("apiVersion")
        .and_then(Value::as_str)
        .and_then(|v| v.rsplit_once('/'))
        .map_or("", |(g, _)| g);
    docs.iter().any(|d| {
        d.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition")
            && d.pointer("/spec/names/kind").and_then(Value::as_str) == Some(kind)
            && d.pointer("/spec/group").and_then(Value::as_str) == Some(group)
    })
}

fn crd_pattern(pattern: &str) -> Result<impl Fn(&str) -> bool, ActionError> {
    let re = regex::Regex::new(pattern)
        .map_err(|e| failed(format!("CRD name pattern {pattern}: {e}")))?;
    Ok(move |name: &str| re.is_match(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backup_defines_a_kind_only_with_its_crd_of_the_same_group() {
        let crd = serde_json::json!({"kind": "CustomResourceDefinition",
            "spec": {"group": "cilium.io", "names": {"kind": "CiliumNodeConfig"}}});
        let config = serde_json::json!({"apiVersion": "cilium.io/v2", "kind": "CiliumNodeConfig"});
        let other = serde_json::json!({"apiVersion": "example.io/v1", "kind": "CiliumNodeConfig"});
        assert!(defines_kind(&[crd.clone(), config.clone()], &config));
        assert!(!defines_kind(std::slice::from_ref(&config), &config));
        assert!(!defines_kind(&[crd, other.clone()], &other));
    }

    #[test]
    fn crd_patterns_match_suffixes() {
        let m = crd_pattern(r"(\.projectcalico\.org|\.tigera\.io)$").unwrap();
        assert!(m("ippools.crd.projectcalico.org"));
        assert!(m("installations.operator.tigera.io"));
        assert!(!m("ciliumnodes.cilium.io"));
        assert!(crd_pattern("(a").is_err());
    }

    #[test]
    fn references_split_into_parts() {
        assert_eq!(
            parse_ref("kube-system/daemonset/kube-flannel").unwrap(),
            (
                Some("kube-system".into()),
                "daemonset".into(),
                "kube-flannel".into()
            )
        );
        assert_eq!(
            parse_ref("clusterrole/flannel").unwrap(),
            (None, "clusterrole".into(), "flannel".into())
        );
    }
}
