//! What the agent sees of its own network: the default route's interface and its MTU, and
//! /etc/resolv.conf. Read from /proc and /sys of the agent's own network namespace.

use std::net::IpAddr;
use std::path::Path;

/// The interface of the IPv4 default route (else IPv6), from /proc/net/route.
pub fn default_interface(proc_net: &Path) -> Option<String> {
    if let Ok(text) = std::fs::read_to_string(proc_net.join("route")) {
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() > 7 && fields[1] == "00000000" && fields[7] == "00000000" {
                return Some(fields[0].to_string());
            }
        }
    }
    if let Ok(text) = std::fs::read_to_string(proc_net.join("ipv6_route")) {
        for line in text.lines() {
            let fields: Vec<&str> = line.split_whitespace().collect();
            if fields.len() == 10
                && fields[0] == "00000000000000000000000000000000"
                && fields[1] == "00"
                && fields[9] != "lo"
            {
                return Some(fields[9].to_string());
            }
        }
    }
    None
}

/// The MTU of `interface`, from /sys/class/net.
pub fn mtu(sys_class_net: &Path, interface: &str) -> Option<u32> {
    std::fs::read_to_string(sys_class_net.join(interface).join("mtu"))
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// `search` domains and `nameserver` addresses of a resolv.conf.
pub fn resolv_conf(text: &str) -> (Vec<String>, Vec<IpAddr>) {
    let mut search = vec![];
    let mut servers = vec![];
    for line in text.lines() {
        let mut words = line.split_whitespace();
        match words.next() {
            Some("search") | Some("domain") => search.extend(words.map(str::to_string)),
            Some("nameserver") => {
                servers.extend(words.next().and_then(|w| w.parse::<IpAddr>().ok()))
            }
            _ => {}
        }
    }
    (search, servers)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_route_interface() {
        let dir = std::env::temp_dir().join(format!("cniswap-netinfo-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("route"),
            "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
             eth0\t0001F40A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n\
             eth0\t00000000\t0101F40A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n",
        )
        .unwrap();
        assert_eq!(default_interface(&dir).as_deref(), Some("eth0"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn resolv_conf_search_and_servers() {
        let (search, servers) = resolv_conf(
            "search cniswap-verify.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n",
        );
        assert_eq!(search[2], "cluster.local");
        assert_eq!(servers, vec!["10.96.0.10".parse::<IpAddr>().unwrap()]);
    }
}
