//! The state machine against the in-memory cluster: full runs, gates, resume, crashes at every
//! step boundary and in the middle of steps, blocked drains, retries, rollback, drift and a
//! changed plan.

use cniswap_exec::digest::{self, PlanDigest};
use cniswap_exec::drift::Fingerprint;
use cniswap_exec::state::{State, StepStatus};
use cniswap_exec::testing::{MemNode, Memory, World};
use cniswap_exec::{CrashPoints, Event, Executor, JournalError, Options, Outcome, Quiet};
use cniswap_plan::{Action, Estimates, NodeEstimate, Phase, Plan, Step};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

fn step(id: &str, action: Action) -> Step {
    Step {
        id: id.into(),
        action,
        description: format!("step {id}"),
        commands: vec![format!("# {id}")],
        done_when: String::new(),
        check: None,
        timeout_seconds: 60,
        pods_recreated: Vec::new(),
        notes: Vec::new(),
        pods_deleted: Vec::new(),
    }
}

const CORDON: &str = cniswap_plan::CORDON_ANNOTATION;

fn obj(kind: &str, ns: Option<&str>, name: &str) -> cniswap_plan::ObjectRef {
    cniswap_plan::ObjectRef::new(kind, ns, name)
}

const NODES: [&str; 3] = ["w1", "w2", "cp1"];

fn plan() -> Plan {
    let mut switch = Vec::new();
    let mut undo = Vec::new();
    let mut n = 0;
    let mut id = || {
        n += 1;
        format!("3.{n}")
    };
    for node in NODES {
        let node = node.to_string();
        switch.push(step(
            &id(),
            Action::Cordon {
                node: node.clone(),
                annotation: CORDON.into(),
            },
        ));
        switch.push(step(
            &id(),
            Action::Drain {
                node: node.clone(),
                eviction_timeout_seconds: 60,
                bare_pods: Vec::new(),
                bare_pods_backup: None,
            },
        ));
        switch.push(step(
            &id(),
            Action::LabelNode {
                node: node.clone(),
                key: "new/cni".into(),
                value: Some("true".into()),
            },
        ));
        switch.push(step(
            &id(),
            Action::RestartAgent {
                namespace: "kube-system".into(),
                daemonset: "new-agent".into(),
                selector: "app=new-agent".into(),
                node: node.clone(),
            },
        ));
        switch.push(step(&id(), Action::RecreatePods { node: node.clone() }));
        switch.push(step(
            &id(),
            Action::RebootNode {
                node: node.clone(),
                address: "10.0.0.1".into(),
            },
        ));
        switch.push(step(
            &id(),
            Action::Uncordon {
                node: node.clone(),
                annotation: CORDON.into(),
            },
        ));
    }
    for (i, node) in NODES.iter().rev().enumerate() {
        undo.push(step(
            &format!("R3.{}", i + 1),
            Action::LabelNode {
                node: node.to_string(),
                key: "new/cni".into(),
                value: None,
            },
        ));
    }
    Plan {
        schema_version: 1,
        cluster: "lab".into(),
        platform: "kubeadm".into(),
        from: vec!["flannel".into()],
        to: "cilium".into(),
        strategy: "rolling".into(),
        strategy_reason: String::new(),
        kube_proxy: "keep".into(),
        install: "helm".into(),
        agent_image: "ghcr.io/cniswap/cniswap:test".into(),
        helper_image: "busybox:1.36".into(),
        preflight: Vec::new(),
        handled: Vec::new(),
        proven: Vec::new(),
        estimates: Estimates {
            per_node: NODES
                .iter()
                .map(|n| NodeEstimate {
                    node: n.to_string(),
                    role: "worker".into(),
                    pods_recreated: 0,
                    interruption_seconds: 0,
                })
                .collect(),
            ..Estimates::default()
        },
        phases: vec![
            Phase {
                id: "1-preflight".into(),
                name: "Preflight".into(),
                goal: String::new(),
                steps: vec![
                    step(
                        "1.1",
                        Action::ManualGate {
                            question: "Findings read?".into(),
                            starts_outage: false,
                        },
                    ),
                    step(
                        "1.2",
                        Action::Backup {
                            objects: vec![obj("DaemonSet", Some("kube-system"), "old-agent")],
                            file: "backups/objects.yaml".into(),
                        },
                    ),
                ],
                rollback: Vec::new(),
            },
            Phase {
                id: "2-install".into(),
                name: "Install".into(),
                goal: String::new(),
                steps: vec![
                    step(
                        "2.1",
                        Action::HelmUpgrade {
                            release: "cilium".into(),
                            namespace: "kube-system".into(),
                            repo: "https://helm.cilium.io".into(),
                            chart: "cilium".into(),
                            version: "1.0".into(),
                            values: vec!["artifacts/values.yaml".into()],
                            values_sha256: "0123456789abcdef".into(),
                            revision_backup: None,
                        },
                    ),
                    step(
                        "2.2",
                        Action::ApplyManifest {
                            file: "artifacts/config.yaml".into(),
                        },
                    ),
                ],
                rollback: vec![
                    step(
                        "R2.1",
                        Action::DeleteObject {
                            object: obj("Config", Some("kube-system"), "new"),
                            backup: "artifacts/config.yaml".into(),
                        },
                    ),
                    step(
                        "R2.2",
                        Action::HelmUninstall {
                            release: "cilium".into(),
                            namespace: "kube-system".into(),
                            backup: "backups/helm-cilium.yaml".into(),
                        },
                    ),
                ],
            },
            Phase {
                id: "3-switch".into(),
                name: "Switch".into(),
                goal: String::new(),
                steps: switch,
                rollback: undo,
            },
            Phase {
                id: "4-finish".into(),
                name: "Finish".into(),
                goal: String::new(),
                steps: vec![step(
                    "4.1",
                    Action::DeleteObject {
                        object: obj("DaemonSet", Some("kube-system"), "old-agent"),
                        backup: "backups/old-agent.yaml".into(),
                    },
                )],
                rollback: vec![step(
                    "R4.1",
                    Action::ApplyManifest {
                        file: "backups/old-agent.yaml".into(),
                    },
                )],
            },
        ],
        artifacts: Vec::new(),
    }
}

