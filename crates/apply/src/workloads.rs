//! Workload waits and readings: rollouts of DaemonSets and Deployments, Jobs, the settings an
//! agent runs with (its ConfigMap, and what each agent pod reports about itself), snapshots.

use crate::KubeActions;
use crate::errors::{api, failed};
use cniswap_exec::{ActionError, Failure};
use cniswap_plan::{AgentReport, Setting};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ConfigMap, Pod};
use kube::api::{Api, AttachParams, ListParams};
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

impl KubeActions {
    /// Whether a DaemonSet or Deployment is rolled out.
    pub async fn rolled_out_kind(
        &self,
        kind: &str,
        namespace: &str,
        name: &str,
    ) -> Result<(bool, String), ActionError> {
        if kind.eq_ignore_ascii_case("daemonset") || kind.eq_ignore_ascii_case("ds") {
            return self.rolled_out(namespace, name).await;
        }
        let api_: Api<Deployment> = Api::namespaced(self.client.clone(), namespace);
        let what = format!("{namespace}/Deployment/{name}");
        let Some(d) = api_
            .get_opt(name)
            .await
            .map_err(|e| api(&format!("GET {what}"), &what, e))?
        else {
            return Ok((false, format!("{what} does not exist")));
        };
        let want = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
        let generation = d.metadata.generation.unwrap_or(0);
        let s = d.status.unwrap_or_default();
        let observed = s.observed_generation.unwrap_or(0) >= generation;
        let updated = s.updated_replicas.unwrap_or(0);
        let available = s.available_replicas.unwrap_or(0);
        let total = s.replicas.unwrap_or(0);
        Ok(
            if observed && updated == want && available == want && total == want {
                (
                    true,
                    format!("{what}: {available}/{want} updated and available"),
                )
            } else {
                (
                    false,
                    format!(
                        "{what}: {updated} updated, {available} available, {total} in all of {want}"
                    ),
                )
            },
        )
    }

    pub async fn job_complete(
        &self,
        namespace: &str,
        name: &str,
    ) -> Result<(bool, String), ActionError> {
        let api_: Api<Job> = Api::namespaced(self.client.clone(), namespace);
        let what = format!("{namespace}/Job/{name}");
        let Some(job) = api_
            .get_opt(name)
            .await
            .map_err(|e| api(&format!("GET {what}"), &what, e))?
        else {
            return Ok((false, format!("{what} does not exist")));
        };
        let conditions = job.status.and_then(|s| s.conditions).unwrap_or_default();
        let has = |t: &str| {
            conditions
                .iter()
                .any(|c| c.type_ == t && c.status == "True")
        };
        if has("Failed") {
            return Err(ActionError::failed(
                Failure::new(format!("{what} failed"))
                    .object(what.clone())
                    .next(format!(
                        "read its logs (`kubectl -n {namespace} logs job/{name}`)"
                    )),
            ));
        }
        Ok((
            has("Complete"),
            format!(
                "{what} {}",
                if has("Complete") {
                    "completed"
                } else {
                    "has not completed"
                }
            ),
        ))
    }

    pub async fn await_job(
        &self,
        namespace: &str,
        name: &str,
        timeout: Duration,
    ) -> Result<String, ActionError> {
        let api_: Api<Job> = Api::namespaced(self.client.clone(), namespace);
        let deadline = Instant::now() + timeout;
        let mut wake = self.wake_on(api_, name);
        loop {
            let (done, what) = self.job_complete(namespace, name).await?;
            if done {
                return Ok(what);
            }
            if Instant::now() >= deadline {
                return Err(failed(format!("{what} after {} s", timeout.as_secs())));
            }
            wake.next(crate::wake::FALLBACK).await;
        }
    }

