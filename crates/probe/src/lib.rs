//! `cniswap agent probe`: the probe agent verify deploys on every node.
//!
//! It serves TCP and UDP echo on one port and an HTTP API on another (identity, one-shot
//! checks, continuous probing, results), and probes with plain TCP, UDP and DNS only: no
//! ICMP, no capabilities, so it runs as non-root under Pod Security `restricted` (and with
//! hostNetwork for node checks). It has no Kubernetes client: verify tells it what to probe.

mod echo;
mod http;
pub mod netinfo;
pub mod prober;
pub mod probes;

use cniswap_verify::wire::{Identity, Role, bounds};
use hickory_resolver::TokioResolver;
use hickory_resolver::config::ResolveHosts;
use hyper_util::rt::TokioIo;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub role: Role,
    pub node: String,
    pub pod: String,
    pub namespace: String,
    /// The address others reach this agent on.
    pub ip: Option<IpAddr>,
    pub host_network: bool,
    /// Address the echo servers listen on (all of them by default).
    pub bind: IpAddr,
    /// Address the HTTP API listens on: loopback by default, because verify reaches it through
    /// a port-forward, which the kubelet's runtime connects inside the pod's network namespace
    /// to localhost (for the hostNetwork agent: the node's, so nothing else reaches it).
    pub http_bind: IpAddr,
    /// The run's token: every API request but `/healthz` must carry it.
    pub token: String,
    /// How long a connection may stay silent (HTTP: until a request's header or body is
    /// complete; echo: between frames) before it is closed.
    pub idle: Duration,
    /// 0 picks a free port (tests).
    pub echo_port: u16,
    pub http_port: u16,
    pub resolv_conf: PathBuf,
    /// Where /proc/net and /sys/class/net are (tests point elsewhere).
    pub proc_net: PathBuf,
    pub sys_class_net: PathBuf,
    /// Continuous results kept until fetched.
    pub buffer: usize,
}

