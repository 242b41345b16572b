//! Installing (and uninstalling) the target CNI with its final or migration settings.

use crate::artifacts::{calico, cilium, flannel, talos};
use crate::context::{CALICO_VERSION, CILIUM_VERSION, Cluster, InstallChoice};
use crate::model::Action;
use crate::strategies::{Builder, S, s};
use cniswap_model::CniKind;

/// (namespace, DaemonSet) of a CNI's agent in this cluster: where it runs now, else where the
/// plan installs it (Talos renders its Flannel as kube-system/kube-flannel).
pub fn agent_daemonset(cluster: &Cluster, cni: CniKind) -> (String, String) {
    if let Some(found) = cluster.daemonset_of(cni) {
        return found;
    }
    let (ns, name) = match cni {
        CniKind::Cilium => ("kube-system", "cilium"),
        CniKind::Calico => ("calico-system", "calico-node"),
        CniKind::Flannel if cluster.talos => ("kube-system", "kube-flannel"),
        _ => ("kube-flannel", "kube-flannel-ds"),
    };
    (ns.to_string(), name.to_string())
}

/// Restarts a DaemonSet's pod on one node and waits for the DaemonSet to be ready again. Pods
/// are found by their generated name (`<daemonset>-xxxxx`), not by labels, which differ
/// between installs of the same CNI.
pub fn restart_agent_commands(namespace: &str, daemonset: &str, node: &str) -> Vec<String> {
    vec![
        format!(
            "kubectl -n {namespace} get pods --field-selector spec.nodeName={node} -o name | grep '^pod/{daemonset}-' | xargs -r kubectl -n {namespace} delete"
        ),
        wait_agent_command(namespace, daemonset),
    ]
}

pub fn wait_agent_command(namespace: &str, daemonset: &str) -> String {
    format!("kubectl -n {namespace} rollout status ds/{daemonset} --timeout=10m")
}

/// The cluster pod CIDR the target should use (cutover and fresh keep it).
pub fn cluster_pod_cidr(b: &Builder) -> String {
    b.cluster
        .pod_cidrs
        .first()
        .cloned()
        .unwrap_or_else(|| "10.244.0.0/16".into())
}

