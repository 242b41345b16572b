//! Property tests for the paths the node agent trusts (issue 10 §2, §3): backup entries and
//! directories from node configs never lead out of the backup or the root, whatever `..`,
//! absolute parts or symbolic links they hold.

#![allow(clippy::unwrap_used)] // a panic here is a failed test

use cniswap_node::paths::{confine, no_links_below, safe_relative};
use proptest::prelude::*;
use std::path::{Component, Path};

fn part() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("..".to_string()),
        Just(".".to_string()),
        Just(String::new()),
        Just("etc".to_string()),
        Just("cni".to_string()),
        Just("link".to_string()),
        "[a-z]{1,6}",
    ]
}

fn path() -> impl Strategy<Value = String> {
    (any::<bool>(), prop::collection::vec(part(), 0..8)).prop_map(|(absolute, parts)| {
        format!("{}{}", if absolute { "/" } else { "" }, parts.join("/"))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn accepted_backup_paths_stay_below_their_base(p in path()) {
        if let Ok(relative) = safe_relative(&p) {
            prop_assert!(relative.components().all(|c| matches!(c, Component::Normal(_))), "{p:?}");
            prop_assert!(!p.starts_with('/') && !p.split('/').any(|x| x == ".." || x.is_empty()));
        } else {
            prop_assert!(p.is_empty() || p.starts_with('/') || p.split('/').any(|x| x == ".." || x == "." || x.is_empty()));
        }
    }

    #[test]
    fn config_dirs_resolve_inside_the_root(p in path(), link_target in path()) {
        prop_assume!(!link_target.is_empty());
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("etc/cni")).unwrap();
        // A link somewhere on the way, pointing wherever the generator says (even out of root).
        std::os::unix::fs::symlink(&link_target, root.path().join("etc/link")).unwrap();
        std::os::unix::fs::symlink(&link_target, root.path().join("link")).unwrap();
        if let Ok(resolved) = confine(root.path(), &p) {
            let relative = Path::new(&resolved);
            prop_assert!(relative.components().all(|c| matches!(c, Component::Normal(_))), "{p:?} -> {resolved:?}");
            // Nothing on the way to it is a link any more.
            prop_assert!(no_links_below(root.path(), relative, false).is_ok(), "{p:?} -> {resolved:?}");
        }
    }
}
