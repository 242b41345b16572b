//! An in-memory cluster implementing [`Actions`], for the state-machine tests and the
//! executor's own benchmark. It models what the steps touch (nodes, pods with owners and
//! budgets, objects, backups, Helm releases) and logs every change it makes, so tests can
//! prove that no effect happened twice. It is a test double, not a simulator of Kubernetes.

use crate::actions::{ActionError, Actions, Check, RunContext};
use crate::drift::Fingerprint;
use crate::effect::Effect;
use crate::record::{Failure, Memo, NodeMark, Record};
use cniswap_plan::{Action, Step};
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct MemNode {
    pub unschedulable: bool,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub boot_id: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MemPod {
    pub node: String,
    pub uid: u64,
    /// `DaemonSet`, `ReplicaSet`, or empty for a bare pod.
    pub owner: String,
    /// A PodDisruptionBudget that allows no disruption of this pod.
    pub pdb: Option<String>,
    pub created: u64,
}

/// State that tests compare between runs (everything but counters and logs).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct World {
    pub nodes: BTreeMap<String, MemNode>,
    /// `namespace/name` -> pod.
    pub pods: BTreeMap<String, MemPod>,
    /// `namespace/kind/name` (namespace empty for cluster objects) -> content.
    pub objects: BTreeMap<String, String>,
    /// Files written into the plan directory (backups).
    pub files: BTreeMap<String, String>,
    /// release -> (chart, values)
    pub helm: BTreeMap<String, (String, String)>,
    /// DaemonSet `namespace/name` -> nodeSelector.
    pub selectors: BTreeMap<String, BTreeMap<String, String>>,
    pub replicas: BTreeMap<String, u32>,
}

#[derive(Debug, Default)]
pub struct Memory {
    pub world: World,
    /// Every change, in order (`evict ns/pod uid`, `delete ns/kind/name`, `write file`).
    pub log: Vec<String>,
    /// The next N calls to `run` fail with a transient error (an API server restart).
    pub transient: u32,
    /// Artifacts the plan applies: file -> objects (`ns/kind/name` -> content).
    pub manifests: BTreeMap<String, BTreeMap<String, String>>,
    pub fingerprint: Option<Fingerprint>,
    /// Tools present (for preflight); `None` means all.
    pub tools: Option<BTreeSet<String>>,
    /// Backup file -> the object a delete saved there (what a restore of it puts back).
    pub backed_up: BTreeMap<String, String>,
    clock: u64,
    uid: u64,
}

fn failed(message: impl Into<String>) -> ActionError {
    ActionError::failed(Failure::new(message))
}

impl Memory {
    pub fn new(world: World) -> Self {
        Memory {
            world,
            ..Memory::default()
        }
    }

    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    pub fn add_pod(&mut self, name: &str, node: &str, owner: &str, pdb: Option<&str>) {
        self.uid += 1;
        let created = self.tick();
        self.world.pods.insert(
            name.to_string(),
            MemPod {
                node: node.into(),
                uid: self.uid,
                owner: owner.into(),
                pdb: pdb.map(str::to_string),
                created,
            },
        );
    }

    fn node(&mut self, name: &str) -> Result<&mut MemNode, ActionError> {
        self.world
            .nodes
            .get_mut(name)
            .ok_or_else(|| failed(format!("node {name} not found")))
    }

    /// Moves a controller's pod to the first schedulable node (a new pod, new UID).
    fn reschedule(&mut self, name: &str) {
        let Some(pod) = self.world.pods.remove(name) else {
            return;
        };
        if pod.owner.is_empty() || pod.owner == "DaemonSet" {
            return;
        }
        if let Some(target) = self
            .world
            .nodes
            .iter()
            .find(|(_, n)| !n.unschedulable)
            .map(|(k, _)| k.clone())
        {
            let base = name.rsplit_once('-').map_or(name, |(b, _)| b).to_string();
            self.uid += 1;
            let created = self.tick();
            self.world.pods.insert(
                format!("{base}-{}", self.uid),
                MemPod {
                    node: target,
                    uid: self.uid,
                    owner: pod.owner,
                    pdb: pod.pdb,
                    created,
                },
            );
        }
    }

