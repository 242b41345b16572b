//! `cniswap node inventory | clean | restore` on real kernel objects: every test builds a
//! CNI's node state in a throwaway network namespace (real device names, route protocols,
//! chain layouts from research/node-state.md) next to foreign state that must survive, with
//! the host filesystem in a temporary `--root`. Needs root, iproute2, iptables (legacy and nft),
//! nftables and ipset: scripts/test.sh installs them.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

static NEXT: AtomicUsize = AtomicUsize::new(0);

/// A network namespace plus a fake host root; both removed on drop.
struct Node {
    netns: String,
    root: tempfile::TempDir,
}

impl Node {
    fn new() -> Node {
        let netns = format!(
            "cniswap-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        );
        let out = Command::new("ip")
            .args(["netns", "add", &netns])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "ip netns add (tests need root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let node = Node {
            netns,
            root: tempfile::tempdir().unwrap(),
        };
        // Without duplicate address detection, IPv6 link-local addresses (and their local
        // routes) exist as soon as a link is up, instead of appearing a moment later: a dump
        // taken before and after a dry run must not differ by that timing.
        node.sh(
            "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad; echo 0 > /proc/sys/net/ipv6/conf/all/accept_dad; ip link set lo up",
        );
        node
    }

    fn root(&self) -> &Path {
        self.root.path()
    }

    /// Runs a shell script inside the namespace; every command must succeed.
    fn sh(&self, script: &str) {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.netns, "sh", "-ec", script])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{script}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    fn output(&self, script: &str) -> String {
        let out = Command::new("ip")
            .args(["netns", "exec", &self.netns, "sh", "-c", script])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn cniswap(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                &self.netns,
                env!("CARGO_BIN_EXE_cniswap"),
                "node",
            ])
            .args(args)
            .args(["--root", self.root().to_str().unwrap()])
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    }

    fn file(&self, path: &str, text: &str) {
        let path = self.root().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// Kernel and file state as the tools print it (iptables-save's timestamp comments aside).
    fn dump(&self) -> String {
        let kernel = self.output(
            "ip -o link show; ip -o addr show; ip route show table all; ip -6 route show table all; ip rule; ip -6 rule; \
             for t in iptables-legacy-save ip6tables-legacy-save iptables-nft-save ip6tables-nft-save; do $t | grep -v '^#'; done; \
             nft list ruleset; ipset save",
        );
        // Packet counters and IPv6 duplicate-address-detection flags change on their own.
        let kernel: String = kernel
            .lines()
            .map(|l| {
                let l = l.replace(" tentative", "");
                match (l.find(" ["), l.rfind(']')) {
                    (Some(start), Some(end)) if l.starts_with(':') && end > start => {
                        format!("{}{}", &l[..start], &l[end + 1..])
                    }
                    _ => l,
                }
            })
            .map(|l| l.replace("counter packets 0 bytes 0 ", ""))
            .collect::<Vec<_>>()
            .join("\n");
        let mut files: Vec<String> = walk(self.root());
        files.sort();
        format!("{kernel}\n{}", files.join("\n"))
    }

    /// The dump with what legitimately changes across delete + recreate masked: interface
    /// indexes, kernel-made IPv6 link-local addresses and routes, ipset initval, counters.
    fn stable_dump(&self, skip: &[&str]) -> Vec<String> {
        let mut lines: Vec<String> = self
            .dump()
            .lines()
            .filter(|l| {
                !l.contains("fe80::")
                    && !l.contains("ff00::/8")
                    && !skip.iter().any(|s| l.contains(s))
            })
            .map(|l| {
                let l = l
                    .split_once(": ")
                    .filter(|(i, _)| i.chars().all(|c| c.is_ascii_digit()))
                    .map_or(l, |(_, r)| r);
                let l = l.split(" initval").next().unwrap_or(l);
                // Carrier follows bridge ports and timing, not configuration.
                let l = l.replace("NO-CARRIER,", "").replace(",LOWER_UP", "");
                let words: Vec<&str> = l.split_whitespace().collect();
                let mut kept = Vec::new();
                let mut skip_next = false;
                for w in words {
                    if skip_next {
                        skip_next = false;
                        continue;
                    }
                    if w == "state" {
                        skip_next = true;
                        continue;
                    }
                    if w.starts_with('[') || w.starts_with("link-netns") || w == "linkdown" {
                        continue;
                    }
                    kept.push(w);
                }
                kept.join(" ")
            })
            .collect();
        lines.sort();
        lines
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.netns])
            .output();
    }
}

fn walk(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        out.push(path.display().to_string());
        if path.is_dir() {
            out.extend(walk(&path));
        }
    }
    out
}

