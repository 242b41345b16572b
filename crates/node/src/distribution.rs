//! k3s and RKE2 nodes. k3s runs Flannel, kube-proxy and a network policy controller inside its
//! own process (`k3s-server` / `k3s-agent`), so no `flanneld` or `kube-proxy` process shows
//! that they run; RKE2 runs its CNI and kube-proxy as pods, which show as processes. Both
//! unpack their bundled CNI plugins (links to one multi-call binary) into
//! `var/lib/rancher/<k3s|rke2>/data/<version>/bin`, which is theirs: never removed.
//!
//! Whether k3s' embedded Flannel runs now: k3s writes Flannel's `net-conf.json` under
//! `agent/etc/flannel` each time it starts Flannel, so a file written after the k3s process
//! started means this process runs Flannel; an older file (or none) means it did not start it.

use std::path::Path;

pub struct Distribution {
    pub name: &'static str,
    /// Its data directory, relative to the root.
    pub data_dir: &'static str,
    /// Whether its own process runs Flannel and kube-proxy (k3s), or pods do (RKE2).
    pub embeds_network: bool,
}

pub const K3S: Distribution = Distribution {
    name: "k3s",
    data_dir: "var/lib/rancher/k3s",
    embeds_network: true,
};

pub const RKE2: Distribution = Distribution {
    name: "RKE2",
    data_dir: "var/lib/rancher/rke2",
    embeds_network: false,
};

/// Flannel's config as k3s writes it when it starts its embedded Flannel.
pub const K3S_FLANNEL_CONF: &str = "var/lib/rancher/k3s/agent/etc/flannel/net-conf.json";

/// The distribution whose agent directory is on this root.
pub fn detect(root: &Path) -> Option<&'static Distribution> {
    [&K3S, &RKE2]
        .into_iter()
        .find(|d| root.join(d.data_dir).join("agent").is_dir())
}

/// A k3s process by its `comm` (k3s names itself `k3s-server` or `k3s-agent`).
pub fn is_k3s_process(comm: &str) -> bool {
    matches!(comm, "k3s-server" | "k3s-agent" | "k3s")
}

/// Whether the k3s process `pid` started its embedded Flannel: Flannel's config was written
/// after the process started. `None` when the start time cannot be read.
pub fn k3s_runs_flannel(root: &Path, pid: u32) -> Option<bool> {
    let started = process_start(root, pid)?;
    let written = match std::fs::metadata(root.join(K3S_FLANNEL_CONF)) {
        Ok(m) => m.modified().ok()?,
        Err(_) => return Some(false),
    };
    Some(written >= started)
}

/// kube-proxy's health port: k3s' embedded kube-proxy serves it from the k3s process.
const KUBE_PROXY_HEALTH_PORT: u16 = 10256;

/// Whether the k3s process `pid` runs its embedded kube-proxy: it holds the socket listening
/// on kube-proxy's health port. `None` when a socket listens there but the process' open
/// files cannot be read.
pub fn k3s_runs_kube_proxy(root: &Path, pid: u32) -> Option<bool> {
    let inodes = listening_inodes(root, KUBE_PROXY_HEALTH_PORT);
    if inodes.is_empty() {
        return Some(false);
    }
    let fds = std::fs::read_dir(root.join(format!("proc/{pid}/fd"))).ok()?;
    Some(fds.flatten().any(|fd| {
        std::fs::read_link(fd.path()).is_ok_and(|target| {
            let target = target.to_string_lossy();
            inodes.iter().any(|i| target == format!("socket:[{i}]"))
        })
    }))
}