    fn pods_on(&self, node: &str) -> Vec<(String, MemPod)> {
        self.world
            .pods
            .iter()
            .filter(|(_, p)| p.node == node)
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect()
    }

    fn check_effect(&self, effect: &Effect, memo: &Memo) -> Result<Check, ActionError> {
        let yes = |done: bool, what: String| {
            Ok(if done {
                Check::Done(what)
            } else {
                Check::NotDone(what)
            })
        };
        match effect {
            Effect::File { path, non_empty } => yes(
                self.world
                    .files
                    .get(path)
                    .is_some_and(|f| !*non_empty || !f.is_empty()),
                format!("{path} written"),
            ),
            Effect::Cordoned { node, annotation } => yes(
                self.world
                    .nodes
                    .get(node)
                    .is_some_and(|n| n.unschedulable && n.annotations.contains_key(annotation)),
                format!("{node} unschedulable"),
            ),
            Effect::Uncordoned { node, annotation } => yes(
                self.world
                    .nodes
                    .get(node)
                    .is_some_and(|n| !n.annotations.contains_key(annotation)),
                format!("{node} without {annotation}"),
            ),
            Effect::Drained { node } => {
                let left: Vec<String> = self
                    .pods_on(node)
                    .into_iter()
                    .filter(|(_, p)| p.owner != "DaemonSet")
                    .map(|(k, _)| k)
                    .collect();
                yes(left.is_empty(), format!("pods left on {node}: {left:?}"))
            }
            Effect::NodeLabel { node, key, value } => {
                let nodes: Vec<&MemNode> = match node {
                    None => self.world.nodes.values().collect(),
                    Some(node) => self.world.nodes.get(node).into_iter().collect(),
                };
                yes(
                    !nodes.is_empty() && nodes.iter().all(|n| n.labels.get(key) == value.as_ref()),
                    format!("label {key}"),
                )
            }
            Effect::NodeSelector {
                namespace,
                daemonset,
                key,
                value,
            } => yes(
                self.world
                    .selectors
                    .get(&format!("{namespace}/{daemonset}"))
                    .and_then(|s| s.get(key))
                    == value.as_ref(),
                format!("selector {key}"),
            ),
            Effect::Applied { file } => {
                let objects = self
                    .manifests
                    .get(file)
                    .ok_or_else(|| failed(format!("{file}: no such artifact")))?;
                yes(
                    objects
                        .iter()
                        .all(|(k, v)| self.world.objects.get(k) == Some(v)),
                    format!("objects of {file}"),
                )
            }
            Effect::Absent { object } => {
                let key = crate::effect::object_text(object);
                yes(
                    !self.world.objects.contains_key(&key),
                    format!("{key} gone"),
                )
            }
            Effect::Replicas {
                namespace,
                name,
                replicas,
            } => yes(
                self.world.replicas.get(&format!("{namespace}/{name}")) == Some(replicas),
                format!("{namespace}/{name} replicas"),
            ),
            Effect::HelmRelease {
                release,
                values_sha256,
                ..
            } => yes(
                self.world.helm.get(release).map(|(_, v)| v) == Some(values_sha256),
                format!("release {release}"),
            ),
            Effect::HelmAbsent { release, .. } => yes(
                !self.world.helm.contains_key(release),
                format!("no release {release}"),
            ),
            Effect::AgentRestarted { node, .. } => {
                let since = memo
                    .get("since")
                    .and_then(|v| v.as_u64())
                    .unwrap_or(u64::MAX);
                yes(
                    self.pods_on(node)
                        .iter()
                        .any(|(_, p)| p.owner == "DaemonSet" && p.created > since),
                    format!("new agent pod on {node}"),
                )
            }
            Effect::RolledOut { .. } => Ok(Check::Done("rolled out".into())),
            Effect::PodsRecreated { node } => {
                let Some(uids) = memo.get("pods").and_then(|v| v.as_array()) else {
                    return Ok(Check::NotDone("not started".into()));
                };
                let old: BTreeSet<u64> = uids.iter().filter_map(|v| v.as_u64()).collect();
                yes(
                    !self.world.pods.values().any(|p| old.contains(&p.uid)),
                    format!("old pods of {node} gone"),
                )
            }
            Effect::Rebooted { node } => {
                let before = memo.get("boot").and_then(|v| v.as_u64());
                let now = self.world.nodes.get(node).map(|n| u64::from(n.boot_id));
                yes(before.is_some() && now != before, format!("{node} boot id"))
            }
            Effect::Verified { .. } => Ok(Check::Done("every probe passes (in memory)".into())),
            Effect::Restored { path, .. } => {
                let restored = match (self.backed_up.get(path), self.world.files.get(path)) {
                    (Some(key), Some(text)) => self.world.objects.get(key) == Some(text),
                    _ => true,
                };
                yes(restored, format!("{path} put back"))
            }
            other => Err(failed(format!("not modelled: {}", other.describe()))),
        }
    }

