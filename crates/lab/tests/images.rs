//! Every lab image imports into a real containerd (Debian's 1.6, with its own root, state and
//! socket in a temporary directory) and runs with `ctr run`. Needs root.
//!
//! iptables runs inside a throwaway network namespace (never the host's), and everything the
//! test creates (containers, tasks, containerd, mounts, the namespace, directories) is removed
//! by guards that also run when an assertion fails.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use cniswap_lab::components::{self, Components};
use cniswap_lab::image::{self, Image, StaticBuild};

fn require_root() {
    let uid = fs::read_to_string("/proc/self/status").ok().and_then(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .map(|l| l.split_whitespace().nth(1).unwrap_or("").to_string())
    });
    assert_eq!(
        uid.as_deref(),
        Some("0"),
        "the image tests start containerd and need root: run scripts/test.sh as root"
    );
}

fn text(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

fn run(cmd: &mut Command) -> Output {
    let shown = format!("{cmd:?}");
    cmd.stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{shown}: {e}"))
}

fn must(cmd: &mut Command) -> String {
    let shown = format!("{cmd:?}");
    let out = run(cmd);
    assert!(
        out.status.success(),
        "{shown} exited with {}:\n{}",
        out.status,
        text(&out)
    );
    text(&out)
}

/// A network namespace that is deleted when dropped.
struct Netns {
    name: String,
}

impl Netns {
    fn new(name: String) -> Self {
        must(Command::new("ip").args(["netns", "add", &name]));
        Self { name }
    }
    fn path(&self) -> String {
        format!("/run/netns/{}", self.name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "delete", &self.name])
            .output();
    }
}

/// A containerd of our own. Dropping it removes its containers, stops it, unmounts whatever is
/// left under its directory and deletes the directory.
struct Containerd {
    dir: PathBuf,
    socket: PathBuf,
    child: Option<Child>,
}

