//! The API server's answers are bounded (issue 20 §5): a `continue` that never ends, a list
//! over the object budget, a page of a million pods from a server that ignores `limit`
//! (declared or streamed), an answer that trickles or never comes. A real API server cannot
//! be made to do any of this, so a small fake one in this test speaks just enough HTTP/1.1 and
//! Kubernetes list JSON; every command runs as the real binary against it.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test
#![allow(unsafe_code)] // wait4: std's Child::wait does not expose the child's peak memory

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How a run of cniswap ended.
struct Run {
    code: i32,
    stderr: String,
    took: Duration,
    /// Its peak resident memory.
    rss_kib: i64,
    /// False when it had to be killed.
    ended: bool,
}

/// One request as the fake server saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    target: String,
    body: String,
}

type Handler = dyn Fn(&Seen, &mut TcpStream) + Send + Sync;

/// A fake API server on loopback: each connection answers one request, as `handler` says.
struct Fake {
    seen: Arc<Mutex<Vec<Seen>>>,
    dir: tempfile::TempDir,
}

impl Fake {
    fn start(handler: impl Fn(&Seen, &mut TcpStream) + Send + Sync + 'static) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(vec![]));
        let handler: Arc<Handler> = Arc::new(handler);
        let log = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let handler = Arc::clone(&handler);
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    let Some(request) = read_request(&mut stream) else {
                        return;
                    };
                    log.lock().unwrap().push(request.clone());
                    handler(&request, &mut stream);
                });
            }
        });
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("kubeconfig"),
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: fake\n  cluster:\n    server: http://{addr}\ncontexts:\n- name: fake\n  context: {{cluster: fake, user: u, namespace: default}}\ncurrent-context: fake\nusers:\n- name: u\n  user: {{token: fake-token}}\n"
            ),
        )
        .unwrap();
        Fake { seen, dir }
    }

    fn kubeconfig(&self) -> String {
        self.dir.path().join("kubeconfig").display().to_string()
    }

    /// Runs cniswap against this server with `env` set, killed if it runs over `limit`.
    #[allow(clippy::zombie_processes)] // reaped by wait4 below, which also gives its rusage
    fn run_for(&self, args: &[&str], env: &[(&str, &str)], limit: Duration) -> Run {
        let err_path = self.dir.path().join("stderr");
        let mut child = Command::new(env!("CARGO_BIN_EXE_cniswap"))
            .args(args)
            .args(["--kubeconfig", &self.kubeconfig()])
            .envs(env.iter().copied())
            .env("NO_COLOR", "1")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&err_path).unwrap())
            .spawn()
            .unwrap();
        let start = Instant::now();
        let pid = child.id() as libc::pid_t;
        let mut ended = true;
        let (code, rss_kib) = loop {
            let mut status: libc::c_int = 0;
            // SAFETY: rusage is plain data that wait4 fills for our own child; nothing else
            // waits for it (std's Child is only used to kill it).
            let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
            let rc = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
            assert!(rc >= 0, "wait4: {}", std::io::Error::last_os_error());
            if rc == pid {
                let code = if libc::WIFEXITED(status) {
                    libc::WEXITSTATUS(status)
                } else {
                    128 + libc::WTERMSIG(status)
                };
                break (code, usage.ru_maxrss);
            }
            if ended && start.elapsed() > limit {
                let _ = child.kill();
                ended = false;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        Run {
            code,
            stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
            took: start.elapsed(),
            rss_kib,
            ended,
        }
    }

    fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.run_for(args, env, Duration::from_secs(120))
    }

    fn count(&self, method: &str, path_prefix: &str) -> usize {
        self.seen
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.method == method && s.target.starts_with(path_prefix))
            .count()
    }
}

