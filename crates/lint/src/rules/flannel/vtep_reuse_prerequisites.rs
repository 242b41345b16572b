use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "FLN001",
        name: "vtep-reuse-prerequisites",
        title: "Flannel does not meet Calico's shared-overlay prerequisites",
        severity: Severity::Error,
        inputs: &[Input::Flannel, Input::Target],
        fix: "use the cutover strategy, or first move Flannel to the vxlan backend without DirectRouting, installed as a plain DaemonSet",
        docs: include_str!("../../../../../docs/rules/FLN001.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    if !ctx.rolling_to(CniKind::Calico) {
        return;
    }
    let addon_managed = ctx.snapshot.objects.daemonsets.iter().any(|d| {
        d.metadata.name.contains("flannel")
            && d.metadata
                .labels
                .contains_key("addonmanager.kubernetes.io/mode")
    });
    for flannel in &ctx.flannel {
        let mut problems = Vec::new();
        if let Some(backend) = flannel.backend.as_deref().filter(|b| *b != "vxlan") {
            problems.push(format!("backend is `{backend}`, not vxlan"));
        }
        if flannel.direct_routing == Some(true) {
            problems.push("DirectRouting is on".to_string());
        }
        if addon_managed {
            problems.push("the DaemonSet is managed by the addon manager".to_string());
        }
        if problems.is_empty() {
            continue;
        }
        out.push(
            out.finding(format!(
                "{}: {}: Calico's shared-overlay migration (VTEP reuse) requires a vxlan backend without DirectRouting in a plain DaemonSet",
                flannel.label,
                problems.join(", ")
            ))
            .at(flannel.backend_at.clone())
            .object(flannel.label.clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use cniswap_model::CniKind;

    fn cm(backend: &str) -> String {
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kube-flannel-cfg\n  namespace: kube-flannel\ndata:\n  net-conf.json: |\n    {{\n      \"Network\": \"10.244.0.0/16\",\n      \"Backend\": {{\n        \"Type\": \"{backend}\"\n      }}\n    }}\n"
        )
    }

    #[test]
    fn fires_on_host_gw() {
        let found = fired(
            "FLN001",
            &[("kube-flannel.yml", &cm("host-gw"))],
            rolling(CniKind::Calico),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        let at = found[0].location.as_ref().unwrap();
        assert_eq!((at.line, at.column), (11, 9));
    }

    #[test]
    fn quiet_on_vxlan() {
        assert!(
            fired(
                "FLN001",
                &[("kube-flannel.yml", &cm("vxlan"))],
                rolling(CniKind::Calico)
            )
            .is_empty()
        );
    }
}
