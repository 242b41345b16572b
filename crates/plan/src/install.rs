//! Installing (and uninstalling) the target CNI with its final or migration settings, and
//! proving the agents run with them.

use crate::artifacts::{calico, cilium, flannel, talos};
use crate::context::{CALICO_VERSION, CILIUM_VERSION, Cluster, InstallChoice};
use crate::model::{Action, AgentReport, ObjectRef, Render, Setting};
use crate::ops::{self, S, s};
use crate::strategies::Builder;
use cniswap_model::CniKind;
use serde_json::json;

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

/// Restarts the target agent on one node and waits for it.
pub fn restart_agent(cluster: &Cluster, cni: CniKind, node: &str, description: String) -> S {
    let (ns, ds) = agent_daemonset(cluster, cni);
    ops::restart_agent(&ns, &ds, &cluster.agent_selector(cni), node, description)
}

/// Restarts the target's agent on one node where this plan installs it (Calico by manifest:
/// kube-system, not the operator's calico-system), and waits for it.
pub fn restart_target_agent(b: &Builder, node: &str, description: String) -> S {
    let (ns, ds) = target_daemonset(b);
    let selector = b.cluster.agent_selector(b.options.target);
    ops::restart_agent(&ns, &ds, &selector, node, description)
}

/// The cluster pod CIDR the target should use (cutover and fresh keep it): proven before
/// any step is built (`known::pod_cidr`), or the plan was refused with the question.
pub fn cluster_pod_cidr(b: &Builder) -> String {
    b.cluster
        .pod_cidr
        .as_ref()
        .map(|p| p.value.clone())
        .unwrap_or_default()
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
                let render = cilium_render(b, &file);
                return rendered(b, how, "cilium", "final", render, "kube-system", "cilium");
            }
            let (install, undo) =
                helm_cilium(b, &file, "final", "Install Cilium with its final values.");
            (vec![install], vec![undo])
        }
        CniKind::Calico if method(b) == InstallChoice::Manifest => {
            let pod_cidr = pool.map_or_else(|| cluster_pod_cidr(b), str::to_string);
            calico_manifest(b, &pod_cidr)
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
            let mut undo = Vec::new();
            if bpf {
                let cm = b.artifacts.add_yaml(
                    "calico/kubernetes-services-endpoint.yaml",
                    "Where Calico reaches the API server without kube-proxy (create before the operator)",
                    &calico::services_endpoint(b.cluster),
                );
                steps.push(s(
                    Action::ApplyManifest { file: cm.clone() },
                    "Create the kubernetes-services-endpoint ConfigMap before the operator starts.",
                    vec![
                        sh!("kubectl create namespace tigera-operator --dry-run=client -o yaml | kubectl apply -f -"),
                        sh!("kubectl apply --server-side -f {}", cm),
                    ],
                    "`kubectl -n tigera-operator get cm kubernetes-services-endpoint` matches the file",
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
                        vec![sh!("kubectl apply --server-side -f {}", felix)],
                        "`kubectl get felixconfiguration default -o yaml` shows cgroupV2Path",
                        60,
                    ));
                }
            }
            let how = method(b);
            if how != InstallChoice::Helm {
                let (repo, chart, version) =
                    chart_source(b, TIGERA_REPO, "tigera-operator", CALICO_VERSION);
                let render = Render::Helm {
                    repo,
                    chart,
                    version,
                    release: "calico".into(),
                    namespace: "tigera-operator".into(),
                    values: vec![file.clone()],
                };
                let (more, more_undo) = rendered(
                    b,
                    how,
                    "calico",
                    "final",
                    render,
                    "calico-system",
                    "calico-node",
                );
                steps.extend(more);
                // Calico's documented order: its custom resources first, the operator tears Calico
                // down, then the operator goes, and the CRDs last (crate::tigera).
                undo.extend(crate::tigera::uninstall_before_operator());
                undo.extend(more_undo);
                undo.extend(operator_calico_crds(b));
                return (steps, undo);
            }
            let (install, uninstall) = helm(
                b,
                "calico",
                "tigera-operator",
                TIGERA_REPO,
                "tigera-operator",
                CALICO_VERSION,
                &file,
                "Install the Tigera operator and Calico.",
                // The operator creates the TigeraStatus after helm returns: waited for to
                // exist first (kubectl 1.31+), where a plain wait would fail at once.
                vec![
                    sh!("kubectl wait --for=create tigerastatus/calico --timeout=10m"),
                    sh!("kubectl wait --for=condition=Available tigerastatus/calico --timeout=10m"),
                ],
            );
            steps.push(install);
            // Calico's documented order: its custom resources first, the operator tears Calico
            // down, then the operator goes, and the CRDs last (crate::tigera).
            undo.extend(crate::tigera::uninstall_before_operator());
            undo.push(uninstall);
            undo.extend(operator_calico_crds(b));
            (steps, undo)
        }
        _ => {
            if b.cluster.talos {
                talos_flannel(b)
            } else {
                flannel_manifest(b)
            }
        }
    }
}

