//! Statically linked builds of this workspace's binaries (the pause container, cniswap), for
//! images that have no shared libraries.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use super::ImageError;
use super::shared_library_closure;

/// The target triple static builds use: glibc with `crt-static`.
pub const STATIC_TARGET: &str = "x86_64-unknown-linux-gnu";

/// The workspace this crate belongs to.
pub fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| manifest.to_path_buf())
}

/// A static build: `cargo build --profile PROFILE -p PACKAGE --bin BIN` for [`STATIC_TARGET`]
/// with `RUSTFLAGS=-C target-feature=+crt-static`, stripped, in
/// `<workspace>/target/lab-static/<package>` so the
/// workspace's normal builds are untouched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticBuild {
    pub package: String,
    pub bin: String,
    /// `release` or `dev`.
    pub profile: String,
}

/// Builds a static binary of this workspace (cargo does nothing when it is up to date) and
/// returns its path. Fails if the result still needs shared libraries.
pub fn build_static(build: &StaticBuild) -> Result<PathBuf, ImageError> {
    let workspace = workspace_root();
    // One target directory per package, so building cniswap (minutes) never holds the lock
    // that a pause build (seconds) waits for.
    let target_dir = workspace
        .join("target")
        .join("lab-static")
        .join(&build.package);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let what = format!(
        "cargo build --profile {} -p {} --bin {} (static)",
        build.profile, build.package, build.bin
    );
    let output = Command::new("nice")
        .args(["-n", "10"])
        .arg(&cargo)
        .args([
            "build",
            "--locked",
            "--profile",
            &build.profile,
            "-p",
            &build.package,
            "--bin",
            &build.bin,
        ])
        .args(["--target", STATIC_TARGET])
        .current_dir(&workspace)
        .env("RUSTFLAGS", "-C target-feature=+crt-static")
        .env("CARGO_TARGET_DIR", &target_dir)
        // Images carry no symbols or debug info (a link-time setting: dependencies are reused).
        .env(
            format!(
                "CARGO_PROFILE_{}_STRIP",
                build.profile.to_uppercase().replace('-', "_")
            ),
            "symbols",
        )
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| ImageError::Command {
            what: what.clone(),
            message: format!("could not run {}: {e}", Path::new(&cargo).display()),
            output: String::new(),
            hint: "install the Rust toolchain (rustup) and run from the cniswap workspace".into(),
        })?;
    if !output.status.success() {
        let text = String::from_utf8_lossy(&output.stderr);
        return Err(ImageError::Command {
            what,
            message: format!("exited with {}", output.status),
            output: crate::components::tail(&text, 20),
            hint: format!(
                "the output above says why; the target {STATIC_TARGET} and a C toolchain with static glibc (build-essential) are needed"
            ),
        });
    }
    let profile_dir = match build.profile.as_str() {
        "dev" | "test" => "debug",
        "bench" => "release",
        other => other,
    };
    let binary = target_dir
        .join(STATIC_TARGET)
        .join(profile_dir)
        .join(&build.bin);
    let libraries = shared_library_closure(&binary)?;
    if !libraries.is_empty() {
        return Err(ImageError::Command {
            what,
            message: format!("{} is not statically linked", binary.display()),
            output: libraries
                .iter()
                .map(|l| l.display().to_string())
                .collect::<Vec<_>>()
                .join("\n"),
            hint: "something overrides RUSTFLAGS (a .cargo/config.toml target rustflags?)".into(),
        });
    }
    Ok(binary)
}