fn cluster() -> Memory {
    let mut world = World::default();
    for node in NODES {
        world.nodes.insert(node.into(), MemNode::default());
    }
    world.objects.insert(
        "kube-system/DaemonSet/old-agent".into(),
        "image: flannel".into(),
    );
    let mut memory = Memory::new(world);
    for node in NODES {
        memory.add_pod(
            &format!("kube-system/new-agent-{node}"),
            node,
            "DaemonSet",
            None,
        );
        memory.add_pod(&format!("default/web-{node}"), node, "ReplicaSet", None);
    }
    memory.manifests.insert(
        "artifacts/config.yaml".into(),
        BTreeMap::from([("kube-system/Config/new".into(), "mode: on".into())]),
    );
    memory.manifests.insert(
        "backups/old-agent.yaml".into(),
        BTreeMap::from([(
            "kube-system/DaemonSet/old-agent".into(),
            "image: flannel".into(),
        )]),
    );
    memory
}

fn options() -> Options {
    Options {
        yes: true,
        retry_for: Duration::from_millis(200),
        backoff: (Duration::from_millis(1), Duration::from_millis(2)),
        ..Options::default()
    }
}

fn digest() -> PlanDigest {
    PlanDigest {
        plan: "abc".into(),
        files: BTreeMap::new(),
    }
}

fn apply(dir: &Path, plan: &Plan, memory: &mut Memory, options: &Options) -> Outcome {
    run(dir, plan, memory, options, false).expect("journal")
}

fn run(
    dir: &Path,
    plan: &Plan,
    memory: &mut Memory,
    options: &Options,
    rollback: bool,
) -> Result<Outcome, JournalError> {
    let mut journal = cniswap_exec::testing::open_journal(dir)?;
    let stop = AtomicBool::new(false);
    let mut quiet = Quiet;
    let mut exec = Executor::new(
        plan,
        digest(),
        &mut journal,
        memory,
        options,
        &mut quiet,
        &stop,
    );
    if rollback {
        exec.rollback()
    } else {
        exec.apply()
    }
}

fn records(dir: &Path) -> Vec<Event> {
    cniswap_exec::testing::read_journal(dir)
        .expect("journal")
        .0
        .into_iter()
        .map(|r| r.event)
        .collect()
}