/// The CRDs the operator's chart installed (helm keeps CRDs on uninstall), removed last when
/// no CNI the cluster runs shares their groups (Canal's are Calico's); backed up first.
fn operator_calico_crds(b: &Builder) -> Vec<S> {
    let groups = crate::context::crd_groups(CniKind::Calico);
    let shared = b.cluster.facts.cnis.iter().any(|c| {
        c.kind != CniKind::Calico
            && crate::context::crd_groups(c.kind)
                .iter()
                .any(|g| groups.contains(g))
    });
    if shared {
        return Vec::new();
    }
    let groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
    let (delete, _) = ops::delete_crds(
        &groups,
        "backups/calico-installed-crds",
        "Back up and delete the CRDs the operator's chart installed (helm keeps CRDs), last: nothing of Calico is left.".into(),
        String::new(),
    );
    vec![delete]
}

/// Talos' built-in Flannel, switched on by a patch; Talos never deletes what it rendered, so
/// undoing the patch also deletes the DaemonSet.
fn talos_flannel(b: &mut Builder) -> (Vec<S>, Vec<S>) {
    let patch = talos::enable_flannel(b.cluster);
    let (mut apply, mut undo) =
        b.talos_patch(&patch, "Talos deploys its built-in Flannel (VXLAN 4789)");
    let (delete, _) = ops::delete_object(
        ObjectRef::new("daemonset", Some("kube-system"), "kube-flannel"),
        " that Talos created",
    );
    undo.push(delete);
    apply.push(ops::wait_daemonset(
        "kube-system",
        "kube-flannel",
        "Wait until Talos' Flannel runs on every node it may.".into(),
    ));
    (apply, undo)
}

