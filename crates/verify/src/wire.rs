//! The probe agent's HTTP API: what `cniswap verify` sends to an agent and what it gets back.
//!
//! Endpoints (all JSON):
//! - `GET /` → [`Identity`]: who and where the agent is.
//! - `POST /check` with a [`CheckRequest`] → [`CheckResponse`]: run probes once, now.
//! - `PUT /probe` with a [`ProbeConfig`] → [`Identity`]: probe these targets every interval
//!   until replaced or `DELETE /probe`.
//! - `GET /results?since=N` → [`ResultsPage`]: every continuous result recorded from number N.
//! - `GET /healthz` → `ok`.

use serde::{Deserialize, Serialize};
use std::net::{IpAddr, SocketAddr};

/// What an agent is for. All roles serve TCP and UDP echo; `Probe` and `Host` also probe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    /// The pod-network prober on each node (DaemonSet `cniswap-probe`).
    Probe,
    /// A second pod-network pod on each node: the same-node peer and the Service backend.
    Peer,
    /// The hostNetwork agent on each node (DaemonSet `cniswap-probe-host`).
    Host,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Probe => "probe",
            Role::Peer => "peer",
            Role::Host => "host",
        }
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "probe" => Ok(Role::Probe),
            "peer" => Ok(Role::Peer),
            "host" => Ok(Role::Host),
            other => Err(format!(
                "unknown role {other:?}: expected probe, peer or host"
            )),
        }
    }
}

/// `GET /`: the agent's identity and what it sees of its own network.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub role: Role,
    pub node: String,
    pub pod: String,
    pub namespace: String,
    /// The address others reach this agent on (pod IP, or node IP for the host agent).
    pub ip: Option<IpAddr>,
    pub host_network: bool,
    /// TCP and UDP echo port.
    pub echo_port: u16,
    pub http_port: u16,
    /// The interface of the default route and its MTU (the largest packet a path must carry).
    pub interface: Option<String>,
    pub mtu: Option<u32>,
    /// `search` domains and nameservers of /etc/resolv.conf.
    pub search: Vec<String>,
    pub nameservers: Vec<IpAddr>,
    pub version: String,
    /// A new random id each time the agent starts; results restart with it.
    pub session: String,
    /// Wall-clock time (Unix microseconds) at which the agent's monotonic clock read zero.
    pub start_unix_us: i64,
}

/// One thing to try once. Every probe is plain TCP, UDP or DNS: no ICMP, no privileges.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Probe {
    /// Connect, send a random nonce, read it back.
    TcpEcho { addr: SocketAddr },
    /// Send a datagram of `size` bytes of UDP payload (at least 16) and wait for the same bytes.
    /// With `dont_fragment`, the packet carries DF and fails rather than fragments.
    UdpEcho {
        addr: SocketAddr,
        size: usize,
        dont_fragment: bool,
    },
    /// Open a TCP connection and close it (for servers that do not echo: the API server, outside).
    TcpConnect { addr: SocketAddr },
    /// Resolve a name through the resolver of /etc/resolv.conf.
    Dns { name: String, expect: DnsExpect },
}

impl Probe {
    /// A short human form: `tcp 10.244.1.5:9440`, `dns kubernetes.default.svc.cluster.local`.
    pub fn describe(&self) -> String {
        match self {
            Probe::TcpEcho { addr } => format!("tcp echo {addr}"),
            Probe::UdpEcho {
                addr,
                size,
                dont_fragment,
            } => {
                if *dont_fragment {
                    format!("udp {addr}, {size} bytes, don't fragment")
                } else {
                    format!("udp echo {addr}")
                }
            }
            Probe::TcpConnect { addr } => format!("tcp connect {addr}"),
            Probe::Dns { name, .. } => format!("dns {name}"),
        }
    }
}

/// What a DNS answer must contain to pass.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", content = "addresses", rename_all = "kebab-case")]
pub enum DnsExpect {
    /// At least one address.
    Any,
    /// This address among the answers.
    Contains(IpAddr),
    /// At least one address, all of them from this set (a headless Service's pods).
    Subset(Vec<IpAddr>),
}

