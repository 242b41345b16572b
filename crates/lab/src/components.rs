//! Pinned upstream components, built from Go modules into a cache keyed by version.
//!
//! Each upstream project has a small wrapper module under `lab/components/<project>/` (a go.mod
//! that requires the pinned release, its go.sum, and `tool` lines naming the main packages). The
//! files are compiled into this crate, written to a scratch directory and built with the local Go
//! toolchain into `<cache>/<project>/<version>-<key>/bin/`, where `<key>` hashes the module files,
//! the build flags and the Go version. A build goes to a temporary directory that is renamed into
//! place when every binary has been built and has reported its pinned version; a file lock per
//! project makes concurrent callers (two test binaries) wait for one build instead of racing.

use std::fmt::Write as _;
use std::fs::{self, File};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};

/// Kubernetes release of every Kubernetes binary (apiserver, controller-manager, scheduler,
/// kubelet, kube-proxy). 1.37 is the newest minor that still runs on containerd 1.6 (the kubelet
/// falls back to its own cgroup driver when the runtime lacks the RuntimeConfig RPC; removal is
/// planned for 1.38) and on cgroup v1 (with `failCgroupV1: false`).
pub const KUBERNETES_VERSION: &str = "v1.37.2";
/// etcd: the 3.7 line kubeadm 1.37 deploys (3.7.0), at its newest patch release.
pub const ETCD_VERSION: &str = "v3.7.3";
/// CoreDNS: the version kubeadm 1.37 deploys.
pub const COREDNS_VERSION: &str = "v1.14.6";
/// flanneld.
pub const FLANNEL_VERSION: &str = "v0.28.10";
/// Flannel's CNI plugin, from github.com/containernetworking/plugins (its home before
/// github.com/flannel-io/cni-plugin, which the Go module proxy does not serve).
pub const FLANNEL_CNI_VERSION: &str = "v0.9.1";
/// kwok, the node and pod simulator.
pub const KWOK_VERSION: &str = "v0.8.0";
/// Cilium (agent, operator, CNI plugin, cilium-dbg, health responder) and its Helm chart.
pub const CILIUM_VERSION: &str = "v1.20.2";
/// Calico: the one release the Go module proxy serves (the head of release-v3.28, which is
/// v3.28.5 plus a Makefile commit; lab/components/calico/go.mod says how it is pinned).
pub const CALICO_VERSION: &str = "v3.28.5";
/// helm, the real binary, which installs Cilium's chart as a user would.
pub const HELM_VERSION: &str = "v4.3.2";

/// The oldest Go that builds every pinned module (their go.mod files say `go 1.26.0`).
const MIN_GO_MINOR: u32 = 26;
const MIN_GO: &str = "go1.26";
/// Lines of Go's output kept in an error.
const OUTPUT_TAIL_LINES: usize = 20;

/// The cache directory: `$CNISWAP_LAB_CACHE`, or `/var/cache/cniswap-lab`.
pub fn default_cache() -> PathBuf {
    match std::env::var_os("CNISWAP_LAB_CACHE") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from("/var/cache/cniswap-lab"),
    }
}

/// One built binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binary {
    /// Binary name, e.g. `kube-apiserver`.
    pub name: &'static str,
    /// Where it is in the cache.
    pub path: PathBuf,
    /// Upstream release it was built from, e.g. `v1.37.2`.
    pub version: &'static str,
    /// Go module it comes from, e.g. `k8s.io/kubernetes`.
    pub module: &'static str,
}

/// Every component the lab runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Components {
    pub etcd: Binary,
    pub kube_apiserver: Binary,
    pub kube_controller_manager: Binary,
    pub kube_scheduler: Binary,
    pub kubelet: Binary,
    pub kube_proxy: Binary,
    pub coredns: Binary,
    pub flanneld: Binary,
    /// Flannel's CNI plugin (the binary is called `flannel`, its CNI `type`).
    pub flannel_cni: Binary,
    pub kwok: Binary,
    pub kubectl: Binary,
}

impl Components {
    /// All binaries, in build order.
    pub fn all(&self) -> [&Binary; 11] {
        [
            &self.kubectl,
            &self.etcd,
            &self.kube_apiserver,
            &self.kube_controller_manager,
            &self.kube_scheduler,
            &self.kubelet,
            &self.kube_proxy,
            &self.coredns,
            &self.flanneld,
            &self.flannel_cni,
            &self.kwok,
        ]
    }
}

/// Which step of getting a component failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Finding a usable Go toolchain.
    Toolchain,
    /// Downloading the Go modules.
    Download,
    /// `go build`.
    Build,
    /// Checking that the built binary reports its pinned version.
    Stamp,
    /// Reading or writing the cache directory.
    Cache,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::Toolchain => "toolchain",
            Step::Download => "download",
            Step::Build => "build",
            Step::Stamp => "stamp",
            Step::Cache => "cache",
        })
    }
}

/// Why a component could not be had.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{component} {version} ({module}): {step} failed: {message}{}\nhelp: {hint}", indent_output(.output))]
pub struct ComponentError {
    /// Component (project) name, e.g. `kubernetes` or `flannel`.
    pub component: &'static str,
    /// Go module, e.g. `k8s.io/kubernetes`.
    pub module: &'static str,
    /// Pinned version.
    pub version: &'static str,
    pub step: Step,
    pub message: String,
    /// The last lines of the command's output (empty when no command ran).
    pub output: String,
    /// What to do about it.
    pub hint: String,
}

fn indent_output(output: &str) -> String {
    if output.trim().is_empty() {
        return String::new();
    }
    let mut text = String::from("\n  last lines of output:");
    for line in output.lines() {
        text.push_str("\n    ");
        text.push_str(line);
    }
    text
}

