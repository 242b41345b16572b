//! The objects verify deploys, and the RBAC a person needs to run it. The same values are
//! printed by `--print-manifests` and applied by the live runner, so what you review is what
//! runs.

use crate::names;
use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct ManifestOptions {
    pub namespace: String,
    pub image: String,
    /// `IfNotPresent`, `Always` or `Never`.
    pub image_pull_policy: String,
    pub echo_port: u16,
    pub http_port: u16,
    /// Deploy the hostNetwork agents (host-to-pod and pod-to-host checks). They need the
    /// namespace's Pod Security level to be `privileged`; without them it is `restricted`.
    pub host: bool,
    /// An image pull Secret in the namespace, for private registries.
    pub pull_secret: Option<String>,
    /// Appended to the Services' names, new for each deployment of them: CoreDNS caches
    /// answers (kubeadm's Corefile: `ttl 30`, `cache 30`), so a Service re-created under the
    /// same name would resolve to the previous run's address for half a minute.
    pub service_suffix: Option<String>,
    /// The run's agent token (`--print-manifests` shows a placeholder) and an unrelated random
    /// id that changes with it (a pod template annotation: kept agents restart with the token).
    pub token: Option<AgentToken>,
}

/// A per-run secret the agents' API demands of every request, and the id that names it.
#[derive(Clone, PartialEq)]
pub struct AgentToken {
    pub id: String,
    pub secret: String,
}

impl std::fmt::Debug for AgentToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "AgentToken {{ id: {:?}, secret: <redacted> }}", self.id)
    }
}

impl ManifestOptions {
    /// The ClusterIP Service's name.
    pub fn service_name(&self) -> String {
        match &self.service_suffix {
            Some(s) => format!("{}-{s}", names::SERVICE),
            None => names::SERVICE.to_string(),
        }
    }

    /// The headless Service's name.
    pub fn headless_name(&self) -> String {
        match &self.service_suffix {
            Some(s) => format!("{}-{s}", names::HEADLESS),
            None => names::HEADLESS.to_string(),
        }
    }
}

impl Default for ManifestOptions {
    fn default() -> Self {
        ManifestOptions {
            namespace: names::NAMESPACE.into(),
            image: default_image(),
            image_pull_policy: "IfNotPresent".into(),
            echo_port: names::ECHO_PORT,
            http_port: names::HTTP_PORT,
            host: true,
            pull_secret: None,
            service_suffix: None,
            token: None,
        }
    }
}

/// `ghcr.io/cniswap/cniswap:<this version>`.
pub fn default_image() -> String {
    format!("ghcr.io/cniswap/cniswap:{}", env!("CARGO_PKG_VERSION"))
}

/// The Pod Security level the namespace needs.
pub fn pod_security_level(options: &ManifestOptions) -> &'static str {
    if options.host {
        "privileged"
    } else {
        "restricted"
    }
}

fn labels(role: Option<&str>) -> Value {
    let mut labels = json!({
        "app.kubernetes.io/name": "cniswap-probe",
        "app.kubernetes.io/part-of": "cniswap",
        (names::MANAGED_BY.0): names::MANAGED_BY.1,
    });
    if let Some(role) = role {
        labels[names::ROLE_LABEL] = json!(role);
    }
    labels
}

fn selector(role: &str) -> Value {
    json!({"app.kubernetes.io/name": "cniswap-probe", (names::ROLE_LABEL): role})
}

pub fn namespace(options: &ManifestOptions) -> Value {
    let level = pod_security_level(options);
    let mut labels = labels(None);
    labels["pod-security.kubernetes.io/enforce"] = json!(level);
    labels["pod-security.kubernetes.io/enforce-version"] = json!("latest");
    json!({
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": options.namespace, "labels": labels},
    })
}

