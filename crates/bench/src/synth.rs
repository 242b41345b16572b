//! Synthetic snapshots shaped like `kubectl get -o json|yaml` output of a large cluster:
//! every pod carries the fields real pods carry (env, volumes, probes, statuses), so parsing
//! cost and raw size are realistic while facts stay small.

use serde_json::{Value, json};
use std::io::{BufWriter, Write};
use std::path::Path;

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Json,
    Yaml,
}

fn node(i: usize) -> Value {
    let name = format!("node-{i:05}");
    let mut labels = json!({"kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "topology.kubernetes.io/zone": format!("zone-{}", i % 3)});
    if i < 3 {
        labels["node-role.kubernetes.io/control-plane"] = Value::String(String::new());
    }
    json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": {"name": name, "uid": format!("{i:08x}-0000-4000-8000-000000000000"), "resourceVersion": "12345",
            "labels": labels,
            "annotations": {"flannel.alpha.coreos.com/backend-type": "vxlan", "flannel.alpha.coreos.com/public-ip": format!("10.{}.{}.{}", i / 65536, (i / 256) % 256, i % 256),
                            "node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"}},
        "spec": {"podCIDR": format!("10.{}.{}.0/24", 64 + i / 256, i % 256), "podCIDRs": [format!("10.{}.{}.0/24", 64 + i / 256, i % 256)]},
        "status": {
            "addresses": [{"type": "InternalIP", "address": format!("172.16.{}.{}", i / 256, i % 256)}, {"type": "Hostname", "address": name}],
            "capacity": {"cpu": "16", "memory": "64Gi", "pods": "110"}, "allocatable": {"cpu": "15900m", "memory": "63Gi", "pods": "110"},
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady", "message": "kubelet is posting ready status", "lastHeartbeatTime": "2025-11-20T10:00:00Z", "lastTransitionTime": "2025-11-01T10:00:00Z"}],
            "nodeInfo": {"kubeletVersion": "v1.33.2", "osImage": "Talos (v1.10.5)", "kernelVersion": "6.12.40-talos", "containerRuntimeVersion": "containerd://2.0.5",
                         "architecture": "amd64", "operatingSystem": "linux", "machineID": format!("{i:032x}"), "bootID": format!("{i:08x}-boot")},
            "images": (0..20).map(|k| json!({"names": [format!("registry.example.com/team/app-{k}@sha256:{k:064x}"), format!("registry.example.com/team/app-{k}:v1.{k}.0")], "sizeBytes": 123456789})).collect::<Vec<_>>()
        }
    })
}

