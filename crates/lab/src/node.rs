//! A real node: a network namespace (see `network`) plus a private mount namespace in which
//! its own containerd and kubelet run. Inside, the node sees its own /var/lib, /var/log, /run,
//! /etc/cni and /opt/cni, a sysfs of its network namespace and the cgroup hierarchies, so that
//! hostPath volumes (/etc/cni/net.d, /opt/cni/bin, /run/flannel) land on this node only.

use crate::error::{LabError, Result};
use crate::process::{self, Spawn, run, run_in_node};
use crate::state::{NodeRecord, ProcessRecord};
use std::path::{Path, PathBuf};

/// cgroup v1 controllers mounted inside a node. runc 1.1 reads only the first entry of
/// /sys/fs/cgroup and tmpfs lists the newest first, so `unified` and `systemd` are created
/// before these (research/lab.md).
const V1_CONTROLLERS: &[&str] = &[
    "hugetlb", "pids", "blkio", "freezer", "devices", "memory", "cpuset", "cpuacct", "cpu",
];

/// Directories each node has for itself: node path -> directory under the node's own dir.
const PRIVATE_DIRS: &[(&str, &str)] = &[
    ("/var/lib", "var-lib"),
    ("/var/log", "var-log"),
    ("/etc/cni", "etc-cni"),
    ("/opt/cni", "opt-cni"),
    // containerd's configuration where tools (cniswap node inventory) look for it.
    ("/etc/containerd", "etc-containerd"),
];

/// Reference CNI plugins every node has installed, as a distribution would ship them
/// (Debian's containernetworking-plugins). Flannel's own plugin is copied in by its DaemonSet.
const REFERENCE_PLUGINS: &[&str] = &["bridge", "host-local", "loopback", "portmap"];
const REFERENCE_PLUGIN_DIR: &str = "/usr/lib/cni";

/// Host directories that must exist as mount points; created if missing (and removed by
/// `down` when the lab created them).
pub fn mount_points() -> Vec<&'static str> {
    PRIVATE_DIRS.iter().map(|(path, _)| *path).collect()
}

/// Creates the node's directories and its persistent mount namespace.
pub fn create_mount_namespace(record: &NodeRecord) -> Result<()> {
    for (_, dir) in PRIVATE_DIRS {
        let path = record.dir.join("root").join(dir);
        std::fs::create_dir_all(&path)
            .map_err(LabError::io(format!("create {}", path.display())))?;
    }
    let bin = record.dir.join("root/opt-cni/bin");
    std::fs::create_dir_all(&bin).map_err(LabError::io(format!("create {}", bin.display())))?;
    std::fs::create_dir_all(record.dir.join("root/etc-cni/net.d"))
        .map_err(LabError::io("create etc-cni/net.d"))?;
    for plugin in REFERENCE_PLUGINS {
        let from = Path::new(REFERENCE_PLUGIN_DIR).join(plugin);
        std::fs::copy(&from, bin.join(plugin)).map_err(LabError::io(format!(
            "copy the CNI plugin {} (install Debian's containernetworking-plugins)",
            from.display()
        )))?;
    }
    // The namespace file must exist before unshare binds the namespace onto it.
    std::fs::write(&record.mount_ns, b"").map_err(LabError::io(format!(
        "create {}",
        record.mount_ns.display()
    )))?;

    let mut script = String::from("set -e\nmount -t sysfs sysfs /sys\n");
    script.push_str("mount -t tmpfs -o mode=755 cgroup /sys/fs/cgroup\n");
    script.push_str("mkdir /sys/fs/cgroup/unified /sys/fs/cgroup/systemd\n");
    script.push_str("mount -t cgroup2 cgroup2 /sys/fs/cgroup/unified\n");
    script.push_str("mount -t cgroup -o none,name=systemd cgroup /sys/fs/cgroup/systemd\n");
    for controller in V1_CONTROLLERS {
        script.push_str(&format!(
            "mkdir /sys/fs/cgroup/{controller}\nmount -t cgroup -o {controller} cgroup /sys/fs/cgroup/{controller}\n"
        ));
    }
    script.push_str("mount -t bpf bpf /sys/fs/bpf\n");
    script.push_str("mount -t tmpfs -o mode=755 tmpfs /run\n");
    for (path, dir) in PRIVATE_DIRS {
        script.push_str(&format!(
            "mount --bind '{}' {path}\n",
            record.dir.join("root").join(dir).display()
        ));
    }
    // Shared within the node (new peer groups: nothing reaches the host), as on a systemd
    // host: CNI pods mount hostPaths with HostToContainer or Bidirectional propagation, which
    // containerd accepts only from a shared (or slave) mount.
    script.push_str("mount --make-rshared /\n");
    run(
        "nsenter",
        &[
            &format!("--net=/run/netns/{}", record.netns),
            "unshare",
            &format!("--mount={}", record.mount_ns.display()),
            "--propagation",
            "private",
            "sh",
            "-c",
            &script,
        ],
    )
    .map_err(|e| {
        LabError::Other(format!(
            "node {}: set up its mount namespace: {e}",
            record.name
        ))
    })?;
    Ok(())
}

