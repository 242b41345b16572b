//! `cniswap apply`, `apply status`, `apply rollback`: wiring of the plan directory, the journal,
//! the cluster adapter, the lock and the progress display.

mod progress;
mod report;

use crate::args::{ApplyArgs, ApplyCommand, ClusterArgs, ControlArgs, StatusFormat};
use crate::error::CliError;
use crate::render;
use cniswap_apply::{KubeActions, Settings, lease};
use cniswap_config::limits;
use cniswap_exec::digest::{self, PLAN_FILE, PlanDigest};
use cniswap_exec::{CrashPoints, Executor, FileError, Journal, JournalKey, Options, PlanDir, exit};
use cniswap_plan::Plan;
use report::esc;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub fn run(args: ApplyArgs) -> Result<u8, CliError> {
    match args.command {
        Some(ApplyCommand::Status {
            plan,
            output,
            cluster,
        }) => status(&plan, output, &cluster),
        Some(ApplyCommand::Rollback {
            plan,
            agent_image,
            control,
        }) => execute(&plan, None, agent_image, &control, true),
        None => {
            let run = args.run;
            let plan = run.plan.clone().unwrap_or_default();
            execute(
                &plan,
                run.until.clone(),
                run.agent_image.clone(),
                &run.control,
                false,
            )
        }
    }
}

/// Opens the plan directory (refusing one every user may write) and says what is worth
/// knowing about who else may write it.
fn open_dir(dir: &Path) -> Result<PlanDir, CliError> {
    let plan_dir = PlanDir::open(dir).map_err(file_error)?;
    for warning in &plan_dir.warnings {
        eprintln!("warning: {warning}");
    }
    Ok(plan_dir)
}

fn file_error(e: FileError) -> CliError {
    CliError::other(e.to_string(), e.help)
}

fn journal_error(e: cniswap_exec::JournalError) -> CliError {
    CliError::other(e.to_string(), e.help())
}

/// plan.yaml, parsed and admitted (files inside the directory, ids once), with its digest.
fn load(dir: &PlanDir) -> Result<(Plan, PlanDigest), CliError> {
    let path = dir.join(PLAN_FILE);
    let bytes = dir
        .read(PLAN_FILE, limits::MAX_FILE_BYTES)
        .map_err(file_error)?
        .ok_or_else(|| {
            CliError::other(
                format!("{}: no such file", path.display()),
                "give the directory `cniswap plan --out-dir DIR` wrote (it holds plan.yaml)",
            )
        })?;
    let text = String::from_utf8_lossy(&bytes);
    let plan: Plan = serde_saphyr::from_str(&text).map_err(|e| {
        CliError::other(
            format!("{}: not a cniswap plan: {e}", path.display()),
            "write the plan again with `cniswap plan --out-dir DIR`; do not edit plan.yaml by hand",
        )
    })?;
    if plan.schema_version != cniswap_plan::PLAN_SCHEMA_VERSION {
        return Err(CliError::other(
            format!(
                "{}: plan schema {} (this cniswap reads {})",
                path.display(),
                plan.schema_version,
                cniswap_plan::PLAN_SCHEMA_VERSION
            ),
            "make the plan again with this version of cniswap",
        ));
    }
    let problems = cniswap_exec::admit::problems(&plan);
    if !problems.is_empty() {
        return Err(CliError::other(
            format!("{}: {}", path.display(), problems.join("; ")),
            "make the plan again with `cniswap plan --out-dir DIR`; do not edit plan.yaml by hand",
        ));
    }
    let digest = digest::compute(dir, &bytes, &plan).map_err(file_error)?;
    Ok((plan, digest))
}

/// The operator's journal key (made on first use), never inside the plan directory.
fn journal_key(dir: &PlanDir) -> Result<JournalKey, CliError> {
    let path = JournalKey::location().map_err(file_error)?;
    let key = JournalKey::load_or_create(&path).map_err(file_error)?;
    key.check_outside(dir.path()).map_err(file_error)?;
    Ok(key)
}

/// The key for reading a journal that exists (status and dry runs make no key).
fn existing_key() -> Result<JournalKey, FileError> {
    let path = JournalKey::location()?;
    JournalKey::load(&path)?.ok_or_else(|| {
        FileError::new(
            &path,
            "no journal key here, so the journal's signatures cannot be checked",
            "run this where the journal was written, or copy that machine's key file here (CNISWAP_JOURNAL_KEY)",
        )
    })
}

