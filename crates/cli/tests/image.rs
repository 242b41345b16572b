//! `cniswap image build` writes an OCI image layout that real tools read: skopeo inspects it,
//! copies it into a registry (Debian's docker-registry, distribution 2.8, on loopback, in a
//! temporary directory) and reads it back from there with the same manifest digest.
//! scripts/test.sh installs skopeo and docker-registry.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn tool(name: &str) -> String {
    let found = std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("{name} is not installed: scripts/test.sh installs it (apt-get install skopeo docker-registry)")
        });
    found.display().to_string()
}

/// A registry on a free loopback port, removed when dropped.
struct Registry {
    child: Child,
    addr: String,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn registry(dir: &std::path::Path) -> Registry {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.join("storage").display()
        ),
    )
    .unwrap();
    let child = Command::new(tool("docker-registry"))
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let registry = Registry { child, addr };
    let started = Instant::now();
    while std::net::TcpStream::connect(&registry.addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the registry did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    registry
}

fn skopeo(args: &[&str]) -> String {
    let out = Command::new(tool("skopeo")).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "skopeo {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn the_image_layout_is_read_by_skopeo_and_goes_through_a_registry() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("image");
    let out = Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args(["image", "build", "--tag", "test", "--out-dir"])
        .arg(&layout)
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let digest = stdout
        .split("manifest ")
        .nth(1)
        .and_then(|rest| rest.split(')').next())
        .unwrap()
        .to_string();
    assert!(digest.starts_with("sha256:"), "{stdout}");
    assert!(stdout.contains("skopeo copy oci:"), "{stdout}");

    let source = format!("oci:{}:test", layout.display());
    let local: serde_json::Value = serde_json::from_str(&skopeo(&["inspect", &source])).unwrap();
    assert_eq!(local["Digest"], digest.as_str());
    assert_eq!(local["Architecture"], "amd64");

    let registry = registry(dir.path());
    let target = format!("docker://{}/cniswap:test", registry.addr);
    skopeo(&["copy", "--dest-tls-verify=false", &source, &target]);
    let pushed: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &target])).unwrap();
    assert_eq!(
        pushed["Digest"],
        digest.as_str(),
        "the registry holds the same image"
    );
    let config: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--config",
        "--tls-verify=false",
        &target,
    ]))
    .unwrap();
    assert_eq!(
        config["config"]["Entrypoint"][0], "/usr/local/bin/cniswap",
        "{config}"
    );
    assert!(
        config["config"]["User"].is_null(),
        "no user: apply's node pods run it as root"
    );

    // An existing directory is refused (exit 2) and left as it was.
    let out = Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args(["image", "build", "--out-dir"])
        .arg(&layout)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let again: serde_json::Value = serde_json::from_str(&skopeo(&["inspect", &source])).unwrap();
    assert_eq!(again["Digest"], digest.as_str());
}