/// A binary of a project: its name, main package, and how it reports its version.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bin {
    pub name: &'static str,
    pub package: &'static str,
    pub version_args: &'static [&'static str],
    /// Text the version output must contain; empty for a binary with no way to print its
    /// version without doing its job (Calico's `install`, which installs at once).
    pub expect: &'static str,
}

/// An upstream project built from one wrapper module.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Project {
    /// Directory name in the cache and under `lab/components/`.
    pub name: &'static str,
    pub module: &'static str,
    pub version: &'static str,
    /// Files of the wrapper module: path relative to the module root, contents.
    pub files: &'static [(&'static str, &'static str)],
    pub cgo: bool,
    pub tags: &'static [&'static str],
    pub ldflags: &'static [&'static str],
    pub bins: &'static [Bin],
    /// Paths in the upstream module (files or directories) kept beside the binaries, under
    /// `<dir>/module/`: charts, manifests and sources the lab installs from the pinned release
    /// rather than from the internet.
    pub sources: &'static [&'static str],
    /// Extra advice when `go build` fails.
    pub build_hint: &'static str,
}

macro_rules! module_files {
    ($dir:literal $(, $extra:literal)*) => {
        &[
            ("go.mod", include_str!(concat!("../../../lab/components/", $dir, "/go.mod"))),
            ("go.sum", include_str!(concat!("../../../lab/components/", $dir, "/go.sum"))),
            $(($extra, include_str!(concat!("../../../lab/components/", $dir, "/", $extra))),)*
        ]
    };
}

const KUBE_LDFLAGS: &[&str] = &[
    "-X k8s.io/component-base/version.gitVersion=v1.37.2",
    "-X k8s.io/component-base/version.gitMajor=1",
    "-X k8s.io/component-base/version.gitMinor=37",
    "-X k8s.io/component-base/version.gitCommit=",
    "-X k8s.io/component-base/version.gitTreeState=clean",
    "-X k8s.io/component-base/version.buildDate=2026-10-27T12:01:04Z",
    "-X k8s.io/client-go/pkg/version.gitVersion=v1.37.2",
    "-X k8s.io/client-go/pkg/version.gitMajor=1",
    "-X k8s.io/client-go/pkg/version.gitMinor=37",
    "-X k8s.io/client-go/pkg/version.gitCommit=",
    "-X k8s.io/client-go/pkg/version.gitTreeState=clean",
    "-X k8s.io/client-go/pkg/version.buildDate=2026-10-27T12:01:04Z",
];

const fn kube_bin(name: &'static str, package: &'static str) -> Bin {
    Bin {
        name,
        package,
        version_args: &["--version"],
        expect: "Kubernetes v1.37.2",
    }
}

/// The kubectl that Calico's flannel-migration controller image bundles (`K8S_VERSION` in
/// Calico v3.28.5's metadata.mk): the controller drains with `--delete-local-data`, which
/// kubectl 1.31 removed, so the lab's own kubectl fails it ("unknown flag").
pub const CALICO_KUBECTL_VERSION: &str = "v1.29.9";
/// The pinned projects, in build order.
pub(crate) const PROJECTS: &[Project] = &[
    Project {
        name: "etcd",
        module: "go.etcd.io/etcd/server/v3",
        version: ETCD_VERSION,
        files: module_files!("etcd"),
        cgo: false,
        tags: &[],
        ldflags: &[],
        bins: &[Bin {
            name: "etcd",
            package: "go.etcd.io/etcd/server/v3",
            version_args: &["--version"],
            expect: "etcd Version: 3.7.3",
        }],
        sources: &[],
        build_hint: "",
    },
    Project {
        name: "kubernetes",
        module: "k8s.io/kubernetes",
        version: KUBERNETES_VERSION,
        files: module_files!("kubernetes"),
        cgo: false,
        tags: &[],
        ldflags: KUBE_LDFLAGS,
        bins: &[
            kube_bin("kube-apiserver", "k8s.io/kubernetes/cmd/kube-apiserver"),
            kube_bin(
                "kube-controller-manager",
                "k8s.io/kubernetes/cmd/kube-controller-manager",
            ),
            kube_bin("kube-scheduler", "k8s.io/kubernetes/cmd/kube-scheduler"),
            kube_bin("kubelet", "k8s.io/kubernetes/cmd/kubelet"),
            kube_bin("kube-proxy", "k8s.io/kubernetes/cmd/kube-proxy"),
            // For tests that go through kubectl (`kubectl cniswap`) and benchmarks against it.
            Bin {
                name: "kubectl",
                package: "k8s.io/kubernetes/cmd/kubectl",
                version_args: &["version", "--client"],
                expect: "Client Version: v1.37.2",
            },
        ],
        sources: &[],
        build_hint: "",
    },
    Project {
        name: "coredns",
        module: "github.com/coredns/coredns",
        version: COREDNS_VERSION,
        files: module_files!("coredns"),
        cgo: false,
        tags: &[],
        ldflags: &[],
        bins: &[Bin {
            name: "coredns",
            package: "github.com/coredns/coredns",
            version_args: &["-version"],
            expect: "CoreDNS-1.14.6",
        }],
        sources: &[],
        build_hint: "",
    },
    Project {
        name: "flannel",
        module: "github.com/flannel-io/flannel",
        version: FLANNEL_VERSION,
        files: module_files!(
            "flannel",
            "tencent-vpc-unavailable/go.mod",
            "tencent-vpc-unavailable/v20170312/unavailable.go"
        ),
        // The udp backend is written in C; flanneld's main package imports it. Link statically
        // (as upstream's Makefile does) with Go's resolver and user lookup, so no glibc NSS
        // module is needed at run time.
        cgo: true,
        tags: &["netgo", "osusergo"],
        ldflags: &[
            "-X github.com/flannel-io/flannel/pkg/version.Version=v0.28.10",
            "-extldflags -static",
        ],
        bins: &[Bin {
            name: "flanneld",
            package: "github.com/flannel-io/flannel",
            version_args: &["--version"],
            expect: "v0.28.10",
        }],
        sources: &[],
        build_hint: "flanneld needs cgo: install gcc and the static C library (apt-get install build-essential)",
    },
    Project {
        name: "cni-plugins",
        module: "github.com/containernetworking/plugins",
        version: FLANNEL_CNI_VERSION,
        files: module_files!("cni-plugins"),
        cgo: false,
        tags: &[],
        ldflags: &[
            "-X github.com/containernetworking/plugins/pkg/utils/buildversion.BuildVersion=v0.9.1",
        ],
        bins: &[Bin {
            name: "flannel",
            package: "github.com/containernetworking/plugins/plugins/meta/flannel",
            // Without CNI_COMMAND a CNI plugin prints its "about" line and exits 0.
            version_args: &[],
            expect: "CNI flannel plugin v0.9.1",
        }],
        sources: &[],
        build_hint: "",
    },
    Project {
        name: "kwok",
        module: "sigs.k8s.io/kwok",
        version: KWOK_VERSION,
        files: module_files!("kwok"),
        cgo: false,
        tags: &[],
        ldflags: &["-X sigs.k8s.io/kwok/pkg/consts.Version=v0.8.0"],
        bins: &[Bin {
            name: "kwok",
            package: "sigs.k8s.io/kwok/cmd/kwok",
            version_args: &["--version"],
            expect: "v0.8.0",
        }],
        sources: &[],
        build_hint: "",
    },
];

