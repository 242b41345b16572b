//! Pods on a node: which ones a drain moves, evicting them through the Eviction API (budgets
//! respected, refusals named), recreating pod-network pods, and waiting for a DaemonSet's pod.

use crate::KubeActions;
use crate::errors::{api, failed, is_not_found};
use cniswap_exec::{ActionError, Failure, RunContext};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use kube::api::{Api, DeleteParams, EvictParams, ListParams, Preconditions};
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

pub fn owner_kind(pod: &Pod) -> Option<&str> {
    pod.metadata
        .owner_references
        .as_ref()
        .and_then(|o| o.iter().find(|r| r.controller == Some(true)).or(o.first()))
        .map(|r| r.kind.as_str())
}

pub fn is_mirror(pod: &Pod) -> bool {
    pod.metadata
        .annotations
        .as_ref()
        .is_some_and(|a| a.contains_key("kubernetes.io/config.mirror"))
}

pub fn finished(pod: &Pod) -> bool {
    matches!(
        pod.status.as_ref().and_then(|s| s.phase.as_deref()),
        Some("Succeeded" | "Failed")
    )
}

pub fn host_network(pod: &Pod) -> bool {
    pod.spec
        .as_ref()
        .and_then(|s| s.host_network)
        .unwrap_or(false)
}

pub fn is_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

pub fn key(pod: &Pod) -> String {
    format!(
        "{}/{}",
        pod.metadata.namespace.as_deref().unwrap_or_default(),
        pod.metadata.name.as_deref().unwrap_or_default()
    )
}

pub fn uid(pod: &Pod) -> String {
    pod.metadata.uid.clone().unwrap_or_default()
}

/// Pods a drain must move: everything but DaemonSet pods, static pods and finished pods.
pub fn movable(pod: &Pod) -> bool {
    owner_kind(pod) != Some("DaemonSet") && !is_mirror(pod) && !finished(pod)
}

/// Pods on the pod network that a CNI switch must recreate.
pub fn on_pod_network(pod: &Pod) -> bool {
    !host_network(pod) && !is_mirror(pod) && !finished(pod)
}

