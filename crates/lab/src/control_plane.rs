//! The control plane on the host: etcd, kube-apiserver (RBAC and the Node authorizer,
//! NodeRestriction admission on top of the defaults, as kubeadm sets it up), the
//! controller-manager (allocating node pod CIDRs, which Flannel needs) and the scheduler.

use crate::components::Components;
use crate::error::{LabError, Result};
use crate::pki::{CertFiles, Pki, kubeconfig};
use crate::process::{self, Spawn};
use crate::state::ProcessRecord;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Ports of one lab, derived from its index so that labs never collide.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub etcd_client: u16,
    pub etcd_peer: u16,
    pub apiserver: u16,
    pub controller_manager: u16,
    pub scheduler: u16,
    pub kwok: u16,
}

impl Ports {
    pub fn for_index(index: u8) -> Ports {
        let base = 30000 + u16::from(index) * 10;
        Ports {
            etcd_client: base,
            etcd_peer: base + 1,
            apiserver: base + 2,
            controller_manager: base + 3,
            scheduler: base + 4,
            kwok: base + 5,
        }
    }
}

/// Network settings of the cluster.
#[derive(Debug, Clone)]
pub struct ClusterNetwork {
    pub pod_cidr: String,
    pub node_cidr_mask: u8,
    pub service_cidr: String,
}

#[derive(Clone)]
pub struct ControlPlaneFiles {
    pub admin_kubeconfig: PathBuf,
    pub controller_manager_kubeconfig: PathBuf,
    pub scheduler_kubeconfig: PathBuf,
    pub kubelet_client: CertFiles,
}

/// Writes the control plane's certificates and kubeconfigs.
pub fn write_files(
    dir: &Path,
    pki: &Pki,
    server: &str,
    apiserver_names: &[String],
) -> Result<ControlPlaneFiles> {
    pki.server("apiserver", "kube-apiserver", apiserver_names)?;
    let kubelet_client = pki.client(
        "apiserver-kubelet-client",
        "kube-apiserver-kubelet-client",
        &["system:masters"],
    )?;
    let write = |name: &str, client: &CertFiles| -> Result<PathBuf> {
        let path = dir.join(format!("{name}.kubeconfig"));
        std::fs::write(&path, kubeconfig(server, &pki.ca(), client, "cniswap-lab"))
            .map_err(LabError::io(format!("write {}", path.display())))?;
        Ok(path)
    };
    let admin = pki.client("admin", "cniswap-lab-admin", &["system:masters"])?;
    let cm = pki.client("controller-manager", "system:kube-controller-manager", &[])?;
    let scheduler = pki.client("scheduler", "system:kube-scheduler", &[])?;
    Ok(ControlPlaneFiles {
        admin_kubeconfig: write("admin", &admin)?,
        controller_manager_kubeconfig: write("controller-manager", &cm)?,
        scheduler_kubeconfig: write("scheduler", &scheduler)?,
        kubelet_client,
    })
}

pub type Started = (ProcessRecord, std::process::Child);

pub fn start_etcd(dir: &Path, components: &Components, ports: Ports) -> Result<Started> {
    let client = format!("http://127.0.0.1:{}", ports.etcd_client);
    let peer = format!("http://127.0.0.1:{}", ports.etcd_peer);
    process::spawn(Spawn {
        name: "etcd".into(),
        program: &components.etcd.path,
        args: vec![
            "--name=lab".into(),
            format!("--data-dir={}", dir.join("etcd").display()),
            format!("--listen-client-urls={client}"),
            format!("--advertise-client-urls={client}"),
            format!("--listen-peer-urls={peer}"),
            format!("--initial-advertise-peer-urls={peer}"),
            format!("--initial-cluster=lab={peer}"),
            // A throwaway cluster: durability is not worth the disk waits.
            "--unsafe-no-fsync=true".into(),
            "--log-level=warn".into(),
            "--quota-backend-bytes=4294967296".into(),
        ],
        env: vec![],
        log: dir.join("logs/etcd.log"),
        namespaces: None,
        node: None,
    })
}

pub struct ApiServerArgs<'a> {
    pub dir: &'a Path,
    pub pki: &'a Pki,
    pub files: &'a ControlPlaneFiles,
    pub ports: Ports,
    pub address: &'a str,
    pub network: &'a ClusterNetwork,
}

/// Every request at Metadata level (who, verb, URI, status): tests read it to prove what a
/// client asked for (never Secrets; every list paginated).
const AUDIT_POLICY: &str = "apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n";

/// The API server's audit log: one JSON event per line.
pub fn audit_log(dir: &Path) -> PathBuf {
    dir.join("logs/audit.log")
}

