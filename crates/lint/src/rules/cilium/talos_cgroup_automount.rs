use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL004",
        name: "talos-cgroup-automount",
        title: "Cilium cgroup settings do not fit Talos",
        severity: Severity::Error,
        inputs: &[Input::Cilium],
        fix: "set `cgroup.autoMount.enabled: false` and `cgroup.hostRoot: /sys/fs/cgroup`",
        docs: include_str!("../../../../../docs/rules/CIL004.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    if !ctx.is_talos() {
        return;
    }
    for values in ctx.cilium.iter().filter(|v| !v.from_cluster) {
        // A misspelled key has no effect: say so, because the file looks right at a glance.
        let misspelled = values
            .get("cgroup")
            .map(|c| {
                c.entries()
                    .iter()
                    .filter_map(|(k, _)| k.scalar_text())
                    .filter(|k| k != "autoMount" && k != "hostRoot")
                    .map(|k| format!(" (`cgroup.{k}` is not a chart key and is ignored)"))
                    .collect::<String>()
            })
            .unwrap_or_default();
        let auto = values.get("cgroup.autoMount.enabled");
        // Unset keys may come from a Secret the release reads.
        if auto.and_then(Node::as_bool) != Some(false) && (auto.is_some() || values.complete()) {
            let state = if auto.is_some() {
                "is not false"
            } else {
                "is not set (chart default true)"
            };
            out.push(
                out.finding(format!(
                    "cgroup.autoMount.enabled {state}{misspelled}: mounting cgroup2 fails on Talos"
                ))
                .at(ctx.location_or_file(auto.or(values.get("cgroup")), values.anchor()))
                .object(values.label.clone()),
            );
        }
        let root = values.get("cgroup.hostRoot");
        if root.and_then(Node::as_str) != Some("/sys/fs/cgroup")
            && (root.is_some() || values.complete())
        {
            let state = match root.and_then(Node::scalar_text) {
                Some(v) => format!("is `{v}`"),
                None => "is not set (chart default /run/cilium/cgroupv2)".into(),
            };
            out.push(
                out.finding(format!(
                    "cgroup.hostRoot {state}{misspelled}: on Talos the cgroup2 hierarchy is at /sys/fs/cgroup"
                ))
                .at(ctx.location_or_file(root.or(values.get("cgroup")), values.anchor()))
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
    fn fires_on_misspelled_automount() {
        let values = "kubeProxyReplacement: true\ncgroup:\n  automount:\n    enabled: false\n  hostRoot: /sys/fs/cgroup\n";
        let found = fired(
            "CIL004",
            &[("patch.yaml", TALOS), ("helm/cilium.yaml", values)],
            Target::default(),
        );
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].message.contains("cgroup.automount"));
        assert_eq!(found[0].location.as_ref().unwrap().line, 3);
    }

    #[test]
    fn quiet_with_talos_settings() {
        let values = "kubeProxyReplacement: true\ncgroup:\n  autoMount:\n    enabled: false\n  hostRoot: /sys/fs/cgroup\n";
        assert!(
            fired(
                "CIL004",
                &[("patch.yaml", TALOS), ("helm/cilium.yaml", values)],
                Target::default()
            )
            .is_empty()
        );
    }
}
