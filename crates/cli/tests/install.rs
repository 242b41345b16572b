//! scripts/install.sh and scripts/release.sh on the binary cargo built for these tests: one
//! binary installed with its kubectl plugin name as a link, and a krew manifest whose archive
//! and checksum match.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

fn script(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../scripts")
        .join(name)
}

#[test]
fn install_puts_the_binary_and_a_plugin_link_into_the_bin_directory() {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    for _ in 0..2 {
        // Twice: installing over an earlier install works and keeps one binary.
        let out = Command::new(script("install.sh"))
            .args(["--binary", env!("CARGO_BIN_EXE_cniswap"), "--prefix"])
            .arg(&bin)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
    }
    let link = std::fs::read_link(bin.join("kubectl-cniswap")).unwrap();
    assert_eq!(link, Path::new("cniswap"), "a relative link to the binary");
    let mut names: Vec<_> = std::fs::read_dir(&bin)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    assert_eq!(
        names,
        ["cniswap", "kubectl-cniswap", "kubectl_complete-cniswap"],
        "nothing else is left behind"
    );
    // kubectl completes `kubectl cniswap expl<Tab>` and `... explain TAL00<Tab>` through the
    // second link, in cobra's format (candidates, then the directive).
    let complete = |words: &[&str]| {
        let out = Command::new(bin.join("kubectl_complete-cniswap"))
            .args(words)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let subcommands = complete(&["expl"]);
    assert!(subcommands.starts_with("explain\t"), "{subcommands}");
    assert!(subcommands.ends_with("\n:4\n"), "{subcommands}");
    let rules = complete(&["explain", "TAL00"]);
    assert!(rules.contains("TAL001\t"), "{rules}");
    assert!(
        rules.lines().all(|l| l.starts_with("TAL00") || l == ":4"),
        "{rules}"
    );
    // The empty word after `kubectl cniswap `: every subcommand.
    let all = complete(&[""]);
    assert!(all.lines().any(|l| l.starts_with("inspect\t")), "{all}");
    assert!(all.lines().any(|l| l.starts_with("plan\t")), "{all}");
    let out = Command::new(bin.join("kubectl-cniswap"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("Usage: kubectl cniswap"),
        "{out:?}"
    );
    // Bad arguments: exit 2 and the usage.
    let out = Command::new(script("install.sh"))
        .arg("--profile")
        .arg("fast")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A stand-in for the release binary: answers `--version` as cniswap does, and is small (the
/// debug build is 170+ MB, which gzip -9 takes minutes over on a loaded machine).
fn small_binary(dir: &Path) -> String {
    use std::os::unix::fs::PermissionsExt;
    let version = Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .arg("--version")
        .output()
        .unwrap();
    let version = String::from_utf8_lossy(&version.stdout).trim().to_string();
    let path = dir.join("cniswap");
    std::fs::write(&path, format!("#!/bin/sh\necho '{version}'\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path.display().to_string()
}

#[test]
fn release_writes_an_archive_and_a_krew_manifest_that_match() {
    let dir = tempfile::tempdir().unwrap();
    let binary = small_binary(dir.path());
    let out_dir = dir.path().join("dist");
    let out = Command::new(script("release.sh"))
        .args(["--binary", &binary])
        .args(["--url-base", "https://downloads.example.com/cniswap/v0/"])
        .arg("--out-dir")
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let manifest = std::fs::read_to_string(out_dir.join("cniswap.yaml")).unwrap();
    let manifest: serde_json::Value = serde_saphyr::from_str(&manifest).unwrap();
    assert_eq!(
        manifest["apiVersion"],
        "krew.googlecontainertools.github.com/v1alpha2"
    );
    assert_eq!(manifest["kind"], "Plugin");
    assert_eq!(manifest["metadata"]["name"], "cniswap");
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(manifest["spec"]["version"], format!("v{version}"));
    let platform = &manifest["spec"]["platforms"][0];
    assert_eq!(platform["bin"], "cniswap");
    assert_eq!(platform["selector"]["matchLabels"]["os"], "linux");
    let archive_name = platform["uri"]
        .as_str()
        .unwrap()
        .strip_prefix("https://downloads.example.com/cniswap/v0/")
        .unwrap()
        .to_string();
    assert!(archive_name.starts_with(&format!("cniswap-v{version}-linux-")));
    let archive = out_dir.join(&archive_name);
    let sum = Command::new("sha256sum").arg(&archive).output().unwrap();
    let sum = String::from_utf8_lossy(&sum.stdout);
    assert_eq!(platform["sha256"], sum.split_whitespace().next().unwrap());
    let list = Command::new("tar")
        .arg("-tzf")
        .arg(&archive)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&list.stdout), "cniswap\n");
    // Reproducible: the same binary gives the same archive.
    let again = dir.path().join("again");
    let out = Command::new(script("release.sh"))
        .args(["--binary", &binary])
        .args(["--url-base", "https://downloads.example.com/cniswap/v0"])
        .arg("--out-dir")
        .arg(&again)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        std::fs::read(&archive).unwrap(),
        std::fs::read(again.join(&archive_name)).unwrap()
    );
    // Without --url-base it refuses (exit 2) and says why.
    let out = Command::new(script("release.sh"))
        .args(["--binary", &binary])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--url-base"));
}
