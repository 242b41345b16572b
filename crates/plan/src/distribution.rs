//! k3s and RKE2: the CNI, the network policy controller and kube-proxy they bundle are turned
//! off by the distribution's own config and a restart of each node's own service; the RKE2
//! CNI chart goes the RKE2 way (its HelmChart, never its DaemonSet, which the helm controller
//! would recreate). Sources: docs.rke2.io networking/basic_network_options (`cni: none`,
//! charts `rke2-<cni>` in kube-system), k3s' `--flannel-backend=none`,
//! `--disable-network-policy`, `--disable-kube-proxy`; RKE2's kube-proxy is a static pod from
//! `/var/lib/rancher/rke2/agent/pod-manifests/kube-proxy.yaml`, which stays until removed;
//! k3s and RKE2 read `config.yaml.d/*.yaml` after `config.yaml`, the last value of a key wins
//! (k3s-io/k3s#7316 shows the directory in use).
//!
//! How apply does it: a privileged pod pinned to the node enters the host's namespaces
//! (`nsenter -t 1`, the pods run with hostPID) and runs the change there, then restarts the
//! unit with `systemctl` and waits until a new invocation of it is active. Both distributions
//! keep containers running while their service restarts (so the pod outlives the restart),
//! and apply watches the pod through the API, retrying while a server's API restarts. One
//! node per step, servers first and one at a time: never every server at once. The drop-in
//! is cniswap's own file (`90-cniswap.yaml`), so the user's `config.yaml` is never edited and
//! the rollback only removes it; what the step removes is saved on the node first.

use crate::agent;
use crate::context::{Cluster, PlanNode};
use crate::model::{Action, NodePod, ObjectRef, Probe};
use crate::ops::{self, S, s};
use crate::shell::{Code, Sh};
use cniswap_model::{CniKind, InstallMethod, PlatformKind};

/// What one distribution runs and where it keeps it.
struct Distribution {
    name: &'static str,
    config_dir: &'static str,
    server_unit: &'static str,
    agent_unit: &'static str,
}

const K3S: Distribution = Distribution {
    name: "k3s",
    config_dir: "/etc/rancher/k3s/config.yaml.d",
    server_unit: "k3s",
    agent_unit: "k3s-agent",
};

const RKE2: Distribution = Distribution {
    name: "RKE2",
    config_dir: "/etc/rancher/rke2/config.yaml.d",
    server_unit: "rke2-server",
    agent_unit: "rke2-agent",
};

/// cniswap's drop-in, read after the user's config.yaml and earlier drop-ins.
const DROPIN: &str = "90-cniswap.yaml";
/// RKE2's kube-proxy static pod manifest (on every node).
pub const RKE2_KUBE_PROXY_MANIFEST: &str =
    "/var/lib/rancher/rke2/agent/pod-manifests/kube-proxy.yaml";
/// k3s' embedded kube-proxy serves its health check here; nothing else does before the target.
const KUBE_PROXY_HEALTH_PORT: u16 = 10256;

/// The node changes a k3s/RKE2 cluster needs for this plan.
pub struct Change {
    dist: &'static Distribution,
    /// Config keys for the servers' drop-in.
    pub settings: Vec<String>,
    /// Bundled CNI to switch off (k3s' Flannel, RKE2's Canal/...), when one runs.
    bundled: Option<CniKind>,
    kube_proxy_off: bool,
}

impl Change {
    /// `None` outside k3s/RKE2, or when nothing of the distribution changes.
    pub fn of(cluster: &Cluster, replace_kube_proxy: bool) -> Option<Change> {
        let dist = match cluster.facts.platform.kind {
            PlatformKind::K3s => &K3S,
            PlatformKind::Rke2 => &RKE2,
            _ => return None,
        };
        let bundled = cluster
            .facts
            .cnis
            .iter()
            .find(|c| {
                cluster.sources.contains(&c.kind) && c.install == Some(InstallMethod::Bundled)
            })
            .map(|c| c.kind);
        let mut settings = Vec::new();
        match (dist.name, bundled) {
            ("k3s", Some(_)) => {
                settings.push("flannel-backend: none".to_string());
                // kube-router's policies would be enforced a second time beside the target's.
                settings.push("disable-network-policy: true".to_string());
            }
            (_, Some(_)) => settings.push("cni: none".to_string()),
            _ => {}
        }
        // Only when the distribution runs it: known running, or unknown (nothing says).
        let kube_proxy_off = replace_kube_proxy && cluster.kube_proxy != Some(false);
        if kube_proxy_off {
            settings.push("disable-kube-proxy: true".to_string());
        }
        (!settings.is_empty()).then_some(Change {
            dist,
            settings,
            bundled,
            kube_proxy_off,
        })
    }

