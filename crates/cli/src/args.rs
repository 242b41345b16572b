use clap::{Args, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;

// Lines stay under 80 columns: clap wraps after-help text to the terminal, and a wrapped
// example line is hard to copy.
const AFTER_HELP: &str = "\
Exit codes:
  0  success, no error-severity findings
  1  findings at error severity
  2  usage or input error (bad flag, unreadable or malformed input,
     cluster unreachable)

Start here:
  cniswap inspect --snapshot examples/talos-flannel-homelab
  cniswap inspect              # your current kubectl context, read-only
  cniswap lint talos/ kubernetes/ --to cilium  # before you touch the cluster
  cniswap snapshot --out-dir ./snap    # for offline work, secrets redacted";

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

/// `-o/--output FORMAT`: every command that reports takes it.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum OutputFormat {
    /// A report for people (coloured on terminals).
    #[default]
    Text,
    /// Stable, machine-readable JSON.
    Json,
    /// The same document as YAML.
    Yaml,
}

/// What `-o` of `plan` and `snapshot` means: a format, or (deprecated) the directory that
/// `--out-dir` now names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormatOrDir {
    Format(OutputFormat),
    /// The old spelling `-o DIR`: still accepted, with a deprecation note on stderr.
    LegacyDir(PathBuf),
}

/// `text`, `json` and `yaml` are formats; anything else is the old `-o DIR`.
fn format_or_dir(value: &str) -> Result<FormatOrDir, String> {
    Ok(match OutputFormat::from_str(value, false) {
        Ok(format) => FormatOrDir::Format(format),
        Err(_) if value.is_empty() => return Err("give a format: text, json or yaml".into()),
        Err(_) => FormatOrDir::LegacyDir(PathBuf::from(value)),
    })
}

/// Where `plan` and `snapshot` write their files.
#[derive(Debug, Args, Clone, Default)]
pub struct OutDirArgs {
    /// Directory to write. It must not exist yet or be empty (or pass --overwrite); a
    /// symbolic link is refused. Files appear all at once: they are written into a new
    /// directory beside DIR, which is then renamed to DIR.
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,

    /// Replace a non-empty DIR whole: every file in it is removed, none is kept.
    #[arg(long)]
    pub overwrite: bool,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum TargetCni {
    Flannel,
    Calico,
    Cilium,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum StrategyArg {
    /// The cluster is not bootstrapped yet.
    Fresh,
    /// One cluster-wide switch in a window.
    Cutover,
    /// Node by node with both dataplanes present.
    Rolling,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq, Default)]
pub enum LintFormat {
    /// rustc-style diagnostics with the source line.
    #[default]
    Text,
    /// {"findings": [...], "suppressed": [...], "summary": {...}}.
    Json,
    /// SARIF 2.1.0 (code scanning).
    Sarif,
    /// GitHub Actions annotations.
    Github,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SeverityArg {
    Info,
    Warning,
    Error,
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// List every link, address, route, ip rule, neighbour/FDB entry, iptables chain and rule
    /// (legacy and nft, IPv4 and IPv6), nftables table, ipset, BPF pin, tc program and file a
    /// CNI, kube-proxy or the runtime owns here, each with its owner and why; which CNI config
    /// the runtime will load; and the NOD findings.
    #[command(
        after_help = "Exit codes: 0 ok, 1 error findings, 2 usage or input error.\n\nExamples:\n  sudo cniswap node inventory\n  cniswap node inventory --root /host -o json > nodes/$(hostname).json"
    )]
    Inventory {
        /// Where the host filesystem is mounted.
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,

        /// Output format (json is the snapshot's `nodes/<node>.json` format; yaml is the
        /// same document).
        #[arg(short, long, value_name = "FORMAT", value_enum, default_value_t)]
        output: OutputFormat,
    },

    /// Remove only what one CNI owns on this node, in a safe order, after writing a backup.
    ///
    /// Refuses while that CNI's agent runs here. Pod veths stay until their pods are gone.
    /// iptables changes are one atomic restore per table and backend; config files are moved
    /// into the backup, never deleted. KUBE-* state is touched only with --include-kube-proxy
    /// and only when kube-proxy is not running. Shared plugins (bridge, host-local, portmap,
    /// ...), runtime namespaces and anything unrecognised are never touched.
    #[command(
        after_help = "Examples:\n  sudo cniswap node clean --cni flannel --dry-run\n  sudo cniswap node clean --cni flannel --backup /var/lib/cniswap/bk-flannel\n  sudo cniswap node restore --backup /var/lib/cniswap/bk-flannel"
    )]
    Clean {
        /// The CNI whose state to remove.
        #[arg(long, value_enum)]
        cni: SourceCni,

        /// Print exactly what would be removed; change nothing.
        #[arg(long)]
        dry_run: bool,

        /// Backup directory (must be new or empty; default <root>/var/lib/cniswap/backups/<cni>-<time>).
        #[arg(long, value_name = "DIR")]
        backup: Option<PathBuf>,

        /// Where the host filesystem is mounted.
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,

        /// Also remove kube-proxy's state (KUBE-* chains, its nft tables and ipsets, kube-ipvs0).
        #[arg(long)]
        include_kube_proxy: bool,
    },

    /// Put back what `node clean` removed, and say what cannot be put back.
    #[command(
        after_help = "Example:\n  sudo cniswap node restore \\\n      --backup /var/lib/cniswap/backups/flannel-1767225600\n  (the path `node clean` printed)"
    )]
    Restore {
        /// The backup directory `node clean` wrote (it printed the path; the default is
        /// <root>/var/lib/cniswap/backups/<cni>-<time>).
        #[arg(long, value_name = "DIR")]
        backup: PathBuf,

        /// Where the host filesystem is mounted.
        #[arg(long, value_name = "DIR", default_value = "/")]
        root: PathBuf,

        /// With --root: this network namespace is that host's, so recreate its links, routes,
        /// rules, nft, ipset and iptables state here too (without it they are recreated only
        /// when --root is / or its /proc shows the host's init in this namespace; else listed).
        #[arg(long)]
        network_here: bool,
    },
}

