use crate::args::{Cli, Command, OutputFormat};
use crate::error::CliError;
use crate::{exit, render, source};
use clap::CommandFactory;
use cniswap_model::{Finding, Severity};

pub fn dispatch(command: Command, display_name: &str) -> Result<u8, CliError> {
    match command {
        Command::Inspect { source, output } => inspect(&source, output),
        Command::Snapshot {
            source,
            out,
            output,
        } => crate::snapshot::run(&source, out, output),
        Command::Lint {
            paths,
            source,
            live,
            to,
            strategy,
            output,
            format,
            severity,
            config,
            select,
            ignore,
        } => crate::lint::lint(crate::lint::LintArgs {
            paths,
            source,
            live,
            to,
            strategy,
            format: crate::lint::format(output, format),
            severity,
            config,
            select,
            ignore,
        }),
        Command::Explain { rule, list, output } => {
            crate::lint::explain(rule.as_deref(), list, output)
        }
        Command::Node(command) => crate::node::run(command),
        Command::Agent(crate::args::AgentCommand::Probe(args)) => crate::agent::probe(args),
        Command::Image(command) => crate::image::run(command),
        Command::Verify(args) => crate::verify::run(*args),
        Command::Apply(args) => crate::apply::run(args),
        Command::Plan {
            source,
            to,
            strategy,
            kube_proxy,
            install,
            values,
            batch_size,
            reboot,
            agent_image,
            helper_image,
            pod_cidr,
            api_endpoint,
            offline,
            out,
            output,
            force,
        } => crate::plan::run(crate::plan::PlanArgs {
            source,
            to,
            strategy,
            kube_proxy,
            install,
            values,
            batch_size,
            reboot,
            agent_image,
            helper_image,
            pod_cidr,
            api_endpoint,
            offline,
            out,
            output,
            force,
        }),
        Command::Completions { shell } => {
            let mut cmd = Cli::command();
            let name = if display_name.starts_with("kubectl") {
                "kubectl-cniswap"
            } else {
                "cniswap"
            };
            clap_complete::generate(shell, &mut cmd, name, &mut std::io::stdout());
            Ok(exit::OK)
        }
        Command::Man { out_dir } => {
            std::fs::create_dir_all(&out_dir).map_err(|e| {
                CliError::other(format!("cannot create {}: {e}", out_dir.display()), "")
            })?;
            clap_mangen::generate_to(Cli::command(), &out_dir).map_err(|e| {
                CliError::other(
                    format!("cannot write man pages to {}: {e}", out_dir.display()),
                    "",
                )
            })?;
            eprintln!("wrote man pages to {}", out_dir.display());
            Ok(exit::OK)
        }
    }
}

fn inspect(source: &crate::args::SourceArgs, output: OutputFormat) -> Result<u8, CliError> {
    let snapshot = source::acquire(source)?;
    let facts = cniswap_facts::detect(&snapshot);
    // Every rule whose inputs the snapshot provides (MIG rules on cluster facts, Talos and
    // Cilium rules when configs are part of it).
    let findings: Vec<Finding> = cniswap_lint::lint(
        &snapshot,
        &facts,
        cniswap_lint::Target::default(),
        &cniswap_lint::SuppressionConfig::default(),
    )
    .findings;
    drop(snapshot);
    let rendered = match output {
        OutputFormat::Text => render::text::report(&facts, &findings),
        OutputFormat::Json => render::machine::json(&facts, &findings),
        OutputFormat::Yaml => render::machine::yaml(&facts, &findings),
    };
    render::write_stdout(&rendered)?;
    if let Some(error) = source::unread_error(&facts.inputs.unread) {
        crate::error::print(&error);
        return Ok(exit::INPUT);
    }
    Ok(if findings.iter().any(|f| f.severity == Severity::Error) {
        exit::FINDINGS
    } else {
        exit::OK
    })
}
