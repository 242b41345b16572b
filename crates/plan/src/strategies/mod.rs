//! The strategies of DESIGN.md: fresh, cutover, rolling; and the steps they share.

mod between;
pub mod calico_migration;
pub mod cleanup;
pub mod cutover;
pub mod fresh;
pub mod rolling;
pub mod safeguards;
pub mod verify;

use crate::artifacts::Artifacts;
use crate::context::{Cluster, PlanNode, PlanOptions};
use crate::model::{Action, ObjectRef, Phase, Risk, Step};
use crate::ops::{self, S, s};
use cniswap_model::CniKind;

/// Builds phases and their steps, numbering steps as `<phase>.<n>`.
pub struct Builder<'a> {
    pub cluster: &'a Cluster<'a>,
    pub options: &'a PlanOptions,
    pub replace_kube_proxy: bool,
    pub artifacts: Artifacts,
    pub phases: Vec<Phase>,
    /// Rules whose findings a step of this plan resolves: (rule, place or None for every
    /// finding of the rule, how).
    pub resolves: Vec<(String, Option<String>, String)>,
    /// Effects beyond the pod network, and how the plan handles them.
    pub risks: Vec<Risk>,
    /// Names node backups of this plan (`/var/lib/cniswap/backups/<id>/...`).
    pub plan_id: String,
    /// A step already patched Talos to stop rendering Flannel.
    pub talos_flannel_disabled: bool,
    /// The longest pod-network outage the estimates expect (cutover: the whole window).
    pub outage_minutes: u32,
    /// What the plan would fetch from the internet: (name, URL or repository).
    pub downloads: Vec<(String, String)>,
}

impl<'a> Builder<'a> {
    pub fn new(
        cluster: &'a Cluster<'a>,
        options: &'a PlanOptions,
        replace_kube_proxy: bool,
    ) -> Self {
        let plan_id = crate::names::sha256(&format!(
            "{}|{:?}|{}|{:?}",
            cluster.name, cluster.sources, options.target, options.strategy
        ))[..10]
            .to_string();
        Builder {
            cluster,
            options,
            replace_kube_proxy,
            artifacts: Artifacts::default(),
            phases: Vec::new(),
            resolves: Vec::new(),
            risks: Vec::new(),
            plan_id,
            talos_flannel_disabled: false,
            outage_minutes: 0,
            downloads: Vec::new(),
        }
    }

    /// Records that the plan fetches `name` from `url` (refused when the user said the cluster
    /// installs without the internet).
    pub fn needs_download(&mut self, name: &str, url: &str) {
        if !self.downloads.iter().any(|(n, _)| n == name) {
            self.downloads.push((name.to_string(), url.to_string()));
        }
    }

    pub fn resolves(&mut self, rule: &str, at: Option<String>, by: impl Into<String>) {
        self.resolves.push((rule.to_string(), at, by.into()));
    }