fn live_options(cluster: &ClusterArgs) -> cniswap_kube::LiveOptions {
    cniswap_kube::LiveOptions {
        kubeconfig: cluster.kubeconfig.clone(),
        context: cluster.context.clone(),
        ..Default::default()
    }
}

/// `user@host pid N plan ID boot B pidns I`: who holds the lock, for the second apply's
/// message, and enough to judge whether that process is gone: the boot and the PID namespace
/// its pid means something in.
fn holder(digest: &PlanDigest) -> String {
    let user = report::user_name();
    format!(
        "{user}@{} pid {} plan {} boot {} pidns {}",
        this_host(),
        std::process::id(),
        digest.short(),
        boot_id().unwrap_or_else(|| "unknown".into()),
        pid_namespace().unwrap_or_else(|| "unknown".into()),
    )
}

fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_else(|_| "unknown-host".into())
}

fn boot_id() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .ok()
        .map(|b| b.trim().to_string())
        .filter(|b| !b.is_empty() && !b.contains(' '))
}

/// The inode of this process's PID namespace (`pid:[4026531836]` → `4026531836`).
fn pid_namespace() -> Option<String> {
    std::fs::read_link("/proc/self/ns/pid").ok().and_then(|l| {
        l.to_string_lossy()
            .strip_prefix("pid:[")
            .and_then(|r| r.strip_suffix(']'))
            .map(str::to_string)
    })
}

/// Whether a lock holder (as `holder` wrote it) was a process that no longer runs, judged
/// only where that can be known: the same host and boot (another boot: gone), and the same PID
/// namespace (a pid from another namespace, a container's or a hostNetwork pod's, says nothing
/// here). Its lock is taken over at once instead of making the person wait for it to expire.
fn holder_gone(identity: &str) -> bool {
    let Some((who, rest)) = identity.split_once(" pid ") else {
        return false;
    };
    let Some(host) = who.split_once('@').map(|(_, h)| h) else {
        return false;
    };
    let words: Vec<&str> = rest.split(' ').collect();
    let field = |name: &str| {
        words
            .windows(2)
            .find(|w| w[0] == name)
            .map(|w| w[1].to_string())
    };
    let Some(pid) = words.first().and_then(|p| p.parse::<u32>().ok()) else {
        return false;
    };
    let (Some(boot), Some(pidns)) = (field("boot"), field("pidns")) else {
        return false;
    };
    if host != this_host() || boot_id().is_none_or(|b| b == "unknown") {
        return false;
    }
    if Some(&boot) != boot_id().as_ref() {
        // This host booted again since: no process of that boot runs.
        return boot != "unknown";
    }
    pidns != "unknown"
        && Some(&pidns) == pid_namespace().as_ref()
        && pid != std::process::id()
        && !Path::new(&format!("/proc/{pid}")).exists()
}

fn failure_error(f: &cniswap_exec::Failure) -> CliError {
    CliError::other(f.message.clone(), f.next.clone())
}

fn execute(
    dir: &Path,
    until: Option<String>,
    agent_image: Option<String>,
    control: &ControlArgs,
    rollback: bool,
) -> Result<u8, CliError> {
    let plan_dir = open_dir(dir)?;
    let (plan, digest) = load(&plan_dir)?;
    if control.dry_run {
        return dry_run(&plan_dir, &plan, agent_image.as_deref(), control, rollback);
    }
    // This machine's journal first: a second apply here is refused before anything in the
    // cluster (the Lease too, even with --force-unlock) is touched.
    let key = journal_key(&plan_dir)?;
    let journal = Journal::open(&plan_dir, &key).map_err(journal_error)?;
    let settings = Settings {
        plan_dir: plan_dir.clone(),
        digest: digest.clone(),
        agent_image,
    };
    let mut actions = KubeActions::connect(&live_options(&control.cluster), &plan, settings)
        .map_err(|f| failure_error(&f))?;
    let identity = holder(&digest);
    let gone = actions
        .block_on(lease::read(actions.client()))
        .ok()
        .flatten()
        .is_some_and(|h| holder_gone(&h.identity));
    let lock = actions
        .block_on(lease::acquire(
            actions.client(),
            &identity,
            Duration::from_secs(control.lease_seconds.max(5)),
            control.force_unlock || gone,
        ))
        .map_err(|e| failure_error(e.failure()))?;
    if let Some(previous) = &lock.took_over {
        eprintln!(
            "note: took over the apply lock from {}{}",
            esc(&previous.describe()),
            if control.force_unlock {
                " (--force-unlock)"
            } else if gone {
                " (that process on this host is gone)"
            } else {
                " (it had expired)"
            }
        );
    }
    actions.fence_with(lock.fence.clone());
    let result = run_locked(
        journal,
        dir,
        &plan,
        digest,
        &mut actions,
        control,
        until,
        rollback,
        identity,
    );
    actions.flush_mirror();
    actions.block_on(lock.release());
    for warning in &actions.warnings {
        render::warn(warning);
    }
    result
}

