//! Bringing a lab up: control plane, then real nodes, then add-ons, then kwok nodes; it returns
//! when every node is Ready and Flannel, kube-proxy and CoreDNS run.

use crate::cluster::Cluster;
use crate::cni::{Cni, InstallFiles, KubeProxy, LabNetwork};
use crate::components::{self, CniComponents, Components};
use crate::control_plane::Started;
use crate::control_plane::{self, ApiServerArgs, ClusterNetwork, ControlPlaneFiles, Ports};
use crate::error::{LabError, Result};
use crate::manifests::{self, Images, Settings};
use crate::pki::{Pki, kubeconfig};
use crate::process;
use crate::state::{NodeRecord, State};
use crate::{cni, down, image, install, kwok, network, node};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// What to bring up.
#[derive(Debug, Clone)]
pub struct Options {
    /// The lab's directory: state, certificates, logs, node roots. Created if missing; must
    /// not hold another lab.
    pub dir: PathBuf,
    /// Real nodes (network namespace + containerd + kubelet). The first is the control-plane
    /// node; the rest are workers.
    pub real_nodes: usize,
    /// Simulated nodes (kwok).
    pub kwok_nodes: usize,
    /// Pods to run on the simulated nodes, on average per node.
    pub kwok_pods_per_node: usize,
    /// Whether the lab outlives the process that brought it up (`scripts/lab up`); a test's
    /// lab is swept by the next lab once its test process is gone.
    pub detached: bool,
    /// Where built components and images are cached.
    pub cache: PathBuf,
    /// The CNI the lab starts on.
    pub cni: Cni,
    /// kube-proxy, or none (Cilium's replacement, refused: see [`KubeProxy`]).
    pub kube_proxy: KubeProxy,
    /// Also build and import Cilium's and Calico's images and write their install files
    /// (`plan_flags`), so that a plan can migrate the lab to any CNI. Always done for a lab
    /// that starts on Cilium or Calico.
    pub every_cni: bool,
}

impl Options {
    pub fn new(dir: impl Into<PathBuf>) -> Options {
        Options {
            dir: dir.into(),
            real_nodes: 3,
            kwok_nodes: 0,
            kwok_pods_per_node: 0,
            detached: false,
            cache: components::default_cache(),
            cni: Cni::Flannel,
            kube_proxy: KubeProxy::Iptables,
            every_cni: false,
        }
    }
}

/// A running lab. Dropping it brings it down.
pub struct Lab {
    pub dir: PathBuf,
    pub state: State,
    pub components: Components,
    pub ports: Ports,
    pub network: ClusterNetwork,
    pub images: Images,
    pub kubeconfig: PathBuf,
    pub api_server: String,
    /// Cilium, Calico and helm, when the lab runs or may migrate to them.
    pub cni_components: Option<CniComponents>,
    /// What a plan installs from (`DIR/charts`, `DIR/manifests`, `DIR/values`).
    pub install_files: Option<InstallFiles>,
    pki: Option<Pki>,
    files: Option<ControlPlaneFiles>,
    children: Vec<std::process::Child>,
    stopped: bool,
}

/// DIR/bin: the lab's kubectl and helm, for the PATH of whoever plans and applies on it.
pub fn bin_dir(dir: &Path) -> PathBuf {
    dir.join("bin")
}

/// Progress messages for a person watching `scripts/lab up`.
pub type Progress<'a> = &'a mut (dyn FnMut(&str) + Send);

