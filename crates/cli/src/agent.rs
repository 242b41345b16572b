//! `cniswap agent probe`: wiring of the probe agent.

use crate::args::ProbeAgentArgs;
use crate::error::CliError;
use crate::exit;
use cniswap_probe::AgentOptions;
use cniswap_verify::wire::Role;

pub fn probe(args: ProbeAgentArgs) -> Result<u8, CliError> {
    let role: Role = args
        .role
        .parse()
        .map_err(|e: String| CliError::other(e, "use --role probe, peer or host"))?;
    let ip = args.ip.or(if role == Role::Host {
        args.host_ip
    } else {
        args.pod_ip
    });
    let mut options = AgentOptions::new(role);
    options.node = args.node;
    options.pod = args.pod;
    options.namespace = args.namespace;
    options.ip = ip;
    options.echo_port = args.echo_port;
    options.http_port = args.http_port;
    options.resolv_conf = args.resolv_conf;
    let token = args.token.filter(|t| !t.is_empty()).ok_or_else(|| {
        CliError::other(
            format!(
                "no token: set {} (verify does, from its Secret)",
                cniswap_verify::wire::TOKEN_ENV
            ),
            "the agent's API answers only requests carrying the token of the run that deployed it",
        )
    })?;
    options.token = token;
    options.http_bind = args.http_bind;
    options.idle = std::time::Duration::from_secs(args.idle_timeout);
    // The hostNetwork agent answers echo only on the node address others probe; a pod's
    // network namespace has only its own addresses anyway.
    let any = if ip.is_some_and(|ip| ip.is_ipv6()) {
        std::net::IpAddr::from([0u16; 8])
    } else {
        std::net::IpAddr::from([0, 0, 0, 0])
    };
    options.bind = args.bind.unwrap_or(match (role, ip) {
        (Role::Host, Some(ip)) => ip,
        _ => any,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::other(format!("cannot start the async runtime: {e}"), ""))?;
    runtime.block_on(async move {
        let running = cniswap_probe::start(options).await.map_err(|e| {
            CliError::other(
                e.to_string(),
                "another process uses the port: pick others with --echo-port and --http-port",
            )
        })?;
        eprintln!(
            "cniswap probe agent ({}) on node {:?}: echo {} (tcp+udp), http {}, interface {} mtu {}",
            role.as_str(),
            running.identity.node,
            running.echo,
            running.http,
            running.identity.interface.as_deref().unwrap_or("?"),
            running
                .identity
                .mtu
                .map_or("?".to_string(), |m| m.to_string()),
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .map_err(|e| CliError::other(format!("cannot handle SIGTERM: {e}"), ""))?;
        tokio::select! {
            _ = running.wait() => {}
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        Ok(exit::OK)
    })
}
