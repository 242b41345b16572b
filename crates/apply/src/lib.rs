//! Runs plan steps against a cluster: the [`cniswap_exec::Actions`] of `cniswap apply` through
//! kube-rs (typed requests, no kubectl), external tools as subprocesses, node pods, the
//! journal's mirror and the apply Lease.
//!
//! This is its own crate, not part of cniswap-kube, so that the crate every read-only command
//! uses (inspect, snapshot, lint, plan) contains no code that writes to a cluster.
//!
//! The executor is synchronous; each call here runs on this adapter's own Tokio runtime.

mod agent;
mod backup;
mod errors;
pub mod fence;
mod files;
mod helm;
pub mod lease;
mod mirror;
mod nodes;
mod objects;
mod pods;
mod probes;
mod subset;
mod talos;
pub mod tools;
mod wake;
mod workloads;

pub use helm::upgrade_args as helm_upgrade_args;
pub use talos::{
    etcd_snapshot_args, patch_args as talos_patch_args, reboot_args as talos_reboot_args,
};

use cniswap_exec::drift::Fingerprint;
use cniswap_exec::effect::{Effect, object_text};
use cniswap_exec::{ActionError, Actions, Check, Failure, Memo, NodeMark, Record, RunContext};
use cniswap_plan::{Action, Plan, Step};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

/// The pod-template annotation a RolloutRestart sets (as plan.yaml's check reads it).
pub const RESTART_ANNOTATION: &str = "cniswap.io/restart";

pub struct KubeActions {
    rt: std::sync::Arc<tokio::runtime::Runtime>,
    connection: cniswap_kube::Connection,
    client: kube::Client,
    /// The plan directory: files are read and backups written relative to it, through its
    /// handle (no link followed).
    dir: PathBuf,
    plan_dir: cniswap_exec::PlanDir,
    /// The plan's files as the run began: each artifact is checked against it before use.
    digest: cniswap_exec::digest::PlanDigest,
    /// Set once the lock is held: every write confirms it first.
    fence: Option<fence::Fence>,
    talos: bool,
    /// --agent-image: replaces the plan's agent image in node pods.
    agent_image: Option<String>,
    plan_agent_image: String,
    /// The plan's image for probe pods (`helper_image`).
    helper_image: String,
    /// Steps whose node pod ran and exited 0 in this process (the proof of a pod step).
    pods_ran: BTreeMap<String, String>,
    discovery: Option<kube::discovery::Discovery>,
    /// Between reads while waiting for several objects at once (no single watch).
    poll: Duration,
    /// Nanoseconds spent waiting for the cluster (see `waited`).
    waited: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// Warnings for the operator (a mirror that could not be written).
    pub warnings: Vec<String>,
    mirror_failed: bool,
    mirror_pending: Option<mirror::PendingStart>,
}

pub struct Settings {
    pub plan_dir: cniswap_exec::PlanDir,
    pub digest: cniswap_exec::digest::PlanDigest,
    /// --agent-image: replaces the plan's agent image in the pods it runs on nodes.
    pub agent_image: Option<String>,
}

