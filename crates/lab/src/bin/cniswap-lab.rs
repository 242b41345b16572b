//! `scripts/lab`: bring a real Kubernetes lab up on this machine, show it, take it down.

use clap::{Parser, Subcommand, ValueEnum};
use cniswap_lab::cni::{Cni, KubeProxy};
use cniswap_lab::{Lab, Options, Status};
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

/// A real Kubernetes cluster on this machine, for cniswap's tests and for trying cniswap out.
///
/// The control plane (etcd, kube-apiserver, controller-manager, scheduler) runs on the host;
/// real nodes are network namespaces on a bridge, each with its own containerd, kubelet,
/// kube-proxy (iptables) and a CNI (Flannel, Calico or Cilium; the others' images and install
/// files are ready for a migration); kwok adds simulated nodes. Needs root.
///
/// Exit codes: 0 done, 1 `check` found a failing probe, 2 the lab could not be brought up,
/// checked or taken down (the error names the component and shows the end of its log).
#[derive(Parser)]
#[command(name = "lab", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Bring a lab up and return when it is ready; writes DIR/kubeconfig.
    ///
    /// Example: scripts/lab up --dir ./lab1 --real-nodes 3 && export KUBECONFIG=./lab1/kubeconfig
    Up {
        /// The lab's directory (state, certificates, logs, node roots); created if missing.
        #[arg(long)]
        dir: PathBuf,
        /// Real nodes: the first is the control-plane node, the others workers.
        #[arg(long, default_value_t = 3)]
        real_nodes: usize,
        /// Simulated nodes (kwok): Ready nodes whose pods run without a datapath.
        #[arg(long, default_value_t = 0)]
        kwok_nodes: usize,
        /// Pods per simulated node, in thirty Deployments.
        #[arg(long, default_value_t = 0)]
        kwok_pods_per_node: usize,
        /// Where built components and images are cached.
        #[arg(long, env = "CNISWAP_LAB_CACHE")]
        cache: Option<PathBuf>,
        /// The CNI the lab starts on: Flannel (VXLAN 4789), Calico (its manifest, VXLAN) or
        /// Cilium (its chart, installed with helm; VXLAN 8473).
        #[arg(long, value_enum, default_value_t = CniArg::Flannel)]
        cni: CniArg,
        /// iptables: kube-proxy as kubeadm runs it. none (Cilium's kube-proxy replacement) is
        /// refused: it needs a cgroup root per node, which the lab's nodes do not have.
        #[arg(long, value_enum, default_value_t = KubeProxyArg::Iptables)]
        kube_proxy: KubeProxyArg,
        /// Only the CNI the lab starts on: skip the other CNIs' images and install files (a
        /// faster start; `status` then gives no plan flags for them).
        #[arg(long)]
        only_cni: bool,
    },
    /// Show the lab's nodes (network namespace, IP, role, host-side uplink), components
    /// (PID, log, health) and images.
    Status {
        #[arg(long)]
        dir: PathBuf,
        /// Output format.
        #[arg(short = 'o', long = "output", value_enum, default_value_t = Format::Text)]
        output: Format,
    },
    /// Check the dataplane: a pod on every real node reaches every other by pod IP, a
    /// ClusterIP Service, and DNS by name. Exit 1 if any probe fails.
    Check {
        #[arg(long)]
        dir: PathBuf,
    },
    /// Take the lab down: every process, mount, network namespace, link and cgroup it made,
    /// then its directory; fails listing anything that is left.
    Down {
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum CniArg {
    Flannel,
    Calico,
    Cilium,
}

#[derive(Clone, Copy, ValueEnum)]
enum KubeProxyArg {
    Iptables,
    None,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
}

/// The probes failed (exit 1), as opposed to the lab being unusable (exit 2).
struct ProbesFailed;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,kube_client=off")),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli.command) {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(ProbesFailed)) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::from(2)
        }
    }
}

