//! `cniswap plan`: wiring of the source, facts, planner and the plan directory.

use crate::args::{InstallArg, KubeProxyArg, PlanStrategyArg, SourceArgs, TargetCni};
use crate::error::CliError;
use crate::{exit, render, source};
use cniswap_model::CniKind;
use cniswap_plan::{InstallChoice, KubeProxyChoice, PlanOptions, StrategyChoice};
use std::path::PathBuf;

pub struct PlanArgs {
    pub source: SourceArgs,
    pub to: TargetCni,
    pub strategy: PlanStrategyArg,
    pub kube_proxy: Option<KubeProxyArg>,
    pub install: Option<InstallArg>,
    pub values: Vec<PathBuf>,
    pub batch_size: usize,
    pub output: Option<PathBuf>,
    pub force: bool,
}

pub fn run(args: PlanArgs) -> Result<u8, CliError> {
    let mut values = Vec::new();
    for path in &args.values {
        let text = std::fs::read_to_string(path).map_err(|e| {
            CliError::other(
                format!("{}: {e}", path.display()),
                "check the --values path",
            )
        })?;
        let value: serde_json::Value = serde_saphyr::from_str(&text).map_err(|e| {
            CliError::other(
                format!("{}: not valid YAML: {e}", path.display()),
                "pass a Helm values file",
            )
        })?;
        values.push(value);
    }
    let snapshot = source::acquire(&args.source)?;
    let facts = cniswap_facts::detect(&snapshot);
    let options = PlanOptions {
        target: match args.to {
            TargetCni::Flannel => CniKind::Flannel,
            TargetCni::Calico => CniKind::Calico,
            TargetCni::Cilium => CniKind::Cilium,
        },
        strategy: match args.strategy {
            PlanStrategyArg::Auto => StrategyChoice::Auto,
            PlanStrategyArg::Fresh => StrategyChoice::Fresh,
            PlanStrategyArg::Cutover => StrategyChoice::Cutover,
            PlanStrategyArg::Rolling => StrategyChoice::Rolling,
        },
        kube_proxy: args.kube_proxy.map(|k| match k {
            KubeProxyArg::Keep => KubeProxyChoice::Keep,
            KubeProxyArg::Replace => KubeProxyChoice::Replace,
        }),
        install: args.install.map(|i| match i {
            InstallArg::Helm => InstallChoice::Helm,
            InstallArg::Manifests => InstallChoice::Manifests,
            InstallArg::TalosUrls => InstallChoice::TalosUrls,
            InstallArg::Omni => InstallChoice::Omni,
        }),
        values,
        batch_size: args.batch_size,
    };
    let output = cniswap_plan::plan(&snapshot, &facts, &options)
        .map_err(|e| CliError::other(e.message, e.help))?;
    let plan = &output.plan;
    let mut summary = format!(
        "Plan: {} -> {} on {} ({})\nStrategy: {} ({})\nkube-proxy: {}; install: {}\nEstimate: about {} min in total, longest pod-network outage about {} min\nPhases:\n",
        if plan.from.is_empty() {
            "nothing".to_string()
        } else {
            plan.from.join(" + ")
        },
        plan.to,
        plan.cluster,
        plan.platform,
        plan.strategy,
        plan.strategy_reason,
        plan.kube_proxy,
        plan.install,
        plan.estimates.total_minutes,
        plan.estimates.longest_outage_minutes,
    );
    for (i, phase) in plan.phases.iter().enumerate() {
        summary.push_str(&format!(
            "  {}. {} ({} steps, {} rollback steps)\n",
            i + 1,
            phase.name,
            phase.steps.len(),
            phase.rollback.len()
        ));
    }
    let errors = cniswap_plan::blocking(plan);
    if !plan.preflight.is_empty() {
        summary.push_str("Preflight findings:\n");
        for f in &plan.preflight {
            summary.push_str(&format!("  {}[{}]: {}\n", f.severity, f.rule, f.message));
            if let Some(h) = plan.handled.iter().find(|h| h.covers(f)) {
                summary.push_str(&format!("    resolved by this plan: {}\n", h.by));
            }
        }
    }
    if !errors.is_empty() && !args.force {
        summary.push_str(&format!(
            "Refused: {} error finding(s). Fix them (`cniswap explain <ID>`), or pass --force to write the plan anyway.\n",
            errors.len()
        ));
        render::write_stdout(&summary)?;
        return Ok(exit::FINDINGS);
    }
    match &args.output {
        Some(dir) => {
            for (path, text) in &output.files {
                let path = dir.join(path);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| {
                        CliError::other(
                            format!("{}: {e}", parent.display()),
                            "check the -o directory",
                        )
                    })?;
                }
                std::fs::write(&path, text).map_err(|e| {
                    CliError::other(format!("{}: {e}", path.display()), "check the -o directory")
                })?;
            }
            summary.push_str(&format!(
                "Wrote {} files to {} (plan.yaml, runbook.md, artifacts/).\n",
                output.files.len(),
                dir.display()
            ));
        }
        None => summary.push_str("Use -o DIR to write plan.yaml, runbook.md and the artifacts.\n"),
    }
    render::write_stdout(&summary)?;
    Ok(exit::OK)
}
