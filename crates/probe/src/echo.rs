//! The echo servers every agent runs: TCP (each connection echoes what it reads) and UDP
//! (each datagram goes back to its sender, with don't-fragment so an MTU probe's reply is not
//! fragmented on the way back).

use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

pub async fn tcp(listener: TcpListener) {
    loop {
        let (mut stream, _) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::warn!("tcp echo accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            let mut buf = vec![0u8; 16 * 1024];
            loop {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => {
                        if stream.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
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
