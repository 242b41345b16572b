use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "CAL003",
        name: "autodetection-picks-cilium-host",
        title: "Calico address autodetection may pick `cilium_host`",
        severity: Severity::Error,
        inputs: &[Input::Calico, Input::Target],
        fix: "set `nodeAddressAutodetectionV4: {firstFound: false, kubernetes: NodeInternalIP}` in the Installation before installing Cilium",
        docs: include_str!("../../../../../docs/rules/CAL003.md"),
    },
    check,
};

fn check(ctx: &Context, out: &mut Emitter) {
    if ctx.target.cni != Some(CniKind::Cilium) {
        return;
    }
    // Only while both run: a cutover stops Calico before Cilium is installed, and a fresh
    // cluster has no Calico running.
    if matches!(
        ctx.target.strategy,
        Some(crate::Strategy::Cutover | crate::Strategy::Fresh)
    ) {
        return;
    }
    for installation in &ctx.calico.installations {
        let detection = installation.get("calicoNetwork.nodeAddressAutodetectionV4");
        let first_found = detection
            .and_then(|d| d.get("firstFound"))
            .and_then(Node::as_bool);
        let other_method = detection.is_some_and(|d| {
            d.entries()
                .iter()
                .any(|(k, _)| k.as_str().is_some_and(|k| k != "firstFound"))
        });
        let risky = match (first_found, other_method) {
            (Some(true), _) => true,
            (_, true) => false,
            (_, false) => true,
        };
        if risky {
            out.push(
                out.finding(format!(
                    "{}: nodeAddressAutodetectionV4 {} while migrating to Cilium: Calico can pick the `cilium_host` interface and break its own routing",
                    installation.label,
                    if detection.is_some() { "uses firstFound" } else { "is unset (firstFound by default)" }
                ))
                .at(ctx.location_or_file(detection, &installation.spec))
                .object(installation.label.clone()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::rules::test_support::*;
    use cniswap_model::CniKind;

    const INSTALL: &str = "apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata:\n  name: default\nspec:\n  calicoNetwork:\n    ipPools: [{cidr: 10.244.0.0/16}]\n";

    #[test]
    fn fires_on_default_autodetection() {
        assert_eq!(
            fired("CAL003", &[("i.yaml", INSTALL)], to(CniKind::Cilium)).len(),
            1
        );
    }

    #[test]
    fn quiet_when_calico_stops_before_cilium_starts() {
        for strategy in [crate::Strategy::Cutover, crate::Strategy::Fresh] {
            let target = crate::Target {
                strategy: Some(strategy),
                ..to(CniKind::Cilium)
            };
            assert!(fired("CAL003", &[("i.yaml", INSTALL)], target).is_empty());
        }
        assert_eq!(
            fired("CAL003", &[("i.yaml", INSTALL)], rolling(CniKind::Cilium)).len(),
            1
        );
    }

    #[test]
    fn quiet_with_node_internal_ip() {
        let fixed = format!(
            "{INSTALL}    nodeAddressAutodetectionV4:\n      firstFound: false\n      kubernetes: NodeInternalIP\n"
        );
        assert!(fired("CAL003", &[("i.yaml", &fixed)], to(CniKind::Cilium)).is_empty());
    }
}
