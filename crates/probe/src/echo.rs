//! The echo servers every agent runs: TCP (each connection answers 16-byte frames) and UDP
//! (each datagram goes back to its sender, with don't-fragment so an MTU probe's reply is not
//! fragmented on the way back).
//!
//! Both answer only requests of the probe protocol (they start with `REQUEST_MAGIC`) and
//! answer with `REPLY_MAGIC` in its place, so an echo is never echoed: a datagram spoofed from
//! one agent's echo port to another's gets one reply, which the first agent drops. TCP
//! connections are capped, and closed when idle or when they send anything else.

use cniswap_verify::wire::{REPLY_MAGIC, REQUEST_MAGIC, UDP_HEADER};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::sync::Semaphore;

/// Turns a request into its reply in place; false when `packet` is not a request.
pub fn reply(packet: &mut [u8]) -> bool {
    if packet.len() < UDP_HEADER || packet[..4] != REQUEST_MAGIC {
        return false;
    }
    packet[..4].copy_from_slice(&REPLY_MAGIC);
    true
}

pub async fn tcp(listener: TcpListener, max_connections: usize, idle: Duration) {
    let slots = Arc::new(Semaphore::new(max_connections));
    loop {
        let (mut stream, from) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("tcp echo accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Over the cap the connection is closed at once: whoever holds the slots, the agent
        // keeps its memory and its other ports.
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            tracing::debug!(
                "tcp echo: {max_connections} connections open, closing one from {from}"
            );
            continue;
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let _slot = slot;
            let mut frame = [0u8; UDP_HEADER];
            loop {
                match tokio::time::timeout(idle, stream.read_exact(&mut frame)).await {
                    Ok(Ok(_)) if reply(&mut frame) => {
                        match tokio::time::timeout(idle, stream.write_all(&frame)).await {
                            Ok(Ok(())) => {}
                            _ => return,
                        }
                    }
                    // Not our protocol, closed, or idle too long.
                    _ => return,
                }
            }
        });
    }
}

pub async fn udp(socket: Arc<UdpSocket>) {
    let mut buf = vec![0u8; 65536];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                if !reply(&mut buf[..n]) {
                    continue;
                }
                if let Err(e) = socket.send_to(&buf[..n], from).await {
                    tracing::debug!("udp echo to {from}: {e}");
                }
            }
            Err(e) => {
                // ICMP errors of earlier replies surface here; keep serving.
                tracing::debug!("udp echo: {e}");
            }
        }
    }
}

/// Binds both echo sockets on `addr`.
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, Arc<UdpSocket>)> {
    let tcp = TcpListener::bind(addr).await?;
    let udp_addr = SocketAddr::new(addr.ip(), tcp.local_addr()?.port());
    let udp = UdpSocket::bind(udp_addr).await?;
    crate::probes::set_dont_fragment(&udp, addr.is_ipv6())?;
    Ok((tcp, Arc::new(udp)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_requests_are_answered_and_replies_are_not() {
        let mut request = crate::probes::udp_payload(3, 9, 32);
        assert!(reply(&mut request));
        assert_eq!(crate::probes::parse_udp(&request), Some((3, 9)));
        // The reply sent back to an echo port is not answered again.
        assert!(!reply(&mut request));
        assert!(!reply(&mut [0u8; 8]));
        assert!(!reply(&mut b"CNSWxxxxxxxxxxxxxxxx".to_vec()));
    }
}