#[allow(clippy::too_many_arguments)]
fn run_locked(
    mut journal: Journal,
    dir: &Path,
    plan: &Plan,
    digest: PlanDigest,
    actions: &mut KubeActions,
    control: &ControlArgs,
    until: Option<String>,
    rollback: bool,
    identity: String,
) -> Result<u8, CliError> {
    if let Some(q) = &journal.quarantined {
        eprintln!(
            "warning: the journal's last line was cut off ({} bytes, from a crash during a write); it was moved to {} and the step it began runs again",
            q.bytes,
            q.file.display()
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    // First Ctrl-C: finish the current step, then stop. Second: stop now (the journal resumes).
    let _ = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            eprintln!("\nstopping now; run the same command again to resume");
            std::process::exit(i32::from(exit::INTERRUPTED));
        }
        eprintln!(
            "\nstopping after the current step (press Ctrl-C again to stop at once: the journal resumes either way)"
        );
    });
    let options = Options {
        yes: control.yes,
        approve: control.approve.clone(),
        until,
        phase: control.phase.clone(),
        holder: identity,
        args: std::env::args().skip(1).collect(),
        version: env!("CARGO_PKG_VERSION").into(),
        crash: CrashPoints::from_env(),
        ..Options::default()
    };
    let mut observer = progress::Progress::new(plan);
    let outcome = {
        let mut executor = Executor::new(
            plan,
            digest,
            &mut journal,
            actions,
            &options,
            &mut observer,
            &stop,
        );
        if rollback {
            executor.rollback()
        } else {
            executor.apply()
        }
    };
    observer.finish();
    let outcome = outcome.map_err(|e| CliError::other(e.to_string(), e.help()))?;
    report::outcome(dir, plan, &outcome, rollback)?;
    Ok(outcome.exit_code())
}

fn dry_run(
    plan_dir: &PlanDir,
    plan: &Plan,
    agent_image: Option<&str>,
    control: &ControlArgs,
    rollback: bool,
) -> Result<u8, CliError> {
    let dir = plan_dir.path();
    let (records, _) =
        cniswap_exec::journal::read(plan_dir, existing_key).map_err(journal_error)?;
    let state = cniswap_exec::state::State::replay(plan, &records);
    let mut text = format!(
        "Dry run of {} in {}: nothing is changed. Each step first reads whether its effect is there.\n",
        if rollback { "the rollback" } else { "the plan" },
        esc(&dir.display().to_string())
    );
    let only = control.phase.as_deref();
    let selected =
        |i: usize, id: &str| only.is_none_or(|p| p == id || p.parse::<usize>().ok() == Some(i + 1));
    let phases: Vec<(usize, &cniswap_plan::Phase)> = if rollback {
        plan.phases.iter().enumerate().rev().collect()
    } else {
        plan.phases.iter().enumerate().collect()
    };
    for (i, phase) in phases {
        if !selected(i, &phase.id) {
            continue;
        }
        text.push_str(&format!(
            "\nPhase {}: {} ({})\n",
            i + 1,
            esc(&phase.name),
            esc(&phase.id)
        ));
        let steps = if rollback {
            &phase.rollback
        } else {
            &phase.steps
        };
        for step in steps {
            let done = state.is_done(&step.id);
            text.push_str(&format!(
                "  {} {}{}\n",
                esc(&step.id),
                esc(&step.description),
                if done { "  [done]" } else { "" }
            ));
            for op in cniswap_apply::describe(
                step,
                agent_image,
                &plan.agent_image,
                plan.platform.to_lowercase().starts_with("talos"),
            ) {
                text.push_str(&format!("      {}\n", esc(&op)));
            }
            text.push_str(&format!(
                "      proves: {}\n",
                esc(&cniswap_exec::effect::of(&step.action).describe())
            ));
        }
    }
    render::write_stdout(&text)?;
    Ok(exit::OK)
}