/// State nobody's clean may touch: an uplink, a foreign bridge and route, kube-proxy's chains
/// in both iptables backends, an nft table and an ipset of some other tool, another config,
/// and the shared reference plugins.
fn foreign(node: &Node) {
    node.sh(
        "ip link add eth0 type veth peer name eth0-peer
         ip addr add 192.168.1.10/24 dev eth0; ip link set eth0 up; ip link set eth0-peer up
         ip link add br-app type bridge
         ip route add 10.99.0.0/16 via 192.168.1.1 dev eth0 proto static
         ip rule add priority 500 from 10.98.0.0/16 table 50
         iptables-legacy -t nat -N KUBE-SERVICES; iptables-legacy -t nat -A PREROUTING -m comment --comment 'kubernetes service portals' -j KUBE-SERVICES
         iptables-legacy -t nat -N KUBE-MARK-MASQ; iptables-legacy -t nat -A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
         iptables-nft -N KUBE-FORWARD; iptables-nft -A FORWARD -j KUBE-FORWARD
         iptables-legacy -N APP-INPUT; iptables-legacy -A INPUT -j APP-INPUT
         ip6tables-legacy -N KUBE-FIREWALL
         nft add table inet app; nft add chain inet app input
         ipset create app-allow hash:ip",
    );
    node.file(
        "etc/cni/net.d/99-loopback.conf",
        r#"{"cniVersion":"1.0.0","name":"lo","type":"loopback"}"#,
    );
    for plugin in [
        "bridge",
        "host-local",
        "loopback",
        "portmap",
        "firewall",
        "tuning",
        "bandwidth",
    ] {
        node.file(&format!("opt/cni/bin/{plugin}"), "shared plugin");
    }
    node.file("etc/hostname", "node-1\n");
}

fn flannel(node: &Node) {
    node.sh(
        "ip link add flannel.1 type vxlan id 1 dstport 4789 local 192.168.1.10 dev eth0 nolearning
         ip addr add 10.244.0.0/32 dev flannel.1; ip link set flannel.1 up
         ip route add 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink
         ip neigh add 10.244.1.0 lladdr 0a:58:0a:f4:01:00 dev flannel.1
         bridge fdb append 0a:58:0a:f4:01:00 dev flannel.1 dst 192.168.1.11
         ip link add cni0 type bridge; ip addr add 10.244.0.1/24 dev cni0; ip link set cni0 up
         iptables-legacy -t nat -N FLANNEL-POSTRTG
         iptables-legacy -t nat -A POSTROUTING -m comment --comment 'flanneld masq' -j FLANNEL-POSTRTG
         iptables-legacy -t nat -A FLANNEL-POSTRTG -s 10.244.0.0/16 -d 10.244.0.0/16 -m comment --comment 'flanneld masq' -j RETURN
         iptables-legacy -t nat -A FLANNEL-POSTRTG -s 10.244.0.0/16 ! -d 224.0.0.0/4 -m comment --comment 'flanneld masq' -j MASQUERADE --random-fully
         iptables-legacy -N FLANNEL-FWD
         iptables-legacy -A FORWARD -m comment --comment 'flanneld forward' -j FLANNEL-FWD
         iptables-legacy -A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment 'flanneld forward' -j ACCEPT",
    );
    node.file(
        "etc/cni/net.d/10-flannel.conflist",
        r#"{"name":"cbr0","cniVersion":"0.3.1","plugins":[{"type":"flannel","delegate":{"hairpinMode":true,"isDefaultGateway":true}},{"type":"portmap","capabilities":{"portMappings":true}}]}"#,
    );
    node.file("opt/cni/bin/flannel", "flannel plugin");
    node.file("run/flannel/subnet.env", "FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.0.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n");
    node.file("var/lib/cni/flannel/0a1b2c", "{}");
    node.file("var/lib/cni/networks/cbr0/10.244.0.5", "0a1b2c");
}

fn calico(node: &Node) {
    node.sh(
        "ip link add vxlan.calico type vxlan id 4096 dstport 4789 local 192.168.1.10 dev eth0 nolearning
         ip link set vxlan.calico up
         ip route add 10.50.1.0/26 via 10.50.1.0 dev vxlan.calico onlink proto 80
         ip route add blackhole 10.50.0.0/26 proto 80
         ip link add cali1a2b3c4d5e6 type veth peer name cali-pod0
         iptables-legacy -N cali-FORWARD; iptables-legacy -A FORWARD -m comment --comment 'cali:wUHhoiAYhphO9Mso' -j cali-FORWARD
         iptables-legacy -N cali-from-hep-forward; iptables-legacy -A cali-FORWARD -j cali-from-hep-forward
         iptables-legacy -t nat -N cali-nat-outgoing
         iptables-legacy -t nat -A POSTROUTING -m comment --comment 'cali:O3lYWMrLQYEMJtB5' -j cali-nat-outgoing
         ipset create cali40masq-ipam-pools hash:net
         iptables-legacy -t nat -A cali-nat-outgoing -m set --match-set cali40masq-ipam-pools src -j MASQUERADE
         nft add table ip calico",
    );
    node.file(
        "etc/cni/net.d/10-calico.conflist",
        r#"{"name":"k8s-pod-network","cniVersion":"0.3.1","plugins":[{"type":"calico","ipam":{"type":"calico-ipam"}},{"type":"portmap","snat":true,"capabilities":{"portMappings":true}}]}"#,
    );
    node.file(
        "etc/cni/net.d/calico-kubeconfig",
        "token: placeholder-not-a-secret\n",
    );
    node.file("opt/cni/bin/calico", "calico plugin");
    node.file("opt/cni/bin/calico-ipam", "calico-ipam plugin");
    node.file("var/lib/calico/nodename", "node-1\n");
    node.file("sys/fs/bpf/calico/xdp/prefilter_v1_calico_tmp_A", "pin");
}

