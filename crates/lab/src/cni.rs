//! The CNI a lab runs, and what a plan needs to install any CNI on it without the internet:
//! Cilium's chart (from the cilium module) with the lab's Helm values, Calico's manifest (from
//! the calico module) adjusted for the lab, and the lab's own Flannel manifest, written under
//! the lab's directory; `plan_flags` names them as `cniswap plan` takes them.
//!
//! Host safety: the lab's nodes share the machine's kernel, PID namespace and cgroup2 hierarchy.
//! Whatever a CNI does through /proc of PID 1, the cgroup2 root or kernel-wide sysctls would
//! reach the real host, so the values and the manifest switch those parts off (see
//! [`cilium_values`] and [`calico_manifest`]); the lab tests compare the host before and after.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::error::{LabError, Result};
use crate::image::cni::{MIRROR, mirrored};

/// Which CNI a lab starts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cni {
    #[default]
    Flannel,
    Calico,
    Cilium,
}

impl Cni {
    pub const ALL: [Cni; 3] = [Cni::Flannel, Cni::Calico, Cni::Cilium];

    pub fn name(self) -> &'static str {
        match self {
            Cni::Flannel => "flannel",
            Cni::Calico => "calico",
            Cni::Cilium => "cilium",
        }
    }
}

impl std::fmt::Display for Cni {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Cni {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        Cni::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| format!("unknown CNI {s:?}: flannel, calico or cilium"))
    }
}

/// Whether the lab runs kube-proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KubeProxy {
    /// kube-proxy in iptables mode, as kubeadm deploys it.
    #[default]
    Iptables,
    /// No kube-proxy: Cilium's kube-proxy replacement. Refused on this lab.
    None,
}

impl KubeProxy {
    /// Why the lab refuses `--kube-proxy none`.
    pub const REFUSED: &'static str = "--kube-proxy none is not supported on this lab: Cilium's \
        kube-proxy replacement attaches its socket load balancer to the cgroup2 root, and the \
        lab's nodes share that root with this machine (they have no cgroup namespace of their \
        own, unlike kind's nodes), so three agents and the host would all be steered by it. \
        Use --kube-proxy iptables (the default); see docs/lab.md";
}

/// Cilium's pod network: distinct from Flannel's and Calico's (10.244.0.0/16), so that a
/// migration between them never hands out the same address twice.
pub const CILIUM_POD_CIDR: &str = "10.245.0.0/16";
/// Cilium's VXLAN port: neither Flannel's 4789 (as Talos deploys it) nor 8472, as Cilium's
/// migration guide asks.
pub const CILIUM_TUNNEL_PORT: u16 = 8473;

/// Where the files a plan installs from are, under the lab's directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InstallFiles {
    /// `DIR/charts/cilium`: the chart directory of the pinned cilium module.
    pub cilium_chart: PathBuf,
    /// `DIR/values/cilium.yaml`: the values the lab needs (host safety, images, network).
    pub cilium_values: PathBuf,
    /// `DIR/manifests/calico.yaml`: the module's calico-vxlan.yaml, adjusted for the lab.
    pub calico_manifest: PathBuf,
    /// `DIR/manifests/calico-flannel-migration.yaml` and `calico-migration-job.yaml`: the
    /// module's Flannel migration manifests, adjusted the same way.
    pub calico_flannel_migration: PathBuf,
    pub calico_migration_job: PathBuf,
    /// `DIR/manifests/flannel.yaml`: the lab's own Flannel.
    pub flannel_manifest: PathBuf,
}

impl InstallFiles {
    pub fn under(dir: &Path) -> InstallFiles {
        InstallFiles {
            cilium_chart: dir.join("charts/cilium"),
            cilium_values: dir.join("values/cilium.yaml"),
            calico_manifest: dir.join("manifests/calico.yaml"),
            calico_flannel_migration: dir.join("manifests/calico-flannel-migration.yaml"),
            calico_migration_job: dir.join("manifests/calico-migration-job.yaml"),
            flannel_manifest: dir.join("manifests/flannel.yaml"),
        }
    }
}

/// What the files are written with.
pub struct LabNetwork<'a> {
    /// The API server's address and port as the nodes reach it.
    pub api_host: &'a str,
    pub api_port: u16,
    /// Flannel's network, which Calico's pool must equal for Calico's Flannel migration.
    pub pod_cidr: &'a str,
}

