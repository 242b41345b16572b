//! `cniswap node restore --backup DIR`: puts back what clean removed, in reverse order, and
//! says precisely what it cannot put back (pod veths, BPF programs and pins, neighbour
//! entries: the CNI agent recreates those when it starts).

use crate::clean::{Action, BACKUP_SCHEMA_VERSION, MANIFEST, Plan, io, move_path};
use crate::inventory::firewall_commands;
use crate::{NodeError, tools};
use serde_json::Value;
use std::path::Path;

#[derive(Debug, Default)]
pub struct Outcome {
    pub restored: Vec<String>,
    pub not_restored: Vec<String>,
}

/// A manifest larger than this is not one clean wrote.
const MAX_MANIFEST: u64 = 256 << 20;

pub fn read_plan(backup: &Path) -> Result<Plan, NodeError> {
    let path = backup.join(MANIFEST);
    let not_backup = |why: String| {
        NodeError::new(
            format!("{}: {why}", path.display()),
            "pass the directory that `cniswap node clean --backup DIR` wrote",
        )
    };
    crate::paths::no_links_below(backup, Path::new(MANIFEST), false).map_err(not_backup)?;
    if let Some(what) = crate::paths::not_regular(&path) {
        return Err(not_backup(format!("{what}, not a regular file")));
    }
    let text = read_manifest(&path).map_err(not_backup)?;
    let manifest: Value = serde_json::from_str(&text).map_err(|e| {
        NodeError::new(
            format!("{}: not a cniswap backup: {e}", path.display()),
            "check the --backup path",
        )
    })?;
    match manifest["schema_version"].as_u64() {
        Some(v) if v == u64::from(BACKUP_SCHEMA_VERSION) => {}
        other => {
            return Err(NodeError::new(
                format!(
                    "{}: backup schema_version {} is not one this cniswap restores ({BACKUP_SCHEMA_VERSION})",
                    path.display(),
                    other.map_or_else(|| manifest["schema_version"].to_string(), |v| v.to_string())
                ),
                "restore it with the cniswap version that wrote it; nothing was changed",
            ));
        }
    }
    serde_json::from_value(manifest["plan"].clone()).map_err(|e| {
        NodeError::new(
            format!("{}: unreadable plan: {e}", path.display()),
            "the backup was written by another cniswap version",
        )
    })
}

fn read_manifest(path: &Path) -> Result<String, String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(|e| e.to_string())?;
    if !file.metadata().map_err(|e| e.to_string())?.is_file() {
        return Err("not a regular file".into());
    }
    let mut text = String::new();
    file.take(MAX_MANIFEST + 1)
        .read_to_string(&mut text)
        .map_err(|e| e.to_string())?;
    if text.len() as u64 > MAX_MANIFEST {
        return Err(format!(
            "larger than {MAX_MANIFEST} bytes: not a cniswap backup"
        ));
    }
    Ok(text)
}

/// Checks every entry of a backup before anything is touched: a backup is untrusted input. Each
/// file must be a plain relative path that resolves inside the backup and inside the root with
/// no symbolic link on the way, and every device name must be one the kernel accepts.
pub fn check_plan(plan: &Plan, backup: &Path, root: &Path) -> Result<(), NodeError> {
    let refuse = |what: String| {
        NodeError::new(
            format!("backup {}: {what}; nothing was changed", backup.display()),
            "this is not a backup `cniswap node clean` wrote: restore by hand after checking it",
        )
    };
    for action in &plan.actions {
        match action {
            Action::FileMove { path } => {
                let relative = crate::paths::safe_relative(path)
                    .map_err(|why| refuse(format!("file path {path:?} {why}")))?;
                crate::paths::no_links_below(&backup.join("files"), &relative, true)
                    .and_then(|()| crate::paths::no_links_below(backup, Path::new("files"), false))
                    .map_err(|why| refuse(format!("saved file {path:?}: {why}")))?;
                if std::fs::symlink_metadata(backup.join("files").join(&relative)).is_err() {
                    return Err(refuse(format!("saved file {path:?} is not in the backup")));
                }
                crate::paths::no_links_below(root, &relative, false)
                    .map_err(|why| refuse(format!("file path {path:?}: {why}")))?;
            }
            Action::LinkDelete { name, detail } => {
                interface_name(name).map_err(|why| refuse(format!("link {name:?} {why}")))?;
                if let Some(master) = detail["master"].as_str() {
                    interface_name(master)
                        .map_err(|why| refuse(format!("link master {master:?} {why}")))?;
                }
            }
            Action::AddressDrop { dev, address } => {
                interface_name(dev).map_err(|why| refuse(format!("device {dev:?} {why}")))?;
                plain_argument(address).map_err(|why| refuse(format!("address {why}")))?;
            }
            Action::RouteDelete { spec, .. } | Action::RuleDelete { spec, .. } => {
                plain_argument(spec).map_err(|why| refuse(format!("route or rule {why}")))?;
            }
            _ => {}
        }
    }
    Ok(())
}

