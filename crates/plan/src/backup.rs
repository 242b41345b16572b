//! Backups: every file the plan saves before it deletes or changes something is written to
//! `<file>.tmp` and renamed only when the command that produced it succeeded, and an existing
//! backup is never overwritten, so a re-run after the delete keeps the good copy. Restores
//! apply what a backup holds; an empty backup (the object did not exist) restores nothing.

use crate::model::ObjectRef;
use crate::shell::{Code, Sh, ShellArg};

/// The directory part of a path in the plan directory.
fn parent(file: &str) -> &str {
    file.rsplit_once('/').map_or(".", |(dir, _)| dir)
}

/// Writes `file` from what `producer` prints, atomically, unless `file` exists already.
pub fn write_once(producer: &Sh, file: &str) -> Sh {
    let tmp = format!("{file}.tmp");
    sh!(
        "mkdir -p {} && {{ test -e {} || {{ {} > {} && mv {} {}; }}; }}",
        parent(file),
        file,
        Code(producer),
        tmp,
        tmp,
        file
    )
}

/// `kubectl get` of one object as YAML (nothing when it does not exist).
pub fn get_yaml(object: &ObjectRef) -> Sh {
    match &object.namespace {
        Some(ns) => sh!(
            "kubectl -n {} get {} {} --ignore-not-found -o yaml",
            ns,
            object.kind,
            object.name
        ),
        None => sh!(
            "kubectl get {} {} --ignore-not-found -o yaml",
            object.kind,
            object.name
        ),
    }
}

/// Saves objects into one file, as YAML documents.
pub fn save_objects(objects: &[ObjectRef], file: &str) -> Sh {
    let mut producer: Option<Sh> = None;
    for object in objects {
        let get = get_yaml(object);
        producer = Some(match producer {
            None => get,
            Some(before) => sh!("{} && echo --- && {}", Code(&before), Code(&get)),
        });
    }
    let producer = producer.unwrap_or_else(|| sh!("true"));
    write_once(&sh!("{{ {}; }}", Code(&producer)), file)
}

/// A backup made with `kubectl get -o yaml`, minus the fields the server refuses on create
/// ("resourceVersion should not be set on objects to be created") or that conflict on update.
/// Lists (`kubectl get KIND -A -o yaml`) hold their items' fields 4 deep instead of 2.
fn for_apply(file: &(impl ShellArg + ?Sized), list: bool) -> Sh {
    if list {
        sh!(
            "sed -e '/^    resourceVersion:/d' -e '/^    uid:/d' {}",
            file
        )
    } else {
        sh!("sed -e '/^  resourceVersion:/d' -e '/^  uid:/d' {}", file)
    }
}

/// Puts back what a backup file holds (nothing when it is empty).
pub fn restore(file: &str) -> Sh {
    sh!(
        "test ! -s {} || {{ {} | kubectl apply -f -; }}",
        file,
        Code(&for_apply(file, false))
    )
}

/// Replaces the live object with a backup file (nothing when it is empty).
pub fn replace(file: &str) -> Sh {
    sh!(
        "test ! -s {} || {{ {} | kubectl replace -f -; }}",
        file,
        Code(&for_apply(file, false))
    )
}

/// Whether the cluster already matches a backup file (or the backup is empty).
pub fn restored(file: &str) -> Sh {
    sh!(
        "test ! -s {} || {{ {} | kubectl diff -f - >/dev/null; }}",
        file,
        Code(&for_apply(file, false))
    )
}

/// Puts back every `crd-*.yaml` then every `objects-*.yaml` list of a CRD backup directory.
pub fn restore_crds(dir: &str) -> Vec<Sh> {
    // `$f` is the loop variable (in a subshell, so `exit` ends only the loop).
    let f = sh!("\"$f\"");
    let crd = for_apply(&Code(&f), false);
    let list = for_apply(&Code(&f), true);
    vec![
        sh!(
            "( for f in {}/crd-*.yaml; do test ! -s \"$f\" || {{ {} | kubectl apply -f - || exit 1; }}; done )",
            dir,
            Code(&crd)
        ),
        sh!(
            "( for f in {}/objects-*.yaml; do test ! -s \"$f\" || {{ {} | kubectl apply -f - || exit 1; }}; done )",
            dir,
            Code(&list)
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a command in `dir` with `kubectl` replaced by a script that prints `stdout` and
    /// exits `code`.
    fn run(dir: &std::path::Path, command: &Sh, stdout: &str, code: i32) -> bool {
        let bin = dir.join("bin");
        std::fs::create_dir_all(&bin).unwrap_or_default();
        let fake = bin.join("kubectl");
        std::fs::write(
            &fake,
            format!("#!/bin/sh\nprintf '%s' '{stdout}'\nexit {code}\n"),
        )
        .unwrap_or_default();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&fake)
            .status()
            .map(|s| s.success())
            .unwrap_or_default();
        let path = format!(
            "{}:{}",
            bin.display(),
            std::env::var("PATH").unwrap_or_default()
        );
        std::process::Command::new("sh")
            .arg("-c")
            .arg(command.as_str())
            .current_dir(dir)
            .env("PATH", path)
            .status()
            .map(|s| s.success())
            .unwrap_or_default()
    }

    #[test]
    fn a_backup_is_written_whole_once_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let object = ObjectRef::new("daemonset", Some("kube-system"), "kube-flannel");
        let save = write_once(&get_yaml(&object), "backups/ds.yaml");
        let file = dir.path().join("backups/ds.yaml");
        // The API server fails: no backup, and no partial file in its place.
        assert!(!run(dir.path(), &save, "partial", 1));
        assert!(!file.exists());
        assert!(run(dir.path(), &save, "kind: DaemonSet", 0));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap_or_default(),
            "kind: DaemonSet"
        );
        // A re-run after the delete (the object is gone) keeps the good copy.
        assert!(run(dir.path(), &save, "", 0));
        assert_eq!(
            std::fs::read_to_string(&file).unwrap_or_default(),
            "kind: DaemonSet"
        );
    }

    #[test]
    fn backups_lose_the_fields_the_server_refuses_on_create() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("ds.yaml");
        std::fs::write(&file, "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: kube-flannel\n  resourceVersion: \"123\"\n  uid: 0b1c\nspec:\n  template:\n    metadata:\n      uid: keep\n").unwrap_or_default();
        let out = std::process::Command::new("sh")
            .arg("-c")
            .arg(for_apply(&file.display().to_string(), false).as_str())
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "apiVersion: apps/v1\nkind: DaemonSet\nmetadata:\n  name: kube-flannel\nspec:\n  template:\n    metadata:\n      uid: keep\n"
        );
    }
}
