//! Issue 17: plans that prove before they act. One cluster per class, each made here from the
//! kubectl-shaped generator of tests/common and changed where the class differs: a partial
//! read, a pod range nothing declares, k3s' node-args, a node network where the usual
//! migration pool lies, a load-balancer address, several control planes without a VIP.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

mod common;

use cniswap_model::CniKind;
use cniswap_plan::{KubeProxyChoice, PlanOptions, StrategyChoice};
use common::{cluster_yaml, file, generated_snapshot, options};

/// The generator's cluster without its kubeadm-config: nothing declares the pod range.
fn without_kubeadm_config(yaml: &str) -> String {
    let at = yaml
        .find("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kubeadm-config")
        .unwrap();
    yaml[..at].to_string()
}

fn plan(
    snapshot: &cniswap_snapshot::Snapshot,
    options: &PlanOptions,
) -> Result<cniswap_plan::Output, cniswap_plan::PlanError> {
    let facts = cniswap_facts::detect(snapshot);
    cniswap_plan::plan(snapshot, &facts, options)
}

fn proven<'a>(output: &'a cniswap_plan::Output, fact: &str) -> &'a cniswap_plan::ProvenFact {
    output
        .plan
        .proven
        .iter()
        .find(|p| p.fact == fact)
        .unwrap_or_else(|| panic!("no proven {fact}: {:#?}", output.plan.proven))
}

/// The newcomer's case, offline: a snapshot whose live read was refused two kinds plans
/// from neither, naming both and the permission; written and read back, it says the same.
#[test]
fn a_partial_read_is_refused_naming_each_kind_and_the_permission() {
    let yaml = cluster_yaml(CniKind::Flannel, 1, 2, 1, true);
    let (dir, mut snapshot) = generated_snapshot(&yaml);
    assert!(snapshot.unread.is_empty());
    snapshot.mark_unread(cniswap_snapshot::UnreadKind::from_path(
        "/apis/policy/v1/poddisruptionbudgets",
        "403 Forbidden: poddisruptionbudgets.policy is forbidden",
    ));
    snapshot.mark_unread(cniswap_snapshot::UnreadKind::from_path(
        "/api/v1/pods",
        "403 Forbidden: pods is forbidden",
    ));
    let out = dir.path().join("written");
    std::fs::create_dir(&out).unwrap();
    cniswap_snapshot::write_snapshot(&snapshot, &out).unwrap();
    let read_back = cniswap_snapshot::load(&out).unwrap();
    assert_eq!(
        read_back.unread, snapshot.unread,
        "cluster/unread.json round trip"
    );

    for snapshot in [&snapshot, &read_back] {
        let facts = cniswap_facts::detect(snapshot);
        assert_eq!(facts.inputs.unread.len(), 2);
        let error = cniswap_plan::plan(
            snapshot,
            &facts,
            &options(CniKind::Cilium, StrategyChoice::Auto),
        )
        .err()
        .expect("a partial read is no plan");
        assert!(
            error.message.contains("poddisruptionbudgets.policy (403")
                && error.message.contains("pods (403"),
            "{}",
            error.message
        );
        assert!(
            error
                .help
                .contains("--resource=poddisruptionbudgets.policy,pods"),
            "{}",
            error.help
        );
    }
}

