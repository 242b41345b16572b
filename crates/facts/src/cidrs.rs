use crate::talos::effective;
use crate::util::flag_value;
use cniswap_model::{CidrFacts, CniFacts, SourcedCidr, TalosFacts};
use cniswap_snapshot::Snapshot;
use ipnet::IpNet;

pub fn detect(snapshot: &Snapshot, talos: Option<&TalosFacts>, cnis: &[CniFacts]) -> CidrFacts {
    let mut facts = CidrFacts::default();
    let objects = &snapshot.objects;
    let add = |list: &mut Vec<SourcedCidr>, cidr: &str, source: String| {
        let entry = SourcedCidr {
            cidr: cidr.trim().to_string(),
            source,
        };
        if !entry.cidr.is_empty() && !list.contains(&entry) {
            list.push(entry);
        }
    };

    if let Some((subnets, file)) = effective(talos, |c| {
        (!c.pod_subnets.is_empty()).then(|| c.pod_subnets.clone())
    }) {
        for s in &subnets {
            add(&mut facts.pod, s, format!("Talos podSubnets ({file})"));
        }
    }
    if let Some((subnets, file)) = effective(talos, |c| {
        (!c.service_subnets.is_empty()).then(|| c.service_subnets.clone())
    }) {
        for s in &subnets {
            add(
                &mut facts.service,
                s,
                format!("Talos serviceSubnets ({file})"),
            );
        }
    }

    for pod in objects
        .pods
        .iter()
        .filter(|p| p.metadata.namespace() == "kube-system")
    {
        let args = || {
            pod.spec
                .containers
                .iter()
                .flat_map(|c| c.command.iter().chain(c.args.iter()))
                .map(String::as_str)
        };
        if pod.metadata.name.starts_with("kube-controller-manager")
            && let Some(v) = flag_value(args(), "--cluster-cidr")
        {
            for cidr in v.split(',') {
                add(
                    &mut facts.pod,
                    cidr,
                    format!(
                        "kube-controller-manager --cluster-cidr (pod {})",
                        pod.metadata.name
                    ),
                );
            }
        }
        if pod.metadata.name.starts_with("kube-apiserver")
            && let Some(v) = flag_value(args(), "--service-cluster-ip-range")
        {
            for cidr in v.split(',') {
                add(
                    &mut facts.service,
                    cidr,
                    format!(
                        "kube-apiserver --service-cluster-ip-range (pod {})",
                        pod.metadata.name
                    ),
                );
            }
        }
    }

    if let Some(cm) = objects.config_map("kube-system", "kubeadm-config")
        && let Some(config) = cm.data.get("ClusterConfiguration")
    {
        for line in config.lines() {
            let line = line.trim();
            if let Some(v) = line.strip_prefix("podSubnet:") {
                for cidr in v.trim().trim_matches('"').split(',') {
                    add(
                        &mut facts.pod,
                        cidr,
                        "kubeadm-config networking.podSubnet".to_string(),
                    );
                }
            } else if let Some(v) = line.strip_prefix("serviceSubnet:") {
                for cidr in v.trim().trim_matches('"').split(',') {
                    add(
                        &mut facts.service,
                        cidr,
                        "kubeadm-config networking.serviceSubnet".to_string(),
                    );
                }
            }
        }
    }

    // k3s and RKE2 record each server's command line on its Node.
    for node in &objects.nodes {
        for (annotation, distribution) in
            [("k3s.io/node-args", "k3s"), ("rke2.io/node-args", "RKE2")]
        {
            let Some(args) = node.metadata.annotations.get(annotation) else {
                continue;
            };
            let Ok(args) = serde_json::from_str::<Vec<String>>(args) else {
                continue;
            };
            let args = || args.iter().map(String::as_str);
            for (flag, list) in [
                ("--cluster-cidr", &mut facts.pod),
                ("--service-cidr", &mut facts.service),
            ] {
                if let Some(v) = flag_value(args(), flag) {
                    for cidr in v.split(',') {
                        add(
                            list,
                            cidr,
                            format!(
                                "{distribution} {flag} ({annotation} of node {})",
                                node.metadata.name
                            ),
                        );
                    }
                }
            }
        }
    }

    for cni in cnis {
        for cidr in &cni.pod_cidrs {
            add(&mut facts.pod, cidr, format!("{} pool", cni.kind));
        }
    }

    // Node podCIDRs: summarised against the declared ranges rather than listed one by one.
    let declared: Vec<IpNet> = facts
        .pod
        .iter()
        .filter_map(|c| c.cidr.parse().ok())
        .collect();
    let mut outside = Vec::new();
    let mut with_cidr = 0;
    for node in &objects.nodes {
        let cidrs = if node.spec.pod_cidrs.is_empty() {
            node.spec.pod_cidr.iter().cloned().collect()
        } else {
            node.spec.pod_cidrs.clone()
        };
        for cidr in cidrs {
            with_cidr += 1;
            let inside = cidr
                .parse::<IpNet>()
                .is_ok_and(|net| declared.iter().any(|d| d.contains(&net)));
            if !inside {
                outside.push((node.metadata.name.clone(), cidr));
            }
        }
    }
    if with_cidr > 0 && outside.is_empty() && !declared.is_empty() {
        facts.pod.push(SourcedCidr {
            cidr: "(within the ranges above)".to_string(),
            source: format!("node spec.podCIDRs ({with_cidr} allocations)"),
        });
    }
    for (node, cidr) in outside.iter().take(10) {
        add(
            &mut facts.pod,
            cidr,
            format!("node {node} spec.podCIDR (outside every declared pod range)"),
        );
    }
    if outside.len() > 10 {
        facts.overlaps.push(format!(
            "{} more node podCIDRs outside the declared pod ranges",
            outside.len() - 10
        ));
    }

    for pod in &facts.pod {
        let Ok(pod_net) = pod.cidr.parse::<IpNet>() else {
            continue;
        };
        for service in &facts.service {
            let Ok(service_net) = service.cidr.parse::<IpNet>() else {
                continue;
            };
            if overlaps(&pod_net, &service_net) {
                facts.overlaps.push(format!(
                    "pod range {} ({}) overlaps service range {} ({})",
                    pod.cidr, pod.source, service.cidr, service.source
                ));
            }
        }
    }
    facts
}

pub fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_is_symmetric() {
        let a: IpNet = "10.96.0.0/12".parse().unwrap();
        let b: IpNet = "10.100.0.0/16".parse().unwrap();
        let c: IpNet = "10.244.0.0/16".parse().unwrap();
        assert!(overlaps(&a, &b) && overlaps(&b, &a));
        assert!(!overlaps(&a, &c) && !overlaps(&c, &a));
    }
}