const VERIFY_HELP: &str = "\
Checks (kinds for --skip):
  pod-to-pod       TCP, same node (a second pod) and every pair of nodes
  pod-to-pod-udp   the same over UDP
  path-mtu         don't-fragment UDP as large as the sender's MTU, echoed
  pod-to-service   the probe Service's ClusterIP (answered on the same node)
  host-to-pod      each node (hostNetwork) to the pods of every node
  pod-to-host      each pod to every node IP
  dns-kubernetes   kubernetes.default.svc.<domain> resolves to its ClusterIP
  dns-service      the probe Service's FQDN resolves to its ClusterIP
  dns-headless     the headless probe Service resolves to probe pod IPs
  api-service      TCP to the API server through the kubernetes Service
  api-direct       TCP to each API server endpoint
  outside          TCP to --outside addresses (only when given)

Exit codes:
  0  every check passed (--continuous: no probe lost)
  1  checks failed (--continuous: probes lost or TCP connections reset)
  2  could not run (cluster unreachable, permissions, agents never started)

Examples:
  cniswap verify                             # the matrix on the terminal
  cniswap verify -o json --junit verify.xml  # for CI
  cniswap verify --print-manifests           # what it deploys, RBAC to run it
  cniswap verify --focus node-3              # after switching node-3
  cniswap verify --continuous --out-dir ./gaps  # while apply runs
  cniswap verify --continuous --duration 10m --out-dir ./gaps";

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Kubeconfig (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE", hide_env_values = true)]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context (default: the current one).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,

    /// Print the objects verify deploys and the RBAC a user needs to run it, then exit.
    #[arg(long)]
    pub print_manifests: bool,

    /// Output format (text: the matrix; json: every check, or with --continuous every path
    /// with its gaps).
    #[arg(short, long, value_enum, default_value_t = VerifyFormat::Text)]
    pub output: VerifyFormat,

    /// Also write JUnit XML (one test case per check) to FILE.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,

    /// Namespace verify deploys into (created and removed unless it exists).
    #[arg(long, default_value = cniswap_verify::names::NAMESPACE)]
    pub namespace: String,

    /// The cniswap image for the agents. The default is not published: put this binary's image
    /// into your registry with `cniswap image push REGISTRY/NAME` and pass the reference it
    /// prints.
    #[arg(long, default_value_t = cniswap_verify::manifests::default_image())]
    pub image: String,

    /// When the kubelet pulls the image (Never: it must already be on every node).
    #[arg(long, default_value = "IfNotPresent", value_parser = ["IfNotPresent", "Always", "Never"])]
    pub image_pull_policy: String,

    /// An image pull Secret in the namespace.
    #[arg(long, value_name = "NAME")]
    pub pull_secret: Option<String>,

    /// Leave out the hostNetwork agents (host-to-pod, pod-to-host); the namespace is then
    /// labelled Pod Security `restricted`.
    #[arg(long)]
    pub no_host: bool,

    /// The agents' TCP and UDP echo port (also bound on every node by the hostNetwork agent).
    #[arg(long, default_value_t = cniswap_verify::names::ECHO_PORT)]
    pub echo_port: u16,

    /// The agents' HTTP port (also bound on every node by the hostNetwork agent).
    #[arg(long, default_value_t = cniswap_verify::names::HTTP_PORT)]
    pub http_port: u16,

    /// Check only these nodes (repeat or comma-separate; default: all).
    #[arg(long, value_name = "NODE", value_delimiter = ',', add = crate::complete::node_names())]
    pub node: Vec<String>,

    /// Only the checks from or to this node, against every node (repeat or comma-separate):
    /// what a rolling migration runs after switching a node.
    #[arg(long, value_name = "NODE", value_delimiter = ',', add = crate::complete::node_names())]
    pub focus: Vec<String>,

    /// Also try TCP to this address outside the cluster from every node (IP:PORT).
    #[arg(long, value_name = "IP:PORT")]
    pub outside: Vec<std::net::SocketAddr>,

    /// Leave out a kind of check (repeatable; kinds below).
    #[arg(long, value_name = "KIND")]
    pub skip: Vec<String>,

    /// Cluster DNS domain (default: read from the probe pods' resolv.conf).
    #[arg(long, value_name = "DOMAIN")]
    pub cluster_domain: Option<String>,

    /// Per probe.
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,

    /// How long to wait for the agents to run and answer.
    #[arg(long, default_value = "120s", value_parser = humantime::parse_duration)]
    pub ready_timeout: std::time::Duration,

    /// Keep what verify deployed (to look at it, or to run again faster).
    #[arg(long)]
    pub keep: bool,

    /// Probe every path each --interval until Ctrl-C or --duration, and report every outage.
    #[arg(long)]
    pub continuous: bool,

    /// How often --continuous probes every path.
    #[arg(long, default_value = "200ms", value_parser = humantime::parse_duration, requires = "continuous")]
    pub interval: std::time::Duration,

    /// Stop --continuous after this long (default: at Ctrl-C).
    #[arg(long, value_parser = humantime::parse_duration, requires = "continuous")]
    pub duration: Option<std::time::Duration>,

    /// Nodes being switched for the whole run. Without it, a node is being switched while
    /// it carries apply's cniswap.io/apply-in-progress marker or is cordoned (seen each
    /// second, widened by a second and the probe timeout); a lost probe counts "elsewhere"
    /// unless its path touched a node being switched when it was sent. The summary shows
    /// each switched node's longest gap per path kind (pod-to-pod, service, dns, host, api).
    #[arg(
        long,
        value_name = "NODE",
        value_delimiter = ',',
        requires = "continuous",
        add = crate::complete::node_names()
    )]
    pub switching: Vec<String>,

    /// Where --continuous writes report.json, timeline.json, timeline.svg and timeline.png
    /// (default: ./cniswap-verify-<time>).
    #[arg(long, value_name = "DIR", requires = "continuous")]
    pub out_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum VerifyFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// Write the image as an OCI image layout directory (oci-layout, index.json, blobs/).
    #[command(
        after_help = "The image holds this binary at /usr/local/bin/cniswap (with the shared\nlibraries it loads, when it is not static) and runs it as its entrypoint.\n\nExit codes: 0 written, 2 DIR exists or cannot be written.\n\nExamples:\n  cniswap image build --out-dir ./cniswap-image\n  skopeo copy oci:./cniswap-image:0.1.0 docker://registry.example/cniswap:0.1.0"
    )]
    Build {
        /// Directory to create (it must not exist).
        #[arg(long, value_name = "DIR")]
        out_dir: PathBuf,

        /// The tag the layout names its image by (`oci:DIR:TAG`).
        #[arg(long, default_value = env!("CARGO_PKG_VERSION"))]
        tag: String,
    },

    /// Push the image to a registry over the OCI distribution API (no Docker, no skopeo), then
    /// print the reference to give verify and plan, pinned by digest.
    ///
    /// Credentials, the first found for the registry: --username with --password-stdin,
    /// $REGISTRY_AUTH_FILE, $XDG_RUNTIME_DIR/containers/auth.json,
    /// ~/.config/containers/auth.json, $DOCKER_CONFIG/config.json or ~/.docker/config.json
    /// (what `podman login` and `docker login` write, credential helpers included); else none.
    #[command(after_help = IMAGE_PUSH_HELP)]
    Push {
        /// Where to push: REGISTRY/NAME[:TAG] (the registry host is required; TAG defaults to
        /// this version).
        #[arg(value_name = "REGISTRY/NAME[:TAG]")]
        reference: String,

        /// The registry user (with --password-stdin).
        #[arg(long, value_name = "USER", requires = "password_stdin")]
        username: Option<String>,

        /// Read the password or access token from standard input (one line).
        #[arg(long, requires = "username")]
        password_stdin: bool,

        /// Speak plain HTTP to the registry: only for one you trust on every network hop.
        /// A registry on this machine (localhost, 127.0.0.0/8, [::1]) gets plain HTTP without
        /// it when it does not speak HTTPS.
        #[arg(long)]
        insecure: bool,

        /// Output format: json and yaml are {"pushed", "reference", "digest", "blobs_sent",
        /// "blobs_present", "plain_http"} (`reference` is the pinned REGISTRY/NAME@sha256:...).
        #[arg(short, long, value_name = "FORMAT", value_enum, default_value_t)]
        output: OutputFormat,
    },
}