/// Nothing declares the pod range: Flannel's network is asked for, never 10.244.0.0/16 by
/// default; the flag is checked against the node allocations, then written where it goes.
#[test]
fn an_unknown_pod_cidr_is_asked_for_not_invented() {
    let yaml = without_kubeadm_config(&cluster_yaml(CniKind::Cilium, 1, 2, 1, true))
        .replace("10.244.", "10.32.");
    let (_dir, snapshot) = generated_snapshot(&yaml);
    let to_flannel = options(CniKind::Flannel, StrategyChoice::Cutover);
    let error = plan(&snapshot, &to_flannel).err().expect("asks");
    assert!(
        error.message.contains("pod CIDR is unknown"),
        "{}",
        error.message
    );
    assert!(
        error.help.contains("--pod-cidr") && error.help.contains("10.32.0.0/22"),
        "names the flag and the nodes' covering range: {}",
        error.help
    );

    let outside = PlanOptions {
        pod_cidr: Some("10.99.0.0/16".into()),
        ..to_flannel.clone()
    };
    let error = plan(&snapshot, &outside).err().expect("refused");
    assert!(
        error.message.contains("lies outside it"),
        "{}",
        error.message
    );

    let given = PlanOptions {
        pod_cidr: Some("10.32.0.0/16".into()),
        ..to_flannel
    };
    let output = plan(&snapshot, &given).unwrap();
    assert_eq!(proven(&output, "pod CIDR").source, "--pod-cidr");
    let net_conf = file(&output, "artifacts/flannel/net-conf-patch.yaml");
    assert!(net_conf.contains("10.32.0.0/16"), "{net_conf}");
    for (path, text) in &output.files {
        assert!(
            !text.contains("10.244.0.0/16"),
            "{path} invents 10.244.0.0/16"
        );
    }
}

/// k3s: the ranges come from the server's `k3s.io/node-args`, and the plan says so.
#[test]
fn k3s_node_args_declare_the_ranges() {
    let args = r#"["server","--cluster-cidr","10.42.0.0/16","--service-cidr","10.43.0.0/16","--flannel-backend","vxlan"]"#;
    let yaml = without_kubeadm_config(&cluster_yaml(CniKind::Flannel, 1, 2, 1, true))
        .replace("10.244.", "10.42.")
        .replace(
            "  name: n0\n  labels:\n",
            &format!("  name: n0\n  annotations:\n    k3s.io/node-args: '{args}'\n  labels:\n"),
        );
    let (_dir, snapshot) = generated_snapshot(&yaml);
    let facts = cniswap_facts::detect(&snapshot);
    let pod = facts
        .cidrs
        .pod
        .iter()
        .find(|c| c.cidr == "10.42.0.0/16")
        .unwrap_or_else(|| panic!("{:#?}", facts.cidrs));
    assert!(pod.source.contains("k3s --cluster-cidr"), "{}", pod.source);
    assert!(facts.cidrs.service.iter().any(|c| c.cidr == "10.43.0.0/16"));

    let output = plan(
        &snapshot,
        &options(CniKind::Calico, StrategyChoice::Cutover),
    )
    .unwrap();
    let fact = proven(&output, "pod CIDR");
    assert_eq!(fact.value, "10.42.0.0/16");
    assert!(
        fact.source.contains("k3s.io/node-args of node n0"),
        "{}",
        fact.source
    );
    assert!(file(&output, "artifacts/calico/values.yaml").contains("10.42.0.0/16"));
}

/// The usual migration pools hold the nodes' own addresses and a load balancer's: the pool
/// chosen overlaps none of them, and the plan says what it passed over.
#[test]
fn the_migration_pool_overlaps_no_node_or_load_balancer_address() {
    let mut yaml = cluster_yaml(CniKind::Flannel, 1, 2, 1, true).replace("192.168.1.", "10.245.0.");
    yaml.push_str("---\napiVersion: v1\nkind: Service\nmetadata:\n  name: web\n  namespace: default\nspec:\n  type: LoadBalancer\n  clusterIP: 10.96.0.50\n  selector:\n    app: web\nstatus:\n  loadBalancer:\n    ingress:\n    - ip: 10.246.3.7\n");
    let (_dir, snapshot) = generated_snapshot(&yaml);
    let output = plan(
        &snapshot,
        &options(CniKind::Cilium, StrategyChoice::Rolling),
    )
    .unwrap();
    let pool = proven(&output, "migration pool");
    assert_eq!(pool.value, "10.247.0.0/16");
    assert!(
        pool.source.contains("passed over 2 candidates")
            && pool.source.contains("node n0's address 10.245.0.10"),
        "{}",
        pool.source
    );
    let values = file(&output, "artifacts/cilium/values-migration.yaml");
    assert!(values.contains("10.247.0.0/16"), "{values}");
}

