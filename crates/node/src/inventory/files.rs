//! Files: CNI configs, plugin binaries, state directories, BPF pins; and which config the
//! container runtimes will load.

use super::CniDirs;
use crate::owner;
use cniswap_model::{CniConfigChoice, ConfigVerdict, Item, ItemKind, Owner};
use serde_json::json;
use std::path::Path;

/// Extensions libcni loads (`ConfFiles(dir, [".conf", ".conflist", ".json"])`).
const CONFIG_EXTENSIONS: &[&str] = &["conf", "conflist", "json"];

fn file_item(root: &Path, relative: &str, owner: Owner, why: String) -> Item {
    let is_dir = root.join(relative).is_dir();
    Item {
        kind: if is_dir {
            ItemKind::Directory
        } else {
            ItemKind::File
        },
        id: format!("{} /{relative}", if is_dir { "directory" } else { "file" }),
        owner,
        why,
        detail: json!({"path": relative}),
    }
}

fn sorted_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default();
    // Byte order, as libcni sorts.
    names.sort();
    names
}

pub fn collect(root: &Path, dirs: &CniDirs, items: &mut Vec<Item>, unreadable: &mut Vec<String>) {
    let conf_dir = root.join(&dirs.conf);
    let conf_is_cni = crate::paths::is_cni_dir(&dirs.conf);
    for name in sorted_names(&conf_dir) {
        let relative = format!("{}/{name}", dirs.conf);
        let path = conf_dir.join(&name);
        let (owner, why) = if !conf_is_cni {
            (Owner::Unknown, not_a_cni_dir(&dirs.conf, "config"))
        } else if let Some(what) = crate::paths::not_regular(&path) {
            (
                Owner::Unknown,
                format!("{what}, not a regular file: not read"),
            )
        } else if name.ends_with(".cilium_bak") {
            (
                Owner::Cilium,
                "another CNI's config renamed away by Cilium (cni.exclusive)".to_string(),
            )
        } else {
            let plugins = plugin_types(&crate::paths::read_regular(&path).unwrap_or_default());
            let owner = owner::conf_file(&name, &plugins.unwrap_or_default());
            (owner, format!("CNI config for {owner}"))
        };
        items.push(file_item(root, &relative, owner, why));
    }
    let bin_is_cni = crate::paths::is_cni_dir(&dirs.bin);
    let bundled = crate::paths::is_distribution_bin_dir(&dirs.bin);
    for name in sorted_names(&root.join(&dirs.bin)) {
        let owner = if bundled {
            Owner::CniPlugins
        } else if bin_is_cni {
            owner::binary(&name)
        } else {
            Owner::Unknown
        };
        let why = match owner {
            _ if bundled => format!(
                "bundled by k3s/RKE2 with the distribution (put back at its every start; {} if a CNI's): never removed",
                owner::binary(&name)
            ),
            _ if !bin_is_cni => not_a_cni_dir(&dirs.bin, "plugin"),
            Owner::CniPlugins => {
                "reference plugin shared by several CNIs: never removed".to_string()
            }
            Owner::Unknown if name == "install" => {
                "Calico's installer is named `install`, but so are other programs: never removed"
                    .to_string()
            }
            Owner::Unknown => "not a known plugin".to_string(),
            o => format!("{o} CNI plugin binary"),
        };
        items.push(file_item(root, &format!("{}/{name}", dirs.bin), owner, why));
    }
    // Resolved inside the root: `/var/run` is often a link to `/run`, and with `--root /host`
    // an absolute link must not lead into the agent's own filesystem.
    let mut seen = std::collections::HashSet::new();
    for (relative, owner) in owner::STATE_PATHS {
        let real = crate::paths::confine(root, relative)
            .unwrap_or_else(|_| crate::paths::lexical(relative));
        if std::fs::symlink_metadata(root.join(&real)).is_ok() && seen.insert(real.clone()) {
            items.push(file_item(root, &real, *owner, format!("{owner} state")));
        }
    }
    let bpffs = root.join("sys/fs/bpf");
    if bpffs.is_dir() {
        let mut stack = vec![bpffs.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(entries) = std::fs::read_dir(&dir) else {
                unreadable.push(format!("cannot list {}", dir.display()));
                continue;
            };
            for entry in entries.flatten() {
                let path = entry.path();
                // Never follow a link: a crafted root could loop, or lead anywhere.
                let Ok(file_type) = entry.file_type() else {
                    continue;
                };
                if file_type.is_dir() {
                    stack.push(path);
                    continue;
                }
                let relative = path
                    .strip_prefix(&bpffs)
                    .unwrap_or(&path)
                    .display()
                    .to_string();
                let owner = owner::bpf_pin(&relative);
                if owner == Owner::Unknown {
                    continue;
                }
                items.push(Item {
                    kind: ItemKind::BpfPin,
                    id: format!("bpf pin /sys/fs/bpf/{relative}"),
                    owner,
                    why: format!("{owner} pin"),
                    detail: json!({"path": format!("sys/fs/bpf/{relative}")}),
                });
            }
        }
    }
}

