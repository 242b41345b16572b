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

use cniswap_verify::wire::{Identity, Role};
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
    /// Address to listen on (all of them by default).
    pub bind: IpAddr,
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
            echo_port: cniswap_verify::names::ECHO_PORT,
            http_port: cniswap_verify::names::HTTP_PORT,
            resolv_conf: "/etc/resolv.conf".into(),
            proc_net: "/proc/net".into(),
            sys_class_net: "/sys/class/net".into(),
            buffer: 200_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
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
    let echo_addr = SocketAddr::new(options.bind, options.echo_port);
    let (tcp, udp) = echo::bind(echo_addr)
        .await
        .map_err(|source| AgentError::Bind {
            addr: echo_addr,
            what: "echo",
            source,
        })?;
    let echo = tcp.local_addr().unwrap_or(echo_addr);
    let http_addr = SocketAddr::new(options.bind, options.http_port);
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
    });
    let mut tasks = vec![tokio::spawn(echo::tcp(tcp)), tokio::spawn(echo::udp(udp))];
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
            let state = Arc::clone(&state);
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(move |req| http::handle(Arc::clone(&state), req));
                let _ = hyper::server::conn::http1::Builder::new()
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