impl KubeActions {
    /// Connects (kubeconfig, context) on the adapter's own runtime.
    pub fn connect(
        options: &cniswap_kube::LiveOptions,
        plan: &Plan,
        settings: Settings,
    ) -> Result<Self, Failure> {
        let rt = std::sync::Arc::new(
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| Failure::new(format!("cannot start the async runtime: {e}")))?,
        );
        let options = cniswap_kube::LiveOptions {
            no_client_retry: true,
            ..options.clone()
        };
        let connection = rt.block_on(cniswap_kube::connect(&options)).map_err(|e| {
            Failure::new(e.to_string())
                .next("check KUBECONFIG/--kubeconfig and --context (`kubectl get nodes` with the same settings)")
        })?;
        Ok(KubeActions {
            rt,
            client: connection.client.clone(),
            connection,
            dir: settings.plan_dir.path().to_path_buf(),
            plan_dir: settings.plan_dir,
            digest: settings.digest,
            fence: None,
            talos: plan.platform.to_lowercase().starts_with("talos"),
            agent_image: settings.agent_image,
            plan_agent_image: plan.agent_image.clone(),
            helper_image: plan.helper_image.clone(),
            pods_ran: BTreeMap::new(),
            discovery: None,
            poll: Duration::from_millis(250),
            warnings: Vec::new(),
            waited: Default::default(),
            mirror_failed: false,
            mirror_pending: None,
        })
    }

    /// Runs a future on the adapter's runtime (for the CLI's lock and status calls).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    /// From now on every write to the cluster first confirms this lock (fencing), and every
    /// step starts only while it is held.
    pub fn fence_with(&mut self, fence: fence::Fence) {
        // The client's buffer spawns its worker on the adapter's runtime.
        let _runtime = self.rt.enter();
        self.client = fence.client(&self.client);
        self.fence = Some(fence);
    }

    async fn confirm_lock(&self) -> Result<(), ActionError> {
        let Some(fence) = &self.fence else {
            return Ok(());
        };
        fence.confirm().await.map_err(|e| {
            let failure = Failure::new(e.to_string());
            match e {
                fence::FenceError::Lost(_) => ActionError::failed(failure.next(
                    "another cniswap apply (or --force-unlock) took the lock: let it finish, then see `cniswap apply status`",
                )),
                fence::FenceError::Unconfirmed(_) => ActionError::transient(
                    failure.next("check that the API server is up (`kubectl get --raw /readyz`)"),
                ),
            }
        })
    }

    pub fn server(&self) -> String {
        self.connection.describe()
    }

    fn tool_for(&self, action: &Action) -> Option<&'static str> {
        match action {
            Action::HelmUpgrade { .. }
            | Action::HelmUninstall { .. }
            | Action::HelmRollback { .. } => Some("helm"),
            Action::RenderManifest { render, .. } => Some(helm::render_command(render).0),
            Action::Download { .. } => Some("curl"),
            Action::TalosPatch { .. } | Action::EtcdSnapshot { .. } => Some("talosctl"),
            Action::RebootNode { .. } if self.talos => Some("talosctl"),
            Action::OmniConfigPatch { .. } | Action::OmniTemplatePatch { .. } => Some("omnictl"),
            _ => None,
        }
    }

    async fn prepare_async(&mut self, step: &Step) -> Result<Memo, ActionError> {
        let mut memo = Memo::new();
        match &step.action {
            Action::RebootNode { node, .. } => {
                let n = self.node(node).await?;
                memo.insert("boot_id".into(), nodes::boot_id(&n).into());
            }
            Action::RecreatePods { node } => {
                memo.insert("pods".into(), json!(self.pod_network_uids(node).await?));
            }
            Action::RestartAgent {
                namespace,
                daemonset,
                node,
                ..
            } => {
                let old = self.daemon_pod(namespace, daemonset, node).await?;
                memo.insert(
                    "old_pod".into(),
                    old.map(|p| pods::uid(&p)).unwrap_or_default().into(),
                );
            }
            _ => {}
        }
        Ok(memo)
    }

    async fn check_async(
        &mut self,
        step: &Step,
        effect: &Effect,
        memo: &Memo,
    ) -> Result<Check, ActionError> {
        let timeout = Duration::from_secs(u64::from(step.timeout_seconds.max(60)));
        let (done, what) = match effect {
            Effect::File { path, non_empty } => {
                let ok = if *non_empty {
                    self.holds(path)?
                } else {
                    self.plan_dir
                        .entry(path.trim_end_matches('/'))
                        .map_err(files::plan_dir_failed)?
                        != cniswap_exec::plandir::Entry::Missing
                };
                (
                    ok,
                    format!("{path} {}", if ok { "exists" } else { "is missing" }),
                )
            }
            Effect::Cordoned { node, annotation } => {
                let n = self.node(node).await?;
                let marked = nodes::annotation(&n, annotation).is_some();
                (
                    nodes::unschedulable(&n) && marked,
                    format!(
                        "node {node} unschedulable: {}, {annotation}: {}",
                        nodes::unschedulable(&n),
                        nodes::annotation(&n, annotation).unwrap_or("unset")
                    ),
                )
            }
            Effect::Uncordoned { node, annotation } => {
                let n = self.node(node).await?;
                let gone = nodes::annotation(&n, annotation).is_none();
                (
                    gone,
                    format!(
                        "node {node}: {annotation} {}, unschedulable: {}",
                        if gone { "removed" } else { "still set" },
                        nodes::unschedulable(&n)
                    ),
                )
            }
            Effect::Drained { node } => self.drained(node).await?,
            Effect::NodeLabel { node, key, value } => {
                self.label_in_place(node.as_deref().unwrap_or("all"), key, value.as_deref())
                    .await?
            }
            Effect::NodeSelector {
                namespace,
                daemonset,
                key,
                value,
            } => {
                let kind = self.kind("DaemonSet").await?;
                let ds = self.get_value(&kind, Some(namespace), daemonset).await?;
                let now = ds
                    .as_ref()
                    .and_then(|d| d.pointer("/spec/template/spec/nodeSelector"))
                    .and_then(|s| s.get(key))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                (
                    ds.is_some() && now == *value,
                    format!(
                        "{namespace}/DaemonSet/{daemonset} nodeSelector {key} is {}",
                        now.as_deref().unwrap_or("unset")
                    ),
                )
            }
            Effect::Applied { file } => {
                let mut result = (
                    true,
                    format!("every object of {file} is on the server as written"),
                );
                for doc in self.documents(file)? {
                    if let Some(diff) = self.matches(&doc).await? {
                        result = (false, diff);
                        break;
                    }
                }
                result
            }
            Effect::Restored { path, replace } => self.restored(path, *replace).await?,
            Effect::Replicas {
                namespace,
                name,
                replicas,
            } => {
                let kind = self.kind("Deployment").await?;
                let d = self.get_value(&kind, Some(namespace), name).await?;
                let spec = d
                    .as_ref()
                    .and_then(|d| d.pointer("/spec/replicas"))
                    .and_then(Value::as_u64);
                let have = d
                    .as_ref()
                    .and_then(|d| d.pointer("/status/replicas"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let ready = d
                    .as_ref()
                    .and_then(|d| d.pointer("/status/readyReplicas"))
                    .and_then(Value::as_u64)
                    .unwrap_or(0);
                let want = u64::from(*replicas);
                (
                    spec == Some(want) && have == want && ready == want,
                    format!(
                        "{namespace}/Deployment/{name}: spec {}, {have} pods, {ready} ready, want {want}",
                        spec.map(|s| s.to_string()).unwrap_or("missing".into())
                    ),
                )
            }
            Effect::Patched {
                object,
                patch_type,
                patch,
                field,
                expected,
            } => {
                let k = self.kind(&object.kind).await?;
                let ns = object.namespace.as_deref();
                if field.is_empty() {
                    let patch: Value = serde_json::from_str(patch)
                        .map_err(|e| errors::failed(format!("the patch is not JSON: {e}")))?;
                    let Some(live) = self.get_value(&k, ns, &object.name).await? else {
                        return Ok(Check::NotDone(format!(
                            "{} does not exist",
                            object_text(object)
                        )));
                    };
                    let would = self
                        .patch_as(&k, ns, &object.name, *patch_type, &patch, true)
                        .await?;
                    // A merge patch is in place when the fields it names read the same after
                    // it: other fields of busy objects (a node's taints, set by controllers a
                    // moment after an uncordon) may differ between two reads.
                    let same = if *patch_type == cniswap_plan::PatchType::Merge {
                        objects::merge_patch_in_place(&patch, &would, &live)
                    } else {
                        objects::comparable(would) == objects::comparable(live)
                    };
                    (
                        same,
                        format!(
                            "{} {} the patch",
                            object_text(object),
                            if same { "has" } else { "lacks" }
                        ),
                    )
                } else {
                    let live = self.get_value(&k, ns, &object.name).await?;
                    let got = live.as_ref().and_then(|l| jsonpath(l, field));
                    (
                        got.as_deref() == Some(expected.as_str()),
                        format!(
                            "{} {field} reads {}",
                            object_text(object),
                            got.as_deref().unwrap_or("nothing")
                        ),
                    )
                }
            }
            Effect::Absent { object } => {
                self.absent(&object.kind, object.namespace.as_deref(), &object.name)
                    .await?
            }
            Effect::ManifestAbsent { file } => self.absent("Manifest", None, file).await?,
            Effect::CrdsAbsent { groups } => {
                self.absent("CustomResourceDefinition", None, &crd_pattern(groups))
                    .await?
            }
            Effect::ConditionCleared { node, condition } => {
                let n = self.node(node).await?;
                let set = KubeActions::condition_true(&n, condition);
                (
                    !set,
                    format!(
                        "node {node} {condition} is {}",
                        if set { "True" } else { "not True" }
                    ),
                )
            }
            Effect::TalosPatched {
                nodes,
                endpoints,
                file,
            } => self.talos_patched_on(nodes, endpoints, file).await?,
            Effect::OmniConfigPatch { patch_id, remove } => {
                let exists = self.omni_patch_exists(patch_id).await?;
                (
                    exists != *remove,
                    format!(
                        "Omni ConfigPatch {patch_id} {}",
                        if exists { "exists" } else { "does not exist" }
                    ),
                )
            }
            Effect::OmniTemplate {
                template,
                entry,
                remove,
            } => {
                let document = match &step.action {
                    Action::OmniTemplatePatch { document, .. } => document.clone(),
                    _ => String::new(),
                };
                let (listed, what) = self.template_in_place(template, &document, entry, *remove)?;
                if !listed {
                    (false, what)
                } else {
                    let (synced, how) = self.template_synced(template).await?;
                    (synced, format!("{what}; {how}"))
                }
            }
            Effect::Rebooted { node } => {
                let Some(before) = memo.get("boot_id").and_then(Value::as_str) else {
                    return Ok(Check::NotDone(format!(
                        "{node} has not been rebooted by this step yet"
                    )));
                };
                let n = self.node(node).await?;
                let now = nodes::boot_id(&n);
                (
                    now != before && nodes::is_ready(&n),
                    format!(
                        "node {node} boot ID {} and {}",
                        if now != before {
                            "changed"
                        } else {
                            "unchanged"
                        },
                        if nodes::is_ready(&n) {
                            "Ready"
                        } else {
                            "not Ready"
                        }
                    ),
                )
            }
            Effect::HelmRelease {
                release,
                namespace,
                values_sha256,
            } => {
                self.helm_in_place(release, namespace, values_sha256)
                    .await?
            }
            Effect::HelmAbsent { release, namespace } => {
                let exists = self.helm_release(release, namespace).await?.is_some();
                (
                    !exists,
                    format!(
                        "release {namespace}/{release} {}",
                        if exists { "exists" } else { "is gone" }
                    ),
                )
            }
            Effect::HelmRolledBack {
                release,
                namespace,
                revision_file,
            } => {
                self.helm_rolled_back(release, namespace, revision_file)
                    .await?
            }
            Effect::RolledOut { namespace, name } => self.rolled_out(namespace, name).await?,
            Effect::AgentRestarted {
                namespace,
                daemonset,
                node,
                ..
            } => match memo.get("old_pod").and_then(Value::as_str) {
                None => (
                    false,
                    format!(
                        "the {namespace}/{daemonset} pod on {node} has not been restarted by this step yet"
                    ),
                ),
                Some(old) => {
                    let old = Some(old).filter(|o| !o.is_empty());
                    self.daemon_ready(namespace, daemonset, node, old).await?
                }
            },
            Effect::Restarted {
                kind,
                namespace,
                name,
                token,
            } => {
                let k = self.kind(kind).await?;
                let live = self.get_value(&k, Some(namespace), name).await?;
                let now = live
                    .as_ref()
                    .and_then(|l| l.pointer("/spec/template/metadata/annotations"))
                    .and_then(|a| a.get(RESTART_ANNOTATION))
                    .and_then(Value::as_str)
                    .map(str::to_string);
                if now.as_deref() != Some(token.as_str()) {
                    (
                        false,
                        format!("{namespace}/{kind}/{name} has not been restarted with {token}"),
                    )
                } else {
                    self.rolled_out_kind(kind, namespace, name).await?
                }
            }
            Effect::Settings {
                namespace,
                configmap,
                settings,
                daemonset,
                selector,
            } => {
                let report = match &step.action {
                    Action::VerifySettings { report, .. } => report.clone(),
                    _ => None,
                };
                self.settings_in_place(
                    namespace,
                    configmap,
                    settings,
                    daemonset,
                    selector,
                    report.as_ref(),
                )
                .await?
            }
            Effect::JobComplete { namespace, name } => self.job_complete(namespace, name).await?,
            Effect::PodsRecreated { node } => {
                let Some(old) = memo.get("pods").and_then(Value::as_array) else {
                    return Ok(Check::NotDone(format!(
                        "the pods of {node} have not been recreated by this step yet"
                    )));
                };
                let old: BTreeSet<String> = old
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_string)
                    .collect();
                self.recreated(node, &old).await?
            }
            Effect::NodeCleaned {
                node,
                cni,
                include_kube_proxy,
                pod,
            } => {
                self.node_cleaned(node, cni, *include_kube_proxy, pod, timeout)
                    .await?
            }
            Effect::PodRan { node, pod } => match self.pods_ran.get(&step.id) {
                Some(transcript) => (
                    true,
                    format!(
                        "pod {}/{} on {node} exited 0 ({} lines of output in the journal)",
                        pod.namespace,
                        pod.name,
                        transcript.lines().count()
                    ),
                ),
                None => (
                    false,
                    format!(
                        "pod {}/{} has not run on {node} in this step yet",
                        pod.namespace, pod.name
                    ),
                ),
            },
            Effect::Verified { goal, probes } => {
                if memo.get("verify").is_none() && !self.pods_ran.contains_key(&step.id) {
                    // Verification runs after the step starts, never as "already done".
                    return Ok(Check::NotDone(format!("{goal}: not checked yet")));
                }
                // Once more, as the judge: DNS answers can still differ between the cluster's
                // DNS servers for a moment after they agreed (seen on the lab).
                self.settled_probes(probes, timeout, probes::RECHECK)
                    .await?
            }
            Effect::Gate { question } => (false, question.clone()),
        };
        Ok(if done {
            Check::Done(what)
        } else {
            Check::NotDone(what)
        })
    }

    async fn run_async(
        &mut self,
        step: &Step,
        ctx: &RunContext<'_>,
    ) -> Result<String, ActionError> {
        let id = step.id.as_str();
        // A step starts only while this run holds the lock (tools write without the client).
        self.confirm_lock().await?;
        match &step.action {
            Action::Backup { objects, file } => {
                let refs: Vec<String> = objects.iter().map(object_text).collect();
                self.backup(&refs, file).await
            }
            Action::Snapshot { dir, talos_nodes } => self.snapshot(dir, talos_nodes).await,
            Action::EtcdSnapshot { endpoint, file, .. } => {
                self.etcd_snapshot(endpoint, file, ctx.timeout).await
            }
            Action::Cordon { node, annotation } => self.cordon(node, annotation).await,
            Action::Uncordon { node, annotation } => self.uncordon(node, annotation).await,
            Action::Drain {
                node,
                eviction_timeout_seconds,
                bare_pods,
                bare_pods_backup,
            } => {
                let timeout = Duration::from_secs(u64::from((*eviction_timeout_seconds).max(1)));
                self.drain(
                    node,
                    id,
                    ctx,
                    timeout,
                    bare_pods,
                    bare_pods_backup.as_deref(),
                )
                .await
            }
            Action::LabelNode { node, key, value } => {
                self.set_label(node, key, value.as_deref()).await
            }
            Action::LabelAllNodes { key, value } => {
                self.set_label("all", key, value.as_deref()).await
            }
            Action::NodeSelector {
                namespace,
                daemonset,
                key,
                value,
            } => {
                let kind = self.kind("DaemonSet").await?;
                let patch = json!({"spec": {"template": {"spec": {"nodeSelector": {key.clone(): value.clone()}}}}});
                self.merge_patch(&kind, Some(namespace), daemonset, &patch, false)
                    .await?;
                Ok(format!(
                    "{namespace}/DaemonSet/{daemonset} nodeSelector {key}={}",
                    value.as_deref().unwrap_or("(removed)")
                ))
            }
            Action::Download { url, file } => {
                // curl writes into a private directory; the file is copied in from there.
                let scratch = files::Scratch::new()?;
                let tmp = scratch.path(file);
                let ran = tools::run_ok(
                    "curl",
                    &tools::args(&["-fsSL", "--output", &tmp.display().to_string(), url]),
                    &self.dir,
                    ctx.timeout,
                )
                .await?;
                self.put_from(file, &tmp, cniswap_exec::Access::Shared)?;
                Ok(ran.transcript())
            }
            Action::RenderManifest { file, render } => {
                let scratch = files::Scratch::new()?;
                let render = helm::checked_render(self, &scratch, render)?;
                let (tool, args) = helm::render_command(&render);
                let ran = tools::run_ok(tool, &args, &self.dir, ctx.timeout).await?;
                self.put(file, ran.stdout.as_bytes())?;
                Ok(format!(
                    "$ {}\nexit 0\nwrote {file} ({} bytes)",
                    ran.argv,
                    ran.stdout.len()
                ))
            }
            Action::ApplyManifest { file } => {
                let mut out = String::new();
                for doc in self.documents(file)? {
                    self.apply_object(&doc, false).await?;
                    out.push_str(&format!("applied {}\n", objects::describe(&doc)));
                }
                Ok(out)
            }
            Action::RestoreBackup { path, replace } => self.restore(path, *replace).await,
            Action::ScaleDeployment {
                namespace,
                name,
                replicas,
            } => {
                let api_: kube::Api<k8s_openapi::api::apps::v1::Deployment> =
                    kube::Api::namespaced(self.client.clone(), namespace);
                let what = format!("{namespace}/Deployment/{name}");
                api_.patch_scale(
                    name,
                    &kube::api::PatchParams::default(),
                    &kube::api::Patch::Merge(json!({"spec": {"replicas": replicas}})),
                )
                .await
                .map_err(|e| errors::api(&format!("PATCH {what}/scale"), &what, e))?;
                let deadline = std::time::Instant::now() + ctx.timeout;
                let mut wake = self.wake_on(api_.clone(), name);
                loop {
                    let effect = cniswap_exec::effect::of(&step.action);
                    if let Check::Done(what) = self.check_async(step, &effect, ctx.memo).await? {
                        return Ok(format!("scaled: {what}"));
                    }
                    if std::time::Instant::now() >= deadline {
                        return Err(errors::failed(format!(
                            "{what} did not settle at {replicas} replicas within {} s",
                            ctx.timeout.as_secs()
                        )));
                    }
                    wake.next(wake::FALLBACK).await;
                }
            }
            Action::PatchObject {
                object,
                patch_type,
                patch,
                backup,
                ..
            } => {
                let k = self.kind(&object.kind).await?;
                let ns = object.namespace.as_deref();
                let mut out = String::new();
                if let Some(file) = backup
                    && !self.holds(file)?
                {
                    out.push_str(&self.backup(&[object_text(object)], file).await?);
                    out.push('\n');
                }
                let patch: Value = serde_json::from_str(patch).map_err(|e| {
                    errors::failed(format!("the patch of step {id} is not JSON: {e}"))
                })?;
                self.patch_as(&k, ns, &object.name, *patch_type, &patch, false)
                    .await?;
                out.push_str(&format!(
                    "patched {} ({})",
                    object_text(object),
                    patch_type.as_str()
                ));
                Ok(out)
            }
            Action::DeleteObject { object, backup } => {
                self.delete_with_backup(
                    id,
                    &object.kind,
                    object.namespace.as_deref(),
                    &object.name,
                    backup,
                    ctx,
                )
                .await
            }
            Action::DeleteManifest { file, backup } => {
                self.delete_with_backup(id, "Manifest", None, file, backup, ctx)
                    .await
            }
            Action::DeleteCrds { groups, backup } => {
                self.delete_with_backup(
                    id,
                    "CustomResourceDefinition",
                    None,
                    &crd_pattern(groups),
                    backup,
                    ctx,
                )
                .await
            }
            Action::ClearNodeCondition { node, condition } => {
                self.clear_condition(node, condition).await
            }
            Action::TalosPatch {
                endpoints, file, ..
            } => self.talos_patch_on(endpoints, file, ctx.timeout).await,
            Action::OmniConfigPatch {
                patch_id,
                file,
                remove,
                backup,
                ..
            } => {
                self.omni_config_patch(patch_id, file, *remove, backup.as_deref(), ctx.timeout)
                    .await
            }
            Action::OmniTemplatePatch {
                template,
                document,
                entry,
                remove,
            } => {
                self.omni_template(template, document, entry, *remove, id, ctx.timeout)
                    .await
            }
            Action::RebootNode { node, address } => {
                let before = ctx
                    .memo
                    .get("boot_id")
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string();
                if !self.talos {
                    return Err(ActionError::blocked(
                        Failure::new(format!(
                            "node {node} must be rebooted, and cniswap reboots only Talos nodes itself"
                        ))
                        .object(format!("node/{node}"))
                        .next(format!(
                            "reboot {node} (for example `ssh {address} sudo systemctl reboot`), then run `cniswap apply` again: it sees the new boot ID and goes on"
                        )),
                    ));
                }
                let mut out = self.talos_reboot(address, ctx.timeout).await?;
                out.push_str(&self.await_reboot(node, &before, ctx.timeout).await?);
                Ok(out)
            }
            Action::HelmUpgrade {
                release,
                namespace,
                repo,
                chart,
                version,
                values,
                values_sha256,
                revision_backup,
            } => {
                self.helm_upgrade(
                    release,
                    namespace,
                    repo,
                    chart,
                    version,
                    values,
                    values_sha256,
                    revision_backup.as_deref(),
                    ctx.timeout,
                )
                .await
            }
            Action::HelmUninstall {
                release,
                namespace,
                backup,
            } => {
                self.helm_uninstall(release, namespace, backup, ctx.timeout)
                    .await
            }
            Action::HelmRollback {
                release,
                namespace,
                revision_file,
            } => {
                self.helm_rollback(release, namespace, revision_file, ctx.timeout)
                    .await
            }
            Action::WaitDaemonSetReady { namespace, name } => {
                self.await_rollout(namespace, name, ctx.timeout).await
            }
            Action::RestartAgent {
                namespace,
                daemonset,
                node,
                ..
            } => {
                let old = ctx
                    .memo
                    .get("old_pod")
                    .and_then(Value::as_str)
                    .filter(|o| !o.is_empty());
                self.restart_daemon_pod(namespace, daemonset, node, old, ctx.timeout)
                    .await
            }
            Action::RolloutRestart {
                kind,
                namespace,
                name,
                token,
            } => {
                let k = self.kind(kind).await?;
                let patch = json!({"spec": {"template": {"metadata": {"annotations": {RESTART_ANNOTATION: token}}}}});
                self.merge_patch(&k, Some(namespace), name, &patch, false)
                    .await?;
                let deadline = std::time::Instant::now() + ctx.timeout;
                loop {
                    let (done, what) = self.rolled_out_kind(kind, namespace, name).await?;
                    if done {
                        return Ok(format!("restarted: {what}"));
                    }
                    if std::time::Instant::now() >= deadline {
                        return Err(errors::failed(format!(
                            "{what} after {} s",
                            ctx.timeout.as_secs()
                        )));
                    }
                    self.pause(self.poll).await;
                }
            }
            Action::VerifySettings { .. } => Ok("checked below".into()),
            Action::WaitJob {
                namespace,
                name,
                switches_nodes: None,
            } => self.await_job(namespace, name, ctx.timeout).await,
            Action::WaitJob {
                namespace,
                name,
                switches_nodes: Some(label),
            } => {
                self.await_job_marking_nodes(namespace, name, label, &step.id, ctx.timeout)
                    .await
            }
            Action::RecreatePods { node } => {
                let old: BTreeSet<String> = ctx
                    .memo
                    .get("pods")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(Value::as_str)
                            .map(str::to_string)
                            .collect()
                    })
                    .unwrap_or_default();
                self.recreate_pods(node, &old, id, ctx).await
            }
            Action::NodeClean { node, pod, .. }
            | Action::NodeRestore { node, pod, .. }
            | Action::NodeFiles { node, pod, .. }
            | Action::NodeService { node, pod, .. } => {
                let transcript = self.run_pod_ok(node, pod, ctx.timeout).await?;
                self.pods_ran.insert(step.id.clone(), transcript.clone());
                Ok(transcript)
            }
            Action::Verify { probes, .. } => {
                // A state another controller brings about (an object gone, a namespace
                // emptied, agents rolled out) is waited for until the step's timeout; the
                // probes then run as the step's effect check, right after this.
                let out = self.await_states(probes, ctx.timeout).await?;
                // Endpoints and DNS follow recreated pods a few seconds late (seen on the lab:
                // a headless name still answered a deleted pod's address): the network probes
                // get a short while to pass before the check judges them.
                let (_, what) = self
                    .settled_probes(probes, ctx.timeout, ctx.timeout.min(probes::SETTLE))
                    .await?;
                self.pods_ran.insert(step.id.clone(), String::new());
                Ok(format!("{out}; {what}"))
            }
            Action::ManualGate { .. } => {
                Err(errors::failed("gates are decided by the executor, not run"))
            }
        }
    }

    async fn fingerprint_async(&self) -> Result<Option<Fingerprint>, ActionError> {
        let snapshot = cniswap_kube::read_cluster(&self.connection, &mut |_, _| {})
            .await
            .map_err(crate::errors::read_error)?;
        let facts = cniswap_facts::detect(&snapshot);
        Ok(Some(Fingerprint::from_facts(&facts)))
    }
}

