//! Host tools that go into images: where to find them and how to lay them out (the node
//! agent's firewall tools for `cniswap image`, and the lab's images).

use std::path::{Path, PathBuf};

use crate::{ImageError, Layer};

const SEARCH: &[&str] = &["/usr/sbin", "/usr/bin", "/sbin", "/bin"];

/// Finds host tool `name` (shipped by Debian package `package`).
pub fn find_tool(name: &str, package: &str) -> Result<PathBuf, ImageError> {
    SEARCH
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|p| p.is_file())
        .ok_or_else(|| ImageError::MissingHostTool {
            name: name.to_string(),
            package: package.to_string(),
            searched: SEARCH.join(", "),
        })
}

/// A host file that must exist (data files such as /etc/protocols).
pub fn find_file(path: &str, package: &str) -> Result<PathBuf, ImageError> {
    let p = PathBuf::from(path);
    if p.is_file() {
        Ok(p)
    } else {
        Err(ImageError::MissingHostTool {
            name: path.to_string(),
            package: package.to_string(),
            searched: path.to_string(),
        })
    }
}

/// Where the host's iptables loads its extensions from (libxtables' compiled-in XTABLES_LIBDIR).
const XTABLES_DIRS: &[&str] = &[
    "/usr/lib/x86_64-linux-gnu/xtables",
    "/usr/lib64/xtables",
    "/usr/lib/xtables",
];

/// The iptables family, nft and legacy backends, as Debian lays it out: both multi-call
/// binaries in /usr/sbin with their libraries, the extension modules they dlopen, and the
/// command names as symlinks. Plain `iptables` is the nft backend (Debian's default).
pub fn add_iptables(layer: &mut Layer) -> Result<(), ImageError> {
    for (multi, backend) in [
        ("xtables-nft-multi", "nft"),
        ("xtables-legacy-multi", "legacy"),
    ] {
        let host = find_tool(multi, "iptables")?;
        layer.host_binary(&host, &format!("/usr/sbin/{multi}"))?;
        for family in ["iptables", "ip6tables"] {
            for suffix in ["", "-save", "-restore"] {
                layer.symlink(&format!("/usr/sbin/{family}-{backend}{suffix}"), multi)?;
            }
        }
    }
    for family in ["iptables", "ip6tables"] {
        for suffix in ["", "-save", "-restore"] {
            layer.symlink(
                &format!("/usr/sbin/{family}{suffix}"),
                &format!("{family}-nft{suffix}"),
            )?;
        }
    }
    let dir = XTABLES_DIRS
        .iter()
        .map(Path::new)
        .find(|d| d.is_dir())
        .ok_or_else(|| ImageError::MissingHostTool {
            name: "iptables extensions (xtables)".into(),
            package: "iptables".into(),
            searched: XTABLES_DIRS.join(", "),
        })?;
    layer.host_plugin_dir(dir)?;
    // Protocol and service names that iptables resolves (-p tcp, --dport ssh).
    for file in ["/etc/protocols", "/etc/services"] {
        layer.host_file(&find_file(file, "netbase")?, file)?;
    }
    // iptables takes /run/xtables.lock; kube-proxy and flanneld also write under /run.
    layer.dir("/run", 0o755)?;
    Ok(())
}

/// What the node agent needs to read and clean a node: iptables (both backends), nft and
/// ipset for its firewall, iproute2's ip, tc and bridge for its links, addresses, routes, rules,
/// qdiscs and neighbours, from this host.
pub fn add_node_tools(layer: &mut Layer) -> Result<(), ImageError> {
    add_iptables(layer)?;
    for (tool, package) in [
        ("nft", "nftables"),
        ("ipset", "ipset"),
        ("ip", "iproute2"),
        ("tc", "iproute2"),
        ("bridge", "iproute2"),
    ] {
        layer.host_binary(&find_tool(tool, package)?, &format!("/usr/sbin/{tool}"))?;
    }
    Ok(())
}
