//! Names the plan derives from cluster names: file names under `backups/` and pod names. A
//! value from a snapshot is never trusted as a path component or an object name: it is used
//! as it is only when it is a plain DNS label, else replaced by a digest.

use sha2::{Digest, Sha256};

/// `1 node`, `3 nodes`.
pub fn count(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// Hex SHA-256 of a text.
pub fn sha256(text: &str) -> String {
    let digest = Sha256::digest(text.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn is_dns_label(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

/// A path component for `value`: the value itself when it is a DNS label (or subdomain without
/// `..`), else `x-` and 12 hex digits of its digest. Never `.`, `..`, empty or with a `/`.
pub fn file_part(value: &str) -> String {
    let subdomain =
        !value.is_empty() && value.len() <= 200 && value.split('.').all(|l| is_dns_label(l, 63));
    if subdomain {
        value.to_string()
    } else {
        format!("x-{}", &sha256(value)[..12])
    }
}

/// A pod name `cniswap-<purpose>-<node>` that is a valid DNS label (63 characters): the node
/// name when it fits, else a digest of it.
pub fn pod_name(purpose: &str, node: &str) -> String {
    let plain = format!("cniswap-{purpose}-{node}");
    if is_dns_label(&plain, 63) {
        plain
    } else {
        format!("cniswap-{purpose}-{}", &sha256(node)[..12])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_never_become_paths() {
        for hostile in [
            "..",
            ".",
            "",
            "a/../../etc",
            "w1;rm",
            "A",
            "x\ny",
            &"a".repeat(300),
        ] {
            let part = file_part(hostile);
            assert!(!part.contains('/') && part != "." && part != ".." && !part.is_empty());
            assert!(part.starts_with("x-"), "{hostile:?} -> {part}");
        }
        assert_eq!(file_part("kube-system"), "kube-system");
        assert_eq!(
            file_part("ippools.crd.projectcalico.org"),
            "ippools.crd.projectcalico.org"
        );
    }

    #[test]
    fn pod_names_are_dns_labels() {
        assert_eq!(pod_name("clean", "talos-w-1"), "cniswap-clean-talos-w-1");
        let long = pod_name("clean", &"n".repeat(80));
        assert!(long.len() <= 63 && is_dns_label(&long, 63), "{long}");
        let hostile = pod_name("clean", "w1;touch x");
        assert!(is_dns_label(&hostile, 63), "{hostile}");
    }
}