    fn fail_transiently(&mut self) -> Result<(), ActionError> {
        if self.transient > 0 {
            self.transient -= 1;
            return Err(ActionError::transient(Failure::new(
                "connection refused (API server restarting)",
            )));
        }
        Ok(())
    }

    fn label(
        &mut self,
        names: &[String],
        key: &str,
        value: Option<&str>,
    ) -> Result<(), ActionError> {
        for name in names {
            let n = self.node(name)?;
            match value {
                Some(v) => {
                    n.labels.insert(key.into(), v.into());
                }
                None => {
                    n.labels.remove(key);
                }
            }
        }
        self.log.push(format!("label {names:?} {key} {value:?}"));
        Ok(())
    }
}

impl Actions for Memory {
    fn preflight(&mut self, steps: &[&Step]) -> Result<(), Vec<Failure>> {
        let Some(tools) = &self.tools else {
            return Ok(());
        };
        let mut missing = Vec::new();
        for step in steps {
            let tool = match step.action {
                Action::HelmUpgrade { .. }
                | Action::HelmUninstall { .. }
                | Action::HelmRollback { .. } => "helm",
                Action::TalosPatch { .. } => "talosctl",
                Action::OmniConfigPatch { .. } | Action::OmniTemplatePatch { .. } => "omnictl",
                _ => continue,
            };
            if !tools.contains(tool) {
                missing.push(
                    Failure::new(format!(
                        "{tool} is not installed; step {} needs it",
                        step.id
                    ))
                    .next(format!("install {tool}")),
                );
            }
        }
        missing.dedup_by(|a, b| a.message.split(';').next() == b.message.split(';').next());
        if missing.is_empty() {
            Ok(())
        } else {
            Err(missing)
        }
    }

    fn prepare(&mut self, step: &Step) -> Result<Memo, ActionError> {
        let mut memo = Memo::new();
        match &step.action {
            Action::RecreatePods { node } => {
                let uids: Vec<u64> = self
                    .pods_on(node)
                    .into_iter()
                    .filter(|(_, p)| p.owner != "DaemonSet")
                    .map(|(_, p)| p.uid)
                    .collect();
                memo.insert("pods".into(), uids.into());
            }
            Action::RebootNode { node, .. } => {
                let boot = self.node(node)?.boot_id;
                memo.insert("boot".into(), boot.into());
            }
            Action::RestartAgent { .. } => {
                memo.insert("since".into(), self.clock.into());
            }
            _ => {}
        }
        Ok(memo)
    }

    fn check(&mut self, _step: &Step, effect: &Effect, memo: &Memo) -> Result<Check, ActionError> {
        self.check_effect(effect, memo)
    }