const IMAGE_PUSH_HELP: &str = "Exit codes: 0 pushed, 2 bad name, credentials or flags, the registry\n  unreachable or refusing (the message says which, with the credentials'\n  source, never the secret).\n\nExamples:\n  cniswap image push registry.example.com/team/cniswap\n  echo \"$TOKEN\" | cniswap image push ghcr.io/me/cniswap:0.1.0 \\\n      --username me --password-stdin\n  cniswap image push 127.0.0.1:5000/cniswap   # a local registry, plain HTTP\n  cniswap image push reg.example/cniswap -o json | jq -r .reference\n\nThen, with the reference it prints:\n  cniswap verify --image REGISTRY/NAME@sha256:...\n  cniswap plan ... --agent-image REGISTRY/NAME@sha256:...";

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// The probe agent of `cniswap verify`: TCP and UDP echo on --echo-port, an HTTP API on
    /// --http-port (GET / identity, POST /check, PUT /probe, GET /results?since=N), and a prober
    /// that probes targets with plain TCP, UDP and DNS (no ICMP, no privileges: it runs as
    /// non-root under Pod Security `restricted`, or with hostNetwork as --role host).
    ///
    /// verify deploys it as three DaemonSets and talks to it through port-forwards; its
    /// identity comes from the downward API (NODE_NAME, POD_NAME, POD_NAMESPACE, POD_IP,
    /// HOST_IP).
    #[command(
        after_help = "Examples:\n  # in a pod, with the token of verify's Secret; identity from the env\n  CNISWAP_AGENT_TOKEN=$T cniswap agent probe --role probe\n  CNISWAP_AGENT_TOKEN=$T cniswap agent probe --role host --node n1 \\\n    --ip 192.168.1.10\n  curl -s -H \"Authorization: Bearer $T\" localhost:9441/ | jq .  # identity, MTU"
    )]
    Probe(ProbeAgentArgs),
}