fn pod(node: usize, j: usize) -> Value {
    let node_name = format!("node-{node:05}");
    let (owner_kind, owner, host_network) = match j {
        0 => ("DaemonSet", "kube-flannel".to_string(), true),
        1 => ("DaemonSet", "kube-proxy".to_string(), true),
        _ => (
            "ReplicaSet",
            format!("app-{}-7d9f8c6b5", (node * 31 + j) % 400),
            false,
        ),
    };
    let name = format!("{owner}-{node:05}{j:02}");
    json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": if j < 2 { "kube-system" } else { "apps" }, "uid": format!("{node:08x}-{j:04x}-4000-8000-000000000000"),
            "resourceVersion": "987654", "creationTimestamp": "2025-11-19T07:59:58Z", "generateName": format!("{owner}-"),
            "labels": {"app": owner, "pod-template-hash": "7d9f8c6b5", "app.kubernetes.io/part-of": "shop"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2025-11-01T00:00:00Z", "prometheus.io/scrape": "true"},
            "ownerReferences": [{"apiVersion": "apps/v1", "kind": owner_kind, "name": owner, "uid": "aaaaaaaa-bbbb-4ccc-8ddd-eeeeeeeeeeee", "controller": true, "blockOwnerDeletion": true}]},
        "spec": {
            "nodeName": node_name, "hostNetwork": host_network, "restartPolicy": "Always", "dnsPolicy": "ClusterFirst", "serviceAccountName": "default", "terminationGracePeriodSeconds": 30,
            "containers": [{"name": "app", "image": "registry.example.com/team/app:v1.2.3", "imagePullPolicy": "IfNotPresent",
                "args": ["--port=8080", "--log-level=info", "--metrics-addr=:9090"],
                "env": (0..8).map(|k| json!({"name": format!("ENV_{k}"), "value": format!("value-{k}-for-this-deployment")})).collect::<Vec<_>>(),
                "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}, {"containerPort": 9090, "name": "metrics", "protocol": "TCP"}],
                "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080, "scheme": "HTTP"}, "periodSeconds": 10, "timeoutSeconds": 1, "successThreshold": 1, "failureThreshold": 3},
                "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}, {"name": "kube-api-access", "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount", "readOnly": true}]}],
            "volumes": [{"name": "config", "configMap": {"name": "app-config", "defaultMode": 420}},
                        {"name": "kube-api-access", "projected": {"defaultMode": 420, "sources": [{"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}}, {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}}]}}],
            "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}]
        },
        "status": {"phase": "Running", "podIP": format!("10.{}.{}.{}", 64 + node / 256, node % 256, j + 2), "hostIP": format!("172.16.{}.{}", node / 256, node % 256),
            "qosClass": "Burstable", "startTime": "2025-11-19T07:59:58Z",
            "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}, {"type": "ContainersReady", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
            "containerStatuses": [{"name": "app", "ready": true, "started": true, "restartCount": 0, "image": "registry.example.com/team/app:v1.2.3",
                "imageID": format!("registry.example.com/team/app@sha256:{:064x}", j), "containerID": format!("containerd://{:064x}", node * 100 + j),
                "state": {"running": {"startedAt": "2025-11-19T08:00:01Z"}}}]}
    })
}

fn daemonset(name: &str, image: &str, nodes: usize) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": {"name": name, "namespace": "kube-system", "labels": {"k8s-app": name}},
           "spec": {"template": {"metadata": {"labels": {"k8s-app": name}}, "spec": {"hostNetwork": true, "containers": [{"name": name, "image": image}]}}},
           "status": {"desiredNumberScheduled": nodes, "numberReady": nodes}})
}

/// Writes a List of `count` items made by `item`, one at a time (the generator never holds the
/// whole list in memory either).
fn write_list(
    path: &Path,
    format: Format,
    count: usize,
    item: impl Fn(usize) -> Value,
) -> std::io::Result<u64> {
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    match format {
        Format::Json => {
            out.write_all(b"{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [\n")?;
            for i in 0..count {
                if i > 0 {
                    out.write_all(b",\n")?;
                }
                serde_json::to_writer(&mut out, &item(i))?;
            }
            out.write_all(b"\n]}\n")?;
        }
        Format::Yaml => {
            out.write_all(b"apiVersion: v1\nitems:\n")?;
            for i in 0..count {
                let text = serde_saphyr::to_string(&item(i)).map_err(std::io::Error::other)?;
                for (k, line) in text.lines().enumerate() {
                    out.write_all(if k == 0 { b"- " } else { b"  " })?;
                    out.write_all(line.as_bytes())?;
                    out.write_all(b"\n")?;
                }
            }
            out.write_all(b"kind: List\nmetadata:\n  resourceVersion: \"\"\n")?;
        }
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// Writes a snapshot of `nodes` nodes with `pods_per_node` pods each; returns its size in bytes.
pub fn write_snapshot(
    dir: &Path,
    nodes: usize,
    pods_per_node: usize,
    format: Format,
) -> std::io::Result<u64> {
    let cluster = dir.join("cluster");
    std::fs::create_dir_all(&cluster)?;
    let ext = if format == Format::Json {
        "json"
    } else {
        "yaml"
    };
    let mut size = write_list(&cluster.join(format!("nodes.{ext}")), format, nodes, node)?;
    size += write_list(
        &cluster.join(format!("pods.{ext}")),
        format,
        nodes * pods_per_node,
        |i| pod(i / pods_per_node, i % pods_per_node),
    )?;
    size += write_list(&cluster.join(format!("daemonsets.{ext}")), format, 2, |i| {
        if i == 0 {
            daemonset("kube-flannel", "ghcr.io/siderolabs/flannel:v0.26.7", nodes)
        } else {
            daemonset("kube-proxy", "registry.k8s.io/kube-proxy:v1.33.2", nodes)
        }
    })?;
    Ok(size)
}

/// A GitOps repository of `files` files shaped like those in shared/corpus: Talos patches and
/// a talconfig, Omni ConfigPatches, Cilium HelmReleases and values, Calico resources, and
/// unrelated application manifests (a third of a real repository).
pub fn write_repo(dir: &Path, files: usize) -> std::io::Result<()> {
    for i in 0..files {
        let (path, text) = match i % 9 {
            0 => (
                format!("talos/patches/patch-{i}.yaml"),
                format!(
                    "machine:\n  features:\n    kubePrism:\n      enabled: true\n      port: 7445\n    hostDNS:\n      enabled: true\n      forwardKubeDNSToHost: {}\ncluster:\n  network:\n    cni:\n      name: none\n  proxy:\n    disabled: true\n",
                    i % 2 == 0
                ),
            ),
            1 => (
                format!("omni/patches/{i}-cni.yaml"),
                format!(
                    "metadata:\n  namespace: default\n  type: ConfigPatches.omni.sidero.dev\n  id: {}-cni\n  labels:\n    omni.sidero.dev/cluster: lab\nspec:\n  data: |\n    cluster:\n      network:\n        cni:\n          name: none\n      proxy:\n        disabled: true\n",
                    400 + i
                ),
            ),
            2 | 3 => (
                format!("kubernetes/apps/cilium-{i}/helmrelease.yaml"),
                format!(
                    "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata:\n  name: cilium\n  namespace: kube-system\nspec:\n  chart:\n    spec:\n      chart: cilium\n      version: 1.16.{}\n  values:\n{}",
                    i % 7,
                    indent(&cilium_values(i), 4)
                ),
            ),
            4 => (
                format!("kubernetes/apps/cilium-{i}/values.yaml"),
                cilium_values(i),
            ),
            5 => (
                format!("kubernetes/apps/calico-{i}/installation.yaml"),
                format!(
                    "apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata:\n  name: default\nspec:\n  kubeletVolumePluginPath: None\n  calicoNetwork:\n    linuxDataplane: {}\n    bgp: Disabled\n    ipPools:\n      - cidr: 10.244.0.0/16\n        encapsulation: VXLAN\n---\napiVersion: crd.projectcalico.org/v1\nkind: FelixConfiguration\nmetadata:\n  name: default\nspec:\n  cgroupV2Path: /sys/fs/cgroup\n  vxlanPort: 4789\n",
                    if i % 2 == 0 { "BPF" } else { "Iptables" }
                ),
            ),
            _ => (
                format!("kubernetes/apps/app-{i}/deployment.yaml"),
                format!(
                    "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: app-{i}\n  namespace: apps\nspec:\n  replicas: 2\n  selector:\n    matchLabels: {{app: app-{i}}}\n  template:\n    metadata:\n      labels: {{app: app-{i}}}\n    spec:\n      containers:\n        - name: app\n          image: ghcr.io/example/app:1.{i}\n          ports: [{{containerPort: 8080}}]\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: app-{i}\n  namespace: apps\nspec:\n  selector: {{app: app-{i}}}\n  ports: [{{port: 80, targetPort: 8080}}]\n"
                ),
            ),
        };
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap_or(dir))?;
        std::fs::write(path, text)?;
    }
    std::fs::write(
        dir.join("talos/talconfig.yaml"),
        "clusterName: lab\ntalosVersion: v1.13.9\nkubernetesVersion: v1.36.4\ncniConfig:\n  name: none\nnodes:\n  - hostname: cp1\n    controlPlane: true\n  - hostname: w1\n    controlPlane: false\npatches:\n  - \"@./patches/patch-0.yaml\"\n",
    )
}

fn cilium_values(i: usize) -> String {
    format!(
        "kubeProxyReplacement: true\nk8sServiceHost: localhost\nk8sServicePort: 7445\nroutingMode: {}\nautoDirectNodeRoutes: true\nipv4NativeRoutingCIDR: 10.244.0.0/16\nipam:\n  mode: kubernetes\nbpf:\n  masquerade: true\n  hostLegacyRouting: {}\ncgroup:\n  {}:\n    enabled: false\n  hostRoot: /sys/fs/cgroup\ncni:\n  exclusive: {}\nsecurityContext:\n  capabilities:\n    ciliumAgent: [CHOWN, KILL, NET_ADMIN, NET_RAW, IPC_LOCK, SYS_ADMIN, SYS_RESOURCE, DAC_OVERRIDE, FOWNER, SETGID, SETUID]\n    cleanCiliumState: [NET_ADMIN, SYS_ADMIN, SYS_RESOURCE]\nhubble:\n  enabled: true\n  relay:\n    enabled: true\n  ui:\n    enabled: true\noperator:\n  replicas: 2\n  rollOutPods: true\nl2announcements:\n  enabled: true\nexternalIPs:\n  enabled: true\n",
        if i.is_multiple_of(2) {
            "native"
        } else {
            "tunnel"
        },
        i.is_multiple_of(3),
        if i.is_multiple_of(4) {
            "automount"
        } else {
            "autoMount"
        },
        !i.is_multiple_of(5),
    )
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines().map(|l| format!("{pad}{l}\n")).collect()
}

/// One document of a multi-document Talos config (1.14 form): the same kind again and again,
/// as when several patches each add to the kubelet's settings, so each must be merged into the
/// one before (the trial's shape that took 8 s for 20k documents).
fn talos_document(i: usize) -> String {
    format!(
        "---\napiVersion: v1alpha1\nkind: KubeletConfig\nnodeIP:\n  validSubnets: [10.{}.{}.0/24]\n",
        i / 250 % 250,
        i % 250
    )
}

/// How many documents [`write_multidoc`] needs for about `bytes` bytes.
pub fn multidoc_count_for_bytes(bytes: usize) -> usize {
    bytes / talos_document(10_000).len()
}

/// `talos/controlplane.yaml`: a v1alpha1 document and `n` more documents, plus a cluster
/// object so the snapshot is a cluster. Returns the bytes written.
pub fn write_multidoc(dir: &Path, n: usize) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir.join("talos"))?;
    std::fs::create_dir_all(dir.join("cluster"))?;
    let mut text = String::from(
        "version: v1alpha1\nmachine:\n  type: controlplane\ncluster:\n  network:\n    podSubnets: [10.244.0.0/16]\n",
    );
    for i in 0..n {
        text.push_str(&talos_document(i));
    }
    std::fs::write(dir.join("talos/controlplane.yaml"), &text)?;
    let node =
        serde_json::json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "cp-1"}});
    std::fs::write(dir.join("cluster/nodes.json"), node.to_string())?;
    Ok(text.len())
}

/// `talos/controlplane.yaml.tftpl`: a Talos template of `n` lines, each an unknown machine key
/// with a template expression, so lint reports one finding per line. Returns the bytes written.
pub fn write_template(dir: &Path, n: usize) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    let mut text = String::from("version: v1alpha1\nmachine:\n  type: ${type}\n");
    for i in 0..n {
        text.push_str(&format!("  setting{i}: ${{value_{i}}}\n"));
    }
    std::fs::write(dir.join("controlplane.yaml.tftpl"), &text)?;
    Ok(text.len())
}
