//! Host tools that go into images: where to find them and how to lay them out.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{ImageError, Layer};

pub use cniswap_oci::tools::{add_iptables, find_tool};

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