fn cilium(node: &Node) {
    node.sh(
        "ip link add cilium_host type veth peer name cilium_net
         ip addr add 10.0.0.36/32 dev cilium_host; ip link set cilium_host up; ip link set cilium_net up
         ip link add cilium_vxlan type vxlan external dstport 8472
         ip link add lxc0123456789ab type veth peer name lxc-pod0
         ip route add 10.0.1.0/24 via 10.0.0.36 dev cilium_host src 10.0.0.36
         ip route add local default dev lo table 2004
         ip rule add priority 9 fwmark 0x200/0xf00 table 2004
         iptables-legacy -N CILIUM_FORWARD; iptables-legacy -A FORWARD -m comment --comment 'cilium-feeder: CILIUM_FORWARD' -j CILIUM_FORWARD
         iptables-legacy -t nat -N CILIUM_POST_nat; iptables-legacy -t nat -A POSTROUTING -m comment --comment 'cilium-feeder: CILIUM_POST_nat' -j CILIUM_POST_nat
         iptables-nft -N CILIUM_INPUT; iptables-nft -A INPUT -m comment --comment 'cilium-feeder: CILIUM_INPUT' -j CILIUM_INPUT
         ipset create cilium_node_set_v4 hash:ip",
    );
    node.file("etc/cni/net.d/05-cilium.conflist", r#"{"cniVersion":"0.3.1","name":"cilium","plugins":[{"type":"cilium-cni","enable-debug":false}]}"#);
    node.file(
        "etc/cni/net.d/10-flannel.conflist.cilium_bak",
        r#"{"name":"cbr0","plugins":[{"type":"flannel"}]}"#,
    );
    node.file("opt/cni/bin/cilium-cni", "cilium plugin");
    node.file("var/run/cilium/state/ep", "{}");
    node.file("sys/fs/bpf/tc/globals/cilium_calls_hostns", "pin");
    node.file("sys/fs/bpf/tc/globals/cilium_lxc", "pin");
}

fn weave(node: &Node) {
    node.sh(
        "ip link add weave type bridge; ip addr add 10.32.0.1/12 dev weave; ip link set weave up
         ip link add vethwe-bridge type veth peer name vethwe-datapath
                  ip link add vxlan-6784 type vxlan external dstport 6784
         iptables-legacy -N WEAVE-NPC; iptables-legacy -A FORWARD -o weave -j WEAVE-NPC
         iptables-legacy -t nat -N WEAVE; iptables-legacy -t nat -A POSTROUTING -j WEAVE
         ipset create weave-kube-test hash:ip",
    );
    node.file("etc/cni/net.d/10-weave.conflist", r#"{"cniVersion":"0.3.0","name":"weave","plugins":[{"name":"weave","type":"weave-net","hairpinMode":true},{"type":"portmap","capabilities":{"portMappings":true},"snat":true}]}"#);
    node.file("opt/cni/bin/weave-net", "weave plugin");
    node.file("opt/cni/bin/weave-ipam", "weave ipam");
    node.file("var/lib/weave/weave-netdata.db", "db");
}

/// The CNI's own objects that must be gone after clean.
fn owned_markers(cni: &str) -> &'static [&'static str] {
    match cni {
        "flannel" => &[
            "flannel.1",
            "cni0",
            "FLANNEL-POSTRTG",
            "FLANNEL-FWD",
            "10-flannel.conflist",
            "opt/cni/bin/flannel",
            "run/flannel",
            "var/lib/cni/flannel",
            "10.244.1.0/24",
        ],
        "calico" => &[
            "vxlan.calico",
            "cali-FORWARD",
            "cali-nat-outgoing",
            "cali40masq-ipam-pools",
            "table ip calico",
            "10-calico.conflist",
            "calico-kubeconfig",
            "opt/cni/bin/calico",
            "var/lib/calico",
            "blackhole 10.50.0.0/26",
            "sys/fs/bpf/calico",
        ],
        "cilium" => &[
            "cilium_host",
            "cilium_net",
            "cilium_vxlan",
            "CILIUM_FORWARD",
            "CILIUM_POST_nat",
            "CILIUM_INPUT",
            "cilium_node_set_v4",
            "05-cilium.conflist",
            "cilium-cni",
            "var/run/cilium",
            "cilium_calls_hostns",
            "lookup 2004",
        ],
        "weave" => &[
            "weave:",
            "vethwe-bridge",
            "vxlan-6784",
            "WEAVE-NPC",
            "-j WEAVE",
            "weave-kube-test",
            "10-weave.conflist",
            "weave-net",
            "var/lib/weave",
        ],
        _ => &[],
    }
}

fn setup(cni: &str, node: &Node) {
    match cni {
        "flannel" => flannel(node),
        "calico" => calico(node),
        "cilium" => cilium(node),
        "weave" => weave(node),
        "canal" => {
            flannel(node);
            calico(node);
            std::fs::rename(
                node.root().join("etc/cni/net.d/10-calico.conflist"),
                node.root().join("etc/cni/net.d/10-canal.conflist"),
            )
            .unwrap();
        }
        _ => unreachable!(),
    }
}

/// Builds `cni`'s state plus foreign state plus `other`'s state, then checks dry-run, clean
/// and restore.
fn clean_exactly(cni: &str, other: &str) {
    let node = Node::new();
    foreign(&node);
    setup(other, &node);
    setup(cni, &node);
    // Pod veths whose peer sits in the same namespace stand for pods already gone.
    let before = node.dump();
    let stable_before = node.stable_dump(&[]);

    let dry = node.cniswap(&["clean", "--cni", cni, "--dry-run"]);
    assert!(
        dry.status.success(),
        "{}",
        String::from_utf8_lossy(&dry.stderr)
    );
    assert_eq!(node.dump(), before, "--dry-run changed something for {cni}");
    let plan = String::from_utf8_lossy(&dry.stdout).into_owned();

    let backup = node
        .root()
        .join("../")
        .join(format!("{}-backup-{cni}", node.netns));
    let out = node.cniswap(&["clean", "--cni", cni, "--backup", backup.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{cni}: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        plan
    );
    let after = node.dump();
    for marker in owned_markers(cni) {
        assert!(
            !after.contains(marker),
            "{cni}: {marker} survived clean\nplan:\n{plan}\nafter:\n{after}"
        );
    }
    // Everything that was not the CNI's is byte-for-byte where it was.
    let other_markers: &[&str] = owned_markers(other);
    for marker in other_markers.iter().chain(&[
        "br-app",
        "eth0",
        "10.99.0.0/16",
        "lookup 50",
        "KUBE-SERVICES",
        "KUBE-MARK-MASQ",
        "KUBE-FORWARD",
        "APP-INPUT",
        "KUBE-FIREWALL",
        "table inet app",
        "app-allow",
        "99-loopback.conf",
        "bin/bridge",
        "bin/host-local",
        "bin/portmap",
        "bin/loopback",
        "bin/firewall",
    ]) {
        assert!(
            after.contains(marker),
            "{cni}: foreign {marker} was removed\nplan:\n{plan}"
        );
    }

    // The test's network namespace stands for the node's (its root is a directory).
    let restored = node.cniswap(&[
        "restore",
        "--backup",
        backup.to_str().unwrap(),
        "--network-here",
    ]);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    // Pod veths and BPF pins are not recreated by restore (it says so); everything else is back.
    let skip = [
        "lxc",
        "cali1a2b3c4d5e6",
        "cali-pod0",
        "sys/fs/bpf",
        "vethwe-",
        "cilium_host",
        "cilium_net",
        "cilium_vxlan",
        "vxlan-6784",
        "10.0.0.36",
        "10.0.1.0/24",
    ];
    let mut expected = node_stable(&stable_before, &skip);
    let mut actual = node.stable_dump(&skip);
    expected.sort();
    actual.sort();
    let missing: Vec<&String> = expected.iter().filter(|l| !actual.contains(l)).collect();
    let extra: Vec<&String> = actual.iter().filter(|l| !expected.contains(l)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "{cni}: restore did not bring the state back\nmissing: {missing:#?}\nextra: {extra:#?}\n{}",
        String::from_utf8_lossy(&restored.stdout)
    );
    // A plan run again after its rollback cleans into the same directory: the restored
    // backup is retired (kept aside), a fresh one written.
    let again = node.cniswap(&["clean", "--cni", cni, "--backup", backup.to_str().unwrap()]);
    assert!(
        again.status.success(),
        "{cni}: a second clean after restore: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    let retired = std::path::PathBuf::from(format!("{}.retired-1", backup.display()));
    assert!(
        retired.join("restored").is_file(),
        "{cni}: the restored backup was not kept"
    );
    assert!(
        !backup.join("restored").exists(),
        "{cni}: the new backup is fresh"
    );
    for marker in owned_markers(cni) {
        assert!(
            !node.dump().contains(marker),
            "{cni}: {marker} survived the second clean"
        );
    }
    // A backup no restore consumed is never replaced.
    let refused = node.cniswap(&["clean", "--cni", cni, "--backup", backup.to_str().unwrap()]);
    assert!(!refused.status.success(), "{cni}: clean over a live backup");
    let _ = std::fs::remove_dir_all(retired);
    let _ = std::fs::remove_dir_all(backup);
}

fn node_stable(lines: &[String], skip: &[&str]) -> Vec<String> {
    lines
        .iter()
        .filter(|l| !skip.iter().any(|s| l.contains(s)))
        .cloned()
        .collect()
}

#[test]
fn flannel_clean_removes_exactly_flannel() {
    clean_exactly("flannel", "calico");
}

#[test]
fn calico_clean_removes_exactly_calico() {
    clean_exactly("calico", "cilium");
}

#[test]
fn canal_clean_removes_flannel_and_calico_pieces() {
    clean_exactly("canal", "weave");
}

#[test]
fn cilium_clean_removes_exactly_cilium_and_keeps_the_renamed_config() {
    clean_exactly("cilium", "flannel");
}

#[test]
fn weave_clean_removes_exactly_weave() {
    clean_exactly("weave", "cilium");
}

#[test]
fn inventory_labels_owners_and_the_config_containerd_loads() {
    let node = Node::new();
    foreign(&node);
    cilium(&node);
    flannel(&node);
    let out = node.cniswap(&["inventory", "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inventory: cniswap_model::Inventory = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(inventory.node, "node-1");
    // -o yaml is the same document.
    let yaml = node.cniswap(&["inventory", "-o", "yaml"]);
    assert!(
        yaml.status.success(),
        "{}",
        String::from_utf8_lossy(&yaml.stderr)
    );
    let from_yaml: cniswap_model::Inventory =
        serde_saphyr::from_str(&String::from_utf8_lossy(&yaml.stdout)).unwrap();
    assert_eq!(from_yaml.node, inventory.node);
    assert_eq!(from_yaml.items.len(), inventory.items.len());
    let owner = |id: &str| {
        inventory
            .items
            .iter()
            .find(|i| i.id.starts_with(id))
            .map(|i| i.owner)
    };
    use cniswap_model::Owner;
    assert_eq!(
        owner("link flannel.1 (vxlan id 1 port 4789)"),
        Some(Owner::Flannel)
    );
    assert_eq!(owner("link cilium_vxlan"), Some(Owner::Cilium));
    assert_eq!(owner("link br-app"), Some(Owner::Unknown));
    assert_eq!(
        owner("iptables legacy ipv4 nat chain KUBE-SERVICES"),
        Some(Owner::KubeProxy)
    );
    assert_eq!(
        owner("iptables nft ipv4 filter chain CILIUM_INPUT"),
        Some(Owner::Cilium)
    );
    assert_eq!(owner("rule 9: lookup 2004"), Some(Owner::Cilium));
    assert_eq!(owner("file /opt/cni/bin/bridge"), Some(Owner::CniPlugins));
    assert!(inventory.items.iter().any(|i| {
        i.id.starts_with("fdb 0a:58:0a:f4:01:00 dst 192.168.1.11 dev flannel.1")
    }));
    let containerd = inventory.cni_config.containerd.unwrap();
    assert_eq!(containerd.file, "/etc/cni/net.d/05-cilium.conflist");
    assert_eq!(containerd.owner, Some(Owner::Cilium));
    assert!(containerd.parses && containerd.missing_binaries.is_empty());

    // Text output shows the NOD findings: no agent runs, so the node's CNI is unknown, but the
    // first config's plugin set is checked.
    std::fs::remove_file(node.root().join("opt/cni/bin/cilium-cni")).unwrap();
    let out = node.cniswap(&["inventory"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("error[NOD003]"), "{text}");
    assert_eq!(out.status.code(), Some(1));

    // The JSON is the snapshot's nodes/<node>.json: inspect runs the same NOD rules on it.
    let json = node.cniswap(&["inventory", "-o", "json"]);
    let snapshot = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(snapshot.path().join("nodes")).unwrap();
    std::fs::write(snapshot.path().join("nodes/node-1.json"), &json.stdout).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args([
            "inspect",
            "--snapshot",
            snapshot.path().to_str().unwrap(),
            "-o",
            "json",
        ])
        .output()
        .unwrap();
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rules: Vec<&str> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(rules.contains(&"NOD003"), "{rules:?}");
}

#[test]
fn clean_refuses_while_the_agent_runs_and_keeps_kube_proxy_unless_asked() {
    let node = Node::new();
    foreign(&node);
    flannel(&node);
    node.file("proc/4242/comm", "flanneld\n");
    let out = node.cniswap(&["clean", "--cni", "flannel", "--dry-run"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("flanneld is running on this node (pid 4242)")
    );
    std::fs::remove_dir_all(node.root().join("proc")).unwrap();

    let out = node.cniswap(&["clean", "--cni", "flannel", "--dry-run"]);
    let plan = String::from_utf8_lossy(&out.stdout);
    assert!(!plan.contains("KUBE-SERVICES - "), "{plan}");
    assert!(plan.contains("kube-proxy state: only with --include-kube-proxy"));

    node.file("proc/77/comm", "kube-proxy\n");
    let out = node.cniswap(&[
        "clean",
        "--cni",
        "flannel",
        "--include-kube-proxy",
        "--dry-run",
    ]);
    assert_eq!(out.status.code(), Some(2), "kube-proxy runs: must refuse");
    std::fs::remove_dir_all(node.root().join("proc")).unwrap();

    let out = node.cniswap(&[
        "clean",
        "--cni",
        "flannel",
        "--include-kube-proxy",
        "--backup",
        node.root().join("backup").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = node.dump();
    assert!(
        !after.contains("KUBE-SERVICES") && !after.contains("KUBE-FORWARD"),
        "{after}"
    );
    assert!(after.contains("APP-INPUT") && after.contains("table inet app"));
}

#[test]
fn pod_veths_stay_while_their_pod_exists() {
    let node = Node::new();
    foreign(&node);
    calico(&node);
    let pod = Node::new();
    node.sh(&format!(
        "ip link add cali99887766554 type veth peer name eth0 netns {}",
        pod.netns
    ));
    let out = node.cniswap(&[
        "clean",
        "--cni",
        "calico",
        "--backup",
        node.root().join("b").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("its pod sandbox still exists"));
    assert!(node.dump().contains("cali99887766554"));
    assert!(!node.dump().contains("vxlan.calico"));
}

#[test]
fn a_pod_made_by_the_real_bridge_plugin_keeps_its_veth_and_bridge() {
    // Flannel's delegate: the reference bridge plugin with host-local IPAM, run for a real pod
    // network namespace (Debian's containernetworking-plugins).
    let plugins = Path::new("/usr/lib/cni");
    assert!(
        plugins.join("bridge").exists(),
        "install containernetworking-plugins (scripts/test.sh does)"
    );
    let node = Node::new();
    foreign(&node);
    flannel(&node);
    let pod = Node::new();
    let leases = node.root().join("var/lib/cni/networks");
    let conf = format!(
        r#"{{"cniVersion":"0.3.1","name":"cbr0","type":"bridge","bridge":"cni0","isGateway":true,"ipMasq":false,"ipam":{{"type":"host-local","subnet":"10.244.0.0/24","dataDir":"{}"}}}}"#,
        leases.display()
    );
    let script = format!(
        "CNI_COMMAND=ADD CNI_CONTAINERID=pod0 CNI_NETNS=/run/netns/{} CNI_IFNAME=eth0 CNI_PATH={} {}/bridge <<'EOF'\n{conf}\nEOF",
        pod.netns,
        plugins.display(),
        plugins.display()
    );
    node.sh(&script);
    let veth = node.output("ip -o link show master cni0 | cut -d: -f2 | cut -d@ -f1 | tr -d ' '");
    let veth = veth.trim();
    assert!(veth.starts_with("veth"), "bridge plugin made {veth:?}");

    let out = node.cniswap(&[
        "clean",
        "--cni",
        "flannel",
        "--backup",
        node.root().join("../b-pod").to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("its pod sandbox still exists") && text.contains("pods are still attached"),
        "{text}"
    );
    let after = node.dump();
    assert!(
        after.contains(veth) && after.contains("cni0"),
        "pod network removed under a live pod"
    );
    assert!(!after.contains("flannel.1") && !after.contains("FLANNEL-POSTRTG"));
    // The pod still has its address.
    assert!(pod.output("ip -o addr show eth0").contains("10.244.0."));
    let _ = std::fs::remove_dir_all(node.root().join("../b-pod"));
}

mod foreign_objects {
    //! Property: whatever foreign objects a node has, whose names merely resemble a CNI's,
    //! a clean of any CNI leaves every one of them in place.
    use super::*;
    use proptest::prelude::*;

    #[derive(Debug, Clone)]
    enum Foreign {
        Bridge(String),
        Chain {
            nft: bool,
            table: &'static str,
            name: String,
        },
        Ipset(String),
        NftTable(String),
        File(String),
    }

    fn suffix() -> impl Strategy<Value = String> {
        "[a-z0-9]{1,5}"
    }

    fn foreign_object() -> impl Strategy<Value = Foreign> {
        prop_oneof![
            (
                prop::sample::select(vec![
                    "flannel", "cilium", "calico", "weav", "cni", "lxcbr", "kube"
                ]),
                suffix()
            )
                .prop_map(|(p, s)| Foreign::Bridge(format!("{p}{s}"))),
            (
                any::<bool>(),
                prop::sample::select(vec!["filter", "nat", "mangle"]),
                prop::sample::select(vec![
                    "FLANNELX", "CALI-", "CILIUMX", "WEAVX", "KUBEX", "CNIX", "ciliumx"
                ]),
                suffix()
            )
                .prop_map(|(nft, table, p, s)| Foreign::Chain {
                    nft,
                    table,
                    name: format!("{p}{}", s.to_uppercase())
                }),
            (
                prop::sample::select(vec!["calico-", "cilium-", "weavex", "kubex-", "flannel"]),
                suffix()
            )
                .prop_map(|(p, s)| Foreign::Ipset(format!("{p}{s}"))),
            (
                prop::sample::select(vec!["flannel", "calico", "cilium", "kube-proxyx"]),
                suffix()
            )
                .prop_map(|(p, s)| Foreign::NftTable(format!("{p}{s}"))),
            (
                prop::sample::select(vec![
                    "etc/cni/net.d/00-multus",
                    "opt/cni/bin/flannelx",
                    "opt/cni/bin/cilium",
                    "var/lib/calicox"
                ]),
                suffix()
            )
                .prop_map(|(p, s)| Foreign::File(format!("{p}-{s}"))),
        ]
    }

    /// Creates the object; None when the CNI's own state already has that name (a generated
    /// `weav`+`e` is Weave's bridge, `cni`+`0` Flannel's): that object is not foreign.
    fn create(node: &Node, object: &Foreign) -> Option<String> {
        let exists = |probe: &str| {
            Command::new("ip")
                .args(["netns", "exec", &node.netns, "sh", "-c", probe])
                .output()
                .unwrap()
                .status
                .success()
        };
        let probe = match object {
            Foreign::Bridge(name) => format!("ip link show {name}"),
            Foreign::Chain { nft, table, name } => {
                let tool = if *nft {
                    "iptables-nft"
                } else {
                    "iptables-legacy"
                };
                format!("{tool} -t {table} -n -L {name}")
            }
            Foreign::Ipset(name) => format!("ipset list -n {name}"),
            Foreign::NftTable(name) => format!("nft list table inet {name}"),
            Foreign::File(path) => format!("test -e {}/{path}", node.root().display()),
        };
        if exists(&format!("{probe} >/dev/null 2>&1")) {
            return None;
        }
        Some(match object {
            Foreign::Bridge(name) => {
                node.sh(&format!("ip link add {name} type bridge"));
                format!("{name}:")
            }
            Foreign::Chain { nft, table, name } => {
                let tool = if *nft {
                    "iptables-nft"
                } else {
                    "iptables-legacy"
                };
                node.sh(&format!("{tool} -t {table} -N {name}"));
                format!(":{name} ")
            }
            Foreign::Ipset(name) => {
                node.sh(&format!("ipset create {name} hash:ip"));
                format!("create {name} ")
            }
            Foreign::NftTable(name) => {
                node.sh(&format!("nft add table inet {name}"));
                format!("table inet {name} ")
            }
            Foreign::File(path) => {
                node.file(path, "foreign");
                path.clone()
            }
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

        #[test]
        fn clean_never_removes_a_foreign_object(
            objects in prop::collection::vec(foreign_object(), 1..8),
            cni in prop::sample::select(vec!["flannel", "canal", "calico", "cilium", "weave"]),
        ) {
            let node = Node::new();
            foreign(&node);
            setup(cni, &node);
            let mut markers = Vec::new();
            let mut seen = std::collections::BTreeSet::new();
            for object in &objects {
                let key = format!("{object:?}");
                if seen.insert(key) {
                    markers.extend(create(&node, object));
                }
            }
            prop_assume!(!markers.is_empty());
            let backup = node.root().join(format!("../{}-prop", node.netns));
            let out = node.cniswap(&["clean", "--cni", cni, "--include-kube-proxy", "--backup", backup.to_str().unwrap()]);
            prop_assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
            let after = node.dump();
            for marker in &markers {
                prop_assert!(after.contains(marker.as_str()), "{cni} clean removed foreign {marker}\n{}", String::from_utf8_lossy(&out.stdout));
            }
            let _ = std::fs::remove_dir_all(backup);
        }
    }
}

/// k3s runs its own containerd with its CNI directories under /var/lib/rancher/k3s: the
/// inventory follows its config, and clean finds Flannel's files there.
#[test]
fn k3s_cni_directories_come_from_its_containerd_config() {
    let node = Node::new();
    node.file(
        "var/lib/rancher/k3s/agent/etc/containerd/config.toml",
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"/var/lib/rancher/k3s/data/current/bin\"\n  conf_dir = \"/var/lib/rancher/k3s/agent/etc/cni/net.d\"\n",
    );
    node.file(
        "var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist",
        r#"{"cniVersion":"1.0.0","name":"cbr0","plugins":[{"type":"flannel"},{"type":"portmap"}]}"#,
    );
    node.file("var/lib/rancher/k3s/data/current/bin/flannel", "binary");
    node.file("var/lib/rancher/k3s/data/current/bin/portmap", "binary");
    // A stale file in the default directory is not what k3s loads.
    node.file(
        "etc/cni/net.d/05-cilium.conflist",
        r#"{"cniVersion":"0.3.1","name":"cilium","plugins":[{"type":"cilium-cni"}]}"#,
    );

    let out = node.cniswap(&["inventory", "-o", "json"]);
    let inventory: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let choice = &inventory["cni_config"];
    assert_eq!(
        choice["conf_dir"],
        "/var/lib/rancher/k3s/agent/etc/cni/net.d"
    );
    assert_eq!(
        choice["dirs_from"],
        "/var/lib/rancher/k3s/agent/etc/containerd/config.toml"
    );
    assert_eq!(
        choice["containerd"]["file"],
        "/var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist"
    );
    assert_eq!(
        choice["containerd"]["missing_binaries"],
        serde_json::json!([])
    );

    let out = node.cniswap(&["clean", "--cni", "flannel", "--dry-run"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist"),
        "{text}"
    );
    // k3s' bundled plugins are k3s' own (links to its multi-call binary, put back at every
    // start): never moved away.
    assert!(
        !text
            .lines()
            .any(|l| l.contains("move") && l.contains("k3s/data/current/bin/flannel")),
        "{text}"
    );
    assert!(!text.contains("05-cilium.conflist"), "{text}");
}

/// A k3s node whose k3s process ran its embedded Flannel: Flannel's kernel objects as k3s
/// makes them, its config in k3s' own CNI directories (found through k3s' containerd config),
/// and k3s' bundled plugins. `proc/300` is the k3s process, started a minute ago.
fn k3s_flannel(node: &Node) {
    node.sh(
        "ip link add flannel.1 type vxlan id 1 dstport 8472 local 192.168.1.10 dev eth0 nolearning
         ip addr add 10.42.0.0/32 dev flannel.1; ip link set flannel.1 up
         ip route add 10.42.1.0/24 via 10.42.1.0 dev flannel.1 onlink
         ip link add cni0 type bridge; ip addr add 10.42.0.1/24 dev cni0; ip link set cni0 up
         iptables-legacy -t nat -N FLANNEL-POSTRTG
         iptables-legacy -t nat -A POSTROUTING -m comment --comment 'flanneld masq' -j FLANNEL-POSTRTG
         iptables-legacy -N FLANNEL-FWD
         iptables-legacy -A FORWARD -m comment --comment 'flanneld forward' -j FLANNEL-FWD",
    );
    node.file(
        "var/lib/rancher/k3s/agent/etc/containerd/config.toml",
        "version = 2\n[plugins.\"io.containerd.grpc.v1.cri\".cni]\n  bin_dir = \"/var/lib/rancher/k3s/data/abc123/bin\"\n  conf_dir = \"/var/lib/rancher/k3s/agent/etc/cni/net.d\"\n",
    );
    node.file(
        "var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist",
        r#"{"name":"cbr0","cniVersion":"1.0.0","plugins":[{"type":"flannel","delegate":{"hairpinMode":true,"forceAddress":true,"isDefaultGateway":true}},{"type":"portmap","capabilities":{"portMappings":true}},{"type":"bandwidth","capabilities":{"bandwidth":true}}]}"#,
    );
    for plugin in [
        "flannel",
        "bridge",
        "host-local",
        "portmap",
        "bandwidth",
        "cni",
    ] {
        node.file(
            &format!("var/lib/rancher/k3s/data/abc123/bin/{plugin}"),
            "k3s multi-call",
        );
    }
    node.file(
        "run/flannel/subnet.env",
        "FLANNEL_NETWORK=10.42.0.0/16\nFLANNEL_SUBNET=10.42.0.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n",
    );
    node.file(
        "var/lib/rancher/k3s/agent/etc/flannel/net-conf.json",
        r#"{"Network": "10.42.0.0/16", "EnableIPv6": false, "Backend": {"Type": "vxlan"}}"#,
    );
    k3s_process(node, 60);
}

/// The k3s process (`k3s-server`, pid 300), started `ago` seconds before now.
fn k3s_process(node: &Node, ago: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    node.file("proc/stat", &format!("cpu 1 2 3\nbtime {}\n", now - 10_000));
    node.file("proc/300/comm", "k3s-server\n");
    node.file(
        "proc/300/stat",
        &format!(
            "300 (k3s-server) S 1 300 300 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 40 0 {} 1 1\n",
            (10_000 - ago) * 100
        ),
    );
}

/// Issue 17 item 4: on k3s the node agent names k3s as the maker of Flannel's state, refuses
/// to clean while k3s runs its embedded Flannel, and once k3s restarted without it removes
/// Flannel's state from k3s' own directories, keeping k3s' bundled plugins and config.
#[test]
fn k3s_embedded_flannel_is_named_and_cleaned_the_k3s_way() {
    let node = Node::new();
    foreign(&node);
    k3s_flannel(&node);

    let out = node.cniswap(&["inventory", "-o", "json"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inventory: cniswap_model::Inventory = serde_json::from_slice(&out.stdout).unwrap();
    let dist = inventory.distribution.clone().unwrap_or_default();
    assert!(dist.starts_with("k3s (/var/lib/rancher/k3s)"), "{dist}");
    assert!(
        inventory
            .agents
            .iter()
            .any(|a| a.pid == 300 && a.owner == cniswap_model::Owner::Flannel),
        "{:?}",
        inventory.agents
    );
    let item = |id: &str| {
        inventory
            .items
            .iter()
            .find(|i| i.id.starts_with(id))
            .unwrap_or_else(|| panic!("no {id} in {:#?}", inventory.items))
            .clone()
    };
    let link = item("link flannel.1");
    assert_eq!(link.owner, cniswap_model::Owner::Flannel);
    assert!(
        link.why.contains("on k3s made by its embedded Flannel"),
        "{}",
        link.why
    );
    let conf = item("file /var/lib/rancher/k3s/agent/etc/cni/net.d/10-flannel.conflist");
    assert_eq!(conf.owner, cniswap_model::Owner::Flannel);
    let plugin = item("file /var/lib/rancher/k3s/data/abc123/bin/flannel");
    assert_eq!(
        plugin.owner,
        cniswap_model::Owner::CniPlugins,
        "{}",
        plugin.why
    );
    assert!(plugin.why.contains("bundled by k3s/RKE2"), "{}", plugin.why);
    let kube = item("iptables legacy ipv4 nat chain KUBE-SERVICES");
    assert!(
        kube.why.contains("on k3s made by its embedded kube-proxy"),
        "{}",
        kube.why
    );
    let text = node.cniswap(&["inventory"]);
    assert!(
        String::from_utf8_lossy(&text.stdout).contains("Distribution: k3s"),
        "{}",
        String::from_utf8_lossy(&text.stdout)
    );

    // k3s still runs its Flannel: cleaning now would have k3s make it all again.
    let refused = node.cniswap(&["clean", "--cni", "flannel", "--dry-run"]);
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("k3s-server (embedded Flannel) is running"),
        "{err}"
    );

    // k3s restarted with flannel-backend: none (its process is younger than Flannel's config).
    let old = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(
            node.root()
                .join("var/lib/rancher/k3s/agent/etc/flannel/net-conf.json"),
        )
        .unwrap()
        .set_modified(old)
        .unwrap();
    k3s_process(&node, 5);
    // k3s still serves kube-proxy's health port from its own process: kube-proxy's state stays.
    node.file(
        "proc/net/tcp",
        "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n   0: 00000000:2810 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 777 1 0 100 0 0 10 0\n",
    );
    std::fs::create_dir_all(node.root().join("proc/300/fd")).unwrap();
    std::os::unix::fs::symlink("socket:[777]", node.root().join("proc/300/fd/5")).unwrap();
    let refused = node.cniswap(&[
        "clean",
        "--cni",
        "flannel",
        "--include-kube-proxy",
        "--dry-run",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains("k3s-server (embedded kube-proxy) is running"),
        "{err}"
    );
    std::fs::remove_dir_all(node.root().join("proc/net")).unwrap();
    let backup = node
        .root()
        .join("../")
        .join(format!("{}-backup-k3s", node.netns));
    let out = node.cniswap(&[
        "clean",
        "--cni",
        "flannel",
        "--backup",
        backup.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = node.dump();
    for gone in [
        "flannel.1",
        "cni0",
        "FLANNEL-POSTRTG",
        "FLANNEL-FWD",
        "10-flannel.conflist",
        "subnet.env",
        "flannel/net-conf.json",
    ] {
        assert!(!after.contains(gone), "{gone} survived the clean:\n{after}");
    }
    // k3s' own: its bundled plugins and containerd config; and everything foreign.
    for kept in [
        "k3s/data/abc123/bin/flannel",
        "k3s/data/abc123/bin/bridge",
        "k3s/data/abc123/bin/cni",
        "containerd/config.toml",
        "KUBE-SERVICES",
        "br-app",
        "APP-INPUT",
    ] {
        assert!(after.contains(kept), "{kept} was removed:\n{after}");
    }
    let restored = node.cniswap(&[
        "restore",
        "--backup",
        backup.to_str().unwrap(),
        "--network-here",
    ]);
    assert!(
        restored.status.success(),
        "{}",
        String::from_utf8_lossy(&restored.stderr)
    );
    let back = node.dump();
    for item in [
        "10-flannel.conflist",
        "subnet.env",
        "flannel/net-conf.json",
        "cni0",
        "FLANNEL-POSTRTG",
    ] {
        assert!(back.contains(item), "{item} not restored:\n{back}");
    }
    let _ = std::fs::remove_dir_all(backup);
}
