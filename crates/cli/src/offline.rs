//! `--chart NAME=DIR`, `--manifest NAME=FILE`, `--image-registry`: read here (the planner is
//! pure), checked by the planner. Only regular files and directories are read; a symlink, a
//! device or a file that is not UTF-8 text is named and refused, never followed or guessed at.

use crate::args::OfflineArgs;
use crate::error::CliError;
use cniswap_plan::local::{LocalChart, LocalSources};
use std::path::{Path, PathBuf};

/// Files of one chart beyond which the directory is surely not a chart.
const MAX_CHART_FILES: usize = 5_000;

pub fn read(args: &OfflineArgs) -> Result<LocalSources, CliError> {
    let mut sources = LocalSources {
        image_registry: args.image_registry.clone(),
        ..LocalSources::default()
    };
    for spec in &args.chart {
        let (name, dir) = split(spec, "--chart", "cilium=./charts/cilium")?;
        known(&name, "--chart", cniswap_plan::local::CHARTS)?;
        let mut files = Vec::new();
        read_dir(&dir, &dir, &mut files)?;
        files.sort();
        sources.charts.push(LocalChart {
            name,
            source: dir.display().to_string(),
            files,
        });
    }
    for spec in &args.manifest {
        let (name, file) = split(spec, "--manifest", "calico=./calico.yaml")?;
        known(&name, "--manifest", cniswap_plan::local::MANIFESTS)?;
        let text = cniswap_snapshot::read_config_file(&file)?;
        sources.manifests.push((name, text));
    }
    Ok(sources)
}

/// A name cniswap installs, checked before its file is read.
fn known(name: &str, flag: &str, names: &[&str]) -> Result<(), CliError> {
    if names.contains(&name) {
        return Ok(());
    }
    Err(CliError::usage(
        format!(
            "{flag} {name}=...: cniswap installs no {} of that name",
            if flag == "--chart" {
                "chart"
            } else {
                "manifest"
            }
        ),
        format!("name one of {}", names.join(", ")),
    ))
}

fn split(spec: &str, flag: &str, example: &str) -> Result<(String, PathBuf), CliError> {
    match spec.split_once('=') {
        Some((name, path)) if !name.is_empty() && !path.is_empty() => {
            Ok((name.to_string(), PathBuf::from(path)))
        }
        _ => Err(CliError::usage(
            format!("{flag} {spec:?} is not NAME=PATH"),
            format!("for example {flag} {example}"),
        )),
    }
}

fn read_dir(root: &Path, dir: &Path, out: &mut Vec<(String, String)>) -> Result<(), CliError> {
    let meta = std::fs::symlink_metadata(dir).map_err(|e| {
        CliError::other(
            format!("cannot read the chart directory {}: {e}", dir.display()),
            "pass the directory that holds the chart's Chart.yaml",
        )
    })?;
    if !meta.is_dir() {
        return Err(CliError::other(
            format!("{} is not a directory", dir.display()),
            "pass the unpacked chart's directory (helm pull --untar unpacks a chart)",
        ));
    }
    let entries = std::fs::read_dir(dir).map_err(|e| {
        CliError::other(
            format!("cannot read {}: {e}", dir.display()),
            "check the directory's permissions",
        )
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| {
            CliError::other(
                format!("cannot read {}: {e}", dir.display()),
                "check the directory's permissions",
            )
        })?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| CliError::other(format!("cannot read {}: {e}", path.display()), ""))?;
        if kind.is_dir() {
            read_dir(root, &path, out)?;
        } else if kind.is_file() {
            let relative = path
                .strip_prefix(root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let bytes = std::fs::read(&path)
                .map_err(|e| CliError::other(format!("cannot read {}: {e}", path.display()), ""))?;
            let text = String::from_utf8(bytes).map_err(|_| {
                CliError::other(
                    format!("{} is not UTF-8 text", path.display()),
                    "a chart given with --chart must be unpacked text (packaged subcharts: unpack them under charts/)",
                )
            })?;
            out.push((relative, text));
            if out.len() > MAX_CHART_FILES {
                return Err(CliError::other(
                    format!(
                        "{} holds more than {MAX_CHART_FILES} files: not a chart",
                        root.display()
                    ),
                    "pass the chart's own directory",
                ));
            }
        } else {
            return Err(CliError::other(
                format!(
                    "{} is a symlink or a special file: a chart is copied file by file, and links are never followed",
                    path.display()
                ),
                "replace it with the file it points to",
            ));
        }
    }
    Ok(())
}
