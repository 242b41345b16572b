//! `cniswap image build`: the agents' image, made from the running binary, written as an OCI
//! image layout directory.

use crate::args::ImageCommand;
use crate::error::CliError;
use crate::{exit, render};
use cniswap_oci::{Layer, RunConfig};
use std::path::Path;

pub fn run(command: ImageCommand) -> Result<u8, CliError> {
    match command {
        ImageCommand::Build { out_dir, tag } => {
            check_tag(&tag)?;
            build(&out_dir, &tag)
        }
    }
}

/// This binary at /usr/local/bin/cniswap (its shared libraries too, when it is not static),
/// `/tmp`, and cniswap as the entrypoint. No user is set: apply's node steps run it as root in
/// privileged pods, and verify's pods set their own non-root user.
fn image_layer() -> Result<(Layer, RunConfig), CliError> {
    let binary = std::env::current_exe().map_err(|e| {
        CliError::other(
            format!("cannot find this cniswap binary: {e}"),
            "run cniswap from a file on disk",
        )
    })?;
    let mut layer = Layer::new();
    layer
        .host_binary(&binary, "/usr/local/bin/cniswap")
        .and_then(|l| l.dir("/tmp", 0o1777))
        .map_err(|e| {
            CliError::other(
                format!("cannot put {} into the image: {e}", binary.display()),
                "check that ldd can read it (a static build needs nothing else)",
            )
        })?;
    let config = RunConfig {
        entrypoint: vec!["/usr/local/bin/cniswap".into()],
        ..RunConfig::default()
    };
    Ok((layer, config))
}

fn build(out_dir: &Path, tag: &str) -> Result<u8, CliError> {
    if std::fs::symlink_metadata(out_dir).is_ok() {
        return Err(CliError::other(
            format!("{} already exists", out_dir.display()),
            "give a new directory to --out-dir (an image layout is written whole, never into an old one)",
        ));
    }
    let (layer, config) = image_layer()?;
    let info = cniswap_oci::write_layout(tag, &[&layer], &config, out_dir).map_err(|e| {
        CliError::other(
            format!("cannot write the image: {e}"),
            "check that the parent directory exists and is writable",
        )
    })?;
    let dir = cniswap_model::text::escape_control(&out_dir.display().to_string()).into_owned();
    render::write_stdout(&format!(
        "Wrote the cniswap {tag} image ({} bytes, manifest {}) to {dir}\n\
         Copy it into a registry: skopeo copy oci:{dir}:{tag} docker://REGISTRY/cniswap:{tag}\n\
         Then: cniswap verify --image REGISTRY/cniswap:{tag}; cniswap plan ... --agent-image REGISTRY/cniswap:{tag}\n",
        info.size, info.manifest_digest
    ))?;
    Ok(exit::OK)
}

/// A tag as the OCI distribution spec allows it.
fn check_tag(tag: &str) -> Result<(), CliError> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(CliError::usage(
            format!(
                "{} is not a valid image tag",
                cniswap_model::text::escape_control(tag)
            ),
            "a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
        ))
    }
}