impl Actions for KubeActions {
    fn preflight(&mut self, steps: &[&Step]) -> Result<(), Vec<Failure>> {
        let mut needed: Vec<(&'static str, &str)> = Vec::new();
        for step in steps {
            if let Some(tool) = self.tool_for(&step.action)
                && !needed.iter().any(|(t, _)| *t == tool)
            {
                needed.push((tool, &step.id));
            }
        }
        let missing: Vec<Failure> = needed
            .into_iter()
            .filter(|(tool, _)| tools::find(tool).is_none())
            .map(|(tool, step)| {
                Failure::new(format!("{tool} is not on PATH, and step {step} runs it"))
                    .object(format!("step {step}"))
                    .next(format!(
                        "install {tool} (and its credentials) before starting; nothing was changed"
                    ))
            })
            .collect();
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing)
        }
    }

    fn prepare(&mut self, step: &Step) -> Result<Memo, ActionError> {
        let rt = self.rt.clone();
        rt.block_on(self.prepare_async(step))
    }

    fn check(&mut self, step: &Step, effect: &Effect, memo: &Memo) -> Result<Check, ActionError> {
        let rt = self.rt.clone();
        rt.block_on(self.check_async(step, effect, memo))
    }

    fn run(&mut self, step: &Step, ctx: &RunContext) -> Result<String, ActionError> {
        let rt = self.rt.clone();
        rt.block_on(self.run_async(step, ctx))
    }

    fn mark_node(&mut self, node: &str, phase: &str, mark: NodeMark) -> Result<(), ActionError> {
        self.rt.block_on(self.mark(node, phase, mark))
    }

    fn fingerprint(&mut self) -> Result<Option<Fingerprint>, ActionError> {
        self.rt.block_on(self.fingerprint_async())
    }

    fn mirror(&mut self, record: &Record) {
        let rt = self.rt.clone();
        if let Err(e) = rt.block_on(self.mirror_record(record))
            && !self.mirror_failed
        {
            self.mirror_failed = true;
            self.warnings.push(format!(
                "the journal's mirror in the cluster could not be written ({}); the local journal has everything",
                e.failure().message
            ));
        }
    }

    fn retire_backups(&mut self, files: &[String]) -> Result<Vec<(String, String)>, ActionError> {
        let mut retired = Vec::new();
        for file in files {
            if let Some(to) = cniswap_exec::retire::retire(&self.plan_dir, file)
                .map_err(crate::files::file_failed)?
            {
                retired.push((file.clone(), to));
            }
        }
        Ok(retired)
    }

    fn describe(&self, step: &Step) -> Vec<String> {
        describe(
            step,
            self.agent_image.as_deref(),
            &self.plan_agent_image,
            self.talos,
        )
    }
}

