//! The continuous prober: every target each interval, every result recorded with the
//! monotonic time it was sent. Results wait in a bounded buffer until fetched.

use crate::probes::{self, reason, timed_out};
use cniswap_verify::wire::{PathCount, ProbeConfig, ProbeMode, Record, ResultsPage};
use hickory_resolver::TokioResolver;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;

/// Results not yet fetched, numbered from `base`.
#[derive(Debug)]
pub struct Buffer {
    records: VecDeque<Record>,
    base: u64,
    capacity: usize,
    dropped: u64,
    resets: BTreeMap<u32, u64>,
}

impl Buffer {
    pub fn new(capacity: usize) -> Buffer {
        Buffer {
            records: VecDeque::new(),
            base: 0,
            capacity: capacity.max(1),
            dropped: 0,
            resets: BTreeMap::new(),
        }
    }

    pub fn push(&mut self, record: Record) {
        if self.records.len() == self.capacity {
            self.records.pop_front();
            self.base += 1;
            self.dropped += 1;
        }
        self.records.push_back(record);
    }

    pub fn reset(&mut self, path: u32) {
        *self.resets.entry(path).or_default() += 1;
    }

    /// Records from number `since` (at most `max`). Fetching acknowledges everything before
    /// `since`, which frees it.
    pub fn page(&mut self, since: u64, max: usize) -> (Vec<Record>, u64) {
        while self.base < since && !self.records.is_empty() {
            self.records.pop_front();
            self.base += 1;
        }
        let skip = since.saturating_sub(self.base) as usize;
        let records: Vec<Record> = self.records.iter().skip(skip).take(max).cloned().collect();
        let next = self.base.max(since) + records.len() as u64;
        (records, next)
    }
}

pub struct Shared {
    /// Monotonic zero of this agent.
    pub clock: Instant,
    pub start_unix_us: i64,
    pub session: String,
    pub buffer: Mutex<Buffer>,
    pub resolver: Option<TokioResolver>,
    /// One query, one try (continuous probing).
    pub resolver_once: Option<TokioResolver>,
    /// The timeout of the running configuration (for the watermark).
    pub timeout: Mutex<Duration>,
}

impl Shared {
    pub fn now_us(&self) -> u64 {
        self.clock.elapsed().as_micros() as u64
    }

    fn record(&self, path: u32, sent: Instant, result: Result<Duration, String>) {
        let t = sent.saturating_duration_since(self.clock).as_micros() as u64;
        let record = match result {
            Ok(rtt) => Record {
                p: path,
                t,
                rtt: Some(rtt.as_micros().min(u128::from(u32::MAX)) as u32),
                e: None,
            },
            Err(e) => Record {
                p: path,
                t,
                rtt: None,
                e: Some(e),
            },
        };
        if let Ok(mut buffer) = self.buffer.lock() {
            buffer.push(record);
        }
    }

    fn reset(&self, path: u32) {
        if let Ok(mut buffer) = self.buffer.lock() {
            buffer.reset(path);
        }
    }

    pub fn page(&self, since: u64) -> ResultsPage {
        let timeout = self.timeout.lock().map_or(Duration::from_secs(1), |t| *t);
        let (records, next, dropped, resets) = match self.buffer.lock() {
            Ok(mut buffer) => {
                let (records, next) =
                    buffer.page(since, cniswap_verify::wire::bounds::MAX_RESULTS_PER_PAGE);
                let resets = buffer
                    .resets
                    .iter()
                    .map(|(path, count)| PathCount {
                        path: *path,
                        count: *count,
                    })
                    .collect();
                (records, next, buffer.dropped, resets)
            }
            Err(_) => (vec![], since, 0, vec![]),
        };
        // A probe completes within its timeout; the rest is scheduling slack.
        let complete_before_us = self
            .now_us()
            .saturating_sub((timeout + Duration::from_millis(500)).as_micros() as u64);
        ResultsPage {
            session: self.session.clone(),
            start_unix_us: self.start_unix_us,
            complete_before_us,
            next,
            dropped,
            records,
            resets,
        }
    }
}

