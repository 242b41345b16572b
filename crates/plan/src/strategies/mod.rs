//! The strategies of DESIGN.md: fresh, cutover, rolling; and the shared step builders.

pub mod cleanup;
pub mod cutover;
pub mod fresh;
pub mod rolling;
pub mod verify;

use crate::artifacts::Artifacts;
use crate::context::{Cluster, PlanNode, PlanOptions};
use crate::model::{Action, Phase, Step};
use cniswap_model::CniKind;

/// The node-agent image, pinned to this build.
pub const IMAGE_TAG: &str = env!("CARGO_PKG_VERSION");

/// Builds phases and their steps, numbering steps as `<phase>.<n>`.
pub struct Builder<'a> {
    pub cluster: &'a Cluster<'a>,
    pub options: &'a PlanOptions,
    pub replace_kube_proxy: bool,
    pub artifacts: Artifacts,
    pub phases: Vec<Phase>,
    /// Rules whose findings a step of this plan resolves, and how.
    pub resolves: Vec<(&'static str, String)>,
}

/// A step under construction.
pub struct S {
    pub action: Action,
    pub description: String,
    pub commands: Vec<String>,
    pub done_when: String,
    pub timeout: u32,
    pub pods: Vec<String>,
}

pub fn s(
    action: Action,
    description: impl Into<String>,
    commands: Vec<String>,
    done_when: impl Into<String>,
    timeout: u32,
) -> S {
    S {
        action,
        description: description.into(),
        commands,
        done_when: done_when.into(),
        timeout,
        pods: Vec::new(),
    }
}

impl<'a> Builder<'a> {
    pub fn new(
        cluster: &'a Cluster<'a>,
        options: &'a PlanOptions,
        replace_kube_proxy: bool,
    ) -> Self {
        Builder {
            cluster,
            options,
            replace_kube_proxy,
            artifacts: Artifacts::default(),
            phases: Vec::new(),
            resolves: Vec::new(),
        }
    }

    pub fn phase(&mut self, name: &str, goal: &str, steps: Vec<S>, mut rollback: Vec<S>) {
        if steps.is_empty() {
            return;
        }
        if rollback.is_empty() {
            rollback.push(s(
                Action::ApplyManifest {
                    file: "backups/objects.yaml".into(),
                },
                "Put the backed-up objects back.",
                vec![crate::check::apply_backup("backups/objects.yaml")],
                "the objects match the backup",
                600,
            ));
        }
        let index = self.phases.len() + 1;
        let number = |prefix: &str, list: Vec<S>| -> Vec<Step> {
            list.into_iter()
                .enumerate()
                .map(|(i, s)| Step {
                    id: format!("{prefix}{index}.{}", i + 1),
                    check: crate::check::already_done(&s.action),
                    action: s.action,
                    description: s.description,
                    commands: s.commands,
                    done_when: s.done_when,
                    timeout_seconds: s.timeout,
                    pods_recreated: s.pods,
                })
                .collect()
        };
        let phase = Phase {
            id: format!("{index}-{}", name.to_lowercase().replace(' ', "-")),
            name: name.to_string(),
            goal: goal.to_string(),
            steps: number("", steps),
            rollback: number("R", rollback),
        };
        self.phases.push(phase);
    }

