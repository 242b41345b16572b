//! Where this node's container runtime looks for CNI configs and plugins. containerd's
//! defaults are /etc/cni/net.d and /opt/cni/bin, but its config can move them, and k3s and
//! RKE2 run their own containerd with a generated config (k3s: under /var/lib/rancher/k3s).

use std::path::Path;

/// containerd configs, most specific first: k3s and RKE2 write their own.
const CONTAINERD_CONFIGS: &[&str] = &[
    "var/lib/rancher/k3s/agent/etc/containerd/config.toml",
    "var/lib/rancher/rke2/agent/etc/containerd/config.toml",
    "etc/containerd/config.toml",
];

/// containerd's CRI plugin: 1.x/2.0 config (`version = 2`), then 2.x (`version = 3`).
const CRI_PLUGINS: &[&str] = &["io.containerd.grpc.v1.cri", "io.containerd.cri.v1.runtime"];

pub const DEFAULT_CONF_DIR: &str = "etc/cni/net.d";
pub const DEFAULT_BIN_DIR: &str = "opt/cni/bin";

/// CNI directories relative to the root, and where they came from.
#[derive(Debug, Clone, PartialEq)]
pub struct CniDirs {
    pub conf: String,
    pub bin: String,
    /// The config file that set them, or None for the defaults.
    pub from: Option<String>,
}

/// The CNI directories, resolved inside `root` (a `..` or a symbolic link in a config never
/// leads out of it).
pub fn cni_dirs(root: &Path) -> CniDirs {
    let confined =
        |dir: &str| crate::paths::confine(root, dir).unwrap_or_else(|_| crate::paths::lexical(dir));
    for config in CONTAINERD_CONFIGS {
        let Some(text) = crate::paths::read_regular(&root.join(config)) else {
            continue;
        };
        if let Some((conf, bin)) = from_containerd_config(&text) {
            return CniDirs {
                conf: confined(conf.as_deref().unwrap_or(DEFAULT_CONF_DIR)),
                bin: confined(bin.as_deref().unwrap_or(DEFAULT_BIN_DIR)),
                from: Some(format!("/{config}")),
            };
        }
    }
    CniDirs {
        conf: confined(DEFAULT_CONF_DIR),
        bin: confined(DEFAULT_BIN_DIR),
        from: None,
    }
}

/// (conf_dir, bin_dir) from a containerd config, relative; None when it sets neither or does
/// not parse (the defaults then apply, as containerd would use them).
fn from_containerd_config(text: &str) -> Option<(Option<String>, Option<String>)> {
    let config: toml::Table = text.parse().ok()?;
    let plugins = config.get("plugins")?.as_table()?;
    let cni = CRI_PLUGINS
        .iter()
        .find_map(|p| plugins.get(*p)?.as_table()?.get("cni")?.as_table())?;
    let relative = |v: &toml::Value| {
        v.as_str()
            .map(|s| s.trim_start_matches('/').trim_end_matches('/').to_string())
    };
    let conf = cni.get("conf_dir").and_then(relative);
    // containerd 2.x takes a list (`bin_dirs`); the first directory is where plugins are found first.
    let bin = cni
        .get("bin_dir")
        .and_then(relative)
        .or_else(|| cni.get("bin_dirs")?.as_array()?.first().and_then(relative));
    (conf.is_some() || bin.is_some()).then_some((conf, bin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn k3s_config_moves_the_dirs() {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("var/lib/rancher/k3s/agent/etc/containerd");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(
            config.join("config.toml"),
            "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"/var/lib/rancher/k3s/data/current/bin\"\n  conf_dir = \"/var/lib/rancher/k3s/agent/etc/cni/net.d\"\n",
        )
        .unwrap();
        let dirs = cni_dirs(dir.path());
        assert_eq!(dirs.conf, "var/lib/rancher/k3s/agent/etc/cni/net.d");
        assert_eq!(dirs.bin, "var/lib/rancher/k3s/data/current/bin");
        assert_eq!(
            dirs.from.as_deref(),
            Some("/var/lib/rancher/k3s/agent/etc/containerd/config.toml")
        );
    }

    #[test]
    fn containerd_2_bin_dirs_and_defaults() {
        let v3 = "version = 3\n[plugins.'io.containerd.cri.v1.runtime'.cni]\n  bin_dirs = ['/usr/libexec/cni', '/opt/cni/bin']\n";
        assert_eq!(
            from_containerd_config(v3),
            Some((None, Some("usr/libexec/cni".into())))
        );
        // A config that does not touch CNI, or does not parse, leaves the defaults.
        assert_eq!(
            from_containerd_config(
                "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\"]\n  sandbox_image = \"pause\"\n"
            ),
            None
        );
        assert_eq!(from_containerd_config("not toml ["), None);
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            cni_dirs(dir.path()),
            CniDirs {
                conf: DEFAULT_CONF_DIR.into(),
                bin: DEFAULT_BIN_DIR.into(),
                from: None
            }
        );
    }
}