fn read_request(stream: &mut TcpStream) -> Option<Seen> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        reader.read_line(&mut header).ok()?;
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        if let Some((name, value)) = header.split_once(':')
            && name.eq_ignore_ascii_case("content-length")
        {
            length = value.trim().parse().ok()?;
        }
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).ok()?;
    Some(Seen {
        method,
        target,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

fn respond(stream: &mut TcpStream, status: &str, body: &str) {
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn empty_list() -> String {
    r#"{"kind":"List","apiVersion":"v1","metadata":{},"items":[]}"#.to_string()
}

fn not_found() -> String {
    r#"{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404,"message":"not found"}"#.to_string()
}

/// One pod of about 1.1 KB, as a list item.
fn pod_json(i: usize) -> String {
    format!(
        r#"{{"metadata":{{"name":"p{i:07}","namespace":"default","annotations":{{"pad":"{}"}}}},"spec":{{"nodeName":"n1","containers":[{{"name":"c","image":"busybox"}}]}},"status":{{"phase":"Running"}}}}"#,
        "x".repeat(950)
    )
}

/// A list of a million pods (1.1 GB) in one page, streamed in chunks until the client goes;
/// with `declared`, its length is announced up front.
fn million_pods(stream: &mut TcpStream, declared: bool) {
    let chunk: String = (0..1000).map(|i| pod_json(i) + ",").collect();
    let total = 40 + chunk.len() * 1000;
    let head = if declared {
        format!("Content-Length: {total}\r\n")
    } else {
        "Transfer-Encoding: chunked\r\n".to_string()
    };
    if write!(
        stream,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{head}Connection: close\r\n\r\n"
    )
    .is_err()
    {
        return;
    }
    let mut send = |data: &[u8]| -> bool {
        if declared {
            stream.write_all(data).is_ok()
        } else {
            write!(stream, "{:x}\r\n", data.len()).is_ok()
                && stream.write_all(data).is_ok()
                && stream.write_all(b"\r\n").is_ok()
        }
    };
    if !send(br#"{"kind":"PodList","metadata":{},"items":["#) {
        return;
    }
    for _ in 0..1000 {
        if !send(chunk.as_bytes()) {
            return;
        }
    }
}

/// A cluster with one node and nothing else; `pods` answers the pod list.
fn cluster(pods: impl Fn(&Seen, &mut TcpStream) + Send + Sync + 'static) -> Fake {
    Fake::start(move |request, stream| {
        let path = request.target.split('?').next().unwrap_or("");
        match path {
            "/api/v1/nodes" => respond(
                stream,
                "200 OK",
                r#"{"kind":"NodeList","metadata":{},"items":[{"metadata":{"name":"n1"},"status":{"nodeInfo":{"kubeletVersion":"v1.35.0"}}}]}"#,
            ),
            "/api/v1/pods" => pods(request, stream),
            _ if request.method == "GET" => respond(stream, "200 OK", &empty_list()),
            _ => respond(stream, "404 Not Found", &not_found()),
        }
    })
}

fn assert_refused(out: &Run, list: &str, variable: &str) -> String {
    let stderr = out.stderr.clone();
    assert!(out.ended, "still running after {:?}: {stderr}", out.took);
    assert_eq!(out.code, 2, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(
        stderr.contains(&format!("cannot list {list} from http://")),
        "names the list: {stderr}"
    );
    assert!(
        stderr.contains(&format!("({variable})")),
        "names the bound: {stderr}"
    );
    assert!(
        stderr.contains(&format!("{variable}=<larger value>")),
        "says how to raise it: {stderr}"
    );
    stderr
}

#[test]
fn a_continue_that_never_ends_is_cut_off_in_every_live_command() {
    let fake = cluster(|_, stream| {
        respond(
            stream,
            "200 OK",
            r#"{"kind":"PodList","metadata":{"continue":"again"},"items":[]}"#,
        )
    });
    let out_dir = fake.dir.path().join("snap");
    for command in [
        vec!["inspect"],
        vec!["snapshot", "--out-dir", out_dir.to_str().unwrap()],
        vec!["lint", "--live"],
        vec!["plan", "--to", "cilium"],
    ] {
        let out = fake.run(&command, &[("CNISWAP_MAX_LIST_PAGES", "50")]);
        let stderr = assert_refused(&out, "pods", "CNISWAP_MAX_LIST_PAGES");
        assert!(stderr.contains("over the limit of 50 pages"), "{stderr}");
        eprintln!("{command:?}: refused after {:?}", out.took);
    }
    // Each command asked for exactly 50 pages of pods.
    assert_eq!(fake.count("GET", "/api/v1/pods"), 4 * 50);
    // With the default budget (10,000 pages) it ends too.
    let out = fake.run(&["inspect"], &[]);
    assert_refused(&out, "pods", "CNISWAP_MAX_LIST_PAGES");
    eprintln!(
        "endless continue with the default budget: refused after {:?}, peak RSS {} KiB",
        out.took, out.rss_kib
    );
}

#[test]
fn a_list_over_the_object_budget_is_refused() {
    let fake = cluster(|request, stream| {
        let page = if request.target.contains("continue=") {
            2
        } else {
            1
        };
        let items: Vec<String> = (0..500).map(|i| pod_json(page * 1000 + i)).collect();
        let next = if page == 1 { r#","continue":"p2""# } else { "" };
        respond(
            stream,
            "200 OK",
            &format!(
                r#"{{"kind":"PodList","metadata":{{"resourceVersion":"1"{next}}},"items":[{}]}}"#,
                items.join(",")
            ),
        );
    });
    let out = fake.run(&["inspect"], &[("CNISWAP_MAX_LIST_OBJECTS", "600")]);
    let stderr = assert_refused(&out, "pods", "CNISWAP_MAX_LIST_OBJECTS");
    assert!(stderr.contains("600 objects in one list"), "{stderr}");
    // Within the budget the same cluster reads fine: 1,000 pods.
    let out = fake.run(
        &["inspect", "-o", "json"],
        &[("CNISWAP_MAX_LIST_OBJECTS", "1000")],
    );
    assert_eq!(out.code, 0, "{}", out.stderr);
}

#[test]
fn a_million_pods_in_one_page_are_refused_by_size_not_parsed() {
    for declared in [true, false] {
        let fake = cluster(move |_, stream| million_pods(stream, declared));
        let out = fake.run(&["inspect"], &[]);
        let stderr = assert_refused(&out, "pods", "CNISWAP_MAX_RESPONSE_BYTES");
        assert!(
            stderr.contains("over the limit of 268435456 bytes"),
            "{stderr}"
        );
        eprintln!(
            "1.1 GB page ({}): refused after {:?}, peak RSS {} KiB",
            if declared {
                "Content-Length"
            } else {
                "chunked"
            },
            out.took,
            out.rss_kib
        );
        // Far below the gigabyte the answer holds: at most the 256 MiB budget of it, plus the
        // process itself.
        assert!(out.rss_kib < 400 * 1024, "{} KiB", out.rss_kib);
    }
    // A smaller budget refuses sooner.
    let fake = cluster(|_, stream| million_pods(stream, false));
    let out = fake.run(&["inspect"], &[("CNISWAP_MAX_RESPONSE_BYTES", "1000000")]);
    assert_refused(&out, "pods", "CNISWAP_MAX_RESPONSE_BYTES");
    eprintln!(
        "1.1 GB page, 1 MB budget: refused after {:?}, peak RSS {} KiB",
        out.took, out.rss_kib
    );
}

#[test]
fn an_answer_that_trickles_or_never_comes_times_out() {
    // Headers at once, then one byte every 200 ms.
    let fake = cluster(|_, stream| {
        let body = r#"{"kind":"PodList","metadata":{},"items":[]}"#;
        let _ = write!(
            stream,
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n"
        );
        for b in body.bytes().cycle().take(100_000) {
            if stream.write_all(&[b]).is_err() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    let out = fake.run_for(
        &["inspect"],
        &[("CNISWAP_MAX_REQUEST_SECONDS", "3")],
        Duration::from_secs(30),
    );
    let stderr = assert_refused(&out, "pods", "CNISWAP_MAX_REQUEST_SECONDS");
    assert!(stderr.contains("over the limit of 3 seconds"), "{stderr}");
    assert!(out.took < Duration::from_secs(10), "{:?}", out.took);
    eprintln!("trickling answer: refused after {:?}", out.took);

    // No answer at all: the request is read and nothing is ever sent.
    let fake = cluster(|_, _| std::thread::sleep(Duration::from_secs(30)));
    let out = fake.run_for(
        &["inspect"],
        &[("CNISWAP_MAX_REQUEST_SECONDS", "2")],
        Duration::from_secs(30),
    );
    assert_refused(&out, "pods", "CNISWAP_MAX_REQUEST_SECONDS");
    assert!(out.took < Duration::from_secs(8), "{:?}", out.took);
    eprintln!("silent server: refused after {:?}", out.took);
}

/// A plan of the Talos homelab example (Flannel -> Cilium, rolling).
fn plan_dir(dir: &std::path::Path) -> String {
    let example = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../examples/talos-flannel-homelab");
    let plan = dir.join("plan");
    let out = Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args([
            "plan",
            "--snapshot",
            example.to_str().unwrap(),
            "--to",
            "cilium",
            "--force",
            "--out-dir",
            plan.to_str().unwrap(),
        ])
        .env_remove("KUBECONFIG")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    plan.display().to_string()
}

/// apply holds its Lease while it works; a read that never completes must end at its deadline
/// (and the run with it), not keep the Lease renewed for ever.
#[test]
fn apply_stops_at_the_deadline_of_a_stuck_read_and_gives_its_lease_back() {
    // Objects written through the fake (the Lease, the journal's mirror), by path.
    let store: Arc<Mutex<std::collections::BTreeMap<String, serde_json::Value>>> = Arc::default();
    let objects = Arc::clone(&store);
    let fake = Fake::start(move |request, stream| {
        let path = request.target.split('?').next().unwrap_or("").to_string();
        let mut objects = objects.lock().unwrap();
        let body: Option<serde_json::Value> = serde_json::from_str(&request.body).ok();
        match request.method.as_str() {
            // Every list trickles: one byte a second.
            "GET"
                if !objects.contains_key(&path)
                    && path.ends_with('s')
                    && !path.contains("/leases/")
                    && !path.contains("/configmaps/") =>
            {
                drop(objects);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\nConnection: close\r\n\r\n"
                );
                for _ in 0..100_000 {
                    if stream.write_all(b" ").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_secs(1));
                }
            }
            "GET" => match objects.get(&path) {
                Some(object) => respond(stream, "200 OK", &object.to_string()),
                None => respond(stream, "404 Not Found", &not_found()),
            },
            "POST" | "PUT" | "PATCH" => {
                let Some(mut object) = body else {
                    return respond(stream, "400 Bad Request", &not_found());
                };
                let name = object["metadata"]["name"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                let key = if request.method == "POST" {
                    format!("{path}/{name}")
                } else {
                    path.clone()
                };
                let version = objects.len() + 1;
                object["metadata"]["resourceVersion"] = serde_json::json!(version.to_string());
                objects.insert(key, object.clone());
                respond(
                    stream,
                    if request.method == "POST" {
                        "201 Created"
                    } else {
                        "200 OK"
                    },
                    &object.to_string(),
                );
            }
            "DELETE" => {
                objects.remove(&path);
                respond(
                    stream,
                    "200 OK",
                    r#"{"kind":"Status","apiVersion":"v1","status":"Success"}"#,
                );
            }
            _ => respond(stream, "404 Not Found", &not_found()),
        }
    });
    let plan = plan_dir(fake.dir.path());
    let out = fake.run_for(
        &["apply", &plan, "--yes", "--lease-seconds", "6"],
        &[("CNISWAP_MAX_REQUEST_SECONDS", "4")],
        Duration::from_secs(60),
    );
    let (stderr, took, ended) = (&out.stderr, out.took, out.ended);
    let lease = "/apis/coordination.k8s.io/v1/namespaces/kube-system/leases";
    eprintln!(
        "apply with a stuck read: ended {ended} after {took:?}; lease writes: {} PUT, {} DELETE",
        fake.count("PUT", lease),
        fake.count("DELETE", lease)
    );
    assert!(
        ended,
        "apply still ran after 60 s (lease renewed {} times)\n{stderr}",
        fake.count("PUT", lease)
    );
    assert_ne!(out.code, 0, "{stderr}");
    assert!(stderr.contains("CNISWAP_MAX_REQUEST_SECONDS"), "{stderr}");
    assert!(
        fake.count("POST", lease) == 1,
        "the Lease was taken: {stderr}"
    );
    assert_eq!(
        fake.count("DELETE", lease),
        1,
        "the Lease was given back: {stderr}"
    );
    assert!(!store.lock().unwrap().keys().any(|k| k.contains("/leases/")));
    assert!(took < Duration::from_secs(30), "{took:?}");
}
