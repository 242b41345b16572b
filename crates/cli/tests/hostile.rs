//! The hostile-input suite (issue 10): every case of the trial, run through the real binary.
//! For each run, whatever the input: the exit code is 0, 1 or 2; the process stays under
//! 1 GiB of resident memory (its own peak, from wait4's rusage) and 20 seconds; no secret
//! marker (in clear or base64) appears in stdout, stderr or any written file; nothing is
//! written outside the directory the command was given; and no injected command runs.
//!
//! Output-directory handling (`plan -o`/`snapshot -o` over symlinks, overwrite) and escaping
//! of control characters in human output are covered where those are implemented; this suite
//! only requires that they never leak, crash or escape.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test
#![allow(unsafe_code)] // wait4: std's Child::wait does not expose the child's peak memory

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// The binary under test; `CNISWAP_TEST_BIN` points the suite at another build (to show that
/// it fails on a cniswap without the fixes).
fn bin() -> String {
    std::env::var("CNISWAP_TEST_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_cniswap").to_string())
}
const MAX_RSS_KIB: i64 = 1 << 20;
const MAX_WALL: Duration = Duration::from_secs(20);
const MARKER: &str = "HOSTILEMARKER";

// ------------------------------------------------------------------------------ harness

/// What one run did.
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
    rss_kib: i64,
    wall: Duration,
}

/// A case directory: `work/` is the working directory and everything the command is allowed
/// to write goes under it (every file there is searched for markers); `input/` holds inputs
/// that carry secrets; `outside/` holds files that must not change.
struct Case {
    dir: tempfile::TempDir,
    name: String,
}

impl Case {
    fn new(name: &str) -> Case {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("work")).unwrap();
        std::fs::create_dir_all(dir.path().join("outside")).unwrap();
        std::fs::write(dir.path().join("outside/victim.txt"), "keep me\n").unwrap();
        Case {
            dir,
            name: name.to_string(),
        }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn work(&self) -> PathBuf {
        self.path("work")
    }

    fn write(&self, rel: &str, content: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, content).unwrap();
        path
    }

    fn fifo(&self, rel: &str) -> PathBuf {
        let path = self.path(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        assert!(
            Command::new("mkfifo")
                .arg(&path)
                .status()
                .unwrap()
                .success()
        );
        path
    }

    /// Runs cniswap and checks the invariants every run must keep.
    fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[])
    }

    fn run_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        self.run_program(&bin(), args, env)
    }

    /// Runs `program` (cniswap, or `ip netns exec ... cniswap`, which execs it in place).
    fn run_program(&self, program: &str, args: &[&str], env: &[(&str, &str)]) -> Run {
        let before = snapshot_tree(&self.path("outside"));
        let top_before = top_level(self.dir.path());
        let run = run_measured(program, &self.work(), args, env);
        let what = format!("[{}] {program} {}", self.name, args.join(" "));
        assert!(
            matches!(run.code, 0..=2),
            "{what}: exit {} (only 0, 1, 2 are documented)\n{}",
            run.code,
            run.stderr
        );
        assert!(
            !run.stderr.contains("panicked") && !run.stderr.contains("RUST_BACKTRACE"),
            "{what}: panic\n{}",
            run.stderr
        );
        assert!(
            run.rss_kib <= MAX_RSS_KIB,
            "{what}: peak RSS {} MiB",
            run.rss_kib / 1024
        );
        assert!(run.wall <= MAX_WALL, "{what}: took {:?}", run.wall);
        assert_eq!(
            before,
            snapshot_tree(&self.path("outside")),
            "{what}: changed files outside its directories"
        );
        assert_eq!(
            top_before,
            top_level(self.dir.path()),
            "{what}: created something next to its directories"
        );
        assert!(
            !self.path("pwned").exists() && !self.work().join("pwned").exists(),
            "{what}: an injected command ran"
        );
        for (label, text) in [("stdout", &run.stdout), ("stderr", &run.stderr)] {
            assert_no_marker(&what, label, text);
        }
        for (file, text) in files_under(&self.work()) {
            assert_no_marker(&what, &file, &text);
        }
        run
    }
}

fn assert_no_marker(what: &str, label: &str, text: &str) {
    assert!(
        !text.contains(MARKER),
        "{what}: a secret marker reached {label}:\n{}",
        excerpt(text, MARKER)
    );
    for encoded in marker_base64() {
        assert!(
            !text.contains(&encoded),
            "{what}: a base64 secret marker reached {label}:\n{}",
            excerpt(text, &encoded)
        );
    }
}

fn excerpt(text: &str, needle: &str) -> String {
    let at = text.find(needle).unwrap_or(0);
    let start = text[..at]
        .char_indices()
        .rev()
        .nth(200)
        .map_or(0, |(i, _)| i);
    text[start..].chars().take(400).collect()
}

/// The base64 forms of the marker as it appears inside encoded secrets (three alignments).
fn marker_base64() -> Vec<String> {
    (0..3)
        .map(|pad| {
            let encoded = base64(format!("{}{MARKER}", "x".repeat(pad)).as_bytes());
            // Drop the characters that depend on the padding prefix and the tail.
            let skip = (pad * 4).div_ceil(3);
            encoded[skip..encoded.len() - 4].to_string()
        })
        .collect()
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Every file below `dir` (not following links), with its content.
fn files_under(dir: &Path) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for entry in entries.flatten() {
            let ft = entry.file_type().unwrap();
            if ft.is_dir() {
                stack.push(entry.path());
            } else if ft.is_file() {
                // A sparse file of gigabytes is an input the test planted, not an output.
                if entry.metadata().is_ok_and(|m| m.len() > 64 << 20) {
                    continue;
                }
                let bytes = std::fs::read(entry.path()).unwrap_or_default();
                out.push((
                    entry.path().display().to_string(),
                    String::from_utf8_lossy(&bytes).into_owned(),
                ));
            }
        }
    }
    out
}

fn snapshot_tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap().flatten() {
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            let key = entry.path().display().to_string();
            if meta.is_dir() {
                stack.push(entry.path());
                out.insert(key, b"<dir>".to_vec());
            } else if meta.is_file() {
                out.insert(key, std::fs::read(entry.path()).unwrap());
            } else {
                out.insert(key, format!("{:?}", meta.file_type()).into_bytes());
            }
        }
    }
    out
}