fn status(dir: &Path, output: StatusFormat, cluster: &ClusterArgs) -> Result<u8, CliError> {
    let plan_dir = open_dir(dir)?;
    let (plan, digest) = load(&plan_dir)?;
    let (records, tail) =
        cniswap_exec::journal::read(&plan_dir, existing_key).map_err(journal_error)?;
    let mut report = cniswap_exec::status::report(&plan, &records, tail);
    if let Some(cniswap_exec::Event::Begin { digest: then, .. }) = records.first().map(|r| &r.event)
    {
        report.plan_changed = digest::changes(then, &digest);
    }
    report.lock = Some(read_lock(cluster));
    match output {
        StatusFormat::Json => render::write_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&report).unwrap_or_default()
        ))?,
        StatusFormat::Text => render::write_stdout(&report::status_text(&report))?,
    }
    Ok(exit::OK)
}

/// Who holds the lock, in words; never fails (status works offline).
fn read_lock(cluster: &ClusterArgs) -> String {
    let options = live_options(cluster);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => return format!("unknown ({e})"),
    };
    runtime.block_on(async {
        let read = async {
            let connection = cniswap_kube::connect(&options)
                .await
                .map_err(|e| e.to_string())?;
            lease::read(&connection.client)
                .await
                .map_err(|e| e.failure().message.clone())
        };
        match tokio::time::timeout(Duration::from_secs(10), read).await {
            Ok(Ok(Some(h))) if !h.expired(jiff_now()) => format!("held by {}", h.describe()),
            Ok(Ok(Some(h))) => format!("free (last held by {}, expired)", h.describe()),
            Ok(Ok(None)) => "free".into(),
            Ok(Err(e)) => format!("unknown (cluster not readable: {e})"),
            Err(_) => "unknown (the cluster did not answer within 10 s)".into(),
        }
    })
}

fn jiff_now() -> cniswap_apply::lease::Timestamp {
    cniswap_apply::lease::Timestamp::now()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_dead_process_of_this_host_boot_and_pid_namespace_gives_up_its_lock() {
        let host = this_host();
        let boot = boot_id().unwrap();
        let ns = pid_namespace().unwrap();
        // Above the kernel's pid_max (4194304 at most): never a running process.
        let dead = format!("root@{host} pid 4294967295 plan 0123abcd boot {boot} pidns {ns}");
        assert!(holder_gone(&dead));
        assert!(!holder_gone(&format!(
            "root@{host} pid {} plan 0123abcd boot {boot} pidns {ns}",
            std::process::id()
        )));
        // Another PID namespace (a container, a hostNetwork pod): its pids mean nothing here.
        assert!(!holder_gone(&format!(
            "root@{host} pid 4294967295 plan 0123abcd boot {boot} pidns 1"
        )));
        // The same host booted since: that process is gone whatever its pid.
        assert!(holder_gone(&format!(
            "root@{host} pid {} plan 0123abcd boot 00000000-0000-0000-0000-000000000000 pidns {ns}",
            std::process::id()
        )));
        // Without boot and namespace (an older cniswap), or another host: never judged gone.
        assert!(!holder_gone(&format!(
            "root@{host} pid 4294967295 plan 0123abcd"
        )));
        assert!(!holder_gone(&format!(
            "root@{host}-elsewhere pid 4294967295 plan 0123abcd boot {boot} pidns {ns}"
        )));
        assert!(!holder_gone("someone else"));
        assert!(!holder_gone(&format!("root@{host} pid x")));
        assert!(
            holder(&PlanDigest {
                plan: "ab".repeat(32),
                files: Default::default()
            })
            .contains(&format!("boot {boot} pidns {ns}"))
        );
    }
}
