//! Who owns a piece of node state, decided by name + kind + protocol + CIDR together, never by
//! a bare substring (research/node-state.md, cilium.md, calico.md). Everything not recognised
//! is `Unknown` and is never removed.

use cniswap_model::Owner;

/// Reference plugins shipped with (and shared by) several CNIs: never removed.
pub const SHARED_PLUGINS: &[&str] = &[
    "bridge",
    "host-local",
    "loopback",
    "portmap",
    "firewall",
    "tuning",
    "bandwidth",
    "dhcp",
    "host-device",
    "ipvlan",
    "macvlan",
    "ptp",
    "sbr",
    "static",
    "vlan",
    "vrf",
    "tap",
    "dummy",
];

/// A link by name, kind (`ip -d link` info_kind) and bridge master.
pub fn link(name: &str, kind: &str, master: Option<&str>) -> (Owner, String) {
    let why = |s: &str| s.to_string();
    match (kind, name) {
        ("vxlan", n) if numbered(n, "flannel.") || numbered(n, "flannel-v6.") => {
            (Owner::Flannel, why("vxlan named flannel.<VNI>"))
        }
        ("wireguard", "flannel-wg" | "flannel-wg-v6") => {
            (Owner::Flannel, why("wireguard flannel-wg"))
        }
        ("ipip", "flannel.ipip") => (Owner::Flannel, why("ipip flannel.ipip")),
        ("bridge", "cni0") => (Owner::Flannel, why("bridge cni0 of the flannel conflist")),
        ("veth", _) if master == Some("cni0") => (Owner::Flannel, why("pod veth enslaved to cni0")),
        ("veth", n) if n.starts_with("cali") => (Owner::Calico, why("pod veth cali<hash>")),
        ("ipip", "tunl0") => (Owner::Calico, why("ipip tunl0")),
        ("vxlan", "vxlan.calico" | "vxlan-v6.calico") => (Owner::Calico, why("vxlan vxlan.calico")),
        ("wireguard", "wireguard.cali" | "wg-v6.cali") => (Owner::Calico, why("wireguard.cali")),
        (_, "bpfin.cali" | "bpfout.cali") => (Owner::Calico, why("Calico eBPF device")),
        ("veth", "cilium_host" | "cilium_net") => {
            (Owner::Cilium, why("veth pair cilium_host/cilium_net"))
        }
        ("vxlan", "cilium_vxlan") | ("geneve", "cilium_geneve") => {
            (Owner::Cilium, why("Cilium overlay device"))
        }
        ("ipip" | "ip6tnl", "cilium_ipip4" | "cilium_ipip6") => {
            (Owner::Cilium, why("Cilium ipip device"))
        }
        ("wireguard", "cilium_wg0") => (Owner::Cilium, why("wireguard cilium_wg0")),
        ("veth", n) if n.starts_with("lxc") => (Owner::Cilium, why("pod veth lxc<hash>")),
        ("bridge" | "openvswitch", "weave") | ("openvswitch", "datapath") => {
            (Owner::Weave, why("weave bridge/datapath"))
        }
        ("veth", n) if n.starts_with("vethwe") => (Owner::Weave, why("veth vethwe*")),
        ("veth", _) if master == Some("weave") => (Owner::Weave, why("pod veth enslaved to weave")),
        ("vxlan" | "openvswitch", n)
            if n.starts_with("vxlan-") && n[6..].parse::<u16>().is_ok() =>
        {
            (Owner::Weave, why("weave vport vxlan-<port>"))
        }
        ("dummy", "kube-ipvs0") => (Owner::KubeProxy, why("dummy kube-ipvs0 (IPVS mode)")),
        _ => (Owner::Unknown, why("not a known CNI device")),
    }
}

