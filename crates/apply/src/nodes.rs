//! Node steps: cordon (remembering cordons made by others), uncordon, labels, markers, and the
//! facts a reboot is judged by (boot ID, Ready).

use crate::KubeActions;
use crate::errors::{api, failed};
use cniswap_exec::{ActionError, NODE_DONE, NODE_IN_PROGRESS, NodeMark};
use k8s_openapi::api::core::v1::Node;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

pub fn is_ready(node: &Node) -> bool {
    node.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn boot_id(node: &Node) -> String {
    node.status
        .as_ref()
        .and_then(|s| s.node_info.as_ref())
        .map(|i| i.boot_id.clone())
        .unwrap_or_default()
}

pub fn internal_ip(node: &Node) -> Option<String> {
    node.status
        .as_ref()
        .and_then(|s| s.addresses.as_ref())
        .and_then(|a| a.iter().find(|a| a.type_ == "InternalIP"))
        .map(|a| a.address.clone())
}

pub fn unschedulable(node: &Node) -> bool {
    node.spec
        .as_ref()
        .and_then(|s| s.unschedulable)
        .unwrap_or(false)
}

pub fn annotation<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    node.metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

pub fn label<'a>(node: &'a Node, key: &str) -> Option<&'a str> {
    node.metadata
        .labels
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

impl KubeActions {
    pub fn nodes(&self) -> Api<Node> {
        Api::all(self.client.clone())
    }

    pub async fn node(&self, name: &str) -> Result<Node, ActionError> {
        self.nodes()
            .get(name)
            .await
            .map_err(|e| api(&format!("GET node/{name}"), &format!("node/{name}"), e))
    }

    pub async fn patch_node(&self, name: &str, patch: Value) -> Result<Node, ActionError> {
        self.nodes()
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(|e| api(&format!("PATCH node/{name}"), &format!("node/{name}"), e))
    }

    /// Records in `annotation` whether the node was cordoned before (`true`/`false`), then
    /// cordons it; an annotation already there (an earlier attempt) is kept.
    pub async fn cordon(&self, name: &str, key: &str) -> Result<String, ActionError> {
        let node = self.node(name).await?;
        let before = unschedulable(&node);
        let mut patch = json!({"spec": {"unschedulable": true}});
        if annotation(&node, key).is_none() {
            patch["metadata"] = json!({"annotations": {key: before.to_string()}});
        } else if before {
            return Ok(format!("{name} was already cordoned"));
        }
        self.patch_node(name, patch).await?;
        Ok(if before {
            format!("{name} was cordoned before the plan: noted in {key}, it stays cordoned after")
        } else {
            format!("cordoned {name}")
        })
    }

    /// Uncordons the node unless `annotation` says it was cordoned before the plan; removes
    /// the annotation either way.
    pub async fn uncordon(&self, name: &str, key: &str) -> Result<String, ActionError> {
        let node = self.node(name).await?;
        match annotation(&node, key) {
            None => Ok(format!("{name}: nothing to undo ({key} is not set)")),
            Some("true") => {
                self.patch_node(name, json!({"metadata": {"annotations": {key: null}}}))
                    .await?;
                Ok(format!(
                    "{name} stays cordoned: it was cordoned before the plan"
                ))
            }
            Some(_) => {
                self.patch_node(
                    name,
                    json!({"spec": {"unschedulable": null}, "metadata": {"annotations": {key: null}}}),
                )
                .await?;
                Ok(format!("uncordoned {name}"))
            }
        }
    }

    /// Sets a node condition to False (a stopped CNI leaves NetworkUnavailable=True).
    pub async fn clear_condition(
        &self,
        name: &str,
        condition: &str,
    ) -> Result<String, ActionError> {
        let now = jiff::Timestamp::now()
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            .to_string();
        let patch = json!({"status": {"conditions": [{
            "type": condition,
            "status": "False",
            "reason": "CniswapCleared",
            "message": "cleared by cniswap apply: the CNI that set it no longer runs",
            "lastTransitionTime": now,
            "lastHeartbeatTime": now,
        }]}});
        self.nodes()
            .patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
            .await
            .map_err(|e| {
                api(
                    &format!("PATCH node/{name}/status"),
                    &format!("node/{name}"),
                    e,
                )
            })?;
        Ok(format!("{condition} on {name} set to False"))
    }