/// What must come out the same however often the run was interrupted: the objects, nodes,
/// files and releases; pods by where they run (their names carry UIDs, compared through the log).
fn comparable(world: &World) -> World {
    let mut w = world.clone();
    w.pods.clear();
    w
}

#[test]
fn a_full_run_ends_in_the_expected_state() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan();
    let mut memory = cluster();
    assert_eq!(
        apply(dir.path(), &plan, &mut memory, &options()),
        Outcome::Complete
    );
    let w = &memory.world;
    for node in NODES {
        let n = &w.nodes[node];
        assert!(!n.unschedulable, "{node} uncordoned");
        assert_eq!(n.labels.get("new/cni").map(String::as_str), Some("true"));
        assert_eq!(n.boot_id, 1, "{node} rebooted once");
        assert_eq!(
            n.annotations
                .get(cniswap_exec::NODE_DONE)
                .map(String::as_str),
            Some("3-switch")
        );
        assert!(!n.annotations.contains_key(cniswap_exec::NODE_IN_PROGRESS));
        assert!(!n.annotations.contains_key(CORDON));
    }
    assert!(!w.objects.contains_key("kube-system/DaemonSet/old-agent"));
    assert_eq!(w.objects["kube-system/Config/new"], "mode: on");
    assert_eq!(w.files["backups/old-agent.yaml"], "image: flannel");
    assert!(w.files["backups/objects.yaml"].contains("image: flannel"));
    assert_eq!(
        w.helm["cilium"],
        ("cilium".into(), "0123456789abcdef".into())
    );
    // Every web pod was moved off its node or recreated, never lost.
    assert_eq!(
        w.pods
            .keys()
            .filter(|k| k.starts_with("default/web"))
            .count(),
        3
    );
    // A second run does nothing: every step is done.
    let log = memory.log.clone();
    let before = records(dir.path()).len();
    assert_eq!(
        apply(dir.path(), &plan, &mut memory, &options()),
        Outcome::Complete
    );
    assert_eq!(memory.log, log);
    let after = records(dir.path());
    assert!(
        after[before..]
            .iter()
            .all(|e| matches!(e, Event::Session { .. })),
        "{:?}",
        &after[before..]
    );
}

#[test]
fn every_step_leaves_start_and_finish_or_skip_records() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan();
    let mut memory = cluster();
    apply(dir.path(), &plan, &mut memory, &options());
    let events = records(dir.path());
    assert!(matches!(events[0], Event::Begin { .. }));
    for phase in &plan.phases {
        for s in &phase.steps {
            let mine: Vec<&Event> = events
                .iter()
                .filter(|e| e.step() == Some(s.id.as_str()))
                .collect();
            let last = mine
                .last()
                .unwrap_or_else(|| panic!("{} has no record", s.id));
            assert!(
                matches!(last, Event::Finish { .. } | Event::Skip { .. }),
                "{}: {last:?}",
                s.id
            );
            if let Event::Finish { .. } = last
                && !matches!(s.action, Action::ManualGate { .. })
            {
                assert!(
                    mine.iter().any(|e| matches!(e, Event::Start { .. })),
                    "{} finished without a start record",
                    s.id
                );
            }
        }
    }
}

#[test]
fn a_gate_stops_the_run_until_approved() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan();
    let mut memory = cluster();
    let no = Options {
        yes: false,
        ..options()
    };
    let outcome = apply(dir.path(), &plan, &mut memory, &no);
    assert!(
        matches!(&outcome, Outcome::Gate { step, question, failure: None, .. } if step == "1.1" && question == "Findings read?"),
        "{outcome:?}"
    );
    assert_eq!(outcome.exit_code(), 3);
    assert!(memory.log.is_empty(), "nothing changed before the gate");
    let one = Options {
        approve: vec!["1.1".into()],
        until: Some("2.2".into()),
        ..no
    };
    assert_eq!(
        apply(dir.path(), &plan, &mut memory, &one),
        Outcome::Until { step: "2.2".into() }
    );
    assert!(records(dir.path()).iter().any(
        |e| matches!(e, Event::Approved { step, by } if step == "1.1" && by == "--approve 1.1")
    ));
    assert_eq!(
        apply(dir.path(), &plan, &mut memory, &options()),
        Outcome::Complete
    );
}