fn selects(pdb: &PodDisruptionBudget, pod: &Pod) -> bool {
    let Some(selector) = pdb.spec.as_ref().and_then(|s| s.selector.as_ref()) else {
        return false;
    };
    let empty = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    let by_labels = selector
        .match_labels
        .as_ref()
        .is_none_or(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let by_expressions = selector.match_expressions.as_ref().is_none_or(|exprs| {
        exprs.iter().all(|e| {
            let value = labels.get(&e.key);
            let values = e.values.clone().unwrap_or_default();
            match e.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
    });
    by_labels && by_expressions
}

impl KubeActions {
    pub async fn pods_on(&self, node: &str) -> Result<Vec<Pod>, ActionError> {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let lp = ListParams::default().fields(&format!("spec.nodeName={node}"));
        pods.list(&lp).await.map(|l| l.items).map_err(|e| {
            api(
                &format!("LIST pods on node {node}"),
                &format!("node/{node}"),
                e,
            )
        })
    }

    /// The budgets that cover a pod, by name.
    async fn budgets_for(&self, pod: &Pod) -> Vec<String> {
        let ns = pod.metadata.namespace.clone().unwrap_or_default();
        let api_: Api<PodDisruptionBudget> = Api::namespaced(self.client.clone(), &ns);
        match api_.list(&ListParams::default()).await {
            Ok(list) => list
                .items
                .iter()
                .filter(|p| selects(p, pod))
                .filter_map(|p| p.metadata.name.clone())
                .map(|n| format!("{ns}/{n}"))
                .collect(),
            Err(_) => Vec::new(),
        }
    }

    pub async fn drained(&self, node: &str) -> Result<(bool, String), ActionError> {
        let left: Vec<String> = self
            .pods_on(node)
            .await?
            .iter()
            .filter(|p| movable(p))
            .map(key)
            .collect();
        Ok(if left.is_empty() {
            (true, format!("no pod to move is left on {node}"))
        } else {
            (false, format!("still on {node}: {}", left.join(", ")))
        })
    }

    /// Evicts every movable pod on the node until none is left or the step's time is up.
    /// Pods without a controller and pods a budget protects need approval to go further.
    pub async fn drain(
        &self,
        node: &str,
        step: &str,
        ctx: &RunContext<'_>,
        timeout: Duration,
        bare_listed: &[String],
        bare_backup: Option<&str>,
    ) -> Result<String, ActionError> {
        let deadline = Instant::now() + timeout;
        // Pods without a controller that the plan lists are saved, then deleted (the plan
        // says so, and nobody recreates them); others stop the drain at a gate.
        let mut bare_deleted = Vec::new();
        let listed: Vec<Pod> = self
            .pods_on(node)
            .await?
            .into_iter()
            .filter(|p| movable(p) && owner_kind(p).is_none() && bare_listed.contains(&key(p)))
            .collect();
        if !listed.is_empty() {
            if let Some(file) = bare_backup
                && !self.holds(file)?
            {
                let saved: Vec<(String, Option<serde_json::Value>)> = listed
                    .iter()
                    .map(|p| {
                        (
                            format!(
                                "{}/Pod/{}",
                                p.metadata.namespace.clone().unwrap_or_default(),
                                p.metadata.name.clone().unwrap_or_default()
                            ),
                            serde_json::to_value(p).ok(),
                        )
                    })
                    .collect();
                self.save(file, crate::objects::backup_text(&saved).as_bytes())?;
            }
            for pod in &listed {
                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                let name = pod.metadata.name.clone().unwrap_or_default();
                let api_: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
                match api_.delete(&name, &DeleteParams::default()).await {
                    Ok(_) => bare_deleted.push(key(pod)),
                    Err(e) if is_not_found(&e) => {}
                    Err(e) => {
                        return Err(api(
                            &format!("DELETE pod {ns}/{name}"),
                            &format!("{ns}/Pod/{name}"),
                            e,
                        ));
                    }
                }
            }
        }
        let mut evicted: BTreeSet<String> = BTreeSet::new();
        let mut deleted: BTreeSet<String> = BTreeSet::new();
        let mut first = true;
        let mut wake = self.wake_on_node_pods(node);
        loop {
            let pods: Vec<Pod> = self
                .pods_on(node)
                .await?
                .into_iter()
                .filter(movable)
                .collect();
            if pods.is_empty() {
                return Ok(format!(
                    "drained {node}: {} pod(s) evicted, {} deleted after approval{}",
                    evicted.len(),
                    deleted.len(),
                    if bare_deleted.is_empty() {
                        String::new()
                    } else {
                        format!(
                            ", {} saved and deleted (no controller)",
                            bare_deleted.join(", ")
                        )
                    }
                ));
            }
            let mut refused: BTreeMap<String, Vec<String>> = BTreeMap::new();
            let mut bare = Vec::new();
            for pod in &pods {
                let id = uid(pod);
                if evicted.contains(&id) || deleted.contains(&id) {
                    continue; // terminating; a pod counts as gone when its UID is gone
                }
                let ns = pod.metadata.namespace.clone().unwrap_or_default();
                let name = pod.metadata.name.clone().unwrap_or_default();
                let api_: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
                if owner_kind(pod).is_none() && !ctx.approved {
                    if !bare_listed.contains(&key(pod)) {
                        bare.push(key(pod));
                    }
                    continue;
                }
                let params = EvictParams {
                    delete_options: Some(DeleteParams {
                        preconditions: Some(Preconditions {
                            uid: Some(id.clone()),
                            resource_version: None,
                        }),
                        ..DeleteParams::default()
                    }),
                    ..EvictParams::default()
                };
                match api_.evict(&name, &params).await {
                    Ok(_) => {
                        evicted.insert(id);
                    }
                    Err(e) if is_not_found(&e) => {}
                    Err(kube::Error::Api(status)) if status.code == 429 => {
                        let mut budgets = self.budgets_for(pod).await;
                        if budgets.is_empty() {
                            budgets.push(status.message.clone());
                        }
                        refused.insert(key(pod), budgets);
                    }
                    Err(e) => {
                        return Err(api(
                            &format!("POST pods/{name}/eviction"),
                            &format!("{ns}/Pod/{name}"),
                            e,
                        ));
                    }
                }
                if first {
                    first = false;
                    ctx.crash.point(step, "mid");
                }
            }
            if Instant::now() >= deadline {
                if ctx.approved {
                    // Approved: delete what the budgets (or the missing controller) held.
                    let pending: Vec<&Pod> =
                        pods.iter().filter(|p| !deleted.contains(&uid(p))).collect();
                    for pod in pending {
                        let ns = pod.metadata.namespace.clone().unwrap_or_default();
                        let name = pod.metadata.name.clone().unwrap_or_default();
                        let api_: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
                        match api_.delete(&name, &DeleteParams::default()).await {
                            Ok(_) => {
                                deleted.insert(uid(pod));
                            }
                            Err(e) if is_not_found(&e) => {}
                            Err(e) => {
                                return Err(api(
                                    &format!("DELETE pod {ns}/{name}"),
                                    &format!("{ns}/Pod/{name}"),
                                    e,
                                ));
                            }
                        }
                    }
                } else if !refused.is_empty() || !bare.is_empty() {
                    let mut parts: Vec<String> = refused
                        .iter()
                        .map(|(pod, budgets)| {
                            format!("{pod} (PodDisruptionBudget {})", budgets.join(", "))
                        })
                        .collect();
                    parts.extend(
                        bare.iter()
                            .map(|p| format!("{p} (no controller: nobody recreates it)")),
                    );
                    return Err(ActionError::blocked(
                        Failure::new(format!(
                            "the drain of {node} stopped after {} s: {}",
                            timeout.as_secs(),
                            parts.join("; ")
                        ))
                        .object(format!("node/{node}"))
                        .command(format!("POST pods/NAME/eviction for each pod on {node}"))
                        .next(format!(
                            "relax the budget (maxUnavailable >= 1) or scale the workload up, then run `cniswap apply` again; or, to delete these pods despite it, `cniswap apply PLAN_DIR --approve {step}`"
                        )),
                    ));
                } else {
                    let left: Vec<String> = pods.iter().map(key).collect();
                    return Err(ActionError::failed(
                        Failure::new(format!(
                            "pods on {node} were evicted but did not go away within {} s: {}",
                            timeout.as_secs(),
                            left.join(", ")
                        ))
                        .object(format!("node/{node}"))
                        .next("look at why they do not terminate (finalizers, a stuck kubelet: `kubectl describe pod`), then run `cniswap apply` again"),
                    ));
                }
            }
            wake.next(
                crate::wake::FALLBACK.min(
                    deadline
                        .saturating_duration_since(Instant::now())
                        .max(Duration::from_millis(50)),
                ),
            )
            .await;
        }
    }

    /// The UIDs of the node's pod-network pods, read before they are recreated.
    pub async fn pod_network_uids(&self, node: &str) -> Result<Vec<String>, ActionError> {
        Ok(self
            .pods_on(node)
            .await?
            .iter()
            .filter(|p| on_pod_network(p))
            .map(uid)
            .collect())
    }

    pub async fn recreate_pods(
        &self,
        node: &str,
        old: &BTreeSet<String>,
        step: &str,
        ctx: &RunContext<'_>,
    ) -> Result<String, ActionError> {
        let pods = self.pods_on(node).await?;
        let targets: Vec<&Pod> = pods.iter().filter(|p| old.contains(&uid(p))).collect();
        let bare: Vec<String> = targets
            .iter()
            .filter(|p| owner_kind(p).is_none())
            .map(|p| key(p))
            .collect();
        if !bare.is_empty() && !ctx.approved {
            return Err(ActionError::blocked(
                Failure::new(format!(
                    "{} on {node} have no controller: deleting them loses them for good",
                    bare.join(", ")
                ))
                .object(format!("node/{node}"))
                .next(format!(
                    "recreate them under a Deployment first, or approve losing them: `cniswap apply PLAN_DIR --approve {step}`"
                )),
            ));
        }
        let mut deleted = Vec::new();
        for (i, pod) in targets.iter().enumerate() {
            let ns = pod.metadata.namespace.clone().unwrap_or_default();
            let name = pod.metadata.name.clone().unwrap_or_default();
            let api_: Api<Pod> = Api::namespaced(self.client.clone(), &ns);
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: Some(uid(pod)),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match api_.delete(&name, &params).await {
                Ok(_) => deleted.push(key(pod)),
                Err(e) if is_not_found(&e) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {} // a newer pod took the name
                Err(e) => {
                    return Err(api(
                        &format!("DELETE pod {ns}/{name}"),
                        &format!("{ns}/Pod/{name}"),
                        e,
                    ));
                }
            }
            if i == 0 {
                ctx.crash.point(step, "mid");
            }
        }
        // Gone means: no pod with those UIDs is left anywhere.
        let deadline = Instant::now() + ctx.timeout;
        let mut wake = self.wake_on_node_pods(node);
        loop {
            let (done, what) = self.recreated(node, old).await?;
            if done {
                return Ok(format!(
                    "deleted {} pod(s) on {node}: {}",
                    deleted.len(),
                    deleted.join(", ")
                ));
            }
            if Instant::now() >= deadline {
                return Err(failed(format!("{what} after {} s", ctx.timeout.as_secs())));
            }
            wake.next(crate::wake::FALLBACK).await;
        }
    }

    pub async fn recreated(
        &self,
        node: &str,
        old: &BTreeSet<String>,
    ) -> Result<(bool, String), ActionError> {
        let left: Vec<String> = self
            .pods_on(node)
            .await?
            .iter()
            .filter(|p| old.contains(&uid(p)))
            .map(key)
            .collect();
        Ok(if left.is_empty() {
            (
                true,
                format!("none of the {} old pod(s) of {node} is left", old.len()),
            )
        } else {
            (
                false,
                format!("old pods still on {node}: {}", left.join(", ")),
            )
        })
    }

    /// The DaemonSet's pod on the node, if any.
    pub async fn daemon_pod(
        &self,
        namespace: &str,
        name: &str,
        node: &str,
    ) -> Result<Option<Pod>, ActionError> {
        Ok(self.pods_on(node).await?.into_iter().find(|p| {
            p.metadata.namespace.as_deref() == Some(namespace)
                && p.metadata
                    .owner_references
                    .as_ref()
                    .is_some_and(|o| o.iter().any(|r| r.kind == "DaemonSet" && r.name == name))
        }))
    }

    /// Restarts the DaemonSet's pod on the node (unless it already did since `old`) and waits
    /// until its replacement is Ready.
    pub async fn restart_daemon_pod(
        &self,
        namespace: &str,
        name: &str,
        node: &str,
        old: Option<&str>,
        timeout: Duration,
    ) -> Result<String, ActionError> {
        if let Some(old) = old
            && let Some(pod) = self.daemon_pod(namespace, name, node).await?
            && uid(&pod) == old
        {
            let api_: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
            let pod_name = pod.metadata.name.clone().unwrap_or_default();
            let params = DeleteParams {
                preconditions: Some(Preconditions {
                    uid: Some(old.to_string()),
                    resource_version: None,
                }),
                ..DeleteParams::default()
            };
            match api_.delete(&pod_name, &params).await {
                Ok(_) => {}
                Err(e) if is_not_found(&e) => {}
                Err(kube::Error::Api(s)) if s.code == 409 => {}
                Err(e) => {
                    return Err(api(
                        &format!("DELETE pod {namespace}/{pod_name}"),
                        &format!("{namespace}/Pod/{pod_name}"),
                        e,
                    ));
                }
            }
        }
        let deadline = Instant::now() + timeout;
        let mut wake = self.wake_on_node_pods(node);
        loop {
            let (done, what) = self.daemon_ready(namespace, name, node, old).await?;
            if done {
                return Ok(what);
            }
            if Instant::now() >= deadline {
                return Err(ActionError::failed(
                    Failure::new(format!("{what} after {} s", timeout.as_secs()))
                        .object(format!("{namespace}/DaemonSet/{name}"))
                        .next(format!(
                            "look at the pod on {node} (`kubectl -n {namespace} get pods -o wide --field-selector spec.nodeName={node}`), then run `cniswap apply` again"
                        )),
                ));
            }
            wake.next(crate::wake::FALLBACK).await;
        }
    }

    pub async fn daemon_ready(
        &self,
        namespace: &str,
        name: &str,
        node: &str,
        old: Option<&str>,
    ) -> Result<(bool, String), ActionError> {
        Ok(match self.daemon_pod(namespace, name, node).await? {
            Some(pod) if Some(uid(&pod).as_str()) != old && is_ready(&pod) => {
                (true, format!("{} on {node} is Ready", key(&pod)))
            }
            Some(pod) if Some(uid(&pod).as_str()) == old => {
                (false, format!("{} on {node} was not restarted", key(&pod)))
            }
            Some(pod) => (false, format!("{} on {node} is not Ready", key(&pod))),
            None => (false, format!("no pod of {namespace}/{name} on {node}")),
        })
    }

    /// Whether a DaemonSet is rolled out: every scheduled pod updated and available.
    pub async fn rolled_out(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(bool, String), ActionError> {
        let api_: Api<DaemonSet> = Api::namespaced(self.client.clone(), namespace);
        let what = format!("{namespace}/DaemonSet/{name}");
        let ds = match api_.get_opt(name).await {
            Ok(Some(ds)) => ds,
            Ok(None) => return Ok((false, format!("{what} does not exist"))),
            Err(e) => return Err(api(&format!("GET {what}"), &what, e)),
        };
        let generation = ds.metadata.generation.unwrap_or(0);
        let Some(status) = ds.status else {
            return Ok((false, format!("{what} has no status yet")));
        };
        let observed = status.observed_generation.unwrap_or(0) >= generation;
        let desired = status.desired_number_scheduled;
        let updated = status.updated_number_scheduled.unwrap_or(0);
        let available = status.number_available.unwrap_or(0);
        Ok(if observed && updated == desired && available == desired {
            (
                true,
                format!("{what}: {available}/{desired} updated and available"),
            )
        } else {
            (
                false,
                format!("{what}: {updated} updated, {available} available of {desired}"),
            )
        })
    }

    pub async fn await_rollout(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<String, ActionError> {
        let deadline = Instant::now() + timeout;
        let mut wake = self.wake_on(
            Api::<DaemonSet>::namespaced(self.client.clone(), namespace),
            name,
        );
        loop {
            let (done, what) = self.rolled_out(namespace, name).await?;
            if done {
                return Ok(what);
            }
            if Instant::now() >= deadline {
                return Err(failed(format!("{what} after {} s", timeout.as_secs())));
            }
            wake.next(crate::wake::FALLBACK).await;
        }
    }
}