fn top_level(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// Runs the binary with stdout and stderr in files (a full pipe would stall it), polls wait4
/// for its own peak RSS, and kills it past the time limit.
#[allow(clippy::zombie_processes)] // reaped by wait4 below, which also gives its rusage
fn run_measured(program: &str, cwd: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    static N: AtomicUsize = AtomicUsize::new(0);
    let logs = tempfile::tempdir().unwrap();
    let n = N.fetch_add(1, Ordering::SeqCst);
    let (out_path, err_path) = (
        logs.path().join(format!("{n}.out")),
        logs.path().join(format!("{n}.err")),
    );
    let mut command = Command::new(program);
    command
        .args(args)
        .current_dir(cwd)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    for (k, v) in env {
        command.env(k, v);
    }
    let start = Instant::now();
    let mut child = command.spawn().unwrap();
    let pid = child.id() as libc::pid_t;
    let (code, rss_kib) = loop {
        let mut status: libc::c_int = 0;
        // SAFETY: rusage is plain data that wait4 fills for our own child; nothing else waits
        // for it (std's Child is only used to kill it).
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        assert!(rc >= 0, "wait4: {}", std::io::Error::last_os_error());
        if rc == pid {
            let code = if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            };
            break (code, usage.ru_maxrss);
        }
        if start.elapsed() > MAX_WALL + Duration::from_secs(10) {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    Run {
        code,
        stdout: String::from_utf8_lossy(&std::fs::read(&out_path).unwrap()).into_owned(),
        stderr: String::from_utf8_lossy(&std::fs::read(&err_path).unwrap()).into_owned(),
        rss_kib,
        wall: start.elapsed(),
    }
}

/// The flag that names an output directory for `plan`/`snapshot`, and the one that picks a
/// lint format: the CLI is moving to `-o FORMAT` + `--out-dir DIR`, so ask its help.
fn out_dir_flag(command: &str) -> &'static str {
    let help = Command::new(bin())
        .args([command, "--help"])
        .output()
        .unwrap();
    if String::from_utf8_lossy(&help.stdout).contains("--out-dir") {
        "--out-dir"
    } else {
        "-o"
    }
}

fn lint_format_flag() -> &'static str {
    let help = Command::new(bin())
        .args(["lint", "--help"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&help.stdout);
    if text.contains("--output <FORMAT>") || text.contains("--output <OUTPUT>") {
        "--output"
    } else {
        "--format"
    }
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// The example cluster, copied into `dest` (a snapshot the planner can use).
fn copy_example(dest: &Path) {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/talos-flannel-homelab");
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let rel = entry.path().strip_prefix(&src).unwrap().to_path_buf();
            if entry.file_type().unwrap().is_dir() {
                stack.push(entry.path());
            } else {
                let to = dest.join(rel);
                std::fs::create_dir_all(to.parent().unwrap()).unwrap();
                std::fs::copy(entry.path(), to).unwrap();
            }
        }
    }
}

/// A throwaway network namespace for node commands (removed even after a panic).
struct Netns(String);