/// The CRD name pattern of these API groups (as plan.yaml's check builds it).
pub fn crd_pattern(groups: &[String]) -> String {
    let alternatives: Vec<String> = groups
        .iter()
        .map(|g| format!("\\.{}", regex::escape(g)))
        .collect();
    format!("({})$", alternatives.join("|"))
}

/// Reads a simple jsonpath (`.a.b.c`, or `{.a.b}`) from an object, as text.
pub fn jsonpath(object: &Value, path: &str) -> Option<String> {
    let path = path.trim().trim_start_matches('{').trim_end_matches('}');
    let mut current = object;
    for part in path
        .trim_start_matches('.')
        .split('.')
        .filter(|p| !p.is_empty())
    {
        current = current.get(part)?;
    }
    Some(match current {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// What a step would do, request by request (for --dry-run).
pub fn describe(
    step: &Step,
    agent_image: Option<&str>,
    plan_agent_image: &str,
    talos: bool,
) -> Vec<String> {
    let t = Duration::from_secs(u64::from(step.timeout_seconds));
    let image = |pod: &cniswap_plan::NodePod| match agent_image {
        Some(i) if pod.image == plan_agent_image => i.to_string(),
        _ => pod.image.clone(),
    };
    match &step.action {
        Action::Backup { objects, file } => objects
            .iter()
            .map(|o| format!("GET {}", object_text(o)))
            .chain([format!(
                "write {file} (atomically; kept if it already exists)"
            )])
            .collect(),
        Action::Snapshot { dir, talos_nodes } if talos_nodes.is_empty() => vec![format!(
            "read the cluster (list requests) into {dir}, written whole"
        )],
        Action::Snapshot { dir, talos_nodes } => vec![format!(
            "read the cluster (list requests) and the machine configs of {} (talosctl get machineconfig, secrets redacted) into {dir}, written whole",
            talos_nodes.join(", ")
        )],
        Action::EtcdSnapshot { endpoint, file, .. } => vec![
            format!(
                "talosctl {}",
                etcd_snapshot_args(endpoint, &format!("{file}.partial")).join(" ")
            ),
            format!("rename into {file}"),
        ],
        Action::Cordon { node, annotation } => vec![format!(
            "PATCH node/{node}: annotation {annotation}=<cordoned before?>, spec.unschedulable=true"
        )],
        Action::Uncordon { node, annotation } => vec![format!(
            "PATCH node/{node}: remove {annotation}; spec.unschedulable=null unless it said true"
        )],
        Action::Drain {
            node,
            eviction_timeout_seconds,
            bare_pods,
            bare_pods_backup,
        } => {
            let mut out = vec![format!("LIST pods with spec.nodeName={node}")];
            if !bare_pods.is_empty() {
                out.push(format!(
                    "save {} to {} and DELETE them (no controller)",
                    bare_pods.join(", "),
                    bare_pods_backup.as_deref().unwrap_or("(no backup)")
                ));
            }
            out.push(format!(
                "POST pods/NAME/eviction for each pod but DaemonSet, static and finished pods, until none is left or {eviction_timeout_seconds} s pass"
            ));
            out
        }
        Action::LabelNode { node, key, value } => vec![match value {
            Some(v) => format!("PATCH node/{node} label {key}={v}"),
            None => format!("PATCH node/{node} remove label {key}"),
        }],
        Action::LabelAllNodes { key, value } => vec![match value {
            Some(v) => format!("PATCH every node that lacks label {key}={v}"),
            None => format!("PATCH every node with label {key}: remove it"),
        }],
        Action::NodeSelector {
            namespace,
            daemonset,
            key,
            value,
        } => vec![format!(
            "PATCH {namespace}/DaemonSet/{daemonset} spec.template.spec.nodeSelector {key}={}",
            value.as_deref().unwrap_or("null")
        )],
        Action::Download { url, file } => vec![format!(
            "curl -fsSL --output {file}.partial {url}; rename into {file}"
        )],
        Action::RenderManifest { file, render } => {
            let (tool, args) = helm::render_command(render);
            vec![format!("{tool} {} > {file}", args.join(" "))]
        }
        Action::ApplyManifest { file } => vec![format!(
            "server-side apply (field manager cniswap) of every object in {file}"
        )],
        Action::RestoreBackup { path, replace } => vec![format!(
            "{} every object saved in {path}",
            if *replace {
                "PUT (replace whole)"
            } else {
                "server-side apply"
            }
        )],
        Action::ScaleDeployment {
            namespace,
            name,
            replicas,
        } => vec![format!(
            "PATCH {namespace}/Deployment/{name}/scale spec.replicas={replicas}, wait until settled"
        )],
        Action::PatchObject {
            object,
            patch_type,
            patch,
            backup,
            ..
        } => {
            let mut out = Vec::new();
            if let Some(b) = backup {
                out.push(format!(
                    "GET {} and write {b} (kept if it exists)",
                    object_text(object)
                ));
            }
            out.push(format!(
                "PATCH {} ({}) {patch}",
                object_text(object),
                patch_type.as_str()
            ));
            out
        }
        Action::DeleteObject { object, backup } => vec![
            format!("write the backup {backup} (atomically; kept if it already exists)"),
            format!("DELETE {}, wait until gone", object_text(object)),
        ],
        Action::DeleteManifest { file, backup } => vec![
            format!("save the objects of {file} to {backup}"),
            format!("DELETE every object of {file}, wait until gone"),
        ],
        Action::DeleteCrds { groups, backup } => vec![
            format!(
                "save each CRD of {} and all its objects into {backup}",
                groups.join(", ")
            ),
            "DELETE those CRDs, wait until gone".to_string(),
        ],
        Action::ClearNodeCondition { node, condition } => vec![format!(
            "PATCH node/{node}/status condition {condition}=False"
        )],
        Action::TalosPatch {
            endpoints, file, ..
        } => vec![format!(
            "talosctl {}",
            talos::patch_args(endpoints, file).join(" ")
        )],
        Action::OmniConfigPatch {
            patch_id,
            file,
            remove: false,
            ..
        } => vec![format!(
            "omnictl apply --file {file} (ConfigPatch {patch_id})"
        )],
        Action::OmniConfigPatch {
            patch_id, backup, ..
        } => vec![
            format!(
                "omnictl get configpatches.omni.sidero.dev {patch_id} --output yaml > {}",
                backup.as_deref().unwrap_or("(no backup)")
            ),
            format!("omnictl delete configpatches.omni.sidero.dev {patch_id}"),
        ],
        Action::OmniTemplatePatch {
            template,
            document,
            entry,
            remove,
        } => vec![
            format!(
                "stop unless {template} ({document}) {} the entries of {entry}",
                if *remove { "no longer lists" } else { "lists" }
            ),
            format!(
                "omnictl cluster template validate --file {template}; omnictl cluster template sync --file {template}"
            ),
        ],
        Action::RebootNode { node, address } if talos => vec![
            format!("talosctl {}", talos::reboot_args(address).join(" ")),
            format!(
                "watch node/{node} until its boot ID changes and it is Ready ({} s)",
                step.timeout_seconds
            ),
        ],
        Action::RebootNode { node, .. } => vec![format!(
            "stop and ask for {node} to be rebooted (not a Talos node); then wait for its new boot ID"
        )],
        Action::HelmUpgrade {
            release,
            namespace,
            repo,
            chart,
            version,
            values,
            values_sha256,
            revision_backup,
        } => {
            let mut out = Vec::new();
            if let Some(r) = revision_backup {
                out.push(format!(
                    "write the release's revision before to {r} (kept if it exists)"
                ));
            }
            out.push(format!(
                "helm {}",
                helm::upgrade_args(
                    release,
                    namespace,
                    repo,
                    chart,
                    version,
                    values,
                    values_sha256,
                    t
                )
                .join(" ")
            ));
            out
        }
        Action::HelmUninstall {
            release,
            namespace,
            backup,
        } => vec![
            format!("helm get all {release} --namespace {namespace} > {backup}"),
            format!("helm uninstall {release} --namespace {namespace} --wait"),
        ],
        Action::HelmRollback {
            release,
            namespace,
            revision_file,
        } => vec![format!(
            "helm rollback {release} <revision in {revision_file}> --namespace {namespace} --wait (uninstall when it is empty)"
        )],
        Action::WaitDaemonSetReady { namespace, name } => {
            vec![format!(
                "wait until {namespace}/DaemonSet/{name} is rolled out ({} s)",
                step.timeout_seconds
            )]
        }
        Action::RestartAgent {
            namespace,
            daemonset,
            node,
            ..
        } => vec![
            format!("DELETE the {namespace}/{daemonset} pod on {node}"),
            format!(
                "wait until its replacement is Ready ({} s)",
                step.timeout_seconds
            ),
        ],
        Action::RolloutRestart {
            kind,
            namespace,
            name,
            token,
        } => vec![format!(
            "PATCH {namespace}/{kind}/{name} pod template annotation {RESTART_ANNOTATION}={token}, wait for the rollout"
        )],
        Action::VerifySettings {
            namespace,
            configmap,
            ..
        } => vec![format!(
            "read {namespace}/ConfigMap/{configmap} (and what each agent pod reports)"
        )],
        Action::WaitJob {
            namespace, name, ..
        } => {
            vec![format!("wait until {namespace}/Job/{name} completes")]
        }
        Action::RecreatePods { node } => vec![format!(
            "DELETE every pod-network pod on {node} (by UID), wait until gone"
        )],
        Action::NodeClean { node, pod, .. }
        | Action::NodeRestore { node, pod, .. }
        | Action::NodeFiles { node, pod, .. }
        | Action::NodeService { node, pod, .. } => vec![format!(
            "run pod {}/{} on {node} (privileged, host / at /host, image {}): {}",
            pod.namespace,
            pod.name,
            image(pod),
            pod.command.join(" ")
        )],
        Action::Verify { goal, probes } => {
            vec![format!("check: {goal} ({} probe(s))", probes.len())]
        }
        Action::ManualGate { question, .. } => {
            vec![format!("stop for a person to answer: {question}")]
        }
    }
}
