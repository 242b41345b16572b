//! Verification probes, read from the cluster: node and pod state through the API, and the
//! network through short-lived busybox pods pinned to nodes (nodeName, every taint
//! tolerated) whose command is the check and whose exit code is the answer, so no exec into
//! a running pod is needed.

use crate::KubeActions;
use crate::errors::{api, failed, is_not_found};
use cniswap_exec::ActionError;
use cniswap_plan::{ObjectRef, Probe};
use k8s_openapi::api::apps::v1::DaemonSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;
use std::time::Duration;

/// Probe pods run here, unprivileged (as the plan's runbook runs them).
pub const NAMESPACE: &str = "default";
const POD_TIMEOUT: Duration = Duration::from_secs(180);

fn probe_name(purpose: &str, node: &str) -> String {
    let plain = format!("cniswap-{purpose}-{node}");
    let ok = plain.len() <= 63
        && plain
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !plain.ends_with('-');
    if ok {
        plain
    } else {
        format!(
            "cniswap-{purpose}-{}",
            &cniswap_exec::digest::sha256(node.as_bytes())[..12]
        )
    }
}

fn in_cidr(ip: &str, cidr: &str) -> bool {
    match (ip.parse::<std::net::IpAddr>(), cidr.parse::<ipnet::IpNet>()) {
        (Ok(ip), Ok(net)) => net.contains(&ip),
        _ => false,
    }
}

