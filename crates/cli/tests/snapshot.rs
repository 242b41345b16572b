//! `cniswap snapshot` and the output directories of `snapshot` and `plan`: what is written
//! reads back the same (names, roles, counts, findings), and writing never goes through a
//! symbolic link, into a non-empty directory, or leaves an older run's files behind.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples")
}

fn example(name: &str) -> String {
    examples().join(name).display().to_string()
}

fn cniswap(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args(args)
        .env_remove("KUBECONFIG")
        .env("NO_COLOR", "1")
        .output()
        .expect("run cniswap")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn inspect(dir: &str) -> serde_json::Value {
    let out = cniswap(&["inspect", "--snapshot", dir, "-o", "json"]);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{}",
        text(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(
                    path.strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .into_owned(),
                );
            }
        }
    }
    out.sort();
    out
}

const EXAMPLES: [&str; 4] = [
    "talos-flannel-homelab",
    "kubeadm-calico-vxlan",
    "talos-flannel-to-cilium-half-migrated",
    "talos-1.14-multidoc",
];

#[test]
fn round_trip_keeps_names_roles_counts_and_findings() {
    for name in EXAMPLES {
        let work = tempfile::tempdir().unwrap();
        let dir = work.path().join("snap");
        let out = cniswap(&[
            "snapshot",
            "--snapshot",
            &example(name),
            "--out-dir",
            dir.to_str().unwrap(),
            "-o",
            "json",
        ]);
        assert_eq!(out.status.code(), Some(0), "{name}: {}", text(&out.stderr));
        let written: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let original = inspect(&example(name));
        let again = inspect(dir.to_str().unwrap());

        // What the writer says it wrote is what reading it back counts.
        assert_eq!(
            written["objects"], again["facts"]["inputs"]["objects"],
            "{name}: object counts differ between writing and reading back"
        );
        // Config files keep their names, so every provenance line keeps its role.
        let configs = |report: &serde_json::Value| -> Vec<String> {
            report["facts"]["talos"]["configs"]
                .as_array()
                .map(|c| {
                    c.iter()
                        .map(|c| format!("{} {}", c["file"], c["role"]))
                        .collect()
                })
                .unwrap_or_default()
        };
        assert_eq!(configs(&original), configs(&again), "{name}");
        let talos_dir = examples().join(name).join("talos");
        if talos_dir.is_dir() {
            assert_eq!(
                files_under(&talos_dir),
                files_under(&dir.join("talos")),
                "{name}: talos/ file names changed"
            );
        }
        // Everything else reads back the same: facts (but where they were read) and findings.
        let mut a = original.clone();
        let mut b = again.clone();
        a["facts"]["inputs"] = serde_json::Value::Null;
        b["facts"]["inputs"] = serde_json::Value::Null;
        assert_eq!(a, b, "{name}: the report changed after a round trip");
    }
}