/// `POST /check`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRequest {
    pub checks: Vec<Check>,
    /// Per probe.
    pub timeout_ms: u64,
    /// How many probes run at once.
    pub concurrency: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Check {
    pub id: u32,
    pub probe: Probe,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResponse {
    pub results: Vec<CheckResult>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckResult {
    pub id: u32,
    pub ok: bool,
    /// Round trip (or resolution) time in microseconds, when it passed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt_us: Option<u64>,
    /// Why it failed: `timed out after 1s`, `connection refused`, `message too long`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// `PUT /probe`: probe every target each interval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeConfig {
    pub interval_ms: u64,
    pub timeout_ms: u64,
    pub targets: Vec<ProbeTarget>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeTarget {
    /// The caller's path number; records carry it back.
    pub path: u32,
    pub mode: ProbeMode,
}

/// How a continuous target is probed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ProbeMode {
    /// A numbered datagram each interval; a reply within the timeout counts.
    Udp { addr: SocketAddr },
    /// One long-lived TCP connection; a numbered message each interval whose echo must come
    /// back within the timeout. A reset or close is counted and the connection reopened.
    TcpStream { addr: SocketAddr },
    /// A fresh TCP connection each interval.
    TcpConnect { addr: SocketAddr },
    /// A DNS query each interval.
    Dns { name: String, expect: DnsExpect },
}

/// `GET /results?since=N`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResultsPage {
    pub session: String,
    pub start_unix_us: i64,
    /// Every probe sent before this monotonic time (µs) has its record in this or an earlier
    /// page: late records never appear behind it.
    pub complete_before_us: u64,
    /// Pass this as `since` next time.
    pub next: u64,
    /// Records lost because nobody fetched them before the agent's buffer filled.
    pub dropped: u64,
    pub records: Vec<Record>,
    /// Per path: TCP stream connections closed by a reset or by the peer, so far.
    pub resets: Vec<PathCount>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathCount {
    pub path: u32,
    pub count: u64,
}

/// One probe's result. Short field names: an agent sends thousands per second.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// Path number from the [`ProbeTarget`].
    pub p: u32,
    /// When the probe was sent: the agent's monotonic clock, microseconds since it started.
    pub t: u64,
    /// Round trip in microseconds; absent when the probe failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rtt: Option<u32>,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub e: Option<String>,
}

impl Record {
    pub fn ok(&self) -> bool {
        self.e.is_none()
    }
}

/// The smallest UDP probe payload (and every TCP echo frame): 4 bytes of magic, 8 of sequence
/// number, 4 of nonce.
pub const UDP_HEADER: usize = 16;
/// The magic a probe's request starts with. Echo servers answer only datagrams and frames that
/// start with it, and answer with [`REPLY_MAGIC`] in its place: a reply is never answered, so
/// a spoofed datagram cannot start an endless echo between two agents.
pub const REQUEST_MAGIC: [u8; 4] = *b"CNSq";
pub const REPLY_MAGIC: [u8; 4] = *b"CNSr";

/// The header that carries the per-run token: `Authorization: Bearer <token>`. verify generates
/// the token for each run and gives it to the agents through a Secret (env `CNISWAP_AGENT_TOKEN`).
pub const TOKEN_ENV: &str = "CNISWAP_AGENT_TOKEN";

/// What the agent accepts, so that nobody who reaches it can exhaust it. verify stays within
/// these on clusters of thousands of nodes.
pub mod bounds {
    /// Bytes of one request body.
    pub const MAX_BODY_BYTES: usize = 8 << 20;
    /// Checks in one `POST /check`.
    pub const MAX_CHECKS: usize = 16_384;
    /// Probes running at once, all requests together.
    pub const MAX_PROBES_IN_FLIGHT: usize = 256;
    /// Targets in one `PUT /probe`.
    pub const MAX_TARGETS: usize = 10_000;
    /// Probes per second all targets together may ask for (targets x 1000 / interval_ms).
    pub const MAX_PROBES_PER_SECOND: u64 = 20_000;
    /// The largest UDP payload there is (IPv4: 65,535 - 20 - 8).
    pub const MAX_UDP_PAYLOAD: usize = 65_507;
    /// A DNS name's length, and the addresses one DNS expectation may list.
    pub const MAX_NAME_BYTES: usize = 253;
    pub const MAX_EXPECTED_ADDRESSES: usize = 4_096;
    /// Interval and timeout ranges, in milliseconds.
    pub const INTERVAL_MS: std::ops::RangeInclusive<u64> = 50..=60_000;
    pub const TIMEOUT_MS: std::ops::RangeInclusive<u64> = 10..=60_000;
    /// Continuous results the agent keeps until fetched, and returns per page.
    pub const MAX_RESULTS_KEPT: usize = 200_000;
    pub const MAX_RESULTS_PER_PAGE: usize = 50_000;
    /// Connections at once: echo (TCP) and HTTP.
    pub const MAX_ECHO_CONNECTIONS: usize = 4_096;
    pub const MAX_HTTP_CONNECTIONS: usize = 32;
    /// Seconds a connection may stay silent before the agent closes it (`--idle-timeout`).
    pub const IDLE_SECONDS: u64 = 60;
    /// The client opens a new connection rather than reuse one silent this long, so it never
    /// sends into one the agent is closing.
    pub const CLIENT_REUSE_SECONDS: u64 = 30;
}

fn check_probe(probe: &Probe) -> Result<(), String> {
    match probe {
        Probe::UdpEcho { size, .. } if *size > bounds::MAX_UDP_PAYLOAD => Err(format!(
            "udp-echo size {size} is over the largest UDP payload ({})",
            bounds::MAX_UDP_PAYLOAD
        )),
        Probe::Dns { name, expect } => check_dns(name, expect),
        _ => Ok(()),
    }
}

fn check_dns(name: &str, expect: &DnsExpect) -> Result<(), String> {
    if name.len() > bounds::MAX_NAME_BYTES + 1 {
        return Err(format!(
            "DNS name of {} bytes is over {}",
            name.len(),
            bounds::MAX_NAME_BYTES
        ));
    }
    match expect {
        DnsExpect::Subset(ips) if ips.len() > bounds::MAX_EXPECTED_ADDRESSES => Err(format!(
            "{} expected addresses are over {}",
            ips.len(),
            bounds::MAX_EXPECTED_ADDRESSES
        )),
        _ => Ok(()),
    }
}

fn in_range(what: &str, value: u64, range: &std::ops::RangeInclusive<u64>) -> Result<(), String> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(format!(
            "{what} {value} is outside {}..={}",
            range.start(),
            range.end()
        ))
    }
}