const CALICO_MODULE: &str = "github.com/projectcalico/calico";

/// The CNIs a plan can install on the lab, and helm: built only for labs that run or may
/// migrate to them ([`ensure_cni`]), since they add about a quarter of an hour of cold build.
pub(crate) const CNI_PROJECTS: &[Project] = &[
    Project {
        name: "helm",
        module: "helm.sh/helm/v4",
        version: HELM_VERSION,
        files: module_files!("helm"),
        cgo: false,
        tags: &[],
        ldflags: &["-X helm.sh/helm/v4/internal/version.version=v4.3.2"],
        bins: &[Bin {
            name: "helm",
            package: "helm.sh/helm/v4/cmd/helm",
            version_args: &["version"],
            expect: "v4.3.2",
        }],
        sources: &[],
        build_hint: "",
    },
    Project {
        name: "cilium",
        module: "github.com/cilium/cilium",
        version: CILIUM_VERSION,
        files: module_files!(
            "cilium",
            "mcs-api-controllers-unavailable/go.mod",
            "mcs-api-controllers-unavailable/annotation.go"
        ),
        // As Cilium's Makefile builds it: no cgo. ipam_provider_operator compiles the
        // operator's cluster-pool IPAM in (the generic operator's default IPAM mode).
        cgo: false,
        tags: &["osusergo", "ipam_provider_operator"],
        // pkg/version parses "<version> <revision> <date>".
        ldflags: &[
            "-X 'github.com/cilium/cilium/pkg/version.ciliumVersion=1.20.2 v1.20.2 2026-09-15T20:03:11Z'",
        ],
        bins: &[
            Bin {
                name: "cilium-agent",
                package: "github.com/cilium/cilium/daemon",
                version_args: &["--version"],
                expect: "cilium-agent 1.20.2",
            },
            Bin {
                name: "cilium-operator-generic",
                package: "github.com/cilium/cilium/operator",
                version_args: &["--version"],
                expect: "1.20.2",
            },
            Bin {
                name: "cilium-cni",
                package: "github.com/cilium/cilium/plugins/cilium-cni",
                version_args: &[],
                expect: "1.20.2",
            },
            Bin {
                name: "cilium-dbg",
                package: "github.com/cilium/cilium/cilium-dbg",
                // Prints the client's version, then "Daemon: ... not responding" with no agent.
                version_args: &["version"],
                expect: "Client: 1.20.2",
            },
            Bin {
                name: "cilium-health-responder",
                package: "github.com/cilium/cilium/cilium-health/responder",
                version_args: &["--help"],
                expect: "",
            },
        ],
        // The chart, the datapath's C sources (compiled by the agent at run time) and the
        // scripts the chart's init containers run.
        sources: &[
            "install/kubernetes/cilium",
            "bpf",
            "plugins/cilium-cni/install-plugin.sh",
            "plugins/cilium-cni/cni-uninstall.sh",
            "images/cilium/init-container.sh",
        ],
        build_hint: "",
    },
    Project {
        name: "calico",
        module: CALICO_MODULE,
        version: CALICO_VERSION,
        files: module_files!("calico"),
        // Felix built without cgo has no libbpf: the lab runs it in iptables mode with
        // FELIX_DebugSkipCTLBCleanup=true (manifests::calico), which skips the one BPF call
        // an iptables-mode Felix makes at start (research: it panics otherwise).
        cgo: false,
        tags: &[],
        ldflags: &[
            "-X github.com/projectcalico/calico/node/pkg/lifecycle/startup.VERSION=v3.28.5",
            "-X github.com/projectcalico/calico/node/buildinfo.GitVersion=v3.28.5",
            "-X github.com/projectcalico/calico/node/buildinfo.GitRevision=a0db560f0520",
            "-X main.VERSION=v3.28.5",
        ],
        bins: &[
            Bin {
                name: "calico-node",
                package: "github.com/projectcalico/calico/node/cmd/calico-node",
                version_args: &["-v"],
                expect: "v3.28.5",
            },
            Bin {
                name: "calico",
                package: "github.com/projectcalico/calico/cni-plugin/cmd/calico",
                version_args: &["-v"],
                expect: "v3.28.5",
            },
            Bin {
                name: "install",
                package: "github.com/projectcalico/calico/cni-plugin/cmd/install",
                version_args: &[],
                expect: "",
            },
            Bin {
                name: "kube-controllers",
                package: "github.com/projectcalico/calico/kube-controllers/cmd/kube-controllers",
                version_args: &["-version"],
                expect: "v3.28.5",
            },
            Bin {
                name: "check-status",
                package: "github.com/projectcalico/calico/kube-controllers/cmd/check-status",
                version_args: &[],
                expect: "",
            },
        ],
        // calico-vxlan.yaml (the manifest install without the operator), its CRDs and the
        // Flannel migration manifests.
        sources: &["manifests"],
        build_hint: "",
    },
    Project {
        name: "kubectl-calico",
        module: "k8s.io/kubernetes",
        version: CALICO_KUBECTL_VERSION,
        files: module_files!("kubectl-calico"),
        cgo: false,
        tags: &[],
        ldflags: &[
            "-X k8s.io/component-base/version.gitVersion=v1.29.9",
            "-X k8s.io/component-base/version.gitMajor=1",
            "-X k8s.io/component-base/version.gitMinor=29",
            "-X k8s.io/client-go/pkg/version.gitVersion=v1.29.9",
        ],
        bins: &[Bin {
            name: "kubectl",
            package: "k8s.io/kubernetes/cmd/kubectl",
            version_args: &["version", "--client"],
            expect: "Client Version: v1.29.9",
        }],
        sources: &[],
        build_hint: "",
    },
];

