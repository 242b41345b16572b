//! Links, addresses, routes (all tables), ip rules, and neighbour/FDB entries of overlay
//! devices, from iproute2's JSON output.

use crate::owner;
use crate::tools;
use cniswap_model::{Item, ItemKind, Owner};
use serde_json::{Value, json};
use std::collections::BTreeMap;

fn ip_json(args: &[&str], unreadable: &mut Vec<String>) -> Vec<Value> {
    match tools::run("ip", args, None) {
        Ok(text) if text.trim().is_empty() => Vec::new(),
        Ok(text) => serde_json::from_str::<Vec<Value>>(&text).unwrap_or_default(),
        Err(e) => {
            unreadable.push(format!("ip {}: {}", args.join(" "), e.message));
            Vec::new()
        }
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    match v.get(key)? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

pub fn collect(items: &mut Vec<Item>, unreadable: &mut Vec<String>, flannel: Option<ipnet::IpNet>) {
    let links = ip_json(&["-j", "-d", "link", "show"], unreadable);
    let mut owners: BTreeMap<String, Owner> = BTreeMap::new();
    for link in &links {
        let Some(name) = text(link, "ifname") else {
            continue;
        };
        let kind = link
            .pointer("/linkinfo/info_kind")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        if name == "lo" {
            continue;
        }
        let master = text(link, "master");
        let (owner, why) = owner::link(&name, &kind, master.as_deref());
        owners.insert(name.clone(), owner);
        let data = link.pointer("/linkinfo/info_data");
        let mut id = format!(
            "link {name} ({})",
            if kind.is_empty() { "device" } else { &kind }
        );
        if kind == "vxlan" {
            let vni = data
                .and_then(|d| d.get("id"))
                .and_then(Value::as_u64)
                .unwrap_or_default();
            let port = data
                .and_then(|d| d.get("port"))
                .and_then(Value::as_u64)
                .unwrap_or_default();
            id = format!("link {name} (vxlan id {vni} port {port})");
        }
        // An XDP program on the device (`ip -d link` shows it): Cilium's and Calico's go first.
        if let Some(xdp) = link.get("xdp") {
            let prog = xdp
                .pointer("/prog/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            let prog_owner = if prog.starts_with("cil_") || prog.starts_with("bpf_xdp") {
                Owner::Cilium
            } else if prog.contains("cali") {
                Owner::Calico
            } else {
                Owner::Unknown
            };
            items.push(Item {
                kind: ItemKind::TcFilter,
                id: format!("xdp program {prog} on {name}"),
                owner: prog_owner,
                why: format!("XDP program {prog}"),
                detail: json!({"dev": name, "direction": "xdp", "pref": 0, "name": prog}),
            });
        }
        items.push(Item {
            kind: ItemKind::Link,
            id,
            owner,
            why,
            detail: json!({
                "name": name,
                "kind": kind,
                "master": master,
                "mtu": link.get("mtu"),
                "address": link.get("address"),
                "up": link.get("flags").and_then(Value::as_array).is_some_and(|f| f.iter().any(|x| x == "UP")),
                                "peer_netns": link.get("link_netnsid"),
                                "group": link.get("group"),
                "peer": link.get("link"),
                "info_data": data,
            }),
        });
    }

    for family in ["-4", "-6"] {
        for entry in ip_json(&[family, "-j", "addr", "show"], unreadable) {
            let Some(dev) = text(&entry, "ifname") else {
                continue;
            };
            let owner = owners.get(&dev).copied().unwrap_or(Owner::Unknown);
            if owner == Owner::Unknown {
                continue;
            }
            for addr in entry
                .get("addr_info")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let (Some(local), Some(prefix)) = (text(addr, "local"), text(addr, "prefixlen"))
                else {
                    continue;
                };
                if text(addr, "scope").as_deref() == Some("link") {
                    continue;
                }
                items.push(Item {
                    kind: ItemKind::Address,
                    id: format!("address {local}/{prefix} on {dev}"),
                    owner,
                    why: format!("on {dev}"),
                    detail: json!({"dev": dev, "address": format!("{local}/{prefix}")}),
                });
            }
        }

        for route in ip_json(
            &[family, "-j", "-d", "route", "show", "table", "all"],
            unreadable,
        ) {
            let table = text(&route, "table").unwrap_or_else(|| "main".into());
            let kind = text(&route, "type").unwrap_or_else(|| "unicast".into());
            if table == "local"
                || matches!(
                    kind.as_str(),
                    "local" | "broadcast" | "multicast" | "anycast"
                )
            {
                continue;
            }
            let dst = text(&route, "dst").unwrap_or_default();
            let dev = text(&route, "dev");
            let protocol = text(&route, "protocol").unwrap_or_else(|| "boot".into());
            let gateway = text(&route, "gateway");
            let dev_owner = dev
                .as_ref()
                .and_then(|d| owners.get(d))
                .copied()
                .unwrap_or(Owner::Unknown);
            let table_number: Option<u32> = table.parse().ok();
            let (owner, why) = if dev_owner != Owner::Unknown {
                (
                    dev_owner,
                    format!("via owned device {}", dev.clone().unwrap_or_default()),
                )
            } else if let Some((o, why)) = owner::route_protocol(&protocol) {
                (o, why.to_string())
            } else if table_number.is_some_and(|t| owner::CILIUM_TABLES.contains(&t)) {
                (Owner::Cilium, format!("in Cilium table {table}"))
            } else if let (Some(network), Some(_)) = (flannel, &gateway)
                && dst
                    .parse::<ipnet::IpNet>()
                    .is_ok_and(|d| network.contains(&d))
                && protocol == "boot"
            {
                (
                    Owner::Flannel,
                    format!("host-gw route inside FLANNEL_NETWORK {network}"),
                )
            } else {
                continue;
            };
            let mut spec = dst.clone();
            if let Some(g) = &gateway {
                spec.push_str(&format!(" via {g}"));
            }
            if let Some(d) = &dev {
                spec.push_str(&format!(" dev {d}"));
            }
            items.push(Item {
                kind: ItemKind::Route,
                id: format!("route {spec} proto {protocol} table {table}"),
                owner,
                why,
                detail: json!({
                    "family": family,
                    "type": kind,
                    "dst": dst,
                    "gateway": gateway,
                    "dev": dev,
                    "protocol": protocol,
                    "table": table,
                    "onlink": route.get("flags").and_then(Value::as_array).is_some_and(|f| f.iter().any(|x| x == "onlink")),
                    "metric": route.get("metric"),
                    "dev_owned": dev_owner != Owner::Unknown,
                }),
            });
        }

        for rule in ip_json(&[family, "-j", "rule", "show"], unreadable) {
            let Some(priority) = rule.get("priority").and_then(Value::as_u64) else {
                continue;
            };
            let table = text(&rule, "table");
            let table_number = table.as_deref().and_then(|t| t.parse().ok());
            let Some((owner, why)) = owner::rule(priority as u32, table_number) else {
                continue;
            };
            items.push(Item {
                kind: ItemKind::Rule,
                id: format!("rule {priority}: lookup {}", table.clone().unwrap_or_default()),
                owner,
                why: why.to_string(),
                                detail: json!({"family": family, "priority": priority, "table": table, "spec": rule_spec(&rule)}),
            });
        }
    }

    // Neighbour and FDB entries of overlay devices: listed (they go with their device).
    for (dev, owner) in owners.iter().filter(|(_, o)| **o != Owner::Unknown) {
        let is_overlay = items.iter().any(|i| {
            i.kind == ItemKind::Link
                && i.detail["name"] == dev.as_str()
                && matches!(i.detail["kind"].as_str(), Some("vxlan" | "geneve"))
        });
        if !is_overlay {
            continue;
        }
        for neigh in ip_json(&["-j", "neigh", "show", "dev", dev], unreadable) {
            if let (Some(dst), Some(mac)) = (text(&neigh, "dst"), text(&neigh, "lladdr")) {
                items.push(Item {
                    kind: ItemKind::Neighbour,
                    id: format!("neighbour {dst} lladdr {mac} dev {dev}"),
                    owner: *owner,
                    why: format!("on overlay device {dev}"),
                    detail: json!({"dev": dev, "dst": dst, "lladdr": mac}),
                });
            }
        }
        if let Ok(out) = tools::run("bridge", &["-j", "fdb", "show", "dev", dev], None) {
            for fdb in serde_json::from_str::<Vec<Value>>(&out).unwrap_or_default() {
                if let (Some(mac), Some(dst)) = (text(&fdb, "mac"), text(&fdb, "dst")) {
                    items.push(Item {
                        kind: ItemKind::Neighbour,
                        id: format!("fdb {mac} dst {dst} dev {dev}"),
                        owner: *owner,
                        why: format!("FDB entry of overlay device {dev}"),
                        detail: json!({"dev": dev, "mac": mac, "dst": dst, "fdb": true}),
                    });
                }
            }
        }
    }

    // tc BPF programs of Cilium and Calico on host devices (removed before their pins).
    if tools::available("tc") {
        // Host devices only: pod veths carry no host programs, and one tc call per veth
        // would dominate the run time on a busy node.
        let host_devices: Vec<&String> = owners
            .keys()
            .filter(|dev| {
                !items.iter().any(|i| {
                    i.kind == ItemKind::Link
                        && i.detail["name"] == dev.as_str()
                        && i.detail["kind"] == "veth"
                })
            })
            .collect();
        for dev in host_devices {
            for direction in ["ingress", "egress"] {
                let Ok(out) =
                    tools::run("tc", &["-j", "filter", "show", "dev", dev, direction], None)
                else {
                    continue;
                };
                for filter in serde_json::from_str::<Vec<Value>>(&out).unwrap_or_default() {
                    let name = filter
                        .pointer("/options/bpf_name")
                        .and_then(Value::as_str)
                        .unwrap_or_default();
                    let owner = if name.starts_with("cil_")
                        || name.starts_with("bpf_netdev")
                        || name.starts_with("bpf_host")
                    {
                        Owner::Cilium
                    } else if name.starts_with("cali_") || name.starts_with("calico_") {
                        Owner::Calico
                    } else {
                        continue;
                    };
                    items.push(Item {
                        kind: ItemKind::TcFilter,
                        id: format!("tc {direction} bpf {name} on {dev}"),
                        owner,
                        why: format!("BPF program {name}"),
                        detail: json!({"dev": dev, "direction": direction, "pref": filter.get("pref"), "name": name}),
                    });
                }
            }
        }
    }
}

/// `ip rule` selector and action of a rule, precise enough to delete exactly it and add it back.
fn rule_spec(rule: &Value) -> String {
    let mut spec = format!("priority {}", rule["priority"]);
    if let Some(src) = text(rule, "src").filter(|s| s != "all") {
        match text(rule, "srclen") {
            Some(len) => spec.push_str(&format!(" from {src}/{len}")),
            None => spec.push_str(&format!(" from {src}")),
        }
    }
    if let Some(dst) = text(rule, "dst").filter(|s| s != "all") {
        match text(rule, "dstlen") {
            Some(len) => spec.push_str(&format!(" to {dst}/{len}")),
            None => spec.push_str(&format!(" to {dst}")),
        }
    }
    if let Some(mark) = text(rule, "fwmark") {
        match text(rule, "fwmask") {
            Some(mask) => spec.push_str(&format!(" fwmark {mark}/{mask}")),
            None => spec.push_str(&format!(" fwmark {mark}")),
        }
    }
    for (key, word) in [("iif", "iif"), ("oif", "oif")] {
        if let Some(v) = text(rule, key) {
            spec.push_str(&format!(" {word} {v}"));
        }
    }
    if let Some(table) = text(rule, "table") {
        spec.push_str(&format!(" table {table}"));
    }
    spec
}
