//! The cluster's add-ons, written by us the way the platforms deploy them: Flannel as the
//! `kube-flannel` DaemonSet in kube-system with VXLAN on port 4789 (how Talos renders it,
//! research/talos.md), kube-proxy as a DaemonSet in iptables mode with its ConfigMap (as
//! kubeadm does), and CoreDNS as a Deployment behind the `kube-dns` Service.

use serde_json::{Value, json};

/// Image references the add-ons run (imported into every node beforehand).
#[derive(Debug, Clone)]
pub struct Images {
    pub pause: String,
    pub busybox: String,
    pub flannel: String,
    pub kube_proxy: String,
    pub coredns: String,
    pub cniswap: Option<String>,
}

pub struct Settings<'a> {
    pub images: &'a Images,
    pub kubernetes_version: &'a str,
    pub service_cidr: &'a str,
    pub pod_cidr: &'a str,
    pub api_server: &'a str,
    pub dns_ip: &'a str,
}

fn tolerate_all() -> Value {
    json!([{"operator": "Exists"}])
}

fn host_path(name: &str, path: &str, kind: &str) -> Value {
    json!({"name": name, "hostPath": {"path": path, "type": kind}})
}

pub fn flannel(settings: &Settings<'_>) -> Vec<Value> {
    let net_conf = json!({
        "Network": settings.pod_cidr,
        "Backend": {"Type": "vxlan", "Port": 4789},
    });
    let cni_conf = json!({
        "name": "cbr0",
        "cniVersion": "0.3.1",
        "plugins": [
            {"type": "flannel", "delegate": {"hairpinMode": true, "isDefaultGateway": true}},
            {"type": "portmap", "capabilities": {"portMappings": true}},
        ],
    });
    let labels = json!({"k8s-app": "flannel", "tier": "node"});
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "flannel", "namespace": "kube-system"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "flannel"},
        "rules": [
            {"apiGroups": [""], "resources": ["pods"], "verbs": ["get"]},
            {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
            {"apiGroups": [""], "resources": ["nodes/status"], "verbs": ["patch"]},
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "flannel"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "flannel"},
               "subjects": [{"kind": "ServiceAccount", "name": "flannel", "namespace": "kube-system"}]}),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "kube-flannel-cfg", "namespace": "kube-system", "labels": labels},
        "data": {
            "cni-conf.json": serde_json::to_string_pretty(&cni_conf).unwrap_or_default(),
            "net-conf.json": serde_json::to_string_pretty(&net_conf).unwrap_or_default(),
        }}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "kube-flannel", "namespace": "kube-system", "labels": labels},
        "spec": {
            "selector": {"matchLabels": {"k8s-app": "flannel"}},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "hostNetwork": true,
                    "priorityClassName": "system-node-critical",
                    "serviceAccountName": "flannel",
                    "tolerations": tolerate_all(),
                    "initContainers": [
                        {"name": "install-cni-plugin", "image": settings.images.flannel,
                         "imagePullPolicy": "Never",
                         "command": ["cp", "-f", "/flannel", "/opt/cni/bin/flannel"],
                         "volumeMounts": [{"name": "cni-plugin", "mountPath": "/opt/cni/bin"}]},
                        {"name": "install-config", "image": settings.images.flannel,
                         "imagePullPolicy": "Never",
                         "command": ["cp", "-f", "/etc/kube-flannel/cni-conf.json",
                                     "/etc/cni/net.d/10-flannel.conflist"],
                         "volumeMounts": [
                             {"name": "cni", "mountPath": "/etc/cni/net.d"},
                             {"name": "flannel-cfg", "mountPath": "/etc/kube-flannel/"}]},
                    ],
                    "containers": [{
                        "name": "kube-flannel", "image": settings.images.flannel,
                        "imagePullPolicy": "Never",
                        "command": ["/opt/bin/flanneld", "--ip-masq", "--kube-subnet-mgr"],
                        "env": [
                            {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
                            {"name": "POD_NAMESPACE", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
                            {"name": "EVENT_QUEUE_DEPTH", "value": "5000"},
                        ],
                        "resources": {"requests": {"cpu": "100m", "memory": "50Mi"}},
                        "securityContext": {"privileged": false,
                            "capabilities": {"add": ["NET_ADMIN", "NET_RAW"]}},
                        "volumeMounts": [
                            {"name": "run", "mountPath": "/run/flannel"},
                            {"name": "flannel-cfg", "mountPath": "/etc/kube-flannel/"},
                            {"name": "xtables-lock", "mountPath": "/run/xtables.lock"},
                        ],
                    }],
                    "volumes": [
                        host_path("run", "/run/flannel", "DirectoryOrCreate"),
                        host_path("cni-plugin", "/opt/cni/bin", "DirectoryOrCreate"),
                        host_path("cni", "/etc/cni/net.d", "DirectoryOrCreate"),
                        {"name": "flannel-cfg", "configMap": {"name": "kube-flannel-cfg"}},
                        host_path("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
                    ],
                }
            }
        }}),
    ]
}