    /// Adds a phase. An empty rollback is a mistake in the strategy: every phase says how to
    /// undo it, or that it changes nothing.
    pub fn phase(&mut self, name: &str, goal: &str, steps: Vec<S>, rollback: Vec<S>) {
        if steps.is_empty() {
            return;
        }
        let rollback = if rollback.is_empty() {
            vec![nothing_to_undo(
                "This phase changes nothing that needs undoing.",
            )]
        } else {
            rollback
        };
        let index = self.phases.len() + 1;
        let number = |prefix: &str, list: Vec<S>| -> Vec<Step> {
            list.into_iter()
                .enumerate()
                .map(|(i, s)| Step {
                    id: format!("{prefix}{index}.{}", i + 1),
                    check: crate::check::already_done(&s.action).map(|c| c.into_string()),
                    action: s.action,
                    description: s.description,
                    commands: s.commands.into_iter().map(|c| c.into_string()).collect(),
                    notes: s.notes,
                    done_when: s.done_when,
                    timeout_seconds: s.timeout,
                    pods_recreated: s.pods,
                    pods_deleted: s.pods_deleted,
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

    /// The preflight phase: findings read, a snapshot and the objects the plan changes saved.
    pub fn preflight(&mut self) {
        let target = self.options.target.to_string();
        let strategy = self.strategy_name();
        let mut steps = vec![ops::gate(
            "Have you read the preflight findings and fixed or accepted each one?",
            "Review the preflight findings (listed first in the runbook), and check the cluster still looks like the snapshot the plan was made from.",
            vec![ops::cniswap(&[
                "lint",
                "--live",
                "--to",
                &target,
                "--strategy",
                strategy,
            ])],
            "no error finding remains that the plan does not resolve, or each is accepted in writing",
        )];
        // On Talos the CNI and kube-proxy settings live in the machine configs: they are saved
        // too, redacted (docs/security.md: a secret is never written in clear; the etcd
        // snapshot and the user's own secrets bundle are what restores secrets).
        let talos_nodes = if self.cluster.talos {
            Cluster::talos_endpoints(&self.cluster.nodes.iter().collect::<Vec<_>>())
        } else {
            Vec::new()
        };
        let mut snapshot = vec![
            "cniswap".to_string(),
            "snapshot".into(),
            "--out-dir".into(),
            "backups/snapshot.tmp".into(),
        ];
        if !talos_nodes.is_empty() {
            snapshot.extend(["--talos-nodes".into(), talos_nodes.join(",")]);
        }
        steps.push(s(
            Action::Snapshot {
                dir: "backups/snapshot".into(),
                talos_nodes: talos_nodes.clone(),
            },
            if talos_nodes.is_empty() {
                "Save a snapshot of the cluster as it is before the plan (secrets are never read)."
            } else {
                "Save a snapshot of the cluster and every node's machine config as they are before the plan (secrets redacted)."
            },
            vec![sh!(
                "test -d backups/snapshot || {{ rm -rf backups/snapshot.tmp && mkdir -p backups && {} && mv backups/snapshot.tmp backups/snapshot; }}",
                crate::shell::Code(&crate::shell::argv(&snapshot))
            )],
            "backups/snapshot exists",
            300,
        ));
        let mut objects: Vec<ObjectRef> = self
            .cluster
            .sources
            .iter()
            .filter_map(|c| self.cluster.daemonset_of(*c))
            .map(|(ns, name)| ObjectRef::new("daemonset", Some(&ns), &name))
            .collect();
        objects.push(ObjectRef::new(
            "daemonset",
            Some("kube-system"),
            "kube-proxy",
        ));
        objects.push(ObjectRef::new(
            "configmap",
            Some("kube-system"),
            "kube-proxy",
        ));
        let file = "backups/objects.yaml".to_string();
        steps.push(s(
            Action::Backup {
                objects: objects.clone(),
                file: file.clone(),
            },
            "Save the objects this plan changes or deletes, as they are now.",
            vec![crate::backup::save_objects(&objects, &file)],
            format!("{file} exists"),
            300,
        ));
        self.phase(
            "Preflight",
            "Nothing changes: findings reviewed, the cluster and every object the plan touches saved.",
            steps,
            vec![nothing_to_undo("This phase changed nothing.")],
        );
    }

    /// Omni ConfigPatches of the snapshot that make Talos reject the config or keep the old CNI
    /// (TAL001, TAL011): Omni keeps applying them, so they are backed up and deleted before
    /// the plan's own patches take their place.
    pub fn replace_broken_omni_patches(&mut self, findings: &[cniswap_model::Finding]) {
        let mut steps = Vec::new();
        let mut rollback = Vec::new();
        for (id, file) in self.cluster.omni_patches.clone() {
            let broken: Vec<&cniswap_model::Finding> = findings
                .iter()
                .filter(|f| matches!(f.rule.as_str(), "TAL001" | "TAL011"))
                .filter(|f| f.location.as_ref().is_some_and(|l| l.file == file))
                .collect();
            if broken.is_empty() {
                continue;
            }
            let backup = format!(
                "backups/omni-configpatch-{}.yaml",
                crate::names::file_part(&id)
            );
            let cluster = self.cluster.omni_cluster.clone().unwrap_or_default();
            steps.push(s(
                Action::OmniConfigPatch {
                    patch_id: id.clone(),
                    cluster: cluster.clone(),
                    file: file.clone(),
                    remove: true,
                    backup: Some(backup.clone()),
                },
                format!("Back up and delete the Omni ConfigPatch {id} ({file}): {}; the plan's own patches replace it.", broken.iter().map(|f| f.rule.as_str()).collect::<Vec<_>>().join(", ")),
                vec![
                    crate::backup::write_once(
                        &sh!("omnictl get configpatches.omni.sidero.dev {} -o yaml", id),
                        &backup,
                    ),
                    sh!("omnictl delete configpatches.omni.sidero.dev {}", id),
                ],
                format!("`omnictl get configpatches.omni.sidero.dev` lists no {id}"),
                300,
            ));
            rollback.insert(
                0,
                s(
                    Action::OmniConfigPatch {
                        patch_id: id.clone(),
                        cluster,
                        file: backup.clone(),
                        remove: false,
                        backup: None,
                    },
                    format!("Put the Omni ConfigPatch {id} back from its backup."),
                    vec![sh!("omnictl apply -f {}", backup)],
                    format!("`omnictl get configpatches.omni.sidero.dev {id}` exists"),
                    300,
                ),
            );
            for f in broken {
                self.resolves(
                    &f.rule,
                    Some(crate::model::Handled::place(f)),
                    format!("the plan backs up and deletes Omni ConfigPatch {id} (to {backup}) and applies its own patches instead"),
                );
            }
        }
        self.phase(
            "Replace broken Omni patches",
            "No Omni ConfigPatch of the cluster contradicts the plan's patches.",
            steps,
            rollback,
        );
    }

    pub fn strategy_name(&self) -> &'static str {
        match self.options.strategy {
            crate::context::StrategyChoice::Fresh => "fresh",
            crate::context::StrategyChoice::Cutover => "cutover",
            _ => "rolling",
        }
    }

    /// The image of the plan's small helper pods: `--helper-image`, else busybox (from the
    /// mirror with `--image-registry`).
    pub fn helper_image(&self) -> String {
        self.options.helper_image.clone().unwrap_or_else(|| {
            match &self.options.local.image_registry {
                Some(registry) => crate::local::mirrored(registry, crate::agent::BUSYBOX),
                None => crate::agent::BUSYBOX.to_string(),
            }
        })
    }

    pub fn agent_image(&self) -> String {
        self.options.agent_image.clone().unwrap_or_else(|| {
            let image = crate::context::default_agent_image();
            match &self.options.local.image_registry {
                Some(registry) => crate::local::mirrored(registry, &image),
                None => image,
            }
        })
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
            if nodes.is_empty() {
                continue;
            }
            let (forward, back) = crate::artifacts::talos::steps(
                &mut self.artifacts,
                self.cluster,
                patch,
                role,
                &nodes,
                (&file, &rollback_file),
                why,
            );
            apply.push(forward);
            if self.cluster.omni {
                apply.push(crate::artifacts::talos::rendered(role, &nodes, &file, why));
            }
            undo.insert(0, back);
        }
        (apply, undo)
    }

    /// Stops every source CNI for good: Talos stops rendering its Flannel first (it never
    /// deletes what it rendered, TAL002), then each agent is stopped. Returns the steps and
    /// their rollback (in rollback order).
    pub fn stop_sources(&mut self) -> (Vec<S>, Vec<S>) {
        let mut steps = Vec::new();
        let mut rollback = Vec::new();
        if self.cluster.talos
            && self.cluster.sources.contains(&CniKind::Flannel)
            && !self.talos_flannel_disabled
        {
            self.talos_flannel_disabled = true;
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

    /// Stops a source CNI's agent: whatever would recreate its DaemonSet is stopped first (the
    /// Tigera operator), then the DaemonSet is backed up and deleted.
    pub fn stop_agent(&self, cni: CniKind) -> (Vec<S>, Vec<S>) {
        // The distribution recreates its own CNI's DaemonSet: it goes with its config
        // (`distribution_switch`).
        if crate::distribution::is_bundled(self.cluster, cni) {
            return (Vec::new(), Vec::new());
        }
        let Some((ns, name)) = self.cluster.daemonset_of(cni) else {
            return (Vec::new(), Vec::new());
        };
        let (delete, restore) = ops::delete_object(
            ObjectRef::new("daemonset", Some(&ns), &name),
            &format!(" ({cni})"),
        );
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
        Some((
            ops::scale(
                namespace,
                name,
                0,
                format!("Stop {namespace}/{name}, or {why}."),
            ),
            ops::scale(
                namespace,
                name,
                replicas,
                format!("Start {namespace}/{name} again."),
            ),
        ))
    }

    /// k3s and RKE2 on a running cluster: each node's own service turned off what the plan
    /// replaces (bundled CNI, network policy controller, kube-proxy), node by node, servers
    /// first, each restart checked; RKE2's CNI chart removed by its HelmChart. Empty on other
    /// platforms (distribution.rs).
    pub fn distribution_switch(&mut self) -> (Vec<S>, Vec<S>) {
        if let Some(risk) = crate::distribution::risk(self.cluster) {
            self.risks.push(risk);
        }
        crate::distribution::switch_off(
            self.cluster,
            self.replace_kube_proxy,
            &self.plan_id,
            &self.helper_image(),
        )
    }

    /// k3s and RKE2 before bootstrap (fresh): the servers' config says it from the start.
    /// Empty on other platforms.
    pub fn distribution_settings(&self) -> (Vec<S>, Vec<S>) {
        use cniswap_model::PlatformKind;
        let (file, lines, restart): (&str, Vec<&str>, &str) = match self.cluster.facts.platform.kind
        {
            PlatformKind::K3s => {
                let mut lines = vec!["flannel-backend: none", "disable-network-policy: true"];
                if self.replace_kube_proxy {
                    lines.push("disable-kube-proxy: true");
                }
                ("/etc/rancher/k3s/config.yaml", lines, "k3s")
            }
            PlatformKind::Rke2 => {
                let mut lines = vec!["cni: none"];
                if self.replace_kube_proxy {
                    lines.push("disable-kube-proxy: true");
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
        let apply = ops::gate(
            format!(
                "Is {file} changed and the service restarted on every server ({})?",
                servers.join(", ")
            ),
            format!(
                "Stop the distribution's bundled CNI: set in {file} on every server, then restart {restart} one server at a time."
            ),
            vec![sh!("sudo systemctl restart {}", restart)],
            format!("`ps` on each server shows {restart} running with the new settings"),
        )
        .note(format!(
            "On each server, add to {file}: {}",
            lines.join("; ")
        ));
        let undo = ops::gate(
            format!("Restore {file} on every server?"),
            format!("Remove the added lines from {file} and restart {restart}."),
            vec![sh!("sudo systemctl restart {}", restart)],
            "the bundled CNI runs again",
        );
        (vec![apply], vec![undo])
    }

    /// Backs up and deletes kube-proxy (only ever after its replacement runs). Included unless
    /// kube-proxy is known to be absent: its check skips it when it is gone already.
    pub fn delete_kube_proxy(&self) -> Option<(S, S)> {
        // k3s' and RKE2's kube-proxy has no DaemonSet: it goes with the distribution's config.
        if self.cluster.kube_proxy == Some(false)
            || crate::distribution::runs_own_kube_proxy(self.cluster)
        {
            return None;
        }
        Some(ops::delete_object(
            ObjectRef::new("daemonset", Some("kube-system"), "kube-proxy"),
            ": the target replaces it",
        ))
    }

    /// kubeadm brings kube-proxy back at the next `kubeadm upgrade apply` unless its
    /// ClusterConfiguration says `proxy.disabled: true` (v1beta4): set it, backed up first;
    /// an older config has no such field, so the plan states what the upgrade then needs.
    pub fn keep_kube_proxy_off(&mut self) -> (Vec<S>, Vec<S>) {
        let Some(text) = self.cluster.kubeadm_configuration.clone() else {
            return (Vec::new(), Vec::new());
        };
        let Ok(mut config) = serde_saphyr::from_str::<serde_json::Value>(&text) else {
            return (Vec::new(), Vec::new());
        };
        let version = config["apiVersion"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if version != "kubeadm.k8s.io/v1beta4" {
            self.risks.push(crate::model::Risk {
                rule: None,
                effect: format!("kubeadm-config is {version}, which has no proxy.disabled: the next `kubeadm upgrade apply` deploys kube-proxy again"),
                handling: "stated: run upgrades with `--skip-phases=addon/kube-proxy`, or migrate the config to v1beta4 (`kubeadm config migrate`) and set proxy.disabled: true".into(),
            });
            return (Vec::new(), Vec::new());
        }
        if config["proxy"]["disabled"] == serde_json::Value::Bool(true) {
            return (Vec::new(), Vec::new());
        }
        config["proxy"]["disabled"] = serde_json::Value::Bool(true);
        // Without a trailing newline, so the check compares it exactly as the shell reads it.
        let updated = crate::artifacts::yaml(&config).trim_end().to_string();
        let object = ObjectRef::new("configmap", Some("kube-system"), "kubeadm-config");
        let backup = ops::backup_file(&object);
        let set = ops::patch_object(
            object,
            crate::model::PatchType::Merge,
            serde_json::json!({"data": {"ClusterConfiguration": updated}}),
            ".data.ClusterConfiguration",
            &updated,
            Some(backup.clone()),
            "Set proxy.disabled: true in kubeadm-config, so `kubeadm upgrade` does not deploy kube-proxy again.".into(),
        );
        let restore =
            ops::replace_from_backup(&backup, "Put kubeadm-config back as it was.".into());
        (vec![set], vec![restore])
    }

    /// Node clean of every source on one node (dry run, then the clean). Returns (steps,
    /// restores in rollback order).
    pub fn clean_node(&self, node: &str, include_kube_proxy: bool) -> (Vec<S>, Vec<S>) {
        let mut steps = Vec::new();
        let mut undo = Vec::new();
        for cni in &self.cluster.sources {
            let (clean, restore) = ops::node_clean(
                node,
                cni.as_str(),
                include_kube_proxy,
                &self.agent_image(),
                &self.plan_id,
            );
            steps.extend(clean);
            undo.insert(0, restore);
        }
        (steps, undo)
    }

    /// The target's leftovers removed from every node, for a rollback that uninstalled it:
    /// its links, routes, iptables chains and files stay on the nodes otherwise (Cilium's
    /// `cni.uninstall: false`, Calico's and Flannel's DaemonSets never clean up).
    pub fn clean_target_everywhere(&self) -> Vec<S> {
        // A running agent recreates what the clean removes (seen on the lab: Cilium's
        // cilium_host came back on a node whose agent pod was still terminating).
        let (namespace, _) = crate::install::agent_daemonset(self.cluster, self.options.target);
        let selector = self.cluster.agent_selector(self.options.target);
        let target = self.options.target;
        let mut steps = vec![ops::verify(
            &format!("no {target} agent pod is left"),
            vec![crate::model::Probe::NoPodsMatching {
                namespace: namespace.clone(),
                selector: selector.clone(),
                node: None,
            }],
            format!(
                "Wait until every {target} agent pod ({selector} in {namespace}) is gone, so none recreates what the clean removes."
            ),
            format!("no pod matches {selector} in {namespace}"),
        )];
        for node in &self.cluster.nodes {
            let (clean, _) = ops::node_clean(
                &node.name,
                self.options.target.as_str(),
                false,
                &self.agent_image(),
                &self.plan_id,
            );
            steps.extend(clean);
        }
        steps
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

    /// Whether switched nodes reboot (`--reboot`; auto: Talos nodes, which cniswap reboots
    /// itself; elsewhere apply cannot reboot a node, and recreating its pods is enough while
    /// the old CNI still runs there).
    pub fn reboots(&self) -> bool {
        match self.options.reboot {
            crate::context::RebootChoice::Always => true,
            crate::context::RebootChoice::Never => false,
            crate::context::RebootChoice::Auto => self.cluster.talos,
        }
    }

    /// After a node's CNI config changed: every pod on it must come up on the new network.
    /// Either a reboot (nothing of the old pods' network survives), or `agent` Ready on the
    /// node and then every pod-network pod recreated (their old interfaces go with their
    /// sandboxes; the old CNI's own state is removed with the old CNI).
    pub fn renew_node(&self, node: &PlanNode, agent: CniKind) -> Vec<S> {
        if self.reboots() {
            return vec![self.reboot(node, agent)];
        }
        let (namespace, name) = crate::install::agent_daemonset(self.cluster, agent);
        vec![
            s(
                Action::WaitDaemonSetReady {
                    namespace: namespace.clone(),
                    name: name.clone(),
                },
                format!(
                    "Wait until {agent} is Ready on every node it should run on, {} included.",
                    node.name
                ),
                vec![sh!(
                    "kubectl -n {} rollout status ds/{} --timeout=10m",
                    namespace,
                    name
                )],
                format!("{namespace}/{name} is rolled out"),
                600,
            ),
            self.recreate_pods(node),
        ]
    }

    /// Deletes the node's pod-network pods so their controllers recreate them on the node's
    /// current CNI (DaemonSet pods come back on the same node).
    pub fn recreate_pods(&self, node: &PlanNode) -> S {
        let field = format!("spec.nodeName={},status.phase=Running", node.name);
        let node_field = format!("spec.nodeName={}", node.name);
        let mut recreate = s(
            Action::RecreatePods {
                node: node.name.clone(),
            },
            format!(
                "Recreate the pod-network pods on {} so they get the new network.",
                node.name
            ),
            vec![
                sh!(
                    "pods=$(kubectl get pods -A --field-selector {} -o jsonpath='{{range .items[*]}}{{.metadata.namespace}} {{.metadata.name}} {{.spec.hostNetwork}}{{\"\\n\"}}{{end}}') && printf '%s\\n' \"$pods\" | while read -r ns pod host; do [ -z \"$pod\" ] || [ \"$host\" = true ] || kubectl -n \"$ns\" delete pod \"$pod\" --wait=false; done",
                    field
                ),
                sh!(
                    "kubectl get pods -A --field-selector {} -o wide",
                    node_field
                ),
            ],
            format!(
                "every pod-network pod on {} was created after the switch",
                node.name
            ),
            600,
        );
        recreate.pods = node
            .pods
            .iter()
            .filter(|p| !node.bare_pods.contains(p))
            .cloned()
            .collect();
        recreate.pods_deleted = node.bare_pods.clone();
        if !node.bare_pods.is_empty() {
            recreate = recreate.note(format!(
                "{} ha{} no controller: deleted, never recreated (backups/snapshot keeps {}).",
                node.bare_pods.join(", "),
                if node.bare_pods.len() == 1 { "s" } else { "ve" },
                if node.bare_pods.len() == 1 {
                    "it"
                } else {
                    "them"
                }
            ));
        }
        recreate
    }

    /// Reboots a node, then waits until `agent`'s pod is Ready there again: it reinstalls its
    /// CNI binary (a Talos upgrade re-flashes /opt/cni/bin, seed 002) and its state in /run,
    /// and a node uncordoned before that fails every new pod.
    pub fn reboot(&self, node: &PlanNode, agent: CniKind) -> S {
        let address = node.ip.clone().unwrap_or_else(|| node.name.clone());
        // The node's boot ID before, and a wait for a new one after: Ready alone can still be
        // the old boot's status when the reboot has not begun yet.
        let mut commands = vec![sh!(
            "boot=$(kubectl get node {} -o jsonpath='{{.status.nodeInfo.bootID}}')",
            node.name
        )];
        commands.push(if self.cluster.talos {
            sh!("talosctl -n {} reboot --wait", address)
        } else {
            sh!("ssh {} sudo systemctl reboot", address)
        });
        commands.push(sh!(
            "t=0; until b=$(kubectl get node {} -o jsonpath='{{.status.nodeInfo.bootID}}') && [ -n \"$b\" ] && [ \"$b\" != \"$boot\" ]; do t=$((t+5)); [ $t -lt 900 ] || break; sleep 5; done",
            node.name
        ));
        let (ns, ds) = crate::install::agent_daemonset(self.cluster, agent);
        let node_ref = format!("node/{}", node.name);
        let ds_ref = format!("ds/{ds}");
        commands.extend([
            sh!(
                "kubectl wait --for=condition=Ready {} --timeout=15m",
                node_ref
            ),
            sh!("kubectl -n {} rollout status {} --timeout=10m", ns, ds_ref),
        ]);
        let mut step = s(
            Action::RebootNode {
                node: node.name.clone(),
                address,
            },
            format!("Reboot {} so no old interface or rule survives.", node.name),
            commands,
            format!(
                "node {} reports a new boot ID, is Ready again and the {agent} pod on it is Ready",
                node.name
            ),
            1500,
        );
        if node.control_plane && self.cluster.control_planes().len() == 1 {
            step = step.note(format!(
                "{} is the only control plane: the API server is down until it is back (about {} min); kubectl waits and retries.",
                node.name,
                self.cluster.reboot_seconds().div_ceil(60)
            ));
            if self.cluster.talos {
                step = step.note(format!(
                    "If it does not come back: reset it and recover etcd from the snapshot of the safeguards phase (`talosctl -n {} bootstrap --recover-from=backups/etcd-{}.snapshot`).",
                    node.ip.clone().unwrap_or_else(|| node.name.clone()),
                    crate::names::file_part(&node.name)
                ));
            }
        }
        step
    }
}

/// A rollback step for a phase that changes nothing.
pub fn nothing_to_undo(description: &str) -> S {
    ops::verify(
        "nothing to undo",
        Vec::new(),
        description.to_string(),
        "nothing to do",
    )
}
