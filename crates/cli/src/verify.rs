//! `cniswap verify`: wiring of the live runner, the renderers and the output files.

use crate::args::{VerifyArgs, VerifyFormat};
use crate::error::CliError;
use crate::{exit, render};
use cniswap_verify::manifests::{self, ManifestOptions};
use cniswap_verify_live::{ContinuousOptions, Options, Progress, VerifyError};
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

/// A spinner on stderr when it is a terminal; silent otherwise.
struct Spinner(indicatif::ProgressBar);

impl Spinner {
    fn new() -> Spinner {
        let bar = if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        } else {
            indicatif::ProgressBar::hidden()
        };
        Spinner(bar)
    }
}

impl Progress for Spinner {
    fn message(&self, text: &str) {
        self.0
            .set_message(cniswap_model::text::escape_control(text).into_owned());
        tracing::info!("{text}");
    }
}

impl From<VerifyError> for CliError {
    fn from(e: VerifyError) -> Self {
        let help = e.help().to_string();
        CliError::other(e.to_string(), help)
    }
}

fn manifest_options(args: &VerifyArgs) -> ManifestOptions {
    ManifestOptions {
        namespace: args.namespace.clone(),
        image: args.image.clone(),
        image_pull_policy: args.image_pull_policy.clone(),
        host: !args.no_host,
        pull_secret: args.pull_secret.clone(),
        echo_port: args.echo_port,
        http_port: args.http_port,
        service_suffix: None,
        token: None,
    }
}

pub fn run(args: VerifyArgs) -> Result<u8, CliError> {
    let manifest = manifest_options(&args);
    if args.print_manifests {
        let text = manifests::to_yaml(&[
            (
                &format!(
                    "Objects `cniswap verify` deploys (namespace labelled Pod Security {}).\n\
                     They are removed afterwards unless --keep.",
                    manifests::pod_security_level(&manifest)
                ),
                manifests::objects(&manifest),
            ),
            (
                "RBAC to run `cniswap verify` without cluster-admin: bind people or CI to the group\n\
                 cniswap:verify. This creates the namespace too (verify then keeps it and removes\n\
                 only what it deployed into it).",
                manifests::user_rbac(&manifest),
            ),
        ]);
        render::write_stdout(&text)?;
        return Ok(exit::OK);
    }
    let mut skip = vec![];
    for s in &args.skip {
        skip.push(s.parse().map_err(|e: String| {
            CliError::other(e, "see `cniswap verify --help` for the kinds")
        })?);
    }
    let options = Options {
        live: cniswap_kube::LiveOptions {
            kubeconfig: args.kubeconfig.clone(),
            context: args.context.clone(),
            ..Default::default()
        },
        manifests: manifest,
        probe_timeout: args.timeout,
        ready_timeout: args.ready_timeout,
        outside: args.outside.clone(),
        skip,
        keep: args.keep,
        domain: args.cluster_domain.clone(),
        nodes: args.node.clone(),
        focus: args.focus.clone(),
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::other(format!("cannot start the async runtime: {e}"), ""))?;
    let spinner = Spinner::new();
    let stop = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let code = if args.continuous {
        let continuous = ContinuousOptions {
            interval: args.interval,
            duration: args.duration,
            switching: args.switching.clone(),
        };
        let result = runtime.block_on(cniswap_verify_live::run_continuous(
            options, continuous, &spinner, stop,
        ));
        spinner.0.finish_and_clear();
        let (collected, cleanup) = result?;
        let code = write_continuous(&args, &collected)?;
        cleanup_outcome(cleanup, code)
    } else {
        let result = runtime.block_on(cniswap_verify_live::run_once(options, &spinner, stop));
        spinner.0.finish_and_clear();
        let (report, cleanup) = result?;
        if let Some(path) = &args.junit {
            let xml = cniswap_verify::junit::junit(&report)
                .map_err(|e| CliError::other(format!("cannot render JUnit: {e}"), ""))?;
            write_file(path, xml.as_bytes())?;
        }
        match args.output {
            VerifyFormat::Json => render::write_stdout(
                &(serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"),
            )?,
            VerifyFormat::Text => match render::escaped(&report) {
                Some(report) => {
                    render::write_stdout(&cniswap_verify::matrix::render(&report, true))?
                }
                None => render::write_stdout(
                    &(serde_json::to_string_pretty(&report).unwrap_or_default() + "\n"),
                )?,
            },
        }
        let code = if report.summary.failed == 0 {
            exit::OK
        } else {
            exit::FINDINGS
        };
        cleanup_outcome(cleanup, code)
    };
    Ok(code)
}

fn cleanup_outcome(cleanup: Option<VerifyError>, code: u8) -> u8 {
    match cleanup {
        None => code,
        Some(e) => {
            crate::error::print(&CliError::from(e));
            exit::INPUT
        }
    }
}

/// Writes an output file whole: a new temporary file beside it (created `O_EXCL`, never
/// through a link), renamed over the target (a planted link there is replaced, not followed).
fn write_file(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    cniswap_exec::PlanDir::open_for_output(parent)
        .and_then(|dir| dir.write(&name, bytes, cniswap_exec::Access::Shared, true))
        .map_err(|e| {
            CliError::other(
                format!("cannot write {}: {}", path.display(), e.message),
                e.help,
            )
        })
}

fn write_continuous(
    args: &VerifyArgs,
    collected: &cniswap_verify::continuous::Collected,
) -> Result<u8, CliError> {
    let report = cniswap_verify::continuous::build(collected);
    let dir = args.out_dir.clone().unwrap_or_else(|| {
        let stamp = report
            .start
            .replace([':', '-'], "")
            .split('.')
            .next()
            .unwrap_or("run")
            .to_string();
        PathBuf::from(format!("cniswap-verify-{stamp}"))
    });
    std::fs::create_dir_all(&dir).map_err(|e| {
        CliError::other(
            format!("cannot create {}: {e}", dir.display()),
            "pick another --out-dir",
        )
    })?;
    let json = serde_json::to_string_pretty(&report).unwrap_or_default() + "\n";
    write_file(&dir.join("report.json"), json.as_bytes())?;
    write_file(
        &dir.join("timeline.json"),
        (serde_json::to_string_pretty(&report.timeline).unwrap_or_default() + "\n").as_bytes(),
    )?;
    let svg = cniswap_verify::plot::svg(&report).map_err(|e| CliError::other(e.to_string(), ""))?;
    write_file(&dir.join("timeline.svg"), svg.as_bytes())?;
    let png = cniswap_verify::plot::png(&svg).map_err(|e| CliError::other(e.to_string(), ""))?;
    write_file(&dir.join("timeline.png"), &png)?;
    match args.output {
        VerifyFormat::Json => render::write_stdout(&json)?,
        VerifyFormat::Text => render::write_stdout(&format!(
            "{}\nWrote {}/report.json, timeline.json, timeline.svg, timeline.png\n",
            render::escaped(&report).map_or(json, |r| r.render()),
            cniswap_model::text::escape_control(&dir.display().to_string())
        ))?,
    }
    Ok(if report.failed() {
        exit::FINDINGS
    } else {
        exit::OK
    })
}