impl Lab {
    /// Brings a lab up and returns when it is ready. On failure everything made so far is
    /// removed again, and the error names the component with the end of its log.
    pub async fn up(options: Options, progress: Progress<'_>) -> Result<Lab> {
        if options.kube_proxy == KubeProxy::None {
            return Err(LabError::Other(KubeProxy::REFUSED.into()));
        }
        down::sweep_stale();
        std::fs::create_dir_all(options.dir.join("logs"))
            .map_err(LabError::io(format!("create {}", options.dir.display())))?;
        let dir = std::fs::canonicalize(&options.dir)
            .map_err(LabError::io(format!("resolve {}", options.dir.display())))?;
        if State::path(&dir).exists() {
            return Err(LabError::Other(format!(
                "{} already holds a lab: `scripts/lab down --dir {}` first",
                dir.display(),
                dir.display()
            )));
        }
        progress("building or reusing the pinned components");
        let components = components::ensure(&options.cache, &mut |m| progress(m))?;
        let cni_components = if options.every_cni || options.cni != Cni::Flannel {
            progress("building or reusing Cilium, Calico and helm");
            Some(components::ensure_cni(&options.cache, &mut |m| {
                progress(m)
            })?)
        } else {
            None
        };
        progress("building or reusing the images");
        let mut images = image::lab_images(&options.cache, &components, &mut |m| progress(m))?;
        if let Some(cni) = &cni_components {
            images.extend(image::cni::all(&options.cache, cni, &mut |m| progress(m))?);
        }
        if let Some(binary) = std::env::var_os("CNISWAP_BINARY") {
            // The cniswap image of the build under test (verify's probes, apply's node agent),
            // in the lab's directory: it changes with every build, so it is not cached.
            let images_dir = dir.join("images");
            std::fs::create_dir_all(&images_dir)
                .map_err(LabError::io(format!("create {}", images_dir.display())))?;
            images.push(image::cniswap(
                Path::new(&binary),
                &images_dir.join("cniswap.tar"),
            )?);
        }
        let index = network::claim_bridge()?;
        let state = State {
            index,
            owner_pid: std::process::id(),
            detached: options.detached,
            bridge: Some(network::bridge_name(index)),
            images: images.iter().map(|i| i.reference.clone()).collect(),
            cni: options.cni,
            install_files: cni_components.as_ref().map(|_| InstallFiles::under(&dir)),
            ..State::default()
        };
        state.save(&dir)?;
        down::register(index, &dir);
        let large = options.kwok_nodes + options.real_nodes > 250;
        let network = ClusterNetwork {
            pod_cidr: if large {
                crate::LARGE_POD_CIDR
            } else {
                crate::POD_CIDR
            }
            .into(),
            node_cidr_mask: 24,
            service_cidr: crate::SERVICE_CIDR.into(),
        };
        let ports = Ports::for_index(index);
        let address = network::gateway(index).to_string();
        let api_server = format!("https://{address}:{}", ports.apiserver);
        let kubeconfig = dir.join("kubeconfig");
        let mut lab = Lab {
            dir: dir.clone(),
            state,
            components,
            ports,
            network,
            images: lab_image_refs(&images),
            kubeconfig,
            api_server,
            install_files: cni_components.as_ref().map(|_| InstallFiles::under(&dir)),
            cni_components,
            pki: None,
            files: None,
            children: Vec::new(),
            stopped: false,
        };
        match lab.bring_up(&options, &images, progress).await {
            Ok(()) => Ok(lab),
            Err(error) => {
                progress("bringing the lab down after the failure");
                lab.stop();
                Err(error)
            }
        }
    }