pub fn kube_proxy(settings: &Settings<'_>) -> Vec<Value> {
    // YAML, as kubeadm writes it. A node's network namespace may not raise the global
    // conntrack table size, so kube-proxy leaves it (maxPerCore 0) and the timeouts alone.
    let config = format!(
        "apiVersion: kubeproxy.config.k8s.io/v1alpha1\nkind: KubeProxyConfiguration\n\
         mode: iptables\nclusterCIDR: {}\nclientConnection:\n  \
         kubeconfig: /var/lib/kube-proxy/kubeconfig.conf\nconntrack:\n  maxPerCore: 0\n  \
         min: 0\n  tcpEstablishedTimeout: 0s\n  tcpCloseWaitTimeout: 0s\n",
        settings.pod_cidr
    );
    let kubeconfig = json!({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "default", "cluster": {
            "server": settings.api_server,
            "certificate-authority": "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"}}],
        "users": [{"name": "default", "user": {
            "tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"}}],
        "contexts": [{"name": "default", "context": {"cluster": "default", "namespace": "default", "user": "default"}}],
        "current-context": "default",
    });
    let labels = json!({"k8s-app": "kube-proxy"});
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "kube-proxy", "namespace": "kube-system"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "kubeadm:node-proxier"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:node-proxier"},
               "subjects": [{"kind": "ServiceAccount", "name": "kube-proxy", "namespace": "kube-system"}]}),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": {"app": "kube-proxy"}},
        "data": {
            "config.conf": config,
            "kubeconfig.conf": serde_json::to_string_pretty(&kubeconfig).unwrap_or_default(),
        }}),
        json!({"apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "kube-proxy", "namespace": "kube-system", "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "updateStrategy": {"type": "RollingUpdate"},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "hostNetwork": true,
                    "priorityClassName": "system-node-critical",
                    "serviceAccountName": "kube-proxy",
                    "tolerations": tolerate_all(),
                    "containers": [{
                        "name": "kube-proxy", "image": settings.images.kube_proxy,
                        "imagePullPolicy": "Never",
                        "command": ["/usr/local/bin/kube-proxy",
                                    "--config=/var/lib/kube-proxy/config.conf",
                                    "--hostname-override=$(NODE_NAME)"],
                        "env": [{"name": "NODE_NAME", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}}],
                        "securityContext": {"privileged": true},
                        "volumeMounts": [
                            {"name": "kube-proxy", "mountPath": "/var/lib/kube-proxy"},
                            {"name": "xtables-lock", "mountPath": "/run/xtables.lock"},
                        ],
                    }],
                    "volumes": [
                        {"name": "kube-proxy", "configMap": {"name": "kube-proxy"}},
                        host_path("xtables-lock", "/run/xtables.lock", "FileOrCreate"),
                    ],
                }
            }
        }}),
    ]
}