#[derive(Debug, Args)]
pub struct ProbeAgentArgs {
    /// probe: pod-network prober; peer: pod-network echo (same-node peer and Service backend);
    /// host: hostNetwork prober.
    #[arg(long, default_value = "probe", value_parser = ["probe", "peer", "host"])]
    pub role: String,

    /// The node it runs on (reported in its identity).
    #[arg(long, env = "NODE_NAME", default_value = "")]
    pub node: String,

    /// Its pod's name.
    #[arg(long, env = "POD_NAME", default_value = "")]
    pub pod: String,

    /// Its pod's namespace.
    #[arg(long, env = "POD_NAMESPACE", default_value = "")]
    pub namespace: String,

    /// The address others reach this agent on (default: POD_IP, or HOST_IP for --role host).
    #[arg(long)]
    pub ip: Option<std::net::IpAddr>,

    #[arg(long, env = "POD_IP", hide = true)]
    pub pod_ip: Option<std::net::IpAddr>,

    #[arg(long, env = "HOST_IP", hide = true)]
    pub host_ip: Option<std::net::IpAddr>,

    /// TCP and UDP echo port.
    #[arg(long, default_value_t = cniswap_verify::names::ECHO_PORT)]
    pub echo_port: u16,

    /// HTTP API port.
    #[arg(long, default_value_t = cniswap_verify::names::HTTP_PORT)]
    pub http_port: u16,

    /// Address the echo servers listen on (default: for --role host the node address, --ip or
    /// HOST_IP, so the hostNetwork agent answers only there; else all IPv4 addresses, or all
    /// IPv6 ones when the agent's address is IPv6).
    #[arg(long)]
    pub bind: Option<std::net::IpAddr>,

    /// Address the HTTP API listens on. verify reaches it through a port-forward, which
    /// connects to localhost inside the pod (the node's for the hostNetwork agent).
    #[arg(long, default_value = "127.0.0.1")]
    pub http_bind: std::net::IpAddr,

