//! Issue 17 item 5: only webhooks that can see the pods a plan creates are relaxed, and a
//! sidecar injector never is. The cluster: the generator's Flannel cluster with four
//! fail-closed webhooks served by a pod on the pod network, their namespaces' labels read.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

mod common;

use cniswap_model::CniKind;
use cniswap_plan::{Action, StrategyChoice};
use common::{cluster_yaml, generated_snapshot, options, plan_for};

const HOOK: &str = "apiVersion: v1\nkind: Service\nmetadata:\n  name: hook\n  namespace: hooks\nspec:\n  selector:\n    app: hook\n  ports:\n  - port: 443\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: hook-0\n  namespace: hooks\n  labels:\n    app: hook\n  ownerReferences:\n  - kind: ReplicaSet\n    name: hook\n    controller: true\nspec:\n  nodeName: n1\n  containers:\n  - name: hook\n    image: hook:1\nstatus:\n  phase: Running\n---\n";

fn namespace(name: &str, labels: &str) -> String {
    format!("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: {name}\n  labels:\n{labels}---\n")
}

fn webhook(kind: &str, config: &str, name: &str, rules: &str, selectors: &str) -> String {
    format!(
        "apiVersion: admissionregistration.k8s.io/v1\nkind: {kind}\nmetadata:\n  name: {config}\nwebhooks:\n- name: {name}\n  failurePolicy: Fail\n  clientConfig:\n    service:\n      namespace: hooks\n      name: hook\n  rules:\n{rules}{selectors}---\n"
    )
}

const PODS: &str = "  - operations: [CREATE]\n    apiGroups: [\"\"]\n    apiVersions: [v1]\n    resources: [pods]\n";
const INGRESSES: &str = "  - operations: [CREATE, UPDATE]\n    apiGroups: [networking.k8s.io]\n    apiVersions: [v1]\n    resources: [ingresses]\n";

fn cluster() -> String {
    let mut yaml = String::new();
    for ns in ["default", "kube-system", "kube-flannel", "hooks"] {
        yaml.push_str(&namespace(ns, "    team: platform\n"));
    }
    yaml.push_str(&namespace("payments", "    team: payments\n"));
    yaml.push_str(HOOK);
    yaml.push_str(&webhook(
        "ValidatingWebhookConfiguration",
        "ingress-check",
        "ingress.example.com",
        INGRESSES,
        "",
    ));
    yaml.push_str(&webhook(
        "ValidatingWebhookConfiguration",
        "payments-only",
        "payments.example.com",
        PODS,
        "  namespaceSelector:\n    matchLabels:\n      team: payments\n",
    ));
    yaml.push_str(&webhook(
        "ValidatingWebhookConfiguration",
        "every-pod",
        "pods.example.com",
        PODS,
        "  namespaceSelector:\n    matchExpressions:\n    - key: team\n      operator: In\n      values: [platform]\n",
    ));
    // An empty namespace selector selects every namespace, even ones whose labels are unread.
    yaml.push_str(&webhook(
        "ValidatingWebhookConfiguration",
        "empty-selector",
        "empty.example.com",
        PODS,
        "  namespaceSelector: {}\n  objectSelector:\n    matchLabels:\n      app: nothing-has-this\n",
    ));
    yaml.push_str(&webhook(
        "MutatingWebhookConfiguration",
        "vault-agent-injector-cfg",
        "vault.hashicorp.com",
        PODS,
        "",
    ));
    yaml.push_str(&cluster_yaml(CniKind::Flannel, 1, 2, 1, true));
    yaml
}

fn relaxed(plan: &cniswap_plan::Plan) -> Vec<String> {
    common::steps(plan)
        .iter()
        .filter_map(|s| match &s.action {
            Action::PatchObject { object, patch, .. }
                if object.kind.ends_with("webhookconfiguration") && patch.contains("Ignore") =>
            {
                Some(object.name.clone())
            }
            _ => None,
        })
        .collect()
}

#[test]
fn only_webhooks_that_see_the_recreated_pods_are_relaxed_and_never_an_injector() {
    let (_dir, snapshot) = generated_snapshot(&cluster());
    let facts = cniswap_facts::detect(&snapshot);
    assert_eq!(
        facts.workloads.fail_closed_webhooks.len(),
        5,
        "each fails closed on the pod network: {:#?}",
        facts.workloads.fail_closed_webhooks
    );
    let plan = plan_for(
        &snapshot,
        &options(CniKind::Cilium, StrategyChoice::Rolling),
    )
    .unwrap()
    .plan;
    assert_eq!(relaxed(&plan), vec!["every-pod".to_string()]);
    let risks: Vec<&str> = plan
        .estimates
        .risks
        .iter()
        .map(|r| r.handling.as_str())
        .collect();
    assert!(
        risks
            .iter()
            .any(|h| h.starts_with("not relaxed: its rules do not cover creating pods")),
        "{risks:#?}"
    );
    assert!(
        risks
            .iter()
            .any(|h| h.starts_with("not relaxed: its namespace and object selectors")),
        "{risks:#?}"
    );
    assert!(
        risks.iter().any(|h| h.starts_with("never relaxed")),
        "{risks:#?}"
    );

    // Namespaces whose labels were not read: the selector cannot be judged, so the webhook
    // is relaxed as before (the safe side for a migration that must create pods).
    let unread = cluster().replace("kind: Namespace", "kind: ConfigMap");
    let (_dir, snapshot) = generated_snapshot(&unread);
    let plan = plan_for(
        &snapshot,
        &options(CniKind::Cilium, StrategyChoice::Rolling),
    )
    .unwrap()
    .plan;
    let mut names = relaxed(&plan);
    names.sort();
    assert_eq!(
        names,
        vec!["every-pod".to_string(), "payments-only".to_string()]
    );
}
