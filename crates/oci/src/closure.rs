//! The shared-library closure of a host binary, from `ldd`.
//!
//! `ldd` asks the dynamic loader itself to resolve every DT_NEEDED entry, recursively, with the
//! host's search paths and ld.so.cache, so its answer is exactly what the binary loads at run
//! time (libraries opened later with dlopen, like iptables' extensions, are not included: add
//! them explicitly). The loader is listed too, by the path in the binary's PT_INTERP.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::ImageError;

/// One line of `ldd` output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LddLine {
    /// A library (or the loader) with the path it resolves to.
    Found(PathBuf),
    /// A library the loader could not find.
    NotFound(String),
    /// The vDSO and other entries with no file.
    Virtual,
}

/// Parses `ldd` output. `None` means the file is statically linked (no closure).
pub fn parse_ldd(output: &str) -> Option<Vec<LddLine>> {
    let trimmed = output.trim();
    if trimmed.contains("not a dynamic executable") || trimmed.contains("statically linked") {
        return None;
    }
    let mut lines = Vec::new();
    for line in trimmed.lines().map(str::trim).filter(|l| !l.is_empty()) {
        // Drop the load address: "libc.so.6 => /lib/.../libc.so.6 (0x00007f...)".
        let without_addr = match line.rfind(" (0x") {
            Some(i) => &line[..i],
            None => line,
        };
        let parsed = match without_addr.split_once(" => ") {
            Some((name, "not found")) => LddLine::NotFound(name.trim().to_string()),
            Some((_, path)) if path.starts_with('/') => LddLine::Found(PathBuf::from(path.trim())),
            Some(_) => LddLine::Virtual,
            None if without_addr.starts_with('/') => LddLine::Found(PathBuf::from(without_addr)),
            None => LddLine::Virtual,
        };
        lines.push(parsed);
    }
    Some(lines)
}

/// The shared libraries (and dynamic loader) `binary` needs, as host paths, in `ldd`'s order.
/// Empty for a static binary.
pub fn shared_library_closure(binary: &Path) -> Result<Vec<PathBuf>, ImageError> {
    let output = Command::new("ldd")
        .arg(binary)
        .env("LC_ALL", "C")
        .output()
        .map_err(|e| ImageError::Ldd {
            binary: binary.to_path_buf(),
            message: format!("could not run ldd: {e} (install Debian package libc-bin)"),
        })?;
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    let Some(lines) = parse_ldd(&text) else {
        return Ok(Vec::new());
    };
    if !output.status.success() {
        return Err(ImageError::Ldd {
            binary: binary.to_path_buf(),
            message: text.trim().to_string(),
        });
    }
    let mut paths = Vec::new();
    for line in lines {
        match line {
            LddLine::Found(path) => paths.push(path),
            LddLine::NotFound(library) => {
                return Err(ImageError::MissingLibrary {
                    binary: binary.to_path_buf(),
                    library,
                });
            }
            LddLine::Virtual => {}
        }
    }
    Ok(paths)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_libraries_the_loader_and_the_vdso() {
        let out = "\tlinux-vdso.so.1 (0x00007ffd8a5f2000)\n\
                   \tlibxtables.so.12 => /lib/x86_64-linux-gnu/libxtables.so.12 (0x00007f6e81238000)\n\
                   \tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f6e8101b000)\n\
                   \t/lib64/ld-linux-x86-64.so.2 (0x00007f6e81300000)\n";
        assert_eq!(
            parse_ldd(out),
            Some(vec![
                LddLine::Virtual,
                LddLine::Found("/lib/x86_64-linux-gnu/libxtables.so.12".into()),
                LddLine::Found("/lib/x86_64-linux-gnu/libc.so.6".into()),
                LddLine::Found("/lib64/ld-linux-x86-64.so.2".into()),
            ])
        );
    }

    #[test]
    fn static_binaries_have_no_closure() {
        assert_eq!(parse_ldd("\tnot a dynamic executable\n"), None);
        assert_eq!(parse_ldd("\tstatically linked\n"), None);
    }

    #[test]
    fn a_missing_library_is_reported_by_name() {
        let lines = parse_ldd("\tlibgone.so.1 => not found\n").expect("dynamic");
        assert_eq!(lines, vec![LddLine::NotFound("libgone.so.1".into())]);
    }

    #[test]
    fn host_iptables_closure_has_libc_and_the_loader() {
        let Some(bin) = ["/usr/sbin/xtables-nft-multi", "/sbin/xtables-nft-multi"]
            .iter()
            .map(Path::new)
            .find(|p| p.exists())
        else {
            panic!(
                "xtables-nft-multi missing: install Debian package iptables (scripts/test.sh does)"
            );
        };
        let closure = shared_library_closure(bin).expect("ldd");
        assert!(
            closure.iter().any(|p| p.ends_with("libc.so.6")),
            "{closure:?}"
        );
        assert!(
            closure
                .iter()
                .any(|p| p.to_string_lossy().contains("ld-linux")),
            "{closure:?}"
        );
        assert!(
            closure
                .iter()
                .any(|p| p.to_string_lossy().contains("libnftnl")),
            "{closure:?}"
        );
    }
}