/// A Linux interface name: 1-15 bytes, no `/`, whitespace or control characters.
fn interface_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > 15 || name == "." || name == ".." {
        return Err("is not an interface name (1-15 characters)".into());
    }
    if name
        .chars()
        .any(|c| c == '/' || c == ':' || c.is_whitespace() || c.is_control())
    {
        return Err("is not an interface name (no '/', ':', spaces or control characters)".into());
    }
    Ok(())
}

/// Text passed to `ip` as arguments: one line, no control characters.
fn plain_argument(text: &str) -> Result<(), String> {
    if text.chars().any(char::is_control) {
        return Err(format!("{text:?} contains control characters"));
    }
    Ok(())
}

/// Puts back what `node clean` removed: files under `root`; and the network state (links,
/// addresses, routes, rules, nft, ipset, iptables) in this network namespace when it is the
/// root's host's (see [`network_is_roots`]) or `network_here` says so.
///
/// Once it has run, the backup is marked as restored ([`RESTORED_MARKER`]): the node holds
/// again what it holds, and a later `node clean` into the same directory retires it (renamed
/// aside, kept) instead of refusing, so a plan run again after its rollback can clean again.
pub fn restore(backup: &Path, root: &Path, network_here: bool) -> Result<Outcome, NodeError> {
    let outcome = put_back(backup, root, network_here)?;
    let marker = backup.join(RESTORED_MARKER);
    let text: String = outcome
        .restored
        .iter()
        .map(|item| format!("restored {item}\n"))
        .chain(
            outcome
                .not_restored
                .iter()
                .map(|item| format!("not restored {item}\n")),
        )
        .collect();
    std::fs::write(&marker, text).map_err(|e| io(&marker, e))?;
    Ok(outcome)
}

/// The file a finished restore leaves in its backup directory.
pub const RESTORED_MARKER: &str = "restored";