    fn unit(&self, node: &PlanNode) -> &'static str {
        if node.control_plane {
            self.dist.server_unit
        } else {
            self.dist.agent_unit
        }
    }

    /// Whether agents change too: k3s agents run Flannel and kube-proxy themselves, with the
    /// settings their server gave them at start; RKE2 agents only run kube-proxy's static pod
    /// (its CNI is the servers' chart).
    fn agents_change(&self) -> bool {
        !self.rke2() || self.kube_proxy_off
    }

    fn rke2(&self) -> bool {
        self.dist.name == "RKE2"
    }

    /// Files the node's change removes (saved first): RKE2's kube-proxy manifest on every
    /// node; on servers, the bundled chart's addon manifest, which RKE2's deploy controller
    /// would apply again.
    fn removed(&self, node: &PlanNode) -> Vec<String> {
        let mut files = Vec::new();
        if self.rke2() && self.kube_proxy_off {
            files.push(RKE2_KUBE_PROXY_MANIFEST.to_string());
        }
        if self.rke2()
            && node.control_plane
            && let Some(chart) = self.chart()
        {
            files.push(format!(
                "/var/lib/rancher/rke2/server/manifests/{chart}.yaml"
            ));
        }
        files
    }

    /// RKE2's HelmChart of the bundled CNI (`rke2-canal`, ...).
    fn chart(&self) -> Option<String> {
        self.bundled
            .filter(|_| self.rke2())
            .map(|cni| format!("rke2-{}", cni.as_str()))
    }
}

/// Host-side paths of one node's change: its backup and the invocation ID recorded before
/// the restart.
fn backup_dir(plan_id: &str, unit: &str) -> String {
    format!("/var/lib/cniswap/backups/{plan_id}/{unit}")
}

/// The shell run in the host's namespaces (every path under `root`, which is empty on a
/// node; tests run it under a directory).
pub fn host_script(
    root: &str,
    unit: &str,
    dropin: &str,
    settings: &[String],
    remove: &[String],
    backup: &str,
    restore: bool,
) -> Sh {
    let mut lines: Vec<Sh> = vec![sh!(
        "r={}; b={}; d={}; u={}",
        root,
        format!("{root}{backup}"),
        format!("{root}{dropin}"),
        unit
    )];
    if restore {
        // Nothing saved: the forward change never ran here.
        lines.push(sh!("test -e \"$b/saved\" || exit 0"));
        lines.push(sh!("rm -f \"$d\""));
        lines.push(sh!(
            "( cd \"$b/files\" && find . -type f | while read -r f; do f=${{f#.}}; mkdir -p \"$(dirname \"$r$f\")\" && cp -p \".$f\" \"$r$f\" || exit 1; done )"
        ));
    } else {
        // Saved once: the first copy is the state before the change (a resumed step keeps it).
        let saved: Vec<&str> = std::iter::once(dropin)
            .chain(remove.iter().map(String::as_str))
            .collect();
        lines.push(sh!("mkdir -p \"$b\""));
        lines.push(sh!(
            "test -e \"$b/saved\" || {{ rm -rf \"$b/files.tmp\" && mkdir -p \"$b/files.tmp\" && for f in {}; do if test -e \"$r$f\"; then mkdir -p \"$(dirname \"$b/files.tmp$f\")\" && cp -p \"$r$f\" \"$b/files.tmp$f\" || exit 1; fi; done && mv \"$b/files.tmp\" \"$b/files\" && : > \"$b/saved\"; }}",
            Code(&crate::shell::argv(&saved))
        ));
        let mut text = format!(
            "# Written by cniswap (its backup on this node: {backup}); removing this file and restarting {unit} undoes it.\n"
        );
        for line in settings {
            text.push_str(line);
            text.push('\n');
        }
        // A value with newlines reaches the shell through a command substitution, which drops
        // trailing newlines: the last one is printed by printf.
        lines.push(sh!(
            "mkdir -p \"$(dirname \"$d\")\" && printf '%s\\n' {} > \"$d.tmp\" && mv \"$d.tmp\" \"$d\"",
            text.trim_end_matches('\n')
        ));
        if !remove.is_empty() {
            lines.push(sh!(
                "for f in {}; do rm -f \"$r$f\"; done",
                Code(&crate::shell::argv(remove))
            ));
        }
    }
    // The restart: the invocation recorded first, so the wait knows the new one from the old.
    lines.push(sh!(
        "systemctl show -p InvocationID --value \"$u\" > \"$b.invocation\""
    ));
    lines.push(sh!("systemctl restart \"$u\""));
    lines.push(sh!(
        "old=$(cat \"$b.invocation\"); t=0; until new=$(systemctl show -p InvocationID --value \"$u\") && test -n \"$new\" && test \"$new\" != \"$old\" && systemctl is-active --quiet \"$u\"; do t=$((t+2)); if test $t -ge 600; then echo \"$u did not come back within 10 minutes\" >&2; exit 1; fi; sleep 2; done; echo \"$u restarted (invocation $new)\""
    ));
    if restore {
        // The node holds again what the backup holds: retired (kept), so a new run saves anew.
        lines.push(sh!("mv \"$b\" \"$b.retired-$(date +%s)\""));
    }
    join(&lines)
}

