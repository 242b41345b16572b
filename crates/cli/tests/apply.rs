//! `cniswap apply` without a cluster: what it refuses (exit 2 with the reason), its dry run,
//! and `apply status` of a plan and its journal. Runs against a real API server are in the
//! lab tests.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use cniswap_exec::{Event, Journal, JournalKey, PlanDir};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// This test process's journal key (outside every plan directory), given to each cniswap run.
fn key_path() -> &'static Path {
    static KEY: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = KEY.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("journal.key");
        JournalKey::load_or_create(&path).unwrap();
        (dir, path)
    });
    path
}

fn key() -> JournalKey {
    JournalKey::load(key_path()).unwrap().unwrap()
}

fn read_journal(dir: &Path) -> Vec<cniswap_exec::Record> {
    cniswap_exec::journal::read(&PlanDir::open(dir).unwrap(), || Ok(key()))
        .unwrap()
        .0
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples")
        .join(name)
        .display()
        .to_string()
}

fn cniswap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args(args)
        .env_remove("KUBECONFIG")
        .env("CNISWAP_JOURNAL_KEY", key_path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A rolling Flannel -> Cilium plan of the Talos homelab example.
fn plan(dir: &Path) {
    let out = cniswap(&[
        "plan",
        "--snapshot",
        &example("talos-flannel-homelab"),
        "--to",
        "cilium",
        "--force",
        "--out-dir",
        &dir.display().to_string(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{:?}", text(&out));
}

/// A kubeconfig whose server does not answer (nothing listens on port 1).
fn unreachable(dir: &Path) -> String {
    let path = dir.join("kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: not-a-secret\n",
    )
    .unwrap();
    path.display().to_string()
}

#[test]
fn a_directory_without_a_plan_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = cniswap(&["apply", &dir.path().display().to_string()]);
    assert_eq!(out.status.code(), Some(2));
    let (_, err) = text(&out);
    assert!(err.contains("plan.yaml"), "{err}");
    assert!(err.contains("cniswap plan --out-dir DIR"), "{err}");
}

#[test]
fn an_unreachable_cluster_stops_before_the_first_step() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("plan");
    plan(&dir);
    let kubeconfig = unreachable(work.path());
    let out = cniswap(&[
        "apply",
        &dir.display().to_string(),
        "--kubeconfig",
        &kubeconfig,
        "--yes",
    ]);
    let (_, err) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("127.0.0.1:1") || err.contains("lease"),
        "{err}"
    );
    // Nothing was journaled: no step began.
    let records = read_journal(&dir);
    assert!(
        !records
            .iter()
            .any(|r| matches!(r.event, Event::Start { .. })),
        "{records:?}"
    );
}

#[test]
fn dry_run_lists_every_step_with_its_requests_and_proof() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("plan");
    plan(&dir);
    let out = cniswap(&["apply", &dir.display().to_string(), "--dry-run"]);
    let (stdout, err) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    let yaml = std::fs::read_to_string(dir.join("plan.yaml")).unwrap();
    let plan: cniswap_plan::Plan = serde_saphyr::from_str(&yaml).unwrap();
    for phase in &plan.phases {
        for step in &phase.steps {
            assert!(
                stdout.contains(&format!("\n  {} ", step.id)),
                "step {} missing from the dry run",
                step.id
            );
        }
    }
    let steps: usize = plan.phases.iter().map(|p| p.steps.len()).sum();
    assert_eq!(stdout.matches("      proves: ").count(), steps);
    assert!(stdout.contains("POST pods/NAME/eviction"), "{stdout}");
    assert!(stdout.contains("helm upgrade --install cilium cilium --repo https://helm.cilium.io"));
    // A dry run writes no journal.
    assert!(!dir.join(cniswap_exec::JOURNAL_FILE).exists());
    // The rollback's dry run walks phases last first.
    let out = cniswap(&["apply", "rollback", &dir.display().to_string(), "--dry-run"]);
    let (stdout, _) = text(&out);
    let last = plan.phases.len();
    let first = stdout.find(&format!("Phase {last}:")).unwrap();
    let one = stdout.find("Phase 1:").unwrap();
    assert!(first < one, "{stdout}");
}