fn put_back(backup: &Path, root: &Path, network_here: bool) -> Result<Outcome, NodeError> {
    let plan = read_plan(backup)?;
    check_plan(&plan, backup, root)?;
    let mut outcome = Outcome::default();

    for action in &plan.actions {
        match action {
            Action::FileMove { path } => {
                let relative = crate::paths::safe_relative(path)
                    .map_err(|why| NodeError::new(format!("{path}: {why}"), "check the backup"))?;
                let target = root.join(&relative);
                if std::fs::symlink_metadata(&target).is_ok() {
                    outcome.not_restored.push(format!("/{path}: something exists there now; the saved copy stays in the backup"));
                    continue;
                }
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io(parent, e))?;
                }
                // Checked again right before the move: nothing may have planted a link since.
                crate::paths::no_links_below(root, &relative, false)
                    .map_err(|why| NodeError::new(why, "check the root; the saved copy stays in the backup"))?;
                move_path(&backup.join("files").join(&relative), &target)?;
                outcome.restored.push(format!("/{path}"));
            }
            Action::BpfPinRemove { path } => outcome
                .not_restored
                .push(format!("BPF pin /{path}: map contents cannot be recreated; the agent recreates its maps when it starts")),
            Action::TcFilterDelete { dev, name, .. } => outcome
                .not_restored
                .push(format!("tc program {name} on {dev}: the agent reattaches it when it starts")),
            _ => {}
        }
    }

    // With --root the files may belong to another machine (a node's disk mounted here): the
    // network state is recreated only where it provably belongs, never on whatever host this
    // happens to run on. The rest is listed.
    if !network_here && !network_is_roots(root) {
        for action in &plan.actions {
            if kernel_object(action) {
                outcome.not_restored.push(format!(
                    "{}: not recreated: this network namespace is not the one of the host at --root {} (run `cniswap node restore` on that node, or add --network-here if this is its network namespace)",
                    action.describe(),
                    root.display()
                ));
            }
        }
        return Ok(outcome);
    }

    // Links before their addresses and routes.
    for action in &plan.actions {
        if let Action::LinkDelete { name, detail } = action {
            match link_add_command(name, detail) {
                                Some(command) => {
                    let args: Vec<&str> = command.iter().map(String::as_str).collect();
                    if let Err(e) = tools::run("ip", &args, None) {
                        outcome.not_restored.push(format!("link {name}: {}", e.message));
                        continue;
                    }
                    if let Some(mtu) = detail["mtu"].as_u64() {
                        tools::run("ip", &["link", "set", name, "mtu", &mtu.to_string()], None)?;
                    }
                    if let Some(master) = detail["master"].as_str() {
                        let _ = tools::run("ip", &["link", "set", name, "master", master], None);
                    }
                    if detail["up"] == true {
                        tools::run("ip", &["link", "set", name, "up"], None)?;
                    }
                    outcome.restored.push(format!("link {name}"));
                }
                None => outcome.not_restored.push(format!(
                    "link {name} ({}): pod interfaces and agent-made devices are recreated by the CNI, not by restore",
                    detail["kind"].as_str().unwrap_or("device")
                )),
            }
        }
    }
    for action in &plan.actions {
        if let Action::AddressDrop { dev, address } = action
            && tools::run("ip", &["addr", "add", address, "dev", dev], None).is_ok()
        {
            outcome.restored.push(format!("address {address} on {dev}"));
        }
    }
    for family in ["-4", "-6"] {
        for action in &plan.actions {
            match action {
                // Kernel routes come back with their address and link.
                Action::RouteDelete {
                    family: f, spec, ..
                } if f == family && !spec.contains("proto kernel") => {
                    let mut args = vec![family, "route", "add"];
                    args.extend(spec.split_whitespace());
                    match tools::run("ip", &args, None) {
                        Ok(_) => outcome.restored.push(format!("route {spec}")),
                        Err(e) => outcome
                            .not_restored
                            .push(format!("route {spec}: {}", e.message)),
                    }
                }
                Action::RuleDelete {
                    family: f, spec, ..
                } if f == family => {
                    let mut args = vec![family, "rule", "add"];
                    args.extend(spec.split_whitespace());
                    tools::run("ip", &args, None)?;
                    outcome.restored.push(format!("ip rule {spec}"));
                }
                _ => {}
            }
        }
    }
    for action in &plan.actions {
        match action {
            Action::NftTableDelete {
                family,
                name,
                saved,
            } => {
                tools::run("nft", &["-f", "-"], Some(saved))?;
                outcome.restored.push(format!("nft table {family} {name}"));
            }
            Action::IpsetDestroy { name, saved } => {
                tools::run("ipset", &["restore"], Some(saved))?;
                outcome.restored.push(format!("ipset {name}"));
            }
            _ => {}
        }
    }
    // iptables last: the sets its rules match must exist again.
    for action in &plan.actions {
        if let Action::IptablesTable {
            backend,
            family,
            table,
            removed_chains,
            removed_rules,
            ..
        } = action
        {
            let restore = firewall_commands()
                .iter()
                .find(|(b, f, _, _)| b == backend && f == family)
                .map(|(_, _, _, r)| *r)
                .unwrap_or("iptables-restore");
            let input = crate::iptables::additions(
                table,
                removed_chains.iter().map(String::as_str),
                removed_rules.iter().map(String::as_str),
            );
            tools::run(restore, &["-c", "--noflush"], Some(&input))?;
            outcome.restored.push(format!(
                "iptables {backend} {family} {table}: {} chain(s), {} rule(s) (appended; order within built-in chains may differ)",
                removed_chains.len(),
                removed_rules.len()
            ));
        }
    }
    Ok(outcome)
}

/// Whether this process's network namespace is the one of the host whose filesystem is at
/// `root`: `root` is `/`, or the root's procfs shows its init process in our namespace (the
/// agent pod: hostNetwork and hostPID, the host's `/` at /host).
pub fn network_is_roots(root: &Path) -> bool {
    if std::fs::canonicalize(root).is_ok_and(|r| r == Path::new("/")) {
        return true;
    }
    match (
        std::fs::read_link(root.join("proc/1/ns/net")),
        std::fs::read_link("/proc/self/ns/net"),
    ) {
        (Ok(theirs), Ok(ours)) => theirs == ours,
        _ => false,
    }
}