/// The CNIs' binaries and the upstream files kept with them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CniComponents {
    pub helm: Binary,
    pub cilium_agent: Binary,
    pub cilium_operator: Binary,
    pub cilium_cni: Binary,
    pub cilium_dbg: Binary,
    pub cilium_health_responder: Binary,
    /// Files of the cilium module (see [`Project::sources`]): `install/kubernetes/cilium` etc.
    pub cilium_module: PathBuf,
    pub calico_node: Binary,
    pub calico_cni: Binary,
    pub calico_install: Binary,
    pub calico_kube_controllers: Binary,
    pub calico_check_status: Binary,
    /// The kubectl of Calico's migration controller image ([`CALICO_KUBECTL_VERSION`]).
    pub calico_kubectl: Binary,
    /// Files of the calico module: `manifests/`.
    pub calico_module: PathBuf,
}

/// Builds (or finds in the cache) every pinned component. `progress` receives one line per
/// step that takes time ("building kubelet v1.37.2 ..."); nothing is reported for cache hits
/// beyond one line per project.
#[allow(
    clippy::result_large_err,
    reason = "a build error is rare and carries go's output for the user"
)]
pub fn ensure(
    cache_root: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Components, ComponentError> {
    let mut built = build_projects(PROJECTS, cache_root, progress)?;
    let mut take = |name: &str| built.take(name);
    Ok(Components {
        etcd: take("etcd"),
        kube_apiserver: take("kube-apiserver"),
        kube_controller_manager: take("kube-controller-manager"),
        kube_scheduler: take("kube-scheduler"),
        kubelet: take("kubelet"),
        kube_proxy: take("kube-proxy"),
        coredns: take("coredns"),
        flanneld: take("flanneld"),
        flannel_cni: take("flannel"),
        kwok: take("kwok"),
        kubectl: take("kubectl"),
    })
}

/// Builds (or finds in the cache) helm, Cilium and Calico, like [`ensure`].
#[allow(
    clippy::result_large_err,
    reason = "a build error is rare and carries go's output for the user"
)]
pub fn ensure_cni(
    cache_root: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<CniComponents, ComponentError> {
    let mut built = build_projects(CNI_PROJECTS, cache_root, progress)?;
    let cilium_module = built.module_dir("cilium");
    let calico_module = built.module_dir("calico");
    let mut take = |name: &str| built.take(name);
    Ok(CniComponents {
        helm: take("helm"),
        cilium_agent: take("cilium-agent"),
        cilium_operator: take("cilium-operator-generic"),
        cilium_cni: take("cilium-cni"),
        cilium_dbg: take("cilium-dbg"),
        cilium_health_responder: take("cilium-health-responder"),
        cilium_module,
        calico_node: take("calico-node"),
        calico_cni: take("calico"),
        calico_install: take("install"),
        calico_kube_controllers: take("kube-controllers"),
        calico_check_status: take("check-status"),
        calico_kubectl: take("kubectl"),
        calico_module,
    })
}

/// The binaries of a set of projects, and where each project's files are.
struct Built {
    binaries: Vec<Binary>,
    /// Project name -> its directory in the cache.
    dirs: Vec<(&'static str, PathBuf)>,
}

impl Built {
    fn take(&mut self, name: &str) -> Binary {
        let index = self.binaries.iter().position(|b| b.name == name);
        // Every name asked for is in the project tables; a typo is caught by the unit tests.
        self.binaries
            .swap_remove(index.unwrap_or_else(|| unreachable!("no component named {name}")))
    }

    fn module_dir(&self, project: &str) -> PathBuf {
        self.dirs
            .iter()
            .find(|(name, _)| *name == project)
            .map(|(_, dir)| dir.join("module"))
            .unwrap_or_else(|| unreachable!("no project named {project}"))
    }
}

#[allow(
    clippy::result_large_err,
    reason = "a build error is rare and carries go's output for the user"
)]
fn build_projects(
    projects: &[Project],
    cache_root: &Path,
    progress: &mut dyn FnMut(&str),
) -> Result<Built, ComponentError> {
    let go = GoToolchain::find(std::env::var_os("PATH").as_deref(), FALLBACK_GO).map_err(|message| {
        ComponentError {
            component: "go",
            module: "-",
            version: MIN_GO,
            step: Step::Toolchain,
            message,
            output: String::new(),
            hint: format!(
                "install Go 1.{MIN_GO_MINOR} or newer from go.dev and put its bin directory on PATH \
                 (the lab builds Kubernetes, etcd, CoreDNS, Flannel, kwok, Cilium, Calico and helm \
                 from Go modules)"
            ),
        }
    })?;
    let mut built = Built {
        binaries: Vec::new(),
        dirs: Vec::new(),
    };
    for project in projects {
        let bin_dir = ensure_project(&go, cache_root, project, progress)?;
        for bin in project.bins {
            built.binaries.push(Binary {
                name: bin.name,
                path: bin_dir.join(bin.name),
                version: project.version,
                module: project.module,
            });
        }
        if let Some(dir) = bin_dir.parent() {
            built.dirs.push((project.name, dir.to_path_buf()));
        }
    }
    Ok(built)
}

