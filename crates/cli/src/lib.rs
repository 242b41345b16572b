//! The `cniswap` command line: argument parsing, wiring of the pipeline stages, rendering.
//! Logic lives in the library crates; this crate stays thin.

mod agent;
mod apply;
mod args;
mod commands;
mod complete;
mod error;
mod image;
mod lint;
mod node;
mod offline;
mod outdir;
mod plan;
mod render;
mod snapshot;
mod source;
mod values;
mod verify;

pub use args::Cli;
use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;

/// Documented exit codes.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FINDINGS: u8 = 1;
    pub const INPUT: u8 = 2;
}

/// Stack for the thread that does the work: parsers and the rules recurse once per level of
/// nesting, up to the depth budget (`CNISWAP_MAX_DEPTH`); a generous stack keeps a raised budget
/// from ending in a stack overflow. It is virtual memory: only what is used is resident.
const WORK_STACK: usize = 256 << 20;

/// How the user invoked the one binary, from `argv[0]`: `kubectl cniswap` when it runs as the
/// kubectl plugin (a link or copy named `kubectl-cniswap`, as kubectl and krew call it), else
/// `cniswap`.
pub fn invoked_as(argv0: Option<&std::ffi::OsStr>) -> &'static str {
    let name = argv0
        .map(std::path::Path::new)
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if name.starts_with("kubectl-cniswap") {
        "kubectl cniswap"
    } else {
        "cniswap"
    }
}

/// Whether kubectl runs this binary to complete `kubectl cniswap ...` (as the link
/// `kubectl_complete-cniswap`, which scripts/install.sh makes).
fn is_kubectl_completer(argv0: Option<&std::ffi::OsStr>) -> bool {
    argv0
        .map(std::path::Path::new)
        .and_then(|p| p.file_name())
        .is_some_and(|n| n == complete::KUBECTL_COMPLETER)
}

/// Runs the CLI; `display_name` is how the user invoked it (`cniswap` or `kubectl cniswap`).
pub fn run(display_name: &str) -> ExitCode {
    // A shell asking for completions (`COMPLETE=bash`) gets them here, and the process ends.
    complete::answer_if_asked(display_name);
    if is_kubectl_completer(std::env::args_os().next().as_deref()) {
        complete::answer_kubectl(std::env::args_os().skip(1).collect());
        return ExitCode::SUCCESS;
    }
    let name = display_name.to_string();
    match std::thread::Builder::new()
        .name("cniswap".into())
        .stack_size(WORK_STACK)
        .spawn(move || run_here(&name))
    {
        Ok(worker) => worker.join().unwrap_or(ExitCode::from(101)),
        Err(_) => run_here(display_name),
    }
}

fn run_here(display_name: &str) -> ExitCode {
    // Usage lines and completions name the command as the user typed it.
    let parsed = Cli::command()
        .bin_name(display_name)
        .try_get_matches()
        .and_then(|mut matches| Cli::from_arg_matches_mut(&mut matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                exit::INPUT
            } else {
                exit::OK
            });
        }
    };
    match cli.global.color {
        args::ColorWhen::Always => anstream::ColorChoice::Always.write_global(),
        args::ColorWhen::Never => anstream::ColorChoice::Never.write_global(),
        args::ColorWhen::Auto => {}
    }
    init_logging(cli.global.verbose);
    match cniswap_config::limits::Limits::from_env() {
        Ok(limits) => {
            tracing::debug!(?limits, "input budgets");
            cniswap_config::limits::set(limits);
        }
        Err(e) => {
            error::print(&error::CliError::other(
                e.to_string(),
                "set the budget to a positive whole number (see docs/usage.md, \"Limits\"), or unset it",
            ));
            return ExitCode::from(exit::INPUT);
        }
    }
    match commands::dispatch(cli.command, display_name) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            error::print(&error);
            ExitCode::from(exit::INPUT)
        }
    }
}

fn init_logging(verbose: u8) {
    // kube-rs logs a failed request at ERROR before returning it; cniswap reports the same
    // error itself with the server and a next step, so kube-rs speaks only from -vv on.
    let default = match verbose {
        0 => "warn,kube_client=off",
        1 => "info,kube_client=off",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // anstream strips the level colours in pipes and with --color never.
        .with_writer(anstream::stderr)
        .with_target(verbose >= 3)
        .without_time()
        .try_init();
}
