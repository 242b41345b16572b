//! Single probes: TCP echo, UDP echo (optionally don't-fragment), TCP connect, DNS.
//! Each returns its round trip or a short reason people can act on.

use cniswap_verify::wire::{DnsExpect, Probe, REPLY_MAGIC, REQUEST_MAGIC, UDP_HEADER, bounds};
use hickory_resolver::TokioResolver;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// A short reason for an I/O error: `connection refused`, `message too long`, without the
/// `(os error N)` tail.
pub fn reason(e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => text[..i].to_string(),
        None => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

pub fn timed_out(timeout: Duration) -> String {
    format!("timed out after {}", human(timeout))
}

pub fn human(d: Duration) -> String {
    if d.as_millis().is_multiple_of(1000) {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

/// A nonce that differs per probe (no RNG needed: time and a counter).
pub fn nonce() -> u32 {
    use std::sync::atomic::{AtomicU32, Ordering};
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    nanos ^ COUNTER.fetch_add(0x9e37_79b9, Ordering::Relaxed)
}

/// The UDP probe payload (a request): magic, sequence, nonce, then padding to `size` (at most
/// the largest UDP payload).
pub fn udp_payload(seq: u64, nonce: u32, size: usize) -> Vec<u8> {
    let size = size.clamp(UDP_HEADER, bounds::MAX_UDP_PAYLOAD);
    let mut buf = Vec::with_capacity(size);
    buf.extend_from_slice(&REQUEST_MAGIC);
    buf.extend_from_slice(&seq.to_be_bytes());
    buf.extend_from_slice(&nonce.to_be_bytes());
    buf.resize(size, 0xa5);
    buf
}

/// (sequence, nonce) of a reply, if it is one of ours.
pub fn parse_udp(buf: &[u8]) -> Option<(u64, u32)> {
    if buf.len() < UDP_HEADER || buf[..4] != REPLY_MAGIC {
        return None;
    }
    let seq = u64::from_be_bytes(buf[4..12].try_into().ok()?);
    let nonce = u32::from_be_bytes(buf[12..16].try_into().ok()?);
    Some((seq, nonce))
}

/// An unconnected socket for datagrams to `peer`: replies are matched by sequence and nonce,
/// not by source address, because a host answers a pod from whichever of its addresses routes
/// back (its bridge address for a local pod), not always the one the pod sent to.
pub async fn bind_udp_any(peer: SocketAddr) -> io::Result<UdpSocket> {
    let local: SocketAddr = if peer.is_ipv6() {
        SocketAddr::from(([0u16; 8], 0))
    } else {
        SocketAddr::from(([0, 0, 0, 0], 0))
    };
    UdpSocket::bind(local).await
}

pub async fn bind_udp(peer: SocketAddr, dont_fragment: bool) -> io::Result<UdpSocket> {
    let local: SocketAddr = if peer.is_ipv6() {
        "[::]:0".parse().unwrap_or(SocketAddr::from(([0u16; 8], 0)))
    } else {
        SocketAddr::from(([0, 0, 0, 0], 0))
    };
    let socket = UdpSocket::bind(local).await?;
    if dont_fragment {
        set_dont_fragment(&socket, peer.is_ipv6())?;
    }
    socket.connect(peer).await?;
    Ok(socket)
}

/// Sets DF (IPv4) or disables fragmentation (IPv6): a too-large packet fails instead.
pub fn set_dont_fragment(socket: &impl std::os::fd::AsFd, ipv6: bool) -> io::Result<()> {
    use rustix::net::sockopt;
    if ipv6 {
        sockopt::set_ipv6_mtu_discover(socket, sockopt::Ipv6PathMtuDiscovery::DO)?;
    } else {
        sockopt::set_ip_mtu_discover(socket, sockopt::Ipv4PathMtuDiscovery::DO)?;
    }
    Ok(())
}

/// Connect, write a nonce, read it back.
pub async fn tcp_echo(addr: SocketAddr, timeout: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    let work = async {
        let mut stream = TcpStream::connect(addr).await.map_err(|e| reason(&e))?;
        let _ = stream.set_nodelay(true);
        let sent = udp_payload(0, nonce(), UDP_HEADER);
        stream
            .write_all(&sent)
            .await
            .map_err(|e| format!("write: {}", reason(&e)))?;
        let mut got = vec![0u8; sent.len()];
        stream
            .read_exact(&mut got)
            .await
            .map_err(|e| match e.kind() {
                io::ErrorKind::UnexpectedEof => {
                    "closed by the other side before echoing".to_string()
                }
                _ => format!("read: {}", reason(&e)),
            })?;
        let mut expected = sent;
        crate::echo::reply(&mut expected);
        if got != expected {
            return Err("echo did not match what was sent".into());
        }
        Ok(start.elapsed())
    };
    match tokio::time::timeout(timeout, work).await {
        Ok(result) => result,
        Err(_) => Err(timed_out(timeout)),
    }
}

/// One datagram and its echo.
async fn udp_once(socket: &UdpSocket, size: usize, timeout: Duration) -> Result<Duration, String> {
    if size > bounds::MAX_UDP_PAYLOAD {
        return Err(format!(
            "size {size} is over the largest UDP payload ({})",
            bounds::MAX_UDP_PAYLOAD
        ));
    }
    let n = nonce();
    let sent = udp_payload(0, n, size);
    let start = Instant::now();
    socket
        .send(&sent)
        .await
        .map_err(|e| udp_error(socket, &e, size))?;
    let mut buf = vec![0u8; size.max(UDP_HEADER) + 64];
    let deadline = start + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, socket.recv(&mut buf)).await {
            Err(_) => return Err(timed_out(timeout)),
            Ok(Err(e)) => return Err(udp_error(socket, &e, size)),
            Ok(Ok(len)) => {
                if parse_udp(&buf[..len]) == Some((0, n)) {
                    if len != sent.len() {
                        return Err(format!("echo was {len} bytes, sent {}", sent.len()));
                    }
                    return Ok(start.elapsed());
                }
            }
        }
    }
}

fn udp_error(socket: &UdpSocket, e: &io::Error, size: usize) -> String {
    if e.raw_os_error() == Some(90) {
        // EMSGSIZE: the kernel knows a smaller path MTU.
        let mtu = rustix::net::sockopt::ip_mtu(socket)
            .map(|m| format!("; path MTU is {m}"))
            .unwrap_or_default();
        format!("message too long: {size} bytes of payload with don't-fragment{mtu}")
    } else {
        reason(e)
    }
}

/// UDP echo. Plain datagrams get three tries (a third of the timeout each); don't-fragment
/// ones must pass twice in a row, because the first packet is what teaches the kernel a
/// smaller path MTU.
pub async fn udp_echo(
    addr: SocketAddr,
    size: usize,
    dont_fragment: bool,
    timeout: Duration,
) -> Result<Duration, String> {
    let socket = bind_udp(addr, dont_fragment)
        .await
        .map_err(|e| reason(&e))?;
    if dont_fragment {
        let first = udp_once(&socket, size, timeout / 2).await?;
        let second = udp_once(&socket, size, timeout / 2).await?;
        return Ok(first.min(second));
    }
    let mut last = String::new();
    for _ in 0..3 {
        match udp_once(&socket, size, timeout / 3).await {
            Ok(rtt) => return Ok(rtt),
            Err(e) if e.starts_with("timed out") => last = timed_out(timeout),
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

pub async fn tcp_connect(addr: SocketAddr, timeout: Duration) -> Result<Duration, String> {
    let start = Instant::now();
    match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(_)) => Ok(start.elapsed()),
        Ok(Err(e)) => Err(reason(&e)),
        Err(_) => Err(timed_out(timeout)),
    }
}

pub async fn dns(
    resolver: &TokioResolver,
    name: &str,
    expect: &DnsExpect,
    timeout: Duration,
) -> Result<Duration, String> {
    let start = Instant::now();
    let answer = match tokio::time::timeout(timeout, resolver.lookup_ip(name)).await {
        Err(_) => return Err(timed_out(timeout)),
        Ok(Err(e)) => {
            let text = e.to_string();
            // hickory says "no connections available" once every try timed out.
            return Err(
                if text.contains("no connections available") || text.contains("timed out") {
                    format!("no answer from the nameserver ({text})")
                } else {
                    format!("lookup failed: {text}")
                },
            );
        }
        Ok(Ok(answer)) => answer,
    };
    let ips: Vec<IpAddr> = answer.iter().collect();
    let show = |ips: &[IpAddr]| {
        ips.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let ok = match expect {
        DnsExpect::Any => !ips.is_empty(),
        DnsExpect::Contains(ip) => ips.contains(ip),
        DnsExpect::Subset(allowed) => !ips.is_empty() && ips.iter().all(|ip| allowed.contains(ip)),
    };
    if ok {
        Ok(start.elapsed())
    } else {
        Err(match expect {
            DnsExpect::Any => "no addresses in the answer".into(),
            DnsExpect::Contains(ip) => format!("answer [{}] lacks {ip}", show(&ips)),
            DnsExpect::Subset(_) => format!("answer [{}] is not the probe pods", show(&ips)),
        })
    }
}

/// Runs any one-shot probe.
pub async fn run(
    probe: &Probe,
    resolver: Option<&TokioResolver>,
    timeout: Duration,
) -> Result<Duration, String> {
    match probe {
        Probe::TcpEcho { addr } => tcp_echo(*addr, timeout).await,
        Probe::UdpEcho {
            addr,
            size,
            dont_fragment,
        } => udp_echo(*addr, *size, *dont_fragment, timeout).await,
        Probe::TcpConnect { addr } => tcp_connect(*addr, timeout).await,
        Probe::Dns { name, expect } => match resolver {
            Some(r) => dns(r, name, expect, timeout).await,
            None => Err("no resolver: /etc/resolv.conf could not be read".into()),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_round_trip() {
        let mut p = udp_payload(7, 42, 100);
        assert_eq!(p.len(), 100);
        // A request is not a reply until an echo server made it one.
        assert_eq!(parse_udp(&p), None);
        assert!(crate::echo::reply(&mut p));
        assert_eq!(parse_udp(&p), Some((7, 42)));
        assert_eq!(udp_payload(0, 0, 1 << 40).len(), bounds::MAX_UDP_PAYLOAD);
        assert_eq!(parse_udp(b"nope"), None);
    }

    #[test]
    fn reasons_are_short() {
        let e = io::Error::from_raw_os_error(111);
        assert_eq!(reason(&e), "connection refused");
        assert_eq!(
            timed_out(Duration::from_millis(1500)),
            "timed out after 1500ms"
        );
        assert_eq!(timed_out(Duration::from_secs(1)), "timed out after 1s");
    }
}
