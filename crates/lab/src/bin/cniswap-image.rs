//! `cargo run -p cniswap-lab --bin cniswap-image -- [--out FILE] [--profile release|dev] [--binary PATH]`
//!
//! Builds the cniswap image without a container daemon: a static build of the cniswap binary
//! (glibc, crt-static) packed by `image::cniswap` into an OCI image archive, the image the lab
//! imports and `cniswap verify` deploys (`cniswap agent probe`). Push it to a registry of your
//! own with `skopeo copy oci-archive:FILE docker://REGISTRY/cniswap:TAG`, or load it with
//! `podman load -i FILE`.

use cniswap_lab::image::{self, StaticBuild};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut out = PathBuf::from("cniswap-image.tar");
    let mut profile = "release".to_string();
    // An existing cniswap binary instead of a static build (its shared libraries come along).
    let mut prebuilt: Option<PathBuf> = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match (arg.as_str(), args.next()) {
            ("--out", Some(v)) => out = v.into(),
            ("--profile", Some(v)) => profile = v,
            ("--binary", Some(v)) => prebuilt = Some(v.into()),
            _ => {
                eprintln!(
                    "usage: cniswap-image [--out FILE] [--profile release|dev] [--binary PATH]"
                );
                return ExitCode::from(2);
            }
        }
    }
    let built = match prebuilt {
        Some(binary) => Ok(binary),
        None => {
            eprintln!("building a static cniswap ({profile}); this takes a while the first time");
            image::build_static(&StaticBuild {
                package: "cniswap".into(),
                bin: "cniswap".into(),
                profile,
            })
        }
    };
    let binary = match built {
        Ok(binary) => binary,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match image::cniswap(&binary, &out) {
        Ok(image) => {
            println!(
                "{} {} ({} bytes) -> {}",
                image.reference,
                image.manifest_digest,
                image.size,
                out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}