fn not_a_cni_dir(dir: &str, what: &str) -> String {
    format!("in /{dir}, which is not a CNI {what} directory (no `cni` in its path): never removed")
}

/// The `type` of every plugin in a conf or conflist; `None` when it does not parse or a plugin
/// has no type (containerd then loads no network at all).
pub fn plugin_types(text: &str) -> Option<Vec<String>> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    let plugins = match value.get("plugins") {
        Some(list) => list.as_array()?.clone(),
        None => vec![value],
    };
    plugins
        .iter()
        .map(|p| p.get("type")?.as_str().map(str::to_string))
        .collect()
}

fn verdict(root: &Path, dirs: &CniDirs, name: &str) -> ConfigVerdict {
    let path = root.join(&dirs.conf).join(name);
    let text = crate::paths::read_regular(&path);
    let (parses, plugins, error) = match text
        .as_deref()
        .map(serde_json::from_str::<serde_json::Value>)
    {
        None => (
            false,
            Vec::new(),
            Some(match crate::paths::not_regular(&path) {
                Some(what) => format!("{what}, not a regular file: not read"),
                None => "cannot be read".to_string(),
            }),
        ),
        Some(Err(e)) => (false, Vec::new(), Some(format!("not valid JSON: {e}"))),
        Some(Ok(_)) => match plugin_types(text.as_deref().unwrap_or_default()) {
            Some(types) if !types.is_empty() => (true, types, None),
            _ => (
                false,
                Vec::new(),
                Some("a plugin has no `type`".to_string()),
            ),
        },
    };
    let missing_binaries = plugins
        .iter()
        .filter(|t| !root.join(&dirs.bin).join(t).exists())
        .cloned()
        .collect();
    ConfigVerdict {
        file: format!("/{}/{name}", dirs.conf),
        owner: Some(owner::conf_file(name, &plugins)),
        parses,
        error,
        plugins,
        missing_binaries,
    }
}

/// What containerd (the lexically first file, valid or not) and CRI-O (the first file that
/// parses and whose binaries exist) will load.
pub fn config_choice(root: &Path, dirs: &CniDirs) -> CniConfigChoice {
    let files: Vec<String> = sorted_names(&root.join(&dirs.conf))
        .into_iter()
        .filter(|n| {
            n.rsplit_once('.')
                .is_some_and(|(_, ext)| CONFIG_EXTENSIONS.contains(&ext))
        })
        .collect();
    let containerd = files.first().map(|f| verdict(root, dirs, f));
    let crio = files
        .iter()
        .map(|f| verdict(root, dirs, f))
        .find(|v| v.parses && v.missing_binaries.is_empty());
    CniConfigChoice {
        conf_dir: format!("/{}", dirs.conf),
        bin_dir: format!("/{}", dirs.bin),
        dirs_from: dirs.from.clone(),
        files: files
            .iter()
            .map(|f| format!("/{}/{f}", dirs.conf))
            .collect(),
        containerd,
        crio,
    }
}

/// `FLANNEL_NETWORK` from `/run/flannel/subnet.env`, to recognise host-gw routes.
pub fn flannel_network(root: &Path) -> Option<ipnet::IpNet> {
    let text = crate::paths::read_regular(&root.join("run/flannel/subnet.env"))?;
    text.lines()
        .find_map(|l| l.strip_prefix("FLANNEL_NETWORK="))
        .and_then(|v| v.trim().parse().ok())
}