    fn run(&mut self, step: &Step, ctx: &RunContext) -> Result<String, ActionError> {
        self.fail_transiently()?;
        match &step.action {
            Action::Backup { objects, file } => {
                let mut text = String::new();
                for o in objects {
                    let o = crate::effect::object_text(o);
                    text.push_str(&format!(
                        "{o}: {}\n",
                        self.world.objects.get(&o).cloned().unwrap_or_default()
                    ));
                }
                self.world.files.insert(file.clone(), text);
                self.log.push(format!("write {file}"));
            }
            Action::Cordon { node, annotation } => {
                let n = self.node(node)?;
                if !n.annotations.contains_key(annotation) {
                    let before = n.unschedulable.to_string();
                    n.annotations.insert(annotation.clone(), before);
                }
                if !n.unschedulable {
                    n.unschedulable = true;
                    self.log.push(format!("cordon {node}"));
                }
            }
            Action::Uncordon { node, annotation } => {
                let n = self.node(node)?;
                if let Some(before) = n.annotations.remove(annotation)
                    && before != "true"
                    && n.unschedulable
                {
                    n.unschedulable = false;
                    self.log.push(format!("uncordon {node}"));
                }
            }
            Action::Drain { node, .. } => {
                let pods: Vec<(String, MemPod)> = self
                    .pods_on(node)
                    .into_iter()
                    .filter(|(_, p)| p.owner != "DaemonSet")
                    .collect();
                let mut blocked = Vec::new();
                for (i, (name, pod)) in pods.iter().enumerate() {
                    if let Some(pdb) = &pod.pdb
                        && !ctx.approved
                    {
                        blocked.push(format!("{name} (PodDisruptionBudget {pdb})"));
                        continue;
                    }
                    if pod.owner.is_empty() && !ctx.approved {
                        blocked.push(format!("{name} (no controller)"));
                        continue;
                    }
                    self.log.push(format!("evict {name} {}", pod.uid));
                    self.reschedule(name);
                    if i == 0 {
                        ctx.crash.point(&step.id, "mid");
                    }
                }
                if !blocked.is_empty() {
                    return Err(ActionError::blocked(
                        Failure::new(format!("eviction refused for {}", blocked.join(", ")))
                            .object(format!("node/{node}")),
                    ));
                }
            }
            Action::LabelNode { node, key, value } => {
                self.label(std::slice::from_ref(node), key, value.as_deref())?;
            }
            Action::LabelAllNodes { key, value } => {
                let names: Vec<String> = self.world.nodes.keys().cloned().collect();
                self.label(&names, key, value.as_deref())?;
            }
            Action::NodeSelector {
                namespace,
                daemonset,
                key,
                value,
            } => {
                let sel = self
                    .world
                    .selectors
                    .entry(format!("{namespace}/{daemonset}"))
                    .or_default();
                match value {
                    Some(v) => {
                        sel.insert(key.clone(), v.clone());
                    }
                    None => {
                        sel.remove(key);
                    }
                }
            }
            Action::ApplyManifest { file } => {
                let objects = self
                    .manifests
                    .get(file)
                    .cloned()
                    .ok_or_else(|| failed(format!("{file}: no such artifact")))?;
                for (k, v) in objects {
                    self.world.objects.insert(k, v);
                }
                self.log.push(format!("apply {file}"));
            }
            Action::DeleteObject { object, backup } => {
                let key = crate::effect::object_text(object);
                if let Some(content) = self.world.objects.get(&key).cloned() {
                    if !self.world.files.contains_key(backup) {
                        self.world.files.insert(backup.clone(), content);
                        self.backed_up.insert(backup.clone(), key.clone());
                        self.log.push(format!("write {backup}"));
                    }
                    ctx.crash.point(&step.id, "mid");
                    self.world.objects.remove(&key);
                    self.log.push(format!("delete {key}"));
                }
            }
            Action::RestoreBackup { path, .. } => {
                if let Some(key) = self.backed_up.get(path).cloned()
                    && let Some(text) = self.world.files.get(path).cloned()
                {
                    self.world.objects.insert(key.clone(), text);
                    self.log.push(format!("restore {key} from {path}"));
                }
            }
            Action::ScaleDeployment {
                namespace,
                name,
                replicas,
            } => {
                self.world
                    .replicas
                    .insert(format!("{namespace}/{name}"), *replicas);
            }
            Action::HelmUpgrade {
                release,
                chart,
                values_sha256,
                ..
            } => {
                self.world
                    .helm
                    .insert(release.clone(), (chart.clone(), values_sha256.clone()));
                self.log.push(format!("helm upgrade {release}"));
            }
            Action::HelmUninstall { release, .. } => {
                self.world.helm.remove(release);
                self.log.push(format!("helm uninstall {release}"));
            }
            Action::RestartAgent {
                namespace,
                daemonset,
                node,
                ..
            } => {
                let since = ctx.memo.get("since").and_then(|v| v.as_u64()).unwrap_or(0);
                let old: Vec<(String, MemPod)> = self
                    .pods_on(node)
                    .into_iter()
                    .filter(|(_, p)| p.owner == "DaemonSet" && p.created <= since)
                    .collect();
                for (k, _) in old {
                    self.world.pods.remove(&k);
                    self.log.push(format!("restart {k}"));
                }
                if !self
                    .pods_on(node)
                    .iter()
                    .any(|(_, p)| p.owner == "DaemonSet" && p.created > since)
                {
                    self.add_pod(
                        &format!("{namespace}/{daemonset}-{node}"),
                        node,
                        "DaemonSet",
                        None,
                    );
                }
            }
            Action::WaitDaemonSetReady { .. } | Action::Verify { .. } => {}
            Action::RecreatePods { .. } => {
                let old: BTreeSet<u64> = ctx
                    .memo
                    .get("pods")
                    .and_then(|v| v.as_array())
                    .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
                    .unwrap_or_default();
                let names: Vec<String> = self
                    .world
                    .pods
                    .iter()
                    .filter(|(_, p)| old.contains(&p.uid))
                    .map(|(k, _)| k.clone())
                    .collect();
                for (i, name) in names.iter().enumerate() {
                    let uid = self.world.pods.get(name).map(|p| p.uid).unwrap_or(0);
                    self.log.push(format!("delete pod {name} {uid}"));
                    // Recreated in place: same node, new UID.
                    if let Some(mut pod) = self.world.pods.remove(name) {
                        self.uid += 1;
                        pod.uid = self.uid;
                        pod.created = self.tick();
                        if !pod.owner.is_empty() {
                            let base = name.rsplit_once('-').map_or(name.as_str(), |(b, _)| b);
                            self.world.pods.insert(format!("{base}-{}", self.uid), pod);
                        }
                    }
                    if i == 0 {
                        ctx.crash.point(&step.id, "mid");
                    }
                }
            }
            Action::RebootNode { node, .. } => {
                let before = ctx.memo.get("boot").and_then(|v| v.as_u64());
                let n = self.node(node)?;
                if before == Some(u64::from(n.boot_id)) {
                    n.boot_id += 1;
                    self.log.push(format!("reboot {node}"));
                }
            }
            other => return Err(failed(format!("not modelled: {other:?}"))),
        }
        Ok(String::new())
    }

