//! `cniswap plan`: wiring of the source, facts, planner and the plan directory.

use crate::args::{
    FormatOrDir, InstallArg, KubeProxyArg, OfflineArgs, OutDirArgs, OutputFormat, PlanStrategyArg,
    RebootArg, SourceArgs, TargetCni,
};
use crate::error::CliError;
use crate::render::{BOLD, DIM, GREEN, RED, count, finding_line};
use crate::{exit, outdir, render, source};
use cniswap_model::CniKind;
use cniswap_model::text::escape_control as esc;
use cniswap_plan::{InstallChoice, KubeProxyChoice, PlanOptions, RebootChoice, StrategyChoice};
use std::path::PathBuf;

pub struct PlanArgs {
    pub source: SourceArgs,
    pub to: TargetCni,
    pub strategy: PlanStrategyArg,
    pub kube_proxy: Option<KubeProxyArg>,
    pub install: Option<InstallArg>,
    pub values: Vec<PathBuf>,
    pub batch_size: usize,
    pub reboot: RebootArg,
    pub agent_image: Option<String>,
    pub helper_image: Option<String>,
    pub pod_cidr: Option<String>,
    pub api_endpoint: Option<String>,
    pub offline: OfflineArgs,
    pub out: OutDirArgs,
    pub output: Option<FormatOrDir>,
    pub force: bool,
}

pub fn run(args: PlanArgs) -> Result<u8, CliError> {
    let (format, out_dir) = outdir::resolve(args.output.clone(), args.out.out_dir.clone(), "plan")?;
    // Refuse a bad --out-dir before reading a whole cluster.
    let staging = match &out_dir {
        Some(dir) => Some(outdir::create(dir, args.out.overwrite)?),
        None => None,
    };
    let mut values = Vec::new();
    for path in &args.values {
        values.push(crate::values::read(path)?);
    }
    // Local charts and manifests are read (and refused) before the cluster is.
    let local = crate::offline::read(&args.offline)?;
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
            InstallArg::Manifest => InstallChoice::Manifest,
            InstallArg::Manifests => InstallChoice::Manifests,
            InstallArg::TalosUrls => InstallChoice::TalosUrls,
            InstallArg::Omni => InstallChoice::Omni,
        }),
        values,
        batch_size: args.batch_size,
        agent_image: args.agent_image,
        pod_cidr: args.pod_cidr,
        api_endpoint: args.api_endpoint,
        local,
        reboot: match args.reboot {
            RebootArg::Auto => RebootChoice::Auto,
            RebootArg::Always => RebootChoice::Always,
            RebootArg::Never => RebootChoice::Never,
        },
        helper_image: args.helper_image,
    };
    let output = cniswap_plan::plan(&snapshot, &facts, &options)
        .map_err(|e| CliError::other(e.message, e.help))?;
    let plan = &output.plan;
    let errors = cniswap_plan::blocking(plan);
    let refused = !errors.is_empty() && !args.force;
    let mut summary = summary(plan);
    if refused {
        summary.push_str(&format!(
            "{RED}Refused{RED:#}: {}. Fix them (`cniswap explain <ID>`), or pass --force to write the plan anyway.\n",
            count(errors.len(), "error finding", "error findings")
        ));
    } else {
        match (staging, &out_dir) {
            (Some(staging), Some(dir)) => {
                for (path, text) in &output.files {
                    staging.write(path, text.as_bytes())?;
                }
                staging.commit()?;
                summary.push_str(&format!(
                    "{GREEN}Wrote{GREEN:#} {} to {} (plan.yaml, runbook.md, artifacts/).\n",
                    count(output.files.len(), "file", "files"),
                    esc(&dir.display().to_string())
                ));
            }
            _ => summary
                .push_str("Use --out-dir DIR to write plan.yaml, runbook.md and the artifacts.\n"),
        }
    }
    if refused && format != OutputFormat::Text {
        render::warn(&format!(
            "plan refused by {} (listed under `preflight`); fix them, or pass --force",
            count(errors.len(), "error finding", "error findings")
        ));
    }
    match format {
        OutputFormat::Text => render::write_stdout(&summary)?,
        OutputFormat::Json => {
            render::write_stdout(&(serde_json::to_string_pretty(plan).unwrap_or_default() + "\n"))?
        }
        OutputFormat::Yaml => {
            render::write_stdout(&serde_saphyr::to_string(plan).unwrap_or_default())?
        }
    }
    Ok(if refused { exit::FINDINGS } else { exit::OK })
}

/// The plan for people: what, how, how long, the phases and the preflight findings.
fn summary(plan: &cniswap_plan::Plan) -> String {
    let mut out = format!(
        "{BOLD}Plan: {} -> {} on {} ({}){BOLD:#}\nStrategy: {} {DIM}({}){DIM:#}\nkube-proxy: {}; install: {}; node agent image: {} (every node must pull it)\n{BOLD}Phases{BOLD:#}:\n",
        if plan.from.is_empty() {
            "nothing".to_string()
        } else {
            esc(&plan.from.join(" + ")).into_owned()
        },
        plan.to,
        esc(&plan.cluster),
        esc(&plan.platform),
        plan.strategy,
        esc(&plan.strategy_reason),
        plan.kube_proxy,
        plan.install,
        esc(&plan.agent_image),
    );
    for (i, phase) in plan.phases.iter().enumerate() {
        out.push_str(&format!(
            "  {}. {} ({}, {})\n",
            i + 1,
            esc(&phase.name),
            count(phase.steps.len(), "step", "steps"),
            count(phase.rollback.len(), "rollback step", "rollback steps")
        ));
    }
    // The estimate as a picture; it ends with the totals.
    out.push_str(&render::timeline::timeline(
        &plan.estimates,
        plan.strategy == "cutover",
    ));
    if !plan.estimates.risks.is_empty() {
        out.push_str(&format!(
            "{BOLD}Also affected, and handled by the plan{BOLD:#}:\n"
        ));
        for risk in &plan.estimates.risks {
            out.push_str(&format!(
                "  - {}\n    handled: {}\n",
                esc(&risk.effect),
                esc(&risk.handling)
            ));
        }
    }
    if !plan.preflight.is_empty() {
        out.push_str(&format!("{BOLD}Preflight findings{BOLD:#}:\n"));
        for f in &plan.preflight {
            out.push_str(&format!("  {}\n", finding_line(f)));
            if let Some(h) = plan.handled.iter().find(|h| h.covers(f)) {
                out.push_str(&format!(
                    "    {GREEN}resolved by this plan{GREEN:#}: {}\n",
                    esc(&h.by)
                ));
            }
        }
    }
    out
}