    async fn bring_up(
        &mut self,
        options: &Options,
        images: &[image::Image],
        progress: Progress<'_>,
    ) -> Result<()> {
        let started = Instant::now();
        let dir = self.dir.clone();
        let address = network::gateway(self.state.index).to_string();
        let pki = Pki::create(&dir.join("pki"))?;
        let mut names = vec![
            address.clone(),
            crate::API_SERVICE_IP.to_string(),
            "localhost".into(),
            "kubernetes".into(),
            "kubernetes.default".into(),
            "kubernetes.default.svc".into(),
            "kubernetes.default.svc.cluster.local".into(),
        ];
        names.dedup();
        let files = control_plane::write_files(&dir, &pki, &self.api_server, &names)?;
        std::fs::copy(&files.admin_kubeconfig, &self.kubeconfig)
            .map_err(LabError::io("write the lab's kubeconfig"))?;
        self.state.kubeconfig = Some(self.kubeconfig.clone());
        self.save()?;

        progress("starting etcd");
        let etcd = control_plane::start_etcd(&dir, &self.components, self.ports)?;
        let etcd_record = self.track(etcd)?;
        control_plane::wait_etcd(&etcd_record, self.ports.etcd_client)?;

        progress("starting kube-apiserver");
        self.start_apiserver(&pki, &files, &address)?;
        let cluster = self.wait_apiserver().await?;
        self.pki = Some(pki);
        self.files = Some(files);
        let (Some(pki), Some(files)) = (&self.pki, &self.files) else {
            return Err(LabError::Other("the lab's certificates are missing".into()));
        };
        let (pki, files) = (pki.clone(), files.clone());

        progress("starting kube-controller-manager and kube-scheduler");
        let cm = control_plane::start_controller_manager(
            &dir,
            &self.components,
            &pki,
            &files,
            self.ports,
            &self.network,
        )?;
        let cm = self.track(cm)?;
        let scheduler = control_plane::start_scheduler(&dir, &self.components, &files, self.ports)?;
        let scheduler = self.track(scheduler)?;
        for (record, lease) in [
            (&cm, "kube-controller-manager"),
            (&scheduler, "kube-scheduler"),
        ] {
            wait_for(record, Duration::from_secs(90), "its leader lease", || {
                let cluster = cluster.clone();
                async move { cluster.lease_held("kube-system", lease).await }
            })
            .await?;
        }

        let settings = self.settings();
        cluster.apply(&manifests::kubeadm_config(&settings)).await?;
        self.write_install_files()?;

        let mut node_names = Vec::new();
        for n in 0..options.real_nodes {
            let (name, role) = if n == 0 {
                ("lab-control-plane".to_string(), "control-plane")
            } else {
                (format!("lab-worker-{n}"), "worker")
            };
            progress(&format!("starting node {name}"));
            self.add_node(n, &name, role, &pki, images)?;
            node_names.push(name);
        }

        let cni = options.cni;
        if !node_names.is_empty() {
            progress(&format!("installing {cni}, kube-proxy and CoreDNS"));
            let settings = self.settings();
            let mut objects = manifests::kube_proxy(&settings);
            if cni == Cni::Flannel {
                objects.extend(manifests::flannel(&settings));
            }
            objects.extend(manifests::coredns(&settings, node_names.len().min(2)));
            cluster.apply(&objects).await?;
            self.install_cni(cni)?;
            cluster
                .wait_nodes_ready(&node_names, Duration::from_secs(240))
                .await
                .map_err(|e| self.explain_nodes(e))?;
            cluster
                .apply(&[json!({"apiVersion": "v1", "kind": "Node",
                    "metadata": {"name": node_names[0],
                                 "labels": {"node-role.kubernetes.io/control-plane": ""}}})])
                .await?;
        }

        if options.kwok_nodes > 0 {
            progress(&format!("starting kwok with {} nodes", options.kwok_nodes));
            self.add_kwok(&cluster, options).await?;
        }

        if !node_names.is_empty() {
            progress(&format!("waiting for {cni}, kube-proxy and CoreDNS"));
            let timeout = Duration::from_secs(300);
            // Three Cilium agents compile their datapath at once on a busy machine.
            let cni_timeout = Duration::from_secs(900);
            for (daemonset, deployment) in cni_workloads(cni) {
                cluster
                    .wait_daemonset("kube-system", daemonset, cni_timeout)
                    .await
                    .map_err(|e| self.explain_nodes(e))?;
                if let Some(deployment) = deployment {
                    cluster
                        .wait_deployment("kube-system", deployment, cni_timeout)
                        .await
                        .map_err(|e| self.explain_nodes(e))?;
                }
            }
            cluster
                .wait_daemonset("kube-system", "kube-proxy", timeout)
                .await
                .map_err(|e| self.explain_nodes(e))?;
            cluster
                .wait_deployment("kube-system", "coredns", timeout)
                .await
                .map_err(|e| self.explain_nodes(e))?;
        }
        progress(&format!(
            "lab ready in {:.1} s: {} real and {} simulated nodes; KUBECONFIG={}",
            started.elapsed().as_secs_f64(),
            options.real_nodes,
            options.kwok_nodes,
            self.kubeconfig.display()
        ));
        Ok(())
    }

    /// Writes the charts, values and manifests a plan installs from (and the lab, for its
    /// own CNI) under the lab's directory, and the tools a plan's steps run into DIR/bin.
    fn write_install_files(&self) -> Result<()> {
        let (Some(files), Some(cni)) = (&self.install_files, &self.cni_components) else {
            return Ok(());
        };
        let bin = bin_dir(&self.dir);
        std::fs::create_dir_all(&bin).map_err(LabError::io(format!("create {}", bin.display())))?;
        for (name, target) in [
            ("kubectl", &self.components.kubectl.path),
            ("helm", &cni.helm.path),
        ] {
            let link = bin.join(name);
            let _ = std::fs::remove_file(&link);
            std::os::unix::fs::symlink(target, &link)
                .map_err(LabError::io(format!("link {}", link.display())))?;
        }
        let settings = self.settings();
        let port = self.ports.apiserver;
        let host = network::gateway(self.state.index).to_string();
        cni::write_install_files(
            files,
            &cni.cilium_module,
            &cni.calico_module,
            &LabNetwork {
                api_host: &host,
                api_port: port,
                pod_cidr: &self.network.pod_cidr,
            },
            &manifests::flannel(&settings),
        )
    }

