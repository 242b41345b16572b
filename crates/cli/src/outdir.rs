//! Output directories of `plan` and `snapshot`: written whole or not at all, never through a
//! symbolic link, never mixed with an older run's files.
//!
//! Files are written into a new directory beside the target (created by us, so nothing can be
//! planted in it), each with `create_new` (which refuses to open an existing path, symlinks
//! included) and synced; then the directory is renamed to the target. A target that exists
//! must be an empty directory, or a non-empty one with `--overwrite`, which moves the old one
//! aside and removes it after the rename (`remove_dir_all` does not follow symlinks).

use crate::args::{FormatOrDir, OutputFormat};
use crate::error::CliError;
use std::io::Write;
use std::path::{Component, Path, PathBuf};

/// The format and directory of `plan`/`snapshot` from `-o` and `--out-dir`. The old spelling
/// `-o DIR` still works and says on stderr what to write instead.
pub fn resolve(
    output: Option<FormatOrDir>,
    out_dir: Option<PathBuf>,
    command: &str,
) -> Result<(OutputFormat, Option<PathBuf>), CliError> {
    match (output, out_dir) {
        (Some(FormatOrDir::LegacyDir(dir)), None) => {
            crate::render::warn(&format!(
                "`cniswap {command} -o DIR` is deprecated: write `--out-dir {}` (-o now selects the output format: text, json or yaml)",
                dir.display()
            ));
            Ok((OutputFormat::Text, Some(dir)))
        }
        (Some(FormatOrDir::LegacyDir(dir)), Some(out_dir)) => Err(CliError::usage(
            format!(
                "-o {} is not a format, and --out-dir {} is given too",
                dir.display(),
                out_dir.display()
            ),
            "-o takes text, json or yaml; the directory goes to --out-dir",
        )),
        (Some(FormatOrDir::Format(format)), out_dir) => Ok((format, out_dir)),
        (None, out_dir) => Ok((OutputFormat::Text, out_dir)),
    }
}

/// A directory being written; [`Staging::commit`] puts it in place.
pub struct Staging {
    target: PathBuf,
    dir: tempfile::TempDir,
    replace: bool,
}

fn refuse(target: &Path, message: &str, help: &str) -> CliError {
    CliError::other(format!("{}: {message}", target.display()), help)
}

/// Checks `target` and starts writing a directory for it.
pub fn create(target: &Path, overwrite: bool) -> Result<Staging, CliError> {
    let mut replace = false;
    match std::fs::symlink_metadata(target) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(refuse(target, &e.to_string(), "check the --out-dir path")),
        Ok(meta) if meta.file_type().is_symlink() => {
            return Err(refuse(
                target,
                "is a symbolic link; cniswap never writes through one",
                "give the directory the link points to, or a new path",
            ));
        }
        Ok(meta) if !meta.is_dir() => {
            return Err(refuse(
                target,
                "exists and is not a directory",
                "choose a new directory for --out-dir",
            ));
        }
        Ok(_) => {
            let entries = std::fs::read_dir(target)
                .map_err(|e| refuse(target, &e.to_string(), "check the --out-dir path"))?
                .count();
            if entries > 0 && !overwrite {
                return Err(refuse(
                    target,
                    &format!(
                        "is not empty ({entries} {})",
                        crate::render::plural(entries, "entry", "entries")
                    ),
                    "choose a new directory, or pass --overwrite to replace it whole (its files are removed)",
                ));
            }
            replace = entries > 0;
        }
    }
    let parent = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    std::fs::create_dir_all(&parent).map_err(|e| {
        refuse(
            &parent,
            &format!("cannot create: {e}"),
            "check the --out-dir path",
        )
    })?;
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "out".into());
    let dir = tempfile::Builder::new()
        .prefix(&format!(".{name}.cniswap-"))
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o755))
        .tempdir_in(&parent)
        .map_err(|e| {
            refuse(
                &parent,
                &format!("cannot create a directory here: {e}"),
                "check that the parent of --out-dir is writable",
            )
        })?;
    Ok(Staging {
        target: target.to_path_buf(),
        dir,
        replace,
    })
}

/// `rel` as a path inside the output directory: relative, no `..`, no root.
fn inside(rel: &str) -> Option<PathBuf> {
    let path = Path::new(rel);
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            _ => return None,
        }
    }
    (!out.as_os_str().is_empty()).then_some(out)
}

impl Staging {
    /// The directory being written, for writers that stream (files must be created new).
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes one file (`rel` inside the directory), creating its parent directories.
    pub fn write(&self, rel: &str, contents: &[u8]) -> Result<(), CliError> {
        let path = inside(rel)
            .map(|p| self.dir.path().join(p))
            .ok_or_else(|| {
                CliError::other(
                    format!(
                        "refusing to write `{}`: not a plain relative path",
                        cniswap_model::text::escape_control(rel)
                    ),
                    "this is a bug in cniswap; please report it",
                )
            })?;
        let fail = |e: std::io::Error| {
            CliError::other(
                format!("cannot write {}: {e}", self.target.join(rel).display()),
                "check free space and permissions of the --out-dir parent",
            )
        };
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(fail)?;
        }
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(fail)?;
        file.write_all(contents).map_err(fail)?;
        file.sync_all().map_err(fail)
    }

    /// Puts the directory in place of the target.
    pub fn commit(self) -> Result<(), CliError> {
        let fail = |e: std::io::Error| {
            CliError::other(
                format!(
                    "cannot move the new files into {}: {e}",
                    self.target.display()
                ),
                "check that nothing else writes there, then run again",
            )
        };
        let staged = self.dir.keep();
        let aside = if self.replace {
            let parent = staged.parent().unwrap_or(Path::new("."));
            let aside = tempfile::Builder::new()
                .prefix(".cniswap-replaced-")
                .tempdir_in(parent)
                .map_err(fail)?
                .keep();
            // Moving the old directory onto the (empty) placeholder replaces it.
            if let Err(e) = std::fs::rename(&self.target, &aside) {
                let _ = std::fs::remove_dir(&aside);
                let _ = std::fs::remove_dir_all(&staged);
                return Err(fail(e));
            }
            Some(aside)
        } else {
            None
        };
        // An empty directory at the target is replaced by the rename; a non-empty one (which
        // appeared since the check) makes it fail, and nothing is lost.
        if let Err(e) = std::fs::rename(&staged, &self.target) {
            if let Some(aside) = &aside {
                let _ = std::fs::rename(aside, &self.target);
            }
            let _ = std::fs::remove_dir_all(&staged);
            return Err(fail(e));
        }
        // Make the rename itself durable (best effort: not every filesystem supports it).
        if let Some(parent) = self.target.parent() {
            let parent = if parent.as_os_str().is_empty() {
                Path::new(".")
            } else {
                parent
            };
            if let Ok(dir) = std::fs::File::open(parent) {
                let _ = dir.sync_all();
            }
        }
        if let Some(aside) = aside {
            std::fs::remove_dir_all(&aside).map_err(|e| {
                CliError::other(
                    format!(
                        "wrote {}, but cannot remove the replaced files in {}: {e}",
                        self.target.display(),
                        aside.display()
                    ),
                    "remove that directory by hand",
                )
            })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_relative_paths_are_inside() {
        assert_eq!(
            inside("artifacts/talos/a.yaml"),
            Some(PathBuf::from("artifacts/talos/a.yaml"))
        );
        assert_eq!(inside("./plan.yaml"), Some(PathBuf::from("plan.yaml")));
        for bad in ["../x", "a/../../x", "/etc/passwd", "", "."] {
            assert_eq!(inside(bad), None, "{bad}");
        }
    }
}
