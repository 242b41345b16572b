//! Pushing a small image: to Debian's docker-registry on loopback (plain HTTP, found by the
//! loopback fallback; a second push sends nothing and names the same digest), and to a server
//! that answers every upload with 403, which no real registry in the test set-up produces
//! (distribution's htpasswd auth knows only 401): the one request-level stand-in here.
//! scripts/test.sh installs docker-registry.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use cniswap_oci::{BuiltImage, Layer, RunConfig};
use cniswap_registry::{Credentials, Failure, ImageName, Registry, Transport};
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn small_image(scratch: &std::path::Path) -> BuiltImage {
    let mut layer = Layer::new();
    layer.dir("/tmp", 0o1777).unwrap();
    let config = RunConfig {
        entrypoint: vec!["/bin/true".into()],
        ..RunConfig::default()
    };
    cniswap_oci::build(&[&layer], &config, scratch).unwrap()
}

fn anonymous() -> Credentials {
    Credentials {
        auth: cniswap_registry::Auth::Anonymous,
        source: cniswap_registry::Source::Anonymous {
            looked_in: Vec::new(),
        },
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn docker_registry(dir: &std::path::Path) -> (KillOnDrop, String) {
    let binary = std::env::var_os("PATH")
        .and_then(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("docker-registry"))
                .find(|p| p.is_file())
        })
        .unwrap_or_else(|| {
            panic!("docker-registry is not installed: scripts/test.sh installs it (apt-get install docker-registry)")
        });
    let addr = format!("127.0.0.1:{}", free_port());
    let config = dir.join("registry.yml");
    std::fs::write(
        &config,
        format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
            dir.join("storage").display()
        ),
    )
    .unwrap();
    let child = Command::new(binary)
        .arg("serve")
        .arg(&config)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let guard = KillOnDrop(child);
    let started = Instant::now();
    while std::net::TcpStream::connect(&addr).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the registry did not listen"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (guard, addr)
}

#[test]
fn a_second_push_sends_nothing_and_names_the_same_digest() {
    let dir = tempfile::tempdir().unwrap();
    let image = small_image(dir.path());
    let (_registry, addr) = docker_registry(dir.path());
    let name = ImageName::parse(&format!("{addr}/small"), "v1").unwrap();
    let credentials = anonymous();

    let registry = Registry::connect(&name, &credentials, Transport::Https).unwrap();
    let first = registry.push(&image).unwrap();
    assert_eq!(first.digest, format!("sha256:{}", image.manifest_digest));
    assert!(
        first.plain_http,
        "loopback registry on plain HTTP: {first:?}"
    );
    assert_eq!((first.sent, first.present), (2, 0), "{first:?}");

    let again = ImageName::parse(&format!("{addr}/small:v2"), "v1").unwrap();
    let registry = Registry::connect(&again, &credentials, Transport::PlainHttp).unwrap();
    let second = registry.push(&image).unwrap();
    assert_eq!(second.digest, first.digest);
    assert_eq!((second.sent, second.present), (0, 2), "{second:?}");
}

/// Answers GET /v2/ with 200, HEAD with 404 and everything else with 403 and a registry error
/// body, one request per connection.
fn forbidding_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            loop {
                let mut header = String::new();
                match reader.read_line(&mut header) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if header == "\r\n" => break,
                    Ok(_) => {}
                }
            }
            let denied = r#"{"errors":[{"code":"DENIED","message":"requested access to the resource is denied"}]}"#;
            let response = if request_line.starts_with("GET /v2/ ") {
                "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}".to_string()
            } else if request_line.starts_with("HEAD ") {
                "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_string()
            } else {
                format!(
                    "HTTP/1.1 403 Forbidden\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{denied}",
                    denied.len()
                )
            };
            let _ = stream.write_all(response.as_bytes());
        }
    });
    addr
}

#[test]
fn a_403_names_the_repository_the_credentials_and_the_registry_s_words() {
    let dir = tempfile::tempdir().unwrap();
    let image = small_image(dir.path());
    let addr = forbidding_server();
    let name = ImageName::parse(&format!("{addr}/team/small"), "v1").unwrap();
    let credentials = Credentials::given("bob".into(), "pa55word".into());
    let registry = Registry::connect(&name, &credentials, Transport::PlainHttp).unwrap();
    let e = registry.push(&image).unwrap_err();
    assert_eq!(e.failure, Failure::Forbidden, "{e:?}");
    assert!(
        e.message.contains(&format!("{addr} denied pushing to team/small with user bob from --username/--password-stdin (HTTP 403: requested access to the resource is denied)")),
        "{e:?}"
    );
    assert!(e.help.contains("push rights"), "{e:?}");
    assert!(!format!("{e:?}").contains("pa55word"));
}