    /// The run's token (from the environment only, never the command line, which every user
    /// of the node can read). Every API request but GET /healthz must carry it as
    /// `Authorization: Bearer TOKEN`; verify generates it for each run and passes it in a Secret.
    #[arg(
        long = "token-env",
        env = "CNISWAP_AGENT_TOKEN",
        hide = true,
        hide_env_values = true
    )]
    pub token: Option<String>,

    /// Seconds a connection may stay silent before it is closed (HTTP: until a request's
    /// header and body have arrived; TCP echo: between frames).
    #[arg(long, default_value_t = cniswap_verify::wire::bounds::IDLE_SECONDS, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout: u64,

    /// The resolver configuration DNS probes use.
    #[arg(long, default_value = "/etc/resolv.conf", value_name = "FILE")]
    pub resolv_conf: PathBuf,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum PlanStrategyArg {
    Auto,
    Fresh,
    Cutover,
    Rolling,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum RebootArg {
    /// Talos nodes reboot (cniswap runs talosctl); other nodes get their pods recreated.
    Auto,
    /// Every switched node reboots (outside Talos, apply stops for you to reboot it).
    Always,
    /// No node reboots: its pods are recreated on the new network.
    Never,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum KubeProxyArg {
    Keep,
    Replace,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum InstallArg {
    /// The CNI's Helm chart (Cilium; Calico through the tigera-operator chart).
    Helm,
    /// The CNI's own manifest applied with kubectl: Calico's calico.yaml without the operator
    /// (default for Calico when --manifest calico=FILE is given or the cluster runs Calico by
    /// manifest), Flannel's kube-flannel.yml.
    Manifest,
    /// The chart rendered with `helm template` and applied with kubectl.
    Manifests,
    /// Talos applies the rendered manifests from a pinned URL.
    TalosUrls,
    /// Omni ConfigPatches carry the install.
    Omni,
}

/// Installs without the internet: local charts and manifests, and an image mirror.
#[derive(Debug, Args, Clone, Default)]
pub struct OfflineArgs {
    /// A local chart directory instead of the chart repository: cilium=DIR or
    /// tigera-operator=DIR (the directory holding Chart.yaml). It is copied into the plan's
    /// artifacts/charts/, its version read from Chart.yaml, and every helm command of the plan
    /// uses the copy. Repeatable.
    #[arg(long, value_name = "NAME=DIR")]
    pub chart: Vec<String>,

    /// A local manifest instead of a download: calico=FILE (Calico's calico.yaml, for
    /// --install manifest), flannel=FILE (kube-flannel.yml), calico-flannel-migration=FILE and
    /// calico-migration-job=FILE (Calico's flannel-migration calico.yaml and migration-job.yaml).
    /// Copied into the plan's artifacts. Repeatable.
    #[arg(long, value_name = "NAME=FILE")]
    pub manifest: Vec<String>,

    /// Pull every image the plan installs from this mirror: each becomes
    /// HOST[/PREFIX]/<upstream repository path>:<tag> (quay.io/cilium/cilium:v1.20.2 ->
    /// HOST/cilium/cilium:v1.20.2), digests dropped. Helm values set each image's repository;
    /// manifests given with --manifest are rendered with their images rewritten; the node
    /// agent too, unless --agent-image names one. With --chart, --manifest or --image-registry
    /// the plan refuses anything it would fetch from the internet.
    #[arg(long, value_name = "HOST[/PREFIX]")]
    pub image_registry: Option<String>,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum SourceCni {
    Flannel,
    Canal,
    Calico,
    Cilium,
    Weave,
}

/// Where to read the cluster from.
#[derive(Debug, Args, Clone)]
pub struct SourceArgs {
    /// Read a snapshot (a directory, or one file of `kubectl get -o yaml|json` output) instead of
    /// the live cluster.
    #[arg(long, value_name = "PATH")]
    pub snapshot: Option<PathBuf>,

    /// Kubeconfig to use for a live cluster (default: KUBECONFIG, then ~/.kube/config).
    // KUBECONFIG is read by kube-rs (as a list, like kubectl), not by clap: a value from the
    // environment must not conflict with --snapshot.
    #[arg(long, value_name = "FILE", conflicts_with = "snapshot")]
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
        after_help = "Exit codes: 0 read, 1 error findings, 2 input error, or the cluster did not\n  let every kind be listed (RBAC, a missing API): the report is then partial,\n  and the message names each kind and the permission to grant.\n\nExamples:\n  cniswap inspect --snapshot examples/talos-flannel-homelab\n  cniswap inspect --context prod -o json | jq '.facts.cnis'\n  cniswap inspect --talos-nodes 10.0.1.61,10.0.1.71"
    )]
    Inspect {
        #[command(flatten)]
        source: SourceArgs,

        /// Output format: json and yaml are {"schema_version", "facts", "findings"}.
        #[arg(short, long, value_name = "FORMAT", value_enum, default_value_t)]
        output: OutputFormat,
    },

    /// Save what inspect reads (minimal Kubernetes objects, Talos configs with secrets redacted)
    /// into DIR, in the snapshot layout that --snapshot reads back.
    ///
    /// Secret objects are never read; Talos secrets and kubeconfig credentials never reach DIR.
    /// Files read from a snapshot keep their names (talos/controlplane.yaml stays), and the
    /// report counts what reading DIR back will find.
    #[command(
        after_help = "Exit codes: 0 written, 2 input error, or written but partial: the cluster\n  did not let every kind be listed (recorded in cluster/unread.json, so plans\n  from the snapshot refuse too).\n\nExamples:\n  cniswap snapshot --out-dir ./snap\n  cniswap snapshot --out-dir ./snap --talos-nodes 10.0.1.61\n  cniswap snapshot --out-dir ./snap --overwrite  # replace an older snapshot\n  cniswap inspect --snapshot ./snap"
    )]
    Snapshot {
        #[command(flatten)]
        source: SourceArgs,

        #[command(flatten)]
        out: OutDirArgs,

        /// Format of the report of what was written: text, json or yaml. (`-o DIR` is the
        /// old spelling of --out-dir: still accepted, deprecated.)
        #[arg(short, long, value_name = "FORMAT", value_parser = format_or_dir)]
        output: Option<FormatOrDir>,
    },

    /// Check Talos/Omni configs, Helm values, Calico and Flannel settings (and cluster facts)
    /// against the rule catalogue, before a migration and in CI.
    ///
    /// With PATHs, lints those files and directories only (no cluster needed). Add --snapshot
    /// or --live to check them against a cluster's facts as well. Without PATHs, lints the
    /// cluster (live, read-only, or --snapshot). Rules run only when their inputs are present;
    /// `cniswap explain <ID>` documents each rule.
    ///
    /// Suppress a finding with `# cniswap:ignore <ID> <reason>` on its line (or the comment
    /// line above), or per path in .cniswap.yaml (format below).
    #[command(
        after_help = "Exit codes: 0 no findings at or above --severity, 1 findings,\n  2 usage or input error.\n\nFiles that are not read (not recognised, Helm chart templates, files that do\nnot parse, rollback files) are listed as skipped with the reason; -v says how\neach file was read. A file whose leading comments hold `cniswap:rollback`, or\nnamed rollback-*.yaml, is a rollback file: it restores the old CNI on purpose\nand is not checked against --to.\n\nRule selection (like ruff): a code is a rule ID (TAL008), an ID prefix (TAL,\nCIL01), a rule name or ALL; the more specific of --select and --ignore wins.\n\n.cniswap.yaml:\n  select: [ALL]          # rules to run (--select replaces it)\n  ignore:\n    - TAL008             # a rule not to run (--ignore adds to these)\n    - rules: [CIL001]    # findings silenced where they are, with a reason\n      paths: [\"kubernetes/**/cilium/**\"]\n      reason: Multus needs cni.exclusive false\n\nExamples:\n  cniswap lint talos/ kubernetes/apps/kube-system/cilium/\n  cniswap lint helm/cilium.yaml --snapshot ./snap --to cilium\n  cniswap lint . -o sarif > cniswap.sarif\n  cniswap lint . -o github          # annotations in GitHub Actions\n  cniswap lint . --select TAL,CIL --ignore TAL008"
    )]
    Lint {
        /// Files or directories to lint (Talos configs and patches, Omni resources, talconfig,
        /// Helm values / HelmRelease / Application, Calico and Flannel manifests).
        #[arg(value_name = "PATH")]
        paths: Vec<PathBuf>,

        #[command(flatten)]
        source: SourceArgs,

        /// With PATHs: also read the live cluster of your kubeconfig (read-only).
        #[arg(long, conflicts_with = "snapshot")]
        live: bool,

        /// The CNI you are migrating to; enables the migration rules.
        #[arg(long, value_enum, value_name = "CNI")]
        to: Option<TargetCni>,

        /// How the migration will run (rolling: both dataplanes side by side, node by node).
        #[arg(long, value_enum, requires = "to")]
        strategy: Option<StrategyArg>,

        /// Output format.
        #[arg(short, long, value_name = "FORMAT", value_enum)]
        output: Option<LintFormat>,

        /// Deprecated spelling of -o/--output.
        #[arg(
            long,
            value_name = "FORMAT",
            value_enum,
            hide = true,
            conflicts_with = "output"
        )]
        format: Option<LintFormat>,

        /// Lowest severity that makes the exit code 1 (all findings are shown).
        #[arg(long, value_enum, default_value_t = SeverityArg::Warning)]
        severity: SeverityArg,

        /// Suppression file (default: .cniswap.yaml in the current directory, when present).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,

        /// Run only these rules: IDs, ID prefixes, names or ALL (comma-separated or repeated;
        /// replaces `select:` of .cniswap.yaml).
        #[arg(long, value_name = "CODE", value_delimiter = ',', add = crate::complete::rule_codes())]
        select: Vec<String>,

        /// Do not run these rules: IDs, ID prefixes or names (added to .cniswap.yaml's).
        #[arg(long, value_name = "CODE", value_delimiter = ',', add = crate::complete::rule_codes())]
        ignore: Vec<String>,
    },

    /// Plan a migration: ordered, typed steps with rollback per phase, generated files (Talos
    /// and Omni patches, Helm values, CNI resources) and a runbook with the exact commands.
    ///
    /// Reads the cluster like inspect (live and read-only, or --snapshot) and prints a summary
    /// (-o json|yaml: the plan itself); --out-dir DIR writes the files. Error-severity preflight findings refuse the plan (exit 1) unless --force;
    /// findings the plan resolves itself (settings its generated files replace, or a step
    /// fixes) are listed with how, and do not refuse it.
    #[command(
        after_help = "Exit codes: 0 plan written, 1 refused by error findings (see them, or\n  --force), 2 usage or input error, or a fact the plan needs is unknown (the\n  message names it and the flag or permission that answers it).\n\nExamples:\n  cniswap plan --snapshot ./snap --to cilium\n  cniswap plan --snapshot ./snap --to cilium --out-dir ./plan\n  cniswap plan --to calico --strategy cutover --out-dir ./plan   # live cluster\n  cniswap plan --snapshot ./snap --to cilium -o json | jq '.phases[].name'\n\nWithout the internet (docs/air-gapped.md):\n  cniswap plan --to cilium --chart cilium=./charts/cilium \\\n    --image-registry registry.example.com/mirror --out-dir ./plan"
    )]
    Plan {
        #[command(flatten)]
        source: SourceArgs,

        /// The CNI to migrate to.
        #[arg(long, value_enum)]
        to: TargetCni,

        /// auto picks one from the facts and says why.
        #[arg(long, value_enum, default_value_t = PlanStrategyArg::Auto)]
        strategy: PlanStrategyArg,

        /// Keep kube-proxy, or let the target replace it (Cilium KPR, Calico eBPF). Default:
        /// whatever the cluster does today; when the snapshot cannot tell, the plan asks.
        #[arg(long, value_enum)]
        kube_proxy: Option<KubeProxyArg>,

        /// How to install the target (default: helm; Calico's manifest when given with
        /// --manifest or when the cluster runs Calico by manifest; Flannel's manifest, or Talos'
        /// built-in Flannel on Talos).
        #[arg(long, value_enum)]
        install: Option<InstallArg>,

        /// Extra Helm values for the target chart (merged under the settings the plan needs).
        #[arg(long, value_name = "FILE")]
        values: Vec<PathBuf>,

        /// Nodes switched together (workers only; control planes go one by one, last).
        #[arg(long, default_value_t = 1, value_name = "N")]
        batch_size: usize,

        /// Whether a switched node reboots (rolling). Without a reboot its pods are recreated
        /// on the new network and the old CNI's leftovers are removed by the node agent once
        /// the old CNI is gone.
        #[arg(long, value_enum, default_value_t = RebootArg::Auto)]
        reboot: RebootArg,

        /// The cniswap node agent image the plan runs on nodes (node clean, inventory). Every
        /// node must be able to pull it: `cniswap image push REGISTRY/NAME` puts this binary's
        /// image into your registry and prints the reference to give here.
        /// [default: ghcr.io/cniswap/cniswap:<this version>, not published]
        #[arg(long, value_name = "IMAGE")]
        agent_image: Option<String>,

        /// The image of the plan's small check pods (a new pod's address, a Service, DNS) and
        /// node file edits: a shell with sleep and wget. [default: busybox:1.36, from the
        /// --image-registry mirror when given]
        #[arg(long, value_name = "IMAGE")]
        helper_image: Option<String>,

        /// The cluster's pod range, when the cluster does not say it (no kubeadm-config,
        /// controller-manager --cluster-cidr, Talos podSubnets or k3s/RKE2 node-args): the
        /// plan never assumes one, and asks for this flag instead.
        #[arg(long, value_name = "CIDR")]
        pod_cidr: Option<String>,

        /// The highly available API server address (VIP or DNS name) a target that replaces
        /// kube-proxy uses, when the cluster shows only single servers' addresses.
        #[arg(long, value_name = "HOST:PORT")]
        api_endpoint: Option<String>,
        #[command(flatten)]
        offline: OfflineArgs,

        /// Write plan.yaml, runbook.md and artifacts/ into --out-dir DIR.
        #[command(flatten)]
        out: OutDirArgs,

        /// Output format: text (a summary), json or yaml (the plan document). (`-o DIR` is
        /// the old spelling of --out-dir: still accepted, deprecated.)
        #[arg(short, long, value_name = "FORMAT", value_parser = format_or_dir)]
        output: Option<FormatOrDir>,

        /// Write the plan despite error-severity preflight findings.
        #[arg(long)]
        force: bool,
    },

    /// Execute a plan written by `cniswap plan --out-dir DIR`, step by step, with a crash-safe journal.
    ///
    /// Every step first reads whether its effect is already there (then it is skipped and
    /// recorded as such), writes a start record to DIR/journal.jsonl (fsync'd) before it acts,
    /// and reads its effect back afterwards: no step succeeds merely because nothing failed.
    /// Kill it anywhere (Ctrl-C stops at the next safe point) and run the same command again: it
    /// resumes where it stopped. Manual gates stop the run with what to look at; approve one
    /// with --approve STEP, or all of the plan's gates with --yes. A Lease in kube-system keeps a
    /// second apply off the same cluster; the journal is mirrored in ConfigMap
    /// kube-system/cniswap-journal, and nodes carry cniswap.io/apply-in-progress and
    /// cniswap.io/apply-done annotations.
    #[command(
        after_help = APPLY_HELP,
        args_conflicts_with_subcommands = true,
        subcommand_negates_reqs = true
    )]
    Apply(ApplyArgs),

    /// The node agent: what CNIs, kube-proxy and the runtime left on this node; remove one
    /// CNI's state with a backup; put a backup back. Run as root on the node, or in a
    /// privileged hostNetwork pod with the host filesystem at --root /host.
    #[command(subcommand)]
    Node(NodeCommand),

    /// Prove the cluster network works, for any CNI: pod to pod on the same node and across
    /// every pair of nodes, pod to Service, DNS, the API server, host to pod and pod to host,
    /// and path MTU. With --continuous, measure every outage per path during a migration.
    ///
    /// verify deploys into its own namespace (labelled for the Pod Security level it needs):
    /// two pod-network DaemonSets (a prober and a same-node peer, Pod Security `restricted`),
    /// a hostNetwork DaemonSet (skip it with --no-host), a ClusterIP Service (traffic policy
    /// Local, so it tests each node's Service rules) and a headless Service. The DaemonSets
    /// tolerate every taint, so cordoned and not-ready nodes are checked too. It talks to its
    /// agents through port-forwards (the kubelet), not through the pod network it checks,
    /// uses no CNI's CRDs or tools, and removes everything it deployed unless --keep.
    #[command(after_help = VERIFY_HELP)]
    Verify(Box<VerifyArgs>),

    /// Agents cniswap runs in the cluster (verify deploys them; you rarely start one by hand).
    #[command(subcommand)]
    Agent(AgentCommand),

    /// The container image of cniswap's agents (verify's probes, apply's node steps), made
    /// from this very binary: no Docker, no Containerfile build.
    ///
    /// `push` sends it straight to your registry; `build` writes an OCI image layout directory
    /// for an air-gapped transfer (`skopeo copy oci:DIR:TAG docker://REGISTRY/NAME:TAG`). Then
    /// pass it to verify (`--image`) and plan (`--agent-image`).
    #[command(subcommand)]
    Image(ImageCommand),

    /// Show the documentation of a rule (`cniswap explain CIL001`), or list every rule.
    #[command(
        after_help = "Examples:\n  cniswap explain TAL007\n  cniswap explain cni-exclusive-disabled\n  cniswap explain --list"
    )]
    Explain {
        /// Rule ID or name.
        #[arg(value_name = "RULE", required_unless_present = "list", add = crate::complete::rule_ids())]
        rule: Option<String>,

        /// List every rule with its severity and title.
        #[arg(long)]
        list: bool,

        /// Output format: text (the rule's documentation), json or yaml (its metadata and
        /// documentation).
        #[arg(short, long, value_name = "FORMAT", value_enum, default_value_t)]
        output: OutputFormat,
    },

    /// Print a static shell completion script (bash, zsh, fish, elvish, powershell):
    /// subcommands and flags. For rule IDs and node names too, load the dynamic one instead.
    #[command(
        after_help = "Examples:\n  cniswap completions bash > /etc/bash_completion.d/cniswap\n\nDynamic completion, rule IDs and node names too (docs/completion.md):\n  source <(COMPLETE=bash cniswap)"
    )]
    Completions {
        /// The shell to write the script for.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },

    /// Write man pages (cniswap.1 and one per subcommand) into DIR.
    #[command(after_help = "Example:\n  cniswap man --out-dir /usr/local/share/man/man1")]
    Man {
        /// Directory for the man pages (created when missing; pages of the same name are
        /// replaced).
        #[arg(long, value_name = "DIR", default_value = ".")]
        out_dir: PathBuf,
    },
}