fn daemonset(options: &ManifestOptions, name: &str, role: &str, host_network: bool) -> Value {
    let env = |name: &str, path: &str| json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": path}}});
    let mut pod_spec = json!({
        "serviceAccountName": names::SERVICE_ACCOUNT,
        "automountServiceAccountToken": false,
        "enableServiceLinks": false,
        "terminationGracePeriodSeconds": 1,
        // Every taint: cordoned, not-ready, unreachable and control-plane nodes included.
        "tolerations": [{"operator": "Exists"}],
        "securityContext": {
            "runAsNonRoot": true,
            "runAsUser": 65532,
            "runAsGroup": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [{
            "name": "agent",
            "image": options.image,
            "imagePullPolicy": options.image_pull_policy,
            "command": ["/usr/local/bin/cniswap"],
            "args": [
                "agent", "probe",
                "--role", role,
                "--echo-port", options.echo_port.to_string(),
                "--http-port", options.http_port.to_string(),
            ],
            "env": [
                env("NODE_NAME", "spec.nodeName"),
                env("POD_NAME", "metadata.name"),
                env("POD_NAMESPACE", "metadata.namespace"),
                env("POD_IP", "status.podIP"),
                env("HOST_IP", "status.hostIP"),
                json!({"name": crate::wire::TOKEN_ENV, "valueFrom": {"secretKeyRef": {"name": names::TOKEN_SECRET, "key": "token"}}}),
            ],
            "securityContext": {
                "allowPrivilegeEscalation": false,
                "readOnlyRootFilesystem": true,
                "runAsNonRoot": true,
                "capabilities": {"drop": ["ALL"]},
            },
            "resources": {
                "requests": {"cpu": "5m", "memory": "16Mi"},
                "limits": {"memory": "128Mi"},
            },
        }],
    });
    if host_network {
        pod_spec["hostNetwork"] = json!(true);
        pod_spec["dnsPolicy"] = json!("ClusterFirstWithHostNet");
    } else {
        pod_spec["containers"][0]["ports"] = json!([
            {"name": "echo-tcp", "containerPort": options.echo_port, "protocol": "TCP"},
            {"name": "echo-udp", "containerPort": options.echo_port, "protocol": "UDP"},
            {"name": "http", "containerPort": options.http_port, "protocol": "TCP"},
        ]);
    }
    if let Some(secret) = &options.pull_secret {
        pod_spec["imagePullSecrets"] = json!([{"name": secret}]);
    }
    json!({
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": options.namespace, "labels": labels(Some(role))},
        "spec": {
            "selector": {"matchLabels": selector(role)},
            "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "100%"}},
            "template": {
                "metadata": {"labels": labels(Some(role)), "annotations": {
                    (names::TOKEN_ID_ANNOTATION): options.token.as_ref().map_or("generated-per-run", |t| t.id.as_str()),
                }},
                "spec": pod_spec,
            },
        },
    })
}

fn service(options: &ManifestOptions, name: &str, role: &str, headless: bool) -> Value {
    let mut labels = labels(None);
    labels["cniswap.io/service"] = json!(if headless { "headless" } else { "clusterip" });
    let ports = json!([
        {"name": "echo-tcp", "port": options.echo_port, "targetPort": options.echo_port, "protocol": "TCP"},
        {"name": "echo-udp", "port": options.echo_port, "targetPort": options.echo_port, "protocol": "UDP"},
    ]);
    let spec = if headless {
        json!({
            "clusterIP": "None",
            "selector": selector(role),
            "publishNotReadyAddresses": true,
            "ports": ports,
        })
    } else {
        // Local: a pod reaches the backend on its own node, so the check tests that node's
        // Service rules and does not depend on other nodes.
        json!({
            "type": "ClusterIP",
            "selector": selector(role),
            "internalTrafficPolicy": "Local",
            "ports": ports,
        })
    };
    json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": options.namespace, "labels": labels},
        "spec": spec,
    })
}

/// Everything verify deploys, in the order it applies them.
pub fn objects(options: &ManifestOptions) -> Vec<Value> {
    let mut objects = vec![
        namespace(options),
        json!({
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": {"name": names::SERVICE_ACCOUNT, "namespace": options.namespace, "labels": labels(None)},
            "automountServiceAccountToken": false,
        }),
        // Readable by whoever may read Secrets in this namespace (or run pods in it), and by
        // root on the nodes: the same people who could stop the agents anyway.
        json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": names::TOKEN_SECRET, "namespace": options.namespace, "labels": labels(None)},
            "type": "Opaque",
            "stringData": {"token": options.token.as_ref().map_or("<generated by cniswap verify for each run>", |t| t.secret.as_str())},
        }),
        service(options, &options.service_name(), "peer", false),
        service(options, &options.headless_name(), "probe", true),
        daemonset(options, names::PROBE, "probe", false),
        daemonset(options, names::PEER, "peer", false),
    ];
    if options.host {
        objects.push(daemonset(options, names::HOST, "host", true));
    }
    objects
}