/// Where Go usually is when it is not on PATH (sudo's secure_path drops /usr/local/go/bin).
const FALLBACK_GO: &[&str] = &["/usr/local/go/bin/go", "/usr/lib/go/bin/go"];

/// The Go toolchain used for builds.
#[derive(Debug, Clone)]
pub(crate) struct GoToolchain {
    pub path: PathBuf,
    /// `go env GOVERSION`, e.g. `go1.26.8`.
    pub version: String,
}

impl GoToolchain {
    pub(crate) fn find(
        path_var: Option<&std::ffi::OsStr>,
        fallbacks: &[&str],
    ) -> Result<Self, String> {
        let on_path = path_var
            .into_iter()
            .flat_map(std::env::split_paths)
            .map(|dir| dir.join("go"));
        let candidate = on_path
            .chain(fallbacks.iter().map(PathBuf::from))
            .find(|p| p.is_file())
            .ok_or_else(|| "go not found on PATH".to_string())?;
        let output = Command::new(&candidate)
            .args(["env", "GOVERSION"])
            .env("GOTOOLCHAIN", "local")
            .stdin(Stdio::null())
            .output()
            .map_err(|e| format!("could not run {}: {e}", candidate.display()))?;
        let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
        if !output.status.success() || version.is_empty() {
            return Err(format!(
                "{} env GOVERSION failed: {}",
                candidate.display(),
                String::from_utf8_lossy(&output.stderr).trim()
            ));
        }
        let minor = version
            .strip_prefix("go1.")
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|m| m.parse::<u32>().ok());
        match minor {
            Some(m) if m >= MIN_GO_MINOR => Ok(Self {
                path: candidate,
                version,
            }),
            _ => Err(format!(
                "{} is {version}; the pinned modules need go1.{MIN_GO_MINOR} or newer",
                candidate.display()
            )),
        }
    }
}

/// Cache key of a project: its module files, build flags and the Go version.
pub(crate) fn cache_key(project: &Project, go_version: &str) -> String {
    let mut hash = Sha256::new();
    let mut field = |label: &str, value: &str| {
        hash.update(label.as_bytes());
        hash.update((value.len() as u64).to_le_bytes());
        hash.update(value.as_bytes());
    };
    for (path, contents) in project.files {
        field("file", path);
        field("contents", contents);
    }
    field("cgo", if project.cgo { "1" } else { "0" });
    for tag in project.tags {
        field("tag", tag);
    }
    for flag in project.ldflags {
        field("ldflag", flag);
    }
    for bin in project.bins {
        field("bin", bin.name);
        field("package", bin.package);
    }
    for source in project.sources {
        field("source", source);
    }
    field("go", go_version);
    let digest = hash.finalize();
    let mut key = String::new();
    for byte in &digest[..6] {
        let _ = write!(key, "{byte:02x}");
    }
    key
}

/// The directory holding a project's binaries once built.
pub(crate) fn project_dir(cache_root: &Path, project: &Project, go_version: &str) -> PathBuf {
    cache_root.join(project.name).join(format!(
        "{}-{}",
        project.version,
        cache_key(project, go_version)
    ))
}

fn is_complete(dir: &Path, project: &Project) -> bool {
    project
        .bins
        .iter()
        .all(|b| dir.join("bin").join(b.name).is_file())
        && project
            .sources
            .iter()
            .all(|source| dir.join("module").join(source).exists())
        && dir.join("build.json").is_file()
}

