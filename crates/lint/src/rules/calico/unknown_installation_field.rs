use crate::keys;
use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CAL011",
        name: "unknown-installation-field",
        title: "not a Calico Installation / FelixConfiguration field",
        severity: Severity::Warning,
        inputs: &[Input::Calico],
        fix: "use the API's field name (`kubectl explain installation.spec` / `felixconfiguration.spec`)",
        docs: include_str!("../../../../../docs/rules/CAL011.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    let lists = [
        (
            &ctx.calico.installations,
            keys::calico_installation(),
            "Installation",
        ),
        (
            &ctx.calico.felix,
            keys::calico_felix(),
            "FelixConfiguration",
        ),
    ];
    for (resources, tree, kind) in lists {
        // Objects read from a cluster were already pruned by the API server.
        for resource in resources.iter().filter(|r| r.spec.has_position()) {
            for key in tree.unknown_keys(&resource.spec, None) {
                let mut finding = out
                    .finding(format!(
                        "`{}` is not a field of the {kind} spec: the API server prunes unknown fields, so the setting never applies",
                        key.path
                    ))
                    .at(ctx.location(key.key))
                    .object(resource.label.clone());
                if let Some(s) = &key.suggestion {
                    finding = finding.help(format!("did you mean `{s}`?"));
                }
                out.push(finding);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_on_misplaced_dataplane() {
        let install = "apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata:\n  name: default\nspec:\n  calicoNetwork:\n    ipPools:\n      - cidr: 10.52.0.0/16\n        linuxDataplane: BPF\n";
        let found = fired("CAL011", &[("i.yaml", install)], Target::default());
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 9);
    }

    #[test]
    fn quiet_on_valid_fields() {
        let felix = "apiVersion: crd.projectcalico.org/v1\nkind: FelixConfiguration\nmetadata:\n  name: default\nspec:\n  bpfEnabled: true\n  vxlanPort: 4789\n  failsafeInboundHostPorts:\n    - protocol: tcp\n      port: 50000\n";
        assert!(fired("CAL011", &[("f.yaml", felix)], Target::default()).is_empty());
    }
}