    /// Waits for a Job that switches nodes itself (Calico's migration controller), marking each
    /// node in progress from its cordon (or its `label` reading `none`) until it is uncordoned
    /// and every pod-network pod on it is Ready again: the controller uncordons a node before
    /// the pods it recreated there are back (seen on the lab: about 8 s), and people and
    /// `verify --continuous` read the markers to know which node is in its switch.
    pub async fn await_job_marking_nodes(
        &self,
        namespace: &str,
        name: &str,
        label: &str,
        step: &str,
        timeout: Duration,
    ) -> Result<String, ActionError> {
        let deadline = Instant::now() + timeout;
        let marker = format!("{step} ({namespace}/{name})");
        // Cordons older than the wait are someone else's (a person's, or kept from before the
        // plan), not the Job's.
        let cordoned_before: std::collections::BTreeSet<String> = self
            .nodes()
            .list(&ListParams::default())
            .await
            .map_err(|e| api("LIST nodes", "nodes", e))?
            .items
            .into_iter()
            .filter(|n| n.spec.as_ref().and_then(|s| s.unschedulable) == Some(true))
            .filter_map(|n| n.metadata.name)
            .collect();
        loop {
            let (done, what) = self.job_complete(namespace, name).await?;
            let switching = self
                .mark_nodes_switched_by(label, &marker, &cordoned_before)
                .await?;
            if done && switching.is_empty() {
                return Ok(what);
            }
            if Instant::now() >= deadline {
                let nodes = if switching.is_empty() {
                    String::new()
                } else {
                    format!("; still switching: {}", switching.join(", "))
                };
                return Err(failed(format!(
                    "{what}{nodes} after {} s",
                    timeout.as_secs()
                )));
            }
            // Nodes change without the Job changing: poll as verify reads nodes.
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// One round of [`Self::await_job_marking_nodes`]: returns the nodes still switching.
    async fn mark_nodes_switched_by(
        &self,
        label: &str,
        marker: &str,
        cordoned_before: &std::collections::BTreeSet<String>,
    ) -> Result<Vec<String>, ActionError> {
        use cniswap_exec::{NODE_IN_PROGRESS, NodeMark};
        let nodes = self
            .nodes()
            .list(&ListParams::default())
            .await
            .map_err(|e| api("LIST nodes", "nodes", e))?;
        let mut switching = Vec::new();
        for node in nodes.items {
            let Some(name) = node.metadata.name.clone() else {
                continue;
            };
            let cordoned = node
                .spec
                .as_ref()
                .and_then(|s| s.unschedulable)
                .unwrap_or(false);
            let network = node.metadata.labels.as_ref().and_then(|l| l.get(label));
            let marked = node
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(NODE_IN_PROGRESS))
                .is_some_and(|v| v == marker);
            let jobs_cordon = cordoned && (marked || !cordoned_before.contains(&name));
            if jobs_cordon || network.is_some_and(|v| v == "none") {
                if !marked {
                    self.mark(&name, marker, NodeMark::InProgress).await?;
                }
                switching.push(name);
            } else if marked {
                if self.pod_network_ready(&name).await? {
                    self.mark(&name, marker, NodeMark::Done).await?;
                } else {
                    switching.push(name);
                }
            }
        }
        Ok(switching)
    }

    /// Every running pod on `node` that uses the pod network is Ready.
    async fn pod_network_ready(&self, node: &str) -> Result<bool, ActionError> {
        let pods: Api<Pod> = Api::all(self.client.clone());
        let field = format!("spec.nodeName={node}");
        let list = pods
            .list(&ListParams::default().fields(&field))
            .await
            .map_err(|e| api(&format!("LIST pods on {node}"), "pods", e))?;
        Ok(list.items.iter().all(|p| {
            let host = p
                .spec
                .as_ref()
                .and_then(|s| s.host_network)
                .unwrap_or(false);
            let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
            let finished = matches!(phase, Some("Succeeded" | "Failed"));
            let deleting = p.metadata.deletion_timestamp.is_some();
            host || finished || deleting || crate::pods::is_ready(p)
        }))
    }

    /// The ConfigMap holds each setting, and (with `report`) every agent pod prints a line that
    /// matches.
    pub async fn settings_in_place(
        &self,
        namespace: &str,
        configmap: &str,
        settings: &[Setting],
        daemonset: &str,
        selector: &str,
        report: Option<&AgentReport>,
    ) -> Result<(bool, String), ActionError> {
        let maps: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let what = format!("{namespace}/ConfigMap/{configmap}");
        let Some(map) = maps
            .get_opt(configmap)
            .await
            .map_err(|e| api(&format!("GET {what}"), &what, e))?
        else {
            return Ok((false, format!("{what} does not exist")));
        };
        let data = map.data.unwrap_or_default();
        for s in settings {
            let have = data.get(&s.key).map(String::as_str);
            if have != Some(s.value.as_str()) {
                return Ok((
                    false,
                    format!(
                        "{what} has {}={}, not {}",
                        s.key,
                        have.unwrap_or("(unset)"),
                        s.value
                    ),
                ));
            }
        }
        let Some(report) = report else {
            return Ok((
                true,
                format!("{what} holds the {} setting(s)", settings.len()),
            ));
        };
        let line = regex::Regex::new(&report.line).map_err(|e| {
            failed(format!(
                "the report pattern {:?} is not valid: {e}",
                report.line
            ))
        })?;
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
        let list = pods
            .list(&ListParams::default().labels(selector))
            .await
            .map_err(|e| {
                api(
                    &format!("LIST pods -l {selector}"),
                    &format!("{namespace}/DaemonSet/{daemonset}"),
                    e,
                )
            })?;
        if list.items.is_empty() {
            return Ok((
                false,
                format!("no pod of {namespace}/DaemonSet/{daemonset} ({selector})"),
            ));
        }
        for pod in &list.items {
            let name = pod.metadata.name.clone().unwrap_or_default();
            let mut attached = pods
                .exec(
                    &name,
                    report.command.clone(),
                    &AttachParams::default()
                        .container(report.container.clone())
                        .stdout(true)
                        .stderr(false),
                )
                .await
                .map_err(|e| {
                    api(
                        &format!("exec in pod {namespace}/{name}"),
                        &format!("{namespace}/Pod/{name}"),
                        e,
                    )
                })?;
            let mut out = String::new();
            if let Some(mut stdout) = attached.stdout() {
                let _ = stdout.read_to_string(&mut out).await;
            }
            let _ = attached.join().await;
            if !out.lines().any(|l| line.is_match(l)) {
                return Ok((
                    false,
                    format!(
                        "pod {namespace}/{name} does not report /{}/ (`{}`)",
                        report.line,
                        report.command.join(" ")
                    ),
                ));
            }
        }
        Ok((
            true,
            format!(
                "{what} holds the settings and {} agent pod(s) report /{}/",
                list.items.len(),
                report.line
            ),
        ))
    }

    /// `cniswap snapshot` of the cluster into `dir`, written into a temporary directory and
    /// renamed into place whole.
    pub async fn snapshot(&self, dir: &str, talos_nodes: &[String]) -> Result<String, ActionError> {
        if self
            .plan_dir
            .entry(dir)
            .map_err(crate::files::plan_dir_failed)?
            != cniswap_exec::plandir::Entry::Missing
        {
            return Ok(format!("{dir} already exists: kept"));
        }
        let mut snapshot = cniswap_kube::read_cluster(&self.connection, &mut |_, _| {})
            .await
            .map_err(crate::errors::read_error)?;
        // Talos keeps the CNI settings in the machine configs: saved with the cluster, each
        // redacted by the reader (a secret is never written in clear).
        if !talos_nodes.is_empty() {
            let nodes = talos_nodes.to_vec();
            let configs = tokio::task::spawn_blocking(move || {
                cniswap_kube::talosctl::read_machine_configs(&nodes, None)
            })
            .await
            .map_err(|e| failed(format!("reading the machine configs stopped: {e}")))?
            .map_err(|e| {
                ActionError::transient(
                    cniswap_exec::Failure::new(format!("cannot save the machine configs: {e}"))
                        .next("check `talosctl --nodes <node> get machineconfig` works from here"),
                )
            })?;
            for config in configs {
                cniswap_snapshot::load_talos_text(
                    &mut snapshot,
                    &format!("talosctl:{}", config.node),
                    &config.text,
                )
                .map_err(|e| failed(format!("the machine config of {}: {e}", config.node)))?;
            }
        }
        // Written into a fresh owner-only directory (its files are created new, never through
        // a link), then renamed into place whole.
        let tmp = format!("{}.partial", dir.trim_end_matches('/'));
        self.plan_dir
            .remove_tree(&tmp)
            .map_err(crate::files::plan_dir_failed)?;
        self.plan_dir
            .mkdir_new(&tmp, cniswap_exec::Access::Private)
            .map_err(crate::files::plan_dir_failed)?;
        let files =
            cniswap_snapshot::write_snapshot(&snapshot, &self.dir.join(&tmp)).map_err(|e| {
                failed(format!(
                    "cannot write the snapshot into {}: {e}",
                    self.dir.join(&tmp).display()
                ))
            })?;
        self.plan_dir
            .rename(
                &tmp,
                dir.trim_end_matches('/'),
                cniswap_exec::Access::Private,
            )
            .map_err(crate::files::plan_dir_failed)?;
        let _ = files;
        Ok(format!(
            "wrote {dir}: {} objects, secrets never read",
            snapshot.objects.len()
        ))
    }
}