/// Steps that install the target with its final values, and the rollback.
/// `pool`: a migration pool that the final values must keep (rolling to Cilium).
pub fn target(b: &mut Builder, pool: Option<&str>) -> (Vec<S>, Vec<S>) {
    match b.options.target {
        CniKind::Cilium => {
            let values =
                cilium::final_values(b.cluster, b.replace_kube_proxy, &b.options.values, pool);
            let file = cilium::write_values(
                &mut b.artifacts,
                "values-final.yaml",
                "Cilium Helm values once Cilium is the only CNI",
                &values,
            );
            let how = method(b);
            if how != InstallChoice::Helm {
                return rendered(
                    b,
                    how,
                    "cilium",
                    "final",
                    &render_cilium(b.cluster, &file),
                    "kube-system",
                    "cilium",
                );
            }
            (
                vec![helm_cilium(
                    b.cluster,
                    &file,
                    "Install Cilium with its final values.",
                )],
                vec![helm_uninstall("cilium", "kube-system")],
            )
        }
        CniKind::Calico => {
            let bpf = b.replace_kube_proxy;
            let pod_cidr = pool.map_or_else(|| cluster_pod_cidr(b), str::to_string);
            let values = calico::operator_values(b.cluster, &pod_cidr, bpf, &b.options.values);
            let file = b.artifacts.add_yaml(
                "calico/values.yaml",
                "tigera-operator chart values (the Installation)",
                &values,
            );
            let mut steps = Vec::new();
            if bpf {
                let cm = b.artifacts.add_yaml(
                    "calico/kubernetes-services-endpoint.yaml",
                    "Where Calico reaches the API server without kube-proxy (create before the operator)",
                    &calico::services_endpoint(b.cluster),
                );
                steps.push(s(
                    Action::ApplyManifest { file: cm.clone() },
                    "Create the kubernetes-services-endpoint ConfigMap before the operator starts.",
                    vec!["kubectl create namespace tigera-operator --dry-run=client -o yaml | kubectl apply -f -".into(), format!("kubectl apply -f {cm}")],
                    "`kubectl -n tigera-operator get cm kubernetes-services-endpoint` exists",
                    60,
                ));
                if b.cluster.talos {
                    let felix = b.artifacts.add_yaml(
                        "calico/felixconfiguration.yaml",
                        "Felix on Talos: cgroup v2 is at /sys/fs/cgroup",
                        &calico::felix_configuration(),
                    );
                    steps.push(s(
                        Action::ApplyManifest {
                            file: felix.clone(),
                        },
                        "Point Felix at Talos' cgroup2 mount (calico#7892).",
                        vec![format!("kubectl apply -f {felix}")],
                        "`kubectl get felixconfiguration default -o yaml` shows cgroupV2Path",
                        60,
                    ));
                }
            }
            if method(b) != InstallChoice::Helm {
                let (more, undo) = rendered(
                    b,
                    method(b),
                    "calico",
                    "final",
                    &format!(
                        "helm template calico projectcalico/tigera-operator --version {CALICO_VERSION} -n tigera-operator -f {file}"
                    ),
                    "calico-system",
                    "calico-node",
                );
                steps.extend(more);
                return (steps, undo);
            }
            steps.push(s(
                Action::HelmUpgrade { release: "calico".into(), namespace: "tigera-operator".into(), chart: format!("projectcalico/tigera-operator@{CALICO_VERSION}"), values: vec![file.clone()] },
                "Install the Tigera operator and Calico.",
                vec![
                    "helm repo add projectcalico https://docs.tigera.io/calico/charts".into(),
                    format!("helm upgrade --install calico projectcalico/tigera-operator --version {CALICO_VERSION} -n tigera-operator --create-namespace -f {file}"),
                    "kubectl wait --for=condition=Available tigerastatus/calico --timeout=10m".into(),
                ],
                "`kubectl get tigerastatus calico` is Available and not Degraded",
                900,
            ));
            (steps, vec![helm_uninstall("calico", "tigera-operator")])
        }
        _ => {
            if b.cluster.talos {
                let patch = talos::enable_flannel(b.cluster);
                let (mut apply, mut undo) =
                    b.talos_patch(&patch, "Talos deploys its built-in Flannel (VXLAN 4789)");
                // Talos never deletes what it rendered: undoing the patch leaves the DaemonSet.
                let backup = "backups/kube-system-kube-flannel.yaml".to_string();
                undo.push(s(
                    Action::DeleteObject {
                        kind: "DaemonSet".into(),
                        namespace: Some("kube-system".into()),
                        name: "kube-flannel".into(),
                        backup: backup.clone(),
                    },
                    "Back up and delete the kube-flannel DaemonSet Talos created.",
                    vec![
                        format!(
                            "kubectl -n kube-system get daemonset kube-flannel -o yaml > {backup}"
                        ),
                        "kubectl -n kube-system delete daemonset kube-flannel".into(),
                    ],
                    "`kubectl -n kube-system get ds kube-flannel` says NotFound",
                    300,
                ));
                apply.push(s(
                    Action::WaitDaemonSetReady {
                        namespace: "kube-system".into(),
                        name: "kube-flannel".into(),
                        node: None,
                    },
                    "Wait until Talos' Flannel runs on every node.",
                    vec![
                        "kubectl -n kube-system rollout status ds/kube-flannel --timeout=10m"
                            .into(),
                    ],
                    "kube-system/kube-flannel is fully ready",
                    600,
                ));
                (apply, undo)
            } else {
                flannel_manifest(b)
            }
        }
    }
}