    /// The preflight phase: read-only gates on the findings that need a person.
    pub fn preflight(&mut self, findings: &[cniswap_model::Finding]) {
        let mut steps = vec![s(
            Action::ManualGate {
                question: "Have you read the preflight findings and fixed or accepted each one?"
                    .into(),
            },
            "Review the preflight findings (listed first in the runbook).",
            vec![format!(
                "cniswap lint --live --to {} --strategy {}",
                self.options.target,
                self.strategy_name()
            )],
            "no error finding remains, or each is accepted in writing",
            0,
        )];
        if findings.iter().any(|f| f.rule == "MIG003") {
            steps.push(s(
                Action::ManualGate {
                    question: "Are the blocking PodDisruptionBudgets relaxed for the window?"
                        .into(),
                },
                "Relax PodDisruptionBudgets that allow no disruption (MIG003), or drains hang.",
                vec!["kubectl get pdb -A -o wide".into()],
                "every PDB shows ALLOWED DISRUPTIONS >= 1",
                0,
            ));
        }
        if findings.iter().any(|f| f.rule == "MIG005") {
            steps.push(s(
                Action::ManualGate { question: "Are fail-closed webhooks set to Ignore for the window?".into() },
                "Set failurePolicy: Ignore on webhooks served from the pod network (MIG005).",
                vec!["kubectl get validatingwebhookconfigurations,mutatingwebhookconfigurations -o custom-columns=NAME:.metadata.name,POLICY:.webhooks[*].failurePolicy".into()],
                "no webhook served by pod-network pods fails closed",
                0,
            ));
        }
        let mut objects: Vec<String> = self
            .cluster
            .sources
            .iter()
            .filter_map(|c| self.cluster.daemonset_of(*c))
            .map(|(ns, name)| format!("{ns}/daemonset/{name}"))
            .collect();
        objects.push("kube-system/daemonset/kube-proxy".into());
        objects.push("kube-system/configmap/kube-proxy".into());
        let commands = objects
            .iter()
            .map(|o| {
                let (ns, rest) = o.split_once('/').unwrap_or(("", o));
                format!("kubectl -n {ns} get {} -o yaml >> backups/objects.yaml; echo --- >> backups/objects.yaml", rest.replacen('/', " ", 1))
            })
            .collect::<Vec<_>>();
        let mut all = vec![
            "mkdir -p backups".to_string(),
            "cniswap snapshot -o backups/snapshot".to_string(),
        ];
        all.extend(commands);
        steps.push(s(
            Action::Backup {
                objects,
                file: "backups/objects.yaml".into(),
            },
            "Back up the objects this plan changes or deletes, and a full snapshot.",
            all,
            "backups/objects.yaml and backups/snapshot exist",
            300,
        ));
        self.phase(
            "Preflight",
            "Nothing changes: findings reviewed, disruption blockers relaxed, everything that will change backed up.",
            steps,
            vec![s(
                Action::Verify { check: "nothing to undo".into() },
                "This phase changed nothing.",
                vec![],
                "n/a",
                0,
            )],
        );
    }

