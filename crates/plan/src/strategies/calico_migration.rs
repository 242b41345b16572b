//! Flannel to Calico with Calico's own migration controller (projectcalico/calico
//! kube-controllers/pkg/controllers/flannelmigration). Its `CheckShouldMigrate` looks for the
//! Flannel DaemonSet by name and namespace (FLANNEL_DAEMONSET_NAME, default kube-flannel-ds;
//! FLANNEL_DAEMONSET_NAMESPACE, default kube-flannel) and, when it finds none, logs "no
//! migration process is needed" and exits 0; Talos runs Flannel as kube-system/kube-flannel on
//! VXLAN port 4789, not the default 8472. So the Job is rendered with the cluster's DaemonSet,
//! port and VNI (kustomize over the pinned upstream file), and nothing removes Flannel until
//! Calico demonstrably runs on every node.
//!
//! The controller labels each node `projectcalico.org/node-network-during-migration` (flannel,
//! none, calico) while it works and removes the label from every node when it completes, after
//! deleting Flannel's DaemonSet and Calico's nodeSelector. The proof of a finished migration
//! is therefore calico-node Ready on every node, no node labelled other than calico, and the
//! Flannel DaemonSet gone; "no migration needed" leaves calico-node on no node and fails it.

use super::Builder;
use super::rolling::finalize;
use crate::context::CALICO_VERSION;
use crate::install;
use crate::model::{Action, Probe, Render};
use crate::ops::{self, s};
use cniswap_model::CniKind;
use serde_json::json;

/// The node label of Calico's migration controller.
pub const MIGRATION_LABEL: &str = "projectcalico.org/node-network-during-migration";
/// The label the controller puts on the node it is switching (cordoned and drained).
pub const IN_PROGRESS_LABEL: &str = "projectcalico.org/node-flannel-migration-in-progress";

/// Environment for the migration controller, from the cluster's Flannel.
pub fn controller_env(b: &Builder) -> Vec<(String, String)> {
    let (ns, ds) = b
        .cluster
        .daemonset_of(CniKind::Flannel)
        .unwrap_or(("kube-flannel".into(), "kube-flannel-ds".into()));
    let flannel = b
        .cluster
        .facts
        .cnis
        .iter()
        .find(|c| c.kind == CniKind::Flannel)
        .and_then(|c| c.flannel.clone())
        .unwrap_or_default();
    let port = flannel
        .port
        .unwrap_or(if b.cluster.talos { 4789 } else { 8472 });
    let vni = flannel.vni.unwrap_or(1);
    let env = vec![
        ("FLANNEL_DAEMONSET_NAME".to_string(), ds),
        ("FLANNEL_DAEMONSET_NAMESPACE".to_string(), ns),
        ("FLANNEL_PORT".to_string(), port.to_string()),
        ("FLANNEL_VNI".to_string(), vni.to_string()),
    ];
    // FLANNEL_NETWORK, FLANNEL_MTU and FLANNEL_IPMASQ: the controller reads them from
    // Flannel's own /run/flannel/subnet.env (its documented default), which is exact.
    env
}