fn numbered(name: &str, prefix: &str) -> bool {
    name.strip_prefix(prefix)
        .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Pod veths are removed only when their pod sandbox is gone.
pub fn is_pod_veth(owner: Owner, name: &str, kind: &str) -> bool {
    kind == "veth"
        && match owner {
            Owner::Calico => name.starts_with("cali"),
            Owner::Cilium => name.starts_with("lxc"),
            Owner::Flannel | Owner::Weave => !name.starts_with("vethwe"),
            _ => false,
        }
}

/// Route protocols that name their owner.
pub fn route_protocol(protocol: &str) -> Option<(Owner, &'static str)> {
    match protocol {
        // Felix installs its routes with protocol 80; BIRD with `bird` (12).
        "80" => Some((Owner::Calico, "protocol 80 (Felix)")),
        "bird" | "12" => Some((Owner::Calico, "protocol bird (Calico BGP)")),
        _ => None,
    }
}

/// Cilium's routing tables and the rules that send traffic there.
pub const CILIUM_TABLES: &[u32] = &[200, 201, 202, 2004, 2005];

/// An ip rule by priority and table.
pub fn rule(priority: u32, table: Option<u32>) -> Option<(Owner, &'static str)> {
    match (priority, table) {
        (_, Some(t)) if CILIUM_TABLES.contains(&t) => {
            Some((Owner::Cilium, "lookup in a Cilium table"))
        }
        // Calico WireGuard routes through its own table at priority 99.
        (99, Some(t)) if (1..=250).contains(&t) => {
            Some((Owner::Calico, "priority 99 (Calico WireGuard)"))
        }
        _ => None,
    }
}

/// An iptables chain by name.
pub fn chain(name: &str) -> Option<(Owner, &'static str)> {
    let name = name.strip_prefix("OLD_").unwrap_or(name);
    if name.starts_with("FLANNEL-") {
        Some((Owner::Flannel, "chain FLANNEL-*"))
    } else if name.starts_with("cali-") || name.starts_with("felix-") {
        Some((Owner::Calico, "chain cali-*"))
    } else if [
        "califw-", "calitw-", "califh-", "calith-", "calipi-", "calipo-",
    ]
    .iter()
    .any(|p| name.starts_with(p))
    {
        Some((Owner::Calico, "historic Calico chain"))
    } else if name.starts_with("CILIUM_") {
        Some((Owner::Cilium, "chain CILIUM_*"))
    } else if name.starts_with("WEAVE") {
        Some((Owner::Weave, "chain WEAVE*"))
    } else if name.starts_with("KUBE-") {
        Some((Owner::KubeProxy, "chain KUBE-* (kube-proxy/kubelet)"))
    } else if name.starts_with("CNI-") {
        Some((Owner::CniPlugins, "chain CNI-* (reference plugins)"))
    } else {
        None
    }
}

/// A rule comment that names its owner.
pub fn comment(text: &str) -> Option<Owner> {
    if text.starts_with("cali:") {
        Some(Owner::Calico)
    } else if text.starts_with("cilium-feeder:") || text.starts_with("cilium:") {
        Some(Owner::Cilium)
    } else if text.starts_with("flanneld ") {
        Some(Owner::Flannel)
    } else {
        None
    }
}

pub fn ipset(name: &str) -> Owner {
    if name.starts_with("cali40") || name.starts_with("cali60") || name.starts_with("felix-") {
        Owner::Calico
    } else if name.starts_with("cilium_node_set_") {
        Owner::Cilium
    } else if name.starts_with("weave-") || name == "weaver-no-masq-local" {
        Owner::Weave
    } else if name.starts_with("KUBE-") {
        Owner::KubeProxy
    } else {
        Owner::Unknown
    }
}

pub fn nft_table(family: &str, name: &str) -> Owner {
    match (family, name) {
        ("ip", "flannel-ipv4") | ("ip6", "flannel-ipv6") => Owner::Flannel,
        ("ip" | "ip6", "calico") | ("arp", "calico-arp") => Owner::Calico,
        ("ip" | "ip6", "kube-proxy") => Owner::KubeProxy,
        ("inet", "cni_plugins_masquerade") | (_, "cni_hostport") => Owner::CniPlugins,
        _ => Owner::Unknown,
    }
}

/// Tables iptables-nft manages: shown through iptables-nft-save, not as nft tables.
pub fn is_xtables_table(family: &str, name: &str) -> bool {
    matches!(family, "ip" | "ip6" | "arp" | "bridge")
        && matches!(name, "filter" | "nat" | "mangle" | "raw" | "security")
}

/// A CNI config file, by the plugin types it lists (the file name only breaks ties).
pub fn conf_file(name: &str, plugins: &[String]) -> Owner {
    let has = |t: &str| plugins.iter().any(|p| p == t);
    if has("cilium-cni") {
        Owner::Cilium
    } else if has("calico") && (has("flannel") || name.contains("canal")) {
        Owner::Canal
    } else if has("calico") {
        Owner::Calico
    } else if has("flannel") {
        Owner::Flannel
    } else if has("weave-net") || has("weave-plugin") {
        Owner::Weave
    } else if name.contains("cilium") {
        Owner::Cilium
    } else if name.contains("canal") {
        Owner::Canal
    } else if name.contains("calico") {
        Owner::Calico
    } else if name.contains("flannel") {
        Owner::Flannel
    } else if name.contains("weave") {
        Owner::Weave
    } else {
        Owner::Unknown
    }
}

/// A file in the CNI bin dir.
pub fn binary(name: &str) -> Owner {
    match name {
        "flannel" => Owner::Flannel,
        // Calico also installs a binary named `install`; the name is too common to be sure.
        "calico" | "calico-ipam" => Owner::Calico,
        "cilium-cni" => Owner::Cilium,
        "weave-net" | "weave-ipam" | "weave-plugin" => Owner::Weave,
        n if SHARED_PLUGINS.contains(&n) => Owner::CniPlugins,
        _ => Owner::Unknown,
    }
}

/// State directories and files outside the CNI conf and bin dirs (paths relative to the root).
pub const STATE_PATHS: &[(&str, Owner)] = &[
    ("run/flannel", Owner::Flannel),
    ("run/flannel/subnet.env", Owner::Flannel),
    // Written by k3s when it starts its embedded Flannel (again at every start while it does).
    (crate::distribution::K3S_FLANNEL_CONF, Owner::Flannel),
    ("var/lib/cni/flannel", Owner::Flannel),
    ("var/lib/cni/networks/cbr0", Owner::Flannel),
    ("var/lib/calico", Owner::Calico),
    ("var/run/calico", Owner::Calico),
    ("run/calico", Owner::Calico),
    ("var/log/calico", Owner::Calico),
    ("var/lib/cni/networks/k8s-pod-network", Owner::Calico),
    ("var/run/cilium", Owner::Cilium),
    ("run/cilium", Owner::Cilium),
    ("var/lib/cilium", Owner::Cilium),
    ("etc/sysctl.d/99-zzz-override_cilium.conf", Owner::Cilium),
    ("var/lib/weave", Owner::Weave),
];

/// A pin under /sys/fs/bpf (path relative to the bpffs mount).
pub fn bpf_pin(relative: &str) -> Owner {
    let file = relative.rsplit('/').next().unwrap_or(relative);
    if relative.starts_with("cilium")
        || (relative.starts_with("tc/globals/") && file.starts_with("cilium_"))
    {
        Owner::Cilium
    } else if relative.starts_with("calico")
        || (relative.starts_with("tc/globals/")
            && (file.starts_with("cali_")
                || file.starts_with("calico_")
                || file.starts_with("xdp_cali_")))
    {
        Owner::Calico
    } else {
        Owner::Unknown
    }
}

/// An agent process by its `comm` name.
pub fn process(comm: &str) -> Option<Owner> {
    match comm {
        "flanneld" => Some(Owner::Flannel),
        "calico-node" | "bird" | "bird6" | "calico-felix" => Some(Owner::Calico),
        "cilium-agent" => Some(Owner::Cilium),
        "weaver" | "weave-npc" => Some(Owner::Weave),
        "kube-proxy" => Some(Owner::KubeProxy),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_need_the_right_kind() {
        assert_eq!(link("flannel.1", "vxlan", None).0, Owner::Flannel);
        // A bridge that happens to be called flannel.1 is not Flannel's.
        assert_eq!(link("flannel.1", "bridge", None).0, Owner::Unknown);
        assert_eq!(link("flannel.x", "vxlan", None).0, Owner::Unknown);
        assert_eq!(link("calico0", "dummy", None).0, Owner::Unknown);
        assert_eq!(link("cali1234567890a", "veth", None).0, Owner::Calico);
        assert_eq!(link("lxc_health", "veth", None).0, Owner::Cilium);
        assert_eq!(link("veth1234", "veth", Some("cni0")).0, Owner::Flannel);
        assert_eq!(link("veth1234", "veth", Some("br0")).0, Owner::Unknown);
        assert_eq!(link("vxlan-6784", "vxlan", None).0, Owner::Weave);
        assert_eq!(link("vxlan0", "vxlan", None).0, Owner::Unknown);
    }

    #[test]
    fn chains_comments_and_sets() {
        assert_eq!(chain("FLANNEL-POSTRTG").unwrap().0, Owner::Flannel);
        assert_eq!(chain("OLD_CILIUM_POST_nat").unwrap().0, Owner::Cilium);
        assert_eq!(chain("KUBE-SERVICES").unwrap().0, Owner::KubeProxy);
        assert!(chain("MY-FLANNEL-CHAIN").is_none());
        assert_eq!(comment("cali:abc"), Some(Owner::Calico));
        assert_eq!(comment("calico rule"), None);
        assert_eq!(ipset("cali40all-hosts-net"), Owner::Calico);
        assert_eq!(ipset("calico-custom"), Owner::Unknown);
    }

    #[test]
    fn config_files_by_plugin_type() {
        let types = |t: &[&str]| t.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            conf_file("10-flannel.conflist", &types(&["flannel", "portmap"])),
            Owner::Flannel
        );
        assert_eq!(
            conf_file("10-canal.conflist", &types(&["calico", "portmap"])),
            Owner::Canal
        );
        assert_eq!(
            conf_file("05-cilium.conflist", &types(&["cilium-cni"])),
            Owner::Cilium
        );
        assert_eq!(
            conf_file("99-loopback.conf", &types(&["loopback"])),
            Owner::Unknown
        );
        assert_eq!(binary("bridge"), Owner::CniPlugins);
        assert_eq!(binary("calico-ipam"), Owner::Calico);
    }
}