#[allow(
    clippy::result_large_err,
    reason = "a build error is rare and carries go's output for the user"
)]
pub(crate) fn ensure_project(
    go: &GoToolchain,
    cache_root: &Path,
    project: &Project,
    progress: &mut dyn FnMut(&str),
) -> Result<PathBuf, ComponentError> {
    let dir = project_dir(cache_root, project, &go.version);
    if is_complete(&dir, project) {
        progress(&format!(
            "{} {}: cached in {}",
            project.name,
            project.version,
            dir.display()
        ));
        return Ok(dir.join("bin"));
    }
    let err = |step: Step, message: String, output: String, hint: String| ComponentError {
        component: project.name,
        module: project.module,
        version: project.version,
        step,
        message,
        output,
        hint,
    };
    let cache_err = |what: &str, path: &Path, e: std::io::Error| {
        err(
            Step::Cache,
            format!("{what} {}: {e}", path.display()),
            String::new(),
            "check that the cache directory is writable and has free space, or point \
             CNISWAP_LAB_CACHE at another directory"
                .into(),
        )
    };
    let project_root = cache_root.join(project.name);
    fs::create_dir_all(&project_root).map_err(|e| cache_err("cannot create", &project_root, e))?;
    let lock_path = project_root.join(".lock");
    let lock = File::create(&lock_path).map_err(|e| cache_err("cannot open", &lock_path, e))?;
    progress(&format!(
        "{} {}: waiting for the build lock",
        project.name, project.version
    ));
    lock.lock()
        .map_err(|e| cache_err("cannot lock", &lock_path, e))?;
    if is_complete(&dir, project) {
        progress(&format!(
            "{} {}: built by another process",
            project.name, project.version
        ));
        return Ok(dir.join("bin"));
    }
    // We hold the lock: any leftover scratch directory is from a build that died.
    if let Ok(entries) = fs::read_dir(&project_root) {
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".build-") {
                let _ = fs::remove_dir_all(entry.path());
            }
        }
    }
    let scratch = project_root.join(format!(
        ".build-{}-{}",
        dir.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        std::process::id()
    ));
    let src = scratch.join("src");
    let bin_dir = scratch.join("bin");
    for d in [&src, &bin_dir] {
        fs::create_dir_all(d).map_err(|e| cache_err("cannot create", d, e))?;
    }
    for (rel, contents) in project.files {
        let path = src.join(rel);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent).map_err(|e| cache_err("cannot create", parent, e))?;
        }
        fs::write(&path, contents).map_err(|e| cache_err("cannot write", &path, e))?;
    }

    let go_env = GoEnv::new(go, project, cache_root);
    progress(&format!(
        "{} {}: downloading Go modules ({})",
        project.name, project.version, project.module
    ));
    let started = Instant::now();
    go_env
        .run(&src, &["mod", "download"])
        .map_err(|(message, output)| {
            err(
            Step::Download,
            message,
            output,
            "check that the Go module proxy is reachable (GOPROXY); \"403 Forbidden\" means the \
             proxy does not serve that module version: pin another version in \
             lab/components/"
                .to_string()
                + project.name
                + "/go.mod",
        )
        })?;
    let download_secs = started.elapsed().as_secs_f64();
    if !project.sources.is_empty() {
        let module_dir = go_env
            .run(&src, &["list", "-m", "-f", "{{.Dir}}", project.module])
            .map_err(|(message, output)| {
                err(
                    Step::Download,
                    message,
                    output,
                    "`go mod download` succeeded but go cannot say where the module is".into(),
                )
            })?;
        copy_sources(
            Path::new(module_dir.trim()),
            &scratch.join("module"),
            project.sources,
        )
        .map_err(|e| cache_err("cannot copy the module's files into", &scratch, e))?;
    }

    let mut build_secs = Vec::new();
    let ldflags = std::iter::once("-s -w")
        .chain(project.ldflags.iter().copied())
        .collect::<Vec<_>>()
        .join(" ");
    let tags = project.tags.join(",");
    for bin in project.bins {
        progress(&format!(
            "{} {}: building {} (go build {}); this takes minutes on a cold cache",
            project.name, project.version, bin.name, bin.package
        ));
        let started = Instant::now();
        let out = bin_dir.join(bin.name);
        let out_arg = out.to_string_lossy().into_owned();
        let mut args = vec!["build", "-trimpath", "-ldflags", &ldflags, "-o", &out_arg];
        if !tags.is_empty() {
            args.extend(["-tags", &tags]);
        }
        args.push(bin.package);
        go_env.run(&src, &args).map_err(|(message, output)| {
            let mut hint = format!(
                "the output above says why; the wrapper module is lab/components/{}/",
                project.name
            );
            if !project.build_hint.is_empty() {
                hint = format!("{}; {hint}", project.build_hint);
            }
            err(Step::Build, message, output, hint)
        })?;
        let secs = started.elapsed().as_secs_f64();
        progress(&format!(
            "{} {}: built {} in {secs:.0} s",
            project.name, project.version, bin.name
        ));
        build_secs.push((bin.name, secs));
    }
    for bin in project.bins.iter().filter(|b| !b.expect.is_empty()) {
        check_version(&bin_dir.join(bin.name), bin).map_err(|(message, output)| {
            err(
                Step::Stamp,
                format!("{}: {message}", bin.name),
                output,
                format!(
                    "the version flags (-ldflags -X) for {} in crates/lab/src/components.rs no longer \
                     match the module; fix them there",
                    project.module
                ),
            )
        })?;
    }
    let record = serde_json::json!({
        "project": project.name,
        "module": project.module,
        "version": project.version,
        "go": go.version,
        "cgo": project.cgo,
        "tags": project.tags,
        "ldflags": project.ldflags,
        "download_seconds": download_secs,
        "build_seconds": build_secs.iter().map(|(n, s)| (n.to_string(), serde_json::Value::from(*s))).collect::<serde_json::Map<_, _>>(),
    });
    let record_path = scratch.join("build.json");
    fs::write(&record_path, format!("{record:#}\n"))
        .map_err(|e| cache_err("cannot write", &record_path, e))?;
    fs::remove_dir_all(&src).map_err(|e| cache_err("cannot remove", &src, e))?;
    fs::rename(&scratch, &dir).map_err(|e| cache_err("cannot rename into", &dir, e))?;
    drop(lock);
    Ok(dir.join("bin"))
}

/// Runs the go command for one project with a fixed environment.
struct GoEnv<'a> {
    go: &'a GoToolchain,
    cgo: bool,
    cache_root: &'a Path,
}

impl<'a> GoEnv<'a> {
    fn new(go: &'a GoToolchain, project: &Project, cache_root: &'a Path) -> Self {
        Self {
            go,
            cgo: project.cgo,
            cache_root,
        }
    }

    /// Runs `nice -n 10 go ARGS` in `dir` and returns its standard output; on failure returns
    /// a message and the output's tail.
    fn run(&self, dir: &Path, args: &[&str]) -> Result<String, (String, String)> {
        let mut cmd = Command::new("nice");
        cmd.arg("-n")
            .arg("10")
            .arg(&self.go.path)
            .args(args)
            .current_dir(dir);
        cmd.env("GOTOOLCHAIN", "local")
            .env("GOWORK", "off")
            .env("GOFLAGS", "-mod=readonly -buildvcs=false")
            .env("CGO_ENABLED", if self.cgo { "1" } else { "0" })
            .stdin(Stdio::null());
        // Without HOME, go has nowhere for its caches: keep them in the lab cache.
        if std::env::var_os("HOME").is_none() {
            if std::env::var_os("GOCACHE").is_none() {
                cmd.env("GOCACHE", self.cache_root.join("go/build-cache"));
            }
            if std::env::var_os("GOMODCACHE").is_none() {
                cmd.env("GOMODCACHE", self.cache_root.join("go/mod"));
            }
            if std::env::var_os("GOPATH").is_none() {
                cmd.env("GOPATH", self.cache_root.join("go/path"));
            }
        }
        let shown = format!("go {}", args.join(" "));
        let output = cmd
            .output()
            .map_err(|e| (format!("could not run {shown}: {e}"), String::new()))?;
        if output.status.success() {
            return Ok(String::from_utf8_lossy(&output.stdout).into_owned());
        }
        let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
        text.push_str(&String::from_utf8_lossy(&output.stderr));
        Err((
            format!("`{shown}` exited with {}", output.status),
            tail(&text, OUTPUT_TAIL_LINES),
        ))
    }
}