/// Three control planes and no VIP in the snapshot: a target that replaces kube-proxy is not
/// pinned to one server; the plan asks, and takes the answer. Keeping kube-proxy pins nothing.
#[test]
fn an_api_endpoint_of_one_server_among_several_is_asked_for() {
    let yaml = cluster_yaml(CniKind::Flannel, 3, 2, 1, true);
    let (_dir, snapshot) = generated_snapshot(&yaml);
    let replace = PlanOptions {
        kube_proxy: Some(KubeProxyChoice::Replace),
        ..options(CniKind::Cilium, StrategyChoice::Cutover)
    };
    let error = plan(&snapshot, &replace).err().expect("asks");
    assert!(
        error.message.contains("one of 3 control planes") && error.help.contains("--api-endpoint"),
        "{} / {}",
        error.message,
        error.help
    );
    let bad = PlanOptions {
        api_endpoint: Some("api.example.com".into()),
        ..replace.clone()
    };
    assert!(plan(&snapshot, &bad).is_err(), "HOST without PORT");
    let given = PlanOptions {
        api_endpoint: Some("api.example.com:6443".into()),
        ..replace
    };
    let output = plan(&snapshot, &given).unwrap();
    assert_eq!(
        proven(&output, "API endpoint").value,
        "api.example.com:6443"
    );
    let values = file(&output, "artifacts/cilium/values-final.yaml");
    assert!(
        values.contains("k8sServiceHost: api.example.com"),
        "{values}"
    );

    let keep = PlanOptions {
        kube_proxy: Some(KubeProxyChoice::Keep),
        ..options(CniKind::Cilium, StrategyChoice::Cutover)
    };
    let output = plan(&snapshot, &keep).unwrap();
    let values = file(&output, "artifacts/cilium/values-final.yaml");
    assert!(!values.contains("k8sServiceHost"), "{values}");
}

/// Talos applying Calico from a manifest URL, to Flannel: Talos rejects `urls` beside any
/// name but `custom`, so the patch removes the `cni` section whole (Flannel is what a
/// missing section means); the rollback restores `custom` with exactly the URL it had.
#[test]
fn a_talos_calico_url_config_patched_to_flannel_drops_the_urls_and_rollback_restores_them() {
    const URL: &str =
        "https://raw.githubusercontent.com/projectcalico/calico/v3.29.1/manifests/calico.yaml";
    let yaml = cluster_yaml(CniKind::Calico, 1, 2, 1, true)
        .replace("Debian GNU/Linux 12", "Talos (v1.10.5)");
    let (dir, _) = generated_snapshot(&yaml);
    std::fs::create_dir_all(dir.path().join("talos")).unwrap();
    std::fs::write(
        dir.path().join("talos/controlplane.yaml"),
        format!("version: v1alpha1\nmachine:\n  type: controlplane\ncluster:\n  network:\n    cni:\n      name: custom\n      urls:\n        - {URL}\n    podSubnets:\n      - 10.244.0.0/16\n    serviceSubnets:\n      - 10.96.0.0/12\n"),
    )
    .unwrap();
    let snapshot = cniswap_snapshot::load(dir.path()).unwrap();
    let output = plan(
        &snapshot,
        &options(CniKind::Flannel, StrategyChoice::Cutover),
    )
    .unwrap_or_else(|e| panic!("{} / {}", e.message, e.help));
    let apply = file(&output, "artifacts/talos/enable-flannel.yaml");
    let apply_doc: serde_json::Value = serde_saphyr::from_str(apply).unwrap();
    assert_eq!(
        apply_doc["cluster"]["network"]["cni"],
        serde_json::json!({"$patch": "delete"}),
        "{apply}"
    );
    assert!(!apply.contains("urls"), "{apply}");
    let rollback = file(&output, "artifacts/talos/rollback-enable-flannel.yaml");
    let rollback_doc: serde_json::Value = serde_saphyr::from_str(rollback).unwrap();
    assert_eq!(
        rollback_doc["cluster"]["network"]["cni"],
        serde_json::json!({"name": "custom", "urls": [URL]}),
        "{rollback}"
    );
}

