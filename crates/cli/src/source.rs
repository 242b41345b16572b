//! Getting a Snapshot: from files, or from the live cluster (read-only), plus talosctl configs.

use crate::args::SourceArgs;
use crate::error::CliError;
use cniswap_snapshot::Snapshot;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::time::Duration;

/// The error a command ends with (exit 2, after its report) when the cluster did not let
/// every kind be listed: the report is partial, and a partial cluster must not pass for a
/// healthy one.
pub fn unread_error(unread: &[cniswap_model::UnreadKind]) -> Option<CliError> {
    if unread.is_empty() {
        return None;
    }
    Some(CliError::other(
        format!(
            "could not read {} from the cluster, so what depends on {} is unknown (not empty): {}",
            crate::render::count(unread.len(), "kind", "kinds"),
            crate::render::plural(unread.len(), "it", "them"),
            cniswap_model::UnreadKind::describe_all(unread)
        ),
        cniswap_model::UnreadKind::grant_hint(unread),
    ))
}

pub fn acquire(source: &SourceArgs) -> Result<Snapshot, CliError> {
    acquire_with(source, false)
}

/// Like [`acquire`], but snapshot files are named by the path as given (`snap/talos/x.yaml`),
/// so that lint findings open from the working directory.
pub fn acquire_as_given(source: &SourceArgs) -> Result<Snapshot, CliError> {
    acquire_with(source, true)
}

fn acquire_with(source: &SourceArgs, as_given: bool) -> Result<Snapshot, CliError> {
    let mut snapshot = match &source.snapshot {
        Some(path) if as_given => cniswap_snapshot::load_as_given(path)?,
        Some(path) => cniswap_snapshot::load(path)?,
        None => read_live(source)?,
    };
    if !source.talos_nodes.is_empty() {
        let configs = cniswap_kube::talosctl::read_machine_configs(
            &source.talos_nodes,
            source.talosconfig.as_deref(),
        )
        .map_err(|e| {
            CliError::other(
                e.to_string(),
                "check `talosctl --nodes <node> get machineconfig` works, or drop --talos-nodes",
            )
        })?;
        for config in configs {
            cniswap_snapshot::load_talos_text(
                &mut snapshot,
                &format!("talosctl:{}", config.node),
                &config.text,
            )?;
        }
    }
    Ok(snapshot)
}

fn read_live(source: &SourceArgs) -> Result<Snapshot, CliError> {
    let options = cniswap_kube::LiveOptions {
        kubeconfig: source.kubeconfig.clone(),
        context: source.context.clone(),
        ..Default::default()
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| CliError::other(format!("cannot start the async runtime: {e}"), ""))?;
    let progress = if std::io::stderr().is_terminal() {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::hidden()
    };
    progress.set_style(
        ProgressStyle::with_template("{spinner} reading {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    progress.enable_steady_tick(Duration::from_millis(120));
    let result = runtime.block_on(async {
        let connection = cniswap_kube::connect(&options).await.map_err(|e| {
            CliError::other(e.to_string(), "check KUBECONFIG/--kubeconfig and --context, or use --snapshot DIR to work offline")
        })?;
        cniswap_kube::read_cluster(&connection, &mut |what, count| progress.set_message(format!("{what} ({count} objects so far)")))
            .await
            .map_err(|e| CliError::other(e.to_string(), e.hint()))
    });
    progress.finish_and_clear();
    result
}
