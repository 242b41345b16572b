//! `cniswap lint` and `cniswap explain`: wiring of loader, facts, rule engine and renderers.

use crate::args::{LintFormat, OutputFormat, SeverityArg, SourceArgs, StrategyArg, TargetCni};
use crate::error::CliError;
use crate::render::BOLD;
use crate::{exit, render, source};
use cniswap_lint::{SuppressionConfig, Target, report};
use cniswap_model::{CniKind, Severity};
use cniswap_snapshot::Snapshot;
use std::path::{Path, PathBuf};

pub struct LintArgs {
    pub paths: Vec<PathBuf>,
    pub source: SourceArgs,
    pub live: bool,
    pub to: Option<TargetCni>,
    pub strategy: Option<StrategyArg>,
    pub format: LintFormat,
    pub severity: SeverityArg,
    pub config: Option<PathBuf>,
    pub select: Vec<String>,
    pub ignore: Vec<String>,
}

/// `-o FORMAT`, or the deprecated `--format FORMAT` (with a note on stderr).
pub fn format(output: Option<LintFormat>, format: Option<LintFormat>) -> LintFormat {
    if format.is_some() {
        render::warn("`cniswap lint --format` is deprecated: write `-o/--output FORMAT`");
    }
    output.or(format).unwrap_or_default()
}

pub fn lint(args: LintArgs) -> Result<u8, CliError> {
    let mut suppressions = load_suppressions(args.config.as_deref())?;
    let usage = |e: String| {
        let (message, help) = e.split_once("\nhelp: ").unwrap_or((&e, ""));
        CliError::usage(message.to_string(), help.to_string())
    };
    if !args.select.is_empty() {
        suppressions.selection.select(&args.select).map_err(usage)?;
    }
    suppressions.selection.ignore(&args.ignore).map_err(usage)?;
    let snapshot = gather(&args)?;
    let facts = cniswap_facts::detect(&snapshot);
    let target = Target {
        cni: args.to.map(|t| match t {
            TargetCni::Flannel => CniKind::Flannel,
            TargetCni::Calico => CniKind::Calico,
            TargetCni::Cilium => CniKind::Cilium,
        }),
        strategy: args.strategy.map(|s| match s {
            StrategyArg::Fresh => cniswap_lint::Strategy::Fresh,
            StrategyArg::Cutover => cniswap_lint::Strategy::Cutover,
            StrategyArg::Rolling => cniswap_lint::Strategy::Rolling,
        }),
        estimated_outage_minutes: None,
    };
    let result = cniswap_lint::lint(&snapshot, &facts, target, &suppressions);
    for note in &result.notes {
        tracing::info!("{}", cniswap_model::text::escape_control(note));
    }
    let rendered = match args.format {
        LintFormat::Text => report::text(&result, &snapshot, &report::TextOptions { color: true }),
        LintFormat::Json => report::json(&result, &snapshot.skipped),
        LintFormat::Sarif => report::sarif(&result, &snapshot.skipped),
        LintFormat::Github => report::github(&result, &snapshot.skipped),
    };
    render::write_stdout(&rendered)?;
    if let Some(error) = source::unread_error(&snapshot.unread) {
        crate::error::print(&error);
        return Ok(exit::INPUT);
    }
    let threshold = match args.severity {
        SeverityArg::Info => Severity::Info,
        SeverityArg::Warning => Severity::Warning,
        SeverityArg::Error => Severity::Error,
    };
    Ok(if result.findings.iter().any(|f| f.severity >= threshold) {
        exit::FINDINGS
    } else {
        exit::OK
    })
}

/// Files only; files plus a snapshot or the live cluster; or the cluster alone.
fn gather(args: &LintArgs) -> Result<Snapshot, CliError> {
    if args.paths.is_empty() {
        return source::acquire_as_given(&args.source);
    }
    let mut snapshot = if args.source.snapshot.is_some() || args.live {
        source::acquire_as_given(&args.source)?
    } else {
        Snapshot::default()
    };
    let read = cniswap_snapshot::load_repository(&mut snapshot, &args.paths)?;
    if snapshot.unreadable > 0 {
        render::warn(&format!(
            "{} could not be read and {} not checked (listed as skipped, with the error)",
            render::count(snapshot.unreadable, "file", "files"),
            render::plural(snapshot.unreadable, "was", "were")
        ));
    }
    if read == 0 {
        // Like other linters on an empty tree: say so, do not fail the pipeline.
        render::warn(&format!(
            "nothing to lint in {}: no Talos, Omni, Helm, Calico or Flannel configuration could be read ({} skipped, listed in the report)",
            args.paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", "),
            render::count(snapshot.skipped.len(), "file", "files")
        ));
    }
    Ok(snapshot)
}