/// The permissions a person (or CI) needs to run `cniswap verify`, bound to the group
/// `cniswap:verify`. The namespace is created here too, so the namespaced rights can be a Role
/// in it; verify then leaves the namespace in place and removes only what it deployed.
pub fn user_rbac(options: &ManifestOptions) -> Vec<Value> {
    let ns = &options.namespace;
    let subject = json!([{"kind": "Group", "name": "cniswap:verify", "apiGroup": "rbac.authorization.k8s.io"}]);
    let role_ref = |kind: &str, name: &str| json!({"apiGroup": "rbac.authorization.k8s.io", "kind": kind, "name": name});
    let mut ns_object = namespace(options);
    ns_object["metadata"]["annotations"] = json!({"cniswap.io/keep": "true"});
    vec![
        ns_object,
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRole",
            "metadata": {"name": names::USER_ROLE, "labels": labels(None)},
            "rules": [
                // Which nodes exist, and whether they are cordoned or ready.
                {"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list", "watch"]},
                // Read verify's namespace (its Pod Security label).
                {"apiGroups": [""], "resources": ["namespaces"], "resourceNames": [ns], "verbs": ["get"]},
            ],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "ClusterRoleBinding",
            "metadata": {"name": names::USER_ROLE, "labels": labels(None)},
            "roleRef": role_ref("ClusterRole", names::USER_ROLE),
            "subjects": subject,
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": names::USER_ROLE, "namespace": ns, "labels": labels(None)},
            "rules": [
                {"apiGroups": ["apps"], "resources": ["daemonsets"], "verbs": ["get", "list", "create", "patch", "delete"]},
                {"apiGroups": [""], "resources": ["services", "serviceaccounts"], "verbs": ["get", "create", "patch", "delete"]},
                // The agents' token: written when the agents are deployed, read back (that one
                // Secret only) by a run that finds agents a `--keep` run left (a create carries
                // no name RBAC could check, so it is not limited to that Secret).
                {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
                {"apiGroups": [""], "resources": ["secrets"], "resourceNames": [names::TOKEN_SECRET], "verbs": ["get", "patch", "delete"]},
                {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
                // verify talks to its agents through the kubelet, not the pod network.
                {"apiGroups": [""], "resources": ["pods/portforward"], "verbs": ["create", "get"]},
            ],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": names::USER_ROLE, "namespace": ns, "labels": labels(None)},
            "roleRef": role_ref("Role", names::USER_ROLE),
            "subjects": subject,
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": {"name": "cniswap-verify-read-kubernetes-service", "namespace": "default", "labels": labels(None)},
            "rules": [
                // The kubernetes Service's ClusterIP and the API server endpoints behind it.
                {"apiGroups": [""], "resources": ["services"], "resourceNames": ["kubernetes"], "verbs": ["get"]},
                {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"], "verbs": ["list"]},
            ],
        }),
        json!({
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": {"name": "cniswap-verify-read-kubernetes-service", "namespace": "default", "labels": labels(None)},
            "roleRef": role_ref("Role", "cniswap-verify-read-kubernetes-service"),
            "subjects": subject,
        }),
    ]
}

