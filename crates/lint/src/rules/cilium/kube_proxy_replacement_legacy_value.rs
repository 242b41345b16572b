use crate::input::version::ChartVersion;
use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL002",
        name: "kube-proxy-replacement-legacy-value",
        title: "legacy `kubeProxyReplacement` value",
        severity: Severity::Error,
        inputs: &[Input::Cilium],
        fix: "use `kubeProxyReplacement: true` (full replacement) or `false`",
        docs: include_str!("../../../../../docs/rules/CIL002.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for values in &ctx.cilium {
        let Some(value) = values.kube_proxy_replacement() else {
            continue;
        };
        if !matches!(value.as_str(), "strict" | "partial" | "probe" | "disabled") {
            continue;
        }
        let current = values
            .version
            .is_none_or(|v| v >= ChartVersion::new(1, 16, 0));
        let version = values.describe_version();
        let effect = match value.as_str() {
            "partial" => "fails to start on 1.16+ (\"Invalid value for --kube-proxy-replacement\")",
            "strict" => "was removed after 1.15 and did not mean the same as `true` on 1.15",
            _ => "was removed after 1.15",
        };
        let replacement = if value == "disabled" { "false" } else { "true" };
        out.push(
            out.finding(format!(
                "kubeProxyReplacement `{value}` {effect} ({version})"
            ))
            .severity(if current {
                Severity::Error
            } else {
                Severity::Warning
            })
            .at(values
                .get("kubeProxyReplacement")
                .and_then(|n| ctx.location(n)))
            .object(values.label.clone())
            .help(format!("use `kubeProxyReplacement: {replacement}`")),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;
    use cniswap_model::Severity;

    #[test]
    fn fires_on_strict() {
        let found = fired(
            "CIL002",
            &[(
                "helm/cilium.yaml",
                "kubeProxyReplacement: strict\nipam: {mode: kubernetes}\n",
            )],
            Target::default(),
        );
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].severity, Severity::Error);
        assert_eq!(found[0].help, "use `kubeProxyReplacement: true`");
    }

    #[test]
    fn names_the_version_that_runs_in_the_cluster() {
        // Values without a chart version, next to a cluster that runs Cilium v1.16.5.
        let ds = cluster(
            2,
            &[("kube-system/cilium", "quay.io/cilium/cilium:v1.16.5")],
            "",
        );
        let found = fired(
            "CIL002",
            &[
                ("cluster/cluster.yaml", ds.as_str()),
                (
                    "helm/cilium.yaml",
                    "kubeProxyReplacement: strict\nipam: {mode: kubernetes}\n",
                ),
            ],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0]
                .message
                .contains("(Cilium 1.16.5, running in the cluster)"),
            "{}",
            found[0].message
        );
    }

    #[test]
    fn quiet_on_true() {
        assert!(
            fired(
                "CIL002",
                &[(
                    "helm/cilium.yaml",
                    "kubeProxyReplacement: \"true\"\nipam: {mode: kubernetes}\n"
                )],
                Target::default()
            )
            .is_empty()
        );
    }
}