impl Containerd {
    fn start(label: &str) -> Self {
        let dir =
            std::env::temp_dir().join(format!("cniswap-images-{label}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("cni/bin")).expect("containerd dir");
        fs::create_dir_all(dir.join("cni/net.d")).expect("containerd dir");
        let socket = dir.join("containerd.sock");
        let d = dir.display();
        // Settings from ../shared/research/lab.md: without restrict_oom_score_adj runc fails
        // (no CAP_SYS_RESOURCE here), AppArmor is not available, cgroupfs driver.
        let config = format!(
            r#"version = 2
root = "{d}/root"
state = "{d}/state"
disabled_plugins = ["io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.aufs"]

[grpc]
  address = "{d}/containerd.sock"

[ttrpc]
  address = "{d}/containerd.sock.ttrpc"

[debug]
  address = ""

[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{d}/opt"

[plugins."io.containerd.grpc.v1.cri"]
  restrict_oom_score_adj = true
  disable_apparmor = true
  systemd_cgroup = false
  sandbox_image = "{REGISTRY}/pause:{PAUSE_TAG}"
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "{d}/cni/bin"
    conf_dir = "{d}/cni/net.d"
"#,
            REGISTRY = image::REGISTRY,
            PAUSE_TAG = env!("CARGO_PKG_VERSION"),
        );
        fs::write(dir.join("config.toml"), config).expect("config");
        let log = fs::File::create(dir.join("containerd.log")).expect("log");
        let child = Command::new("containerd")
            .arg("--config")
            .arg(dir.join("config.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("containerd (apt-get install containerd; scripts/test.sh does)");
        let mut me = Self {
            dir,
            socket,
            child: Some(child),
        };
        let started = Instant::now();
        loop {
            if me.socket.exists() && run(&mut me.ctr(&["version"])).status.success() {
                break;
            }
            if let Some(status) = me.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("containerd exited with {status}:\n{}", me.log_tail());
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "containerd not ready in 30 s:\n{}",
                me.log_tail()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        me
    }

    fn log_tail(&self) -> String {
        let log = fs::read_to_string(self.dir.join("containerd.log")).unwrap_or_default();
        log.lines()
            .rev()
            .take(20)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn ctr(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(&self.socket)
            .args(["-n", "k8s.io"])
            .args(args);
        cmd
    }

    fn import(&self, image: &Image) {
        must(&mut self.ctr(&["images", "import", &image.archive.to_string_lossy()]));
        let listed = must(&mut self.ctr(&["images", "ls"]));
        let line = listed
            .lines()
            .find(|l| l.split_whitespace().next() == Some(image.reference.as_str()))
            .unwrap_or_else(|| panic!("{} not listed after import:\n{listed}", image.reference));
        assert!(line.contains(&image.manifest_digest), "{line}");
        assert!(line.contains("linux/amd64"), "{line}");
    }

    /// `ctr run --rm` with the given options; returns the output (the caller checks status).
    fn run_in(&self, id: &str, opts: &[&str], image: &Image, args: &[&str]) -> Output {
        let mut cmd = self.ctr(&["run", "--rm", "--cgroup", &self.cgroup(id)]);
        cmd.args(opts).arg(&image.reference).arg(id).args(args);
        run(&mut cmd)
    }

    fn run_ok(&self, id: &str, opts: &[&str], image: &Image, args: &[&str]) -> String {
        let out = self.run_in(id, opts, image, args);
        assert!(
            out.status.success(),
            "{} {args:?} exited with {}:\n{}\ncontainerd:\n{}",
            image.reference,
            out.status,
            text(&out),
            self.log_tail()
        );
        text(&out)
    }

    /// A cgroup path under this test's own parent (not containerd's shared `/k8s.io`), so
    /// teardown can remove everything it made.
    fn cgroup(&self, id: &str) -> String {
        format!("/{}/{id}", self.cgroup_parent())
    }

    fn cgroup_parent(&self) -> String {
        self.dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    fn mounts_under_dir(&self) -> Vec<String> {
        let prefix = self.dir.to_string_lossy().into_owned();
        let mut mounts: Vec<String> = fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_whitespace().nth(4).map(str::to_string))
            .filter(|m| m.starts_with(&prefix))
            .collect();
        mounts.sort_by_key(|m| std::cmp::Reverse(m.len()));
        mounts
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        if let Ok(out) = self.ctr(&["tasks", "ls", "-q"]).output() {
            for id in String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.is_empty())
            {
                let _ = self.ctr(&["tasks", "kill", "-s", "SIGKILL", id]).output();
                let _ = self.ctr(&["tasks", "delete", "-f", id]).output();
            }
        }
        if let Ok(out) = self.ctr(&["containers", "ls", "-q"]).output() {
            for id in String::from_utf8_lossy(&out.stdout)
                .lines()
                .filter(|l| !l.is_empty())
            {
                let _ = self.ctr(&["containers", "delete", id]).output();
            }
        }
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .output();
            let started = Instant::now();
            while child.try_wait().ok().flatten().is_none() {
                if started.elapsed() > Duration::from_secs(10) {
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        for mount in self.mounts_under_dir() {
            let _ = Command::new("umount").arg("-l").arg(&mount).output();
        }
        let _ = fs::remove_dir_all(&self.dir);
        // runc removes each container's cgroup; the parent we named is ours to remove.
        if let Ok(hierarchies) = fs::read_dir("/sys/fs/cgroup") {
            for hierarchy in hierarchies.flatten() {
                let parent = hierarchy.path().join(self.cgroup_parent());
                if let Ok(children) = fs::read_dir(&parent) {
                    for child in children.flatten().filter(|c| c.path().is_dir()) {
                        let _ = fs::remove_dir(child.path());
                    }
                    let _ = fs::remove_dir(&parent);
                }
            }
        }
    }
}

fn components() -> Components {
    components::ensure(&components::default_cache(), &mut |l| {
        eprintln!("[components] {l}")
    })
    .unwrap_or_else(|e| panic!("{e}"))
}

/// The Entrypoint in an archive's image config (index -> manifest -> config).
fn entrypoint(entries: &[(PathBuf, Vec<u8>)]) -> Vec<String> {
    let get = |name: &str| -> serde_json::Value {
        let data = &entries
            .iter()
            .find(|(n, _)| n == Path::new(name))
            .unwrap_or_else(|| panic!("{name} missing"))
            .1;
        serde_json::from_slice(data).expect("json")
    };
    let blob = |digest: &serde_json::Value| {
        format!(
            "blobs/sha256/{}",
            digest
                .as_str()
                .expect("digest")
                .trim_start_matches("sha256:")
        )
    };
    let manifest = get(&blob(&get("index.json")["manifests"][0]["digest"]));
    let config = get(&blob(&manifest["config"]["digest"]));
    serde_json::from_value(config["config"]["Entrypoint"].clone()).expect("entrypoint")
}

fn report(image: &Image) {
    eprintln!(
        "[images] {} {} ({:.1} MiB)",
        image.reference,
        image.manifest_digest,
        image.size as f64 / 1048576.0
    );
}

/// Runs iptables commands in `netns` from `image`: adds a chain with the nft and the legacy
/// backend, and checks each backend's save shows it.
fn check_iptables(containerd: &Containerd, netns: &Netns, image: &Image, label: &str) {
    let ns = format!("network:{}", netns.path());
    let opts = ["--privileged", "--with-ns", &ns];
    let version = containerd.run_ok(
        &format!("{label}-ipt-version"),
        &opts,
        image,
        &["iptables", "--version"],
    );
    assert!(
        version.contains("nf_tables"),
        "plain iptables is the nft backend: {version}"
    );
    let legacy = containerd.run_ok(
        &format!("{label}-ipt-legacy-version"),
        &opts,
        image,
        &["iptables-legacy", "--version"],
    );
    assert!(legacy.contains("legacy"), "{legacy}");
    let chain = format!("CNISWAP-{}", label.to_uppercase());
    containerd.run_ok(
        &format!("{label}-ipt-add"),
        &opts,
        image,
        &["iptables", "-t", "nat", "-N", &chain],
    );
    let saved = containerd.run_ok(
        &format!("{label}-ipt-save"),
        &opts,
        image,
        &["iptables-save", "-t", "nat"],
    );
    assert!(
        saved.contains(&format!(":{chain} ")),
        "iptables-save in {}:\n{saved}",
        image.reference
    );
    // The host's iptables sees the same rules in that namespace: the image talks to the kernel.
    let host =
        must(Command::new("ip").args(["netns", "exec", &netns.name, "iptables-save", "-t", "nat"]));
    assert!(host.contains(&format!(":{chain} ")), "{host}");
    containerd.run_ok(
        &format!("{label}-ipt6-restore"),
        &opts,
        image,
        &["ip6tables-restore", "--version"],
    );
    containerd.run_ok(
        &format!("{label}-iptl-add"),
        &opts,
        image,
        &["iptables-legacy", "-t", "filter", "-N", &chain],
    );
    let saved = containerd.run_ok(
        &format!("{label}-iptl-save"),
        &opts,
        image,
        &["iptables-legacy-save", "-t", "filter"],
    );
    assert!(
        saved.contains(&format!(":{chain} ")),
        "iptables-legacy-save:\n{saved}"
    );
    // A match extension that is dlopened, not linked: the xtables directory came along.
    containerd.run_ok(
        &format!("{label}-ipt-ext"),
        &opts,
        image,
        &[
            "iptables",
            "-t",
            "nat",
            "-A",
            &chain,
            "-p",
            "udp",
            "-m",
            "comment",
            "--comment",
            "cniswap",
            "-j",
            "RETURN",
        ],
    );
}

#[test]
fn every_lab_image_imports_and_runs() {
    require_root();
    let cache = components::default_cache();
    let built = components();
    let images = image::lab_images(&cache, &built, &mut |l| eprintln!("[images] {l}"))
        .unwrap_or_else(|e| panic!("{e}"));
    for image in &images {
        report(image);
    }
    let by_name = |name: &str| {
        images
            .iter()
            .find(|i| i.name == name)
            .unwrap_or_else(|| panic!("no {name} image"))
    };
    // Built twice, the same inputs give the same archive.
    let again = image::lab_images(&cache, &built, &mut |_| {}).expect("cached");
    assert_eq!(again, images);

    let id = |what: &str| format!("cniswap-img-{}-{what}", std::process::id());
    let containerd = Containerd::start("all");
    let netns = Netns::new(format!("cniswap-img-{}", std::process::id()));
    for image in &images {
        containerd.import(image);
    }

    let busybox = by_name("busybox");
    assert_eq!(
        containerd
            .run_ok(&id("echo"), &[], busybox, &["echo", "hello from busybox"])
            .trim(),
        "hello from busybox"
    );
    let sh = containerd.run_ok(
        &id("sh"),
        &[],
        busybox,
        &["sh", "-c", "ls /bin/sh /tmp >/dev/null && echo ok"],
    );
    assert_eq!(sh.trim(), "ok");

    let coredns = by_name("coredns");
    let version = containerd.run_ok(&id("coredns"), &[], coredns, &["/coredns", "-version"]);
    assert!(
        version.starts_with(&format!(
            "CoreDNS-{}",
            components::COREDNS_VERSION.trim_start_matches('v')
        )),
        "{version}"
    );

    let flannel = by_name("flannel");
    let version = containerd.run_ok(
        &id("flanneld"),
        &[],
        flannel,
        &["/opt/bin/flanneld", "--version"],
    );
    assert_eq!(version.trim(), components::FLANNEL_VERSION);
    // The init container's job: copy the CNI plugin into a host directory.
    let host_bin = tempfile::tempdir().expect("tempdir");
    let mount = format!(
        "type=bind,src={},dst=/host/opt/cni/bin,options=rbind:rw",
        host_bin.path().display()
    );
    containerd.run_ok(
        &id("install-cni"),
        &["--mount", &mount],
        flannel,
        &["cp", "-f", "/flannel", "/host/opt/cni/bin/flannel"],
    );
    let copied = host_bin.path().join("flannel");
    assert_eq!(
        fs::read(&copied).expect("copied plugin"),
        fs::read(&built.flannel_cni.path).expect("plugin")
    );
    let about = must(Command::new(&copied).env_remove("CNI_COMMAND"));
    assert_eq!(
        about.trim(),
        format!("CNI flannel plugin {}", components::FLANNEL_CNI_VERSION)
    );
    check_iptables(&containerd, &netns, flannel, "flannel");

    let kube_proxy = by_name("kube-proxy");
    let version = containerd.run_ok(
        &id("kube-proxy"),
        &[],
        kube_proxy,
        &["/usr/local/bin/kube-proxy", "--version"],
    );
    assert_eq!(
        version.trim(),
        format!("Kubernetes {}", components::KUBERNETES_VERSION)
    );
    check_iptables(&containerd, &netns, kube_proxy, "kubeproxy");
    let ns = format!("network:{}", netns.path());
    let conntrack = containerd.run_ok(
        &id("conntrack"),
        &["--privileged", "--with-ns", &ns],
        kube_proxy,
        &["conntrack", "-L"],
    );
    assert!(
        conntrack.contains("flow entries have been shown"),
        "{conntrack}"
    );
    // ipset talks to the kernel even for --version, so it needs CAP_NET_ADMIN.
    let ipset = containerd.run_ok(
        &id("ipset"),
        &["--privileged", "--with-ns", &ns],
        kube_proxy,
        &["ipset", "--version"],
    );
    assert!(ipset.contains("ipset v"), "{ipset}");

    // pause: runs until SIGTERM, then exits 0 promptly.
    let pause = by_name("pause");
    let pause_id = id("pause");
    must(&mut containerd.ctr(&[
        "run",
        "-d",
        "--cgroup",
        &containerd.cgroup(&pause_id),
        &pause.reference,
        &pause_id,
    ]));
    let started = Instant::now();
    loop {
        let tasks = must(&mut containerd.ctr(&["tasks", "ls"]));
        if tasks
            .lines()
            .any(|l| l.starts_with(&pause_id) && l.contains("RUNNING"))
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "pause never RUNNING:\n{tasks}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    let tasks = must(&mut containerd.ctr(&["tasks", "ls"]));
    assert!(
        tasks
            .lines()
            .any(|l| l.starts_with(&pause_id) && l.contains("RUNNING")),
        "pause exited on its own:\n{tasks}"
    );
    must(&mut containerd.ctr(&["tasks", "kill", "-s", "SIGTERM", &pause_id]));
    let killed = Instant::now();
    loop {
        let tasks = must(&mut containerd.ctr(&["tasks", "ls"]));
        if tasks
            .lines()
            .any(|l| l.starts_with(&pause_id) && l.contains("STOPPED"))
        {
            break;
        }
        assert!(
            killed.elapsed() < Duration::from_secs(5),
            "pause ignored SIGTERM:\n{tasks}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    // `ctr tasks delete` exits with the task's exit status.
    must(&mut containerd.ctr(&["tasks", "delete", &pause_id]));
    must(&mut containerd.ctr(&["containers", "delete", &pause_id]));
    drop(netns);
    let dir = containerd.dir.clone();
    let cgroups = Path::new("/sys/fs/cgroup/memory").join(containerd.cgroup_parent());
    drop(containerd);
    assert!(!dir.exists(), "{} left behind", dir.display());
    assert!(!cgroups.exists(), "{} left behind", cgroups.display());
}

#[test]
fn cniswap_image_runs_the_static_build() {
    require_root();
    // The dev profile: the same static link as a release image, at a fraction of the build
    // time a fresh CI pays for it.
    let binary = image::build_static(&StaticBuild {
        package: "cniswap".into(),
        bin: "cniswap".into(),
        profile: "dev".into(),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let out = tempfile::tempdir().expect("tempdir");
    let archive = out.path().join("cniswap.tar");
    let image = image::cniswap(&binary, &archive).unwrap_or_else(|e| panic!("{e}"));
    report(&image);
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        image.reference,
        format!("{}/cniswap:{version}", image::REGISTRY)
    );
    let entries = image::read_archive(&archive).expect("archive");
    assert!(entries.iter().any(|(n, _)| n == Path::new("index.json")));

    let containerd = Containerd::start("cniswap");
    containerd.import(&image);
    let id = format!("cniswap-img-{}-cniswap", std::process::id());
    let printed = containerd.run_ok(&id, &[], &image, &["cniswap", "--version"]);
    assert_eq!(printed.trim(), format!("cniswap {version}"));
    // The image's own entrypoint is `cniswap`, found through the image's PATH.
    assert_eq!(entrypoint(&entries), ["cniswap"]);
    let usage = text(&containerd.run_in(&format!("{id}-usage"), &[], &image, &[]));
    assert!(usage.contains("Usage: cniswap"), "{usage}");
}

/// The pause binary, run directly as PID 1 of a new PID namespace: an orphan reparented to it is
/// reaped (no zombie remains), and SIGTERM ends it with status 0.
#[test]
fn pause_reaps_orphans_and_exits_on_sigterm() {
    require_root();
    let pause = image::build_static(&StaticBuild {
        package: "cniswap-lab-pause".into(),
        bin: "cniswap-lab-pause".into(),
        profile: "release".into(),
    })
    .unwrap_or_else(|e| panic!("{e}"));
    let mut child = Command::new("unshare")
        .args(["--pid", "--fork", "--kill-child"])
        .arg(&pause)
        .stdin(Stdio::null())
        .spawn()
        .expect("unshare (util-linux)");
    struct Kill(u32);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(self.0.to_string())
                .output();
        }
    }
    let _guard = Kill(child.id());
    // The pause process is unshare's child.
    let started = Instant::now();
    let pause_pid = loop {
        let children =
            fs::read_to_string(format!("/proc/{}/task/{}/children", child.id(), child.id()))
                .unwrap_or_default();
        if let Some(pid) = children.split_whitespace().next() {
            break pid.to_string();
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "pause did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // A double fork inside the namespace leaves `sleep` orphaned; it is reparented to pause.
    must(Command::new("nsenter").args([
        "--target",
        &pause_pid,
        "--pid",
        "--",
        "sh",
        "-c",
        "(sleep 0.3 &) ; exit 0",
    ]));
    std::thread::sleep(Duration::from_millis(1000));
    let zombies: Vec<String> = fs::read_dir("/proc")
        .expect("proc")
        .flatten()
        .filter_map(|e| fs::read_to_string(e.path().join("status")).ok())
        .filter(|s| s.lines().any(|l| l == format!("PPid:\t{pause_pid}")))
        .filter(|s| {
            s.lines()
                .any(|l| l.starts_with("State:") && l.contains('Z'))
        })
        .collect();
    assert!(zombies.is_empty(), "pause left zombies: {zombies:?}");
    must(Command::new("kill").args(["-TERM", &pause_pid]));
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "pause ignored SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "pause exited with {status}");
}

/// The CNI images, under the mirror's names, run what their chart and manifests run: Cilium's
/// clang (with its whole library closure) and agent, the chart's bash scripts, Calico's node,
/// CNI plugin and kube-controllers, and the migration controller's kubectl.
#[test]
fn cni_images_run_what_their_chart_and_manifests_run() {
    require_root();
    let cache = components::default_cache();
    let cni = components::ensure_cni(&cache, &mut |l| eprintln!("[components] {l}"))
        .unwrap_or_else(|e| panic!("{e}"));
    let images = image::cni::all(&cache, &cni, &mut |l| eprintln!("[images] {l}"))
        .unwrap_or_else(|e| panic!("{e}"));
    for image in &images {
        report(image);
    }
    let by_reference = |reference: &str| {
        images
            .iter()
            .find(|i| i.reference == reference)
            .unwrap_or_else(|| panic!("no image {reference}"))
    };
    let id = |what: &str| format!("cniswap-img-{}-{what}", std::process::id());
    let containerd = Containerd::start("cni");
    for image in &images {
        containerd.import(image);
    }

    let cilium = by_reference("lab.cniswap.local/cilium/cilium:v1.20.2");
    let clang = containerd.run_ok(&id("clang"), &[], cilium, &["clang", "--version"]);
    assert!(clang.contains("clang version 19."), "{clang}");
    let agent = containerd.run_ok(&id("agent"), &[], cilium, &["cilium-agent", "--version"]);
    assert!(agent.contains("cilium-agent 1.20.2"), "{agent}");
    let tools = containerd.run_ok(
        &id("tools"),
        &[],
        cilium,
        &[
            "bash",
            "-c",
            "test -x /install-plugin.sh && test -x /init-container.sh && \
             test -f /var/lib/cilium/bpf/bpf_lxc.c && test -x /opt/cni/bin/cilium-cni && \
             command -v cilium-health-responder ipset iptables-nft-save iptables-legacy-save \
             >/dev/null && ip -V",
        ],
    );
    assert!(tools.contains("iproute2"), "{tools}");

    let operator = by_reference("lab.cniswap.local/cilium/operator-generic:v1.20.2");
    let version = containerd.run_ok(
        &id("operator"),
        &[],
        operator,
        &["cilium-operator-generic", "--version"],
    );
    assert!(version.contains("1.20.2"), "{version}");

    let node = by_reference("lab.cniswap.local/calico/node:v3.28.5");
    let version = containerd.run_ok(&id("calico-node"), &[], node, &["/bin/calico-node", "-v"]);
    assert_eq!(version.trim(), "v3.28.5");
    assert_eq!(entrypoint_of(node), ["/usr/local/bin/start-calico-node"]);

    let cni_image = by_reference("lab.cniswap.local/calico/cni:v3.28.5");
    let plugins = containerd.run_ok(
        &id("calico-cni"),
        &[],
        cni_image,
        &["/opt/cni/bin/calico-ipam", "-v"],
    );
    assert_eq!(plugins.trim(), "v3.28.5");

    let controllers = by_reference("lab.cniswap.local/calico/kube-controllers:v3.28.5");
    let version = containerd.run_ok(
        &id("kube-controllers"),
        &[],
        controllers,
        &["/usr/bin/kube-controllers", "-version"],
    );
    assert_eq!(version.trim(), "v3.28.5");

    let migration = by_reference("lab.cniswap.local/calico/flannel-migration-controller:v3.28.5");
    let kubectl = containerd.run_ok(
        &id("kubectl"),
        &[],
        migration,
        &["/usr/bin/kubectl", "version", "--client"],
    );
    // Calico's own image carries kubectl 1.29: the controller drains with a flag 1.31 removed.
    assert!(kubectl.contains("v1.29.9"), "{kubectl}");
}

fn entrypoint_of(image: &Image) -> Vec<String> {
    entrypoint(&image::read_archive(&image.archive).expect("archive"))
}