fn run(command: Command) -> cniswap_lab::Result<Result<(), ProbesFailed>> {
    match command {
        Command::Up {
            dir,
            real_nodes,
            kwok_nodes,
            kwok_pods_per_node,
            cache,
            cni,
            kube_proxy,
            only_cni,
        } => {
            let mut options = Options::new(dir);
            options.cni = match cni {
                CniArg::Flannel => Cni::Flannel,
                CniArg::Calico => Cni::Calico,
                CniArg::Cilium => Cni::Cilium,
            };
            options.kube_proxy = match kube_proxy {
                KubeProxyArg::Iptables => KubeProxy::Iptables,
                KubeProxyArg::None => KubeProxy::None,
            };
            options.every_cni = !only_cni;
            options.real_nodes = real_nodes;
            options.kwok_nodes = kwok_nodes;
            options.kwok_pods_per_node = kwok_pods_per_node;
            options.detached = true;
            if let Some(cache) = cache {
                options.cache = cache;
            }
            let runtime = tokio::runtime::Runtime::new()
                .map_err(|e| cniswap_lab::LabError::Other(format!("start a runtime: {e}")))?;
            let lab = runtime.block_on(Lab::up(options, &mut |message| {
                eprintln!("lab: {message}");
            }))?;
            println!("{}", lab.kubeconfig.display());
            lab.detach();
            Ok(Ok(()))
        }
        Command::Status { dir, output } => {
            let status = Status::read(&dir)?;
            let mut out = std::io::stdout().lock();
            match output {
                Format::Json => {
                    let text = serde_json::to_string_pretty(&status).unwrap_or_default();
                    let _ = writeln!(out, "{text}");
                }
                Format::Text => {
                    let _ = writeln!(out, "API server  {}", status.api_server);
                    let _ = writeln!(out, "CNI         {}", status.cni);
                    if let Some(kubeconfig) = &status.kubeconfig {
                        let _ = writeln!(out, "kubeconfig  {}", kubeconfig.display());
                    }
                    let _ = writeln!(
                        out,
                        "\nNODE                ROLE           IP             NETNS                       UPLINK"
                    );
                    for node in &status.nodes {
                        let _ = writeln!(
                            out,
                            "{:<19} {:<14} {:<14} {:<27} {}",
                            node.name, node.role, node.ip, node.netns, node.uplink
                        );
                    }
                    let _ = writeln!(
                        out,
                        "\nCOMPONENT                        PID      HEALTH   LOG"
                    );
                    for c in &status.components {
                        let _ = writeln!(
                            out,
                            "{:<32} {:<8} {:<8} {}",
                            c.name,
                            c.pid,
                            c.health,
                            c.log.display()
                        );
                    }
                }
            }
            Ok(Ok(()))
        }
        Command::Check { dir } => {
            let status = Status::read(&dir)?;
            let kubeconfig = status.kubeconfig.clone().ok_or_else(|| {
                cniswap_lab::LabError::Other("the lab has no kubeconfig yet".into())
            })?;
            let busybox = status
                .images
                .iter()
                .find(|i| i.contains("busybox"))
                .cloned()
                .ok_or_else(|| {
                    cniswap_lab::LabError::Other("the lab has no busybox image".into())
                })?;
            let nodes: Vec<String> = status.nodes.iter().map(|n| n.name.clone()).collect();
            let runtime = tokio::runtime::Runtime::new()
                .map_err(|e| cniswap_lab::LabError::Other(format!("start a runtime: {e}")))?;
            let report = runtime.block_on(async {
                let cluster = cniswap_lab::Cluster::connect(&kubeconfig).await?;
                cniswap_lab::dataplane::check(&cluster, &nodes, &busybox).await
            })?;
            for probe in &report.probes {
                println!(
                    "{} {} -> {}",
                    if probe.ok { "ok  " } else { "FAIL" },
                    probe.from,
                    probe.target
                );
            }
            Ok(if report.failures().is_empty() {
                Ok(())
            } else {
                Err(ProbesFailed)
            })
        }
        Command::Down { dir } => {
            cniswap_lab::down(&dir)?;
            eprintln!("lab: down; nothing left");
            Ok(Ok(()))
        }
    }
}
