use crate::keys;
use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CIL017",
        name: "unknown-or-removed-value",
        title: "not a Cilium chart value",
        severity: Severity::Warning,
        inputs: &[Input::Cilium],
        fix: "use the chart's key (see `helm show values cilium/cilium --version <version>`)",
        docs: include_str!("../../../../../docs/rules/CIL017.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    for values in ctx.cilium.iter().filter(|v| !v.from_cluster) {
        let version = values.version.map(|v| v.minor());
        let tree = keys::cilium::tree(version);
        let chart = values.version.map_or("the Cilium chart".into(), |v| {
            format!("the Cilium {v} chart")
        });
        // The key data is complete up to 1.16; for newer or unknown chart versions a key we do
        // not know may simply be new, so only near-misses of known keys are reported there.
        let data_covers = values.version.is_some_and(|v| v.minor() <= (1, 16));
        for key in tree.unknown_keys(&values.values, None) {
            if !data_covers && !key.typo && keys::cilium::removal(&key.path, version).is_none() {
                continue;
            }
            let (message, help) = if let Some(removal) = keys::cilium::removal(&key.path, version) {
                (
                    format!(
                        "`{}` was removed in Cilium {}.{}: Helm ignores it and the setting never takes effect",
                        key.path, removal.version.0, removal.version.1
                    ),
                    removal.hint.to_string(),
                )
            } else if let Some(added) = keys::cilium::added_later(&key.path, version) {
                (
                    format!(
                        "`{}` exists only since Cilium {}.{}, not in {chart}: Helm ignores it",
                        key.path, added.version.0, added.version.1
                    ),
                    "upgrade the chart, or drop the key".into(),
                )
            } else {
                (
                    format!(
                        "`{}` is not a value of {chart}: Helm ignores unknown keys silently, so the setting never takes effect",
                        key.path
                    ),
                    key.suggestion.as_ref().map_or_else(
                        || RULE.meta.fix.to_string(),
                        |s| format!("did you mean `{s}`?"),
                    ),
                )
            };
            out.push(
                out.finding(message)
                    .at(ctx.location(key.key))
                    .object(values.label.clone())
                    .help(help),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_on_typo_and_removed_key() {
        let values = "cgroup:\n  automount:\n    enabled: false\ntunnel: vxlan\n";
        let found = fired("CIL017", &[("helm/cilium.yaml", values)], Target::default());
        assert_eq!(found.len(), 2, "{found:?}");
        assert_eq!(found[0].help, "did you mean `cgroup.autoMount`?");
        assert!(found[1].message.contains("removed in Cilium 1.15"));
    }

    #[test]
    fn quiet_on_valid_values_and_old_tunnel() {
        let values = "cgroup:\n  autoMount:\n    enabled: false\n  hostRoot: /sys/fs/cgroup\nsocketLB:\n  hostNamespaceOnly: true\nnodeSelector:\n  any/key: x\n";
        assert!(fired("CIL017", &[("helm/cilium.yaml", values)], Target::default()).is_empty());
        let old = "apiVersion: helm.toolkit.fluxcd.io/v2\nkind: HelmRelease\nmetadata: {name: cilium}\nspec:\n  chart:\n    spec: {chart: cilium, version: 1.14.2}\n  values:\n    tunnel: vxlan\n";
        assert!(fired("CIL017", &[("hr.yaml", old)], Target::default()).is_empty());
    }
}