#[test]
fn a_drain_held_by_a_budget_stops_at_a_gate_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan();
    let mut memory = cluster();
    memory.add_pod("db/kafka-0", "w2", "StatefulSet", Some("kafka"));
    let outcome = apply(dir.path(), &plan, &mut memory, &options());
    let Outcome::Gate {
        step,
        failure: Some(failure),
        ..
    } = &outcome
    else {
        panic!("{outcome:?}")
    };
    assert_eq!(step, "3.9", "the drain of w2");
    assert!(
        failure
            .message
            .contains("db/kafka-0 (PodDisruptionBudget kafka)"),
        "{failure:?}"
    );
    // --yes does not approve an escalation; --approve of that step does.
    assert!(matches!(
        apply(dir.path(), &plan, &mut memory, &options()),
        Outcome::Gate { .. }
    ));
    let approve = Options {
        approve: vec!["3.9".into()],
        ..options()
    };
    // Approved for w2 only: the pod moves to cp1, whose drain asks again.
    let outcome = apply(dir.path(), &plan, &mut memory, &approve);
    assert!(
        matches!(&outcome, Outcome::Gate { step, .. } if step == "3.16"),
        "{outcome:?}"
    );
    assert!(memory.log.iter().any(|l| l.starts_with("evict db/kafka-0")));
    let both = Options {
        approve: vec!["3.9".into(), "3.16".into()],
        ..options()
    };
    assert_eq!(
        apply(dir.path(), &plan, &mut memory, &both),
        Outcome::Complete
    );
}

#[test]
fn transient_errors_are_retried_and_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan();
    let mut memory = cluster();
    memory.transient = 3;
    assert_eq!(
        apply(dir.path(), &plan, &mut memory, &options()),
        Outcome::Complete
    );
    let retries = records(dir.path())
        .iter()
        .filter(|e| matches!(e, Event::Retry { .. }))
        .count();
    assert_eq!(retries, 3);
}

#[test]
fn errors_that_outlast_the_budget_fail_the_step_with_its_cause() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan();
    let mut memory = cluster();
    memory.transient = u32::MAX;
    let outcome = apply(dir.path(), &plan, &mut memory, &options());
    assert!(
        matches!(&outcome, Outcome::Failed { step, failure } if step == "1.2" && failure.message.contains("connection refused")),
        "{outcome:?}"
    );
    assert_eq!(outcome.exit_code(), 1);
    memory.transient = 0;
    assert_eq!(
        apply(dir.path(), &plan, &mut memory, &options()),
        Outcome::Complete
    );
}

#[test]
fn a_cordon_made_by_someone_else_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan();
    let mut memory = cluster();
    memory.world.nodes.get_mut("w2").unwrap().unschedulable = true;
    assert_eq!(
        apply(dir.path(), &plan, &mut memory, &options()),
        Outcome::Complete
    );
    assert!(memory.world.nodes["w2"].unschedulable);
    assert!(!memory.world.nodes["w1"].unschedulable);
}

#[test]
fn a_missing_tool_is_reported_before_the_first_step() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan();
    let mut memory = cluster();
    memory.tools = Some(Default::default());
    let outcome = apply(dir.path(), &plan, &mut memory, &options());
    let Outcome::Refused { failures } = &outcome else {
        panic!("{outcome:?}")
    };
    assert!(failures[0].message.starts_with("helm is not installed"));
    assert!(memory.log.is_empty());
    assert!(
        !records(dir.path())
            .iter()
            .any(|e| matches!(e, Event::Start { .. }))
    );
}

#[test]
fn a_tool_needed_only_after_until_is_not_required() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan();
    let mut memory = cluster();
    memory.tools = Some(Default::default());
    let until = Options {
        until: Some("1.2".into()),
        ..options()
    };
    let outcome = apply(dir.path(), &plan, &mut memory, &until);
    assert!(matches!(outcome, Outcome::Until { .. }), "{outcome:?}");
    // Going on past the helm step needs helm again.
    let outcome = apply(dir.path(), &plan, &mut memory, &options());
    assert!(matches!(outcome, Outcome::Refused { .. }), "{outcome:?}");
}