/// Flannel from its pinned release manifest, with the cluster's network written into its
/// net-conf.json (the manifest ships 10.244.0.0/16). Rolling: a pods=0 quota holds the
/// DaemonSet until its nodeSelector is set, so Flannel never starts on a node that still runs
/// the old CNI.
fn flannel_manifest(b: &Builder) -> (Vec<S>, Vec<S>) {
    let network = cluster_pod_cidr(b);
    let url = flannel::manifest_url();
    let file = "artifacts/flannel/kube-flannel.yml";
    let mut commands = vec![format!("curl -fsSL {url} -o {file}")];
    if network != flannel::MANIFEST_NETWORK {
        commands.push(format!(
            "sed -i 's#\"Network\": \"{}\"#\"Network\": \"{network}\"#' {file}",
            flannel::MANIFEST_NETWORK
        ));
    }
    commands.push(format!("grep -q '\"Network\": \"{network}\"' {file}"));
    let hold = b.options.strategy == crate::context::StrategyChoice::Rolling;
    if hold {
        commands.extend([
            "kubectl create namespace kube-flannel --dry-run=client -o yaml | kubectl apply -f -"
                .to_string(),
            "kubectl -n kube-flannel create quota cniswap-hold --hard=pods=0".to_string(),
        ]);
    }
    commands.push(format!("kubectl apply -f {file}"));
    if hold {
        commands.extend([
            format!(r#"kubectl -n kube-flannel patch daemonset kube-flannel-ds -p '{{"spec":{{"template":{{"spec":{{"nodeSelector":{{"{FLANNEL_NODE_LABEL}":"flannel"}}}}}}}}}}'"#),
            "kubectl -n kube-flannel delete quota cniswap-hold".to_string(),
        ]);
    } else {
        commands
            .push("kubectl -n kube-flannel rollout status ds/kube-flannel-ds --timeout=10m".into());
    }
    let done = if hold {
        "kube-flannel/kube-flannel-ds exists with its nodeSelector, and the quota is gone"
    } else {
        "kube-flannel/kube-flannel-ds is fully ready"
    };
    (
        vec![s(
            Action::ApplyManifest { file: file.into() },
            format!("Install Flannel {} (pinned release) with this cluster's network {network}.", crate::context::FLANNEL_VERSION),
            commands,
            done,
            600,
        )],
        vec![s(
            Action::DeleteObject { kind: "Manifest".into(), namespace: Some("kube-flannel".into()), name: file.into(), backup: "backups/kube-flannel-installed.yaml".into() },
            "Remove Flannel.",
            vec![
                "kubectl -n kube-flannel get daemonset,configmap -o yaml > backups/kube-flannel-installed.yaml".into(),
                format!("kubectl delete -f {file}"),
            ],
            "namespace kube-flannel is gone",
            300,
        )],
    )
}

/// The node label that says which CNI a node runs during a rolling migration to Flannel.
pub const FLANNEL_NODE_LABEL: &str = "cniswap.io/cni";

/// Installs from manifests rendered with `helm template`: applied with kubectl (`manifests`), or
/// applied by Talos from a pinned URL (`talos-urls`, `omni`), so a bootstrap installs the CNI.
/// `stage` names the rendering (`migration`, `final`), so each stage has its own file.
pub fn rendered(
    b: &mut Builder,
    method: InstallChoice,
    cni: &str,
    stage: &str,
    render: &str,
    namespace: &str,
    daemonset: &str,
) -> (Vec<S>, Vec<S>) {
    let manifest = format!("artifacts/{cni}/rendered-{stage}.yaml");
    let render_step = s(
        Action::RenderManifest {
            file: manifest.clone(),
            chart: cni.into(),
        },
        format!("Render the {cni} manifests from the values (pinned chart version)."),
        vec![format!("{render} > {manifest}")],
        format!("{manifest} exists"),
        300,
    );
    let wait = s(
        Action::WaitDaemonSetReady {
            namespace: namespace.into(),
            name: daemonset.into(),
            node: None,
        },
        format!("Wait until {namespace}/{daemonset} runs on every node."),
        vec![format!(
            "kubectl -n {namespace} rollout status ds/{daemonset} --timeout=10m"
        )],
        format!("{namespace}/{daemonset} is fully ready"),
        600,
    );
    let remove = s(
        Action::DeleteObject {
            kind: "Manifest".into(),
            namespace: Some(namespace.into()),
            name: manifest.clone(),
            backup: manifest.clone(),
        },
        format!("Remove what the rendered {cni} manifests created."),
        vec![format!("kubectl delete -f {manifest}")],
        format!("{namespace}/{daemonset} is gone"),
        600,
    );
    if method == InstallChoice::Manifests || !b.cluster.talos {
        let apply = s(
            Action::ApplyManifest {
                file: manifest.clone(),
            },
            format!("Apply the rendered {cni} manifests."),
            vec![format!("kubectl apply --server-side -f {manifest}")],
            format!("{namespace}/{daemonset} exists"),
            300,
        );
        return (vec![render_step, apply, wait], vec![remove]);
    }
    // Talos fetches the URL at bootstrap and on every upgrade-k8s: it must be pinned (TAL008).
    let url = format!(
        "https://REPLACE-WITH-YOUR-HOST/cniswap/{cni}-{}.yaml",
        if cni == "cilium" {
            cilium_version(b.cluster)
        } else {
            CALICO_VERSION.to_string()
        }
    );
    let patch = talos::install_from_url(b.cluster, cni, &url);
    let host = s(
        Action::ManualGate {
            question: format!(
                "Is {manifest} published at a versioned URL, and is the URL set in artifacts/talos/{}.yaml?",
                patch.name
            ),
        },
        "Publish the rendered manifest at a pinned URL (never a branch) and put that URL into the patch.",
        vec![format!(
            "# upload {manifest}, then replace {url} in artifacts/talos/{}.yaml",
            patch.name
        )],
        "the URL serves the rendered file",
        0,
    );
    let (apply, undo) = b.talos_patch(&patch, &format!("Talos applies the {cni} manifests"));
    let mut steps = vec![render_step, host];
    steps.extend(apply);
    steps.push(wait);
    let mut rollback = undo;
    rollback.push(remove);
    (steps, rollback)
}

/// The Cilium chart version to install: the running Cilium's, when one runs already (Cilium
/// upgrades go one minor at a time, and an upgrade does not belong in a CNI migration: MIG012),
/// else the version cniswap pins.
pub fn cilium_version(cluster: &Cluster) -> String {
    cluster
        .facts
        .cnis
        .iter()
        .find(|c| c.kind == CniKind::Cilium && c.running)
        .and_then(|c| c.version.as_deref())
        .map(|v| v.trim_start_matches('v').to_string())
        .filter(|v| v.split('.').count() == 3 && v.split('.').all(|p| p.parse::<u32>().is_ok()))
        .unwrap_or_else(|| CILIUM_VERSION.to_string())
}

pub fn render_cilium(cluster: &Cluster, values: &str) -> String {
    let version = cilium_version(cluster);
    format!("helm template cilium cilium/cilium --version {version} -n kube-system -f {values}")
}

pub fn helm_cilium(cluster: &Cluster, values: &str, description: &str) -> S {
    let version = cilium_version(cluster);
    s(
        Action::HelmUpgrade {
            release: "cilium".into(),
            namespace: "kube-system".into(),
            chart: format!("cilium/cilium@{version}"),
            values: vec![values.to_string()],
        },
        description,
        vec![
            "helm repo add cilium https://helm.cilium.io".into(),
            format!(
                "helm upgrade --install cilium cilium/cilium --version {version} -n kube-system -f {values}"
            ),
            "kubectl -n kube-system rollout status ds/cilium --timeout=10m".into(),
        ],
        "`helm -n kube-system status cilium` is deployed with these values and ds/cilium is ready",
        900,
    )
}

pub fn helm_uninstall(release: &str, namespace: &str) -> S {
    s(
        Action::HelmRollback {
            release: release.into(),
            namespace: namespace.into(),
        },
        format!("Uninstall (or roll back) the {release} release."),
        vec![
            format!("helm -n {namespace} history {release}"),
            format!(
                "helm -n {namespace} uninstall {release}  # or: helm -n {namespace} rollback {release} <revision>"
            ),
        ],
        format!("`helm -n {namespace} status {release}` shows the previous state"),
        600,
    )
}

/// Install method the plan uses, and why.
pub fn method(b: &Builder) -> InstallChoice {
    b.options.install.unwrap_or(match b.options.target {
        CniKind::Flannel if b.cluster.talos => InstallChoice::TalosUrls,
        CniKind::Flannel => InstallChoice::Manifests,
        _ => InstallChoice::Helm,
    })
}