/// containerd's configuration: its paths are the node's own (inside its mount namespace).
pub fn containerd_config(pause_image: &str) -> String {
    format!(
        r#"version = 2
root = "/var/lib/containerd"
state = "/run/containerd"
disabled_plugins = ["io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = "/run/containerd/containerd.sock"

[plugins."io.containerd.internal.v1.opt"]
  path = "/var/lib/containerd-opt"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{pause_image}"
  # Root here lacks CAP_SYS_RESOURCE: runc cannot lower oom_score_adj (research/lab.md).
  restrict_oom_score_adj = true
  disable_apparmor = true
  systemd_cgroup = false
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/opt/cni/bin"
    conf_dir = "/etc/cni/net.d"
"#
    )
}

pub const CONTAINERD_SOCKET: &str = "/run/containerd/containerd.sock";

/// The kubelet's configuration file.
pub fn kubelet_config(record: &NodeRecord, ca: &Path, control_plane: bool) -> String {
    let taints = if control_plane {
        serde_json::json!([{"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"}])
    } else {
        serde_json::json!([])
    };
    let value = serde_json::json!({
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        // This machine mounts cgroup v1 controllers; Kubernetes 1.35 needs this to accept them.
        "failCgroupV1": false,
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": record.cgroup_root,
        "containerRuntimeEndpoint": format!("unix://{CONTAINERD_SOCKET}"),
        "authentication": {
            "anonymous": {"enabled": false},
            "webhook": {"enabled": true},
            "x509": {"clientCAFile": ca},
        },
        "authorization": {"mode": "Webhook"},
        "clusterDNS": [crate::DNS_SERVICE_IP],
        "clusterDomain": "cluster.local",
        "resolvConf": "",
        // Raising priority needs CAP_SYS_RESOURCE, which root lacks here (research/lab.md).
        "oomScoreAdj": 0,
        "failSwapOn": false,
        "registerWithTaints": taints,
        "serializeImagePulls": false,
        "imageGCHighThresholdPercent": 100,
        "evictionHard": {"memory.available": "50Mi", "nodefs.available": "1%",
                         "imagefs.available": "1%", "nodefs.inodesFree": "1%"},
        "localStorageCapacityIsolation": false,
        "protectKernelDefaults": false,
        "makeIPTablesUtilChains": true,
        "nodeStatusUpdateFrequency": "5s",
        "syncFrequency": "10s",
        "fileCheckFrequency": "10s",
        "shutdownGracePeriod": "0s",
        "podPidsLimit": -1,
    });
    serde_json::to_string_pretty(&value).unwrap_or_default()
}

/// Creates the kubelet's cgroup root in every controller hierarchy (the kubelet refuses a
/// root that does not exist), seeding cpuset from its parent as cgroup v1 requires.
pub fn create_cgroup_root(record: &NodeRecord) -> Result<()> {
    let root = &record.cgroup_root;
    let mut script = String::from("set -e\n");
    for controller in V1_CONTROLLERS.iter().chain(["systemd", "unified"].iter()) {
        script.push_str(&format!("mkdir -p /sys/fs/cgroup/{controller}{root}\n"));
    }
    script.push_str(&format!(
        "cat /sys/fs/cgroup/cpuset/cpuset.cpus > /sys/fs/cgroup/cpuset{root}/cpuset.cpus\n\
         cat /sys/fs/cgroup/cpuset/cpuset.mems > /sys/fs/cgroup/cpuset{root}/cpuset.mems\n"
    ));
    run_in_node(&record.netns, &record.mount_ns, &script)
        .map_err(|e| LabError::Other(format!("node {}: create cgroup {root}: {e}", record.name)))?;
    Ok(())
}

/// Kills every process left in the node's cgroups (pods, whose shims outlived containerd)
/// and removes the cgroups, deepest first, in every hierarchy including the node-private ones.
pub fn remove_cgroups(record: &NodeRecord) {
    let root = &record.cgroup_root;
    let controllers: Vec<&str> = V1_CONTROLLERS
        .iter()
        .copied()
        .chain(["systemd", "unified"])
        .collect();
    for _ in 0..20 {
        let mut pids = Vec::new();
        for controller in &controllers {
            let script = format!(
                "d=/sys/fs/cgroup/{controller}{root}; [ -d $d ] && find $d -name cgroup.procs -exec cat {{}} + || true"
            );
            if let Ok(out) = run_in_node(&record.netns, &record.mount_ns, &script) {
                pids.extend(out.split_whitespace().filter_map(|p| p.parse::<u32>().ok()));
            }
        }
        if pids.is_empty() {
            break;
        }
        for pid in pids {
            process::kill_pid(pid);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    for controller in &controllers {
        let script = format!(
            "d=/sys/fs/cgroup/{controller}{root}; [ -d $d ] && find $d -depth -type d -exec rmdir {{}} + || true"
        );
        let _ = run_in_node(&record.netns, &record.mount_ns, &script);
    }
}

/// Starts containerd in the node's namespaces.
/// Where the node's containerd configuration is written (seen as /etc/containerd/config.toml
/// inside the node).
pub fn containerd_config_path(record: &NodeRecord) -> PathBuf {
    record.dir.join("root/etc-containerd/config.toml")
}

pub fn start_containerd(
    record: &NodeRecord,
    binary: &Path,
) -> Result<(ProcessRecord, std::process::Child)> {
    process::spawn(Spawn {
        name: format!("containerd@{}", record.name),
        program: binary,
        args: vec!["--config".into(), "/etc/containerd/config.toml".into()],
        env: vec![],
        log: record.dir.join("containerd.log"),
        namespaces: Some((&record.netns, &record.mount_ns)),
        node: Some(record.name.clone()),
    })
}

pub fn start_kubelet(
    record: &NodeRecord,
    binary: &Path,
) -> Result<(ProcessRecord, std::process::Child)> {
    process::spawn(Spawn {
        name: format!("kubelet@{}", record.name),
        program: binary,
        args: vec![
            format!("--config={}", record.dir.join("kubelet.json").display()),
            format!(
                "--kubeconfig={}",
                record.dir.join("kubelet.kubeconfig").display()
            ),
            format!("--hostname-override={}", record.name),
            format!("--node-ip={}", record.ip),
            "--v=1".into(),
        ],
        env: vec![],
        log: record.dir.join("kubelet.log"),
        namespaces: Some((&record.netns, &record.mount_ns)),
        node: Some(record.name.clone()),
    })
}

/// Waits until containerd answers on its socket.
pub fn wait_containerd(record: &NodeRecord, process: &ProcessRecord) -> Result<()> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        if run_in_node(
            &record.netns,
            &record.mount_ns,
            &format!("ctr --address {CONTAINERD_SOCKET} version"),
        )
        .is_ok()
        {
            return Ok(());
        }
        if !process::alive(process) {
            return Err(process::failed(process, "exited"));
        }
        if std::time::Instant::now() > deadline {
            return Err(process::failed(
                process,
                "its socket did not answer within 60 s",
            ));
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// Imports an OCI archive into the node's containerd, where the kubelet finds it.
pub fn import_image(record: &NodeRecord, archive: &Path) -> Result<()> {
    run_in_node(
        &record.netns,
        &record.mount_ns,
        &format!(
            "ctr --address {CONTAINERD_SOCKET} -n k8s.io images import '{}'",
            archive.display()
        ),
    )
    .map(|_| ())
    .map_err(|e| {
        LabError::Other(format!(
            "node {}: import {}: {e}",
            record.name,
            archive.display()
        ))
    })
}

/// Unbinds the node's mount namespace; it disappears with its last process.
pub fn release_mount_namespace(mount_ns: &Path) {
    let _ = run("umount", &[&mount_ns.display().to_string()]);
    let _ = std::fs::remove_file(mount_ns);
}

pub fn node_dir(lab_dir: &Path, name: &str) -> PathBuf {
    lab_dir.join("nodes").join(name)
}