/// Multi-document YAML with a comment heading each part.
pub fn to_yaml(parts: &[(&str, Vec<Value>)]) -> String {
    let mut out = String::new();
    for (comment, objects) in parts {
        for line in comment.lines() {
            out.push_str("# ");
            out.push_str(line);
            out.push('\n');
        }
        for object in objects {
            out.push_str("---\n");
            out.push_str(&serde_saphyr::to_string(object).unwrap_or_default());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Pod Security `restricted` profile's rules for a pod template (the parts verify
    /// sets): non-root, no privilege escalation, all capabilities dropped, RuntimeDefault
    /// seccomp, no host namespaces, no hostPath, no hostPorts.
    fn restricted_violations(pod: &Value) -> Vec<String> {
        let mut v = vec![];
        let spec = &pod["spec"]["template"]["spec"];
        for field in ["hostNetwork", "hostPID", "hostIPC"] {
            if spec[field] == json!(true) {
                v.push(field.to_string());
            }
        }
        if spec["securityContext"]["runAsNonRoot"] != json!(true) {
            v.push("runAsNonRoot".into());
        }
        if spec["securityContext"]["seccompProfile"]["type"] != json!("RuntimeDefault") {
            v.push("seccomp".into());
        }
        for c in spec["containers"].as_array().unwrap() {
            let sc = &c["securityContext"];
            if sc["allowPrivilegeEscalation"] != json!(false) {
                v.push("allowPrivilegeEscalation".into());
            }
            if sc["capabilities"]["drop"] != json!(["ALL"]) {
                v.push("capabilities".into());
            }
            if sc["privileged"] == json!(true) {
                v.push("privileged".into());
            }
            for p in c["ports"].as_array().into_iter().flatten() {
                if p.get("hostPort").is_some() {
                    v.push("hostPort".into());
                }
            }
        }
        if spec.get("volumes").is_some() {
            v.push("volumes".into());
        }
        v
    }

    #[test]
    fn pod_network_agents_meet_restricted_and_host_needs_privileged() {
        let options = ManifestOptions::default();
        let objects = objects(&options);
        let ds: Vec<&Value> = objects
            .iter()
            .filter(|o| o["kind"] == "DaemonSet")
            .collect();
        assert_eq!(ds.len(), 3);
        for d in &ds {
            let name = d["metadata"]["name"].as_str().unwrap();
            let violations = restricted_violations(d);
            if name == names::HOST {
                assert_eq!(violations, vec!["hostNetwork".to_string()]);
            } else {
                assert!(violations.is_empty(), "{name}: {violations:?}");
            }
            assert_eq!(
                d["spec"]["template"]["spec"]["tolerations"],
                json!([{"operator": "Exists"}])
            );
            assert_eq!(
                d["spec"]["template"]["spec"]["automountServiceAccountToken"],
                json!(false)
            );
        }
        assert_eq!(
            objects[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "privileged"
        );
        let without_host = super::objects(&ManifestOptions {
            host: false,
            ..ManifestOptions::default()
        });
        assert_eq!(
            without_host[0]["metadata"]["labels"]["pod-security.kubernetes.io/enforce"],
            "restricted"
        );
        assert!(
            !without_host
                .iter()
                .any(|o| o["metadata"]["name"] == names::HOST)
        );
    }

    #[test]
    fn services_select_the_right_roles() {
        let objects = objects(&ManifestOptions::default());
        let svc = objects
            .iter()
            .find(|o| o["kind"] == "Service" && o["metadata"]["name"] == names::SERVICE)
            .unwrap();
        assert_eq!(svc["spec"]["internalTrafficPolicy"], "Local");
        assert_eq!(svc["spec"]["selector"][names::ROLE_LABEL], "peer");
        let headless = objects
            .iter()
            .find(|o| o["metadata"]["name"] == names::HEADLESS)
            .unwrap();
        assert_eq!(headless["spec"]["clusterIP"], "None");
        assert_eq!(headless["spec"]["selector"][names::ROLE_LABEL], "probe");
    }

    #[test]
    fn yaml_round_trips() {
        let options = ManifestOptions::default();
        let yaml = to_yaml(&[
            ("objects", objects(&options)),
            ("rbac", user_rbac(&options)),
        ]);
        assert!(yaml.starts_with("# objects\n---\n"));
        let docs: Vec<Value> = yaml
            .split("---\n")
            .filter(|d| !d.trim().is_empty() && !d.trim_start().starts_with('#'))
            .map(|d| serde_saphyr::from_str(d).unwrap())
            .collect();
        assert_eq!(docs.len(), 8 + 7);
        assert_eq!(
            docs[5]["spec"]["template"]["spec"]["containers"][0]["args"][3],
            "probe"
        );
    }
}
