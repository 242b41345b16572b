//! `cniswap image build` writes an OCI image layout that real tools read: skopeo inspects it,
//! copies it into a registry (Debian's docker-registry, distribution 2.8, on loopback, in a
//! temporary directory) and reads it back from there with the same manifest digest.
//! `cniswap image push` sends the same image to such a registry itself: over plain HTTP to a
//! loopback registry, over HTTPS with htpasswd credentials from the places docker and podman
//! keep them, and fails in words (with the credentials' source, never the secret) otherwise.
//! scripts/test.sh installs skopeo, docker-registry and apache2-utils (htpasswd).

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
    registry_with(dir, "", "")
}

/// A registry with extra top-level configuration (`auth:`) and extra `http:` keys (`tls:`).
fn registry_with(dir: &std::path::Path, extra: &str, http_extra: &str) -> Registry {
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
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n{extra}http:\n  addr: {addr}\n{http_extra}",
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

    // `image push` sends the same image (same manifest digest) without skopeo: the loopback
    // registry speaks plain HTTP, which push falls back to for loopback only.
    let out = cniswap_push(&[&format!("{}/pushed/cniswap", registry.addr)], &[]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let pinned = format!("{}/pushed/cniswap@{digest}", registry.addr);
    assert!(stdout.contains(&format!("\n{pinned}\n")), "{stdout}");
    assert!(
        stdout.contains(&format!("--agent-image {pinned}")),
        "{stdout}"
    );
    assert!(stdout.contains(&format!("--image {pinned}")), "{stdout}");
    assert!(stdout.contains("over plain HTTP"), "{stdout}");
    // The tag defaults to this version; the registry serves the manifest under it.
    let tagged = format!(
        "docker://{}/pushed/cniswap:{}",
        registry.addr,
        env!("CARGO_PKG_VERSION")
    );
    let pushed: serde_json::Value =
        serde_json::from_str(&skopeo(&["inspect", "--tls-verify=false", &tagged])).unwrap();
    assert_eq!(pushed["Digest"], digest.as_str(), "{pushed}");
    assert_eq!(pushed["Architecture"], "amd64");
    assert_eq!(pushed["Os"], "linux");

    // Again, under another tag, for scripts: nothing to send, the same pinned reference.
    let out = cniswap_push(
        &[
            &format!("{}/pushed/cniswap:again", registry.addr),
            "-o",
            "json",
        ],
        &[],
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["reference"], pinned.as_str(), "{report}");
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(
        report["pushed"],
        format!("{}/pushed/cniswap:again", registry.addr)
    );
    assert_eq!(
        (
            report["blobs_sent"].as_u64(),
            report["blobs_present"].as_u64()
        ),
        (Some(0), Some(2))
    );
    assert_eq!(report["plain_http"], true);

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

/// `cniswap image push ARGS` with a clean credentials environment plus `env`.
fn cniswap_push(args: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    cniswap_push_stdin(args, env, None)
}

fn cniswap_push_stdin(
    args: &[&str],
    env: &[(&str, &str)],
    stdin: Option<&str>,
) -> std::process::Output {
    use std::io::Write as _;
    let mut command = Command::new(env!("CARGO_BIN_EXE_cniswap"));
    command
        .args(["image", "push"])
        .args(args)
        .env("NO_COLOR", "1")
        // No credentials of the machine running the tests.
        .env("HOME", "/nonexistent")
        .env_remove("REGISTRY_AUTH_FILE")
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("DOCKER_CONFIG")
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        // The registries are on loopback: no proxy of the machine in between.
        .env("NO_PROXY", "*")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

/// A self-signed serving certificate for 127.0.0.1 (cert.pem, key.pem in `dir`).
fn serving_certificate(dir: &std::path::Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let rcgen::CertifiedKey { cert, signing_key } =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).unwrap();
    let (cert_file, key_file) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_file, cert.pem()).unwrap();
    std::fs::write(&key_file, signing_key.serialize_pem()).unwrap();
    (cert_file, key_file)
}

fn base64_of(text: &str) -> String {
    let out = Command::new("base64")
        .arg("-w0")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write as _;
            child.stdin.take().unwrap().write_all(text.as_bytes())?;
            child.wait_with_output()
        })
        .unwrap();
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn push_takes_credentials_from_auth_files_and_fails_in_words_without_them() {
    let dir = tempfile::tempdir().unwrap();
    let password = "s3cret-Pa55";
    let wrong = "wrong-Pa55-XYZ";
    let htpasswd = dir.path().join("htpasswd");
    let out = Command::new(tool("htpasswd"))
        .args(["-Bbc"])
        .arg(&htpasswd)
        .args(["alice", password])
        .output()
        .unwrap();
    assert!(out.status.success(), "htpasswd: {out:?}");
    let (cert, key) = serving_certificate(dir.path());
    let registry = registry_with(
        dir.path(),
        &format!(
            "auth:\n  htpasswd:\n    realm: cniswap-test\n    path: {}\n",
            htpasswd.display()
        ),
        &format!(
            "  tls:\n    certificate: {}\n    key: {}\n",
            cert.display(),
            key.display()
        ),
    );
    let target = format!("{}/team/cniswap:test", registry.addr);
    let cert_env = ("SSL_CERT_FILE", cert.to_str().unwrap());
    // Everything the command printed, checked for the secrets in any form.
    let shown = |out: &std::process::Output| {
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for secret in [password, wrong] {
            assert!(!text.contains(secret), "a secret in the output: {text}");
            assert!(
                !text.contains(&base64_of(&format!("alice:{secret}"))),
                "{text}"
            );
        }
        text
    };

    // No credentials anywhere: refused before the image is built, naming where push looked.
    let started = Instant::now();
    let out = cniswap_push(&[&target], &[cert_env]);
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("wants credentials") && text.contains("HTTP 401"),
        "{text}"
    );
    assert!(
        text.contains("no auth file") && text.contains("docker login"),
        "{text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "reported after {:?}",
        started.elapsed()
    );

    // Wrong credentials in docker's config.json: the file and user are named.
    let home = dir.path().join("home");
    std::fs::create_dir_all(home.join(".docker")).unwrap();
    let docker_config = home.join(".docker/config.json");
    let write_docker_config = |secret: &str| {
        std::fs::write(
            &docker_config,
            format!(
                r#"{{"auths":{{"https://{}":{{"auth":"{}"}}}}}}"#,
                registry.addr,
                base64_of(&format!("alice:{secret}"))
            ),
        )
        .unwrap();
    };
    write_docker_config(wrong);
    let home_env = ("HOME", home.to_str().unwrap());
    let out = cniswap_push(&[&target], &[cert_env, home_env]);
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!(
            "refused user alice from {} (HTTP 401)",
            docker_config.display()
        )),
        "{text}"
    );

    // The same from --password-stdin.
    let out = cniswap_push_stdin(
        &[&target, "--username", "alice", "--password-stdin"],
        &[cert_env],
        Some(&format!("{wrong}\n")),
    );
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("refused user alice from --username/--password-stdin (HTTP 401)"),
        "{text}"
    );

    // A certificate this machine does not trust is named as such.
    write_docker_config(password);
    let out = cniswap_push(&[&target], &[home_env]);
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("TLS certificate of 127.0.0.1"), "{text}");
    assert!(text.contains("trust store"), "{text}");

    // Right credentials (podman's REGISTRY_AUTH_FILE wins over docker's wrong ones), a trusted
    // certificate: pushed over HTTPS. Trace logs on: the secret is in none of them either.
    write_docker_config(wrong);
    let auth_file = dir.path().join("auth.json");
    std::fs::write(
        &auth_file,
        format!(
            r#"{{"auths":{{"{}/team":{{"username":"alice","password":"{password}"}}}}}}"#,
            registry.addr
        ),
    )
    .unwrap();
    let out = cniswap_push(
        &[&target, "-vvv"],
        &[
            cert_env,
            home_env,
            ("REGISTRY_AUTH_FILE", auth_file.to_str().unwrap()),
        ],
    );
    let text = shown(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("DEBUG oci_client"), "trace logs on: {text}");
    assert!(!text.contains("plain HTTP"), "{text}");
    assert!(text.contains("2 blobs sent, 0 already there"), "{text}");
    let pinned = text
        .lines()
        .find(|l| l.starts_with(&format!("{}/team/cniswap@sha256:", registry.addr)))
        .unwrap_or_else(|| panic!("no pinned reference: {text}"))
        .to_string();
    let digest = pinned.split('@').nth(1).unwrap();

    // The registry holds it: skopeo reads the manifest back with the same credentials.
    let creds = format!("alice:{password}");
    let pushed: serde_json::Value = serde_json::from_str(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        "--creds",
        &creds,
        &format!("docker://{target}"),
    ]))
    .unwrap();
    assert_eq!(pushed["Digest"], digest, "{pushed}");
    assert_eq!(pushed["Architecture"], "amd64");
    assert_eq!(pushed["Os"], "linux");
}

#[test]
fn push_refuses_names_without_a_registry_and_unreachable_registries() {
    let out = cniswap_push(&["cniswap:0.1.0"], &[]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("cniswap:0.1.0 has no registry host"),
        "{text}"
    );
    assert!(text.contains("REGISTRY/NAME"), "{text}");

    // A loopback port nobody listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let out = cniswap_push(&[&format!("127.0.0.1:{port}/cniswap")], &[]);
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains(&format!("cannot reach the registry 127.0.0.1:{port}")),
        "{text}"
    );
    assert!(text.contains("Connection refused"), "{text}");
    assert!(started.elapsed() < Duration::from_secs(5));

    // --password-stdin reads a line; an empty one is refused.
    let out = cniswap_push_stdin(
        &["reg.example/cniswap", "--username", "u", "--password-stdin"],
        &[],
        Some("\n"),
    );
    let text = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("empty password"), "{text}");
}
