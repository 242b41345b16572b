//! JUnit XML for CI: one test suite per kind of check, one test case per node or node pair.

use crate::report::Report;
use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};
use std::time::Duration;

/// The JUnit document of a one-shot report.
pub fn junit(report: &Report) -> Result<String, quick_junit::SerializeError> {
    let mut doc = quick_junit::Report::new("cniswap verify");
    doc.set_time(Duration::from_secs_f64(report.duration_s.max(0.0)));
    for kind in report.kinds() {
        let mut suite = TestSuite::new(kind.as_str());
        suite.add_property(("description", kind.describe()));
        for outcome in report.checks.iter().filter(|c| c.path.kind == kind) {
            let status = if outcome.ok {
                TestCaseStatus::success()
            } else {
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
                status.set_message(outcome.error.clone().unwrap_or_else(|| "failed".into()));
                status.set_type(kind.as_str());
                status
            };
            let name = match &outcome.path.to_node {
                Some(to) => format!(
                    "{} -> {} ({})",
                    outcome.path.from_node, to, outcome.path.target
                ),
                None => format!("{} ({})", outcome.path.from_node, outcome.path.target),
            };
            let mut case = TestCase::new(name, status);
            case.set_classname(format!("cniswap.verify.{}", kind.as_str()));
            if let Some(ms) = outcome.rtt_ms {
                case.set_time(Duration::from_secs_f64(ms / 1000.0));
            }
            suite.add_test_case(case);
        }
        doc.add_test_suite(suite);
    }
    doc.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kind::Kind;
    use crate::plan::PathKey;
    use crate::report::Outcome;

    #[test]
    fn each_pair_is_a_test_case_and_failures_carry_the_error() {
        let mut checks = vec![];
        for (from, to, err) in [
            ("a", "a", None),
            ("a", "b", Some("connection refused")),
            ("b", "a", None),
            ("b", "b", None),
        ] {
            checks.push(Outcome {
                path: PathKey {
                    kind: Kind::PodToPod,
                    from_node: from.into(),
                    to_node: Some(to.into()),
                    target: "x".into(),
                },
                ok: err.is_none(),
                error: err.map(Into::into),
                rtt_ms: Some(0.5),
            });
        }
        let report = Report::new(
            "c".into(),
            "ns".into(),
            "cluster.local".into(),
            vec!["a".into(), "b".into()],
            checks,
            2.0,
        );
        let xml = junit(&report).unwrap();
        assert_eq!(xml.matches("<testcase ").count(), 4);
        assert!(
            xml.contains(
                r#"<testsuite name="pod-to-pod" tests="4" skipped="0" errors="0" failures="1""#
            ),
            "{xml}"
        );
        assert!(xml.contains(r#"name="a -&gt; b (x)""#), "{xml}");
        assert!(xml.contains(r#"message="connection refused""#), "{xml}");
    }
}