/// Cilium serves Services (kube-proxy replacement, no kube-proxy): keeping kube-proxy would
/// leave no Service path once Cilium goes, so the plan asks; replacing it plans.
#[test]
fn a_service_path_exists_at_every_moment_or_the_plan_asks() {
    let mut yaml = cluster_yaml(CniKind::Cilium, 1, 2, 1, false);
    yaml.push_str("---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: cilium-config\n  namespace: kube-system\ndata:\n  kube-proxy-replacement: \"true\"\n  ipam: kubernetes\n");
    let (_dir, snapshot) = generated_snapshot(&yaml);
    let facts = cniswap_facts::detect(&snapshot);
    assert_eq!(
        facts.kube_proxy.replaced_by,
        Some(CniKind::Cilium),
        "{:#?}",
        facts.kube_proxy
    );
    let keep = PlanOptions {
        kube_proxy: Some(KubeProxyChoice::Keep),
        ..options(CniKind::Calico, StrategyChoice::Cutover)
    };
    let error = plan(&snapshot, &keep).err().expect("asks");
    assert!(
        error
            .message
            .contains("Services would stop when cilium is removed")
            && error.help.contains("--kube-proxy replace"),
        "{} / {}",
        error.message,
        error.help
    );
    let replace = PlanOptions {
        kube_proxy: Some(KubeProxyChoice::Replace),
        ..keep
    };
    plan(&snapshot, &replace).unwrap_or_else(|e| panic!("{} / {}", e.message, e.help));
}