impl Netns {
    fn new() -> Netns {
        static N: AtomicUsize = AtomicUsize::new(0);
        let name = format!(
            "cniswap-hostile-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        );
        let ok = Command::new("ip")
            .args(["netns", "add", &name])
            .status()
            .unwrap();
        assert!(ok.success(), "ip netns add (this test needs root)");
        Netns(name)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip").args(["netns", "del", &self.0]).status();
    }
}

// ------------------------------------------------------------------------------ §1 names

const NODE_OK: &str = "apiVersion: v1\nkind: Node\nmetadata:\n  name: talos-w-1\nstatus:\n  addresses:\n  - {type: InternalIP, address: 192.168.1.72}\n";

#[test]
fn hostile_names_and_addresses_are_input_errors_naming_the_object() {
    let pwned = |case: &Case| format!("touch {}", s(&case.path("pwned")));
    type Content = Box<dyn Fn(&Case) -> String>;
    let cases: Vec<(&str, Content, &str)> = vec![
        (
            "node name",
            Box::new(move |c: &Case| {
                NODE_OK.replace(
                    "name: talos-w-1",
                    &format!("name: \"talos-w-1;{};#\"", pwned(c)),
                )
            }),
            "talos-w-1;",
        ),
        (
            "node address",
            Box::new(move |c: &Case| {
                NODE_OK.replace(
                    "address: 192.168.1.72",
                    &format!("address: \"192.168.1.72 version; {} #\"", pwned(c)),
                )
            }),
            "192.168.1.72 version",
        ),
        (
            "pod name with a newline",
            Box::new(move |c: &Case| {
                format!(
                    "{NODE_OK}---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: \"p\\n# {}\"\n  namespace: default\nspec:\n  nodeName: talos-w-1\n",
                    pwned(c)
                )
            }),
            "Pod",
        ),
        (
            "namespace",
            Box::new(|_: &Case| {
                format!(
                    "{NODE_OK}---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: \"kube-system$(id)\"\n"
                )
            }),
            "Namespace",
        ),
        (
            "label value",
            Box::new(|_: &Case| {
                NODE_OK.replace(
                    "  name: talos-w-1\n",
                    "  name: talos-w-1\n  labels:\n    topology.kubernetes.io/zone: \"a\\nb: c\"\n",
                )
            }),
            "labels",
        ),
    ];
    for (what, content, named) in cases {
        let case = Case::new(what);
        let snap = case.work().join("snap");
        case.write("work/snap/cluster/nodes.yaml", content(&case));
        let out_flag = out_dir_flag("plan");
        for args in [
            vec!["inspect", "--snapshot", s(&snap)],
            vec!["lint", "--snapshot", s(&snap)],
            vec![
                "plan",
                "--snapshot",
                s(&snap),
                "--to",
                "cilium",
                out_flag,
                "plan-out",
            ],
        ] {
            let run = case.run(&args);
            assert_eq!(run.code, 2, "[{what}] {args:?}: {}", run.stderr);
            assert!(
                run.stderr.contains("nodes.yaml:"),
                "[{what}] names the file at a line: {}",
                run.stderr
            );
            assert!(
                run.stderr.contains(named),
                "[{what}] names the object: {}",
                run.stderr
            );
        }
        assert!(
            !case.work().join("plan-out").exists(),
            "[{what}] no plan written"
        );
    }

    // An Omni label value with a newline (it injected a key into artifacts/omni/*.yaml).
    let case = Case::new("omni label");
    let snap = case.work().join("snap");
    copy_example(&snap);
    case.write(
        "work/snap/omni/patch.yaml",
        "metadata:\n  namespace: default\n  type: ConfigPatches.omni.sidero.dev\n  id: 400-cni\n  labels:\n    omni.sidero.dev/cluster: \"homelab\\ninjected: true\"\nspec:\n  data: |\n    cluster:\n      network:\n        cni:\n          name: none\n",
    );
    let run = case.run(&[
        "plan",
        "--snapshot",
        s(&snap),
        "--to",
        "cilium",
        out_dir_flag("plan"),
        "plan-out",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("omni/patch.yaml:6"), "{}", run.stderr);
    // A talosctl resource whose node is a command.
    let case = Case::new("talosctl node");
    case.write(
        "work/snap/talos/mc.yaml",
        format!("node: \"192.168.1.72 version; touch {} #\"\nmetadata:\n  type: MachineConfigs.config.talos.dev\nspec: |\n  version: v1alpha1\n  machine: {{type: worker}}\n", s(&case.path("pwned"))),
    );
    let run = case.run(&["inspect", "--snapshot", s(&case.work().join("snap"))]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("talos/mc.yaml:1"), "{}", run.stderr);
}

// ------------------------------------------------------------------------------ §2, §3 node

fn backup_manifest(case: &Case, paths: &[&str], schema: u32) -> PathBuf {
    let actions: Vec<String> = paths
        .iter()
        .map(|p| format!("{{\"action\": \"file-move\", \"path\": {p:?}}}"))
        .collect();
    case.write(
        "work/backup/cniswap-backup.json",
        format!(
            "{{\"schema_version\": {schema}, \"plan\": {{\"cni\": \"flannel\", \"node\": \"n1\", \"actions\": [{}], \"kept\": []}}}}",
            actions.join(",")
        ),
    );
    case.work().join("backup")
}

#[test]
fn node_restore_stays_inside_the_backup_and_the_root() {
    for bad in [
        "../X/evil.conf",
        "../../victim.txt",
        "../../outside/victim.txt",
        "/etc/cni/net.d/10-evil.conflist",
        "etc/../../../outside/victim.txt",
        "deep/er/../../../../../outside/new.conf",
    ] {
        let case = Case::new(&format!("restore {bad}"));
        std::fs::create_dir_all(case.work().join("root")).unwrap();
        case.write("work/backup/files/etc/cni/net.d/10-flannel.conflist", "{}");
        case.write("work/backup/X/evil.conf", "{}");
        let backup = backup_manifest(&case, &["etc/cni/net.d/10-flannel.conflist", bad], 1);
        let run = case.run(&[
            "node",
            "restore",
            "--backup",
            s(&backup),
            "--root",
            s(&case.work().join("root")),
        ]);
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
        assert!(
            run.stderr.contains("nothing was changed"),
            "{bad}: {}",
            run.stderr
        );
        assert!(
            !case.work().join("root/etc").exists(),
            "{bad}: nothing restored, no directory created"
        );
    }
    // A link inside the backup, and one inside the root.
    let case = Case::new("restore through links");
    std::fs::create_dir_all(case.work().join("root/etc")).unwrap();
    std::fs::create_dir_all(case.work().join("backup/files/etc")).unwrap();
    case.write("outside/net.d/x.conf", "{}");
    std::os::unix::fs::symlink(
        case.path("outside/net.d"),
        case.work().join("backup/files/etc/cni"),
    )
    .unwrap();
    let backup = backup_manifest(&case, &["etc/cni/x.conf"], 1);
    let run = case.run(&[
        "node",
        "restore",
        "--backup",
        s(&backup),
        "--root",
        s(&case.work().join("root")),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let case = Case::new("restore into a linked root dir");
    std::fs::create_dir_all(case.work().join("root/etc")).unwrap();
    case.write("work/backup/files/etc/cni/x.conf", "{}");
    std::os::unix::fs::symlink(case.path("outside"), case.work().join("root/etc/cni")).unwrap();
    let backup = backup_manifest(&case, &["etc/cni/x.conf"], 1);
    let run = case.run(&[
        "node",
        "restore",
        "--backup",
        s(&backup),
        "--root",
        s(&case.work().join("root")),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    // An unknown schema version.
    let case = Case::new("restore schema 99");
    std::fs::create_dir_all(case.work().join("root")).unwrap();
    let backup = backup_manifest(&case, &[], 99);
    let run = case.run(&[
        "node",
        "restore",
        "--backup",
        s(&backup),
        "--root",
        s(&case.work().join("root")),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("schema_version 99"), "{}", run.stderr);
}

#[test]
fn node_clean_and_inventory_touch_only_cni_directories_and_never_hang() {
    let netns = Netns::new();
    for bin_dir in ["/usr/bin", "/opt/cni/../../usr/bin", "../../../usr/bin"] {
        let case = Case::new(&format!("clean bin_dir {bin_dir}"));
        let root = case.work().join("root");
        case.write(
            "work/root/etc/containerd/config.toml",
            format!("version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"{bin_dir}\"\n  conf_dir = \"/etc/cni/net.d\"\n"),
        );
        case.write("work/root/usr/bin/install", "#!/bin/sh\n");
        case.write("work/root/usr/bin/calico", "#!/bin/sh\n");
        case.write("work/root/opt/cni/bin/install", "#!/bin/sh\n");
        let run = case.run_program(
            "ip",
            &[
                "netns",
                "exec",
                &netns.0,
                &bin(),
                "node",
                "clean",
                "--cni",
                "calico",
                "--dry-run",
                "--root",
                s(&root),
            ],
            &[],
        );
        assert!(
            !run.stdout.contains("usr/bin/install") && !run.stdout.contains("usr/bin/calico into"),
            "{bin_dir}: plans to move a system file:\n{}",
            run.stdout
        );
        assert!(
            !run.stdout.contains("opt/cni/bin/install into"),
            "`install` is not Calico's beyond doubt:\n{}",
            run.stdout
        );
    }
    // A FIFO in the CNI config directory and as the containerd config.
    let case = Case::new("inventory fifo");
    let root = case.work().join("root");
    case.fifo("work/root/etc/cni/net.d/05-evil.conflist");
    case.fifo("work/root/etc/containerd/config.toml");
    case.fifo("work/root/etc/hostname");
    case.write(
        "work/root/etc/cni/net.d/10-flannel.conflist",
        "{\"cniVersion\":\"1.0.0\",\"plugins\":[{\"type\":\"flannel\"}]}",
    );
    let run = case.run_program(
        "ip",
        &[
            "netns",
            "exec",
            &netns.0,
            &bin(),
            "node",
            "inventory",
            "--root",
            s(&root),
            "-o",
            "json",
        ],
        &[],
    );
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    assert!(
        run.stdout.contains("FIFO"),
        "the FIFO is listed with its reason:\n{}",
        run.stdout
    );
}

// ------------------------------------------------------------------------------ §4 secrets

/// A Talos config with a marker in every secret field of issue 10 §4 and issue 9 §4.
fn talos_with_secrets() -> String {
    let b64 = |s: &str| base64(s.as_bytes());
    format!(
        r#"version: v1alpha1
machine:
  type: controlplane
  token: {m}-machine-token
  ca:
    crt: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t
    key: {m}-machine-ca-key
  env:
    https_proxy: http://proxyuser:{m}-proxy@proxy.example:3128
  registries:
    config:
      registry.example:
        auth:
          username: someone
          password: {m}-registry-password
          auth: {auth}
          identityToken: {m}-identity-token
  systemDiskEncryption:
    state:
      provider: luks2
      keys:
        - static:
            passphrase: {m}-disk-passphrase
          slot: 0
  kubelet:
    extraArgs:
      bootstrap-token: {m}-bootstrap-token
  files:
    - path: /var/etc/kubeconfig
      permissions: 0o600
      op: create
      content: |
        users:
          - name: admin
            user:
              client-key-data: {keydata}
              token: {m}-file-token
  features:
    kubePrism:
      enabled: true
      port: 7445
  network:
    hostname: talos-cp-1
cluster:
  id: {m}-cluster-id
  secret: {m}-cluster-secret
  token: {m}-cluster-token
  clusterName: homelab
  controlPlane:
    endpoint: https://192.168.1.60:6443
  network:
    podSubnets: [10.244.0.0/16]
    serviceSubnets: [10.96.0.0/12]
  apiServer:
    extraArgs:
      oidc-client-secret: {m}-oidc
  extraManifestHeaders:
    Authorization: Bearer {m}-bearer
  extraManifests:
    - https://example.com/manifest.yaml?token={m}-query
  inlineManifests:
    - name: creds
      contents: |
        apiVersion: v1
        kind: Secret
        metadata:
          name: creds
          namespace: kube-system
        data:
          password: {secret_data}
        stringData:
          kubeconfig: |
            users:
            - name: x
              user:
                client-key-data: {keydata}
    - name: kubeconfig
      contents: |
        apiVersion: v1
        kind: Config
        users:
        - name: admin
          user:
            token: {m}-inline-kubeconfig-token
"#,
        m = MARKER,
        auth = b64(&format!("someone:{MARKER}-registry-auth")),
        keydata = b64(&format!("{MARKER}-client-key-data")),
        secret_data = b64(&format!("{MARKER}-secret-data")),
    )
}

fn secrets_snapshot(case: &Case) -> PathBuf {
    let snap = case.path("input/snap");
    copy_example(&snap);
    case.write("input/snap/talos/controlplane.yaml", talos_with_secrets());
    // A YAML alias into a secret field, and the anchor it names.
    case.write(
        "input/snap/talos/worker.yaml",
        format!("version: v1alpha1\nmachine:\n  type: worker\n  nodeLabels:\n    note: &t {MARKER}-anchored\n  token: *t\ncluster:\n  secret: *t\n"),
    );
    case.write(
        "input/snap/omni/patch.yaml",
        format!("metadata:\n  namespace: default\n  type: ConfigPatches.omni.sidero.dev\n  id: 400-cni\n  labels:\n    omni.sidero.dev/cluster: homelab\nspec:\n  data: |\n    machine:\n      token: {MARKER}-omni-token\n    cluster:\n      network:\n        cni:\n          name: none\n"),
    );
    case.write(
        "input/snap/helm/cilium.yaml",
        format!("kubeProxyReplacement: true\nk8sServiceHost: localhost\nk8sServicePort: 7445\nhubble:\n  tls:\n    server:\n      cert: LS0tCERT\n      key: {MARKER}-hubble-key\nclustermesh:\n  apiserver:\n    tls:\n      ca:\n        key: {MARKER}-clustermesh-ca-key\n"),
    );
    case.write(
        "input/snap/cluster/secrets.yaml",
        format!(
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kubeadm-config\n  namespace: kube-system\ndata:\n  ClusterConfiguration: |\n    apiServer:\n      extraArgs:\n        oidc-client-secret: {MARKER}-kubeadm-oidc\n    networking:\n      podSubnet: 10.244.0.0/16\n---\napiVersion: v1\nkind: Pod\nmetadata:\n  name: kube-apiserver-talos-cp-1\n  namespace: kube-system\nspec:\n  nodeName: talos-cp-1\n  containers:\n  - name: kube-apiserver\n    command: [kube-apiserver, --oidc-client-secret={MARKER}-apiserver-arg, --service-cluster-ip-range=10.96.0.0/12]\n---\napiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: default\ndata:\n  token: {}\n",
            base64(format!("{MARKER}-cluster-secret-object").as_bytes())
        ),
    );
    snap
}

#[test]
fn secrets_never_reach_any_output_at_any_verbosity() {
    let case = Case::new("secrets");
    let snap = secrets_snapshot(&case);
    let snap = s(&snap);
    let format = lint_format_flag();
    let snapshot_out = out_dir_flag("snapshot");
    let plan_out = out_dir_flag("plan");
    let mut runs: Vec<Vec<&str>> = vec![
        vec!["inspect", "--snapshot", snap],
        vec!["inspect", "--snapshot", snap, "-o", "json"],
        vec!["inspect", "--snapshot", snap, "-o", "yaml"],
        vec!["snapshot", "--snapshot", snap, snapshot_out, "snap-out"],
        vec![
            "plan",
            "--snapshot",
            snap,
            "--to",
            "cilium",
            plan_out,
            "plan-out",
            "--force",
        ],
        vec![
            "plan",
            "--snapshot",
            snap,
            "--to",
            "calico",
            plan_out,
            "plan-out-calico",
            "--force",
        ],
    ];
    for f in ["text", "json", "sarif", "github"] {
        runs.push(vec!["lint", "--snapshot", snap, format, f]);
        runs.push(vec!["lint", snap, format, f]);
    }
    // Each run writes into a directory of its own (output directories are never reused).
    let mut used = std::collections::HashSet::new();
    let mut fresh = |args: &[&str]| -> Vec<String> {
        args.iter()
            .map(|a| match *a {
                "snap-out" | "plan-out" | "plan-out-calico" => {
                    let mut name = a.to_string();
                    while !used.insert(name.clone()) {
                        name = format!("{a}-{}", used.len());
                    }
                    name
                }
                a => a.to_string(),
            })
            .collect()
    };
    for args in &runs {
        for verbosity in [None, Some("-v"), Some("-vvv")] {
            let mut full: Vec<String> = verbosity.into_iter().map(str::to_string).collect();
            full.extend(fresh(args));
            let full: Vec<&str> = full.iter().map(String::as_str).collect();
            let run = case.run(&full);
            assert_ne!(run.code, 2, "{full:?}: {}", run.stderr);
        }
        let args = fresh(args);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        case.run_env(&args, &[("RUST_LOG", "trace")]);
    }
    // The outputs searched were really written.
    for written in [
        "plan-out/plan.yaml",
        "plan-out/runbook.md",
        "plan-out-calico/plan.yaml",
        "snap-out/talos",
    ] {
        assert!(case.work().join(written).exists(), "{written} was written");
    }
    // The snapshot written is read again, and still holds no secret.
    let again = case.run(&[
        "inspect",
        "--snapshot",
        s(&case.work().join("snap-out")),
        "-o",
        "json",
    ]);
    assert_ne!(again.code, 2, "{}", again.stderr);
    assert!(
        again.stdout.contains("cluster.id"),
        "redacted paths are listed: {}",
        again.stdout
    );

    // --values with a parse error on a line that holds a password.
    let values = case.write(
        "input/values.yaml",
        format!("hubble:\n  relay:\n    password: {MARKER}-values\n  bad: [unclosed\n"),
    );
    let run = case.run(&[
        "plan",
        "--snapshot",
        snap,
        "--to",
        "cilium",
        "--values",
        s(&values),
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("values.yaml:"),
        "points at the file: {}",
        run.stderr
    );
    // A live read that fails never shows the kubeconfig's token, at any verbosity.
    let kubeconfig = case.write(
        "input/kubeconfig",
        format!("apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:9\n    insecure-skip-tls-verify: true\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\nusers:\n- name: u\n  user: {{token: {MARKER}-kubeconfig-token}}\n"),
    );
    for verbosity in ["-v", "-vvv"] {
        let run = case.run(&[verbosity, "inspect", "--kubeconfig", s(&kubeconfig)]);
        assert_eq!(run.code, 2, "{}", run.stderr);
    }
    case.run_env(
        &["inspect", "--kubeconfig", s(&kubeconfig)],
        &[("RUST_LOG", "trace")],
    );
}

// ------------------------------------------------------------------------------ §5 budgets

#[test]
fn amplification_nesting_and_size_end_in_budget_errors_within_limits() {
    let big = "x".repeat(64 * 1024);
    let mut bomb = format!("machine:\n  a: &big {big}\n  list:\n");
    for _ in 0..80_000 {
        bomb.push_str("    - *big\n");
    }
    let mut cluster_bomb = format!(
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: default\n  annotations:\n    x: &big {big}\n  labels:\n"
    );
    for i in 0..80_000 {
        cluster_bomb.push_str(&format!("    l{i}: *big\n"));
    }
    let deep = format!("machine:\n  x:\n  {}x\n", "- ".repeat(15_000));
    let flow = format!(
        "machine:\n  x: {}{}\n",
        "[".repeat(15_000),
        "]".repeat(15_000)
    );
    for (what, rel, content) in [
        ("alias bomb in talos", "talos/c.yaml", bomb.clone()),
        ("alias bomb in helm", "helm/cilium.yaml", bomb.clone()),
        ("alias bomb in omni", "omni/p.yaml", bomb.clone()),
        (
            "alias bomb in cluster",
            "cluster/pods.yaml",
            cluster_bomb.clone(),
        ),
        ("deep block nesting", "talos/c.yaml", deep.clone()),
        ("deep flow nesting", "talos/c.yaml", flow.clone()),
        ("deep nesting in cluster", "cluster/x.yaml", deep.clone()),
    ] {
        let case = Case::new(what);
        case.write(&format!("work/snap/{rel}"), &content);
        let run = case.run(&["inspect", "--snapshot", "snap"]);
        assert_eq!(run.code, 2, "[{what}] {}", run.stderr);
        assert!(
            run.stderr.contains(rel),
            "[{what}] names the file: {}",
            run.stderr
        );
        // The same file linted as part of a repository.
        // Linted as part of a repository, it is listed as not read, with the budget, and the
        // rest of the repository is still checked (issue 9 §4).
        let run = case.run(&["lint", "snap"]);
        assert!(
            (run.stdout.contains("over the limit") || run.stdout.contains("recursion limit"))
                && run.stderr.contains("could not be read"),
            "[{what}] {}\n{}",
            run.stdout,
            run.stderr
        );
    }
    // A 200 MB token in talos/: refused by its size before it is read.
    let case = Case::new("200 MB token");
    let file = case.write("work/snap/talos/c.yaml", "machine:\n  token: ");
    {
        use std::io::Write;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&file)
            .unwrap();
        let chunk = vec![b't'; 1 << 20];
        for _ in 0..200 {
            f.write_all(&chunk).unwrap();
        }
        f.write_all(b"\n").unwrap();
    }
    let run = case.run(&["inspect", "--snapshot", "snap"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("CNISWAP_MAX_FILE_BYTES"),
        "says how to raise it: {}",
        run.stderr
    );
    // Budgets are raised (and validated) through the environment.
    let run = case.run_env(
        &["inspect", "--snapshot", "snap"],
        &[("CNISWAP_MAX_FILE_BYTES", "lots")],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("CNISWAP_MAX_FILE_BYTES=lots"),
        "{}",
        run.stderr
    );
    let case = Case::new("raised depth");
    case.write(
        "work/snap/talos/c.yaml",
        format!("machine:\n  x:\n  {}x\n", "- ".repeat(300)),
    );
    assert_eq!(case.run(&["inspect", "--snapshot", "snap"]).code, 2);
    let run = case.run_env(&["lint", "snap"], &[("CNISWAP_MAX_DEPTH", "400")]);
    assert_ne!(run.code, 2, "{}", run.stderr);
}

// ------------------------------------------------------------------------------ §6 hangs

#[test]
fn fifos_are_skipped_or_refused_never_read() {
    let case = Case::new("fifo");
    let snap = case.work().join("snap");
    copy_example(&snap);
    case.fifo("work/snap/cluster/zz-fifo.yaml");
    case.fifo("work/snap/talos/fifo.yaml");
    let run = case.run(&["inspect", "--snapshot", "snap", "-o", "json"]);
    assert!(run.code == 0 || run.code == 1, "{}", run.stderr);
    assert!(
        run.stdout.contains("FIFO"),
        "listed as skipped with the reason"
    );
    let run = case.run(&["inspect", "--snapshot", "snap/talos/fifo.yaml"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let run = case.run(&["lint", "snap/talos/fifo.yaml"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    case.fifo("work/values.yaml");
    let run = case.run(&[
        "plan",
        "--snapshot",
        "snap",
        "--to",
        "cilium",
        "--values",
        "values.yaml",
    ]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("FIFO"), "{}", run.stderr);
    case.fifo("work/.cniswap.yaml");
    let run = case.run(&["lint", "snap/talos/controlplane.yaml"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
}

// ------------------------------------------------------------------------------ §8 linear time

#[test]
fn large_multi_document_configs_and_templates_finish_in_time() {
    let case = Case::new("multidoc");
    let mut text = String::from("version: v1alpha1\nmachine:\n  type: controlplane\n");
    for i in 0..20_000 {
        text.push_str(&format!("---\napiVersion: v1alpha1\nkind: ExtensionServiceConfig\nname: s{i}\nenvironment: [A={i}]\n"));
    }
    case.write("work/snap/talos/controlplane.yaml", &text);
    case.write("work/snap/cluster/nodes.yaml", NODE_OK);
    case.run(&["inspect", "--snapshot", "snap"]);
    let case = Case::new("tftpl");
    let mut text = String::from("version: v1alpha1\nmachine:\n  type: ${type}\n");
    for i in 0..5_000 {
        text.push_str(&format!("  setting{i}: ${{value_{i}}}\n"));
    }
    case.write("work/repo/controlplane.yaml.tftpl", &text);
    let run = case.run(&["lint", "repo"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
}

// ------------------------------------------------------------------------------ §10 garbage

#[test]
fn garbage_values_are_input_errors_at_file_and_line() {
    let talos = |network: &str| {
        format!(
            "version: v1alpha1\nmachine:\n  type: controlplane\ncluster:\n  network:\n{network}"
        )
    };
    let cases: Vec<(&str, &str, String, &str)> = vec![
        ("cidr /99", "talos/c.yaml", talos("    podSubnets: [10.244.0.0/99]\n"), "c.yaml:6"),
        ("cidr ::/200", "talos/c.yaml", talos("    serviceSubnets: [\"::/200\"]\n"), "c.yaml:6"),
        ("cidr 300.0.0.0/8", "talos/c.yaml", talos("    podSubnets: [300.0.0.0/8]\n"), "c.yaml:6"),
        ("podSubnets as a string", "talos/c.yaml", talos("    podSubnets: 10.244.0.0/16\n"), "c.yaml:6"),
        (
            "kubeprism port 99999",
            "talos/c.yaml",
            "version: v1alpha1\nmachine:\n  type: worker\n  features:\n    kubePrism:\n      enabled: true\n      port: 99999\n".into(),
            "c.yaml:7",
        ),
        ("cilium port 70000", "helm/cilium.yaml", "kubeProxyReplacement: true\ntunnelPort: 70000\n".into(), "cilium.yaml:2"),
        ("cilium port -1", "helm/cilium.yaml", "kubeProxyReplacement: true\ntunnelPort: -1\n".into(), "cilium.yaml:2"),
        (
            "flannel port 70000",
            "cluster/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kube-flannel-cfg\n  namespace: kube-flannel\ndata:\n  net-conf.json: '{\"Network\": \"10.244.0.0/16\", \"Backend\": {\"Type\": \"vxlan\", \"Port\": 70000}}'\n".into(),
            "cm.yaml:",
        ),
        (
            "net-conf.json not JSON",
            "cluster/cm.yaml",
            "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: kube-flannel-cfg\n  namespace: kube-flannel\ndata:\n  net-conf.json: 'Network = 10.244.0.0/16'\n".into(),
            "cm.yaml:",
        ),
        (
            "calico pool /99",
            "cluster/pool.yaml",
            "apiVersion: crd.projectcalico.org/v1\nkind: IPPool\nmetadata:\n  name: default\nspec:\n  cidr: 10.0.0.0/99\n".into(),
            "pool.yaml:",
        ),
        ("podCIDR 42", "cluster/nodes.yaml", format!("{NODE_OK}spec:\n  podCIDR: 42\n"), "nodes.yaml:"),
        (
            "hostNetwork string",
            "cluster/pods.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: p\n  namespace: default\nspec:\n  hostNetwork: \"true\"\n".into(),
            "pods.yaml:",
        ),
    ];
    for (what, rel, content, at) in cases {
        let case = Case::new(what);
        case.write(&format!("work/snap/{rel}"), &content);
        if !rel.starts_with("cluster/") {
            case.write("work/snap/cluster/nodes.yaml", NODE_OK);
        }
        let run = case.run(&["inspect", "--snapshot", "snap"]);
        assert_eq!(run.code, 2, "[{what}] {}", run.stderr);
        assert!(run.stderr.contains(at), "[{what}] at {at}: {}", run.stderr);
    }
    // An inventory with an unknown schema.
    let case = Case::new("inventory schema 99");
    case.write("work/snap/cluster/nodes.yaml", NODE_OK);
    case.write("work/snap/nodes/talos-w-1.json", r#"{"schema_version": 99, "node": "talos-w-1", "root": "/", "agents": [], "items": [], "cni_config": {"conf_dir": "", "bin_dir": "", "files": []}, "unreadable": []}"#);
    let run = case.run(&["inspect", "--snapshot", "snap"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    // /etc/shadow linked as Helm values: never read as a Cilium install.
    let case = Case::new("shadow link");
    case.write("work/snap/cluster/nodes.yaml", NODE_OK);
    case.write(
        "outside/shadow",
        format!("root:$6${MARKER}:19000:0:99999:7:::\n"),
    );
    std::fs::create_dir_all(case.work().join("snap/helm")).unwrap();
    std::os::unix::fs::symlink(
        case.path("outside/shadow"),
        case.work().join("snap/helm/cilium.yaml"),
    )
    .unwrap();
    let run = case.run(&["inspect", "--snapshot", "snap"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("outside"), "{}", run.stderr);
    // A linked directory in a lint tree is not a silent exit 0.
    let case = Case::new("linked dir");
    case.write(
        "outside/cilium/values.yaml",
        "cni:\n  exclusive: false\nkubeProxyReplacement: true\n",
    );
    case.write("work/repo/README.yaml", "a: 1\n");
    std::os::unix::fs::symlink(case.path("outside/cilium"), case.work().join("repo/cilium"))
        .unwrap();
    let run = case.run(&["lint", "repo"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    let case = Case::new("linked dir inside");
    case.write("work/repo/real/cilium-values.yaml", "cni:\n  exclusive: false\nkubeProxyReplacement: true\nk8sServiceHost: api\nk8sServicePort: 6443\n");
    std::os::unix::fs::symlink(
        case.work().join("repo/real"),
        case.work().join("repo/linked"),
    )
    .unwrap();
    let run = case.run(&["lint", "repo"]);
    assert_ne!(run.code, 2, "{}", run.stderr);
}

// ------------------------------------------------------------------------------ §11 smaller

#[test]
fn encodings_values_errors_large_files_and_verbose_logs() {
    let case = Case::new("bom");
    let mut bom = vec![0xEF, 0xBB, 0xBF];
    bom.extend(br#"{"apiVersion":"v1","kind":"Node","metadata":{"name":"n1"}}"#);
    case.write("work/snap/cluster/nodes.json", &bom);
    assert_eq!(case.run(&["inspect", "--snapshot", "snap"]).code, 0);

    let case = Case::new("utf16");
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(NODE_OK.encode_utf16().flat_map(u16::to_le_bytes))
        .collect();
    case.write("work/snap/cluster/nodes.yaml", &utf16);
    let run = case.run(&["inspect", "--snapshot", "snap"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("UTF-16"), "{}", run.stderr);

    let case = Case::new("bad utf8");
    let mut text = NODE_OK.to_string().into_bytes();
    text.extend(b"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: \xff\n");
    case.write("work/snap/cluster/nodes.yaml", &text);
    let run = case.run(&["inspect", "--snapshot", "snap"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("nodes.yaml:12"),
        "the line of the bad byte: {}",
        run.stderr
    );

    let case = Case::new("values errors");
    copy_example(&case.work().join("snap"));
    case.write("work/my-values.yaml", "a: [1, 2\n");
    let run = case.run(&[
        "plan",
        "--snapshot",
        "snap",
        "--to",
        "cilium",
        "--values",
        "my-values.yaml",
    ]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("my-values.yaml:"),
        "names the file, not <input>: {}",
        run.stderr
    );
    assert!(!run.stderr.contains("<input>"));

    let case = Case::new("large yaml outside cluster");
    let mut values = String::from("cni:\n  exclusive: true\nlist:\n");
    while values.len() < 17 << 20 {
        values.push_str("  - an-entry-of-a-large-values-file-that-is-not-a-kubernetes-dump\n");
    }
    case.write("work/repo/big-values.yaml", &values);
    case.write("work/repo/talos.yaml", "machine:\n  type: worker\n");
    let run = case.run(&["lint", "repo"]);
    assert_ne!(run.code, 2, "{}", run.stderr);
    assert!(
        !run.stderr.contains("holds Kubernetes objects"),
        "{}",
        run.stderr
    );
    assert!(
        run.stdout.contains("CNISWAP_MAX_FILE_BYTES"),
        "skipped with the budget: {}",
        run.stdout
    );

    let case = Case::new("verbose");
    copy_example(&case.work().join("snap"));
    let run = case.run(&["-vvv", "inspect", "--snapshot", "snap"]);
    assert!(
        run.stderr.contains("TRACE") && run.stderr.contains("DEBUG"),
        "{}",
        run.stderr
    );
    let run = case.run_env(&["inspect", "--snapshot", "snap"], &[("RUST_LOG", "trace")]);
    assert!(run.stderr.contains("TRACE"), "{}", run.stderr);
}

// ------------------------------------------------- issue 20: the plan directory and the journal

/// A kubeconfig whose server does not answer (nothing listens on port 1).
const UNREACHABLE_KUBECONFIG: &str = "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:1\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: not-a-secret\n";

/// A case with a plan of the example in `work/plan` (made by the binary), the operator's
/// journal key in `work/keys` (outside the plan directory) and an unreachable kubeconfig.
fn apply_case(name: &str) -> Case {
    let case = Case::new(name);
    copy_example(&case.work().join("snap"));
    let run = case.run(&[
        "plan",
        "--snapshot",
        "snap",
        "--to",
        "cilium",
        "--force",
        "--out-dir",
        "plan",
    ]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    case.write("work/kubeconfig", UNREACHABLE_KUBECONFIG);
    case
}

fn key_path(case: &Case) -> PathBuf {
    case.work().join("keys/journal.key")
}

/// cniswap with the case's journal key.
fn run_keyed(case: &Case, args: &[&str]) -> Run {
    let key = key_path(case);
    case.run_env(args, &[("CNISWAP_JOURNAL_KEY", s(&key))])
}

/// apply, apply --dry-run and apply status of the case's plan: each refused (exit 2) with an
/// error that contains every one of `words`.
fn every_apply_refuses(case: &Case, words: &[&str]) {
    for args in [
        &["apply", "plan", "--kubeconfig", "kubeconfig", "--yes"][..],
        &["apply", "plan", "--dry-run"],
        &["apply", "status", "plan", "--kubeconfig", "kubeconfig"],
    ] {
        let run = run_keyed(case, args);
        assert_eq!(run.code, 2, "[{}] {args:?}: {}", case.name, run.stderr);
        for word in words {
            assert!(
                run.stderr.contains(word),
                "[{}] {args:?}: no {word:?} in\n{}",
                case.name,
                run.stderr
            );
        }
    }
}

fn plan_of(case: &Case) -> cniswap_plan::Plan {
    serde_saphyr::from_str(&std::fs::read_to_string(case.work().join("plan/plan.yaml")).unwrap())
        .unwrap()
}

fn write_plan(case: &Case, plan: &cniswap_plan::Plan) {
    std::fs::write(
        case.work().join("plan/plan.yaml"),
        serde_saphyr::to_string(plan).unwrap(),
    )
    .unwrap();
}

#[test]
fn apply_never_writes_through_a_planted_link() {
    use std::os::unix::fs::symlink;
    let case = apply_case("links");
    let journal = case.work().join("plan/journal.jsonl");
    // A link to a file the user can write: refused, the file untouched (Case checks outside/).
    symlink(case.path("outside/victim.txt"), &journal).unwrap();
    every_apply_refuses(&case, &["journal.jsonl", "symbolic link"]);
    // A dangling link: its target is not created.
    std::fs::remove_file(&journal).unwrap();
    symlink(case.path("outside/created.txt"), &journal).unwrap();
    every_apply_refuses(&case, &["journal.jsonl", "symbolic link"]);
    // A cut-off last line is moved aside into a new file, never through a link at its name.
    std::fs::remove_file(&journal).unwrap();
    std::fs::write(&journal, "{\"mac\":\"cut-off").unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    for second in now..now + 30 {
        symlink(
            case.path("outside/victim.txt"),
            case.work()
                .join(format!("plan/journal.jsonl.tail-{second}")),
        )
        .unwrap();
    }
    let run = run_keyed(
        &case,
        &["apply", "plan", "--kubeconfig", "kubeconfig", "--yes"],
    );
    assert_eq!(run.code, 2, "the cluster does not answer: {}", run.stderr);
    let aside: Vec<String> = std::fs::read_dir(case.work().join("plan"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_type().unwrap().is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("journal.jsonl.tail-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(
        std::fs::read_to_string(case.work().join("plan").join(&aside[0])).unwrap(),
        "{\"mac\":\"cut-off"
    );
    // A world-writable plan directory is refused: anyone could plant such links.
    use std::os::unix::fs::PermissionsExt;
    std::fs::remove_file(&journal).unwrap();
    std::fs::set_permissions(
        case.work().join("plan"),
        std::fs::Permissions::from_mode(0o777),
    )
    .unwrap();
    every_apply_refuses(&case, &["writable by every user", "chmod 700"]);
}

#[test]
fn plan_paths_out_of_its_directory_and_repeated_ids_are_refused_at_load() {
    let case = apply_case("confine");
    let original = plan_of(&case);
    assert!(
        !original.artifacts.is_empty(),
        "the example's plan has artifacts"
    );
    for outside in ["/etc/shadow", "../../outside/victim.txt"] {
        let mut plan = original.clone();
        plan.artifacts[0].path = outside.into();
        write_plan(&case, &plan);
        every_apply_refuses(&case, &["plan.yaml", "artifacts[0].path", outside]);
    }
    let mut plan = original.clone();
    let step = plan
        .phases
        .iter_mut()
        .flat_map(|p| p.steps.iter_mut())
        .find(|s| matches!(s.action, cniswap_plan::Action::Backup { .. }))
        .expect("a backup step");
    let id = step.id.clone();
    if let cniswap_plan::Action::Backup { file, .. } = &mut step.action {
        *file = "backups/../../../outside/victim.txt".into();
    }
    write_plan(&case, &plan);
    every_apply_refuses(&case, &[&format!("step {id} file"), "`..`"]);
    // Two steps with one id: the journal's "done" of one would count for the other.
    let mut plan = original.clone();
    let first = plan.phases[0].steps[0].id.clone();
    plan.phases[0].steps[1].id = first.clone();
    write_plan(&case, &plan);
    every_apply_refuses(&case, &[&format!("step id {first} is used twice")]);
}

/// A journal for the case's plan, begun, with its first gate approved and finished, signed
/// with `key`.
fn journal_approving_the_first_step(case: &Case, key: &cniswap_exec::JournalKey) {
    use cniswap_exec::{Event, Journal, PlanDir};
    let dir = PlanDir::open(&case.work().join("plan")).unwrap();
    let bytes = std::fs::read(case.work().join("plan/plan.yaml")).unwrap();
    let plan = plan_of(case);
    let digest = cniswap_exec::digest::compute(&dir, &bytes, &plan).unwrap();
    let first = plan.phases[0].steps[0].id.clone();
    let mut journal = Journal::open(&dir, key).unwrap();
    for event in [
        Event::Begin {
            digest,
            cluster: plan.cluster.clone(),
            baseline: None,
        },
        Event::Approved {
            step: first.clone(),
            by: "--yes".into(),
        },
        Event::Finish {
            step: first,
            duration_ms: 0,
            evidence: "approved with --yes".into(),
            output: String::new(),
        },
    ] {
        journal.append(event).unwrap();
    }
}

#[test]
fn a_journal_made_without_the_operators_key_approves_nothing() {
    let case = apply_case("forged");
    let journal = case.work().join("plan/journal.jsonl");
    // Records anyone can compute: the old unkeyed checksum of each record.
    let other =
        cniswap_exec::JournalKey::from_bytes(b"someone else's key, not the operator's", "x");
    journal_approving_the_first_step(&case, &other);
    let signed = std::fs::read_to_string(&journal).unwrap();
    let unkeyed: String = signed
        .lines()
        .map(|line| {
            let value: serde_json::Value = serde_json::from_str(line).unwrap();
            let record = serde_json::to_string(&value["r"]).unwrap();
            let sum = &cniswap_exec::digest::sha256(record.as_bytes())[..16];
            format!("{{\"sum\":\"{sum}\",\"r\":{record}}}\n")
        })
        .collect();
    std::fs::write(&journal, &unkeyed).unwrap();
    every_apply_refuses(&case, &["journal.jsonl line 1", "unsigned"]);
    // Signed, but with another key.
    std::fs::write(&journal, &signed).unwrap();
    every_apply_refuses(&case, &["journal.jsonl line 1", "signature mismatch"]);
    // With the operator's key the same journal is read (the key is what counts)...
    std::fs::remove_file(&journal).unwrap();
    let key = cniswap_exec::JournalKey::load_or_create(&key_path(&case)).unwrap();
    journal_approving_the_first_step(&case, &key);
    let run = run_keyed(&case, &["apply", "status", "plan", "-o", "json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("approved with --yes"), "{}", run.stdout);
    // ... and a changed plan cannot be passed off as the journal's by rewriting its digest.
    let text = std::fs::read_to_string(&journal).unwrap();
    let plan_sum = text.split("\"plan\":\"").nth(1).unwrap()[..64].to_string();
    std::fs::write(&journal, text.replacen(&plan_sum, &"0".repeat(64), 1)).unwrap();
    every_apply_refuses(&case, &["journal.jsonl line 1", "signature mismatch"]);
    // A key inside the plan directory is refused: whoever writes the plan could read it.
    std::fs::remove_file(&journal).unwrap();
    let inside = case.work().join("plan/journal.key");
    let run = case.run_env(
        &["apply", "plan", "--kubeconfig", "kubeconfig", "--yes"],
        &[("CNISWAP_JOURNAL_KEY", s(&inside))],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("inside the plan directory"),
        "{}",
        run.stderr
    );
}

/// Replaces `path` by a FIFO, /dev/zero's device node or a 3 GiB sparse file in turn, and
/// checks that each command is refused fast naming the file and what it is.
fn special_files_refused(case: &Case, path: &Path, runs: &[&[&str]], budget: &str) {
    let saved = std::fs::read(path).ok();
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    for (kind, expected) in [
        ("fifo", "FIFO"),
        ("zero", "character device"),
        ("sparse", budget),
    ] {
        let _ = std::fs::remove_file(path);
        match kind {
            "fifo" => assert!(Command::new("mkfifo").arg(path).status().unwrap().success()),
            "zero" => assert!(
                Command::new("mknod")
                    .args([s(path), "c", "1", "5"])
                    .status()
                    .unwrap()
                    .success()
            ),
            _ => std::fs::File::create(path)
                .unwrap()
                .set_len(3 << 30)
                .unwrap(),
        }
        for args in runs {
            let run = run_keyed(case, args);
            assert_eq!(run.code, 2, "[{kind} {name}] {args:?}: {}", run.stderr);
            assert!(
                run.stderr.contains(&name) && run.stderr.contains(expected),
                "[{kind} {name}] {args:?}: no {name} / {expected} in\n{}",
                run.stderr
            );
            assert!(
                run.wall < Duration::from_secs(10),
                "[{kind}] {:?}",
                run.wall
            );
        }
    }
    let _ = std::fs::remove_file(path);
    if let Some(bytes) = saved {
        std::fs::write(path, bytes).unwrap();
    }
}

#[test]
fn fifos_devices_and_sparse_files_are_refused_fast_naming_the_file() {
    let case = apply_case("special");
    let every: &[&[&str]] = &[
        &["apply", "plan", "--kubeconfig", "kubeconfig", "--yes"],
        &["apply", "plan", "--dry-run"],
        &["apply", "status", "plan", "--kubeconfig", "kubeconfig"],
    ];
    special_files_refused(
        &case,
        &case.work().join("plan/plan.yaml"),
        every,
        "CNISWAP_MAX_FILE_BYTES",
    );
    let artifact = plan_of(&case).artifacts[0].path.clone();
    special_files_refused(
        &case,
        &case.work().join("plan").join(&artifact),
        every,
        "CNISWAP_MAX_FILE_BYTES",
    );
    special_files_refused(
        &case,
        &case.work().join("plan/journal.jsonl"),
        every,
        "CNISWAP_MAX_INPUT_BYTES",
    );
    special_files_refused(
        &case,
        &case.work().join("kubeconfig"),
        &[
            &["apply", "plan", "--kubeconfig", "kubeconfig", "--yes"],
            &["inspect", "--kubeconfig", "kubeconfig"],
        ],
        "CNISWAP_MAX_FILE_BYTES",
    );
}

/// `node restore --root DIR` of a backup that removed a link and a route: the files go under
/// DIR, and this host's network is left alone (the backup may be another node's), listed as
/// not restored with how to restore it on that node.
#[test]
fn node_restore_with_a_root_never_touches_this_hosts_network() {
    let case = Case::new("restore-root-network");
    let name = format!("cnswr{}", std::process::id() % 100_000);
    case.write(
        "work/backup/cniswap-backup.json",
        format!(
            "{{\"schema_version\": 1, \"plan\": {{\"cni\": \"flannel\", \"node\": \"n1\", \"actions\": [{{\"action\": \"link-delete\", \"name\": \"{name}\", \"detail\": {{\"kind\": \"dummy\", \"up\": true}}}}, {{\"action\": \"route-delete\", \"family\": \"-4\", \"spec\": \"198.51.100.0/24 dev {name}\", \"implicit\": false}}], \"kept\": []}}}}"
        ),
    );
    std::fs::create_dir_all(case.work().join("backup/files")).unwrap();
    std::fs::create_dir_all(case.work().join("root")).unwrap();
    let run = case.run(&["node", "restore", "--backup", "backup", "--root", "root"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("Not restored") && run.stdout.contains("--network-here"),
        "{}",
        run.stdout
    );
    assert!(
        !Path::new(&format!("/sys/class/net/{name}")).exists(),
        "the host got link {name}"
    );
}
