use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

const AFTER_HELP: &str = "\
Exit codes:
  0  success, no error-severity findings
  1  findings at error severity
  2  usage or input error (bad flag, unreadable or malformed snapshot, cluster unreachable)

Start here:
  cniswap inspect --snapshot examples/talos-flannel-homelab
  cniswap inspect                       # the cluster of your current kubectl context, read-only
  cniswap snapshot -o ./snap            # save what inspect reads, secrets redacted, for offline work";

/// Change the CNI of a running Kubernetes cluster safely.
///
/// cniswap reads a cluster (live and read-only, or from a snapshot), tells you what runs there
/// (platform, CNIs and their modes, kube-proxy, CIDRs, DNS, risky workloads) and, in later
/// commands, plans and executes a migration between Flannel, Calico and Cilium with Talos and
/// Omni as first-class platforms.
#[derive(Debug, Parser)]
#[command(name = "cniswap", version, after_help = AFTER_HELP, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub global: GlobalArgs,
}

#[derive(Debug, Args)]
pub struct GlobalArgs {
    /// When to colour output: auto colours terminals only (NO_COLOR is honoured).
    #[arg(long, global = true, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,

    /// Log more to stderr (-v info, -vv debug, -vvv trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ColorWhen {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum OutputFormat {
    /// A report for people.
    Text,
    /// Stable machine-readable form: {"schema_version", "facts", "findings"}.
    Json,
    /// The same document as YAML.
    Yaml,
}

/// Where to read the cluster from.
#[derive(Debug, Args, Clone)]
pub struct SourceArgs {
    /// Read a snapshot (a directory, or one file of `kubectl get -o yaml|json` output) instead of
    /// the live cluster.
    #[arg(long, value_name = "PATH")]
    pub snapshot: Option<PathBuf>,

    /// Kubeconfig to use for a live cluster (default: KUBECONFIG, then ~/.kube/config).
    #[arg(
        long,
        env = "KUBECONFIG",
        value_name = "FILE",
        conflicts_with = "snapshot",
        hide_env_values = true
    )]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context to use (default: the current context).
    #[arg(long, value_name = "NAME", conflicts_with = "snapshot")]
    pub context: Option<String>,

    /// Also read Talos machine configs from these nodes with talosctl (comma-separated IPs or
    /// names; needs talosctl and a talosconfig). Secrets are redacted on read.
    #[arg(
        long,
        value_name = "NODES",
        value_delimiter = ',',
        conflicts_with = "snapshot"
    )]
    pub talos_nodes: Vec<String>,

    /// talosconfig for --talos-nodes (default: talosctl's own lookup).
    #[arg(long, value_name = "FILE", requires = "talos_nodes")]
    pub talosconfig: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Report what runs in the cluster: platform, CNIs and modes, kube-proxy, CIDRs, DNS, nodes,
    /// risky workloads and leftovers.
    ///
    /// Reads the live cluster of your kubeconfig (read-only: only list requests, never Secrets)
    /// or a snapshot. Every fact names where it came from, so you can check it by hand.
    #[command(
        after_help = "Examples:\n  cniswap inspect --snapshot examples/talos-flannel-homelab\n  cniswap inspect --context prod -o json | jq '.facts.cnis'\n  cniswap inspect --talos-nodes 10.0.1.61,10.0.1.71"
    )]
    Inspect {
        #[command(flatten)]
        source: SourceArgs,

        /// Output format.
        #[arg(short, long, value_enum, default_value_t = OutputFormat::Text)]
        output: OutputFormat,
    },

    /// Save what inspect reads (minimal Kubernetes objects, Talos configs with secrets redacted)
    /// into DIR, in the snapshot layout that --snapshot reads back.
    ///
    /// Secret objects are never read; Talos secrets and kubeconfig credentials never reach DIR.
    #[command(
        after_help = "Examples:\n  cniswap snapshot -o ./snap\n  cniswap snapshot -o ./snap --talos-nodes 10.0.1.61\n  cniswap inspect --snapshot ./snap"
    )]
    Snapshot {
        #[command(flatten)]
        source: SourceArgs,

        /// Directory to write (created if missing; existing files with the same names are replaced).
        #[arg(short, long = "output", value_name = "DIR")]
        output: PathBuf,
    },

    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    #[command(after_help = "Example:\n  cniswap completions bash > /etc/bash_completion.d/cniswap")]
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Write man pages (cniswap.1 and one per subcommand) into DIR.
    Man {
        #[arg(long, value_name = "DIR", default_value = ".")]
        out_dir: PathBuf,
    },
}