fn load_suppressions(path: Option<&Path>) -> Result<SuppressionConfig, CliError> {
    let default = Path::new(".cniswap.yaml");
    let path = match path {
        Some(p) => p,
        None if default.exists() => default,
        None => return Ok(SuppressionConfig::default()),
    };
    SuppressionConfig::load(path).map_err(|e| {
        let text = e.to_string();
        let (message, help) = text.split_once("\nhelp: ").unwrap_or((
            &text,
            "fix .cniswap.yaml (see `cniswap lint --help` for its format)",
        ));
        CliError::other(message, help)
    })
}

/// A rule for `explain -o json|yaml`.
#[derive(serde::Serialize)]
struct RuleOut {
    id: &'static str,
    name: &'static str,
    severity: Severity,
    title: &'static str,
    fix: &'static str,
    /// The command that shows the rule's documentation.
    explain: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    docs: Option<&'static str>,
}

fn rule_out(rule: &cniswap_lint::Rule, docs: bool) -> RuleOut {
    RuleOut {
        id: rule.meta.id,
        name: rule.meta.name,
        severity: rule.meta.severity,
        title: rule.meta.title,
        fix: rule.meta.fix,
        explain: report::explain_command(rule.meta.id),
        docs: docs.then_some(rule.meta.docs),
    }
}

fn machine<T: serde::Serialize>(value: &T, format: OutputFormat) -> String {
    match format {
        OutputFormat::Yaml => serde_saphyr::to_string(value).unwrap_or_default(),
        _ => serde_json::to_string_pretty(value).unwrap_or_default() + "\n",
    }
}

pub fn explain(rule: Option<&str>, list: bool, format: OutputFormat) -> Result<u8, CliError> {
    if list {
        if format != OutputFormat::Text {
            let rules: Vec<RuleOut> = cniswap_lint::RULES
                .iter()
                .map(|r| rule_out(r, false))
                .collect();
            render::write_stdout(&machine(&rules, format))?;
            return Ok(exit::OK);
        }
        let mut out = String::new();
        for rule in cniswap_lint::RULES {
            let severity = rule.meta.severity.to_string();
            out.push_str(&format!(
                "{BOLD}{:<7}{BOLD:#} {}{} {:<45} {}\n",
                rule.meta.id,
                render::severity(rule.meta.severity),
                " ".repeat(8usize.saturating_sub(severity.len())),
                rule.meta.name,
                rule.meta.title
            ));
        }
        render::write_stdout(&out)?;
        return Ok(exit::OK);
    }
    let key = rule.unwrap_or_default();
    match cniswap_lint::find_rule(key) {
        Some(rule) if format != OutputFormat::Text => {
            render::write_stdout(&machine(&rule_out(rule, true), format))?;
            Ok(exit::OK)
        }
        Some(rule) => {
            render::write_stdout(&render::markdown(rule.meta.docs))?;
            Ok(exit::OK)
        }
        None => {
            let nearest = cniswap_lint::RULES
                .iter()
                .map(|r| {
                    let key = key.to_ascii_lowercase();
                    let by_id = strsim::damerau_levenshtein(&r.meta.id.to_ascii_lowercase(), &key);
                    (
                        by_id.min(strsim::damerau_levenshtein(r.meta.name, &key)),
                        r.meta.id,
                    )
                })
                .min_by_key(|(distance, _)| *distance)
                .map(|(_, id)| id)
                .unwrap_or("TAL001");
            Err(CliError::usage(
                format!("no rule `{key}`"),
                format!("did you mean {nearest}? `cniswap explain --list` shows every rule"),
            ))
        }
    }
}
