//! Host tools that go into images: where to find them and how to lay them out.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{ImageError, Layer};

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

/// The busybox binary on the host (Debian's busybox-static).
pub fn busybox_path() -> Result<PathBuf, ImageError> {
    find_tool("busybox", "busybox-static")
}

/// Busybox's version, from its banner ("BusyBox v1.35.0 (Debian ...) multi-call binary.").
pub fn busybox_version(busybox: &Path) -> Result<String, ImageError> {
    let output = Command::new(busybox)
        .output()
        .map_err(|e| ImageError::io(busybox, e))?;
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    parse_busybox_version(&text).ok_or_else(|| ImageError::Command {
        what: format!("{} (no arguments)", busybox.display()),
        message: "no \"BusyBox vX.Y.Z\" banner".into(),
        output: text.lines().take(3).collect::<Vec<_>>().join("\n"),
        hint: "install Debian package busybox-static".into(),
    })
}

pub(crate) fn parse_busybox_version(banner: &str) -> Option<String> {
    let rest = banner.split("BusyBox v").nth(1)?;
    let version: String = rest
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!version.is_empty()).then_some(version)
}

/// Busybox at /bin/busybox with a symlink for every applet it lists (`busybox --list-full`).
pub fn add_busybox(layer: &mut Layer, busybox: &Path) -> Result<(), ImageError> {
    layer.host_binary(busybox, "/bin/busybox")?;
    let output = Command::new(busybox)
        .arg("--list-full")
        .output()
        .map_err(|e| ImageError::io(busybox, e))?;
    if !output.status.success() {
        return Err(ImageError::Command {
            what: format!("{} --list-full", busybox.display()),
            message: format!("exited with {}", output.status),
            output: String::from_utf8_lossy(&output.stderr).into_owned(),
            hint: "install Debian package busybox-static".into(),
        });
    }
    for applet in String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::trim)
    {
        if applet.is_empty() || applet == "bin/busybox" {
            continue;
        }
        layer.symlink(&format!("/{applet}"), "/bin/busybox")?;
    }
    layer.dir("/tmp", 0o1777)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busybox_banner_version() {
        assert_eq!(
            parse_busybox_version(
                "BusyBox v1.35.0 (Debian 1:1.35.0-4+deb12u1+b1) multi-call binary.\n"
            ),
            Some("1.35.0".into())
        );
        assert_eq!(parse_busybox_version("sh: busybox: not found"), None);
    }

    #[test]
    fn a_missing_tool_names_its_package() {
        let err = find_tool("no-such-tool-cniswap", "some-package")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("no-such-tool-cniswap") && err.contains("some-package"),
            "{err}"
        );
    }

    #[test]
    fn iptables_layer_has_both_backends_and_extensions() {
        let mut layer = Layer::new();
        add_iptables(&mut layer).expect("iptables on the host (scripts/test.sh installs it)");
        for path in [
            "/usr/sbin/xtables-nft-multi",
            "/usr/sbin/xtables-legacy-multi",
            "/usr/sbin/iptables-restore",
            "/usr/sbin/ip6tables-legacy-save",
            "/usr/lib/x86_64-linux-gnu/xtables/libxt_comment.so",
            "/etc/protocols",
        ] {
            assert!(layer.contains(path), "{path} missing");
        }
    }
}
