//! The lab's LAN: a host bridge per lab, and per node a network namespace joined to it by a
//! veth pair (`eth0` inside, `cl<lab>n<node>` on the host), like hosts on one switch. The
//! API server listens on the bridge's address, which every node reaches directly.

use crate::error::{LabError, Result};
use crate::process::run;
use std::net::Ipv4Addr;

/// The highest lab index; the bridge name and subnet are derived from it.
pub const MAX_LABS: u8 = 200;

pub fn bridge_name(index: u8) -> String {
    format!("cnilab{index}")
}

/// The lab's LAN, 198.18.<index>.0/24 (RFC 2544 benchmarking space: not routed anywhere).
pub fn gateway(index: u8) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, index, 1)
}

pub fn node_ip(index: u8, node: usize) -> Ipv4Addr {
    Ipv4Addr::new(198, 18, index, 10 + node as u8)
}

/// Claims the first free lab index by creating its bridge: creating a link is atomic, so two
/// labs starting at once never share an index.
pub fn claim_bridge() -> Result<u8> {
    for index in 1..=MAX_LABS {
        let name = bridge_name(index);
        if run("ip", &["link", "add", &name, "type", "bridge"]).is_ok() {
            let gateway = format!("{}/24", gateway(index));
            run("ip", &["addr", "add", &gateway, "dev", &name])?;
            run("ip", &["link", "set", &name, "up"])?;
            return Ok(index);
        }
    }
    Err(LabError::Other(format!(
        "all {MAX_LABS} lab bridges (cnilab1..) exist: stop old labs with `scripts/lab down --dir DIR` \
         or delete stale bridges with `ip link del cnilabN`"
    )))
}

pub fn delete_link(name: &str) {
    let _ = run("ip", &["link", "del", name]);
}

pub fn link_exists(name: &str) -> bool {
    run("ip", &["link", "show", name]).is_ok()
}

pub fn netns_exists(name: &str) -> bool {
    std::path::Path::new("/run/netns").join(name).exists()
}

/// Creates the node's network namespace and uplink, with its address and default route.
pub fn add_node(index: u8, node: usize, netns: &str, uplink: &str) -> Result<Ipv4Addr> {
    let ip = node_ip(index, node);
    run("ip", &["netns", "add", netns])?;
    run(
        "ip",
        &[
            "link", "add", uplink, "type", "veth", "peer", "name", "eth0", "netns", netns,
        ],
    )?;
    run(
        "ip",
        &["link", "set", uplink, "master", &bridge_name(index)],
    )?;
    run("ip", &["link", "set", uplink, "up"])?;
    let address = format!("{ip}/24");
    let gateway = gateway(index).to_string();
    for args in [
        vec!["link", "set", "lo", "up"],
        vec!["addr", "add", &address, "dev", "eth0"],
        vec!["link", "set", "eth0", "up"],
        vec!["route", "add", "default", "via", &gateway],
    ] {
        let mut full = vec!["-n", netns];
        full.extend(args);
        run("ip", &full)?;
    }
    // A node forwards for its pods, and bridged pod traffic passes iptables (kube-proxy's
    // Service rules) as on a real node with br_netfilter.
    for (key, value) in [
        ("net.ipv4.ip_forward", "1"),
        ("net.bridge.bridge-nf-call-iptables", "1"),
        ("net.ipv4.conf.all.rp_filter", "0"),
    ] {
        run(
            "ip",
            &[
                "netns",
                "exec",
                netns,
                "sysctl",
                "-qw",
                &format!("{key}={value}"),
            ],
        )?;
    }
    Ok(ip)
}

pub fn delete_netns(name: &str) {
    let _ = run("ip", &["netns", "del", name]);
}
