//! `cniswap node inventory | clean | restore`: wiring of the node agent, the NOD rules and output.

use crate::args::{NodeCommand, OutputFormat, SourceCni};
use crate::error::CliError;
use crate::render::{BOLD, DIM, GREEN, RED, YELLOW, count};
use crate::{exit, render};
use cniswap_model::text::escape_control as esc;
use cniswap_model::{CniKind, Inventory, Owner, Severity};
use cniswap_node::NodeError;
use cniswap_node::clean::{CleanOptions, Plan};
use std::collections::BTreeMap;
use std::path::Path;

impl From<NodeError> for CliError {
    fn from(e: NodeError) -> Self {
        CliError::other(e.message, e.help)
    }
}

pub fn run(command: NodeCommand) -> Result<u8, CliError> {
    match command {
        NodeCommand::Inventory { root, output } => inventory(&root, output),
        NodeCommand::Clean {
            cni,
            dry_run,
            backup,
            root,
            include_kube_proxy,
        } => clean(cni, dry_run, backup.as_deref(), &root, include_kube_proxy),
        NodeCommand::Restore {
            backup,
            root,
            network_here,
        } => restore(&backup, &root, network_here),
    }
}

fn inventory(root: &Path, output: OutputFormat) -> Result<u8, CliError> {
    let inventory = cniswap_node::inventory::collect(root)?;
    match output {
        OutputFormat::Json => {
            render::write_stdout(
                &(serde_json::to_string_pretty(&inventory).unwrap_or_default() + "\n"),
            )?;
            return Ok(exit::OK);
        }
        OutputFormat::Yaml => {
            render::write_stdout(&serde_saphyr::to_string(&inventory).unwrap_or_default())?;
            return Ok(exit::OK);
        }
        OutputFormat::Text => {}
    }
    let (findings, errors) = node_findings(&inventory);
    let mut text = summary(&inventory);
    text.push_str(&findings);
    render::write_stdout(&text)?;
    Ok(if errors > 0 { exit::FINDINGS } else { exit::OK })
}

/// The NOD rules over this one inventory, rendered like `cniswap lint`, and how many errors.
fn node_findings(inventory: &Inventory) -> (String, usize) {
    let mut snapshot = cniswap_snapshot::Snapshot::default();
    snapshot
        .node_inventories
        .push(cniswap_snapshot::NodeInventory {
            node: inventory.node.clone(),
            file: "this node".into(),
            data: inventory.clone(),
        });
    let facts = cniswap_facts::detect(&snapshot);
    let result = cniswap_lint::lint(
        &snapshot,
        &facts,
        cniswap_lint::Target::default(),
        &cniswap_lint::SuppressionConfig::default(),
    );
    if result.findings.is_empty() {
        return (format!("\n{GREEN}No NOD findings.{GREEN:#}\n"), 0);
    }
    let mut out = String::from("\n");
    out.push_str(&cniswap_lint::report::text(
        &result,
        &snapshot,
        &cniswap_lint::report::TextOptions { color: true },
    ));
    let errors = result
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .count();
    if errors > 0 {
        out.push_str(&format!(
            "{RED}{}{RED:#}\n",
            count(errors, "error finding", "error findings")
        ));
    }
    (out, errors)
}

fn summary(inventory: &Inventory) -> String {
    let mut out = format!(
        "{BOLD}Node {}{BOLD:#} {DIM}(root {}){DIM:#}\n",
        esc(&inventory.node),
        esc(&inventory.root)
    );
    if let Some(dist) = &inventory.distribution {
        out.push_str(&format!("Distribution: {}\n", esc(dist)));
    }
    let agents: Vec<String> = inventory
        .agents
        .iter()
        .map(|a| format!("{} (pid {}, {})", esc(&a.process), a.pid, a.owner))
        .collect();
    out.push_str(&format!(
        "Agents running: {}\n",
        if agents.is_empty() {
            "none found".to_string()
        } else {
            agents.join(", ")
        }
    ));
    let choice = &inventory.cni_config;
    match &choice.containerd {
        Some(v) => out.push_str(&format!(
            "containerd loads {} ({}): {}{}\n",
            esc(&v.file),
            v.owner.map_or("unknown".into(), |o| o.to_string()),
            if v.parses {
                format!("{GREEN}parses{GREEN:#}")
            } else {
                format!("{RED}DOES NOT PARSE{RED:#}")
            },
            if v.missing_binaries.is_empty() {
                ", plugins present".to_string()
            } else {
                format!(
                    ", {RED}MISSING {}{RED:#} {}",
                    render::plural(v.missing_binaries.len(), "plugin", "plugins"),
                    esc(&v.missing_binaries.join(", "))
                )
            }
        )),
        None => out.push_str(&format!(
            "{YELLOW}containerd finds no CNI config{YELLOW:#} in {}\n",
            esc(&choice.conf_dir)
        )),
    }
    match &choice.crio {
        Some(v) => out.push_str(&format!("CRI-O loads {}\n", esc(&v.file))),
        None => out.push_str("CRI-O finds no loadable CNI config\n"),
    }
    let mut by_owner: BTreeMap<Owner, Vec<&cniswap_model::Item>> = BTreeMap::new();
    for item in &inventory.items {
        by_owner.entry(item.owner).or_default().push(item);
    }
    for (owner, items) in by_owner {
        out.push_str(&format!("\n{BOLD}{owner}{BOLD:#} ({})\n", items.len()));
        for item in items {
            let id = esc(&item.id);
            let pad = " ".repeat(70usize.saturating_sub(id.chars().count()));
            out.push_str(&format!("  {id}{pad} {DIM}{}{DIM:#}\n", esc(&item.why)));
        }
    }
    for line in &inventory.unreadable {
        out.push_str(&format!("\n{YELLOW}not read{YELLOW:#}: {}\n", esc(line)));
    }
    out
}