/// Flannel from its pinned release manifest, with the cluster's network written into its
/// net-conf.json (the manifest ships 10.244.0.0/16) by a generated kustomize patch; rolling
/// adds a nodeSelector so Flannel never starts on a node that still runs the old CNI.
fn flannel_manifest(b: &mut Builder) -> (Vec<S>, Vec<S>) {
    let network = cluster_pod_cidr(b);
    let rolling = b.options.strategy == crate::context::StrategyChoice::Rolling;
    let dir = "artifacts/flannel";
    let upstream = format!("{dir}/kube-flannel.yml");
    let mut patches = vec![json!({"path": "net-conf-patch.yaml"})];
    b.artifacts.add_yaml(
        "flannel/net-conf-patch.yaml",
        "Flannel's net-conf.json with this cluster's network",
        &flannel::net_conf_patch(&network),
    );
    if rolling {
        b.artifacts.add_yaml(
            "flannel/node-selector-patch.yaml",
            "Flannel runs only on nodes switched to it",
            &flannel::node_selector_patch(FLANNEL_NODE_LABEL, "flannel"),
        );
        patches.push(json!({"path": "node-selector-patch.yaml"}));
    }
    let mut kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["kube-flannel.yml"],
        "patches": patches,
    });
    add_mirror_images(b, "flannel", &mut kustomization);
    b.artifacts.add_yaml(
        "flannel/kustomization.yaml",
        "Flannel's release manifest with this cluster's settings",
        &kustomization,
    );
    let rendered = format!("{dir}/rendered.yaml");
    let needle = format!("\"Network\":\"{network}\"");
    let download = fetch(
        b,
        "flannel",
        &flannel::manifest_url(),
        &upstream,
        "Download Flannel's pinned release manifest.",
    );
    let render = s(
        Action::RenderManifest {
            file: rendered.clone(),
            render: Render::Kustomize { dir: dir.into() },
        },
        format!(
            "Render Flannel {} with this cluster's network {network}.",
            crate::context::FLANNEL_VERSION
        ),
        vec![
            atomic_output(&sh!("kubectl kustomize {}", dir), &rendered),
            sh!("grep -qF -- {} {}", needle, rendered),
        ],
        format!("{rendered} exists and carries the network {network}"),
        120,
    );
    let apply = s(
        Action::ApplyManifest {
            file: rendered.clone(),
        },
        "Apply Flannel.",
        vec![sh!("kubectl apply --server-side -f {}", rendered)],
        "the objects of the rendered manifest exist as rendered",
        300,
    );
    let mut steps = download;
    steps.extend([render, apply]);
    if !rolling {
        steps.push(ops::wait_daemonset(
            "kube-flannel",
            "kube-flannel-ds",
            "Wait until Flannel runs on every node.".into(),
        ));
    }
    let remove = s(
        Action::DeleteManifest {
            file: rendered.clone(),
            backup: "backups/flannel-installed.yaml".into(),
        },
        "Back up and remove what the Flannel manifest created.",
        vec![
            crate::backup::write_once(
                &sh!("kubectl get -f {} --ignore-not-found -o yaml", rendered),
                "backups/flannel-installed.yaml",
            ),
            sh!("kubectl delete -f {} --ignore-not-found", rendered),
        ],
        "no object of the rendered manifest is left",
        600,
    );
    (steps, vec![remove])
}

/// Writes what `producer` prints to `file` via a temporary file.
pub fn atomic_output(producer: &crate::shell::Sh, file: &str) -> crate::shell::Sh {
    let tmp = format!("{file}.tmp");
    sh!(
        "{} > {} && mv {} {}",
        crate::shell::Code(producer),
        tmp,
        tmp,
        file
    )
}

/// The step that brings a pinned upstream manifest into the plan directory: none when the user
/// gave it with `--manifest NAME=FILE` (it is copied into the artifacts instead), else a
/// download, which a plan for a cluster without the internet refuses (see [`Builder::offline`]).
pub fn fetch(b: &mut Builder, name: &str, url: &str, file: &str, description: &str) -> Vec<S> {
    if let Some(text) = b.options.local.manifest(name) {
        let path = file.strip_prefix("artifacts/").unwrap_or(file);
        b.artifacts.add_raw(
            path,
            &format!("the {name} manifest given with --manifest (instead of {url})"),
            text.to_string(),
        );
        return Vec::new();
    }
    b.needs_download(name, url);
    vec![download(url, file, description)]
}

/// With `--image-registry`: kustomize `images:` entries that point every image of the
/// manifest `name` (given with --manifest) at the mirror. A downloaded manifest's images are
/// not known at plan time: [`fetch`] refuses the download in that case.
pub fn add_mirror_images(b: &Builder, name: &str, kustomization: &mut serde_json::Value) {
    let (Some(registry), Some(text)) = (
        b.options.local.image_registry.as_deref(),
        b.options.local.manifest(name),
    ) else {
        return;
    };
    let images = crate::local::kustomize_images(registry, text);
    if !images.is_empty() {
        kustomization["images"] = serde_json::Value::Array(images);
    }
}