/// The actions a restore undoes with ip, nft, ipset or iptables.
fn kernel_object(action: &Action) -> bool {
    matches!(
        action,
        Action::LinkDelete { .. }
            | Action::AddressDrop { .. }
            | Action::RouteDelete { .. }
            | Action::RuleDelete { .. }
            | Action::NftTableDelete { .. }
            | Action::IpsetDestroy { .. }
            | Action::IptablesTable { .. }
    )
}

/// `ip link add` for devices that restore can recreate from their saved parameters.
fn link_add_command(name: &str, detail: &Value) -> Option<Vec<String>> {
    let kind = detail["kind"].as_str()?;
    let data = &detail["info_data"];
    let mut cmd: Vec<String> = vec!["link".into(), "add".into(), name.into()];
    if let Some(mac) = detail["address"]
        .as_str()
        .filter(|_| matches!(kind, "vxlan" | "bridge" | "dummy"))
    {
        cmd.extend(["address".into(), mac.into()]);
    }
    cmd.extend(["type".into(), kind.into()]);
    match kind {
        "vxlan" => {
            cmd.extend(["id".into(), data["id"].as_u64()?.to_string()]);
            if let Some(port) = data["port"].as_u64() {
                cmd.extend(["dstport".into(), port.to_string()]);
            }
            if let Some(local) = data["local"].as_str() {
                cmd.extend(["local".into(), local.into()]);
            }
            if let Some(link) = data["link"].as_str() {
                cmd.extend(["dev".into(), link.into()]);
            }
            if data["learning"] == false {
                cmd.push("nolearning".into());
            }
            Some(cmd)
        }
        "bridge" | "dummy" => Some(cmd),
        "ipip" => {
            if let Some(local) = data["local"].as_str().filter(|l| *l != "any") {
                cmd.extend(["local".into(), local.into()]);
            }
            Some(cmd)
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clean::Plan;

    /// A backup whose manifest moves `paths` (with a saved file for each where possible).
    fn backup(dir: &Path, paths: &[&str], schema: u64) {
        let plan = Plan {
            cni: "flannel".into(),
            actions: paths
                .iter()
                .map(|p| Action::FileMove {
                    path: p.to_string(),
                })
                .collect(),
            ..Plan::default()
        };
        std::fs::create_dir_all(dir.join("files")).unwrap();
        std::fs::write(
            dir.join(MANIFEST),
            serde_json::json!({"schema_version": schema, "plan": plan}).to_string(),
        )
        .unwrap();
    }

    fn tree(dir: &Path) -> Vec<String> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap().flatten() {
                out.push(e.path().display().to_string());
                if e.file_type().unwrap().is_dir() {
                    stack.push(e.path());
                }
            }
        }
        out.sort();
        out
    }

    #[test]
    fn paths_out_of_the_backup_or_the_root_are_refused_before_anything_changes() {
        let top = tempfile::tempdir().unwrap();
        let (b, root) = (top.path().join("backup"), top.path().join("root"));
        std::fs::create_dir_all(root.join("etc/cni/net.d")).unwrap();
        std::fs::write(top.path().join("victim.txt"), "keep me").unwrap();
        std::fs::create_dir_all(b.join("X")).unwrap();
        std::fs::write(b.join("X/evil.conf"), "{}").unwrap();
        for bad in [
            "../X/evil.conf",
            "../../victim.txt",
            "/etc/cni/net.d/10-evil.conflist",
            "deep/../../../victim.txt",
        ] {
            // A good entry first: it must not be restored either.
            std::fs::create_dir_all(b.join("files/etc/cni/net.d")).unwrap();
            std::fs::write(b.join("files/etc/cni/net.d/10-flannel.conflist"), "{}").unwrap();
            backup(&b, &["etc/cni/net.d/10-flannel.conflist", bad], 1);
            let before = (
                tree(top.path()),
                std::fs::read_to_string(top.path().join("victim.txt")).unwrap(),
            );
            let err = restore(&b, &root, false).unwrap_err();
            assert!(
                err.message.contains("nothing was changed"),
                "{bad}: {}",
                err.message
            );
            assert_eq!(
                before,
                (
                    tree(top.path()),
                    std::fs::read_to_string(top.path().join("victim.txt")).unwrap()
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn links_inside_the_backup_or_the_root_are_refused() {
        let top = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let (b, root) = (top.path().join("backup"), top.path().join("root"));
        // The saved file sits behind a link to somewhere else.
        std::fs::create_dir_all(b.join("files/etc/cni")).unwrap();
        std::fs::create_dir_all(outside.path().join("net.d")).unwrap();
        std::fs::write(outside.path().join("net.d/x.conf"), "{}").unwrap();
        std::os::unix::fs::symlink(outside.path().join("net.d"), b.join("files/etc/cni/net.d"))
            .unwrap();
        std::fs::create_dir_all(&root).unwrap();
        backup(&b, &["etc/cni/net.d/x.conf"], 1);
        assert!(restore(&b, &root, false).is_err());
        assert!(outside.path().join("net.d/x.conf").exists(), "not moved");

        // The target directory is a link out of the root.
        let top = tempfile::tempdir().unwrap();
        let (b, root) = (top.path().join("backup"), top.path().join("root"));
        std::fs::create_dir_all(b.join("files/etc/cni/net.d")).unwrap();
        std::fs::write(b.join("files/etc/cni/net.d/x.conf"), "{}").unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::os::unix::fs::symlink(outside.path(), root.join("etc/cni")).unwrap();
        backup(&b, &["etc/cni/net.d/x.conf"], 1);
        assert!(restore(&b, &root, false).is_err());
        assert!(
            !outside.path().join("net.d/x.conf").exists()
                || std::fs::read_to_string(outside.path().join("net.d/x.conf")).unwrap() == "{}"
        );
        assert!(
            b.join("files/etc/cni/net.d/x.conf").exists(),
            "the saved copy stays"
        );
    }

    #[test]
    fn an_unknown_schema_version_is_refused() {
        let top = tempfile::tempdir().unwrap();
        backup(top.path(), &[], 99);
        let err = restore(top.path(), top.path(), false).unwrap_err();
        assert!(err.message.contains("schema_version 99"), "{}", err.message);
    }

    #[test]
    fn with_a_root_only_files_are_restored_never_the_hosts_kernel_objects() {
        let top = tempfile::tempdir().unwrap();
        let (b, root) = (top.path().join("backup"), top.path().join("root"));
        let name = format!("cnsw{}", std::process::id() % 100_000);
        let plan = Plan {
            cni: "flannel".into(),
            actions: vec![
                Action::LinkDelete {
                    name: name.clone(),
                    detail: serde_json::json!({"kind": "dummy", "up": true}),
                },
                Action::RouteDelete {
                    family: "-4".into(),
                    spec: format!("198.51.100.0/24 dev {name}"),
                    implicit: false,
                },
            ],
            ..Plan::default()
        };
        std::fs::create_dir_all(b.join("files")).unwrap();
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(
            b.join(MANIFEST),
            serde_json::json!({"schema_version": BACKUP_SCHEMA_VERSION, "plan": plan}).to_string(),
        )
        .unwrap();
        let outcome = restore(&b, &root, false).unwrap();
        assert!(outcome.restored.is_empty(), "{outcome:?}");
        assert_eq!(outcome.not_restored.len(), 2, "{outcome:?}");
        assert!(
            outcome.not_restored[0].contains("--network-here"),
            "{outcome:?}"
        );
        // The host has no such link (the old code ran `ip link add` here).
        assert!(!Path::new(&format!("/sys/class/net/{name}")).exists());
    }

    #[test]
    fn a_good_backup_restores_its_files() {
        let top = tempfile::tempdir().unwrap();
        let (b, root) = (top.path().join("backup"), top.path().join("root"));
        std::fs::create_dir_all(b.join("files/etc/cni/net.d")).unwrap();
        std::fs::write(b.join("files/etc/cni/net.d/10-flannel.conflist"), "{}").unwrap();
        std::fs::create_dir_all(&root).unwrap();
        backup(&b, &["etc/cni/net.d/10-flannel.conflist"], 1);
        let outcome = restore(&b, &root, false).unwrap();
        assert_eq!(outcome.restored, vec!["/etc/cni/net.d/10-flannel.conflist"]);
        assert!(root.join("etc/cni/net.d/10-flannel.conflist").exists());
    }
}