/// A budget that allows nothing: relaxed when it is the user's, never patched when an
/// operator owns it (CloudNativePG's, by ownerReference; Longhorn's, by managed-by label).
#[test]
fn an_operator_owned_budget_is_never_patched() {
    let pdb = |name: &str, meta: &str| {
        format!(
            "---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: {name}\n  namespace: db\n{meta}spec:\n  maxUnavailable: 0\n  selector:\n    matchLabels:\n      app: {name}\n"
        )
    };
    let mut yaml = cluster_yaml(CniKind::Flannel, 1, 2, 1, true);
    yaml.push_str(&pdb("pg-primary", "  ownerReferences:\n  - apiVersion: postgresql.cnpg.io/v1\n    kind: Cluster\n    name: pg\n    controller: true\n"));
    yaml.push_str(&pdb(
        "instance-manager-1",
        "  labels:\n    app.kubernetes.io/managed-by: longhorn-manager\n",
    ));
    yaml.push_str(&pdb("mine", ""));
    let (_dir, snapshot) = generated_snapshot(&yaml);
    let output = plan(
        &snapshot,
        &options(CniKind::Cilium, StrategyChoice::Rolling),
    )
    .unwrap();
    let patched: Vec<String> = common::steps(&output.plan)
        .iter()
        .filter_map(|s| match &s.action {
            cniswap_plan::Action::PatchObject { object, .. }
                if object.kind == "poddisruptionbudget" =>
            {
                Some(object.name.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(patched, ["mine"], "only the user's budget is relaxed");
    let risks = &output.plan.estimates.risks;
    for owner in ["Cluster/pg", "longhorn-manager"] {
        assert!(
            risks
                .iter()
                .any(|r| r.effect.contains(&format!("belongs to {owner}"))),
            "{owner}: {risks:#?}"
        );
    }
}

/// LoadBalancer Services whose addresses come from Cilium LB-IPAM: leaving Cilium with
/// nothing else to announce them is asked about; with MetalLB running, the plan goes on and
/// lists the inventory and who announces it.
#[test]
fn load_balancers_of_the_old_cni_need_a_replacement_first() {
    let mut yaml = cluster_yaml(CniKind::Cilium, 1, 2, 1, true);
    yaml.push_str("---\napiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\nmetadata:\n  name: ciliumloadbalancerippools.cilium.io\nspec:\n  group: cilium.io\n  names:\n    kind: CiliumLoadBalancerIPPool\n    plural: ciliumloadbalancerippools\n  versions:\n  - name: v2alpha1\n    served: true\n    storage: true\n---\napiVersion: cilium.io/v2alpha1\nkind: CiliumLoadBalancerIPPool\nmetadata:\n  name: lan\nspec:\n  blocks:\n  - cidr: 192.168.1.240/28\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: ingress\n  namespace: default\nspec:\n  type: LoadBalancer\n  clusterIP: 10.96.0.80\nstatus:\n  loadBalancer:\n    ingress:\n    - ip: 192.168.1.241\n");
    let (_dir, snapshot) = generated_snapshot(&yaml);
    let to_calico = options(CniKind::Calico, StrategyChoice::Cutover);
    let error = plan(&snapshot, &to_calico).err().expect("asks");
    assert!(
        error
            .message
            .contains("1 LoadBalancer Service (default/ingress)")
            && error
                .message
                .contains("Cilium LB-IPAM (CiliumLoadBalancerIPPool lan)"),
        "{}",
        error.message
    );
    yaml.push_str("---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: controller\n  namespace: metallb-system\nspec:\n  replicas: 1\n");
    let (_dir, snapshot) = generated_snapshot(&yaml);
    let output =
        plan(&snapshot, &to_calico).unwrap_or_else(|e| panic!("{} / {}", e.message, e.help));
    let inventory = proven(&output, "load balancers");
    assert!(
        inventory
            .source
            .contains("MetalLB (metallb-system/controller)"),
        "{}",
        inventory.source
    );
}

/// kubeadm: when kube-proxy goes, kubeadm-config (v1beta4) says `proxy.disabled: true`, backed
/// up first and restored by the rollback, so `kubeadm upgrade` does not bring it back; a
/// v1beta3 config has no such field and the plan says what upgrades then need.
#[test]
fn kubeadm_keeps_kube_proxy_off_after_an_upgrade() {
    let cluster = |version: &str| {
        let yaml = cluster_yaml(CniKind::Flannel, 1, 2, 1, true);
        yaml.replace(
            "  ClusterConfiguration: |\n    networking:\n",
            &format!("  ClusterConfiguration: |\n    apiVersion: kubeadm.k8s.io/{version}\n    kind: ClusterConfiguration\n    networking:\n"),
        )
    };
    let replace = PlanOptions {
        kube_proxy: Some(KubeProxyChoice::Replace),
        ..options(CniKind::Cilium, StrategyChoice::Cutover)
    };
    let (_dir, snapshot) = generated_snapshot(&cluster("v1beta4"));
    let output = plan(&snapshot, &replace).unwrap_or_else(|e| panic!("{} / {}", e.message, e.help));
    let set = common::steps(&output.plan)
        .into_iter()
        .find(|s| matches!(&s.action, cniswap_plan::Action::PatchObject { object, .. } if object.name == "kubeadm-config"))
        .expect("kubeadm-config is patched");
    let cniswap_plan::Action::PatchObject { patch, backup, .. } = &set.action else {
        unreachable!()
    };
    let patch: serde_json::Value = serde_json::from_str(patch).unwrap();
    let text = patch["data"]["ClusterConfiguration"].as_str().unwrap();
    let config: serde_json::Value = serde_saphyr::from_str(text).unwrap();
    assert_eq!(config["proxy"]["disabled"], true, "{text}");
    assert_eq!(
        config["networking"]["podSubnet"], "10.244.0.0/16",
        "the rest is kept: {text}"
    );
    let backup = backup.as_deref().unwrap();
    assert!(
        common::all_steps(&output.plan).iter().any(|s| s
            .commands
            .iter()
            .any(|c| c.contains(backup))
            && s.description.contains("kubeadm-config back")),
        "the rollback restores {backup}"
    );

    let (_dir, snapshot) = generated_snapshot(&cluster("v1beta3"));
    let output = plan(&snapshot, &replace).unwrap();
    assert!(!common::steps(&output.plan).iter().any(|s| matches!(&s.action, cniswap_plan::Action::PatchObject { object, .. } if object.name == "kubeadm-config")));
    assert!(
        output
            .plan
            .estimates
            .risks
            .iter()
            .any(|r| r.handling.contains("--skip-phases=addon/kube-proxy")),
        "{:#?}",
        output.plan.estimates.risks
    );
}

/// Rolling from a CNI that enforces policies: the window's gap is stated with the policies
/// it concerns and the way out (cutover); a source that enforces nothing states nothing.
#[test]
fn the_policy_gap_of_a_rolling_window_is_stated() {
    let policy = "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: allow-web\n  namespace: default\nspec:\n  podSelector: {}\n";
    let gap = |source: CniKind| {
        let mut yaml = cluster_yaml(source, 1, 2, 1, true);
        yaml.push_str(policy);
        let (_dir, snapshot) = generated_snapshot(&yaml);
        let output = plan(
            &snapshot,
            &options(CniKind::Cilium, StrategyChoice::Rolling),
        )
        .unwrap_or_else(|e| panic!("{} / {}", e.message, e.help));
        output
            .plan
            .estimates
            .risks
            .iter()
            .find(|r| r.effect.contains("migration pool's pod addresses"))
            .cloned()
    };
    let risk = gap(CniKind::Calico).expect("stated for Calico");
    assert!(
        risk.effect.starts_with("1 policy is enforced by calico"),
        "{}",
        risk.effect
    );
    assert!(
        risk.handling.contains("--strategy cutover"),
        "{}",
        risk.handling
    );
    assert!(
        gap(CniKind::Flannel).is_none(),
        "Flannel enforces no policy"
    );
}

/// Issue 17 item 6: after a cutover to Calico, a node's new pod is checked against Calico's
/// pool (its IPAM hands out blocks of the pool, not the node's podCIDR); other targets use
/// the node's podCIDR.
#[test]
fn the_calico_per_node_check_tests_the_pool() {
    let (_dir, snapshot) = generated_snapshot(&cluster_yaml(CniKind::Flannel, 1, 2, 1, true));
    for (target, expected) in [
        (CniKind::Calico, Some("10.244.0.0/16")),
        (CniKind::Cilium, None),
    ] {
        let output = plan(&snapshot, &options(target, StrategyChoice::Cutover)).unwrap();
        let cidrs: Vec<Option<String>> = common::steps(&output.plan)
            .iter()
            .flat_map(|s| match &s.action {
                cniswap_plan::Action::Verify { probes, .. } => probes.clone(),
                _ => Vec::new(),
            })
            .filter_map(|p| match p {
                cniswap_plan::Probe::PodAddress { cidr, .. } => Some(cidr),
                _ => None,
            })
            .collect();
        assert_eq!(cidrs.len(), 3, "{target}: one per node");
        assert!(
            cidrs.iter().all(|c| c.as_deref() == expected),
            "{target}: {cidrs:?}"
        );
    }
}

/// Issue 17 item 6: a runbook reboot reads the node's boot ID first and waits for a new one,
/// so the Ready wait after it cannot pass on the old boot's status.
#[test]
fn a_runbook_reboot_waits_for_a_new_boot_id() {
    let output = common::plan_for(
        &common::example("talos-flannel-homelab"),
        &options(CniKind::Cilium, StrategyChoice::Rolling),
    )
    .unwrap();
    let reboots: Vec<&cniswap_plan::Step> = common::steps(&output.plan)
        .into_iter()
        .filter(|s| matches!(s.action, cniswap_plan::Action::RebootNode { .. }))
        .collect();
    assert!(!reboots.is_empty());
    for step in reboots {
        let c = &step.commands;
        let reboot = c.iter().position(|c| c.contains(" reboot")).unwrap();
        assert!(
            c[..reboot]
                .iter()
                .any(|c| c.starts_with("boot=$(") && c.contains("bootID")),
            "{c:#?}"
        );
        let wait = c
            .iter()
            .position(|c| c.contains("\"$b\" != \"$boot\""))
            .unwrap();
        let ready = c
            .iter()
            .position(|c| c.contains("--for=condition=Ready"))
            .unwrap();
        assert!(reboot < wait && wait < ready, "{c:#?}");
    }
}