/// Calico from its own manifest (calico.yaml, VXLAN, no operator: calico-node in kube-system),
/// with the pool CIDR written into calico-node's environment by a kustomize patch.
fn calico_manifest(b: &mut Builder, pod_cidr: &str) -> (Vec<S>, Vec<S>) {
    let dir = "artifacts/calico/manifest";
    let mut steps = fetch(
        b,
        "calico",
        &calico_manifest_url(),
        &format!("{dir}/calico.yaml"),
        "Download Calico's pinned VXLAN manifest.",
    );
    b.artifacts.add_yaml(
        "calico/manifest/pool-patch.yaml",
        "calico-node creates its IP pool with this cluster's pod CIDR, VXLAN only",
        &calico::manifest_pool_patch(pod_cidr),
    );
    let mut kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["calico.yaml"],
        "patches": [{"path": "pool-patch.yaml"}],
    });
    add_mirror_images(b, "calico", &mut kustomization);
    b.artifacts.add_yaml(
        "calico/manifest/kustomization.yaml",
        "Calico's manifest with this cluster's pod CIDR",
        &kustomization,
    );
    let rendered = format!("{dir}/rendered.yaml");
    steps.push(s(
        Action::RenderManifest {
            file: rendered.clone(),
            render: Render::Kustomize { dir: dir.into() },
        },
        format!("Render Calico's manifest with the pod CIDR {pod_cidr}."),
        vec![
            atomic_output(&sh!("kubectl kustomize {}", dir), &rendered),
            sh!("grep -qF -- {} {}", pod_cidr, rendered),
        ],
        format!("{rendered} exists and carries the pod CIDR {pod_cidr}"),
        120,
    ));
    steps.push(s(
        Action::ApplyManifest {
            file: rendered.clone(),
        },
        "Apply Calico.",
        vec![sh!("kubectl apply --server-side -f {}", rendered)],
        "the objects of the rendered manifest exist as rendered",
        300,
    ));
    steps.push(ops::wait_daemonset(
        "kube-system",
        "calico-node",
        "Wait until calico-node runs on every node.".into(),
    ));
    let backup = "backups/calico-manifest-objects.yaml";
    let remove = s(
        Action::DeleteManifest {
            file: rendered.clone(),
            backup: backup.into(),
        },
        "Back up and remove what the Calico manifest created.",
        vec![
            crate::backup::write_once(
                &sh!("kubectl get -f {} --ignore-not-found -o yaml", rendered),
                backup,
            ),
            sh!("kubectl delete -f {} --ignore-not-found", rendered),
        ],
        "no object of the rendered manifest is left",
        600,
    );
    (steps, vec![remove])
}

/// Calico's VXLAN manifest of the pinned release.
pub fn calico_manifest_url() -> String {
    format!(
        "https://raw.githubusercontent.com/projectcalico/calico/{CALICO_VERSION}/manifests/calico-vxlan.yaml"
    )
}

/// The tigera-operator chart repository.
pub const TIGERA_REPO: &str = "https://docs.tigera.io/calico/charts";
/// The Cilium chart repository.
pub const CILIUM_REPO: &str = "https://helm.cilium.io";

/// Where helm takes a chart from: (repo, chart, version). A chart given with `--chart` is copied
/// into the artifacts and used from there (repo empty, its Chart.yaml version); else the
/// repository and the pinned version.
pub fn chart_source(
    b: &mut Builder,
    repo: &str,
    chart: &str,
    version: &str,
) -> (String, String, String) {
    if let Some(local) = b.options.local.chart(chart) {
        let version = local.version().unwrap_or_default();
        let dir = crate::local::copy_chart(&mut b.artifacts, local);
        return (String::new(), dir, version);
    }
    b.needs_download(chart, repo);
    (repo.to_string(), chart.to_string(), version.to_string())
}