#[test]
fn a_changed_plan_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan();
    let mut memory = cluster();
    let until = Options {
        until: Some("1.2".into()),
        ..options()
    };
    apply(dir.path(), &plan, &mut memory, &until);
    let mut journal = cniswap_exec::testing::open_journal(dir.path()).unwrap();
    let stop = AtomicBool::new(false);
    let options = options();
    let mut quiet = Quiet;
    let changed = PlanDigest {
        plan: "other".into(),
        files: BTreeMap::new(),
    };
    let outcome = Executor::new(
        &plan,
        changed,
        &mut journal,
        &mut memory,
        &options,
        &mut quiet,
        &stop,
    )
    .apply()
    .unwrap();
    let Outcome::Refused { failures } = outcome else {
        panic!()
    };
    assert!(
        failures[0].message.contains("plan.yaml changed"),
        "{failures:?}"
    );
    let _ = digest::changes;
}

#[test]
fn drift_stops_before_a_phase() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan();
    let mut memory = cluster();
    let print = Fingerprint {
        nodes: NODES.iter().map(|n| n.to_string()).collect(),
        cnis: BTreeMap::from([("flannel".into(), vec!["10.244.0.0/16".into()])]),
        kube_proxy: true,
        ..Fingerprint::default()
    };
    memory.fingerprint = Some(print.clone());
    let until = Options {
        until: Some("1.2".into()),
        ..options()
    };
    apply(dir.path(), &plan, &mut memory, &until);
    let mut moved = print;
    moved.nodes.insert("w9".into());
    memory.fingerprint = Some(moved);
    let outcome = apply(dir.path(), &plan, &mut memory, &options());
    assert!(
        matches!(&outcome, Outcome::Drift { phase, differences } if phase == "2-install" && differences[0].contains("node w9 joined")),
        "{outcome:?}"
    );
}

#[test]
fn phase_runs_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan();
    let mut memory = cluster();
    let third = Options {
        phase: Some("3".into()),
        ..options()
    };
    assert!(matches!(
        apply(dir.path(), &plan, &mut memory, &third),
        Outcome::Refused { .. }
    ));
    let first = Options {
        phase: Some("1-preflight".into()),
        ..options()
    };
    assert_eq!(
        apply(dir.path(), &plan, &mut memory, &first),
        Outcome::Complete
    );
    let state = State::replay(
        &plan,
        &cniswap_exec::testing::read_journal(dir.path()).unwrap().0,
    );
    assert!(state.phase_done(&plan.phases[0].steps));
    assert_eq!(state.status("2.1"), &StepStatus::Pending);
}

/// Kill the executor at every boundary of every step and in the middle of the steps that have
/// several parts; `apply` again must end where an uninterrupted run ends, with the same
/// changes made exactly as often (no eviction, delete, backup or reboot twice).
#[test]
fn a_crash_anywhere_converges_to_the_same_state_without_double_effects() {
    let plan = plan();
    let reference = {
        let dir = tempfile::tempdir().unwrap();
        let mut memory = cluster();
        assert_eq!(
            apply(dir.path(), &plan, &mut memory, &options()),
            Outcome::Complete
        );
        memory
    };
    let mut sorted_reference = reference.log.clone();
    sorted_reference.sort();
    let points = [
        "before-start",
        "after-start",
        "mid",
        "after-run",
        "after-finish",
    ];
    let mut crashes = 0;
    for phase in &plan.phases {
        for s in &phase.steps {
            for point in points {
                let dir = tempfile::tempdir().unwrap();
                let mut memory = cluster();
                let crashing = Options {
                    crash: CrashPoints::panic_at(&s.id, point),
                    ..options()
                };
                let hook = std::panic::take_hook();
                std::panic::set_hook(Box::new(|_| {}));
                let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    apply(dir.path(), &plan, &mut memory, &crashing)
                }));
                std::panic::set_hook(hook);
                if crashed.is_ok() {
                    // This step has no such point (a gate, or no middle).
                    continue;
                }
                crashes += 1;
                let outcome = apply(dir.path(), &plan, &mut memory, &options());
                assert_eq!(
                    outcome,
                    Outcome::Complete,
                    "after a crash at {}:{point}",
                    s.id
                );
                assert_eq!(
                    comparable(&memory.world),
                    comparable(&reference.world),
                    "state after a crash at {}:{point}",
                    s.id
                );
                let mut log = memory.log.clone();
                log.sort();
                assert_eq!(
                    log, sorted_reference,
                    "changes after a crash at {}:{point}",
                    s.id
                );
            }
        }
    }
    // 24 steps with at least four points each, plus the middles of drains, deletes and recreations.
    assert!(crashes > 90, "{crashes} crashes");
}