    pub fn condition_true(node: &Node, condition: &str) -> bool {
        node.status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .is_some_and(|c| c.iter().any(|c| c.type_ == condition && c.status == "True"))
    }

    /// Node names a label step applies to (`all` = every node).
    pub async fn label_targets(&self, node: &str) -> Result<Vec<Node>, ActionError> {
        if node == "all" {
            let list = self
                .nodes()
                .list(&ListParams::default())
                .await
                .map_err(|e| api("LIST nodes", "nodes", e))?;
            Ok(list.items)
        } else {
            Ok(vec![self.node(node).await?])
        }
    }

    pub async fn set_label(
        &self,
        node: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<String, ActionError> {
        let mut changed = Vec::new();
        for n in self.label_targets(node).await? {
            if label(&n, key) == value {
                continue;
            }
            let name = n.metadata.name.clone().unwrap_or_default();
            self.patch_node(&name, json!({"metadata": {"labels": {key: value}}}))
                .await?;
            changed.push(name);
        }
        Ok(match value {
            Some(v) => format!("labelled {key}={v}: {}", list_or_none(&changed)),
            None => format!("removed label {key}: {}", list_or_none(&changed)),
        })
    }

    pub async fn label_in_place(
        &self,
        node: &str,
        key: &str,
        value: Option<&str>,
    ) -> Result<(bool, String), ActionError> {
        let nodes = self.label_targets(node).await?;
        let wrong: Vec<String> = nodes
            .iter()
            .filter(|n| label(n, key) != value)
            .filter_map(|n| n.metadata.name.clone())
            .collect();
        let what = match value {
            Some(v) => format!("{key}={v}"),
            None => format!("no {key}"),
        };
        Ok(if wrong.is_empty() {
            (true, format!("{what} on {node}"))
        } else {
            (false, format!("{what} missing on {}", wrong.join(", ")))
        })
    }

    pub async fn mark(&self, node: &str, phase: &str, mark: NodeMark) -> Result<(), ActionError> {
        let annotations = match mark {
            NodeMark::InProgress => json!({NODE_IN_PROGRESS: phase}),
            NodeMark::Done => json!({NODE_IN_PROGRESS: null, NODE_DONE: phase}),
            NodeMark::Cleared => json!({NODE_IN_PROGRESS: null, NODE_DONE: null}),
        };
        self.patch_node(node, json!({"metadata": {"annotations": annotations}}))
            .await
            .map(|_| ())
    }

    /// Waits (watching the node) until its boot ID differs from `before` and it is Ready.
    pub async fn await_reboot(
        &self,
        name: &str,
        before: &str,
        timeout: std::time::Duration,
    ) -> Result<String, ActionError> {
        let cond = |n: Option<&Node>| n.is_some_and(|n| boot_id(n) != before && is_ready(n));
        let wait = kube::runtime::wait::await_condition(self.nodes(), name, cond);
        let started = std::time::Instant::now();
        let waited = tokio::time::timeout(timeout, wait).await;
        crate::wake::count(&self.waited, started);
        match waited {
            Ok(Ok(_)) => Ok(format!("{name} booted again and is Ready")),
            Ok(Err(e)) => Err(ActionError::transient(cniswap_exec::Failure::new(format!(
                "watching node/{name}: {}",
                cniswap_kube::chain(&e)
            )))),
            Err(_) => Err(failed(format!(
                "node {name} did not come back with a new boot ID and Ready within {} s",
                timeout.as_secs()
            ))),
        }
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "nothing to change".into()
    } else {
        names.join(", ")
    }
}