/// Downloads a pinned upstream file into the plan directory (the directory is created).
pub fn download(url: &str, file: &str, description: &str) -> S {
    let dir = file.rsplit_once('/').map_or(".", |(d, _)| d);
    let tmp = format!("{file}.tmp");
    s(
        Action::Download {
            url: url.into(),
            file: file.into(),
        },
        description,
        vec![sh!(
            "mkdir -p {} && curl -fsSL {} -o {} && mv {} {}",
            dir,
            url,
            tmp,
            tmp,
            file
        )],
        format!("{file} exists"),
        300,
    )
    .note(format!("Needs curl and access to {url}."))
}

/// The node label that says which CNI a node runs during a rolling migration to Flannel.
pub const FLANNEL_NODE_LABEL: &str = "cniswap.io/cni";

fn render_command(render: &Render, file: &str) -> crate::shell::Sh {
    match render {
        Render::Helm {
            chart,
            version,
            release,
            namespace,
            values,
            repo,
        } => {
            let mut words = vec![
                "helm".to_string(),
                "template".into(),
                release.clone(),
                chart.clone(),
            ];
            // A chart in the plan directory has no repository, and is the version it is.
            if !repo.is_empty() {
                words.extend([
                    "--repo".into(),
                    repo.clone(),
                    "--version".into(),
                    version.clone(),
                ]);
            }
            words.extend(["-n".into(), namespace.clone()]);
            for v in values {
                words.push("-f".into());
                words.push(v.clone());
            }
            atomic_output(&crate::shell::argv(&words), file)
        }
        Render::Kustomize { dir } => atomic_output(&sh!("kubectl kustomize {}", dir), file),
    }
}

/// Renders manifests into a file.
pub fn render_step(render: Render, file: &str, description: &str) -> S {
    let local = matches!(&render, Render::Helm { repo, .. } if repo.is_empty());
    let step = s(
        Action::RenderManifest {
            file: file.into(),
            render: render.clone(),
        },
        description,
        vec![render_command(&render, file)],
        format!("{file} exists"),
        300,
    );
    if local {
        step.note("Needs helm; the chart is in the plan directory.")
    } else {
        step.note("Needs helm and access to the chart repository.")
    }
}