    /// Installs Cilium (helm) or Calico (kubectl); Flannel goes in with the other add-ons.
    fn install_cni(&self, cni: Cni) -> Result<()> {
        let (Some(files), Some(built)) = (&self.install_files, &self.cni_components) else {
            return match cni {
                Cni::Flannel => Ok(()),
                other => Err(LabError::Other(format!(
                    "{other} needs the CNI components, which were not built"
                ))),
            };
        };
        match cni {
            Cni::Flannel => Ok(()),
            Cni::Calico => install::calico(&self.components.kubectl.path, &self.kubeconfig, files),
            Cni::Cilium => install::cilium(&built.helm.path, &self.kubeconfig, &self.dir, files),
        }
    }

    /// What the add-on manifests are rendered with.
    fn settings(&self) -> Settings<'_> {
        Settings {
            images: &self.images,
            kubernetes_version: self.components.kube_apiserver.version,
            service_cidr: &self.network.service_cidr,
            pod_cidr: &self.network.pod_cidr,
            api_server: &self.api_server,
            dns_ip: crate::DNS_SERVICE_IP,
        }
    }

    fn start_apiserver(
        &mut self,
        pki: &Pki,
        files: &ControlPlaneFiles,
        address: &str,
    ) -> Result<()> {
        let started = control_plane::start_apiserver(
            &self.components,
            ApiServerArgs {
                dir: &self.dir,
                pki,
                files,
                ports: self.ports,
                address,
                network: &self.network,
            },
        )?;
        self.track(started)?;
        Ok(())
    }

    async fn wait_apiserver(&self) -> Result<Cluster> {
        let record = self
            .process("kube-apiserver")
            .ok_or_else(|| LabError::Other("kube-apiserver is not tracked".into()))?
            .clone();
        let cluster = Cluster::connect(&self.kubeconfig).await?;
        wait_for(&record, Duration::from_secs(120), "/readyz", || {
            let cluster = cluster.clone();
            async move { cluster.ready().await }
        })
        .await?;
        Ok(cluster)
    }

    /// Stops and starts kube-apiserver with the same flags and waits until it is ready again
    /// (for tests of clients that must survive an API server restart).
    pub async fn restart_apiserver(&mut self) -> Result<()> {
        let record = self
            .process("kube-apiserver")
            .ok_or_else(|| LabError::Other("kube-apiserver is not tracked".into()))?
            .clone();
        process::stop(&record, Duration::from_secs(10));
        self.state.processes.retain(|p| p != &record);
        let (Some(pki), Some(files)) = (self.pki.clone(), self.files.clone()) else {
            return Err(LabError::Other("the lab's certificates are missing".into()));
        };
        let address = network::gateway(self.state.index).to_string();
        self.start_apiserver(&pki, &files, &address)?;
        self.wait_apiserver().await?;
        Ok(())
    }

    fn add_node(
        &mut self,
        n: usize,
        name: &str,
        role: &str,
        pki: &Pki,
        images: &[image::Image],
    ) -> Result<()> {
        let index = self.state.index;
        let netns = format!("cnilab{index}-{name}");
        let uplink = format!("cl{index}n{n}");
        let dir = node::node_dir(&self.dir, name);
        std::fs::create_dir_all(&dir).map_err(LabError::io(format!("create {}", dir.display())))?;
        let record = NodeRecord {
            name: name.to_string(),
            netns: netns.clone(),
            mount_ns: dir.join("mnt.ns"),
            ip: network::node_ip(index, n).to_string(),
            role: role.to_string(),
            uplink: uplink.clone(),
            dir: dir.clone(),
            containerd_socket: PathBuf::from(node::CONTAINERD_SOCKET),
            cgroup_root: format!("/cniswap-lab{index}-{name}"),
        };
        // Written down before each piece is made, so that down removes a half-made node too.
        self.state.netns.push(netns.clone());
        self.state.host_links.push(uplink.clone());
        self.state.nodes.push(record.clone());
        self.save()?;
        network::add_node(index, n, &netns, &uplink)?;
        for mount_point in node::mount_points() {
            if !Path::new(mount_point).exists() {
                std::fs::create_dir_all(mount_point)
                    .map_err(LabError::io(format!("create {mount_point}")))?;
                self.state.created_dirs.push(PathBuf::from(mount_point));
            }
        }
        self.state.mount_ns.push(record.mount_ns.clone());
        self.state.cgroups.push(record.cgroup_root.clone());
        self.save()?;
        node::create_mount_namespace(&record)?;
        node::create_cgroup_root(&record)?;

        let client = pki.client(
            &format!("node-{name}"),
            &format!("system:node:{name}"),
            &["system:nodes"],
        )?;
        std::fs::write(
            dir.join("kubelet.kubeconfig"),
            kubeconfig(&self.api_server, &pki.ca(), &client, name),
        )
        .map_err(LabError::io("write the kubelet's kubeconfig"))?;
        std::fs::write(
            dir.join("kubelet.json"),
            node::kubelet_config(&record, &pki.ca(), role == "control-plane"),
        )
        .map_err(LabError::io("write the kubelet's configuration"))?;
        std::fs::write(
            node::containerd_config_path(&record),
            node::containerd_config(&self.images.pause),
        )
        .map_err(LabError::io("write containerd's configuration"))?;

        let containerd = node::start_containerd(&record, &host_tool("containerd")?)?;
        let containerd = self.track(containerd)?;
        node::wait_containerd(&record, &containerd)?;
        for image in images {
            node::import_image(&record, &image.archive)?;
        }
        let kubelet = node::start_kubelet(&record, &self.components.kubelet.path)?;
        self.track(kubelet)?;
        Ok(())
    }

    async fn add_kwok(&mut self, cluster: &Cluster, options: &Options) -> Result<()> {
        let config = kwok::write_config(&self.dir, self.components.kwok.version)?;
        let started = kwok::start(
            &self.dir,
            &self.components,
            &self.kubeconfig,
            &config,
            self.ports.kwok,
        )?;
        let record = self.track(started)?;
        let version = self.components.kubelet.version;
        let names: Vec<String> = (0..options.kwok_nodes)
            .map(|i| format!("kwok-node-{i:04}"))
            .collect();
        let nodes: Vec<_> = names
            .iter()
            .enumerate()
            .map(|(i, name)| kwok::node(name, i, version))
            .collect();
        cluster.apply_concurrently(&nodes, 32).await?;
        guarded(
            &record,
            cluster.wait_nodes_ready(&names, Duration::from_secs(600)),
        )
        .await?;
        if options.kwok_pods_per_node > 0 {
            // Thirty Deployments spread over the simulated nodes, like a cluster's workloads.
            let deployments = 30;
            let total = options.kwok_nodes * options.kwok_pods_per_node;
            let objects: Vec<_> = (0..deployments)
                .map(|d| {
                    let replicas = total / deployments + usize::from(d < total % deployments);
                    kwok::workload(&format!("app-{d:02}"), replicas, &self.images.busybox)
                })
                .collect();
            cluster.apply(&objects).await?;
            for d in 0..deployments {
                guarded(
                    &record,
                    cluster.wait_deployment(
                        "default",
                        &format!("app-{d:02}"),
                        Duration::from_secs(1800),
                    ),
                )
                .await?;
            }
        }
        Ok(())
    }

    /// Adds the end of each kubelet's log to an error about nodes or their pods.
    fn explain_nodes(&self, error: LabError) -> LabError {
        let mut text = error.to_string();
        for record in &self.state.processes {
            if record.name.starts_with("kubelet@") || record.name.starts_with("containerd@") {
                let state = if process::alive(record) {
                    "running"
                } else {
                    "exited"
                };
                text.push_str(&format!(
                    "\n--- {} ({state}), last lines of {} ---\n{}",
                    record.name,
                    record.log.display(),
                    process::tail(&record.log, 8)
                ));
            }
        }
        LabError::Other(text)
    }

    fn track(&mut self, (record, child): Started) -> Result<crate::state::ProcessRecord> {
        self.state.processes.push(record.clone());
        self.children.push(child);
        self.save()?;
        Ok(record)
    }

    fn save(&self) -> Result<()> {
        self.state.save(&self.dir)
    }

    pub fn process(&self, name: &str) -> Option<&crate::state::ProcessRecord> {
        self.state.processes.iter().find(|p| p.name == name)
    }

    pub fn node(&self, name: &str) -> Option<&NodeRecord> {
        self.state.nodes.iter().find(|n| n.name == name)
    }

    /// Runs a shell script on a real node (in its network and mount namespaces).
    pub fn on_node(&self, name: &str, script: &str) -> Result<String> {
        let node = self
            .node(name)
            .ok_or_else(|| LabError::Other(format!("no real node named {name}")))?;
        process::run_in_node(&node.netns, &node.mount_ns, script)
    }

    /// A kubeconfig for `user` in `groups` (client certificate signed by the lab's CA), for
    /// tests of what a less privileged identity may do. RBAC for it is the test's to create.
    pub fn kubeconfig_for(&self, user: &str, groups: &[&str]) -> Result<PathBuf> {
        let pki = self
            .pki
            .as_ref()
            .ok_or_else(|| LabError::Other("the lab has no certificate authority".into()))?;
        let dir = self.dir.join("users");
        std::fs::create_dir_all(&dir).map_err(LabError::io(format!("create {}", dir.display())))?;
        let file = user.replace([':', '/'], "-");
        let client = pki.client(&file, user, groups)?;
        let path = dir.join(format!("{file}.kubeconfig"));
        std::fs::write(
            &path,
            kubeconfig(&self.api_server, &pki.ca(), &client, user),
        )
        .map_err(LabError::io(format!("write {}", path.display())))?;
        Ok(path)
    }

    /// The API server's audit log (every request at Metadata level, one JSON event per line).
    pub fn audit_log(&self) -> PathBuf {
        control_plane::audit_log(&self.dir)
    }

    /// Imports an OCI image archive into every real node's containerd (e.g. an image of the
    /// cniswap build under test).
    pub fn import_image(&self, archive: &Path) -> Result<()> {
        for record in &self.state.nodes {
            node::import_image(record, archive)?;
        }
        Ok(())
    }

    pub async fn cluster(&self) -> Result<Cluster> {
        Cluster::connect(&self.kubeconfig).await
    }

    /// Leaves the lab running after this value is dropped (`scripts/lab up`).
    pub fn detach(mut self) {
        self.stopped = true;
    }

    /// Brings the lab down; reports anything that could not be removed.
    pub fn down(mut self) -> Result<()> {
        self.stop_checked()
    }

    fn stop(&mut self) {
        let _ = self.stop_checked();
    }

    fn stop_checked(&mut self) -> Result<()> {
        if self.stopped {
            return Ok(());
        }
        self.stopped = true;
        let result = down::down(&self.dir);
        for child in &mut self.children {
            let _ = child.try_wait();
        }
        result.map(|_| ())
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `wait`, failing at once (with the component's log) if `record`'s process exits first.
async fn guarded<F>(record: &crate::state::ProcessRecord, wait: F) -> Result<()>
where
    F: std::future::Future<Output = Result<()>>,
{
    let watch = async {
        loop {
            if !process::alive(record) {
                return process::failed(record, "exited");
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    tokio::select! {
        result = wait => result,
        error = watch => Err(error),
    }
}

/// Polls `check` until it is true, failing early (with the component's log) if the process
/// exits.
async fn wait_for<F, Fut>(
    record: &crate::state::ProcessRecord,
    timeout: Duration,
    what: &str,
    mut check: F,
) -> Result<()>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return Ok(());
        }
        if !process::alive(record) {
            return Err(process::failed(record, "exited"));
        }
        if start.elapsed() > timeout {
            return Err(process::failed(
                record,
                format!("{what} not ready within {} s", timeout.as_secs()),
            ));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The DaemonSet (and Deployment) that must be ready before a lab on `cni` is.
fn cni_workloads(cni: Cni) -> &'static [(&'static str, Option<&'static str>)] {
    match cni {
        Cni::Flannel => &[("kube-flannel", None)],
        Cni::Calico => &[("calico-node", Some("calico-kube-controllers"))],
        Cni::Cilium => &[("cilium", Some("cilium-operator"))],
    }
}

/// A program from the host's packages (containerd, ctr, iptables).
pub fn host_tool(name: &str) -> Result<PathBuf> {
    ["/usr/bin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin", "/bin", "/sbin"]
        .iter()
        .map(|dir| Path::new(dir).join(name))
        .find(|path| path.is_file())
        .ok_or_else(|| {
            LabError::Other(format!(
                "{name} is not installed: run ./scripts/test.sh once as root, or `apt-get install {name}`"
            ))
        })
}

fn lab_image_refs(images: &[image::Image]) -> Images {
    let find = |name: &str| {
        images
            .iter()
            .find(|i| i.name == name)
            .map(|i| i.reference.clone())
            .unwrap_or_default()
    };
    Images {
        pause: find("pause"),
        busybox: find("busybox"),
        flannel: find("flannel"),
        kube_proxy: find("kube-proxy"),
        coredns: find("coredns"),
        cniswap: images
            .iter()
            .find(|i| i.name == "cniswap")
            .map(|i| i.reference.clone()),
    }
}
