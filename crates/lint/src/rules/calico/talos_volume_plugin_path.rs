use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CAL005",
        name: "talos-volume-plugin-path",
        title: "Calico kubelet volume plugin path on Talos",
        severity: Severity::Warning,
        inputs: &[Input::Calico],
        fix: "set `kubeletVolumePluginPath: None` in the Installation",
        docs: include_str!("../../../../../docs/rules/CAL005.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    if !ctx.is_talos() {
        return;
    }
    for installation in &ctx.calico.installations {
        let node = installation.get("kubeletVolumePluginPath");
        if node.and_then(Node::as_str) == Some("None") {
            continue;
        }
        // The key in another case (`kubeletVolumePluginpath`) looks set but is pruned by the
        // API server: point at it and say so.
        let miscased = installation.spec.entries().iter().find(|(k, _)| {
            k.as_str().is_some_and(|k| {
                k != "kubeletVolumePluginPath" && k.eq_ignore_ascii_case("kubeletVolumePluginPath")
            })
        });
        let state = match (node, miscased) {
            (Some(n), _) => format!("`{}`", n.scalar_text().unwrap_or_default()),
            (None, Some((key, _))) => format!(
                "unset (`{}` is spelled in another case: the API server drops it)",
                key.as_str().unwrap_or_default()
            ),
            (None, None) => "unset".into(),
        };
        let at = node.or(miscased.map(|(key, _)| key));
        out.push(
            out.finding(format!(
                "{}: kubeletVolumePluginPath is {state}: Talos has no writable /var/lib/kubelet/plugins path for Calico's CSI driver",
                installation.label,
            ))
            .at(ctx.location_or_file(at, &installation.spec))
            .object(installation.label.clone()),
        );
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    const TALOS: &str = "cluster:\n  network:\n    cni: {name: none}\n";
    const INSTALL: &str = "apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata:\n  name: default\nspec:\n  calicoNetwork:\n    ipPools: [{cidr: 10.244.0.0/16}]\n";

    #[test]
    fn fires_when_unset_on_talos() {
        assert_eq!(
            fired(
                "CAL005",
                &[("i.yaml", INSTALL), ("patch.yaml", TALOS)],
                Target::default()
            )
            .len(),
            1
        );
    }

    #[test]
    fn names_the_key_spelled_in_another_case() {
        let miscased = format!("{INSTALL}  kubeletVolumePluginpath: None\n");
        let found = fired(
            "CAL005",
            &[("i.yaml", &miscased), ("patch.yaml", TALOS)],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert_eq!(found[0].location.as_ref().unwrap().line, 8);
        assert!(
            found[0]
                .message
                .contains("`kubeletVolumePluginpath` is spelled in another case")
        );
    }

    #[test]
    fn quiet_with_none() {
        let fixed = format!("{INSTALL}  kubeletVolumePluginPath: None\n");
        assert!(
            fired(
                "CAL005",
                &[("i.yaml", &fixed), ("patch.yaml", TALOS)],
                Target::default()
            )
            .is_empty()
        );
    }
}