/// The Helm values the lab needs for Cilium, as YAML.
///
/// - images from the mirror names the lab imports, never pulled;
/// - `cgroup.autoMount.enabled=false` and `sysctlfix.enabled=false`: both init containers
///   nsenter PID 1 (the real host: the lab's pods share its PID namespace) to mount cgroup2 and
///   write /etc/sysctl.d; `cgroup.hostRoot` is the node's own cgroup2 mount instead;
/// - `bpf.autoMount.enabled=false`: every node already has its own bpffs at /sys/fs/bpf;
/// - the agent's `procfs` points at a directory holding only the node's /proc/sys/net: the
///   chart mounts the host's /proc/sys/kernel for the agent, which would set the machine's
///   `kernel.unprivileged_bpf_disabled` (irreversibly to 1) and `kernel.timer_migration`;
///   without it those writes fail, which the agent tolerates;
/// - kube-proxy stays (`kubeProxyReplacement=false`, no socket LB: that attaches to the cgroup2
///   root, which is the host's);
/// - no Envoy (C++, not buildable here), so no L7 proxy; no Hubble relay or UI;
/// - capability lists without SYS_RESOURCE, which this machine's bounding set lacks.
pub fn cilium_values(network: &LabNetwork<'_>) -> String {
    format!(
        r#"# Helm values for Cilium on the cniswap lab (written by cniswap-lab; see docs/lab.md).
image:
  repository: {mirror}/cilium/cilium
  tag: {version}
  useDigest: false
  pullPolicy: Never
operator:
  replicas: 1
  image:
    repository: {mirror}/cilium/operator
    tag: {version}
    useDigest: false
    pullPolicy: Never
k8sServiceHost: {api_host}
k8sServicePort: {api_port}
kubeProxyReplacement: false
socketLB:
  enabled: false
routingMode: tunnel
tunnelProtocol: vxlan
tunnelPort: {tunnel_port}
ipv6:
  enabled: false
ipam:
  mode: cluster-pool
  operator:
    clusterPoolIPv4PodCIDRList: ["{cilium_cidr}"]
    clusterPoolIPv4MaskSize: 24
l7Proxy: false
envoy:
  enabled: false
hubble:
  enabled: false
  relay:
    enabled: false
  ui:
    enabled: false
cgroup:
  autoMount:
    enabled: false
  hostRoot: /sys/fs/cgroup/unified
sysctlfix:
  enabled: false
bpf:
  autoMount:
    enabled: false
cni:
  iptablesRemoveAWSRules: false
extraConfig:
  procfs: /lab-host/proc
extraVolumes:
  - name: lab-proc-sys-net
    hostPath:
      path: /proc/sys/net
      type: Directory
extraVolumeMounts:
  - name: lab-proc-sys-net
    mountPath: /lab-host/proc/sys/net
securityContext:
  capabilities:
    ciliumAgent: [CHOWN, KILL, NET_ADMIN, NET_RAW, IPC_LOCK, SYS_MODULE, SYS_ADMIN, DAC_OVERRIDE, FOWNER, SETGID, SETUID, SYSLOG]
    cleanCiliumState: [NET_ADMIN, SYS_MODULE, SYS_ADMIN]
"#,
        mirror = MIRROR,
        version = crate::components::CILIUM_VERSION,
        api_host = network.api_host,
        api_port = network.api_port,
        tunnel_port = CILIUM_TUNNEL_PORT,
        cilium_cidr = CILIUM_POD_CIDR,
    )
}

/// `docker.io/calico/node:v3.28.5` or `calico/node:v3.28.5` -> the mirror's name for it.
pub fn mirror_image(image: &str) -> String {
    let without_digest = image.split('@').next().unwrap_or(image);
    let (first, rest) = without_digest
        .split_once('/')
        .unwrap_or(("", without_digest));
    let has_host = first.contains('.') || first.contains(':') || first == "localhost";
    let path = if has_host || first.is_empty() {
        rest.to_string()
    } else {
        format!("{first}/{rest}")
    };
    let (repository, tag) = path.rsplit_once(':').unwrap_or((&path, "latest"));
    mirrored(repository, tag)
}