#[test]
fn status_shows_steps_nodes_next_and_the_lock() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("plan");
    plan(&dir);
    let kubeconfig = unreachable(work.path());
    let yaml = std::fs::read_to_string(dir.join("plan.yaml")).unwrap();
    let plan: cniswap_plan::Plan = serde_saphyr::from_str(&yaml).unwrap();
    let digest =
        cniswap_exec::digest::compute(&PlanDir::open(&dir).unwrap(), yaml.as_bytes(), &plan)
            .unwrap();
    let first = &plan.phases[0].steps;
    {
        let mut j = Journal::open(&PlanDir::open(&dir).unwrap(), &key()).unwrap();
        j.append(Event::Begin {
            digest,
            cluster: "cluster".into(),
            baseline: None,
        })
        .unwrap();
        j.append(Event::Approved {
            step: first[0].id.clone(),
            by: "--yes".into(),
        })
        .unwrap();
        j.append(Event::Finish {
            step: first[0].id.clone(),
            duration_ms: 0,
            evidence: "approved with --yes".into(),
            output: String::new(),
        })
        .unwrap();
        j.append(Event::Start {
            step: first[1].id.clone(),
            phase: plan.phases[0].id.clone(),
            rollback: false,
            node: None,
            memo: Default::default(),
            attempt: 1,
        })
        .unwrap();
        j.append(Event::NodeMark {
            node: "talos-w-1".into(),
            phase: "4-switch-the-nodes".into(),
            mark: cniswap_exec::NodeMark::InProgress,
        })
        .unwrap();
    }
    let out = cniswap(&[
        "apply",
        "status",
        &dir.display().to_string(),
        "--kubeconfig",
        &kubeconfig,
    ]);
    let (stdout, err) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(stdout.contains("approved with --yes"), "{stdout}");
    assert!(
        stdout.contains(&format!("Next: {} ", first[1].id)),
        "{stdout}"
    );
    assert!(stdout.contains("interrupted: runs again first"), "{stdout}");
    assert!(stdout.contains("talos-w-1"), "{stdout}");
    assert!(
        stdout.contains("Lock: unknown (cluster not readable"),
        "{stdout}"
    );

    let out = cniswap(&[
        "apply",
        "status",
        &dir.display().to_string(),
        "-o",
        "json",
        "--kubeconfig",
        &kubeconfig,
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["next"]["step"], first[1].id.as_str());
    assert_eq!(json["phases"][0]["steps"][0]["status"], "done");
    assert_eq!(json["phases"][0]["steps"][1]["status"], "running");
    assert_eq!(json["nodes"][0]["mark"], "in-progress");

    // A changed plan is reported by status (apply refuses it).
    std::fs::write(dir.join("plan.yaml"), format!("{yaml}\n# edited\n")).unwrap();
    let out = cniswap(&[
        "apply",
        "status",
        &dir.display().to_string(),
        "--kubeconfig",
        &kubeconfig,
    ]);
    let (stdout, _) = text(&out);
    assert!(
        stdout.contains("The plan changed since the journal began: plan.yaml changed"),
        "{stdout}"
    );
}

/// Text a plan directory can carry that would act on a terminal (an OSC title sequence and a
/// colour) or forge a line of its own in a pipe.
const HOSTILE: &str = "Approve\u{1b}]0;pwned\u{7}\u{1b}[31m\nerror: forged by the plan";

/// Asserts `output` shows the hostile text escaped: no escape byte, no forged line.
fn assert_escaped(output: &str) {
    assert!(
        !output.contains('\u{1b}'),
        "an escape byte got through: {output:?}"
    );
    assert!(!output.contains('\u{7}'), "a bell got through: {output:?}");
    assert!(
        !output
            .lines()
            .any(|l| l.trim_start().starts_with("error: forged")),
        "a forged line: {output}"
    );
    assert!(output.contains("\\u{1b}]0;pwned"), "{output}");
    assert!(output.contains("\\nerror: forged"), "{output}");
}

#[test]
fn plan_and_journal_text_is_escaped_in_dry_run_and_status() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("plan");
    plan(&dir);
    let path = dir.join("plan.yaml");
    let yaml = std::fs::read_to_string(&path).unwrap();
    let mut plan: cniswap_plan::Plan = serde_saphyr::from_str(&yaml).unwrap();
    plan.phases[0].name = HOSTILE.into();
    plan.phases[0].steps[0].description = HOSTILE.into();
    let first = plan.phases[0].steps[0].id.clone();
    std::fs::write(&path, serde_saphyr::to_string(&plan).unwrap()).unwrap();

    let shown = dir.display().to_string();
    for args in [
        vec!["apply", &shown, "--dry-run"],
        vec!["apply", "rollback", &shown, "--dry-run"],
    ] {
        let out = cniswap(&args);
        let (stdout, err) = text(&out);
        assert_eq!(out.status.code(), Some(0), "{err}");
        assert_escaped(&stdout);
    }

    // The journal (evidence, a session's holder) and the plan, through `apply status`.
    let bytes = std::fs::read(&path).unwrap();
    let handle = PlanDir::open(&dir).unwrap();
    let digest = cniswap_exec::digest::compute(&handle, &bytes, &plan).unwrap();
    {
        let mut j = Journal::open(&handle, &key()).unwrap();
        j.append(Event::Begin {
            digest,
            cluster: "cluster".into(),
            baseline: None,
        })
        .unwrap();
        j.append(Event::Session {
            mode: cniswap_exec::Mode::Apply,
            holder: HOSTILE.into(),
            version: "0".into(),
            args: vec![],
        })
        .unwrap();
        j.append(Event::Finish {
            step: first.clone(),
            duration_ms: 1500,
            evidence: HOSTILE.into(),
            output: String::new(),
        })
        .unwrap();
    }
    let kubeconfig = unreachable(work.path());
    let out = cniswap(&[
        "apply",
        "status",
        &dir.display().to_string(),
        "--kubeconfig",
        &kubeconfig,
    ]);
    let (stdout, err) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert_escaped(&stdout);
    // The holder, the evidence, the phase and the step's name: four times.
    assert_eq!(stdout.matches("\\u{1b}]0;pwned").count(), 4, "{stdout}");
    // A table: the done step's row has its state, duration and name.
    let row = stdout
        .lines()
        .find(|l| l.split_whitespace().next() == Some(first.as_str()))
        .unwrap_or_else(|| panic!("no row for {first}: {stdout}"));
    assert!(row.contains("done") && row.contains("1.5 s"), "{row}");
    // `-o json` keeps the text as it is (JSON escapes it by itself).
    let out = cniswap(&[
        "apply",
        "status",
        &dir.display().to_string(),
        "-o",
        "json",
        "--kubeconfig",
        &kubeconfig,
    ]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["phases"][0]["steps"][0]["evidence"], HOSTILE);
}
