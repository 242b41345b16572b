//! The plan directory's files as the steps use them: artifacts read and checked against the
//! digest the run began with right before each use; backups written owner-only, never over
//! an earlier one, never through a link (crates/exec `PlanDir`).

use crate::KubeActions;
use crate::errors::failed;
use cniswap_config::limits;
use cniswap_exec::plandir::Entry;
use cniswap_exec::{Access, ActionError, FileError};
use serde_json::Value;
use std::path::PathBuf;

pub(crate) fn file_failed(e: FileError) -> ActionError {
    ActionError::failed(
        cniswap_exec::Failure::new(e.to_string())
            .object(e.path.display().to_string())
            .next(e.help),
    )
}

/// A private directory outside the plan directory for a tool's output (a download, an etcd
/// snapshot, a values file handed to helm): nobody else can plant anything in it.
pub struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    pub fn new() -> Result<Scratch, ActionError> {
        tempfile::Builder::new()
            .prefix("cniswap-")
            .tempdir()
            .map(|dir| Scratch { dir })
            .map_err(|e| failed(format!("cannot create a private temporary directory: {e}")))
    }
    /// A path in it for `name` (its last component only).
    pub fn path(&self, name: &str) -> PathBuf {
        let base = std::path::Path::new(name)
            .file_name()
            .map(|n| n.to_os_string())
            .unwrap_or_else(|| "file".into());
        self.dir.path().join(base)
    }
}

impl KubeActions {
    /// An artifact, read now and checked against the run's digest.
    pub(crate) fn artifact(&self, file: &str) -> Result<Vec<u8>, ActionError> {
        cniswap_exec::digest::verified(&self.plan_dir, &self.digest, file).map_err(file_failed)
    }

    /// The documents of an artifact (checked first).
    pub(crate) fn documents(&self, file: &str) -> Result<Vec<Value>, ActionError> {
        let bytes = self.artifact(file)?;
        crate::objects::parse_documents(&self.dir.join(file), &bytes)
    }

    /// An artifact copied, once checked, into a private place for a tool that reads it by
    /// path (helm --values, talosctl --patch-file): what the tool reads is what was checked.
    pub(crate) fn artifact_copy(
        &self,
        scratch: &Scratch,
        file: &str,
    ) -> Result<String, ActionError> {
        let bytes = self.artifact(file)?;
        let path = scratch.path(file);
        std::fs::write(&path, &bytes)
            .map_err(|e| failed(format!("cannot copy {file} to {}: {e}", path.display())))?;
        Ok(path.display().to_string())
    }

    /// A file the run wrote (a backup, a revision), if it is there; never through a link.
    pub(crate) fn saved(&self, file: &str) -> Result<Option<Vec<u8>>, ActionError> {
        self.plan_dir
            .read(file, limits::MAX_INPUT_BYTES)
            .map_err(file_failed)
    }

    /// Whether a backup holds something already (a non-empty file, or a directory). A link or
    /// a FIFO planted there is an error, not "kept".
    pub(crate) fn holds(&self, file: &str) -> Result<bool, ActionError> {
        match self
            .plan_dir
            .entry(file.trim_end_matches('/'))
            .map_err(file_failed)?
        {
            Entry::Missing => Ok(false),
            Entry::File { len } => Ok(len > 0),
            Entry::Dir => Ok(true),
            Entry::Other(what) => Err(failed(format!(
                "{}: {what} where a backup belongs",
                self.dir.join(file).display()
            ))),
        }
    }

    /// Writes a backup: owner-only (it holds what the cluster held), never over an earlier
    /// one (that one holds the state before the plan).
    pub(crate) fn save(&self, file: &str, bytes: &[u8]) -> Result<(), ActionError> {
        // An empty file holds nothing to keep (an earlier backup of nothing): it may be
        // replaced, as before.
        let empty = self.plan_dir.entry(file).map_err(file_failed)? == Entry::File { len: 0 };
        self.plan_dir
            .write(file, bytes, Access::Private, empty)
            .map_err(file_failed)
    }

    /// A backup directory, owner-only.
    pub(crate) fn save_dir(&self, dir: &str) -> Result<(), ActionError> {
        self.plan_dir
            .mkdir(dir, Access::Private)
            .map_err(file_failed)
    }

    /// Writes a file the run makes (a rendered manifest), replacing an earlier one.
    pub(crate) fn put(&self, file: &str, bytes: &[u8]) -> Result<(), ActionError> {
        self.plan_dir
            .write(file, bytes, Access::Shared, true)
            .map_err(file_failed)
    }

    /// Copies a tool's output file from `scratch` into the plan directory.
    pub(crate) fn put_from(
        &self,
        file: &str,
        from: &std::path::Path,
        access: Access,
    ) -> Result<(), ActionError> {
        let mut source = std::fs::File::open(from)
            .map_err(|e| failed(format!("cannot read {}: {e}", from.display())))?;
        self.plan_dir
            .write_from(file, &mut source, access, true)
            .map_err(file_failed)
    }

    /// Names in a backup directory.
    pub(crate) fn saved_names(&self, dir: &str) -> Result<Vec<String>, ActionError> {
        self.plan_dir.list(dir).map_err(file_failed)
    }
}

pub(crate) fn plan_dir_failed(e: FileError) -> ActionError {
    file_failed(e)
}