/// CoreDNS with `replicas` pods on distinct nodes (the control-plane node included), so the
/// lab starts without the single-node DNS risk MIG013 reports.
pub fn coredns(settings: &Settings<'_>, replicas: usize) -> Vec<Value> {
    let corefile = ".:53 {\n    errors\n    health {\n        lameduck 5s\n    }\n    ready\n    kubernetes cluster.local in-addr.arpa ip6.arpa {\n        pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n        ttl 30\n    }\n    prometheus :9153\n    cache 30\n    loop\n    reload\n    loadbalance\n}\n";
    let labels = json!({"k8s-app": "kube-dns"});
    vec![
        json!({"apiVersion": "v1", "kind": "ServiceAccount",
               "metadata": {"name": "coredns", "namespace": "kube-system"}}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
        "metadata": {"name": "system:coredns"},
        "rules": [
            {"apiGroups": [""], "resources": ["endpoints", "services", "pods", "namespaces"], "verbs": ["list", "watch"]},
            {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list", "watch"]},
        ]}),
        json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
               "metadata": {"name": "system:coredns"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "system:coredns"},
               "subjects": [{"kind": "ServiceAccount", "name": "coredns", "namespace": "kube-system"}]}),
        json!({"apiVersion": "v1", "kind": "ConfigMap",
               "metadata": {"name": "coredns", "namespace": "kube-system"},
               "data": {"Corefile": corefile}}),
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "coredns", "namespace": "kube-system", "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "priorityClassName": "system-cluster-critical",
                    "serviceAccountName": "coredns",
                    "tolerations": [
                        {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
                        {"key": "CriticalAddonsOnly", "operator": "Exists"},
                    ],
                    "affinity": {"podAntiAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": [{
                        "labelSelector": {"matchLabels": labels},
                        "topologyKey": "kubernetes.io/hostname"}]}},
                    "containers": [{
                        "name": "coredns", "image": settings.images.coredns,
                        "imagePullPolicy": "Never",
                        "args": ["-conf", "/etc/coredns/Corefile"],
                        "ports": [
                            {"name": "dns", "containerPort": 53, "protocol": "UDP"},
                            {"name": "dns-tcp", "containerPort": 53, "protocol": "TCP"},
                            {"name": "metrics", "containerPort": 9153, "protocol": "TCP"},
                        ],
                        "securityContext": {"allowPrivilegeEscalation": false,
                            "capabilities": {"add": ["NET_BIND_SERVICE"], "drop": ["ALL"]},
                            "readOnlyRootFilesystem": true},
                        "livenessProbe": {"httpGet": {"path": "/health", "port": 8080},
                                          "initialDelaySeconds": 60, "timeoutSeconds": 5,
                                          "failureThreshold": 5},
                        "readinessProbe": {"httpGet": {"path": "/ready", "port": 8181},
                                           "periodSeconds": 2},
                        "volumeMounts": [{"name": "config-volume", "mountPath": "/etc/coredns", "readOnly": true}],
                    }],
                    "dnsPolicy": "Default",
                    "volumes": [{"name": "config-volume", "configMap": {"name": "coredns",
                        "items": [{"key": "Corefile", "path": "Corefile"}]}}],
                }
            }
        }}),
        json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "kube-dns", "namespace": "kube-system", "labels": labels,
                     "annotations": {"prometheus.io/port": "9153", "prometheus.io/scrape": "true"}},
        "spec": {
            "selector": labels,
            "clusterIP": settings.dns_ip,
            "ports": [
                {"name": "dns", "port": 53, "protocol": "UDP", "targetPort": 53},
                {"name": "dns-tcp", "port": 53, "protocol": "TCP", "targetPort": 53},
                {"name": "metrics", "port": 9153, "protocol": "TCP", "targetPort": 9153},
            ],
        }}),
    ]
}

/// kubeadm records the cluster's configuration in this ConfigMap; tools (cniswap among them)
/// read the pod and Service networks from it.
pub fn kubeadm_config(settings: &Settings<'_>) -> Vec<Value> {
    let endpoint = settings
        .api_server
        .trim_start_matches("https://")
        .to_string();
    let config = format!(
        "apiVersion: kubeadm.k8s.io/v1beta4\nkind: ClusterConfiguration\nclusterName: cniswap-lab\n\
         controlPlaneEndpoint: {endpoint}\nkubernetesVersion: {version}\nnetworking:\n  \
         dnsDomain: cluster.local\n  podSubnet: {pod}\n  serviceSubnet: {service}\n",
        version = settings.kubernetes_version,
        pod = settings.pod_cidr,
        service = settings.service_cidr,
    );
    vec![json!({"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": {"name": "kubeadm-config", "namespace": "kube-system"},
                "data": {"ClusterConfiguration": config}})]
}

/// The plural resource name and whether the kind is namespaced, for the kinds above.
pub fn resource(kind: &str) -> Option<(&'static str, bool)> {
    Some(match kind {
        "ServiceAccount" => ("serviceaccounts", true),
        "ConfigMap" => ("configmaps", true),
        "Service" => ("services", true),
        "Pod" => ("pods", true),
        "Namespace" => ("namespaces", false),
        "DaemonSet" => ("daemonsets", true),
        "Deployment" => ("deployments", true),
        "ClusterRole" => ("clusterroles", false),
        "ClusterRoleBinding" => ("clusterrolebindings", false),
        "Role" => ("roles", true),
        "RoleBinding" => ("rolebindings", true),
        "Node" => ("nodes", false),
        _ => return None,
    })
}