/// Settings calico-node gets on the lab, beyond calico-vxlan.yaml's: the pool (Flannel's
/// network, VXLAN always, as Calico's Flannel migration requires), the node address from the
/// Node object (with a second CNI present, "first found" can pick its interface), nft
/// iptables like the lab's kube-proxy, no XDP (its programs are not in this build), no
/// syslog, and the skipped connect-time-LB cleanup of a Felix built without cgo.
const CALICO_NODE_ENV: &[(&str, &str)] = &[
    ("CALICO_IPV4POOL_VXLAN", "Always"),
    ("IP_AUTODETECTION_METHOD", "kubernetes-internal-ip"),
    ("FELIX_IPTABLESBACKEND", "NFT"),
    ("FELIX_XDPENABLED", "false"),
    ("FELIX_LOGSEVERITYSYS", "none"),
    ("FELIX_DEBUGSKIPCTLBCLEANUP", "true"),
];

/// Adjusts one of Calico's manifests (calico-vxlan.yaml, the Flannel migration's calico.yaml
/// or migration-job.yaml) for the lab: images from the mirror, never pulled; calico-node
/// without its `mount-bpffs` init container (it mounts bpffs and cgroup2 in PID 1's mount
/// namespace through the host's /proc: the real host) and the volumes only it used; the pool
/// CIDR and [`CALICO_NODE_ENV`] set as env, where a plan can change them.
pub fn calico_manifest(source: &str, origin: &Path, pod_cidr: &str) -> Result<String> {
    let documents: Vec<Value> = serde_saphyr::from_str_multiple(source)
        .map_err(|e| LabError::Other(format!("read {}: {e}", origin.display())))?;
    let mut out = Vec::new();
    for mut document in documents.into_iter().filter(|d| !d.is_null()) {
        if let Some(spec) = document.pointer_mut("/spec/template/spec") {
            adjust_pod(spec, pod_cidr);
        }
        out.push(document);
    }
    if !out.iter().any(|d| {
        d["kind"] == "DaemonSet" && d["metadata"]["name"] == "calico-node" || d["kind"] == "Job"
    }) {
        return Err(LabError::Other(format!(
            "{}: no calico-node DaemonSet or migration Job; is it one of Calico's manifests?",
            origin.display()
        )));
    }
    to_yaml(&out)
}