pub fn start_apiserver(components: &Components, args: ApiServerArgs<'_>) -> Result<Started> {
    let policy = args.dir.join("audit-policy.yaml");
    std::fs::write(&policy, AUDIT_POLICY)
        .map_err(LabError::io(format!("write {}", policy.display())))?;
    let pki = args.pki.ca();
    let pki_dir = pki.parent().unwrap_or(Path::new("."));
    let file = |name: &str| pki_dir.join(name).display().to_string();
    process::spawn(Spawn {
        name: "kube-apiserver".into(),
        program: &components.kube_apiserver.path,
        args: vec![
            format!("--etcd-servers=http://127.0.0.1:{}", args.ports.etcd_client),
            format!("--bind-address={}", args.address),
            format!("--advertise-address={}", args.address),
            format!("--secure-port={}", args.ports.apiserver),
            format!("--tls-cert-file={}", file("apiserver.crt")),
            format!("--tls-private-key-file={}", file("apiserver.key")),
            format!("--client-ca-file={}", file("ca.crt")),
            format!("--service-cluster-ip-range={}", args.network.service_cidr),
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local".into(),
            format!("--service-account-key-file={}", args.pki.sa_pub().display()),
            format!(
                "--service-account-signing-key-file={}",
                args.pki.sa_key().display()
            ),
            "--authorization-mode=Node,RBAC".into(),
            "--enable-admission-plugins=NodeRestriction".into(),
            "--allow-privileged=true".into(),
            format!(
                "--kubelet-client-certificate={}",
                args.files.kubelet_client.cert.display()
            ),
            format!(
                "--kubelet-client-key={}",
                args.files.kubelet_client.key.display()
            ),
            "--kubelet-preferred-address-types=InternalIP".into(),
            "--profiling=false".into(),
            format!("--audit-policy-file={}", policy.display()),
            format!("--audit-log-path={}", audit_log(args.dir).display()),
            "--audit-log-maxsize=200".into(),
            "--event-ttl=1h".into(),
            // kwok benchmarks create tens of thousands of pods.
            "--max-requests-inflight=800".into(),
            "--max-mutating-requests-inflight=400".into(),
            "--v=1".into(),
        ],
        env: vec![],
        log: args.dir.join("logs/kube-apiserver.log"),
        namespaces: None,
        node: None,
    })
}

pub fn start_controller_manager(
    dir: &Path,
    components: &Components,
    pki: &Pki,
    files: &ControlPlaneFiles,
    ports: Ports,
    network: &ClusterNetwork,
) -> Result<Started> {
    let kubeconfig = files.controller_manager_kubeconfig.display().to_string();
    let ca_key = pki.ca().with_extension("key");
    process::spawn(Spawn {
        name: "kube-controller-manager".into(),
        program: &components.kube_controller_manager.path,
        args: vec![
            format!("--kubeconfig={kubeconfig}"),
            format!("--authentication-kubeconfig={kubeconfig}"),
            format!("--authorization-kubeconfig={kubeconfig}"),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={}", ports.controller_manager),
            "--allocate-node-cidrs=true".into(),
            format!("--cluster-cidr={}", network.pod_cidr),
            format!("--node-cidr-mask-size={}", network.node_cidr_mask),
            format!("--service-cluster-ip-range={}", network.service_cidr),
            format!(
                "--service-account-private-key-file={}",
                pki.sa_key().display()
            ),
            format!("--root-ca-file={}", pki.ca().display()),
            format!("--cluster-signing-cert-file={}", pki.ca().display()),
            format!("--cluster-signing-key-file={}", ca_key.display()),
            "--use-service-account-credentials=true".into(),
            "--controllers=*,bootstrapsigner,tokencleaner".into(),
            // Large kwok clusters: the default 20 requests/s would take minutes per thousand pods.
            "--kube-api-qps=200".into(),
            "--kube-api-burst=400".into(),
            // Nothing restarts a lab component that exits; with the default 10 s renew deadline
            // it would exit (leadership lost) while `restart_apiserver` has the API down.
            "--leader-elect-lease-duration=120s".into(),
            "--leader-elect-renew-deadline=100s".into(),
            "--leader-elect-retry-period=2s".into(),
            // kwok renews a thousand nodes' heartbeats late while the machine is busy creating
            // their pods; the default 50 s grace marks them NotReady, and their pods stay
            // NotReady after (kwok does not set Ready again).
            "--node-monitor-grace-period=300s".into(),
            "--v=1".into(),
        ],
        env: vec![],
        log: dir.join("logs/kube-controller-manager.log"),
        namespaces: None,
        node: None,
    })
}

pub fn start_scheduler(
    dir: &Path,
    components: &Components,
    files: &ControlPlaneFiles,
    ports: Ports,
) -> Result<Started> {
    let kubeconfig = files.scheduler_kubeconfig.display().to_string();
    // Its client rate is set only in the configuration file; the default (50 requests/s) takes
    // minutes to bind a kwok benchmark's thirty thousand pods. Leader election as for the
    // controller-manager: it must outlive an API server restart.
    let config = dir.join("scheduler.yaml");
    std::fs::write(
        &config,
        format!(
            "apiVersion: kubescheduler.config.k8s.io/v1\nkind: KubeSchedulerConfiguration\n\
             clientConnection:\n  kubeconfig: {kubeconfig}\n  qps: 200\n  burst: 400\n\
             leaderElection:\n  leaderElect: true\n  leaseDuration: 120s\n  renewDeadline: 100s\n  \
             retryPeriod: 2s\n"
        ),
    )
    .map_err(LabError::io(format!("write {}", config.display())))?;
    process::spawn(Spawn {
        name: "kube-scheduler".into(),
        program: &components.kube_scheduler.path,
        args: vec![
            format!("--config={}", config.display()),
            format!("--authentication-kubeconfig={kubeconfig}"),
            format!("--authorization-kubeconfig={kubeconfig}"),
            "--bind-address=127.0.0.1".into(),
            format!("--secure-port={}", ports.scheduler),
            "--v=1".into(),
        ],
        env: vec![],
        log: dir.join("logs/kube-scheduler.log"),
        namespaces: None,
        node: None,
    })
}

/// Waits for etcd's /health over plain HTTP on loopback.
pub fn wait_etcd(process: &ProcessRecord, port: u16) -> Result<()> {
    use std::io::{Read, Write};
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let _ = stream.write_all(b"GET /health HTTP/1.0\r\n\r\n");
            let mut response = String::new();
            let _ = stream.read_to_string(&mut response);
            if response.contains("\"health\":\"true\"") {
                return Ok(());
            }
        }
        if !process::alive(process) {
            return Err(process::failed(process, "exited"));
        }
        if Instant::now() > deadline {
            return Err(process::failed(
                process,
                "/health did not report healthy within 60 s",
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
