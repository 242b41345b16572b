use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL003",
        name: "talos-capabilities",
        title: "Cilium capabilities include SYS_MODULE on Talos",
        severity: Severity::Error,
        inputs: &[Input::Cilium],
        fix: "set securityContext.capabilities.ciliumAgent to [CHOWN, KILL, NET_ADMIN, NET_RAW, IPC_LOCK, SYS_ADMIN, SYS_RESOURCE, DAC_OVERRIDE, FOWNER, SETGID, SETUID] and cleanCiliumState to [NET_ADMIN, SYS_ADMIN, SYS_RESOURCE]",
        docs: include_str!("../../../../../docs/rules/CIL003.md"),
    },
    check,
};

fn capabilities(node: &Node) -> Vec<String> {
    match node.as_str() {
        // `--set` style: "{CHOWN,KILL,...}"
        Some(text) => text
            .trim_matches(|c| c == '{' || c == '}')
            .split(',')
            .map(|c| c.trim().to_string())
            .collect(),
        None => node.string_list(),
    }
}

fn check(ctx: &Context, out: &mut Emitter) {
    if !ctx.is_talos() {
        return;
    }
    for values in &ctx.cilium {
        if values.from_cluster || values.bool("securityContext.privileged") == Some(true) {
            continue;
        }
        for list in ["ciliumAgent", "cleanCiliumState"] {
            let path = format!("securityContext.capabilities.{list}");
            let (problem, node) = match values.get(&path) {
                // A Secret the release reads may set it.
                None if !values.complete() => continue,
                None => (
                    "is not set, so the chart default (with SYS_MODULE) applies".to_string(),
                    None,
                ),
                Some(node) if capabilities(node).iter().any(|c| c == "SYS_MODULE") => {
                    ("includes SYS_MODULE".to_string(), Some(node))
                }
                Some(_) => continue,
            };
            out.push(
                out.finding(format!(
                    "{path} {problem}: Talos forbids loading kernel modules and the agent ends in CrashLoopBackOff"
                ))
                .at(ctx.location_or_file(node, values.anchor()))
                .object(values.label.clone()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    const TALOS: &str = "cluster:\n  network:\n    cni:\n      name: none\n";

    #[test]
    fn fires_on_defaults_on_talos() {
        let values = "kubeProxyReplacement: true\nk8sServiceHost: localhost\n";
        assert_eq!(
            fired(
                "CIL003",
                &[("patch.yaml", TALOS), ("helm/cilium.yaml", values)],
                Target::default()
            )
            .len(),
            2
        );
    }

    #[test]
    fn quiet_with_talos_lists_or_off_talos() {
        let values = "kubeProxyReplacement: true\nsecurityContext:\n  capabilities:\n    ciliumAgent: [CHOWN, KILL, NET_ADMIN, NET_RAW, IPC_LOCK, SYS_ADMIN, SYS_RESOURCE, DAC_OVERRIDE, FOWNER, SETGID, SETUID]\n    cleanCiliumState: \"{NET_ADMIN,SYS_ADMIN,SYS_RESOURCE}\"\n";
        assert!(
            fired(
                "CIL003",
                &[("patch.yaml", TALOS), ("helm/cilium.yaml", values)],
                Target::default()
            )
            .is_empty()
        );
        assert!(
            fired(
                "CIL003",
                &[(
                    "helm/cilium.yaml",
                    "kubeProxyReplacement: true\nk8sServiceHost: x\n"
                )],
                Target::default()
            )
            .is_empty()
        );
    }
}