impl CheckRequest {
    /// Whether the agent runs this request; the reason when it does not.
    pub fn validate(&self) -> Result<(), String> {
        if self.checks.len() > bounds::MAX_CHECKS {
            return Err(format!(
                "{} checks in one request are over {}",
                self.checks.len(),
                bounds::MAX_CHECKS
            ));
        }
        in_range("timeout_ms", self.timeout_ms, &bounds::TIMEOUT_MS)?;
        for check in &self.checks {
            check_probe(&check.probe).map_err(|e| format!("check {}: {e}", check.id))?;
        }
        Ok(())
    }
}

impl ProbeConfig {
    /// Whether the agent runs this configuration; the reason when it does not.
    pub fn validate(&self) -> Result<(), String> {
        let n = self.targets.len();
        if n > bounds::MAX_TARGETS {
            return Err(format!("{n} targets are over {}", bounds::MAX_TARGETS));
        }
        in_range("interval_ms", self.interval_ms, &bounds::INTERVAL_MS)?;
        in_range("timeout_ms", self.timeout_ms, &bounds::TIMEOUT_MS)?;
        let rate = n as u64 * 1000 / self.interval_ms.max(1);
        if rate > bounds::MAX_PROBES_PER_SECOND {
            return Err(format!(
                "{n} targets every {} ms are {rate} probes per second, over {}",
                self.interval_ms,
                bounds::MAX_PROBES_PER_SECOND
            ));
        }
        for target in &self.targets {
            if let ProbeMode::Dns { name, expect } = &target.mode {
                check_dns(name, expect).map_err(|e| format!("path {}: {e}", target.path))?;
            }
        }
        Ok(())
    }
}

/// The UDP payload that fills an IP packet of `mtu` bytes exactly.
pub fn payload_for_mtu(mtu: u32, ipv6: bool) -> usize {
    let overhead = if ipv6 { 40 + 8 } else { 20 + 8 };
    (mtu as usize).saturating_sub(overhead).max(UDP_HEADER)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probe_json_is_tagged() {
        let probe = Probe::UdpEcho {
            addr: "10.0.0.1:9440".parse().unwrap(),
            size: 1422,
            dont_fragment: true,
        };
        let json = serde_json::to_string(&probe).unwrap();
        assert_eq!(
            json,
            r#"{"type":"udp-echo","addr":"10.0.0.1:9440","size":1422,"dont_fragment":true}"#
        );
        assert_eq!(serde_json::from_str::<Probe>(&json).unwrap(), probe);
    }

    #[test]
    fn requests_over_the_bounds_are_refused_with_the_reason() {
        let addr: SocketAddr = "10.0.0.1:9440".parse().unwrap();
        let udp = |size| Check {
            id: 1,
            probe: Probe::UdpEcho {
                addr,
                size,
                dont_fragment: false,
            },
        };
        let request = |checks| CheckRequest {
            checks,
            timeout_ms: 1000,
            concurrency: 8,
        };
        assert_eq!(request(vec![udp(65_507)]).validate(), Ok(()));
        let err = request(vec![udp(1 << 40)]).validate().unwrap_err();
        assert!(
            err.contains("check 1: udp-echo size 1099511627776"),
            "{err}"
        );
        assert!(
            request(vec![udp(16); bounds::MAX_CHECKS + 1])
                .validate()
                .is_err()
        );
        let config = |n: u32, interval_ms| ProbeConfig {
            interval_ms,
            timeout_ms: 500,
            targets: (0..n)
                .map(|path| ProbeTarget {
                    path,
                    mode: ProbeMode::Udp { addr },
                })
                .collect(),
        };
        assert_eq!(config(2_000, 100).validate(), Ok(()));
        assert!(
            config(20_000, 1000)
                .validate()
                .unwrap_err()
                .contains("20000 targets")
        );
        assert!(
            config(5_000, 100)
                .validate()
                .unwrap_err()
                .contains("probes per second")
        );
        assert!(
            config(1, 1)
                .validate()
                .unwrap_err()
                .contains("interval_ms 1")
        );
    }

    #[test]
    fn mtu_payload() {
        assert_eq!(payload_for_mtu(1450, false), 1422);
        assert_eq!(payload_for_mtu(1500, true), 1452);
        assert_eq!(payload_for_mtu(10, false), UDP_HEADER);
    }

    #[test]
    fn record_is_compact() {
        let r = Record {
            p: 3,
            t: 200_000,
            rtt: Some(120),
            e: None,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"p":3,"t":200000,"rtt":120}"#
        );
    }
}