impl KubeActions {
    async fn probe_pod(
        &self,
        name: &str,
        node: Option<&str>,
        command: Vec<String>,
    ) -> Result<Pod, ActionError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), NAMESPACE);
        let object = format!("{NAMESPACE}/Pod/{name}");
        match pods
            .delete(
                name,
                &DeleteParams {
                    grace_period_seconds: Some(0),
                    ..DeleteParams::default()
                },
            )
            .await
        {
            Ok(_) => {
                let gone = |p: Option<&Pod>| p.is_none();
                let _ = tokio::time::timeout(
                    Duration::from_secs(60),
                    kube::runtime::wait::await_condition(pods.clone(), name, gone),
                )
                .await;
            }
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(api(&format!("DELETE {object}"), &object, e)),
        }
        let mut spec = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": name, "namespace": NAMESPACE, "labels": {"app.kubernetes.io/managed-by": "cniswap"}},
            "spec": {
                "restartPolicy": "Never",
                "tolerations": [{"operator": "Exists"}],
                "terminationGracePeriodSeconds": 0,
                "containers": [{"name": "probe", "image": self.helper_image, "command": command}],
            },
        });
        if let Some(node) = node {
            spec["spec"]["nodeName"] = json!(node);
        }
        let pod: Pod =
            serde_json::from_value(spec).map_err(|e| failed(format!("probe pod: {e}")))?;
        pods.create(&PostParams::default(), &pod)
            .await
            .map_err(|e| api(&format!("POST {object}"), &object, e))?;
        Ok(pod)
    }

    /// Waits until the probe pod is Ready (long-running) or has finished.
    async fn await_probe(&self, name: &str, finished: bool) -> Result<Pod, ActionError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), NAMESPACE);
        let cond = move |p: Option<&Pod>| {
            p.is_some_and(|p| {
                let phase = p.status.as_ref().and_then(|s| s.phase.as_deref());
                if finished {
                    matches!(phase, Some("Succeeded" | "Failed"))
                } else {
                    crate::pods::is_ready(p)
                }
            })
        };
        match tokio::time::timeout(
            POD_TIMEOUT,
            kube::runtime::wait::await_condition(pods, name, cond),
        )
        .await
        {
            Ok(Ok(Some(p))) => Ok(p),
            Ok(Ok(None)) => Err(failed(format!("probe pod {name} disappeared"))),
            Ok(Err(e)) => Err(ActionError::transient(cniswap_exec::Failure::new(format!(
                "watching probe pod {name}: {}",
                cniswap_kube::chain(&e)
            )))),
            Err(_) => Err(failed(format!(
                "probe pod {NAMESPACE}/{name} did not {} within {} s",
                if finished { "finish" } else { "become Ready" },
                POD_TIMEOUT.as_secs()
            ))),
        }
    }

    async fn drop_probes(&self, names: &[&str]) {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), NAMESPACE);
        for name in names {
            let _ = pods
                .delete(
                    name,
                    &DeleteParams {
                        grace_period_seconds: Some(0),
                        ..DeleteParams::default()
                    },
                )
                .await;
        }
    }

    /// Runs `command` in a pod (on `node`, if given) and reports whether it exited 0.
    async fn probe_command(
        &self,
        name: &str,
        node: Option<&str>,
        command: Vec<String>,
    ) -> Result<(bool, String), ActionError> {
        self.probe_pod(name, node, command.clone()).await?;
        let pod = self.await_probe(name, true).await;
        self.drop_probes(&[name]).await;
        let pod = pod?;
        let ok = pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Succeeded");
        Ok((
            ok,
            format!(
                "`{}` in pod {name}{} {}",
                command.join(" "),
                node.map(|n| format!(" on {n}")).unwrap_or_default(),
                if ok { "succeeded" } else { "failed" }
            ),
        ))
    }

    async fn absent_ref(&mut self, object: &ObjectRef) -> Result<(bool, String), ActionError> {
        self.absent(&object.kind, object.namespace.as_deref(), &object.name)
            .await
    }

    /// Whether one probe passes, and what showed it.
    pub async fn probe(
        &mut self,
        probe: &Probe,
        timeout: Duration,
    ) -> Result<(bool, String), ActionError> {
        match probe {
            Probe::NodesReady => {
                let nodes = self
                    .nodes()
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| api("LIST nodes", "nodes", e))?;
                let not: Vec<String> = nodes
                    .items
                    .iter()
                    .filter(|n| !crate::nodes::is_ready(n))
                    .filter_map(|n| n.metadata.name.clone())
                    .collect();
                Ok((
                    not.is_empty(),
                    if not.is_empty() {
                        format!("all {} nodes Ready", nodes.items.len())
                    } else {
                        format!("not Ready: {}", not.join(", "))
                    },
                ))
            }
            Probe::NoPodStuck => {
                let pods: Api<Pod> = Api::all(self.client.clone());
                let list = pods
                    .list(
                        &ListParams::default()
                            .fields("status.phase!=Running,status.phase!=Succeeded"),
                    )
                    .await
                    .map_err(|e| api("LIST pods", "pods", e))?;
                let stuck: Vec<String> = list.items.iter().map(crate::pods::key).collect();
                Ok((
                    stuck.is_empty(),
                    if stuck.is_empty() {
                        "no pod is stuck".into()
                    } else {
                        format!(
                            "stuck: {}",
                            stuck
                                .iter()
                                .take(10)
                                .cloned()
                                .collect::<Vec<_>>()
                                .join(", ")
                        )
                    },
                ))
            }
            Probe::PodToPod { from, to } => {
                let b = probe_name("probe-b", to);
                self.probe_pod(&b, Some(to), vec!["sleep".into(), "900".into()])
                    .await?;
                let target = self.await_probe(&b, false).await;
                let ip = match target {
                    Ok(p) => p.status.and_then(|s| s.pod_ip).unwrap_or_default(),
                    Err(e) => {
                        self.drop_probes(&[&b]).await;
                        return Err(e);
                    }
                };
                let a = probe_name("probe-a", from);
                let result = self
                    .probe_command(
                        &a,
                        Some(from),
                        vec![
                            "ping".into(),
                            "-c".into(),
                            "3".into(),
                            "-W".into(),
                            "2".into(),
                            ip.clone(),
                        ],
                    )
                    .await;
                self.drop_probes(&[&b]).await;
                let (ok, what) = result?;
                Ok((ok, format!("{from} -> {to} ({ip}): {what}")))
            }
            Probe::Dns { name } => {
                self.probe_command(
                    &probe_name("probe-dns", "cluster"),
                    None,
                    vec!["nslookup".into(), name.clone()],
                )
                .await
            }
            Probe::Service { url } => {
                self.probe_command(
                    &probe_name("probe-svc", "cluster"),
                    None,
                    vec![
                        "wget".into(),
                        "-q".into(),
                        "-T".into(),
                        "5".into(),
                        "-O".into(),
                        "/dev/null".into(),
                        "--no-check-certificate".into(),
                        url.clone(),
                    ],
                )
                .await
            }
            Probe::PodAddress { node, cidr } => {
                let name = probe_name("probe-ip", node);
                self.probe_pod(&name, Some(node), vec!["sleep".into(), "900".into()])
                    .await?;
                let pod = self.await_probe(&name, false).await;
                self.drop_probes(&[&name]).await;
                let ip = pod?.status.and_then(|s| s.pod_ip).unwrap_or_default();
                let range = match cidr {
                    Some(c) => c.clone(),
                    None => self
                        .node(node)
                        .await?
                        .spec
                        .and_then(|s| s.pod_cidr)
                        .unwrap_or_default(),
                };
                Ok((
                    in_cidr(&ip, &range),
                    format!("a new pod on {node} got {ip} (expected in {range})"),
                ))
            }
            Probe::AgentsReady {
                namespace,
                daemonset,
            } => {
                let nodes = self
                    .nodes()
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| api("LIST nodes", "nodes", e))?
                    .items
                    .len();
                let ds: Api<DaemonSet> = Api::namespaced(self.client.clone(), namespace);
                let what = format!("{namespace}/DaemonSet/{daemonset}");
                let Some(d) = ds
                    .get_opt(daemonset)
                    .await
                    .map_err(|e| api(&format!("GET {what}"), &what, e))?
                else {
                    return Ok((false, format!("{what} does not exist")));
                };
                let s = d.status.unwrap_or_default();
                let (desired, ready, updated) = (
                    s.desired_number_scheduled,
                    s.number_ready,
                    s.updated_number_scheduled.unwrap_or(0),
                );
                let all = usize::try_from(desired).unwrap_or(0) == nodes
                    && ready == desired
                    && updated == desired;
                Ok((
                    all,
                    format!(
                        "{what}: {ready} ready, {updated} updated of {desired} on {nodes} nodes"
                    ),
                ))
            }
            Probe::NodesLabelled { key, value } => {
                self.label_in_place("all", key, Some(value)).await
            }
            Probe::NoNodeLabelled { key, except } => {
                let nodes = self.label_targets("all").await?;
                let wrong: Vec<String> = nodes
                    .iter()
                    .filter(|n| {
                        crate::nodes::label(n, key).is_some_and(|v| except.as_deref() != Some(v))
                    })
                    .filter_map(|n| n.metadata.name.clone())
                    .collect();
                Ok((
                    wrong.is_empty(),
                    if wrong.is_empty() {
                        format!("no node has {key}")
                    } else {
                        format!("{key} still on {}", wrong.join(", "))
                    },
                ))
            }
            Probe::Absent { object } => self.absent_ref(object).await,
            Probe::Present { object } => {
                let (gone, _) = self.absent_ref(object).await?;
                let what = cniswap_exec::effect::object_text(object);
                Ok(if gone {
                    (false, format!("{what} does not exist"))
                } else {
                    (true, format!("{what} exists"))
                })
            }
            Probe::FieldIn {
                resource,
                namespace,
                field,
                allowed,
            } => {
                let Some(kind) = self.served_kind(resource).await? else {
                    return Ok((
                        true,
                        format!("no {resource} exists: the server does not serve it"),
                    ));
                };
                let list = self
                    .dynamic(&kind, namespace.as_deref())
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| api(&format!("LIST {resource}"), resource, e))?;
                let mut wrong = Vec::new();
                for item in &list.items {
                    let value = serde_json::to_value(item)
                        .map_err(|e| failed(format!("{resource}: {e}")))?;
                    let got = crate::jsonpath(&value, field).unwrap_or_default();
                    if !allowed.contains(&got) {
                        wrong.push(format!(
                            "{} {field}={}",
                            item.metadata.name.as_deref().unwrap_or("?"),
                            if got.is_empty() {
                                "(unset)"
                            } else {
                                got.as_str()
                            }
                        ));
                    }
                }
                Ok((
                    wrong.is_empty(),
                    if wrong.is_empty() {
                        format!(
                            "{} {resource}: each {field} is {}",
                            list.items.len(),
                            allowed.join(" or ")
                        )
                    } else {
                        format!(
                            "{resource} not yet {}: {}",
                            allowed.join(" or "),
                            wrong.join(", ")
                        )
                    },
                ))
            }
            Probe::TalosConfigHas {
                nodes,
                endpoints,
                file,
            } => self.talos_patched_on(nodes, endpoints, file).await,
            Probe::NoPodsMatching {
                namespace,
                selector,
                node,
            } => {
                let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
                let mut params = ListParams::default().labels(selector);
                if let Some(node) = node {
                    params = params.fields(&format!("spec.nodeName={node}"));
                }
                let left: Vec<String> = pods
                    .list(&params)
                    .await
                    .map_err(|e| {
                        api(
                            &format!("LIST {namespace}/pods -l {selector}"),
                            namespace,
                            e,
                        )
                    })?
                    .items
                    .into_iter()
                    .filter_map(|p| p.metadata.name)
                    .collect();
                Ok(if left.is_empty() {
                    (true, format!("no pod matches {selector} in {namespace}"))
                } else {
                    (false, format!("{namespace} still runs {}", left.join(", ")))
                })
            }
            Probe::NoPods { namespace } => {
                let pods: Api<Pod> = Api::namespaced(self.client.clone(), namespace);
                let left: Vec<String> = pods
                    .list(&ListParams::default())
                    .await
                    .map_err(|e| api(&format!("LIST {namespace}/pods"), namespace, e))?
                    .items
                    .into_iter()
                    .filter_map(|p| p.metadata.name)
                    .collect();
                Ok((
                    left.is_empty(),
                    if left.is_empty() {
                        format!("no pod left in {namespace}")
                    } else {
                        format!("{namespace} still runs {}", left.join(", "))
                    },
                ))
            }
            Probe::NodeInventory { node, pod } => {
                let run = self.run_pod(node, pod, timeout).await?;
                Ok((
                    run.code == 0,
                    format!(
                        "node agent on {node} exited {}: {}",
                        run.code,
                        run.output.lines().last().unwrap_or_default()
                    ),
                ))
            }
            Probe::NodeCheck { node, what, pod } => {
                let run = self.run_pod(node, pod, timeout).await?;
                Ok((
                    run.code == 0,
                    format!(
                        "{what} on {node}: the check pod exited {}: {}",
                        run.code,
                        run.output.lines().last().unwrap_or_default()
                    ),
                ))
            }
            Probe::Cniswap { args } => {
                let me = std::env::current_exe()
                    .map_err(|e| failed(format!("cannot find cniswap itself: {e}")))?;
                let out = tokio::process::Command::new(me)
                    .args(args)
                    .current_dir(&self.dir)
                    .output()
                    .await
                    .map_err(|e| failed(format!("cannot run cniswap {}: {e}", args.join(" "))))?;
                let ok = out.status.success();
                let mut said = format!(
                    "`cniswap {}` exited {}",
                    args.join(" "),
                    out.status.code().unwrap_or(-1)
                );
                if !ok {
                    // What it said, so the failure names its reason (its last lines).
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    let stdout = String::from_utf8_lossy(&out.stdout);
                    let text = if stderr.trim().is_empty() {
                        stdout
                    } else {
                        stderr
                    };
                    let lines: Vec<&str> = text.trim_end().lines().collect();
                    for line in &lines[lines.len().saturating_sub(12)..] {
                        said.push_str("\n    ");
                        said.push_str(line);
                    }
                }
                Ok((ok, said))
            }
        }
    }

    /// Waits until every probe of a state that takes time to reach (objects gone, pods gone,
    /// agents or nodes Ready, labels set) passes, or `timeout`; network probes are not
    /// repeated here (they run once, as the check). Returns what the last round saw.
    pub async fn await_states(
        &mut self,
        probes: &[Probe],
        timeout: Duration,
    ) -> Result<String, ActionError> {
        let waits: Vec<&Probe> = probes.iter().filter(|p| awaits_state(p)).collect();
        if waits.is_empty() {
            return Ok(String::new());
        }
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let mut waiting = Vec::new();
            for p in &waits {
                let (ok, what) = self.probe(p, timeout).await?;
                if !ok {
                    waiting.push(what);
                }
            }
            if waiting.is_empty() {
                return Ok("every awaited state reached".into());
            }
            if std::time::Instant::now() >= deadline {
                // The check that follows reports the failure.
                return Ok(format!(
                    "still waiting after {} s: {}",
                    timeout.as_secs(),
                    waiting.join("; ")
                ));
            }
            // Each round lists objects: once a second is plenty.
            self.pause(self.poll.max(Duration::from_secs(1))).await;
        }
    }

    /// [`Self::probes`] again every 3 s until they pass or `settle` has passed; says how many
    /// rounds it took.
    pub async fn settled_probes(
        &mut self,
        probes: &[Probe],
        timeout: Duration,
        settle: Duration,
    ) -> Result<(bool, String), ActionError> {
        let until = std::time::Instant::now() + settle;
        let mut rounds = 0;
        loop {
            rounds += 1;
            let (ok, what) = self.probes(probes, timeout).await?;
            if ok || std::time::Instant::now() >= until {
                let note = match (ok, rounds) {
                    (_, 1) => String::new(),
                    (true, n) => format!(" (passed at round {n})"),
                    (false, n) => format!(" (still failing after {n} rounds)"),
                };
                return Ok((ok, format!("{what}{note}")));
            }
            self.pause(Duration::from_secs(3)).await;
        }
    }

    /// Every probe, each reported; the first failure makes the whole check fail.
    pub async fn probes(
        &mut self,
        probes: &[Probe],
        timeout: Duration,
    ) -> Result<(bool, String), ActionError> {
        let mut lines = Vec::new();
        let mut all = true;
        for p in probes {
            let (ok, what) = self.probe(p, timeout).await?;
            all &= ok;
            lines.push(format!("{} {what}", if ok { "ok:" } else { "FAILED:" }));
        }
        Ok((all, lines.join("; ")))
    }
}

/// How long a check's network probes may take to pass after the step that changed them.
pub const SETTLE: std::time::Duration = std::time::Duration::from_secs(60);
/// How long they may take when checked again right after (the step's effect check).
pub const RECHECK: std::time::Duration = std::time::Duration::from_secs(15);

/// Probes of a state that other controllers bring about over time, read from the API alone.
fn awaits_state(probe: &Probe) -> bool {
    matches!(
        probe,
        Probe::Absent { .. }
            | Probe::NoPods { .. }
            | Probe::NoPodsMatching { .. }
            | Probe::FieldIn { .. }
            | Probe::TalosConfigHas { .. }
            | Probe::AgentsReady { .. }
            | Probe::NodesReady
            | Probe::NodesLabelled { .. }
            | Probe::NoNodeLabelled { .. }
    )
}
