//! `cniswap snapshot`: read like inspect, write the snapshot directory whole, report it.

use crate::args::{FormatOrDir, OutDirArgs, OutputFormat, SourceArgs};
use crate::error::CliError;
use crate::render::{BOLD, DIM, count};
use crate::{exit, outdir, render, source};
use cniswap_model::text::escape_control;
use serde::Serialize;

#[derive(Serialize)]
struct Report<'a> {
    out_dir: String,
    files: usize,
    /// What reading the directory back counts as objects.
    objects: usize,
    talos_configs: usize,
    secrets_dropped: usize,
    other_kinds_dropped: usize,
    skipped: &'a [cniswap_model::SkippedInput],
    /// Kinds the cluster did not let cniswap list (recorded in `cluster/unread.json`).
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    unread: &'a [cniswap_model::UnreadKind],
}

pub fn run(
    source: &SourceArgs,
    out: OutDirArgs,
    output: Option<FormatOrDir>,
) -> Result<u8, CliError> {
    let (format, dir) = outdir::resolve(output, out.out_dir, "snapshot")?;
    let dir = dir.ok_or_else(|| {
        CliError::usage(
            "snapshot needs a directory to write",
            "pass --out-dir DIR (a new or empty directory; --overwrite replaces an old snapshot)",
        )
    })?;
    // Refuse a bad target before reading a whole cluster.
    let staging = outdir::create(&dir, out.overwrite)?;
    let snapshot = source::acquire(source)?;
    let written = cniswap_snapshot::write_snapshot(&snapshot, staging.path()).map_err(|e| {
        CliError::other(
            format!("cannot write snapshot to {}: {e}", dir.display()),
            "check free space and permissions of the --out-dir parent",
        )
    })?;
    staging.commit()?;
    let report = Report {
        out_dir: dir.display().to_string(),
        files: written.files,
        objects: written.objects,
        talos_configs: written.talos_configs,
        secrets_dropped: written.secrets_dropped,
        other_kinds_dropped: written.other_kinds_dropped,
        skipped: &snapshot.skipped,
        unread: &snapshot.unread,
    };
    let text = match format {
        OutputFormat::Text => text(&report),
        OutputFormat::Json => serde_json::to_string_pretty(&report).unwrap_or_default() + "\n",
        OutputFormat::Yaml => serde_saphyr::to_string(&report).unwrap_or_default(),
    };
    render::write_stdout(&text)?;
    // The snapshot records the kinds it lacks (cluster/unread.json); the run still failed to
    // read the cluster whole.
    if let Some(error) = source::unread_error(&snapshot.unread) {
        crate::error::print(&error);
        return Ok(exit::INPUT);
    }
    Ok(exit::OK)
}

fn text(r: &Report) -> String {
    let mut out = format!(
        "{BOLD}wrote {} to {}{BOLD:#}: {}, {}; secrets redacted\n",
        count(r.files, "file", "files"),
        escape_control(&r.out_dir),
        count(r.objects, "object", "objects"),
        count(r.talos_configs, "Talos config", "Talos configs"),
    );
    let mut not_kept = Vec::new();
    if r.secrets_dropped > 0 {
        not_kept.push(format!(
            "{} (never written)",
            count(r.secrets_dropped, "Secret", "Secrets")
        ));
    }
    if r.other_kinds_dropped > 0 {
        not_kept.push(format!(
            "{} of kinds cniswap does not read",
            count(r.other_kinds_dropped, "object", "objects")
        ));
    }
    if !not_kept.is_empty() {
        out.push_str(&format!(
            "  {DIM}not kept: {}{DIM:#}\n",
            not_kept.join(", ")
        ));
    }
    for skipped in r.skipped {
        out.push_str(&format!(
            "  skipped {}: {}\n",
            escape_control(&skipped.path),
            escape_control(&skipped.reason)
        ));
    }
    out
}
