//! Loaders never panic: arbitrary bytes and every kind of truncation of real snapshot files
//! end in Ok or a positioned InputError.

#![allow(clippy::unwrap_used)] // a panic here is a failed test

use proptest::prelude::*;
use std::path::Path;

fn example_files() -> Vec<(String, Vec<u8>)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
    let mut files = Vec::new();
    let mut stack = vec![root];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "yaml" || e == "json") {
                files.push((
                    path.file_name().unwrap().to_string_lossy().into_owned(),
                    std::fs::read(&path).unwrap(),
                ));
            }
        }
    }
    files.sort();
    files
}

fn load_bytes(area: &str, name: &str, bytes: &[u8]) -> Result<(), cniswap_snapshot::InputError> {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join(area);
    std::fs::create_dir_all(&sub).unwrap();
    std::fs::write(sub.join(name), bytes).unwrap();
    cniswap_snapshot::load(dir.path()).map(|_| ())
}

fn check(result: Result<(), cniswap_snapshot::InputError>) {
    if let Err(e) = result {
        assert!(!e.message.is_empty() && !e.help.is_empty(), "{e:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..512), area in prop::sample::select(vec!["cluster", "talos", "omni", "helm", "nodes", "elsewhere"]), ext in prop::sample::select(vec!["yaml", "json", "patch", "j2"])) {
        check(load_bytes(area, &format!("file.{ext}"), &bytes));
    }

    #[test]
    fn truncated_examples_never_panic(index in 0usize..64, cut in 0.0f64..1.0, area in prop::sample::select(vec!["cluster", "talos", "elsewhere"])) {
        let files = example_files();
        let (name, bytes) = &files[index % files.len()];
        let end = (bytes.len() as f64 * cut) as usize;
        check(load_bytes(area, name, &bytes[..end]));
    }
}

#[test]
fn every_example_file_loads_where_it_belongs() {
    for (name, bytes) in example_files() {
        let area = if bytes.starts_with(b"# talosctl") || name.contains("patch") {
            "talos"
        } else if name == "cilium.yaml" {
            "helm"
        } else {
            "cluster"
        };
        load_bytes(area, &name, &bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
    }
}