pub fn build(b: &mut Builder) {
    let base = format!(
        "https://raw.githubusercontent.com/projectcalico/calico/{CALICO_VERSION}/manifests/flannel-migration"
    );
    let dir = "artifacts/calico/flannel-migration";
    let env = controller_env(b);
    let env_values: Vec<serde_json::Value> = env
        .iter()
        .map(|(name, value)| json!({"name": name, "value": value}))
        .collect();
    b.artifacts.add_yaml(
        "calico/flannel-migration/job-env-patch.yaml",
        "Where Calico's migration controller finds this cluster's Flannel (DaemonSet, namespace, VXLAN port and VNI); the MTU it reads from Flannel's subnet.env",
        &json!({
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": {"name": "flannel-migration", "namespace": "kube-system"},
            "spec": {"template": {"spec": {"containers": [{
                "name": "flannel-migration-controller",
                "env": env_values,
            }]}}},
        }),
    );
    let mut job_kustomization = json!({
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        "resources": ["migration-job.yaml"],
        "patches": [{"path": "job-env-patch.yaml"}],
    });
    install::add_mirror_images(b, "calico-migration-job", &mut job_kustomization);
    b.artifacts.add_yaml(
        "calico/flannel-migration/kustomization.yaml",
        "Calico's migration Job with this cluster's Flannel settings",
        &job_kustomization,
    );
    let job_upstream = format!("{dir}/migration-job.yaml");
    // With an image mirror, calico.yaml is rendered through kustomize (its own directory)
    // so its images point at the mirror; else it is applied as released.
    let mirror = b.options.local.image_registry.is_some();
    let calico_dir = format!("{dir}/calico");
    let calico_manifest = if mirror {
        format!("{calico_dir}/calico.yaml")
    } else {
        format!("{dir}/calico.yaml")
    };
    let rendered = format!("{dir}/rendered-job.yaml");

    let mut steps = Vec::new();
    let mut talos_undo = Vec::new();
    // Talos must stop rendering Flannel before the controller deletes its DaemonSet, or Talos
    // recreates it (on every node, on Calico's VXLAN port) at the next reconcile or boot.
    if b.cluster.talos {
        b.talos_flannel_disabled = true;
        let patch = crate::artifacts::talos::disable_flannel(b.cluster);
        let (apply, undo) = b.talos_patch(
            &patch,
            "Talos stops deploying Flannel (what runs stays until the controller removes it)",
        );
        steps.extend(apply);
        talos_undo.extend(undo);
    }
    steps.extend(install::fetch(
        b,
        "calico-flannel-migration",
        &format!("{base}/calico.yaml"),
        &calico_manifest,
        "Download Calico's flannel-migration manifest (pinned).",
    ));
    steps.extend(install::fetch(
        b,
        "calico-migration-job",
        &format!("{base}/migration-job.yaml"),
        &job_upstream,
        "Download Calico's migration Job (pinned).",
    ));
    let calico_manifest = if mirror {
        let mut kustomization = json!({
            "apiVersion": "kustomize.config.k8s.io/v1beta1",
            "kind": "Kustomization",
            "resources": ["calico.yaml"],
        });
        install::add_mirror_images(b, "calico-flannel-migration", &mut kustomization);
        b.artifacts.add_yaml(
            "calico/flannel-migration/calico/kustomization.yaml",
            "Calico's flannel-migration manifest with its images from the mirror",
            &kustomization,
        );
        let out = format!("{calico_dir}/rendered.yaml");
        steps.push(s(
            Action::RenderManifest {
                file: out.clone(),
                render: Render::Kustomize {
                    dir: calico_dir.clone(),
                },
            },
            "Render Calico's flannel-migration manifest with the mirror's images.",
            vec![install::atomic_output(
                &sh!("kubectl kustomize {}", calico_dir),
                &out,
            )],
            format!("{out} exists"),
            120,
        ));
        out
    } else {
        calico_manifest
    };
    let checks: Vec<crate::shell::Sh> = env
        .iter()
        .map(|(name, value)| {
            // Serializers differ in how they quote "4789": accept either quote or none.
            let needle = format!("value: [\"']?{}[\"']?$", crate::check::ere_literal(value));
            let name = format!("name: {name}");
            sh!(
                "grep -A1 -F -- {} {} | grep -qE -- {}",
                name,
                rendered,
                needle
            )
        })
        .collect();
    let mut render_commands = vec![install::atomic_output(
        &sh!("kubectl kustomize {}", dir),
        &rendered,
    )];
    render_commands.extend(checks);
    steps.push(s(
        Action::RenderManifest {
            file: rendered.clone(),
            render: Render::Kustomize { dir: dir.into() },
        },
        format!(
            "Render the migration Job for this cluster's Flannel ({}).",
            env.iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        render_commands,
        format!("{rendered} exists and carries every setting"),
        120,
    ));
    steps.push(s(
        Action::ApplyManifest {
            file: calico_manifest.clone(),
        },
        "Install Calico in flannel-migration mode (it runs nowhere until a node is switched).",
        vec![sh!("kubectl apply --server-side -f {}", calico_manifest)],
        "the objects of calico.yaml exist as downloaded",
        600,
    ));
    let order: Vec<String> = b.cluster.nodes.iter().map(|n| n.name.clone()).collect();
    steps.push(s(
        Action::ApplyManifest {
            file: rendered.clone(),
        },
        format!(
            "Start Calico's migration controller: it cordons, drains and switches nodes one by one (in the order the API lists them, control planes included: {}).",
            order.join(", ")
        ),
        vec![sh!("kubectl apply --server-side -f {}", rendered)],
        "Job kube-system/flannel-migration exists as rendered",
        120,
    ));
    let timeout = u32::try_from(300 * order.len().max(1) + 600).unwrap_or(u32::MAX);
    let wait_timeout = format!("--timeout={timeout}s");
    steps.push(
        s(
            Action::WaitJob {
                namespace: "kube-system".into(),
                name: "flannel-migration".into(),
                switches_nodes: Some(MIGRATION_LABEL.into()),
            },
            "Wait until the migration controller completes.",
            vec![sh!(
                "kubectl -n kube-system wait job/flannel-migration --for=condition=Complete {}",
                wait_timeout
            )],
            "Job kube-system/flannel-migration is Complete",
            timeout,
        )
        .note("Follow it with `kubectl -n kube-system logs -f job/flannel-migration`; \"No migration needed\" means it did not find Flannel, and the next step fails."),
    );
    steps.push(ops::verify(
        "Calico serves every node",
        vec![
            Probe::AgentsReady {
                namespace: "kube-system".into(),
                daemonset: "calico-node".into(),
            },
            Probe::NoNodeLabelled {
                key: MIGRATION_LABEL.into(),
                except: Some("calico".into()),
            },
        ],
        "Check that calico-node is Ready on every node and no node is left on Flannel (the controller removes its labels when it completes).".into(),
        "calico-node is Ready on every node and no node is labelled flannel or none",
    ));

    // Back to Flannel while the controller's work is unfinished: the Job stops, then node by
    // node (the last switched first) Calico leaves (label `none`: its DaemonSet selects
    // `calico`), its state goes (its VXLAN device uses Flannel's port and VNI, so Flannel could
    // not start beside it), Flannel comes back (label `flannel`), the pods are renewed and the
    // node checked; only then Calico goes from the cluster. Once the controller completed it
    // has deleted Flannel's DaemonSet, and going back is a migration of its own.
    let mut revert = Vec::new();
    revert.push(s(
        Action::DeleteManifest {
            file: rendered.clone(),
            backup: "backups/flannel-migration-job.yaml".into(),
        },
        "Stop the migration controller.",
        vec![
            crate::backup::write_once(
                &sh!("kubectl get -f {} --ignore-not-found -o yaml", rendered),
                "backups/flannel-migration-job.yaml",
            ),
            sh!("kubectl delete -f {} --ignore-not-found", rendered),
        ],
        "no object of the migration Job is left",
        300,
    ));
    if let Some((ns, ds)) = b.cluster.daemonset_of(CniKind::Flannel) {
        revert.push(
            ops::verify(
                "Flannel's DaemonSet is still there",
                vec![Probe::Present {
                    object: crate::model::ObjectRef::new("daemonset", Some(ns.as_str()), &ds),
                }],
                format!(
                    "Check that {ns}/{ds} still exists: Calico's controller deletes it when it completes, and from there the way back is a migration of its own (`cniswap plan --to flannel`)."
                ),
                format!("{ns}/{ds} exists"),
            ),
        );
    }
    // A controller stopped mid-node leaves that node cordoned (and drained): with its cordon
    // kept, the revert's drains can wait forever on budgets whose pods have nowhere to go
    // (seen on the lab), and the revert's own cordon would take it for one made before the
    // plan. Nodes the snapshot showed schedulable are uncordoned, the controller's mark gone.
    for node in b.cluster.nodes.iter().filter(|n| !n.unschedulable) {
        revert.push(ops::label_node(
            &node.name,
            IN_PROGRESS_LABEL,
            None,
            format!(
                "Remove the controller's in-progress mark from {}.",
                node.name
            ),
        ));
        // Not `uncordon`: that keeps a cordon it did not record, which is the point here.
        revert.push(ops::patch_object(
            crate::model::ObjectRef::new("node", None, &node.name),
            crate::model::PatchType::Merge,
            json!({"spec": {"unschedulable": null}}),
            "",
            "",
            None,
            format!(
                "Uncordon {} if the stopped controller left it cordoned (it was schedulable before the plan, and no step of the plan cordoned it yet).",
                node.name
            ),
        ));
    }
    let mut nodes: Vec<&crate::context::PlanNode> = b.cluster.nodes.iter().collect();
    nodes.reverse();
    for node in nodes {
        revert.extend(super::rolling::start_node(node));
        revert.push(ops::label_node(
            &node.name,
            MIGRATION_LABEL,
            Some("none"),
            format!(
                "Take Calico off {} (Flannel does not start yet).",
                node.name
            ),
        ));
        // The node agent refuses to clean under a running calico-node (seen on the lab). The
        // flannel-migration manifest runs it in kube-system, labelled k8s-app=calico-node.
        let (namespace, selector) = ("kube-system".to_string(), "k8s-app=calico-node");
        revert.push(ops::verify(
            &format!("calico-node has left {}", node.name),
            vec![Probe::NoPodsMatching {
                namespace: namespace.clone(),
                selector: selector.into(),
                node: Some(node.name.clone()),
            }],
            format!(
                "Wait until no calico-node pod ({selector}) is left on {}.",
                node.name
            ),
            format!("no pod matches {selector} on {}", node.name),
        ));
        let (clean, _) = ops::node_clean(&node.name, "calico", false, &b.agent_image(), &b.plan_id);
        revert.extend(clean);
        revert.push(ops::label_node(
            &node.name,
            MIGRATION_LABEL,
            Some("flannel"),
            format!("Let Flannel run on {} again.", node.name),
        ));
        revert.extend(b.renew_node(node, CniKind::Flannel));
        revert.extend(super::rolling::end_node_back(
            node,
            CniKind::Flannel,
            &b.agent_image(),
        ));
    }
    if let Some((ns, ds)) = b.cluster.daemonset_of(CniKind::Flannel) {
        revert.push(ops::node_selector(
            &ns,
            &ds,
            MIGRATION_LABEL,
            None,
            format!("Let {ns}/{ds} run on every node again."),
        ));
    }
    revert.push(ops::label_all(
        MIGRATION_LABEL,
        None,
        "Remove the migration label from every node.".into(),
    ));
    revert.push(s(
        Action::DeleteManifest {
            file: calico_manifest.clone(),
            backup: "backups/flannel-migration-calico.yaml".into(),
        },
        "Remove Calico (it runs on no node any more).",
        vec![
            crate::backup::write_once(
                &sh!(
                    "kubectl get -f {} --ignore-not-found -o yaml",
                    calico_manifest
                ),
                "backups/flannel-migration-calico.yaml",
            ),
            sh!("kubectl delete -f {} --ignore-not-found", calico_manifest),
        ],
        "no object of calico.yaml is left",
        600,
    ));
    // Talos renders Flannel again.
    revert.extend(talos_undo);
    let rollback = revert;
    b.phase(
        "Migrate with Calico's controller",
        "Every node runs Calico on the same pod CIDR; Flannel's DaemonSet is gone.",
        steps,
        rollback,
    );
    finalize(
        b,
        vec![
            Probe::AgentsReady {
                namespace: "kube-system".into(),
                daemonset: "calico-node".into(),
            },
            Probe::NoNodeLabelled {
                key: MIGRATION_LABEL.into(),
                except: Some("calico".into()),
            },
        ],
        None,
        true,
    );
}