#[test]
fn rollback_of_each_phase_restores_the_objects() {
    let plan = plan();
    let initial = cluster();
    for phase in (1..=plan.phases.len()).rev() {
        let dir = tempfile::tempdir().unwrap();
        let mut memory = cluster();
        assert_eq!(
            apply(dir.path(), &plan, &mut memory, &options()),
            Outcome::Complete
        );
        // Later phases first, as the executor insists.
        let mut all = options();
        for later in (phase..=plan.phases.len()).rev() {
            all.phase = Some(later.to_string());
            assert_eq!(
                run(dir.path(), &plan, &mut memory, &all, true).unwrap(),
                Outcome::Complete,
                "rollback of phase {later}"
            );
        }
        let w = &memory.world;
        let expected = &initial.world;
        // Objects and releases exactly as before phase `phase` ran (its effects undone).
        if phase <= 2 {
            assert_eq!(w.helm, expected.helm, "after rolling back to phase {phase}");
            assert!(!w.objects.contains_key("kube-system/Config/new"));
        }
        if phase <= 3 {
            for node in NODES {
                assert_eq!(
                    w.nodes[node].labels, expected.nodes[node].labels,
                    "{node} labels after rolling back phase {phase}"
                );
                assert!(
                    w.nodes[node].annotations.is_empty(),
                    "{node} markers cleared"
                );
            }
        }
        assert_eq!(
            w.objects.get("kube-system/DaemonSet/old-agent"),
            expected.objects.get("kube-system/DaemonSet/old-agent")
        );
    }
}

#[test]
fn rollback_refuses_an_earlier_phase_while_a_later_one_stands() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan();
    let mut memory = cluster();
    apply(dir.path(), &plan, &mut memory, &options());
    let second = Options {
        phase: Some("2".into()),
        ..options()
    };
    assert!(matches!(
        run(dir.path(), &plan, &mut memory, &second, true).unwrap(),
        Outcome::Refused { .. }
    ));
    // All of it, last first; then a new apply redoes everything.
    assert_eq!(
        run(dir.path(), &plan, &mut memory, &options(), true).unwrap(),
        Outcome::Complete
    );
    assert!(memory.world.helm.is_empty());
    assert_eq!(
        apply(dir.path(), &plan, &mut memory, &options()),
        Outcome::Complete
    );
    assert!(memory.world.helm.contains_key("cilium"));
}

/// Applies `plan` until `step`, rolls everything back, and returns the journal's events.
fn rolled_back_after(plan: &Plan, step: &str) -> Vec<Event> {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut memory = cluster();
    let until = Options {
        until: Some(step.into()),
        ..options()
    };
    apply(dir.path(), plan, &mut memory, &until);
    assert_eq!(
        run(dir.path(), plan, &mut memory, &options(), true).expect("rollback"),
        Outcome::Complete
    );
    records(dir.path())
}

/// Whether the rollback skipped step `id` as one of a node the phase never changed.
fn skipped_as_untouched(events: &[Event], id: &str) -> bool {
    events.iter().any(|e| {
        matches!(e, Event::Skip { step, evidence } if step == id && evidence.contains("did not change"))
    })
}

#[test]
fn rollback_skips_nodes_the_phase_never_touched() {
    let events = rolled_back_after(&plan(), "3.7");
    let skip = |id: &str| skipped_as_untouched(&events, id);
    // R3.1 is cp1, R3.2 is w2 (both untouched), R3.3 is w1 (switched).
    assert!(skip("R3.1") && skip("R3.2") && !skip("R3.3"));
}

/// Regression: the rollback of an install everywhere (Cilium on every node) skipped its node
/// clean-ups, "this phase did not change node X", and left Cilium's links on every node.
#[test]
fn rollback_of_a_phase_without_node_steps_runs_its_node_steps() {
    let mut plan = plan();
    plan.phases[1].rollback.push(step(
        "R2.3",
        Action::LabelNode {
            node: NODES[0].to_string(),
            key: "new/cni".into(),
            value: None,
        },
    ));
    let events = rolled_back_after(&plan, "2.2");
    // Its check runs (here it finds the label already gone): not skipped as untouched.
    let untouched = skipped_as_untouched(&events, "R2.3");
    let checked = events.iter().any(
        |e| matches!(e, Event::Skip { step, .. } | Event::Finish { step, .. } if step == "R2.3"),
    );
    assert!(!untouched && checked, "R2.3 must be checked: {events:#?}");
}