fn join(lines: &[Sh]) -> Sh {
    crate::shell::Sh::__from_sh_macro(lines.iter().map(Sh::as_str).collect::<Vec<_>>().join("\n"))
}

/// The check after a node's restart, run in the host's namespaces: the unit runs as a new
/// invocation, and what the change turned off no longer runs.
pub fn check_script(
    root: &str,
    unit: &str,
    backup: &str,
    kube_proxy_port_closed: bool,
    k3s_flannel_off: bool,
) -> Sh {
    let mut lines = vec![
        sh!("r={}; b={}; u={}", root, format!("{root}{backup}"), unit),
        sh!(
            "old=$(cat \"$b.invocation\") && new=$(systemctl show -p InvocationID --value \"$u\") && test -n \"$new\" && test \"$new\" != \"$old\" && systemctl is-active --quiet \"$u\" || {{ echo \"$u has not restarted since the change\" >&2; exit 1; }}"
        ),
    ];
    if kube_proxy_port_closed {
        // /proc/net/tcp lists listening sockets (state 0A) by hex port: no tool needed.
        let port = format!(":{KUBE_PROXY_HEALTH_PORT:04X}");
        lines.push(sh!(
            "if cat {}/proc/net/tcp {}/proc/net/tcp6 2>/dev/null | awk '$4 == \"0A\" {{ print $2 }}' | grep -q -- {}; then echo 'the embedded kube-proxy still serves its health port' >&2; exit 1; fi",
            root,
            root,
            format!("{port}$")
        ));
    }
    if k3s_flannel_off {
        // k3s writes Flannel's net-conf.json each time it starts its embedded Flannel: one
        // written since the unit's process started means Flannel runs again (start time from
        // /proc/<pid>/stat field 22, in USER_HZ ticks since boot).
        lines.push(sh!(
            "f=\"$r\"/var/lib/rancher/k3s/agent/etc/flannel/net-conf.json; pid=$(systemctl show -p MainPID --value \"$u\"); boot=$(awk '$1 == \"btime\" {{ print $2 }}' \"$r/proc/stat\"); ticks=$(sed 's/.*) //' \"$r/proc/$pid/stat\" | awk '{{ print $20 }}'); start=$((boot + ticks / 100)); if test -e \"$f\" && test \"$(date -r \"$f\" +%s)\" -ge \"$start\"; then echo \"$u started its embedded Flannel again (it wrote $f after starting)\" >&2; exit 1; fi"
        ));
    }
    lines.push(sh!("echo \"$u runs without what the plan turned off\""));
    join(&lines)
}

/// A command run in the host's namespaces from a privileged hostPID pod.
fn in_host(script: &Sh) -> Vec<String> {
    [
        "nsenter", "-t", "1", "-m", "-u", "-i", "-n", "-p", "--", "sh", "-ec",
    ]
    .iter()
    .map(|w| w.to_string())
    .chain(std::iter::once(script.as_str().to_string()))
    .collect()
}

fn node_pod(purpose: &str, node: &str, image: &str, script: &Sh) -> NodePod {
    agent::pod(purpose, node, image, in_host(script))
}