    pub fn strategy_name(&self) -> &'static str {
        match self.options.strategy {
            crate::context::StrategyChoice::Fresh => "fresh",
            crate::context::StrategyChoice::Cutover => "cutover",
            _ => "rolling",
        }
    }

    /// Talos patch steps: control planes first, then workers (DESIGN.md). Returns (apply, undo).
    pub fn talos_patch(
        &mut self,
        patch: &crate::artifacts::talos::TalosPatch,
        why: &str,
    ) -> (Vec<S>, Vec<S>) {
        let (file, rollback_file) =
            crate::artifacts::talos::write(&mut self.artifacts, self.cluster, patch);
        let mut apply = Vec::new();
        let mut undo = Vec::new();
        let groups = [
            ("controlplane", self.cluster.control_planes()),
            ("worker", self.cluster.workers()),
        ];
        for (role, nodes) in groups {
            if nodes.is_empty() && !(self.cluster.nodes.is_empty() && role == "controlplane") {
                continue;
            }
            let targets = Cluster::talos_target(&nodes);
            let names: Vec<String> = nodes.iter().map(|n| n.name.clone()).collect();
            if self.cluster.omni {
                crate::artifacts::talos::write_omni(
                    &mut self.artifacts,
                    self.cluster,
                    patch,
                    role,
                    &file,
                );
            }
            apply.push(s(
                Action::TalosPatch {
                    role: role.into(),
                    nodes: names.clone(),
                    file: file.clone(),
                },
                format!("Patch the {role} Talos configs: {why}."),
                crate::artifacts::talos::apply_commands(
                    self.cluster,
                    patch.name,
                    &file,
                    &targets,
                    role,
                    false,
                ),
                format!("`talosctl -n {targets} get mc -o yaml` shows the patch"),
                300,
            ));
            undo.insert(
                0,
                s(
                    Action::TalosPatch {
                        role: role.into(),
                        nodes: names,
                        file: rollback_file.clone(),
                    },
                    format!("Undo the {role} patch ({}).", patch.name),
                    crate::artifacts::talos::apply_commands(
                        self.cluster,
                        patch.name,
                        &rollback_file,
                        &targets,
                        role,
                        true,
                    ),
                    "the previous setting is back in `talosctl get mc`",
                    300,
                ),
            );
        }
        (apply, undo)
    }

    /// Removes a CNI's DaemonSet after backing it up (Talos never deletes bootstrap manifests).
    /// Stops every source CNI for good: Talos stops rendering its Flannel first (it never
    /// deletes what it rendered, TAL002), then each agent is stopped. Returns the steps and
    /// their rollback (in rollback order).
    pub fn stop_sources(&mut self) -> (Vec<S>, Vec<S>) {
        let mut steps = Vec::new();
        let mut rollback = Vec::new();
        if self.cluster.talos && self.cluster.sources.contains(&CniKind::Flannel) {
            let patch = crate::artifacts::talos::disable_flannel(self.cluster);
            let (apply, undo) = self.talos_patch(&patch, "Talos stops deploying Flannel");
            steps.extend(apply);
            rollback.extend(undo);
        }
        for cni in self.cluster.sources.clone() {
            let (stop, undo) = self.stop_agent(cni);
            steps.extend(stop);
            rollback.splice(0..0, undo);
        }
        (steps, rollback)
    }

    /// Stops a source CNI's agent for good: whatever would recreate its DaemonSet is stopped
    /// first (the Tigera operator), then the DaemonSet is backed up and deleted. Returns the
    /// steps and their rollback (in rollback order).
    pub fn stop_agent(&self, cni: CniKind) -> (Vec<S>, Vec<S>) {
        let Some((delete, restore)) = self.delete_daemonset(cni) else {
            return (Vec::new(), Vec::new());
        };
        match self.pause_controller(cni) {
            Some((pause, resume)) => (vec![pause, delete], vec![restore, resume]),
            None => (vec![delete], vec![restore]),
        }
    }

    /// Scales to 0 (and back, for rollback) a source CNI's controller that acts on pods its
    /// agent no longer serves: the Tigera operator recreates calico-node at once; Cilium's
    /// operator restarts every pod Cilium does not manage (unmanagedPodWatcher), cluster-wide.
    pub fn pause_controller(&self, cni: CniKind) -> Option<(S, S)> {
        let (namespace, name, why) = match cni {
            CniKind::Calico if self.cluster.operator_managed(cni) => (
                "tigera-operator",
                "tigera-operator",
                "it recreates calico-node at once",
            ),
            CniKind::Cilium => (
                "kube-system",
                "cilium-operator",
                "it restarts every pod Cilium does not manage",
            ),
            _ => return None,
        };
        let replicas = self
            .cluster
            .deployment_replicas
            .get(&format!("{namespace}/{name}"))
            .copied()
            .unwrap_or(1);
        let scale = |replicas: u32, description: String| {
            s(
                Action::ScaleDeployment {
                    namespace: namespace.into(),
                    name: name.into(),
                    replicas,
                },
                description,
                vec![format!(
                    "kubectl -n {namespace} scale deployment {name} --replicas={replicas}"
                )],
                format!("deployment {name} has {replicas} replica(s)"),
                120,
            )
        };
        Some((
            scale(0, format!("Stop {namespace}/{name}, or {why}.")),
            scale(replicas, format!("Start {namespace}/{name} again.")),
        ))
    }

    fn delete_daemonset(&self, cni: CniKind) -> Option<(S, S)> {
        let (ns, name) = self.cluster.daemonset_of(cni)?;
        let backup = format!("backups/{ns}-{name}.yaml");
        let delete = s(
            Action::DeleteObject {
                kind: "DaemonSet".into(),
                namespace: Some(ns.clone()),
                name: name.clone(),
                backup: backup.clone(),
            },
            format!("Back up and delete DaemonSet {ns}/{name} ({cni})."),
            vec![
                format!("kubectl -n {ns} get daemonset {name} -o yaml > {backup}"),
                format!("kubectl -n {ns} delete daemonset {name}"),
            ],
            format!("`kubectl -n {ns} get ds {name}` says NotFound"),
            300,
        );
        let restore = s(
            Action::ApplyManifest {
                file: backup.clone(),
            },
            format!("Recreate {ns}/{name} from its backup."),
            vec![crate::check::apply_backup(&backup)],
            format!("`kubectl -n {ns} rollout status ds/{name}` succeeds"),
            600,
        );
        Some((delete, restore))
    }

    /// k3s and RKE2 run their bundled CNI (and kube-proxy) from their own config: the servers
    /// must stop deploying them before anything else changes. Empty on other platforms.
    pub fn distribution_settings(&self) -> (Vec<S>, Vec<S>) {
        use cniswap_model::PlatformKind;
        let (file, lines, restart): (&str, Vec<String>, &str) =
            match self.cluster.facts.platform.kind {
                PlatformKind::K3s => {
                    let mut lines = vec![
                        "flannel-backend: none".to_string(),
                        "disable-network-policy: true".to_string(),
                    ];
                    if self.replace_kube_proxy {
                        lines.push("disable-kube-proxy: true".into());
                    }
                    ("/etc/rancher/k3s/config.yaml", lines, "k3s")
                }
                PlatformKind::Rke2 => {
                    let mut lines = vec!["cni: none".to_string()];
                    if self.replace_kube_proxy {
                        lines.push("disable-kube-proxy: true".into());
                    }
                    ("/etc/rancher/rke2/config.yaml", lines, "rke2-server")
                }
                _ => return (Vec::new(), Vec::new()),
            };
        let servers: Vec<String> = self
            .cluster
            .control_planes()
            .iter()
            .map(|n| n.name.clone())
            .collect();
        let apply = s(
            Action::ManualGate {
                question: format!(
                    "Is {file} changed and the service restarted on every server ({})?",
                    servers.join(", ")
                ),
            },
            format!(
                "Stop the distribution's bundled CNI: set in {file} on every server, then restart {restart} one server at a time."
            ),
            vec![
                format!("# on each server, add to {file}:"),
                lines
                    .iter()
                    .map(|l| format!("#   {l}"))
                    .collect::<Vec<_>>()
                    .join("\n"),
                format!("sudo systemctl restart {restart}"),
            ],
            format!("`ps` on each server shows {restart} running with the new flags"),
            1800,
        );
        let undo = s(
            Action::ManualGate {
                question: format!("Restore {file} on every server?"),
            },
            format!("Remove the added lines from {file} and restart {restart}."),
            vec![format!("sudo systemctl restart {restart}")],
            "the bundled CNI runs again",
            1800,
        );
        (vec![apply], vec![undo])
    }

    /// Backs up and deletes kube-proxy (only ever after its replacement is configured).
    pub fn delete_kube_proxy(&self) -> (S, S) {
        let backup = "backups/kube-system-kube-proxy.yaml".to_string();
        (
            s(
                Action::DeleteObject {
                    kind: "DaemonSet".into(),
                    namespace: Some("kube-system".into()),
                    name: "kube-proxy".into(),
                    backup: backup.clone(),
                },
                "Back up and delete DaemonSet kube-system/kube-proxy: the target replaces it.",
                vec![
                    format!("kubectl -n kube-system get daemonset kube-proxy -o yaml > {backup}"),
                    "kubectl -n kube-system delete daemonset kube-proxy".into(),
                ],
                "`kubectl -n kube-system get ds kube-proxy` says NotFound",
                300,
            ),
            s(
                Action::ApplyManifest {
                    file: backup.clone(),
                },
                "Recreate kube-proxy from its backup.",
                vec![crate::check::apply_backup(&backup)],
                "`kubectl -n kube-system rollout status ds/kube-proxy` succeeds",
                600,
            ),
        )
    }

    /// `cniswap node clean` on one node, run from a privileged pod on it (Talos has no shell).
    pub fn node_clean(&self, node: &PlanNode, cni: CniKind, include_kube_proxy: bool) -> (S, S) {
        let flag = if include_kube_proxy {
            " --include-kube-proxy"
        } else {
            ""
        };
        let backup = format!("/var/lib/cniswap/backups/{cni}");
        let clean = s(
            Action::NodeClean {
                node: node.name.clone(),
                cni: cni.to_string(),
                include_kube_proxy,
            },
            format!(
                "Remove {cni}'s leftovers on {} (links, routes, iptables, files), with a backup on the node.",
                node.name
            ),
            vec![
                format!(
                    "kubectl debug node/{} --profile=sysadmin --image=ghcr.io/cniswap/cniswap:{IMAGE_TAG} -- cniswap node clean --cni {cni}{flag} --root /host --dry-run",
                    node.name
                ),
                format!(
                    "kubectl debug node/{} --profile=sysadmin --image=ghcr.io/cniswap/cniswap:{IMAGE_TAG} -- cniswap node clean --cni {cni}{flag} --root /host --backup /host{backup}",
                    node.name
                ),
            ],
            format!(
                "`cniswap node inventory` on {} lists nothing of {cni}",
                node.name
            ),
            300,
        );
        let restore = s(
            Action::ManualGate {
                question: format!("Restore {cni}'s node state on {}?", node.name),
            },
            format!("Put back what the clean removed on {}.", node.name),
            vec![format!(
                "kubectl debug node/{} --profile=sysadmin --image=ghcr.io/cniswap/cniswap:{IMAGE_TAG} -- cniswap node restore --backup /host{backup} --root /host",
                node.name
            )],
            "restore reports every item restored or explains why not",
            300,
        );
        (clean, restore)
    }

    /// Batches of nodes in migration order.
    pub fn batches(&self) -> Vec<Vec<&'a PlanNode>> {
        let size = self.options.batch_size.max(1);
        let nodes: Vec<&PlanNode> = self.cluster.nodes.iter().collect();
        // Control planes never share a batch with workers, and go one at a time.
        let mut out = Vec::new();
        for chunk in nodes
            .iter()
            .filter(|n| !n.control_plane)
            .collect::<Vec<_>>()
            .chunks(size)
        {
            out.push(chunk.iter().map(|n| **n).collect());
        }
        for node in nodes.iter().filter(|n| n.control_plane) {
            out.push(vec![*node]);
        }
        out
    }

    /// Reboots a node, then waits until `agent`'s pod is Ready there again: it reinstalls its
    /// CNI binary (a Talos upgrade re-flashes /opt/cni/bin, seed 002) and its state in /run,
    /// and a node uncordoned before that fails every new pod.
    pub fn reboot(&self, node: &PlanNode, agent: CniKind) -> S {
        let mut commands = if self.cluster.talos {
            vec![format!(
                "talosctl -n {} reboot --wait",
                node.ip.clone().unwrap_or_else(|| node.name.clone())
            )]
        } else {
            vec![format!("ssh {} sudo systemctl reboot", node.name)]
        };
        let (ns, ds) = crate::install::agent_daemonset(self.cluster, agent);
        commands.extend([
            format!(
                "kubectl wait --for=condition=Ready node/{} --timeout=15m",
                node.name
            ),
            crate::install::wait_agent_command(&ns, &ds),
        ]);
        s(
            Action::RebootNode {
                node: node.name.clone(),
            },
            format!("Reboot {} so no old interface or rule survives.", node.name),
            commands,
            format!(
                "node {} is Ready again and the {agent} pod on it is Ready",
                node.name
            ),
            1500,
        )
    }
}