/// Copies `sources` (files or directories, relative to `module_dir`) to the same paths under
/// `to`, writable by their owner (the module cache is read-only).
fn copy_sources(module_dir: &Path, to: &Path, sources: &[&str]) -> std::io::Result<()> {
    for source in sources {
        copy_tree(&module_dir.join(source), &to.join(source))?;
    }
    Ok(())
}

fn copy_tree(from: &Path, to: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    let meta = fs::metadata(from)?;
    if meta.is_dir() {
        fs::create_dir_all(to)?;
        for entry in fs::read_dir(from)? {
            let entry = entry?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        return Ok(());
    }
    if let Some(parent) = to.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::copy(from, to)?;
    let mode = meta.permissions().mode() | 0o200;
    fs::set_permissions(to, fs::Permissions::from_mode(mode))
}

/// The last `n` lines of `text`.
pub(crate) fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// Runs a binary's version command and checks its output names the pinned version.
fn check_version(path: &Path, bin: &Bin) -> Result<(), (String, String)> {
    let text = run_with_timeout(path, bin.version_args, Duration::from_secs(60))?;
    if text.contains(bin.expect) {
        Ok(())
    } else {
        Err((
            format!(
                "`{} {}` does not report {:?}",
                bin.name,
                bin.version_args.join(" "),
                bin.expect
            ),
            tail(&text, OUTPUT_TAIL_LINES),
        ))
    }
}

/// Runs `path args` with no CNI or Kubernetes environment, returning stdout and stderr.
pub(crate) fn run_with_timeout(
    path: &Path,
    args: &[&str],
    timeout: Duration,
) -> Result<String, (String, String)> {
    let shown = format!("{} {}", path.display(), args.join(" "));
    let mut child = Command::new(path)
        .args(args)
        .env_remove("CNI_COMMAND")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| (format!("could not run {shown}: {e}"), String::new()))?;
    // Read both pipes on threads so a chatty binary cannot block on a full pipe.
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let out_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let err_reader = std::thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.read_to_end(&mut buf);
        }
        buf
    });
    let started = Instant::now();
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if started.elapsed() > timeout => {
                let _ = child.kill();
                let _ = child.wait();
                return Err((
                    format!("{shown} did not exit within {timeout:?}"),
                    String::new(),
                ));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err((format!("waiting for {shown}: {e}"), String::new())),
        }
    };
    let mut text = String::from_utf8_lossy(&out_reader.join().unwrap_or_default()).into_owned();
    text.push_str(&String::from_utf8_lossy(
        &err_reader.join().unwrap_or_default(),
    ));
    if status.success() {
        Ok(text)
    } else {
        Err((
            format!("{shown} exited with {status}"),
            tail(&text, OUTPUT_TAIL_LINES),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO_FILES: &[(&str, &str)] = &[
        ("go.mod", "module example.test/hello\n\ngo 1.26.0\n"),
        (
            "main.go",
            "package main\n\nimport \"fmt\"\n\nvar version = \"unset\"\n\nfunc main() { fmt.Println(\"hello\", version) }\n",
        ),
    ];

    fn hello(files: &'static [(&'static str, &'static str)], expect: &'static str) -> Project {
        Project {
            name: "hello",
            module: "example.test/hello",
            version: "v1.2.3",
            files,
            cgo: false,
            tags: &[],
            ldflags: &["-X main.version=v1.2.3"],
            // Tests only: the spec wants 'static data, as the real table is.
            bins: Box::leak(Box::new([Bin {
                name: "hello",
                package: ".",
                version_args: &[],
                expect,
            }])),
            sources: &[],
            build_hint: "",
        }
    }

    fn go() -> GoToolchain {
        GoToolchain::find(std::env::var_os("PATH").as_deref(), FALLBACK_GO)
            .expect("the lab needs Go 1.26; scripts/test.sh checks for it")
    }

    #[test]
    fn every_component_field_names_a_pinned_binary() {
        let names: Vec<&str> = PROJECTS
            .iter()
            .flat_map(|p| p.bins.iter().map(|b| b.name))
            .collect();
        for name in [
            "etcd",
            "kube-apiserver",
            "kube-controller-manager",
            "kube-scheduler",
            "kubelet",
            "kube-proxy",
            "coredns",
            "flanneld",
            "flannel",
            "kwok",
            "kubectl",
        ] {
            assert!(names.contains(&name), "{name} is not built by any project");
        }
        assert_eq!(names.len(), 11);
    }

    #[test]
    fn every_cni_component_field_names_a_pinned_binary() {
        let names: Vec<&str> = CNI_PROJECTS
            .iter()
            .flat_map(|p| p.bins.iter().map(|b| b.name))
            .collect();
        for name in [
            "helm",
            "cilium-agent",
            "cilium-operator-generic",
            "cilium-cni",
            "cilium-dbg",
            "cilium-health-responder",
            "calico-node",
            "calico",
            "install",
            "kube-controllers",
            "check-status",
            "kubectl",
        ] {
            assert!(names.contains(&name), "{name} is not built by any project");
        }
        assert_eq!(names.len(), 12);
    }

    #[test]
    fn module_sources_are_kept_beside_the_binaries() {
        let go = go();
        let cache = tempfile::tempdir().expect("tempdir");
        let mut project = hello(HELLO_FILES, "hello v1.2.3");
        project.sources = &["main.go"];
        let bin = ensure_project(&go, cache.path(), &project, &mut |_| {}).expect("build");
        let kept = bin.parent().expect("dir").join("module/main.go");
        let text = fs::read_to_string(&kept).expect("kept");
        assert!(text.contains("var version"), "{text}");
        // A different list of sources is a different build.
        let mut other = project;
        other.sources = &[];
        assert_ne!(
            cache_key(&project, &go.version),
            cache_key(&other, &go.version)
        );
    }

    #[test]
    fn key_changes_with_module_files_flags_and_go_version() {
        let a = hello(HELLO_FILES, "hello v1.2.3");
        let base = cache_key(&a, "go1.26.8");
        assert_eq!(base, cache_key(&a, "go1.26.8"), "the key is deterministic");
        assert_eq!(base.len(), 12);
        assert_ne!(base, cache_key(&a, "go1.26.9"));
        let mut b = a;
        b.ldflags = &["-X main.version=v9"];
        assert_ne!(base, cache_key(&b, "go1.26.8"));
        let mut c = a;
        c.files = &[("go.mod", "module example.test/hello\n\ngo 1.26.1\n")];
        assert_ne!(base, cache_key(&c, "go1.26.8"));
    }

    #[test]
    fn missing_go_is_reported_with_what_to_install() {
        let err = GoToolchain::find(Some(std::ffi::OsStr::new("/nonexistent")), &[]).unwrap_err();
        assert_eq!(err, "go not found on PATH");
    }

    #[test]
    fn builds_once_stamps_and_reuses_the_cache() {
        let go = go();
        let cache = tempfile::tempdir().expect("tempdir");
        let project = hello(HELLO_FILES, "hello v1.2.3");
        let mut lines = Vec::new();
        let bin = ensure_project(&go, cache.path(), &project, &mut |l| {
            lines.push(l.to_string())
        })
        .expect("build");
        assert!(
            lines.iter().any(|l| l.contains("building hello")),
            "{lines:?}"
        );
        let out = std::process::Command::new(bin.join("hello"))
            .output()
            .expect("run");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "hello v1.2.3\n");
        let dir = project_dir(cache.path(), &project, &go.version);
        assert_eq!(bin, dir.join("bin"));
        let record: serde_json::Value =
            serde_json::from_str(&fs::read_to_string(dir.join("build.json")).expect("record"))
                .expect("json");
        assert_eq!(record["version"], "v1.2.3");
        assert!(!dir.join("src").exists(), "the scratch sources are removed");

        let mut again = Vec::new();
        let bin2 = ensure_project(&go, cache.path(), &project, &mut |l| {
            again.push(l.to_string())
        })
        .expect("cached");
        assert_eq!(bin, bin2);
        assert!(again.iter().all(|l| !l.contains("building")), "{again:?}");
        assert!(again.iter().any(|l| l.contains("cached")), "{again:?}");
    }

    #[test]
    fn concurrent_callers_build_once() {
        let go = go();
        let cache = tempfile::tempdir().expect("tempdir");
        let project = hello(HELLO_FILES, "hello v1.2.3");
        let builds = std::sync::atomic::AtomicUsize::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    ensure_project(&go, cache.path(), &project, &mut |l| {
                        if l.contains("building hello") {
                            builds.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    })
                    .expect("build");
                });
            }
        });
        assert_eq!(builds.load(std::sync::atomic::Ordering::SeqCst), 1);
        let leftovers: Vec<_> = fs::read_dir(cache.path().join("hello"))
            .expect("dir")
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with(".build-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn a_build_error_names_module_step_and_go_output() {
        const BROKEN: &[(&str, &str)] = &[
            ("go.mod", "module example.test/hello\n\ngo 1.26.0\n"),
            (
                "main.go",
                "package main\n\nfunc main() { undefinedThing() }\n",
            ),
        ];
        let cache = tempfile::tempdir().expect("tempdir");
        let err =
            ensure_project(&go(), cache.path(), &hello(BROKEN, "x"), &mut |_| {}).unwrap_err();
        assert_eq!(err.step, Step::Build);
        assert_eq!(err.module, "example.test/hello");
        assert!(
            err.output.contains("undefined: undefinedThing"),
            "{}",
            err.output
        );
        let text = err.to_string();
        assert!(
            text.starts_with("hello v1.2.3 (example.test/hello): build failed"),
            "{text}"
        );
        assert!(text.contains("help: "), "{text}");
        assert!(!project_dir(cache.path(), &hello(BROKEN, "x"), &go().version).exists());
    }

    #[test]
    fn a_missing_version_stamp_is_a_stamp_error() {
        let cache = tempfile::tempdir().expect("tempdir");
        let err = ensure_project(
            &go(),
            cache.path(),
            &hello(HELLO_FILES, "hello v9.9.9"),
            &mut |_| {},
        )
        .unwrap_err();
        assert_eq!(err.step, Step::Stamp);
        assert!(err.output.contains("hello v1.2.3"), "{}", err.output);
    }

    #[test]
    fn an_unserved_module_is_a_download_error() {
        const MISSING: &[(&str, &str)] = &[
            (
                "go.mod",
                "module example.test/hello\n\ngo 1.26.0\n\nrequire example.invalid/nothing v1.0.0\n",
            ),
            ("go.sum", ""),
            ("main.go", "package main\n\nfunc main() {}\n"),
        ];
        let cache = tempfile::tempdir().expect("tempdir");
        let err =
            ensure_project(&go(), cache.path(), &hello(MISSING, "x"), &mut |_| {}).unwrap_err();
        assert_eq!(err.step, Step::Download, "{err}");
        assert!(
            err.output.contains("example.invalid/nothing"),
            "{}",
            err.output
        );
    }
}
