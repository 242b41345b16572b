use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "MIG005",
        name: "webhook-fails-closed-on-pod-network",
        title: "fail-closed webhook served from the pod network",
        severity: Severity::Warning,
        inputs: &[Input::Facts],
        fix: "set `failurePolicy: Ignore` for the window (restore it afterwards), or run the webhook on hostNetwork",
        docs: include_str!("../../../../../docs/rules/MIG005.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for webhook in &ctx.facts.workloads.fail_closed_webhooks {
        out.push(
            out.finding(format!(
                "{} webhook {} fails closed and is served by {} on the pod network: while that network is down, matching API writes (including the new CNI's own pods) are rejected",
                webhook.configuration, webhook.webhook, webhook.service
            ))
            .object(webhook.configuration.clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    fn webhook(policy: &str) -> String {
        format!(
            "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata:\n  name: kyverno\nwebhooks:\n- name: validate.kyverno.svc\n  failurePolicy: {policy}\n  clientConfig:\n    service:\n      name: kyverno-svc\n      namespace: kyverno\n  rules:\n  - apiGroups: [\"\"]\n    resources: [pods]\n    operations: [CREATE]\n    apiVersions: [v1]\n---\napiVersion: v1\nkind: Service\nmetadata:\n  name: kyverno-svc\n  namespace: kyverno\nspec:\n  selector:\n    app: kyverno\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: kyverno-0\n  namespace: kyverno\n  labels:\n    app: kyverno\n  ownerReferences:\n  - kind: ReplicaSet\n    name: kyverno-abc\n    controller: true\nspec:\n  nodeName: n0\n  containers:\n  - name: kyverno\n    image: kyverno:v1\nstatus:\n  phase: Running\n"
        )
    }

    #[test]
    fn fires_on_fail_policy() {
        assert_eq!(
            fired(
                "MIG005",
                &[("cluster/all.yaml", &cluster(2, &[], &webhook("Fail")))],
                Target::default()
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_on_ignore() {
        assert!(
            fired(
                "MIG005",
                &[("cluster/all.yaml", &cluster(2, &[], &webhook("Ignore")))],
                Target::default()
            )
            .is_empty()
        );
    }
}
