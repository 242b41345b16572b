//! `cniswap agent probe` on real kernel objects: agents run as the real binary in throwaway
//! network namespaces joined by a bridge (one namespace per "node"); the test talks to their
//! HTTP API over a veth from the root namespace, and breaks paths with iptables, link down
//! and MTU changes. Needs root and iproute2 + iptables (scripts/test.sh installs them).

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use cniswap_verify::gaps::Tracker;
use cniswap_verify::wire::{
    Check, CheckRequest, CheckResponse, DnsExpect, Identity, Probe, ProbeConfig, ProbeMode,
    ProbeTarget, ResultsPage,
};
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, UdpSocket};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// The token every test agent demands (verify makes a new random one for each run).
const TOKEN: &str = "test-token-0123456789abcdef";

fn sh(netns: Option<&str>, script: &str) {
    let mut cmd = match netns {
        Some(ns) => {
            let mut c = Command::new("ip");
            c.args(["netns", "exec", ns, "sh", "-ec", script]);
            c
        }
        None => {
            let mut c = Command::new("sh");
            c.args(["-ec", script]);
            c
        }
    };
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A bridge in its own namespace, nodes hanging off it, and a veth from the root namespace
/// so the test can reach every node. Everything is removed on drop, panics included.
struct Net {
    prefix: String,
    subnet: String,
    switch: String,
    nodes: Vec<String>,
    agents: Vec<Child>,
    dir: tempfile::TempDir,
}

impl Net {
    fn new(nodes: usize) -> Net {
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let prefix = format!("cnsw-verify-{pid}-{n}");
        let subnet = format!("172.30.{}", (pid as usize * 7 + n) % 250 + 1);
        let switch = format!("{prefix}-sw");
        let root_if = format!("cnv{:x}{n}", pid % 0xffffff);
        let mut net = Net {
            prefix: prefix.clone(),
            subnet: subnet.clone(),
            switch: switch.clone(),
            nodes: vec![],
            agents: vec![],
            dir: tempfile::tempdir().unwrap(),
        };
        sh(None, &format!("ip netns add {switch}"));
        sh(
            Some(&switch),
            "ip link set lo up; ip link add br0 type bridge; ip link set br0 up",
        );
        sh(
            None,
            &format!(
                "ip link add {root_if} type veth peer name up0 netns {switch}
                 ip addr add {subnet}.1/24 dev {root_if}; ip link set {root_if} up"
            ),
        );
        sh(
            Some(&switch),
            "ip link set up0 master br0; ip link set up0 up",
        );
        for i in 0..nodes {
            let ns = format!("{prefix}-n{i}");
            sh(None, &format!("ip netns add {ns}"));
            net.nodes.push(ns.clone());
            sh(
                Some(&switch),
                &format!(
                    "ip link add n{i} type veth peer name eth0 netns {ns}
                     ip link set n{i} master br0; ip link set n{i} up"
                ),
            );
            sh(
                Some(&ns),
                &format!(
                    "ip link set lo up; ip addr add {subnet}.{}/24 dev eth0; ip link set eth0 up
                     ip route add default via {subnet}.1",
                    10 + i
                ),
            );
        }
        net
    }

    fn ip(&self, node: usize) -> IpAddr {
        format!("{}.{}", self.subnet, 10 + node).parse().unwrap()
    }

    fn resolv_conf(&self, text: &str) -> String {
        let path = self.dir.path().join("resolv.conf");
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    }

    /// Starts `cniswap agent probe` in node `i`'s namespace and waits until it answers.
    fn agent(&mut self, i: usize, role: &str, resolv_conf: &str) -> Identity {
        self.agent_as(i, role, resolv_conf, &[])
    }

    /// Like `agent`, with `wrapper` (e.g. setpriv) between `ip netns exec` and cniswap.
    fn agent_as(&mut self, i: usize, role: &str, resolv_conf: &str, wrapper: &[&str]) -> Identity {
        self.agent_with(i, role, resolv_conf, wrapper, &[])
    }

    /// Like `agent_as`, with `extra` arguments for cniswap.
    fn agent_with(
        &mut self,
        i: usize,
        role: &str,
        resolv_conf: &str,
        wrapper: &[&str],
        extra: &[&str],
    ) -> Identity {
        let child = Command::new("ip")
            .args(["netns", "exec", &self.nodes[i]])
            .args(wrapper)
            .arg(env!("CARGO_BIN_EXE_cniswap"))
            .args([
                "agent",
                "probe",
                "--role",
                role,
                "--node",
                &format!("node-{i}"),
            ])
            .args([
                "--ip",
                &self.ip(i).to_string(),
                "--http-bind",
                &self.ip(i).to_string(),
                "--resolv-conf",
                resolv_conf,
            ])
            .args(extra)
            .env("CNISWAP_AGENT_TOKEN", TOKEN)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        self.agents.push(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Ok(body) = http(self.ip(i), "GET", "/", "") {
                return serde_json::from_str(&body).unwrap();
            }
            assert!(
                Instant::now() < deadline,
                "agent in node {i} did not answer"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn node(&self, i: usize) -> &str {
        &self.nodes[i]
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        for child in &mut self.agents {
            let _ = child.kill();
            let _ = child.wait();
        }
        for ns in self.nodes.iter().chain([&self.switch]) {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = &self.prefix;
    }
}

/// A minimal HTTP/1.1 client for the agent's API (one request per connection), with the
/// test token.
fn http(ip: IpAddr, method: &str, path: &str, body: &str) -> std::io::Result<String> {
    http_as(ip, Some(TOKEN), method, path, body)
}

fn http_as(
    ip: IpAddr,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: &str,
) -> std::io::Result<String> {
    let addr = SocketAddr::new(ip, cniswap_verify::names::HTTP_PORT);
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let auth = token.map_or(String::new(), |t| format!("Authorization: Bearer {t}\r\n"));
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: agent\r\nConnection: close\r\n{auth}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no HTTP header"))?;
    if !head.starts_with("HTTP/1.1 200") {
        return Err(std::io::Error::other(format!("{head}\n{body}")));
    }
    Ok(body.to_string())
}

fn check(ip: IpAddr, probes: &[Probe], timeout_ms: u64) -> CheckResponse {
    let request = CheckRequest {
        checks: probes
            .iter()
            .enumerate()
            .map(|(i, p)| Check {
                id: i as u32,
                probe: p.clone(),
            })
            .collect(),
        timeout_ms,
        concurrency: 8,
    };
    let body = http(
        ip,
        "POST",
        "/check",
        &serde_json::to_string(&request).unwrap(),
    )
    .unwrap();
    serde_json::from_str(&body).unwrap()
}

fn echo(ip: IpAddr) -> SocketAddr {
    SocketAddr::new(ip, cniswap_verify::names::ECHO_PORT)
}

#[test]
fn one_shot_probes_pass_then_each_injected_fault_fails_its_probe() {
    let mut net = Net::new(2);
    let resolv = net.resolv_conf("nameserver 192.0.2.1\n");
    let a = net.agent(0, "probe", &resolv);
    net.agent(1, "peer", &resolv);
    assert_eq!(a.interface.as_deref(), Some("eth0"));
    assert_eq!(a.mtu, Some(1500));
    let b = net.ip(1);
    let mtu_probe = Probe::UdpEcho {
        addr: echo(b),
        size: cniswap_verify::wire::payload_for_mtu(1500, false),
        dont_fragment: true,
    };
    let probes = vec![
        Probe::TcpEcho { addr: echo(b) },
        Probe::UdpEcho {
            addr: echo(b),
            size: 16,
            dont_fragment: false,
        },
        mtu_probe.clone(),
        Probe::TcpConnect {
            addr: SocketAddr::new(b, cniswap_verify::names::HTTP_PORT),
        },
        Probe::TcpEcho {
            addr: SocketAddr::new(b, 1),
        },
    ];
    let healthy = check(net.ip(0), &probes, 1000);
    let ok: Vec<bool> = healthy.results.iter().map(|r| r.ok).collect();
    assert_eq!(ok, [true, true, true, true, false], "{healthy:?}");
    assert_eq!(
        healthy.results[4].error.as_deref(),
        Some("connection refused")
    );

    // UDP dropped on the way in to node 1: UDP fails, TCP passes.
    sh(
        Some(net.node(1)),
        "iptables -w -A INPUT -p udp --dport 9440 -j DROP",
    );
    let r = check(net.ip(0), &probes[..3], 600);
    assert!(r.results[0].ok, "{r:?}");
    assert_eq!(r.results[1].error.as_deref(), Some("timed out after 600ms"));
    assert!(!r.results[2].ok);
    sh(Some(net.node(1)), "iptables -w -F INPUT");

    // A smaller MTU on node 1's link: full-size don't-fragment packets are dropped there,
    // small ones still pass.
    sh(Some(net.node(1)), "ip link set eth0 mtu 1400");
    let r = check(net.ip(0), &[probes[1].clone(), mtu_probe.clone()], 1000);
    assert!(r.results[0].ok, "{r:?}");
    assert!(!r.results[1].ok, "{r:?}");
    // Sending from node 1 (MTU 1400) with node 1's full MTU size passes; 1500 fails at once.
    let from_b = check(
        b,
        &[
            Probe::UdpEcho {
                addr: echo(net.ip(0)),
                size: cniswap_verify::wire::payload_for_mtu(1400, false),
                dont_fragment: true,
            },
            Probe::UdpEcho {
                addr: echo(net.ip(0)),
                size: cniswap_verify::wire::payload_for_mtu(1500, false),
                dont_fragment: true,
            },
        ],
        1000,
    );
    assert!(from_b.results[0].ok, "{from_b:?}");
    assert!(
        from_b.results[1]
            .error
            .as_deref()
            .unwrap()
            .starts_with("message too long"),
        "{from_b:?}"
    );
    sh(Some(net.node(1)), "ip link set eth0 mtu 1500");

    // Node 1's link down: everything to it times out.
    sh(Some(net.node(1)), "ip link set eth0 down");
    let r = check(net.ip(0), &probes[..2], 500);
    assert!(r.results.iter().all(|r| !r.ok), "{r:?}");
}

/// A DNS server in the test process on the root end of the veth.
/// While `mute` is set it reads queries and answers none (a DNS server that is unreachable).
fn dns_server(
    ip: IpAddr,
    mute: std::sync::Arc<std::sync::atomic::AtomicBool>,
    answers: Vec<(&'static str, IpAddr)>,
) -> std::thread::JoinHandle<()> {
    use hickory_resolver::proto::op::{Message, MessageType, ResponseCode};
    use hickory_resolver::proto::rr::{RData, Record, rdata::A};
    let socket = UdpSocket::bind(SocketAddr::new(ip, 53)).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    std::thread::spawn(move || {
        let mut buf = [0u8; 1500];
        while let Ok((n, from)) = socket.recv_from(&mut buf) {
            if mute.load(Ordering::SeqCst) {
                continue;
            }
            let Ok(query) = Message::from_vec(&buf[..n]) else {
                continue;
            };
            let mut reply = Message::new(
                query.metadata.id,
                MessageType::Response,
                query.metadata.op_code,
            );
            reply.metadata.recursion_desired = query.metadata.recursion_desired;
            reply.metadata.recursion_available = true;
            reply.queries = query.queries.clone();
            let mut found = false;
            for q in &query.queries {
                let name = q.name().to_ascii();
                for (n, ip) in &answers {
                    if name.trim_end_matches('.') == *n
                        && q.query_type() == hickory_resolver::proto::rr::RecordType::A
                        && let IpAddr::V4(v4) = ip
                    {
                        reply.answers.push(Record::from_rdata(
                            q.name().clone(),
                            5,
                            RData::A(A(*v4)),
                        ));
                    }
                    found |= name.trim_end_matches('.') == *n;
                }
            }
            if !found {
                reply.metadata.response_code = ResponseCode::NXDomain;
            }
            let _ = socket.send_to(&reply.to_vec().unwrap(), from);
        }
    })
}

#[test]
fn dns_probes_check_the_answer_and_time_out_when_dns_is_dropped() {
    let mut net = Net::new(1);
    let server_ip: IpAddr = format!("{}.1", net.subnet).parse().unwrap();
    let mute = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let _server = dns_server(
        server_ip,
        std::sync::Arc::clone(&mute),
        vec![
            (
                "kubernetes.default.svc.cluster.local",
                "10.96.0.1".parse().unwrap(),
            ),
            (
                "cniswap-probe-headless.cniswap-verify.svc.cluster.local",
                "10.244.1.2".parse().unwrap(),
            ),
        ],
    );
    let resolv = net.resolv_conf(&format!(
        "search cniswap-verify.svc.cluster.local svc.cluster.local cluster.local\nnameserver {server_ip}\noptions ndots:5\n"
    ));
    let a = net.agent(0, "probe", &resolv);
    assert_eq!(a.search.last().map(String::as_str), Some("cluster.local"));
    let dns = |name: &str, expect: DnsExpect| Probe::Dns {
        name: name.into(),
        expect,
    };
    let probes = vec![
        dns(
            "kubernetes.default.svc.cluster.local.",
            DnsExpect::Contains("10.96.0.1".parse().unwrap()),
        ),
        dns(
            "kubernetes.default.svc.cluster.local.",
            DnsExpect::Contains("10.96.0.2".parse().unwrap()),
        ),
        dns(
            "cniswap-probe-headless.cniswap-verify.svc.cluster.local.",
            DnsExpect::Subset(vec![
                "10.244.1.2".parse().unwrap(),
                "10.244.2.2".parse().unwrap(),
            ]),
        ),
        dns("missing.default.svc.cluster.local.", DnsExpect::Any),
    ];
    let r = check(net.ip(0), &probes, 2000);
    assert!(r.results[0].ok, "{r:?}");
    assert_eq!(
        r.results[1].error.as_deref(),
        Some("answer [10.96.0.1] lacks 10.96.0.2")
    );
    assert!(r.results[2].ok, "{r:?}");
    assert!(!r.results[3].ok, "{r:?}");

    // The nameserver stops answering (CoreDNS gone or unreachable).
    mute.store(true, Ordering::SeqCst);
    let r = check(net.ip(0), &probes[..1], 1500);
    let error = r.results[0].error.as_deref().unwrap();
    assert!(
        error.starts_with("no answer from the nameserver") || error.starts_with("timed out"),
        "{r:?}"
    );
}

fn fetch(ip: IpAddr, since: u64) -> ResultsPage {
    serde_json::from_str(&http(ip, "GET", &format!("/results?since={since}"), "").unwrap()).unwrap()
}

#[test]
fn continuous_probing_measures_a_three_second_outage_on_the_paths_through_it_only() {
    let mut net = Net::new(3);
    let resolv = net.resolv_conf("nameserver 192.0.2.1\n");
    net.agent(0, "probe", &resolv);
    net.agent(1, "peer", &resolv);
    net.agent(2, "peer", &resolv);
    let config = ProbeConfig {
        interval_ms: 100,
        timeout_ms: 500,
        targets: vec![
            ProbeTarget {
                path: 1,
                mode: ProbeMode::Udp {
                    addr: echo(net.ip(1)),
                },
            },
            ProbeTarget {
                path: 2,
                mode: ProbeMode::TcpStream {
                    addr: echo(net.ip(1)),
                },
            },
            ProbeTarget {
                path: 3,
                mode: ProbeMode::TcpConnect {
                    addr: echo(net.ip(1)),
                },
            },
            ProbeTarget {
                path: 11,
                mode: ProbeMode::Udp {
                    addr: echo(net.ip(2)),
                },
            },
            ProbeTarget {
                path: 12,
                mode: ProbeMode::TcpStream {
                    addr: echo(net.ip(2)),
                },
            },
        ],
    };
    http(
        net.ip(0),
        "PUT",
        "/probe",
        &serde_json::to_string(&config).unwrap(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    // Node 1's link down for 3 s, timed from here.
    let down = Instant::now();
    sh(Some(net.node(1)), "ip link set eth0 down");
    std::thread::sleep(Duration::from_secs(3) - down.elapsed());
    sh(Some(net.node(1)), "ip link set eth0 up");
    let truth = down.elapsed().as_secs_f64();
    std::thread::sleep(Duration::from_secs(4));
    let page = fetch(net.ip(0), 0);
    assert_eq!(page.dropped, 0);
    let mut trackers: std::collections::BTreeMap<u32, Tracker> = Default::default();
    for r in &page.records {
        trackers
            .entry(r.p)
            .or_default()
            .add(page.start_unix_us + r.t as i64, r.rtt, r.e.clone());
    }
    for t in trackers.values_mut() {
        t.advance(page.start_unix_us + page.complete_before_us as i64);
    }
    let stats = |p: u32| &trackers[&p].stats;
    // Datagrams and fresh connections see one gap within 0.5 s of the truth.
    for p in [1, 3] {
        let s = stats(p);
        assert_eq!(s.gaps.len(), 1, "path {p}: {s:?}");
        let measured = s.gaps[0].duration_s();
        assert!(
            (measured - truth).abs() <= 0.5,
            "path {p}: measured {measured}, truth {truth}"
        );
        assert!(s.probes >= 60, "path {p}: {} probes", s.probes);
    }
    // The long-lived connection sees it too (TCP's retransmission back-off may stretch it).
    assert_eq!(stats(2).gaps.len(), 1, "{:?}", stats(2));
    assert!(stats(2).gaps[0].duration_s() >= truth - 0.5);
    // Paths to node 2 lost nothing.
    for p in [11, 12] {
        assert_eq!(stats(p).lost, 0, "path {p}: {:?}", stats(p));
        assert!(stats(p).probes >= 60);
    }
    // Fetching again from `next` gives only newer records.
    let later = fetch(net.ip(0), page.next);
    assert!(
        later
            .records
            .iter()
            .all(|r| r.t > page.records.iter().map(|r| r.t).min().unwrap())
    );
}

#[test]
fn continuous_tcp_stream_counts_resets() {
    let mut net = Net::new(2);
    let resolv = net.resolv_conf("nameserver 192.0.2.1\n");
    net.agent(0, "probe", &resolv);
    net.agent(1, "peer", &resolv);
    let config = ProbeConfig {
        interval_ms: 100,
        timeout_ms: 500,
        targets: vec![ProbeTarget {
            path: 7,
            mode: ProbeMode::TcpStream {
                addr: echo(net.ip(1)),
            },
        }],
    };
    http(
        net.ip(0),
        "PUT",
        "/probe",
        &serde_json::to_string(&config).unwrap(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(800));
    // Node 1 answers its established connections with a reset for a moment.
    sh(
        Some(net.node(1)),
        "iptables -w -I INPUT -p tcp --dport 9440 -j REJECT --reject-with tcp-reset",
    );
    std::thread::sleep(Duration::from_millis(600));
    sh(Some(net.node(1)), "iptables -w -F INPUT");
    std::thread::sleep(Duration::from_millis(1500));
    let page = fetch(net.ip(0), 0);
    let resets = page
        .resets
        .iter()
        .find(|c| c.path == 7)
        .map_or(0, |c| c.count);
    assert!(resets >= 1, "{page:?}");
    // It reconnected: the last probes passed.
    let last: Vec<&cniswap_verify::wire::Record> = page
        .records
        .iter()
        .filter(|r| r.p == 7)
        .rev()
        .take(3)
        .collect();
    assert!(last.iter().all(|r| r.ok()), "{last:?}");
}

/// What the restricted Pod Security profile allows: a non-root user, no capabilities at all,
/// no privilege escalation. The agent still serves and probes (TCP, UDP, don't-fragment UDP).
#[test]
fn the_agent_needs_no_root_and_no_capabilities() {
    let mut net = Net::new(2);
    let resolv = net.resolv_conf("nameserver 192.0.2.1\n");
    let unprivileged = [
        "setpriv",
        "--reuid=65532",
        "--regid=65532",
        "--clear-groups",
        "--inh-caps=-all",
        "--bounding-set=-all",
        "--no-new-privs",
    ];
    net.agent_as(0, "probe", &resolv, &unprivileged);
    net.agent_as(1, "peer", &resolv, &unprivileged);
    // `ip netns exec` execs setpriv, which execs cniswap: same pid.
    let status = std::fs::read_to_string(format!("/proc/{}/status", net.agents[0].id())).unwrap();
    assert!(status.contains("Uid:\t65532"), "{status}");
    assert!(status.contains("CapEff:\t0000000000000000"), "{status}");
    assert!(status.contains("NoNewPrivs:\t1"), "{status}");
    let b = net.ip(1);
    let r = check(
        net.ip(0),
        &[
            Probe::TcpEcho { addr: echo(b) },
            Probe::UdpEcho {
                addr: echo(b),
                size: 16,
                dont_fragment: false,
            },
            Probe::UdpEcho {
                addr: echo(b),
                size: cniswap_verify::wire::payload_for_mtu(1500, false),
                dont_fragment: true,
            },
        ],
        1000,
    );
    assert!(r.results.iter().all(|r| r.ok), "{r:?}");
}

/// A host answers from whichever of its addresses routes back, not always the one it was sent
/// to (a node replying to its own pod uses its bridge address). Continuous UDP probes must
/// count such replies: node 1 also owns an address on lo, node 0 routes it through node 1, and
/// node 1's replies come from its eth0 address.
#[test]
fn continuous_udp_accepts_replies_from_another_address_of_the_target() {
    let mut net = Net::new(2);
    let resolv = net.resolv_conf("nameserver 192.0.2.1\n");
    net.agent(0, "probe", &resolv);
    net.agent(1, "peer", &resolv);
    let extra: IpAddr = format!("{}.211", net.subnet).parse().unwrap();
    sh(Some(net.node(1)), &format!("ip addr add {extra}/32 dev lo"));
    sh(
        Some(net.node(0)),
        &format!("ip route add {extra}/32 via {}", net.ip(1)),
    );
    let config = ProbeConfig {
        interval_ms: 100,
        timeout_ms: 500,
        targets: vec![ProbeTarget {
            path: 1,
            mode: ProbeMode::Udp { addr: echo(extra) },
        }],
    };
    http(
        net.ip(0),
        "PUT",
        "/probe",
        &serde_json::to_string(&config).unwrap(),
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(2000));
    let page = fetch(net.ip(0), 0);
    let records: Vec<_> = page.records.iter().filter(|r| r.p == 1).collect();
    assert!(records.len() >= 10, "{page:?}");
    assert!(records.iter().all(|r| r.ok()), "{records:?}");
}

// ---- Hostile input (issue 20 §4): everything below attacks a real agent and then checks it
// still answers the real client, with its memory bounded.

/// Resident memory now and at its peak (KiB) of a process.
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap()
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// The status line and body of a request (any status).
fn http_any(ip: IpAddr, token: Option<&str>, method: &str, path: &str, body: &str) -> String {
    match http_as(ip, token, method, path, body) {
        Ok(body) => format!("HTTP/1.1 200 OK\n{body}"),
        Err(e) => e.to_string(),
    }
}

/// The agent answers its real client: identity, and a check that passes.
fn still_answers(net: &Net, from: usize, to: usize) {
    let r = check(
        net.ip(from),
        &[Probe::UdpEcho {
            addr: echo(net.ip(to)),
            size: 16,
            dont_fragment: false,
        }],
        1000,
    );
    assert!(r.results[0].ok, "{r:?}");
}

#[test]
fn the_api_answers_only_the_token_and_bounded_requests() {
    let mut net = Net::new(2);
    let resolv = net.resolv_conf("nameserver 192.0.2.1\n");
    net.agent(0, "probe", &resolv);
    net.agent(1, "peer", &resolv);
    let a = net.ip(0);
    let pid = net.agents[0].id();

    // No token, a wrong one, one of the wrong length: 401 on every endpoint but /healthz.
    for token in [None, Some("test-token-0123456789abcdeX"), Some("short")] {
        for (method, path) in [
            ("GET", "/"),
            ("POST", "/check"),
            ("PUT", "/probe"),
            ("GET", "/results?since=0"),
            ("DELETE", "/probe"),
        ] {
            let answer = http_any(a, token, method, path, "{}");
            assert!(
                answer.starts_with("HTTP/1.1 401"),
                "{method} {path} with {token:?}: {answer}"
            );
        }
    }
    assert_eq!(http_as(a, None, "GET", "/healthz", "").unwrap(), "ok");

    // A UDP echo size of 2^40 is refused before anything is allocated.
    let started = Instant::now();
    let huge = CheckRequest {
        checks: vec![Check {
            id: 0,
            probe: Probe::UdpEcho {
                addr: echo(net.ip(1)),
                size: 1 << 40,
                dont_fragment: false,
            },
        }],
        timeout_ms: 1000,
        concurrency: 1,
    };
    let answer = http_any(
        a,
        Some(TOKEN),
        "POST",
        "/check",
        &serde_json::to_string(&huge).unwrap(),
    );
    assert!(
        answer.starts_with("HTTP/1.1 400")
            && answer.contains("1099511627776 is over the largest UDP payload (65507)"),
        "{answer}"
    );
    eprintln!("2^40 echo size refused in {:?}", started.elapsed());

    // 64 checks of 256 MiB each: refused; 64 of the largest UDP payload there is: run.
    let checks = |size: usize| CheckRequest {
        checks: (0..64)
            .map(|id| Check {
                id,
                probe: Probe::UdpEcho {
                    addr: echo(net.ip(1)),
                    size,
                    dont_fragment: false,
                },
            })
            .collect(),
        timeout_ms: 2000,
        concurrency: 64,
    };
    let answer = http_any(
        a,
        Some(TOKEN),
        "POST",
        "/check",
        &serde_json::to_string(&checks(256 << 20)).unwrap(),
    );
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    let started = Instant::now();
    let big: CheckResponse = serde_json::from_str(
        &http(
            a,
            "POST",
            "/check",
            &serde_json::to_string(&checks(65_507)).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(big.results.len(), 64);
    eprintln!(
        "64 checks of 65,507 bytes: {} passed in {:?}",
        big.results.iter().filter(|r| r.ok).count(),
        started.elapsed()
    );

    // 20,000 continuous targets: refused at once, nothing started.
    let started = Instant::now();
    let config = ProbeConfig {
        interval_ms: 100,
        timeout_ms: 500,
        targets: (0..20_000)
            .map(|path| ProbeTarget {
                path,
                mode: ProbeMode::Udp {
                    addr: echo(net.ip(1)),
                },
            })
            .collect(),
    };
    let answer = http_any(
        a,
        Some(TOKEN),
        "PUT",
        "/probe",
        &serde_json::to_string(&config).unwrap(),
    );
    assert!(
        answer.starts_with("HTTP/1.1 400") && answer.contains("20000 targets are over 10000"),
        "{answer}"
    );
    eprintln!("20,000 targets refused in {:?}", started.elapsed());
    // A body over the limit (8 MiB) is refused too.
    let answer = http_any(a, Some(TOKEN), "POST", "/check", &" ".repeat(9 << 20));
    assert!(
        answer.starts_with("HTTP/1.1 400"),
        "{}",
        &answer[..answer.len().min(200)]
    );

    still_answers(&net, 0, 1);
    let (rss, peak) = rss_kib(pid);
    eprintln!("agent RSS after the attacks: {rss} KiB, peak {peak} KiB");
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
}

/// Sends one UDP datagram from `from` (an address that is not this host's) to `to`, through a
/// raw socket: the spoofed packet an attacker on the network sends.
fn spoof_udp(from: SocketAddr, to: SocketAddr, payload: &[u8]) {
    let (SocketAddr::V4(from), SocketAddr::V4(to)) = (from, to) else {
        panic!("IPv4 only")
    };
    let total = 20 + 8 + payload.len();
    let mut packet = vec![0u8; total];
    packet[0] = 0x45;
    packet[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    packet[8] = 64;
    packet[9] = 17;
    packet[12..16].copy_from_slice(&from.ip().octets());
    packet[16..20].copy_from_slice(&to.ip().octets());
    let mut sum: u32 = packet[..20]
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    packet[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    packet[20..22].copy_from_slice(&from.port().to_be_bytes());
    packet[22..24].copy_from_slice(&to.port().to_be_bytes());
    packet[24..26].copy_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    // UDP checksum 0: none (allowed over IPv4).
    packet[28..].copy_from_slice(payload);
    use rustix::net::{AddressFamily, SendFlags, SocketType, ipproto};
    let socket = rustix::net::socket(AddressFamily::INET, SocketType::RAW, Some(ipproto::RAW))
        .expect("a raw socket (the test runs as root)");
    let sent = rustix::net::sendto(&socket, &packet, SendFlags::empty(), &SocketAddr::V4(to))
        .expect("sendto");
    assert_eq!(sent, packet.len());
}

/// Packets counted by an `iptables` rule that matches UDP to the echo port in a node.
fn echo_packets_in(node: &str) -> u64 {
    let out = Command::new("ip")
        .args([
            "netns", "exec", node, "iptables", "-w", "-L", "INPUT", "-v", "-x", "-n",
        ])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find(|l| l.contains("udp dpt:9440"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no counter in {text}"))
}

#[test]
fn a_spoofed_echo_between_two_agents_gets_one_reply_not_a_loop() {
    let mut net = Net::new(2);
    let resolv = net.resolv_conf("nameserver 192.0.2.1\n");
    net.agent(0, "probe", &resolv);
    net.agent(1, "peer", &resolv);
    for i in 0..2 {
        sh(
            Some(net.node(i)),
            "iptables -w -A INPUT -p udp --dport 9440",
        );
    }
    // A request that claims to come from agent 0's echo port, sent to agent 1's: agent 1
    // answers it (to agent 0), agent 0 does not answer the answer.
    let request = {
        let mut p = vec![];
        p.extend_from_slice(&cniswap_verify::wire::REQUEST_MAGIC);
        p.extend_from_slice(&[7u8; 12]);
        p
    };
    spoof_udp(echo(net.ip(0)), echo(net.ip(1)), &request);
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(echo_packets_in(net.node(1)), 1);
    assert_eq!(echo_packets_in(net.node(0)), 1);
    // An echo (a reply) sent to an echo port is not answered at all.
    let mut reply = request.clone();
    reply[..4].copy_from_slice(&cniswap_verify::wire::REPLY_MAGIC);
    spoof_udp(echo(net.ip(0)), echo(net.ip(1)), &reply);
    spoof_udp(echo(net.ip(0)), echo(net.ip(1)), b"not the probe protocol");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(echo_packets_in(net.node(1)), 3);
    assert_eq!(echo_packets_in(net.node(0)), 1);
    // TCP echo closes a connection that sends anything but a request frame.
    let mut stream = TcpStream::connect(echo(net.ip(1))).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(stream.read(&mut buf).unwrap_or(0), 0);
    still_answers(&net, 0, 1);
}

/// Reads until the peer closes; how long that took (None: still open after `within`).
fn closed_within(stream: &mut TcpStream, within: Duration) -> Option<Duration> {
    let start = Instant::now();
    stream.set_read_timeout(Some(within)).unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Some(start.elapsed()),
            Ok(_) => continue,
            Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset) => {
                return Some(start.elapsed());
            }
            Err(_) => return None,
        }
    }
}

#[test]
fn idle_slow_and_excess_connections_are_closed_and_the_agent_keeps_answering() {
    let mut net = Net::new(2);
    let resolv = net.resolv_conf("nameserver 192.0.2.1\n");
    net.agent_with(0, "probe", &resolv, &[], &["--idle-timeout", "2"]);
    net.agent(1, "peer", &resolv);
    let a = net.ip(0);
    let pid = net.agents[0].id();
    let http_addr = SocketAddr::new(a, cniswap_verify::names::HTTP_PORT);

    // A slowloris client: a header that never ends, one byte every 300 ms.
    let mut slow = TcpStream::connect(http_addr).unwrap();
    let slowloris = std::thread::spawn(move || {
        let start = Instant::now();
        for b in b"GET / HTTP/1.1\r\nHost: agent\r\nX-Slow: ".iter().cycle() {
            if slow.write_all(&[*b]).is_err() {
                return Some(start.elapsed());
            }
            std::thread::sleep(Duration::from_millis(300));
            if start.elapsed() > Duration::from_secs(20) {
                return None;
            }
        }
        None
    });
    std::thread::sleep(Duration::from_millis(100));
    // 1,000 idle echo connections and 1,000 idle HTTP connections.
    let started = Instant::now();
    let mut echo_idle: Vec<TcpStream> = (0..1000)
        .map(|_| TcpStream::connect(echo(a)).unwrap())
        .collect();
    let mut http_idle: Vec<TcpStream> = (0..1000)
        .filter_map(|_| TcpStream::connect(http_addr).ok())
        .collect();
    eprintln!("2,000 connections opened in {:?}", started.elapsed());
    std::thread::sleep(Duration::from_millis(500));
    let (rss, _) = rss_kib(pid);
    eprintln!("agent RSS with 2,000 idle connections and a slowloris client: {rss} KiB");

    // HTTP connections over the cap (32, the slowloris client holds one) were closed at once.
    let refused = http_idle
        .iter_mut()
        .filter_map(|s| closed_within(s, Duration::from_millis(100)))
        .count();
    assert!(
        refused >= http_idle.len() - 31,
        "{refused} of {} closed",
        http_idle.len()
    );

    // The idle ones are closed after the idle timeout (2 s), the echo ones too.
    for s in http_idle[..31]
        .iter_mut()
        .chain(echo_idle.iter_mut().take(50))
    {
        let took =
            closed_within(s, Duration::from_secs(5)).expect("an idle connection stayed open");
        assert!(took < Duration::from_secs(4), "{took:?}");
    }
    let slow_closed = slowloris
        .join()
        .unwrap()
        .expect("the slowloris connection stayed open");
    eprintln!("slowloris connection closed after {slow_closed:?}");
    assert!(slow_closed < Duration::from_secs(6), "{slow_closed:?}");
    still_answers(&net, 0, 1);
    let (rss, peak) = rss_kib(pid);
    eprintln!("agent RSS afterwards: {rss} KiB, peak {peak} KiB");
    assert!(peak < 64 * 1024, "peak RSS {peak} KiB");
}

#[test]
fn the_agent_refuses_to_start_without_a_token() {
    let out = Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args(["agent", "probe", "--echo-port", "0", "--http-port", "0"])
        .env_remove("CNISWAP_AGENT_TOKEN")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("CNISWAP_AGENT_TOKEN"), "{stderr}");
}
