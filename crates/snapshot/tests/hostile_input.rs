//! Snapshots are shared between people: a crafted one must end in a clear input error or a
//! listed skip, never in a hang, an abort, or a file read from outside it (issue 10 §5, §6,
//! §10, §11).

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use cniswap_snapshot::{load, load_paths};
use std::path::Path;
use std::time::{Duration, Instant};

fn write(root: &Path, rel: &str, content: impl AsRef<[u8]>) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, content).unwrap();
}

const NODE: &str = r#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}}"#;

fn mkfifo(path: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let status = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

#[test]
fn a_fifo_is_skipped_with_a_reason_not_read() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "cluster/nodes.json", NODE);
    mkfifo(&dir.path().join("cluster/pods.yaml"));
    mkfifo(&dir.path().join("talos/controlplane.yaml"));
    let start = Instant::now();
    let snapshot = load(dir.path()).unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(snapshot.objects.nodes.len(), 1);
    let reasons: Vec<_> = snapshot
        .skipped
        .iter()
        .filter(|s| s.reason.contains("FIFO"))
        .collect();
    assert_eq!(reasons.len(), 2, "{:?}", snapshot.skipped);
    // Named directly, it is an input error rather than a hang.
    let err = load(&dir.path().join("cluster/pods.yaml")).unwrap_err();
    assert!(err.message.contains("FIFO"), "{err}");
    let mut empty = cniswap_snapshot::Snapshot::default();
    assert!(load_paths(&mut empty, &[dir.path().join("talos/controlplane.yaml")]).is_err());
}

#[test]
fn links_out_of_the_tree_are_refused_and_links_inside_are_read() {
    let outside = tempfile::tempdir().unwrap();
    write(
        outside.path(),
        "shadow",
        "root:$6$secret:19000:0:99999:7:::\n",
    );
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "cluster/nodes.json", NODE);
    std::os::unix::fs::symlink(
        outside.path().join("shadow"),
        dir.path().join("cilium.yaml"),
    )
    .unwrap();
    let err = load(dir.path()).unwrap_err();
    assert!(err.message.contains("outside"), "{err}");
    assert!(!err.to_string().contains("secret"));

    // A linked directory inside the tree is read (once, even with a loop), not skipped.
    let repo = tempfile::tempdir().unwrap();
    write(
        repo.path(),
        "real/cilium/values.yaml",
        "cni:\n  exclusive: false\nkubeProxyReplacement: true\n",
    );
    std::os::unix::fs::symlink(repo.path().join("real/cilium"), repo.path().join("linked"))
        .unwrap();
    std::os::unix::fs::symlink(repo.path().join("real"), repo.path().join("real/loop")).unwrap();
    let mut snapshot = cniswap_snapshot::Snapshot::default();
    load_paths(&mut snapshot, &[repo.path().to_path_buf()]).unwrap();
    assert!(!snapshot.helm.is_empty());
    // A linked directory out of the tree is an input error, not a silent skip (exit 0).
    let repo2 = tempfile::tempdir().unwrap();
    write(
        repo2.path(),
        "a.yaml",
        "cni:\n  exclusive: true\nipam: {mode: kubernetes}\n",
    );
    std::os::unix::fs::symlink(outside.path(), repo2.path().join("elsewhere")).unwrap();
    let mut snapshot = cniswap_snapshot::Snapshot::default();
    assert!(load_paths(&mut snapshot, &[repo2.path().to_path_buf()]).is_err());
}