#[test]
fn the_text_report_counts_what_reading_back_finds() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("snap");
    let out = cniswap(&[
        "snapshot",
        "--snapshot",
        &example("talos-flannel-homelab"),
        "--out-dir",
        dir.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let report = text(&out.stdout);
    let objects = inspect(dir.to_str().unwrap())["facts"]["inputs"]["objects"].clone();
    assert!(
        report.contains(&format!("{objects} objects, 2 Talos configs")),
        "{report}"
    );
    // The example holds one Secret: it is said to be dropped, not silently uncounted.
    assert!(
        report.contains("not kept: 1 Secret (never written)"),
        "{report}"
    );
}

#[test]
fn a_non_empty_directory_is_refused_and_overwrite_replaces_it_whole() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("snap");
    let dir_s = dir.to_str().unwrap();
    let calico = cniswap(&[
        "snapshot",
        "--snapshot",
        &example("kubeadm-calico-vxlan"),
        "--out-dir",
        dir_s,
    ]);
    assert_eq!(calico.status.code(), Some(0), "{}", text(&calico.stderr));
    let before = files_under(&dir);

    let homelab = ["snapshot", "--snapshot", &example("talos-flannel-homelab")];
    let out = cniswap(&[&homelab[..], &["--out-dir", dir_s]].concat());
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("is not empty") && text(&out.stderr).contains("--overwrite"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(
        files_under(&dir),
        before,
        "a refused write changed the directory"
    );

    let out = cniswap(&[&homelab[..], &["--out-dir", dir_s, "--overwrite"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // No stale file of the Calico snapshot is left: inspect sees only the homelab's CNI.
    let report = inspect(dir_s);
    let cnis: Vec<&str> = report["facts"]["cnis"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    assert_eq!(cnis, ["flannel"]);
    assert!(!dir.join("cluster/statefulsets.json").exists());
    // Nothing of the work is left beside the directory.
    assert_eq!(
        std::fs::read_dir(work.path()).unwrap().count(),
        1,
        "{:?}",
        files_under(work.path())
    );
}

#[test]
fn symbolic_links_are_never_written_through() {
    let work = tempfile::tempdir().unwrap();
    let victim_dir = work.path().join("victim");
    std::fs::create_dir(&victim_dir).unwrap();
    std::fs::write(victim_dir.join("keep.txt"), "precious").unwrap();

    // The output directory itself is a link: refused, even with --overwrite.
    let link = work.path().join("link");
    std::os::unix::fs::symlink(&victim_dir, &link).unwrap();
    let homelab = example("talos-flannel-homelab");
    for extra in [&[][..], &["--overwrite"][..]] {
        let args = [
            &[
                "snapshot",
                "--snapshot",
                &homelab,
                "--out-dir",
                link.to_str().unwrap(),
            ][..],
            extra,
        ]
        .concat();
        let out = cniswap(&args);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
        assert!(
            text(&out.stderr).contains("symbolic link"),
            "{}",
            text(&out.stderr)
        );
        assert_eq!(files_under(&victim_dir), ["keep.txt"]);
    }

    // Links planted inside a plan directory (plan.yaml to a file, artifacts/ to a directory):
    // the directory is not empty, so it is refused; --overwrite replaces it whole and writes
    // nothing through either link.
    let victim_file = work.path().join("victim.txt");
    std::fs::write(&victim_file, "precious").unwrap();
    let plan_dir = work.path().join("plan");
    std::fs::create_dir(&plan_dir).unwrap();
    std::os::unix::fs::symlink(&victim_file, plan_dir.join("plan.yaml")).unwrap();
    std::os::unix::fs::symlink(&victim_dir, plan_dir.join("artifacts")).unwrap();
    let plan = [
        "plan",
        "--snapshot",
        &example("talos-flannel-to-cilium-half-migrated"),
        "--to",
        "cilium",
        "--out-dir",
        plan_dir.to_str().unwrap(),
    ];
    let out = cniswap(&plan);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stdout));
    assert!(text(&out.stderr).contains("is not empty"));
    let out = cniswap(&[&plan[..], &["--overwrite"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(&victim_file).unwrap(), "precious");
    assert_eq!(files_under(&victim_dir), ["keep.txt"]);
    let meta = std::fs::symlink_metadata(plan_dir.join("plan.yaml")).unwrap();
    assert!(meta.is_file(), "plan.yaml is a regular file now");
    assert!(
        std::fs::symlink_metadata(plan_dir.join("artifacts"))
            .unwrap()
            .is_dir()
    );
    assert!(
        plan_dir
            .join("artifacts/cilium/values-migration.yaml")
            .is_file()
    );
}

#[test]
fn an_existing_empty_directory_is_used() {
    let work = tempfile::tempdir().unwrap();
    let out = cniswap(&[
        "snapshot",
        "--snapshot",
        &example("talos-1.14-multidoc"),
        "--out-dir",
        work.path().to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(work.path().join("talos/controlplane.yaml").is_file());
}