#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;

    fn all(cmd: &clap::Command) -> Vec<clap::Command> {
        let mut out = vec![cmd.clone()];
        for sub in cmd.get_subcommands() {
            out.extend(all(sub));
        }
        out
    }

    #[test]
    fn clap_accepts_the_definition() {
        Cli::command().debug_assert();
    }

    /// clap wraps after-help text to the terminal: a longer line breaks mid-example.
    #[test]
    fn after_help_lines_fit_80_columns() {
        for cmd in all(&Cli::command()) {
            let text = cmd
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            for line in text.lines() {
                assert!(
                    line.chars().count() < 80,
                    "`{}` after-help line is {} columns: {line}",
                    cmd.get_name(),
                    line.chars().count()
                );
            }
        }
    }

    #[test]
    fn every_argument_says_what_it_is_for() {
        for cmd in all(&Cli::command()) {
            for arg in cmd.get_arguments() {
                let id = arg.get_id().as_str();
                if arg.is_hide_set() || matches!(id, "help" | "version") {
                    continue;
                }
                assert!(
                    arg.get_help().is_some() || arg.get_long_help().is_some(),
                    "`{} --{id}` has no help text",
                    cmd.get_name()
                );
            }
        }
    }
}

const APPLY_HELP: &str = "\
Exit codes:
  0    done (or stopped after --until STEP as asked)
  1    a step failed, or the cluster drifted from the plan: the message names
       the step, the object or node, the command, its output, and what to do
  2    could not start: bad input, the plan changed since its journal began,
       a tool is missing, the cluster is unreachable, or the lock is held
  3    waiting at a gate: approve with --approve STEP (--yes: the plan's gates)
  130  interrupted with Ctrl-C; run the same command again to resume

Examples:
  cniswap apply ./plan --dry-run          # every action; changes nothing
  cniswap apply ./plan                    # runs until the first gate
  cniswap apply ./plan --approve 1.1      # approve that gate and go on
  cniswap apply ./plan --yes --until 3.7  # the plan's gates; stop after 3.7
  cniswap apply status ./plan             # steps, nodes, what is next, lock
  cniswap apply rollback ./plan --phase 3 # undo phase 3 (later ones first)";

#[derive(Debug, Args)]
pub struct ApplyArgs {
    #[command(subcommand)]
    pub command: Option<ApplyCommand>,

    #[command(flatten)]
    pub run: ApplyRunArgs,
}

/// How to reach the cluster a plan is applied to.
#[derive(Debug, Args, Clone)]
pub struct ClusterArgs {
    /// Kubeconfig (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long, env = "KUBECONFIG", value_name = "FILE", hide_env_values = true)]
    pub kubeconfig: Option<PathBuf>,

    /// Kubeconfig context (default: the current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

#[derive(Debug, Args, Clone)]
pub struct ControlArgs {
    /// Approve every manual gate of the plan (not a blocked step's escalation: that needs
    /// --approve STEP).
    #[arg(long)]
    pub yes: bool,

    /// Approve one step: a gate, or a blocked step (a drain held by a PodDisruptionBudget, pods
    /// without a controller) allowed to go further. Repeatable.
    #[arg(long, value_name = "STEP")]
    pub approve: Vec<String>,

    /// Only this phase (its number from 1, or its id).
    #[arg(long, value_name = "N")]
    pub phase: Option<String>,

    /// Print every action with its arguments and what proves it; change nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Take the cluster's apply lock even if another apply holds it (only when that one is gone).
    #[arg(long)]
    pub force_unlock: bool,

    /// Seconds the apply lock lasts without renewal.
    #[arg(long, value_name = "SECONDS", default_value_t = 30, hide = true)]
    pub lease_seconds: u64,

    #[command(flatten)]
    pub cluster: ClusterArgs,
}

#[derive(Debug, Args, Clone)]
pub struct ApplyRunArgs {
    /// The plan directory (plan.yaml, artifacts/; the journal is written here).
    #[arg(value_name = "PLAN_DIR", required = true)]
    pub plan: Option<PathBuf>,

    /// Stop after this step.
    #[arg(long, value_name = "STEP")]
    pub until: Option<String>,

    /// Image of the node agent run on nodes (node clean); `cniswap image push REGISTRY/NAME`
    /// puts one into your registry.
    #[arg(long, value_name = "IMAGE")]
    pub agent_image: Option<String>,

    #[command(flatten)]
    pub control: ControlArgs,
}

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum StatusFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum ApplyCommand {
    /// Where a plan's run stands: phases, steps (done, skipped, failed, waiting), their
    /// durations, nodes, what runs next, and who holds the cluster's apply lock.
    #[command(after_help = "Exit codes: 0 shown, 2 the plan or its journal cannot be read.")]
    Status {
        /// The plan directory (plan.yaml and its journal).
        #[arg(value_name = "PLAN_DIR")]
        plan: PathBuf,

        /// Output format.

        #[arg(short, long, value_enum, default_value_t = StatusFormat::Text)]
        output: StatusFormat,

        #[command(flatten)]
        cluster: ClusterArgs,
    },

    /// Undo started phases, last first: each phase's rollback steps in order, journaled like
    /// apply; --phase N undoes one phase (later phases must be undone first).
    #[command(
        after_help = "Exit codes: as for apply: 0 done, 1 failed, 2 could not start,\n3 waiting at a gate, 130 interrupted."
    )]
    Rollback {
        /// The plan directory (plan.yaml and its journal).
        #[arg(value_name = "PLAN_DIR")]
        plan: PathBuf,

        /// Image of the node agent run on nodes (node restore); `cniswap image push
        /// REGISTRY/NAME` puts one into your registry.
        #[arg(long, value_name = "IMAGE")]
        agent_image: Option<String>,

        #[command(flatten)]
        control: ControlArgs,
    },
}