/// Installs from manifests rendered with `helm template`: applied with kubectl (`manifests`), or
/// applied by Talos from a pinned URL (`talos-urls`, `omni`), so a bootstrap installs the CNI.
/// `stage` names the rendering (`migration`, `final`), so each stage has its own file.
pub fn rendered(
    b: &mut Builder,
    method: InstallChoice,
    cni: &str,
    stage: &str,
    render: Render,
    namespace: &str,
    daemonset: &str,
) -> (Vec<S>, Vec<S>) {
    let manifest = format!("artifacts/{cni}/rendered-{stage}.yaml");
    let render_step = render_step(
        render,
        &manifest,
        &format!("Render the {cni} manifests from the values (pinned chart version)."),
    );
    let wait = ops::wait_daemonset(
        namespace,
        daemonset,
        format!("Wait until {namespace}/{daemonset} runs on every node."),
    );
    let backup = format!("backups/{cni}-rendered-{stage}-objects.yaml");
    let remove = s(
        Action::DeleteManifest {
            file: manifest.clone(),
            backup: backup.clone(),
        },
        format!("Back up and remove what the rendered {cni} manifests created."),
        vec![
            crate::backup::write_once(
                &sh!("kubectl get -f {} --ignore-not-found -o yaml", manifest),
                &backup,
            ),
            sh!("kubectl delete -f {} --ignore-not-found", manifest),
        ],
        format!("no object of {manifest} is left"),
        600,
    );
    if method == InstallChoice::Manifests || !b.cluster.talos {
        let apply = s(
            Action::ApplyManifest {
                file: manifest.clone(),
            },
            format!("Apply the rendered {cni} manifests."),
            vec![sh!("kubectl apply --server-side -f {}", manifest)],
            format!("the objects of {manifest} exist as rendered"),
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
    let host = ops::gate(
        format!(
            "Is {manifest} published at a versioned URL, and is the URL set in artifacts/talos/{}.yaml?",
            patch.name
        ),
        "Publish the rendered manifest at a pinned URL (never a branch) and put that URL into the patch.",
        Vec::new(),
        "the URL serves the rendered file",
    )
    .note(format!(
        "Upload {manifest}, then replace {url} in artifacts/talos/{}.yaml.",
        patch.name
    ));
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

pub fn cilium_render(b: &mut Builder, values: &str) -> Render {
    let version = cilium_version(b.cluster);
    let (repo, chart, version) = chart_source(b, CILIUM_REPO, "cilium", &version);
    Render::Helm {
        repo,
        chart,
        version,
        release: "cilium".into(),
        namespace: "kube-system".into(),
        values: vec![values.to_string()],
    }
}

/// `helm upgrade --install` of a pinned chart from its repository URL, recording the values'
/// digest in the release description and the revision before (for rollback). Returns the
/// step and its undo (a rollback to that revision, or an uninstall when there was none).
#[allow(clippy::too_many_arguments)]
pub fn helm(
    b: &mut Builder,
    release: &str,
    namespace: &str,
    repo: &str,
    chart: &str,
    version: &str,
    values_file: &str,
    description: &str,
    then: Vec<crate::shell::Sh>,
) -> (S, S) {
    let (repo, chart, version) = chart_source(b, repo, chart, version);
    let (repo, chart, version) = (repo.as_str(), chart.as_str(), version.as_str());
    let text = b.artifacts.text(values_file).unwrap_or_default();
    let sha = crate::names::sha256(text);
    let revision = format!(
        "backups/helm-{}-{}-revision-before-{}.txt",
        crate::names::file_part(namespace),
        crate::names::file_part(release),
        &sha[..12]
    );
    let filter = format!("^{}$", crate::check::ere_literal(release));
    // No release: an empty file. An unreachable cluster: no file (the step fails).
    let record = crate::backup::write_once(
        &sh!(
            "{{ out=$(helm -n {} list -a --filter {} -q) && {{ [ -z \"$out\" ] || helm -n {} history {} --max 1 -o json | sed -n 's/.*\"revision\":\\([0-9][0-9]*\\).*/\\1/p'; }}; }}",
            namespace,
            filter,
            namespace,
            release
        ),
        &revision,
    );
    let description_arg = format!("--description={}", crate::check::helm_description(&sha));
    let upgrade = if repo.is_empty() {
        sh!(
            "helm upgrade --install {} {} -n {} --create-namespace -f {} {} --wait --timeout 15m",
            release,
            chart,
            namespace,
            values_file,
            description_arg
        )
    } else {
        sh!(
            "helm upgrade --install {} {} --repo {} --version {} -n {} --create-namespace -f {} {} --wait --timeout 15m",
            release,
            chart,
            repo,
            version,
            namespace,
            values_file,
            description_arg
        )
    };
    let mut commands = vec![record, upgrade];
    commands.extend(then);
    let install = s(
        Action::HelmUpgrade {
            release: release.into(),
            namespace: namespace.into(),
            repo: repo.into(),
            chart: chart.into(),
            version: version.into(),
            values: vec![values_file.into()],
            values_sha256: sha.clone(),
            revision_backup: Some(revision.clone()),
        },
        description,
        commands,
        format!(
            "`helm -n {namespace} status {release}` is deployed with description `{}`",
            crate::check::helm_description(&sha)
        ),
        1200,
    )
    .note(if repo.is_empty() {
        "Needs helm; the chart is in the plan directory."
    } else {
        "Needs helm and access to the chart repository."
    });
    let undo = s(
        Action::HelmRollback {
            release: release.into(),
            namespace: namespace.into(),
            revision_file: revision.clone(),
        },
        format!(
            "Put the {release} release back as it was before (uninstall it if there was none)."
        ),
        vec![sh!(
            "r=$(cat {}) && if [ -n \"$r\" ]; then helm -n {} rollback {} \"$r\" --wait --timeout 15m; else out=$(helm -n {} list -a --filter {} -q) && {{ [ -z \"$out\" ] || helm -n {} uninstall {} --wait; }}; fi",
            revision,
            namespace,
            release,
            namespace,
            filter,
            namespace,
            release
        )],
        format!("the {release} release is at the revision in {revision}, or gone"),
        1200,
    );
    (install, undo)
}

/// Cilium with a values file (`stage`: migration or final).
pub fn helm_cilium(b: &mut Builder, values: &str, stage: &str, description: &str) -> (S, S) {
    let version = cilium_version(b.cluster);
    let _ = stage;
    helm(
        b,
        "cilium",
        "kube-system",
        CILIUM_REPO,
        "cilium",
        &version,
        values,
        description,
        vec![sh!(
            "kubectl -n kube-system rollout status ds/cilium --timeout=10m"
        )],
    )
}

/// The settings the Cilium agents must run with for a values file, as cilium-config keys.
pub fn cilium_settings(values: &serde_json::Value) -> Vec<Setting> {
    let mut out = Vec::new();
    let bool_text = |v: &serde_json::Value| match v {
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::String(s) => Some(s.clone()),
        _ => None,
    };
    if let Some(kpr) = values.get("kubeProxyReplacement").and_then(bool_text) {
        out.push(Setting {
            key: "kube-proxy-replacement".into(),
            value: kpr,
        });
    }
    if let Some(mode) = values.get("policyEnforcementMode").and_then(|v| v.as_str()) {
        out.push(Setting {
            key: "enable-policy".into(),
            value: mode.into(),
        });
    }
    if let Some(custom) = values.pointer("/cni/customConf").and_then(bool_text) {
        out.push(Setting {
            key: "custom-cni-conf".into(),
            value: custom,
        });
    }
    if let Some(exclusive) = values.pointer("/cni/exclusive").and_then(bool_text) {
        out.push(Setting {
            key: "cni-exclusive".into(),
            value: exclusive,
        });
    }
    out
}

/// Restarts the Cilium agents and operator so they read values they do not pick up by
/// themselves (the chart's `rollOutCiliumPods` is false), then checks that the ConfigMap and
/// every agent carry the settings. `token` names the values (their digest).
pub fn settle_cilium(
    b: &Builder,
    values: &serde_json::Value,
    token: &str,
    restart: bool,
) -> Vec<S> {
    let mut steps = Vec::new();
    if restart {
        steps.push(ops::rollout_restart(
            "daemonset",
            "kube-system",
            "cilium",
            token,
            "so every agent runs with the new values",
        ));
        steps.push(ops::rollout_restart(
            "deployment",
            "kube-system",
            "cilium-operator",
            token,
            "so the operator runs with the new values",
        ));
    }
    steps.push(verify_cilium_settings(b, values));
    steps
}

/// Like [`settle_cilium`], for Cilium carrying every pod: its agents restart one node at a
/// time, in the plan's node order, each a node step (apply marks the node, so a moment's loss
/// of established connections there is that node's, not the cluster's).
pub fn settle_cilium_node_by_node(b: &Builder, values: &serde_json::Value, token: &str) -> Vec<S> {
    let mut steps: Vec<S> = b
        .batches()
        .into_iter()
        .flatten()
        .map(|node| {
            restart_agent(
                b.cluster,
                CniKind::Cilium,
                &node.name,
                format!(
                    "Restart Cilium on {} so it runs with the new values, and wait.",
                    node.name
                ),
            )
        })
        .collect();
    steps.push(ops::rollout_restart(
        "deployment",
        "kube-system",
        "cilium-operator",
        token,
        "so the operator runs with the new values",
    ));
    steps.push(verify_cilium_settings(b, values));
    steps
}

/// Checks that cilium-config holds the values' settings and every agent reports its kube-proxy
/// replacement as set.
pub fn verify_cilium_settings(b: &Builder, values: &serde_json::Value) -> S {
    let settings = cilium_settings(values);
    let selector = b.cluster.agent_selector(CniKind::Cilium);
    let kpr = settings
        .iter()
        .find(|s| s.key == "kube-proxy-replacement")
        .map(|s| s.value == "true")
        .unwrap_or(false);
    let report = AgentReport {
        container: "cilium-agent".into(),
        command: vec![cilium_dbg(b.cluster).into(), "status".into()],
        line: format!(
            "^KubeProxyReplacement:[[:space:]]+{}",
            if kpr { "True" } else { "False" }
        ),
    };
    let mut commands: Vec<crate::shell::Sh> = settings
        .iter()
        .map(|setting| {
            let path = format!("jsonpath={{.data.{}}}", setting.key.replace('.', "\\."));
            sh!(
                "out=$(kubectl -n kube-system get configmap cilium-config -o {}) && [ \"$out\" = {} ]",
                path,
                setting.value
            )
        })
        .collect();
    let status = crate::shell::argv(&report.command);
    commands.push(sh!(
        "pods=$(kubectl -n kube-system get pods -l {} -o name) && [ -n \"$pods\" ] && printf '%s\\n' \"$pods\" | while read -r p; do kubectl -n kube-system exec \"$p\" -c {} -- {} | grep -qE -- {} || {{ echo \"$p does not report it\"; exit 1; }}; done",
        selector,
        report.container,
        crate::shell::Code(&status),
        report.line
    ));
    let shown: Vec<String> = settings
        .iter()
        .map(|s| format!("{}={}", s.key, s.value))
        .collect();
    s(
        Action::VerifySettings {
            namespace: "kube-system".into(),
            configmap: "cilium-config".into(),
            settings,
            daemonset: "cilium".into(),
            selector,
            report: Some(report),
        },
        format!(
            "Check that cilium-config and every Cilium agent run with the new settings ({}).",
            shown.join(", ")
        ),
        commands,
        "every setting reads as set and every agent reports its kube-proxy replacement as set",
        600,
    )
}

/// `cilium-dbg` from Cilium 1.15 on, `cilium` before.
fn cilium_dbg(cluster: &Cluster) -> &'static str {
    let version = cilium_version(cluster);
    let minor: u32 = version
        .split('.')
        .nth(1)
        .and_then(|m| m.parse().ok())
        .unwrap_or(99);
    if version.starts_with("1.") && minor < 15 {
        "cilium"
    } else {
        "cilium-dbg"
    }
}

/// Install method the plan uses.
pub fn method(b: &Builder) -> InstallChoice {
    b.options.install.unwrap_or(match b.options.target {
        CniKind::Flannel if b.cluster.talos => InstallChoice::TalosUrls,
        CniKind::Flannel => InstallChoice::Manifests,
        // Calico's own manifest when the user gave it, or when the cluster runs Calico by
        // manifest already (many do): the same install it knows, no operator taking over.
        CniKind::Calico
            if b.options.local.manifest("calico").is_some()
                || b.cluster.install_of(CniKind::Calico)
                    == Some(cniswap_model::InstallMethod::Manifest) =>
        {
            InstallChoice::Manifest
        }
        _ => InstallChoice::Helm,
    })
}

/// Where the target's agents run once installed: Calico by manifest (and Calico's
/// flannel-migration manifests) run calico-node in kube-system, the operator in calico-system.
pub fn target_daemonset(b: &Builder) -> (String, String) {
    let target = b.options.target;
    let manifest = target == CniKind::Calico
        && (method(b) == InstallChoice::Manifest
            || crate::strategies::rolling::uses_calico_migration_manifests(
                target,
                b.options.strategy,
            ));
    if manifest {
        return ("kube-system".into(), "calico-node".into());
    }
    agent_daemonset(b.cluster, target)
}
