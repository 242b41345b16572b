//! Stale backups. A backup is written once and never overwritten: the first copy holds the
//! state before the phase changed anything, and a resumed run must not replace it with the
//! changed state. But once a phase's rollback has finished, the cluster holds again what
//! those backups hold, and a later run of the phase must save the state as it is then: the
//! cluster may have changed in between, and a rollback must never put back a state older than
//! the one the phase changed. So a finished rollback retires the backups its phase's forward
//! steps wrote in the plan directory: renamed to `<name>.retired-<n>` (kept, never deleted),
//! so the next run of the phase writes fresh ones. Backups on nodes (`node clean --backup`)
//! and the rollback steps' own backups are not retired here.

use crate::plandir::{Entry, FileError, PlanDir};

/// The first free `<file>.retired-<n>` (n from 1).
pub fn retired_name(file: &str, mut taken: impl FnMut(&str) -> bool) -> String {
    (1u32..)
        .map(|n| format!("{file}.retired-{n}"))
        .find(|name| !taken(name))
        .unwrap_or_else(|| format!("{file}.retired"))
}

/// Renames `file` (a file or directory of the plan directory) to its retired name; `None`
/// when there was nothing to retire.
pub fn retire(dir: &PlanDir, file: &str) -> Result<Option<String>, FileError> {
    if dir.entry(file)? == Entry::Missing {
        return Ok(None);
    }
    let mut error = None;
    let to = retired_name(file, |name| match dir.entry(name) {
        Ok(entry) => entry != Entry::Missing,
        Err(e) => {
            error.get_or_insert(e);
            true
        }
    });
    if let Some(e) = error {
        return Err(e);
    }
    dir.rename(file, &to, crate::plandir::Access::Private)?;
    Ok(Some(to))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retired_name_never_replaces_an_earlier_one() {
        let taken = ["b.yaml.retired-1", "b.yaml.retired-2"];
        assert_eq!(
            retired_name("b.yaml", |n| taken.contains(&n)),
            "b.yaml.retired-3"
        );
        assert_eq!(retired_name("b.yaml", |_| false), "b.yaml.retired-1");
    }

    #[test]
    fn files_and_directories_are_retired_and_kept() {
        let tmp = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let dir = PlanDir::open(tmp.path()).unwrap_or_else(|e| panic!("{e}"));
        std::fs::create_dir_all(tmp.path().join("backups/snapshot/cluster"))
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(tmp.path().join("backups/ds.yaml"), "first")
            .unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(tmp.path().join("backups/ds.yaml.retired-1"), "older")
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            retire(&dir, "backups/ds.yaml").ok().flatten().as_deref(),
            Some("backups/ds.yaml.retired-2")
        );
        assert_eq!(
            retire(&dir, "backups/snapshot").ok().flatten().as_deref(),
            Some("backups/snapshot.retired-1")
        );
        assert_eq!(retire(&dir, "backups/none.yaml").ok().flatten(), None);
        assert!(!tmp.path().join("backups/ds.yaml").exists());
        assert!(
            tmp.path()
                .join("backups/snapshot.retired-1/cluster")
                .is_dir()
        );
        for (file, text) in [
            ("backups/ds.yaml.retired-1", "older"),
            ("backups/ds.yaml.retired-2", "first"),
        ] {
            assert_eq!(
                std::fs::read_to_string(tmp.path().join(file)).unwrap_or_default(),
                text
            );
        }
    }
}