fn adjust_pod(spec: &mut Value, pod_cidr: &str) {
    if let Some(init) = spec["initContainers"].as_array_mut() {
        init.retain(|c| c["name"] != "mount-bpffs");
    }
    let uses = |name: &str, spec: &Value| {
        ["initContainers", "containers"].iter().any(|list| {
            spec[list].as_array().is_some_and(|cs| {
                cs.iter().any(|c| {
                    c["volumeMounts"]
                        .as_array()
                        .is_some_and(|ms| ms.iter().any(|m| m["name"] == name))
                })
            })
        })
    };
    let unused: Vec<String> = spec["volumes"]
        .as_array()
        .map(|vs| {
            vs.iter()
                .filter_map(|v| v["name"].as_str())
                .filter(|name| !uses(name, spec))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    if let Some(volumes) = spec["volumes"].as_array_mut() {
        volumes.retain(|v| !unused.iter().any(|name| v["name"] == name.as_str()));
    }
    for list in ["initContainers", "containers"] {
        let Some(containers) = spec[list].as_array_mut() else {
            continue;
        };
        for container in containers {
            if let Some(image) = container["image"].as_str() {
                container["image"] = json!(mirror_image(image));
                container["imagePullPolicy"] = json!("Never");
            }
            if container["name"] == "calico-node" {
                let mut env = vec![("CALICO_IPV4POOL_CIDR", pod_cidr)];
                env.extend(CALICO_NODE_ENV.iter().copied());
                set_env(container, &env);
            }
        }
    }
}

fn set_env(container: &mut Value, settings: &[(&str, &str)]) {
    if !container["env"].is_array() {
        container["env"] = json!([]);
    }
    let Some(env) = container["env"].as_array_mut() else {
        return;
    };
    for (name, value) in settings {
        env.retain(|e| e["name"] != *name);
        env.push(json!({"name": name, "value": value}));
    }
}

/// Objects as a multi-document YAML stream.
pub fn to_yaml(objects: &[Value]) -> Result<String> {
    serde_saphyr::to_string_multiple(objects)
        .map_err(|e| LabError::Other(format!("write YAML: {e}")))
}

/// The arguments `cniswap plan` needs on this lab, per target CNI: with the lab's own images
/// for the node agent (`cniswap`) and the check pods (busybox) when given.
pub fn plan_flags(
    files: &InstallFiles,
    agent_image: Option<&str>,
    helper_image: Option<&str>,
) -> Value {
    let path = |p: &Path| p.display().to_string();
    let mut agent = Vec::new();
    if let Some(image) = agent_image {
        agent = vec!["--agent-image".to_string(), image.to_string()];
    }
    if let Some(image) = helper_image {
        agent.extend(["--helper-image".to_string(), image.to_string()]);
    }
    let with_agent = |mut flags: Vec<String>| {
        flags.extend(agent.iter().cloned());
        flags
    };
    json!({
        "cilium": with_agent(vec![
            "--image-registry".into(), MIRROR.into(),
            "--chart".into(), format!("cilium={}", path(&files.cilium_chart)),
            "--values".into(), path(&files.cilium_values),
        ]),
        "calico": with_agent(vec![
            "--image-registry".into(), MIRROR.into(),
            "--install".into(), "manifest".into(),
            "--manifest".into(), format!("calico={}", path(&files.calico_manifest)),
            "--manifest".into(),
            format!("calico-flannel-migration={}", path(&files.calico_flannel_migration)),
            "--manifest".into(),
            format!("calico-migration-job={}", path(&files.calico_migration_job)),
        ]),
        "flannel": with_agent(vec![
            "--install".into(), "manifest".into(),
            "--manifest".into(), format!("flannel={}", path(&files.flannel_manifest)),
        ]),
    })
}

/// Writes every install file under the lab's directory from the pinned modules' files.
pub fn write_install_files(
    files: &InstallFiles,
    cilium_module: &Path,
    calico_module: &Path,
    network: &LabNetwork<'_>,
    flannel_objects: &[Value],
) -> Result<()> {
    copy_dir(
        &cilium_module.join("install/kubernetes/cilium"),
        &files.cilium_chart,
    )?;
    write(&files.cilium_values, &cilium_values(network))?;
    for (from, to) in [
        ("manifests/calico-vxlan.yaml", &files.calico_manifest),
        (
            "manifests/flannel-migration/calico.yaml",
            &files.calico_flannel_migration,
        ),
        (
            "manifests/flannel-migration/migration-job.yaml",
            &files.calico_migration_job,
        ),
    ] {
        let origin = calico_module.join(from);
        let source = std::fs::read_to_string(&origin)
            .map_err(LabError::io(format!("read {}", origin.display())))?;
        write(to, &calico_manifest(&source, &origin, network.pod_cidr)?)?;
    }
    write(&files.flannel_manifest, &to_yaml(flannel_objects)?)?;
    Ok(())
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .map_err(LabError::io(format!("create {}", parent.display())))?;
    }
    std::fs::write(path, text).map_err(LabError::io(format!("write {}", path.display())))
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).map_err(LabError::io(format!("create {}", to.display())))?;
    let entries =
        std::fs::read_dir(from).map_err(LabError::io(format!("read {}", from.display())))?;
    for entry in entries {
        let entry = entry.map_err(LabError::io(format!("read {}", from.display())))?;
        let (source, target) = (entry.path(), to.join(entry.file_name()));
        if source.is_dir() {
            copy_dir(&source, &target)?;
        } else {
            std::fs::copy(&source, &target)
                .map_err(LabError::io(format!("copy {}", source.display())))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_are_renamed_to_the_mirror() {
        assert_eq!(
            mirror_image("docker.io/calico/node:v3.28.5"),
            "lab.cniswap.local/calico/node:v3.28.5"
        );
        assert_eq!(
            mirror_image("calico/flannel-migration-controller:v3.28.5"),
            "lab.cniswap.local/calico/flannel-migration-controller:v3.28.5"
        );
        assert_eq!(
            mirror_image("quay.io/cilium/cilium:v1.20.2@sha256:abc"),
            "lab.cniswap.local/cilium/cilium:v1.20.2"
        );
    }

    const MANIFEST: &str = r#"
---
# a comment-only document
---
apiVersion: apps/v1
kind: DaemonSet
metadata: {name: calico-node, namespace: kube-system}
spec:
  template:
    spec:
      initContainers:
        - name: install-cni
          image: docker.io/calico/cni:v3.28.5
          volumeMounts: [{name: cni-bin-dir, mountPath: /host/opt/cni/bin}]
        - name: mount-bpffs
          image: docker.io/calico/node:v3.28.5
          volumeMounts: [{name: sys-fs, mountPath: /sys/fs}, {name: nodeproc, mountPath: /nodeproc}]
      containers:
        - name: calico-node
          image: docker.io/calico/node:v3.28.5
          env:
            - {name: CALICO_IPV4POOL_VXLAN, value: CrossSubnet}
            - {name: FELIX_HEALTHENABLED, value: "true"}
          volumeMounts: [{name: bpffs, mountPath: /sys/fs/bpf}]
      volumes:
        - {name: cni-bin-dir, hostPath: {path: /opt/cni/bin}}
        - {name: sys-fs, hostPath: {path: /sys/fs/}}
        - {name: nodeproc, hostPath: {path: /proc}}
        - {name: bpffs, hostPath: {path: /sys/fs/bpf}}
"#;

    #[test]
    fn calico_loses_the_host_mounts_and_gets_the_lab_settings() {
        let text =
            calico_manifest(MANIFEST, Path::new("calico.yaml"), "10.244.0.0/16").expect("adjusted");
        let docs: Vec<Value> = serde_saphyr::from_str_multiple(&text).expect("yaml");
        assert_eq!(docs.len(), 1, "{text}");
        let spec = &docs[0]["spec"]["template"]["spec"];
        let init: Vec<&str> = spec["initContainers"]
            .as_array()
            .expect("init")
            .iter()
            .filter_map(|c| c["name"].as_str())
            .collect();
        assert_eq!(init, ["install-cni"]);
        let volumes: Vec<&str> = spec["volumes"]
            .as_array()
            .expect("volumes")
            .iter()
            .filter_map(|v| v["name"].as_str())
            .collect();
        assert_eq!(volumes, ["cni-bin-dir", "bpffs"]);
        let node = &spec["containers"][0];
        assert_eq!(node["image"], "lab.cniswap.local/calico/node:v3.28.5");
        assert_eq!(node["imagePullPolicy"], "Never");
        let env = |name: &str| {
            node["env"]
                .as_array()
                .and_then(|e| e.iter().find(|e| e["name"] == name))
                .map(|e| e["value"].clone())
        };
        assert_eq!(env("CALICO_IPV4POOL_VXLAN"), Some(json!("Always")));
        assert_eq!(env("CALICO_IPV4POOL_CIDR"), Some(json!("10.244.0.0/16")));
        assert_eq!(env("FELIX_IPTABLESBACKEND"), Some(json!("NFT")));
        assert_eq!(env("FELIX_HEALTHENABLED"), Some(json!("true")));
        assert_eq!(
            spec["initContainers"][0]["image"],
            "lab.cniswap.local/calico/cni:v3.28.5"
        );
    }

    #[test]
    fn a_file_that_is_not_calico_is_refused() {
        let err = calico_manifest("kind: ConfigMap\n", Path::new("x.yaml"), "10.244.0.0/16")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("x.yaml") && err.contains("calico-node"),
            "{err}"
        );
    }

    #[test]
    fn plan_flags_name_every_target_with_the_lab_files() {
        let files = InstallFiles::under(Path::new("/lab"));
        let flags = plan_flags(
            &files,
            Some("cniswap.lab/cniswap:0.1.0"),
            Some("cniswap.lab/busybox:1.35.0"),
        );
        assert_eq!(
            flags["cilium"],
            json!([
                "--image-registry",
                "lab.cniswap.local",
                "--chart",
                "cilium=/lab/charts/cilium",
                "--values",
                "/lab/values/cilium.yaml",
                "--agent-image",
                "cniswap.lab/cniswap:0.1.0",
                "--helper-image",
                "cniswap.lab/busybox:1.35.0"
            ])
        );
        assert_eq!(flags["calico"][3], "manifest");
        assert_eq!(flags["calico"][5], "calico=/lab/manifests/calico.yaml");
        assert_eq!(flags["flannel"][3], "flannel=/lab/manifests/flannel.yaml");
    }

    #[test]
    fn cilium_values_keep_the_host_out() {
        let values = cilium_values(&LabNetwork {
            api_host: "198.18.0.1",
            api_port: 6443,
            pod_cidr: "10.244.0.0/16",
        });
        let parsed: Value = serde_saphyr::from_str(&values).expect("yaml");
        assert_eq!(parsed["cgroup"]["autoMount"]["enabled"], false);
        assert_eq!(parsed["sysctlfix"]["enabled"], false);
        assert_eq!(parsed["kubeProxyReplacement"], false);
        assert_eq!(parsed["tunnelPort"], 8473);
        assert_eq!(parsed["extraConfig"]["procfs"], "/lab-host/proc");
        let caps = parsed["securityContext"]["capabilities"]["ciliumAgent"]
            .as_array()
            .expect("caps");
        assert!(!caps.iter().any(|c| c == "SYS_RESOURCE"));
    }
}