/// The running probe tasks; dropping it stops them.
#[derive(Default)]
pub struct Prober {
    tasks: Vec<JoinHandle<()>>,
}

impl Drop for Prober {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

impl Prober {
    pub fn start(shared: &Arc<Shared>, config: &ProbeConfig) -> Prober {
        let interval = Duration::from_millis(config.interval_ms.max(10));
        let timeout = Duration::from_millis(config.timeout_ms.max(10));
        if let Ok(mut t) = shared.timeout.lock() {
            *t = timeout;
        }
        let tasks = config
            .targets
            .iter()
            .map(|target| {
                let shared = Arc::clone(shared);
                let path = target.path;
                let mode = target.mode.clone();
                tokio::spawn(async move {
                    // A probe that a retransmission could still answer after the path came
                    // back would hide the end of an outage: TCP connects and DNS queries get
                    // one try shorter than the first SYN retransmission (1 s), and a stream's
                    // echo must come back within 500 ms.
                    let short = timeout.min(Duration::from_millis(900));
                    match mode {
                        ProbeMode::Udp { addr } => udp(shared, path, addr, interval, timeout).await,
                        ProbeMode::TcpStream { addr } => {
                            let deadline = timeout.min(cniswap_verify::kind::STREAM_ECHO_TIMEOUT);
                            tcp_stream(shared, path, addr, interval, deadline).await
                        }
                        ProbeMode::TcpConnect { addr } => {
                            each_tick(shared, path, interval, move |_| async move {
                                probes::tcp_connect(addr, short).await
                            })
                            .await
                        }
                        ProbeMode::Dns { name, expect } => {
                            let name = Arc::new(name);
                            let expect = Arc::new(expect);
                            each_tick(Arc::clone(&shared), path, interval, move |shared| {
                                let name = Arc::clone(&name);
                                let expect = Arc::clone(&expect);
                                async move {
                                    match &shared.resolver_once {
                                        Some(r) => probes::dns(r, &name, &expect, short).await,
                                        None => {
                                            Err("no resolver: /etc/resolv.conf could not be read"
                                                .into())
                                        }
                                    }
                                }
                            })
                            .await
                        }
                    }
                })
            })
            .collect();
        Prober { tasks }
    }
}

fn ticker(interval: Duration) -> tokio::time::Interval {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(MissedTickBehavior::Skip);
    tick
}

/// A fresh probe each tick, each in its own task.
async fn each_tick<F, Fut>(shared: Arc<Shared>, path: u32, interval: Duration, probe: F)
where
    F: Fn(Arc<Shared>) -> Fut,
    Fut: std::future::Future<Output = Result<Duration, String>> + Send + 'static,
{
    let mut tick = ticker(interval);
    loop {
        tick.tick().await;
        let sent = Instant::now();
        let fut = probe(Arc::clone(&shared));
        let shared = Arc::clone(&shared);
        tokio::spawn(async move {
            let result = fut.await;
            shared.record(path, sent, result);
        });
    }
}

/// Numbered datagrams on one connected socket; replies matched by number.
async fn udp(
    shared: Arc<Shared>,
    path: u32,
    addr: SocketAddr,
    interval: Duration,
    timeout: Duration,
) {
    let mut tick = ticker(interval);
    let mut socket: Option<tokio::net::UdpSocket> = None;
    let mut outstanding: HashMap<u64, (Instant, u32)> = HashMap::new();
    let mut seq = 0u64;
    let mut last_error: Option<String> = None;
    let mut buf = vec![0u8; 2048];
    loop {
        let socket_ref = socket.as_ref();
        tokio::select! {
            _ = tick.tick() => {
                let now = Instant::now();
                let expired: Vec<u64> = outstanding
                    .iter()
                    .filter(|(_, (sent, _))| now.duration_since(*sent) >= timeout)
                    .map(|(s, _)| *s)
                    .collect();
                for s in expired {
                    if let Some((sent, _)) = outstanding.remove(&s) {
                        let why = match &last_error {
                            Some(e) => format!("{} ({e})", timed_out(timeout)),
                            None => timed_out(timeout),
                        };
                        shared.record(path, sent, Err(why));
                    }
                }
                if socket.is_none() {
                    match probes::bind_udp_any(addr).await {
                        Ok(s) => socket = Some(s),
                        Err(e) => {
                            shared.record(path, now, Err(reason(&e)));
                            continue;
                        }
                    }
                }
                seq += 1;
                let nonce = probes::nonce();
                let payload = probes::udp_payload(seq, nonce, cniswap_verify::wire::UDP_HEADER);
                let sent = Instant::now();
                let result = match socket.as_ref() {
                    Some(s) => tokio::time::timeout(timeout, s.send_to(&payload, addr)).await.ok(),
                    None => None,
                };
                match result {
                    Some(Ok(_)) => { outstanding.insert(seq, (sent, nonce)); }
                    None => {
                        shared.record(path, sent, Err("send blocked".into()));
                    }
                    Some(Err(e)) => {
                        // ICMP errors of earlier datagrams surface on the next send.
                        let why = reason(&e);
                        last_error = Some(why.clone());
                        shared.record(path, sent, Err(why));
                    }
                }
            }
            received = async { match socket_ref { Some(s) => s.recv_from(&mut buf).await.map(|(n, _)| n), None => std::future::pending().await } } => {
                match received {
                    Ok(n) => {
                        if let Some((s, nonce)) = probes::parse_udp(&buf[..n])
                            && outstanding.get(&s).is_some_and(|(_, want)| *want == nonce)
                            && let Some((sent, _)) = outstanding.remove(&s)
                        {
                            last_error = None;
                            shared.record(path, sent, Ok(sent.elapsed()));
                        }
                    }
                    Err(e) => last_error = Some(reason(&e)),
                }
            }
        }
    }
}

enum Conn {
    Down {
        error: String,
        connecting: Option<JoinHandle<std::io::Result<TcpStream>>>,
    },
    Up {
        writer: tokio::net::tcp::OwnedWriteHalf,
        frames: mpsc::Receiver<Result<(u64, u32), String>>,
        reader: JoinHandle<()>,
    },
}

/// One long-lived connection; a numbered message each tick must come back within the
/// timeout. A reset or close is counted, and the connection reopened.
async fn tcp_stream(
    shared: Arc<Shared>,
    path: u32,
    addr: SocketAddr,
    interval: Duration,
    timeout: Duration,
) {
    let mut tick = ticker(interval);
    // The first connection is made before probing starts, so its set-up is not an outage.
    let mut conn = match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
        Ok(Ok(stream)) => up(stream),
        Ok(Err(e)) => Conn::Down {
            error: reason(&e),
            connecting: None,
        },
        Err(_) => Conn::Down {
            error: timed_out(timeout),
            connecting: None,
        },
    };
    let mut outstanding: HashMap<u64, (Instant, u32)> = HashMap::new();
    // Probes already counted lost whose echo may still arrive (TCP retransmits).
    let mut late: HashMap<u64, (Instant, u32)> = HashMap::new();
    let mut seq = 0u64;
    // A connection silent this long is given up and reopened.
    let stall = cniswap_verify::kind::stream_stall(timeout);
    loop {
        let frames = match &mut conn {
            Conn::Up { frames, .. } => Some(frames),
            Conn::Down { .. } => None,
        };
        tokio::select! {
            _ = tick.tick() => {
                let now = Instant::now();
                let expired: Vec<u64> = outstanding
                    .iter()
                    .filter(|(_, (sent, _))| now.duration_since(*sent) >= timeout)
                    .map(|(s, _)| *s)
                    .collect();
                // Unanswered probes count as lost after the timeout but stay outstanding:
                // TCP delivers late, and a stall is judged by the oldest one.
                for s in expired {
                    if let Some((sent, nonce)) = outstanding.get_mut(&s).map(|v| *v) {
                        shared.record(path, sent, Err(format!("no echo within {}", probes::human(timeout))));
                        late.insert(s, (sent, nonce));
                        outstanding.remove(&s);
                    }
                }
                match &mut conn {
                    Conn::Down { error, connecting } => {
                        shared.record(path, now, Err(format!("not connected: {error}")));
                        let finished = connecting.as_ref().is_some_and(JoinHandle::is_finished);
                        if finished && let Some(handle) = connecting.take() {
                            match handle.await {
                                Ok(Ok(stream)) => {
                                    conn = up(stream);
                                    continue;
                                }
                                Ok(Err(e)) => *error = reason(&e),
                                Err(_) => *error = "connect task failed".into(),
                            }
                        }
                        if connecting.is_none() {
                            *connecting = Some(tokio::spawn(async move {
                                match tokio::time::timeout(timeout, TcpStream::connect(addr)).await {
                                    Ok(result) => result,
                                    Err(_) => Err(std::io::Error::new(std::io::ErrorKind::TimedOut, timed_out(timeout))),
                                }
                            }));
                        }
                    }
                    Conn::Up { writer, reader, .. } => {
                        let oldest = outstanding.values().chain(late.values()).map(|(sent, _)| *sent).min();
                        if oldest.is_some_and(|o| now.duration_since(o) >= stall) {
                            reader.abort();
                            late.clear();
                            for (_, (sent, _)) in outstanding.drain() {
                                shared.record(path, sent, Err(format!("no echo for {}: reconnecting", probes::human(stall))));
                            }
                            conn = Conn::Down { error: format!("no echo for {}", probes::human(stall)), connecting: None };
                            continue;
                        }
                        seq += 1;
                        let nonce = probes::nonce();
                        let frame = probes::udp_payload(seq, nonce, cniswap_verify::wire::UDP_HEADER);
                        let sent = Instant::now();
                        match tokio::time::timeout(timeout, writer.write_all(&frame)).await {
                            Ok(Ok(())) => { outstanding.insert(seq, (sent, nonce)); }
                            Ok(Err(e)) => {
                                let why = reason(&e);
                                if matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe) {
                                    shared.reset(path);
                                }
                                shared.record(path, sent, Err(why.clone()));
                                reader.abort();
                                late.clear();
                                for (_, (s, _)) in outstanding.drain() {
                                    shared.record(path, s, Err(why.clone()));
                                }
                                conn = Conn::Down { error: why, connecting: None };
                            }
                            Err(_) => {
                                // The send buffer is full: the path is down; the echo check
                                // above records the loss.
                                shared.record(path, sent, Err("send blocked: no progress".into()));
                            }
                        }
                    }
                }
            }
            frame = async { match frames { Some(f) => f.recv().await, None => std::future::pending().await } } => {
                match frame {
                    Some(Ok((s, nonce))) => {
                        late.retain(|k, _| *k > s);
                        if outstanding.get(&s).is_some_and(|(_, want)| *want == nonce)
                            && let Some((sent, _)) = outstanding.remove(&s)
                        {
                            shared.record(path, sent, Ok(sent.elapsed()));
                        }
                    }
                    other => {
                        let why = match other {
                            Some(Err(why)) => why,
                            _ => "connection closed".to_string(),
                        };
                        shared.reset(path);
                        late.clear();
                        for (_, (sent, _)) in outstanding.drain() {
                            shared.record(path, sent, Err(why.clone()));
                        }
                        conn = Conn::Down { error: why, connecting: None };
                    }
                }
            }
        }
    }
}

fn up(stream: TcpStream) -> Conn {
    let _ = stream.set_nodelay(true);
    let (read, writer) = stream.into_split();
    let (tx, frames) = mpsc::channel(1024);
    let reader = tokio::spawn(read_frames(read, tx));
    Conn::Up {
        writer,
        frames,
        reader,
    }
}

/// Reads 16-byte echo frames until the connection ends.
async fn read_frames(
    mut read: tokio::net::tcp::OwnedReadHalf,
    tx: mpsc::Sender<Result<(u64, u32), String>>,
) {
    let mut frame = [0u8; cniswap_verify::wire::UDP_HEADER];
    loop {
        let result = match read.read_exact(&mut frame).await {
            Ok(_) => probes::parse_udp(&frame).ok_or_else(|| "garbled echo".to_string()),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                Err("connection closed by the other side".to_string())
            }
            Err(e) => Err(reason(&e)),
        };
        let end = result.is_err();
        if tx.send(result).await.is_err() || end {
            return;
        }
    }
}