impl AgentOptions {
    pub fn new(role: Role) -> AgentOptions {
        AgentOptions {
            role,
            node: String::new(),
            pod: String::new(),
            namespace: String::new(),
            ip: None,
            host_network: role == Role::Host,
            bind: IpAddr::from([0, 0, 0, 0]),
            http_bind: IpAddr::from([127, 0, 0, 1]),
            token: String::new(),
            idle: Duration::from_secs(bounds::IDLE_SECONDS),
            echo_port: cniswap_verify::names::ECHO_PORT,
            http_port: cniswap_verify::names::HTTP_PORT,
            resolv_conf: "/etc/resolv.conf".into(),
            proc_net: "/proc/net".into(),
            sys_class_net: "/sys/class/net".into(),
            buffer: cniswap_verify::wire::bounds::MAX_RESULTS_KEPT,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("no token: the API would answer anyone who reaches it")]
    NoToken,
    #[error("cannot listen on {addr} ({what}): {source}")]
    Bind {
        addr: SocketAddr,
        what: &'static str,
        source: std::io::Error,
    },
}

pub(crate) struct State {
    pub identity: Identity,
    pub shared: Arc<prober::Shared>,
    pub prober: Mutex<Option<prober::Prober>>,
    pub token: String,
    pub idle: Duration,
    /// Probes running at once, all `POST /check` requests together.
    pub probes: Arc<tokio::sync::Semaphore>,
}

/// A started agent: where it listens.
pub struct Running {
    pub echo: SocketAddr,
    pub http: SocketAddr,
    pub identity: Identity,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Serves until the process ends.
    pub async fn wait(mut self) {
        for task in std::mem::take(&mut self.tasks) {
            let _ = task.await;
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

fn resolver(text: &str, timeout: Duration, attempts: usize) -> Option<TokioResolver> {
    let (config, mut options) =
        hickory_resolver::system_conf::parse_resolv_conf(text.as_bytes()).ok()?;
    options.cache_size = 0;
    options.timeout = timeout;
    options.attempts = attempts;
    options.use_hosts_file = ResolveHosts::Never;
    TokioResolver::builder_with_config(
        config,
        hickory_resolver::net::runtime::TokioRuntimeProvider::default(),
    )
    .with_options(options)
    .build()
    .ok()
}

/// Binds the echo and HTTP ports and starts serving.
pub async fn start(options: AgentOptions) -> Result<Running, AgentError> {
    if options.token.is_empty() {
        return Err(AgentError::NoToken);
    }
    let echo_addr = SocketAddr::new(options.bind, options.echo_port);
    let (tcp, udp) = echo::bind(echo_addr)
        .await
        .map_err(|source| AgentError::Bind {
            addr: echo_addr,
            what: "echo",
            source,
        })?;
    let echo = tcp.local_addr().unwrap_or(echo_addr);
    let http_addr = SocketAddr::new(options.http_bind, options.http_port);
    let http_listener = tokio::net::TcpListener::bind(http_addr)
        .await
        .map_err(|source| AgentError::Bind {
            addr: http_addr,
            what: "http",
            source,
        })?;
    let http = http_listener.local_addr().unwrap_or(http_addr);

    let resolv = std::fs::read_to_string(&options.resolv_conf).unwrap_or_default();
    let (search, nameservers) = netinfo::resolv_conf(&resolv);
    let interface = netinfo::default_interface(&options.proc_net);
    let mtu = interface
        .as_deref()
        .and_then(|i| netinfo::mtu(&options.sys_class_net, i));
    let clock = Instant::now();
    let start_unix_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64);
    let session = format!(
        "{:x}-{:x}",
        start_unix_us,
        std::process::id() ^ probes::nonce()
    );
    let identity = Identity {
        role: options.role,
        node: options.node.clone(),
        pod: options.pod.clone(),
        namespace: options.namespace.clone(),
        ip: options.ip,
        host_network: options.host_network,
        echo_port: echo.port(),
        http_port: http.port(),
        interface,
        mtu,
        search,
        nameservers,
        version: env!("CARGO_PKG_VERSION").into(),
        session: session.clone(),
        start_unix_us,
    };
    let shared = Arc::new(prober::Shared {
        clock,
        start_unix_us,
        session,
        buffer: Mutex::new(prober::Buffer::new(options.buffer)),
        resolver: if resolv.is_empty() {
            None
        } else {
            resolver(&resolv, Duration::from_millis(900), 2)
        },
        resolver_once: if resolv.is_empty() {
            None
        } else {
            resolver(&resolv, Duration::from_secs(5), 1)
        },
        timeout: Mutex::new(Duration::from_secs(1)),
    });
    let state = Arc::new(State {
        identity: identity.clone(),
        shared,
        prober: Mutex::new(None),
        token: options.token.clone(),
        idle: options.idle,
        probes: Arc::new(tokio::sync::Semaphore::new(bounds::MAX_PROBES_IN_FLIGHT)),
    });
    let mut tasks = vec![
        tokio::spawn(echo::tcp(tcp, bounds::MAX_ECHO_CONNECTIONS, options.idle)),
        tokio::spawn(echo::udp(udp)),
    ];
    let slots = Arc::new(tokio::sync::Semaphore::new(bounds::MAX_HTTP_CONNECTIONS));
    let idle = options.idle;
    tasks.push(tokio::spawn(async move {
        loop {
            let (stream, _) = match http_listener.accept().await {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("http accept: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // Over the cap a connection is closed at once; the ones holding slots are closed
            // when idle (header_read_timeout also runs while a kept-alive connection waits for
            // its next request), so the verify client gets in again within `idle`.
            let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                continue;
            };
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let _slot = slot;
                let service =
                    hyper::service::service_fn(move |req| http::handle(Arc::clone(&state), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(idle)
                    .max_buf_size(64 * 1024)
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    }));
    Ok(Running {
        echo,
        http,
        identity,
        tasks,
    })
}