/// One node's change (or its undo), then its check.
fn node_step(
    change: &Change,
    node: &PlanNode,
    plan_id: &str,
    image: &str,
    restore: bool,
) -> (S, S) {
    let unit = change.unit(node);
    let role = if node.control_plane {
        "server"
    } else {
        "agent"
    };
    let host = match &node.ip {
        Some(ip) => format!("{} ({ip})", node.name),
        None => node.name.clone(),
    };
    let dropin = format!("{}/{DROPIN}", change.dist.config_dir);
    // Agents take these settings from their server; they only restart to read them.
    let settings = if node.control_plane {
        change.settings.clone()
    } else {
        Vec::new()
    };
    let remove = change.removed(node);
    let backup = backup_dir(plan_id, unit);
    let script = host_script("", unit, &dropin, &settings, &remove, &backup, restore);
    let pod = node_pod(
        if restore { "service-undo" } else { "service" },
        &node.name,
        image,
        &script,
    );
    let description = if restore {
        format!(
            "On {role} {host}: put back what the plan changed for {} (remove {dropin}, restore the saved files), restart {unit} and wait until it runs again.",
            change.dist.name
        )
    } else {
        let mut what = Vec::new();
        if !settings.is_empty() {
            what.push(format!("write {dropin} ({})", settings.join(", ")));
        }
        if !remove.is_empty() {
            what.push(format!("remove {}", remove.join(", ")));
        }
        what.push(format!("restart {unit}"));
        format!(
            "On {role} {host}: {} ({} saved first in {backup} on the node), and wait until it runs again.",
            what.join(", "),
            if remove.is_empty() {
                "the drop-in"
            } else {
                "the drop-in and the removed files"
            }
        )
    };
    let mut step = s(
        Action::NodeService {
            node: node.name.clone(),
            unit: unit.to_string(),
            dropin: dropin.clone(),
            settings: settings.clone(),
            remove: remove.clone(),
            backup: backup.clone(),
            restore,
            pod: pod.clone(),
        },
        description,
        agent::run(&node.name, &pod),
        format!("{unit} on {} runs as a new invocation", node.name),
        900,
    )
    .note(format!(
        "The pod enters the host's namespaces (`nsenter -t 1`) and runs systemctl there; containers keep running while {unit} restarts. If kubectl's attach breaks while the node's service restarts, follow the pod with `kubectl -n kube-system logs -f {}` until it completes.",
        pod.name
    ));
    if node.control_plane && !restore && !settings.is_empty() {
        step = step.note(format!(
            "Flags on {unit}'s command line win over config files: if its unit or environment file passes {}, remove them there before this step.",
            settings
                .iter()
                .map(|s| format!("--{}", s.split(':').next().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(" / ")
        ));
    }
    let check = check_step(change, node, unit, &backup, image, restore);
    (step, check)
}

/// After a node's restart: the node is Ready, the unit runs as a new invocation, and what
/// was turned off is gone (the kube-proxy mirror pod on RKE2, the health port on k3s).
fn check_step(
    change: &Change,
    node: &PlanNode,
    unit: &str,
    backup: &str,
    image: &str,
    restore: bool,
) -> S {
    let k3s_proxy_gone = !restore && change.kube_proxy_off && !change.rke2();
    let k3s_flannel_gone = !restore && change.bundled.is_some() && !change.rke2();
    let mut probes = vec![
        Probe::NodesReady,
        Probe::NodeCheck {
            node: node.name.clone(),
            what: format!("{unit} restarted"),
            pod: node_pod(
                "service-check",
                &node.name,
                image,
                &check_script("", unit, backup, k3s_proxy_gone, k3s_flannel_gone),
            ),
        },
    ];
    if !restore && change.rke2() && change.kube_proxy_off {
        probes.push(Probe::Absent {
            object: ObjectRef::new(
                "pod",
                Some("kube-system"),
                &format!("kube-proxy-{}", node.name),
            ),
        });
    }
    let mut gone = Vec::new();
    if k3s_flannel_gone {
        gone.push("k3s did not start its Flannel again");
    }
    if k3s_proxy_gone {
        gone.push("nothing serves kube-proxy's health port");
    }
    if !restore && change.rke2() && change.kube_proxy_off {
        gone.push("its kube-proxy mirror pod is gone");
    }
    ops::verify(
        &format!("{unit} on {} restarted", node.name),
        probes,
        format!(
            "Check {}: Ready again, {unit} runs as a new invocation{}.",
            node.name,
            if gone.is_empty() {
                String::new()
            } else {
                format!(", {}", gone.join(", "))
            }
        ),
        "every probe passes",
    )
}

/// The forward steps and their rollback (in rollback order): servers first, one at a time,
/// then agents, each restart followed by its check; on RKE2, the bundled CNI's HelmChart is
/// then backed up and deleted and its DaemonSet waited for to go.
pub fn switch_off(
    cluster: &Cluster,
    replace_kube_proxy: bool,
    plan_id: &str,
    image: &str,
) -> (Vec<S>, Vec<S>) {
    let Some(change) = Change::of(cluster, replace_kube_proxy) else {
        return (Vec::new(), Vec::new());
    };
    let mut steps = Vec::new();
    let mut rollback = Vec::new();
    let mut nodes: Vec<&PlanNode> = cluster.nodes.iter().filter(|n| n.control_plane).collect();
    if change.agents_change() {
        nodes.extend(cluster.nodes.iter().filter(|n| !n.control_plane));
    }
    for node in nodes {
        let (step, check) = node_step(&change, node, plan_id, image, false);
        steps.push(step);
        steps.push(check);
        let (undo, undo_check) = node_step(&change, node, plan_id, image, true);
        rollback.splice(0..0, [undo, undo_check]);
    }
    if let Some(chart) = change.chart() {
        let (delete, restore) = ops::delete_object(
            ObjectRef::new("helmcharts.helm.cattle.io", Some("kube-system"), &chart),
            &format!(
                ": RKE2's {} chart (its helm controller uninstalls the release; deleting the DaemonSet would only have it recreated)",
                change.bundled.map(|c| c.to_string()).unwrap_or_default()
            ),
        );
        steps.push(delete);
        rollback.insert(0, restore);
        if let Some((ns, ds)) = cluster.daemonset_of(change.bundled.unwrap_or(CniKind::Canal)) {
            steps.push(ops::verify(
                &format!("{chart} uninstalled"),
                vec![Probe::Absent {
                    object: ObjectRef::new("daemonset", Some(&ns), &ds),
                }],
                format!("Wait until the helm controller has uninstalled {chart}: DaemonSet {ns}/{ds} is gone."),
                format!("DaemonSet {ns}/{ds} does not exist"),
            ));
        }
    }
    (steps, rollback)
}

/// RKE2 documents changing the CNI of a running cluster as unsupported (docs.rke2.io,
/// networking/basic_network_options): stated with how the plan handles it.
pub fn risk(cluster: &Cluster) -> Option<crate::model::Risk> {
    let change = Change::of(cluster, false)?;
    let chart = change.chart()?;
    Some(crate::model::Risk {
        rule: None,
        effect: format!(
            "RKE2 documents switching the CNI of a running cluster as untested (stale interfaces or routes may stay behind); {chart} is RKE2's bundled CNI"
        ),
        handling: format!(
            "the plan switches it off the RKE2 way (`cni: none` on every server, its HelmChart {chart} deleted and its DaemonSet waited for), then cleans every node with the node agent and checks each; try it on a copy of the cluster first"
        ),
    })
}

/// Whether the source CNI is the distribution's own (its DaemonSet, if any, must not be
/// deleted: the distribution recreates it).
pub fn is_bundled(cluster: &Cluster, cni: CniKind) -> bool {
    cluster
        .facts
        .cnis
        .iter()
        .any(|c| c.kind == cni && c.install == Some(InstallMethod::Bundled))
}

/// k3s and RKE2 have no kube-proxy DaemonSet or ConfigMap to delete: theirs goes with the
/// distribution's config.
pub fn runs_own_kube_proxy(cluster: &Cluster) -> bool {
    matches!(
        cluster.facts.platform.kind,
        PlatformKind::K3s | PlatformKind::Rke2
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// A host under `root`: `systemctl` replaced by a script that keeps the unit's invocation
    /// ID in a file, counts restarts, and says the unit is active.
    struct Host {
        dir: tempfile::TempDir,
    }

    impl Host {
        fn new() -> Host {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let bin = dir.path().join("bin");
            std::fs::create_dir_all(&bin).unwrap_or_else(|e| panic!("{e}"));
            let state = dir.path().join("state");
            std::fs::create_dir_all(&state).unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(state.join("invocation"), "1\n").unwrap_or_else(|e| panic!("{e}"));
            let fake = format!(
                "#!/bin/sh\nstate={}\ncase \"$1\" in\nshow) cat \"$state/invocation\" ;;\nrestart) n=$(cat \"$state/invocation\"); echo $((n+1)) > \"$state/invocation\"; echo \"$2\" >> \"$state/restarts\" ;;\nis-active) exit 0 ;;\n*) exit 2 ;;\nesac\n",
                state.display()
            );
            std::fs::write(bin.join("systemctl"), fake).unwrap_or_else(|e| panic!("{e}"));
            let ok = std::process::Command::new("chmod")
                .arg("+x")
                .arg(bin.join("systemctl"))
                .status()
                .is_ok_and(|s| s.success());
            assert!(ok);
            Host { dir }
        }

        fn root(&self) -> String {
            self.dir.path().join("root").display().to_string()
        }

        fn path(&self, file: &str) -> std::path::PathBuf {
            Path::new(&self.root()).join(file.trim_start_matches('/'))
        }

        fn write(&self, file: &str, text: &str) {
            let path = self.path(file);
            std::fs::create_dir_all(path.parent().unwrap_or(Path::new("/")))
                .unwrap_or_else(|e| panic!("{e}"));
            std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
        }

        fn read(&self, file: &str) -> Option<String> {
            std::fs::read_to_string(self.path(file)).ok()
        }

        fn read_state(&self, name: &str) -> String {
            std::fs::read_to_string(self.dir.path().join("state").join(name))
                .unwrap_or_default()
                .trim()
                .to_string()
        }

        fn restarts(&self) -> usize {
            std::fs::read_to_string(self.dir.path().join("state/restarts"))
                .unwrap_or_default()
                .lines()
                .count()
        }

        /// Runs a script as the node pod does (`sh -ec`); returns (success, stderr).
        fn run(&self, script: &Sh) -> (bool, String) {
            let path = format!(
                "{}:{}",
                self.dir.path().join("bin").display(),
                std::env::var("PATH").unwrap_or_default()
            );
            let out = std::process::Command::new("sh")
                .arg("-ec")
                .arg(script.as_str())
                .env("PATH", path)
                .output()
                .unwrap_or_else(|e| panic!("{e}"));
            (
                out.status.success(),
                String::from_utf8_lossy(&out.stderr).into_owned(),
            )
        }
    }

    const DROPIN_PATH: &str = "/etc/rancher/rke2/config.yaml.d/90-cniswap.yaml";
    const CHART: &str = "/var/lib/rancher/rke2/server/manifests/rke2-canal.yaml";
    const BACKUP: &str = "/var/lib/cniswap/backups/p1/rke2-server";

    fn scripts(host: &Host) -> (Sh, Sh, Sh) {
        let settings = vec![
            "cni: none".to_string(),
            "disable-kube-proxy: true".to_string(),
        ];
        let remove = vec![RKE2_KUBE_PROXY_MANIFEST.to_string(), CHART.to_string()];
        let root = host.root();
        (
            host_script(
                &root,
                "rke2-server",
                DROPIN_PATH,
                &settings,
                &remove,
                BACKUP,
                false,
            ),
            host_script(
                &root,
                "rke2-server",
                DROPIN_PATH,
                &settings,
                &remove,
                BACKUP,
                true,
            ),
            check_script(&root, "rke2-server", BACKUP, true, false),
        )
    }

    #[test]
    fn a_node_change_saves_once_restarts_and_its_undo_puts_everything_back() {
        let host = Host::new();
        host.write("/etc/rancher/rke2/config.yaml", "token-file: /x\n");
        host.write(RKE2_KUBE_PROXY_MANIFEST, "kind: Pod # kube-proxy\n");
        host.write(CHART, "kind: HelmChart\n");
        let (forward, undo, check) = scripts(&host);

        // Before any change the check fails: no invocation recorded, nothing restarted.
        assert!(!host.run(&check).0);
        let (ok, err) = host.run(&forward);
        assert!(ok, "{err}");
        assert_eq!(host.restarts(), 1);
        let dropin = host.read(DROPIN_PATH).unwrap_or_default();
        assert!(
            dropin.ends_with("cni: none\ndisable-kube-proxy: true\n"),
            "{dropin}"
        );
        assert!(dropin.starts_with("# Written by cniswap"), "{dropin}");
        assert_eq!(host.read(RKE2_KUBE_PROXY_MANIFEST), None);
        assert_eq!(host.read(CHART), None);
        // The user's own config is never touched.
        assert_eq!(
            host.read("/etc/rancher/rke2/config.yaml").as_deref(),
            Some("token-file: /x\n")
        );
        let (ok, err) = host.run(&check);
        assert!(ok, "{err}");

        // A resumed step keeps the first backup (the state before the change).
        let (ok, err) = host.run(&forward);
        assert!(ok, "{err}");
        assert_eq!(
            host.read(&format!("{BACKUP}/files{RKE2_KUBE_PROXY_MANIFEST}"))
                .as_deref(),
            Some("kind: Pod # kube-proxy\n")
        );
        assert_eq!(host.read(&format!("{BACKUP}/files{DROPIN_PATH}")), None);

        let (ok, err) = host.run(&undo);
        assert!(ok, "{err}");
        assert_eq!(host.restarts(), 3);
        assert_eq!(host.read(DROPIN_PATH), None);
        assert_eq!(
            host.read(RKE2_KUBE_PROXY_MANIFEST).as_deref(),
            Some("kind: Pod # kube-proxy\n")
        );
        assert_eq!(host.read(CHART).as_deref(), Some("kind: HelmChart\n"));
        // The backup is retired (kept aside): a new run saves the node as it is then.
        assert!(!host.path(BACKUP).exists());
        let parent = host.path("/var/lib/cniswap/backups/p1");
        let retired = std::fs::read_dir(&parent)
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with("rke2-server.retired-")
                    })
                    .count()
            })
            .unwrap_or_default();
        assert_eq!(retired, 1);
        // An undo with nothing saved changes nothing and restarts nothing.
        let (ok, err) = host.run(&undo);
        assert!(ok, "{err}");
        assert_eq!(host.restarts(), 3);
    }

    #[test]
    fn the_check_fails_while_kube_proxy_still_serves_its_health_port() {
        let host = Host::new();
        let (forward, _, check) = scripts(&host);
        assert!(host.run(&forward).0);
        // A listening socket on 10256 (0x2810), as the kernel lists it.
        host.write(
            "/proc/net/tcp",
            "  sl  local_address rem_address   st\n   0: 00000000:2810 00000000:0000 0A 00000000:00000000\n",
        );
        let (ok, err) = host.run(&check);
        assert!(!ok);
        assert!(err.contains("kube-proxy"), "{err}");
        // An established connection from that port is not a server.
        host.write(
            "/proc/net/tcp",
            "  sl  local_address rem_address   st\n   0: 0100007F:2810 0100007F:9C40 01 00000000:00000000\n",
        );
        let (ok, err) = host.run(&check);
        assert!(ok, "{err}");
    }

    #[test]
    fn the_check_fails_when_k3s_started_its_flannel_again() {
        let host = Host::new();
        let root = host.root();
        let forward = host_script(
            &root,
            "k3s",
            "/etc/rancher/k3s/config.yaml.d/90-cniswap.yaml",
            &["flannel-backend: none".to_string()],
            &[],
            "/var/lib/cniswap/backups/p1/k3s",
            false,
        );
        let check = check_script(&root, "k3s", "/var/lib/cniswap/backups/p1/k3s", false, true);
        assert!(host.run(&forward).0);
        // The unit's main process started a minute ago (the stand-in systemctl answers every
        // `show` with its invocation number, so that is the MainPID here).
        let pid = host.read_state("invocation");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        host.write("/proc/stat", &format!("cpu 1\nbtime {}\n", now - 10_000));
        host.write(
            &format!("/proc/{pid}/stat"),
            &format!(
                "{pid} (k3s-server) S 1 1 1 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 {} 1 1\n",
                (10_000 - 60) * 100
            ),
        );
        // No Flannel config written since: k3s runs without Flannel.
        let (ok, err) = host.run(&check);
        assert!(ok, "{err}");
        // k3s wrote Flannel's config after it started: Flannel runs again.
        host.write("/var/lib/rancher/k3s/agent/etc/flannel/net-conf.json", "{}");
        let (ok, err) = host.run(&check);
        assert!(!ok);
        assert!(err.contains("embedded Flannel"), "{err}");
    }
}