/// Regression: `--until` a step that is already done stopped nothing, and the run went on to
/// the end of the plan.
#[test]
fn until_a_done_step_stops_there() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan();
    let mut memory = cluster();
    let until = |step: &str| Options {
        until: Some(step.into()),
        ..options()
    };
    assert_eq!(
        apply(dir.path(), &plan, &mut memory, &until("3.3")),
        Outcome::Until { step: "3.3".into() }
    );
    let log = memory.log.clone();
    // 2.2 and 1.2 are done: nothing else may run.
    for done in ["3.3", "2.2", "1.2"] {
        assert_eq!(
            apply(dir.path(), &plan, &mut memory, &until(done)),
            Outcome::Until { step: done.into() }
        );
        assert_eq!(memory.log, log, "--until {done} ran more steps");
    }
}

/// Regression: a rolled-back phase whose steps were all gates or already done when applied
/// again still counted as rolled back.
#[test]
fn a_phase_applied_again_is_no_longer_rolled_back() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan();
    let mut memory = cluster();
    apply(dir.path(), &plan, &mut memory, &options());
    assert_eq!(
        run(dir.path(), &plan, &mut memory, &options(), true).unwrap(),
        Outcome::Complete
    );
    let records = cniswap_exec::testing::read_journal(dir.path()).unwrap().0;
    assert!(
        State::replay(&plan, &records)
            .rolled_back
            .contains("1-preflight")
    );
    apply(dir.path(), &plan, &mut memory, &options());
    let records = cniswap_exec::testing::read_journal(dir.path()).unwrap().0;
    let state = State::replay(&plan, &records);
    assert!(state.rolled_back.is_empty(), "{:?}", state.rolled_back);
}

/// Issue 17 item 6: a phase run again after its rollback finished saves the state as it is
/// then; a rollback never puts back the older state the first run saved (that copy is kept,
/// retired). An interrupted run (no finished rollback) still keeps its first backup: the
/// crash tests above cover that.
#[test]
fn a_rerun_after_a_rollback_refreshes_its_backup() {
    let key = "kube-system/DaemonSet/old-agent";
    let mut plan = plan();
    plan.phases = vec![Phase {
        id: "1-stop".into(),
        name: "Stop".into(),
        goal: String::new(),
        steps: vec![step(
            "1.1",
            Action::DeleteObject {
                object: obj("DaemonSet", Some("kube-system"), "old-agent"),
                backup: "backups/old-agent.yaml".into(),
            },
        )],
        rollback: vec![step(
            "R1.1",
            Action::RestoreBackup {
                path: "backups/old-agent.yaml".into(),
                replace: false,
            },
        )],
    }];
    let dir = tempfile::tempdir().unwrap();
    let mut memory = cluster();
    assert_eq!(
        apply(dir.path(), &plan, &mut memory, &options()),
        Outcome::Complete
    );
    assert!(!memory.world.objects.contains_key(key));
    assert_eq!(
        run(dir.path(), &plan, &mut memory, &options(), true).unwrap(),
        Outcome::Complete
    );
    assert_eq!(memory.world.objects[key], "image: flannel");
    // The user changes the agent after the rollback, then runs the plan again.
    memory
        .world
        .objects
        .insert(key.into(), "image: flannel v2".into());
    assert_eq!(
        apply(dir.path(), &plan, &mut memory, &options()),
        Outcome::Complete
    );
    assert_eq!(
        memory.world.files["backups/old-agent.yaml"],
        "image: flannel v2"
    );
    assert_eq!(
        memory.world.files["backups/old-agent.yaml.retired-1"],
        "image: flannel"
    );
    assert_eq!(
        run(dir.path(), &plan, &mut memory, &options(), true).unwrap(),
        Outcome::Complete
    );
    assert_eq!(
        memory.world.objects[key], "image: flannel v2",
        "the rollback put back the state the second run changed"
    );
    assert_eq!(
        memory.world.files["backups/old-agent.yaml.retired-2"],
        "image: flannel v2"
    );
}