#[test]
fn encodings_get_a_clear_error_with_the_line() {
    let dir = tempfile::tempdir().unwrap();
    // A byte order mark is not "expected value at 1:1".
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend(NODE.as_bytes());
    write(dir.path(), "cluster/nodes.json", &bom);
    assert_eq!(load(dir.path()).unwrap().objects.nodes.len(), 1);

    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(NODE.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    write(dir.path(), "cluster/nodes.json", &utf16);
    let err = load(dir.path()).unwrap_err();
    assert!(
        err.message.contains("UTF-16") && err.help.contains("iconv"),
        "{err}"
    );

    // Invalid UTF-8 deep in a streamed file is reported at its line.
    let mut text = String::new();
    for i in 0..3000 {
        text.push_str(&format!(
            "---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: ns{i}\n"
        ));
    }
    let mut bytes = text.into_bytes();
    bytes.extend(b"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: \xff\xfe\n");
    write(dir.path(), "cluster/nodes.json", NODE);
    write(dir.path(), "cluster/namespaces.yaml", &bytes);
    let err = load(dir.path()).unwrap_err();
    assert!(err.message.contains("UTF-8"), "{err}");
    assert_eq!(err.line, Some(3000 * 5 + 5), "{err}");
}

#[test]
fn alias_bombs_and_deep_nesting_end_in_budget_errors() {
    let big = "x".repeat(64 * 1024);
    let mut bomb = format!("machine:\n  a: &big {big}\n  list:\n");
    for _ in 0..80_000 {
        bomb.push_str("    - *big\n");
    }
    for area in ["talos", "helm", "omni"] {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), &format!("{area}/x.yaml"), &bomb);
        let err = load(dir.path()).unwrap_err();
        assert!(
            err.help.contains("CNISWAP_MAX_ALIAS_EXPANSION"),
            "{area}: {err}"
        );
        assert!(err.line.is_some());
    }
    // In cluster/ (streamed), aliases are held to a few small ones.
    let mut stream = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: default\n  annotations:\n    x: &big {big}\n  labels:\n"
    );
    for i in 0..80_000 {
        stream.push_str(&format!("    l{i}: *big\n"));
    }
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "cluster/pods.yaml", &stream);
    let err = load(dir.path()).unwrap_err();
    assert!(err.message.to_lowercase().contains("alias"), "{err}");

    // The decoders recurse once per level up to the depth budget: like the CLI, which runs
    // its work on a thread with a large stack, give this one room for an unoptimised build.
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(|| {
            let deep = format!("machine:\n  x:\n  {}x\n", "- ".repeat(15_000));
            for area in ["talos", "cluster"] {
                let dir = tempfile::tempdir().unwrap();
                write(dir.path(), &format!("{area}/x.yaml"), &deep);
                let err = load(dir.path()).unwrap_err();
                assert!(err.help.contains("CNISWAP_MAX_DEPTH"), "{area}: {err}");
                assert_eq!(err.line, Some(3), "{area}: {err}");
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn oversized_configs_are_refused_and_large_dumps_outside_cluster_are_not_an_abort() {
    let dir = tempfile::tempdir().unwrap();
    let token = "t".repeat(17 << 20);
    write(
        dir.path(),
        "talos/controlplane.yaml",
        format!("machine:\n  token: {token}\n"),
    );
    let err = load(dir.path()).unwrap_err();
    assert!(err.help.contains("CNISWAP_MAX_FILE_BYTES"), "{err}");

    // A large YAML file outside cluster/ that is not a Kubernetes dump is skipped with the
    // budget that stopped it, not an abort claiming it "holds Kubernetes objects".
    let repo = tempfile::tempdir().unwrap();
    let mut values = String::from("cni:\n  exclusive: true\nextra:\n");
    while values.len() < (17 << 20) {
        values.push_str("  - some-long-list-entry-of-a-values-file\n");
    }
    write(repo.path(), "values.yaml", &values);
    write(
        repo.path(),
        "cilium.yaml",
        "cni:\n  exclusive: false\nkubeProxyReplacement: true\n",
    );
    let mut snapshot = cniswap_snapshot::Snapshot::default();
    load_paths(&mut snapshot, &[repo.path().to_path_buf()]).unwrap();
    let skipped = snapshot
        .skipped
        .iter()
        .find(|s| s.path.ends_with("values.yaml"))
        .expect("listed as skipped");
    assert!(
        skipped.reason.contains("CNISWAP_MAX_FILE_BYTES"),
        "{skipped:?}"
    );
}

#[test]
fn inventories_with_an_unknown_schema_or_a_hostile_name_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "cluster/nodes.json", NODE);
    let mut inventory = serde_json::to_value(cniswap_model::Inventory::default()).unwrap();
    inventory["schema_version"] = 99.into();
    write(dir.path(), "nodes/n1.json", inventory.to_string());
    let err = load(dir.path()).unwrap_err();
    assert!(err.message.contains("schema_version 99"), "{err}");
    std::fs::remove_file(dir.path().join("nodes/n1.json")).unwrap();
    inventory["schema_version"] = cniswap_model::INVENTORY_SCHEMA_VERSION.into();
    write(dir.path(), "nodes/n1.json", inventory.to_string());
    assert!(load(dir.path()).is_ok());
    std::fs::rename(
        dir.path().join("nodes/n1.json"),
        dir.path().join("nodes/n1;reboot.json"),
    )
    .unwrap();
    assert!(load(dir.path()).is_err());
}

#[test]
fn mistyped_values_are_errors_at_their_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "cluster/nodes.yaml",
        "apiVersion: v1\nkind: Node\nmetadata:\n  name: n1\nspec:\n  podCIDR: 42\n",
    );
    let err = load(dir.path()).unwrap_err();
    assert!(err.line.is_some(), "{err}");
    write(
        dir.path(),
        "cluster/nodes.yaml",
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: default\nspec:\n  hostNetwork: \"true\"\n",
    );
    let err = load(dir.path()).unwrap_err();
    assert!(err.line.is_some(), "{err}");
}