/// Inodes of TCP sockets listening on `port` (`/proc/net/tcp` and `tcp6`: local address in
/// hex, state 0A, inode in the tenth column).
fn listening_inodes(root: &Path, port: u16) -> Vec<String> {
    let suffix = format!(":{port:04X}");
    ["proc/net/tcp", "proc/net/tcp6"]
        .iter()
        .filter_map(|f| crate::paths::read_regular(&root.join(f)))
        .flat_map(|text| {
            text.lines()
                .skip(1)
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split_whitespace().collect();
                    (fields.len() > 9 && fields[1].ends_with(&suffix) && fields[3] == "0A")
                        .then(|| fields[9].to_string())
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

/// When a process started: boot time (`/proc/stat` btime) plus its start in clock ticks
/// (`/proc/<pid>/stat` field 22; the kernel's USER_HZ is 100 on Linux).
fn process_start(root: &Path, pid: u32) -> Option<std::time::SystemTime> {
    let stat = crate::paths::read_regular(&root.join(format!("proc/{pid}/stat")))?;
    // The command name (field 2) is in parentheses and may hold spaces: fields after it.
    let after = stat.rsplit_once(')')?.1;
    let ticks: u64 = after.split_whitespace().nth(19)?.parse().ok()?;
    let boot = crate::paths::read_regular(&root.join("proc/stat"))?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))?
        .trim()
        .parse::<u64>()
        .ok()?;
    let millis = boot * 1000 + ticks * 10;
    Some(std::time::UNIX_EPOCH + std::time::Duration::from_millis(millis))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(root: &Path, file: &str, text: &str) {
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().unwrap_or(root)).unwrap_or_else(|e| panic!("{e}"));
        std::fs::write(path, text).unwrap_or_else(|e| panic!("{e}"));
    }

    /// A process started `ago` seconds before now.
    fn process(root: &Path, pid: u32, ago: u64) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default();
        let boot = now - 10_000;
        write(root, "proc/stat", &format!("cpu 1 2 3\nbtime {boot}\n"));
        let ticks = (10_000 - ago) * 100;
        write(
            root,
            &format!("proc/{pid}/stat"),
            &format!(
                "{pid} (k3s server) S 1 1 1 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 30 0 {ticks} 1 1\n"
            ),
        );
    }

    #[test]
    fn flannel_runs_when_k3s_wrote_its_config_after_starting() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path();
        std::fs::create_dir_all(root.join("var/lib/rancher/k3s/agent")).unwrap_or_default();
        assert_eq!(detect(root).map(|d| d.name), Some("k3s"));
        process(root, 300, 60);
        // No config: this process did not start Flannel (flannel-backend: none).
        assert_eq!(k3s_runs_flannel(root, 300), Some(false));
        write(root, K3S_FLANNEL_CONF, "{}");
        assert_eq!(k3s_runs_flannel(root, 300), Some(true));
        // A process started after the config was written did not write it.
        process(root, 301, 0);
        let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
        let file = std::fs::File::options()
            .write(true)
            .open(root.join(K3S_FLANNEL_CONF))
            .unwrap_or_else(|e| panic!("{e}"));
        file.set_modified(old).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k3s_runs_flannel(root, 301), Some(false));
        assert_eq!(k3s_runs_flannel(root, 999), None);
    }

    #[test]
    fn kube_proxy_runs_when_k3s_holds_the_health_port() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let root = dir.path();
        let header = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n";
        // Nothing listens on 10256.
        write(root, "proc/net/tcp", header);
        assert_eq!(k3s_runs_kube_proxy(root, 300), Some(false));
        write(
            root,
            "proc/net/tcp6",
            &format!(
                "{header}   0: 00000000000000000000000000000000:2810 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 48213 1 0 100 0 0 10 0\n"
            ),
        );
        // Someone listens, and k3s' open files cannot be read: it may be k3s.
        assert_eq!(k3s_runs_kube_proxy(root, 300), None);
        std::fs::create_dir_all(root.join("proc/300/fd")).unwrap_or_default();
        std::os::unix::fs::symlink("socket:[1111]", root.join("proc/300/fd/3"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k3s_runs_kube_proxy(root, 300), Some(false));
        std::os::unix::fs::symlink("socket:[48213]", root.join("proc/300/fd/9"))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(k3s_runs_kube_proxy(root, 300), Some(true));
    }
}