    fn mark_node(&mut self, node: &str, phase: &str, mark: NodeMark) -> Result<(), ActionError> {
        let n = self.node(node)?;
        match mark {
            NodeMark::InProgress => {
                n.annotations
                    .insert(crate::NODE_IN_PROGRESS.into(), phase.into());
            }
            NodeMark::Done => {
                n.annotations.remove(crate::NODE_IN_PROGRESS);
                n.annotations.insert(crate::NODE_DONE.into(), phase.into());
            }
            NodeMark::Cleared => {
                n.annotations.remove(crate::NODE_IN_PROGRESS);
                n.annotations.remove(crate::NODE_DONE);
            }
        }
        Ok(())
    }

    fn fingerprint(&mut self) -> Result<Option<Fingerprint>, ActionError> {
        Ok(self.fingerprint.clone())
    }

    fn mirror(&mut self, _record: &Record) {}

    fn retire_backups(&mut self, files: &[String]) -> Result<Vec<(String, String)>, ActionError> {
        let mut retired = Vec::new();
        for file in files {
            if let Some(text) = self.world.files.remove(file) {
                let to = crate::retire::retired_name(file, |n| self.world.files.contains_key(n));
                self.world.files.insert(to.clone(), text);
                self.log.push(format!("retire {file}"));
                retired.push((file.clone(), to));
            }
        }
        Ok(retired)
    }

    fn describe(&self, step: &Step) -> Vec<String> {
        vec![format!("{:?}", step.action)]
    }
}

/// A fixed journal key for tests (real runs use the operator's key file).
pub fn test_key() -> crate::JournalKey {
    crate::JournalKey::from_bytes(&[42; 32], "test journal key")
}

/// Opens the journal of a test's plan directory with [`test_key`].
pub fn open_journal(dir: &std::path::Path) -> Result<crate::Journal, crate::JournalError> {
    crate::Journal::open(&crate::PlanDir::open(dir)?, &test_key())
}

/// Reads the journal of a test's plan directory with [`test_key`].
pub fn read_journal(
    dir: &std::path::Path,
) -> Result<(Vec<crate::Record>, Option<usize>), crate::JournalError> {
    crate::journal::read(&crate::PlanDir::open(dir)?, || Ok(test_key()))
}