fn cni_of(cni: SourceCni) -> CniKind {
    match cni {
        SourceCni::Flannel => CniKind::Flannel,
        SourceCni::Canal => CniKind::Canal,
        SourceCni::Calico => CniKind::Calico,
        SourceCni::Cilium => CniKind::Cilium,
        SourceCni::Weave => CniKind::Weave,
    }
}

fn print_plan(plan: &Plan) -> String {
    let mut out = format!(
        "{BOLD}Plan: clean {} on node {}{BOLD:#}\n",
        plan.cni,
        esc(&plan.node)
    );
    if plan.actions.is_empty() {
        out.push_str("  nothing of it is left here\n");
    }
    for (i, action) in plan.actions.iter().enumerate() {
        out.push_str(&format!("  {:>3}. {}\n", i + 1, esc(&action.describe())));
        if let cniswap_node::clean::Action::IptablesTable {
            removed_chains,
            removed_rules,
            ..
        } = action
        {
            for line in removed_chains.iter().chain(removed_rules) {
                out.push_str(&format!("         {DIM}- {}{DIM:#}\n", esc(line)));
            }
        }
    }
    if !plan.kept.is_empty() {
        out.push_str(&format!("{BOLD}Left in place{BOLD:#}:\n"));
        for (id, why) in &plan.kept {
            out.push_str(&format!("  {}: {DIM}{}{DIM:#}\n", esc(id), esc(why)));
        }
    }
    out
}

fn clean(
    cni: SourceCni,
    dry_run: bool,
    backup: Option<&Path>,
    root: &Path,
    include_kube_proxy: bool,
) -> Result<u8, CliError> {
    let inventory = cniswap_node::inventory::collect(root)?;
    let options = CleanOptions {
        cni: cni_of(cni),
        include_kube_proxy,
        root: root.to_path_buf(),
    };
    let plan = cniswap_node::clean::plan(&inventory, &options)?;
    let mut out = print_plan(&plan);
    if dry_run {
        out.push_str(&format!(
            "{YELLOW}Dry run{YELLOW:#}: nothing was changed.\n"
        ));
        render::write_stdout(&out)?;
        return Ok(exit::OK);
    }
    let backup = match backup {
        Some(dir) => dir.to_path_buf(),
        None => {
            let seconds = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            root.join("var/lib/cniswap/backups")
                .join(format!("{}-{seconds}", plan.cni))
        }
    };
    let done = cniswap_node::clean::execute(&plan, root, &backup)?;
    out.push_str(&format!(
        "{GREEN}Done{GREEN:#}: {}. Backup in {}\nUndo with: cniswap node restore --backup {}{}\n",
        count(done.len(), "step", "steps"),
        esc(&backup.display().to_string()),
        esc(&backup.display().to_string()),
        if root == Path::new("/") {
            String::new()
        } else {
            format!(" --root {}", esc(&root.display().to_string()))
        }
    ));
    render::write_stdout(&out)?;
    Ok(exit::OK)
}

fn restore(backup: &Path, root: &Path, network_here: bool) -> Result<u8, CliError> {
    let outcome = cniswap_node::restore::restore(backup, root, network_here)?;
    let mut out = format!("{GREEN}Restored{GREEN:#}:\n");
    for line in &outcome.restored {
        out.push_str(&format!("  {}\n", esc(line)));
    }
    if !outcome.not_restored.is_empty() {
        out.push_str(&format!("{YELLOW}Not restored{YELLOW:#}:\n"));
        for line in &outcome.not_restored {
            out.push_str(&format!("  {}\n", esc(line)));
        }
    }
    render::write_stdout(&out)?;
    Ok(exit::OK)
}
