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
                "--resolv-conf",
                resolv_conf,
            ])
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

/// A minimal HTTP/1.1 client for the agent's API (one request per connection).
fn http(ip: IpAddr, method: &str, path: &str, body: &str) -> std::io::Result<String> {
    let addr = SocketAddr::new(ip, cniswap_verify::names::HTTP_PORT);
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_millis(500))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: agent\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
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
