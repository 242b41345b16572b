use crate::rules::prelude::*;

pub static RULE: Rule = Rule {
    meta: RuleMeta {
        id: "MIG009",
        name: "outage-exceeds-token-lifetime",
        title: "expected outage longer than a token lifetime",
        severity: Severity::Warning,
        inputs: &[Input::Facts],
        fix: "switch in smaller batches so no pod network is down for an hour; if agents log 401 Unauthorized, restart kubelet on that node",
        docs: include_str!("../../../../../docs/rules/MIG009.md"),
    },
    check,
};

/// Projected service-account tokens default to one hour (tokenExpirationSeconds: 3600).
const TOKEN_MINUTES: u32 = 60;

fn check(ctx: &Context, out: &mut Emitter) {
    let Some(minutes) = ctx.target.estimated_outage_minutes else {
        return;
    };
    if minutes >= TOKEN_MINUTES {
        out.push(out.finding(format!(
            "the plan expects pod networking to be down for about {minutes} minutes: projected service-account tokens (1 h) expire and agents that cannot renew them over the broken network get 401 Unauthorized"
        )));
    }
}

#[cfg(test)]
mod tests {
    use crate::Target;
    use crate::rules::test_support::*;

    #[test]
    fn fires_for_long_outage() {
        let target = Target {
            estimated_outage_minutes: Some(90),
            ..Target::default()
        };
        assert_eq!(
            fired(
                "MIG009",
                &[("cluster/all.yaml", &cluster(2, &[], ""))],
                target
            )
            .len(),
            1
        );
    }

    #[test]
    fn quiet_for_short_or_unknown_outage() {
        let target = Target {
            estimated_outage_minutes: Some(10),
            ..Target::default()
        };
        assert!(
            fired(
                "MIG009",
                &[("cluster/all.yaml", &cluster(2, &[], ""))],
                target
            )
            .is_empty()
        );
        assert!(
            fired(
                "MIG009",
                &[("cluster/all.yaml", &cluster(2, &[], ""))],
                Target::default()
            )
            .is_empty()
        );
    }
}
