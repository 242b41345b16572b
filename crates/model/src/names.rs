//! Kubernetes' own rules for names, labels and addresses, so that a value read from a snapshot
//! is exactly what an API server could have returned. Names end up in commands people run as
//! cluster admins; a name that breaks these rules is refused where it is read.
//!
//! The rules and messages follow k8s.io/apimachinery `pkg/util/validation` (IsDNS1123Label,
//! IsDNS1123Subdomain, IsDNS1035Label, IsQualifiedName, IsValidLabelValue) and which rule each
//! kind uses follows `pkg/api/validation` and `pkg/apis/core/validation` (ValidateNodeName and
//! ValidatePodName: DNS subdomain; ValidateNamespaceName: DNS label; ValidateServiceName: DNS-1035
//! label).

use std::net::IpAddr;

pub const DNS1123_LABEL_MAX: usize = 63;
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
pub const LABEL_VALUE_MAX: usize = 63;
pub const QUALIFIED_NAME_MAX: usize = 63;

fn lower_alnum(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn alnum(c: char) -> bool {
    c.is_ascii_alphanumeric()
}

/// `[a-z0-9]([-a-z0-9]*[a-z0-9])?`
fn is_label_shape(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(lower_alnum)
        && s.ends_with(lower_alnum)
        && s.chars().all(|c| lower_alnum(c) || c == '-')
}

/// A lowercase RFC 1123 label (namespace names, container names).
pub fn dns1123_label(value: &str) -> Result<(), String> {
    if value.len() > DNS1123_LABEL_MAX {
        return Err(format!(
            "must be no more than {DNS1123_LABEL_MAX} characters"
        ));
    }
    if !is_label_shape(value) {
        return Err(if dns1123_subdomain(value).is_ok() {
            "must not contain dots".to_string()
        } else {
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name', or '123-abc')".to_string()
        });
    }
    Ok(())
}

/// A lowercase RFC 1123 subdomain (node, pod and most object names).
pub fn dns1123_subdomain(value: &str) -> Result<(), String> {
    if value.len() > DNS1123_SUBDOMAIN_MAX {
        return Err(format!(
            "must be no more than {DNS1123_SUBDOMAIN_MAX} characters"
        ));
    }
    if !value.split('.').all(is_label_shape) {
        return Err("a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')".to_string());
    }
    Ok(())
}

/// A DNS-1035 label (Service names): like a DNS-1123 label but starting with a letter.
pub fn dns1035_label(value: &str) -> Result<(), String> {
    if value.len() > DNS1123_LABEL_MAX {
        return Err(format!(
            "must be no more than {DNS1123_LABEL_MAX} characters"
        ));
    }
    if !(is_label_shape(value) && value.starts_with(|c: char| c.is_ascii_lowercase())) {
        return Err("a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an alphabetic character, and end with an alphanumeric character (e.g. 'my-name', or 'abc-123')".to_string());
    }
    Ok(())
}

/// `([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]`
fn is_qualified_shape(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(alnum)
        && s.ends_with(alnum)
        && s.chars().all(|c| alnum(c) || matches!(c, '-' | '_' | '.'))
}

/// A qualified name (label and annotation keys): an optional DNS subdomain prefix and `/`, then
/// a name of at most 63 characters.
pub fn qualified_name(value: &str) -> Result<(), String> {
    let (prefix, name) = match value.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, value),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Err("prefix part must be non-empty".to_string());
        }
        dns1123_subdomain(prefix).map_err(|e| format!("prefix part {e}"))?;
    }
    if name.is_empty() {
        return Err("name part must be non-empty".to_string());
    }
    if name.len() > QUALIFIED_NAME_MAX {
        return Err(format!(
            "name part must be no more than {QUALIFIED_NAME_MAX} characters"
        ));
    }
    if !is_qualified_shape(name) {
        return Err("name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyName', or 'my.name', or '123-abc')".to_string());
    }
    Ok(())
}

/// A label value: empty, or at most 63 characters of the qualified-name shape.
pub fn label_value(value: &str) -> Result<(), String> {
    if value.len() > LABEL_VALUE_MAX {
        return Err(format!("must be no more than {LABEL_VALUE_MAX} characters"));
    }
    if !value.is_empty() && !is_qualified_shape(value) {
        return Err("a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character (e.g. 'MyValue', or 'my_value', or '12345')".to_string());
    }
    Ok(())
}

/// An IPv4 or IPv6 address.
pub fn ip_address(value: &str) -> Result<(), String> {
    value
        .parse::<IpAddr>()
        .map(|_| ())
        .map_err(|_| "must be a valid IP address (e.g. 10.9.8.7 or 2001:db8::ffff)".to_string())
}

/// An address to reach a node by (talosctl `-n`, a node's Hostname/InternalDNS address): an IP
/// address or a DNS subdomain.
pub fn host(value: &str) -> Result<(), String> {
    if ip_address(value).is_ok() {
        return Ok(());
    }
    dns1123_subdomain(value).map_err(|_| {
        "must be an IP address or a lowercase DNS name (e.g. 10.9.8.7 or node-1.example.com)"
            .to_string()
    })
}

/// An IP network in CIDR notation with a prefix length the address family allows
/// (`10.244.0.0/16`, `fd00::/64`).
pub fn cidr(value: &str) -> Result<(), String> {
    let invalid = || {
        "must be a valid CIDR: an IP address, '/', and a prefix length of at most 32 (IPv4) or 128 (IPv6) (e.g. 10.244.0.0/16)".to_string()
    };
    let (address, prefix) = value.split_once('/').ok_or_else(invalid)?;
    let address: IpAddr = address.parse().map_err(|_| invalid())?;
    if prefix.is_empty() || !prefix.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid());
    }
    let prefix: u32 = prefix.parse().map_err(|_| invalid())?;
    let max = if address.is_ipv4() { 32 } else { 128 };
    if prefix > max {
        return Err(invalid());
    }
    Ok(())
}

/// A TCP/UDP port number (1-65535).
pub fn port(value: i64) -> Result<(), String> {
    if (1..=65535).contains(&value) {
        Ok(())
    } else {
        Err("must be between 1 and 65535, inclusive".to_string())
    }
}

/// Shows a rejected value safely: quoted, escaped (no control characters reach a terminal) and
/// shortened.
pub fn shown(value: &str) -> String {
    const MAX: usize = 80;
    let mut out: String = value
        .chars()
        .take(MAX)
        .collect::<String>()
        .escape_debug()
        .to_string();
    if value.chars().count() > MAX {
        out.push_str("...");
    }
    format!("\"{out}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hostile_names_of_the_trial_are_refused() {
        for bad in [
            "talos-w-1;touch pwned;#",
            "a\nb",
            "$(reboot)",
            "`id`",
            "UPPER",
            "-leading",
            "trailing-",
            "",
            "a b",
            "x'y",
        ] {
            assert!(dns1123_subdomain(bad).is_err(), "{bad:?}");
            assert!(dns1123_label(bad).is_err(), "{bad:?}");
            assert!(dns1035_label(bad).is_err(), "{bad:?}");
        }
        assert!(ip_address("192.168.1.72 version; touch x #").is_err());
        assert!(host("192.168.1.72 version; touch x #").is_err());
        assert!(label_value("homelab\nx: y").is_err());
        assert!(qualified_name("omni.sidero.dev/cluster\n").is_err());
    }

    #[test]
    fn kubernetes_names_that_are_valid() {
        assert!(dns1123_subdomain("talos-w-1.example.com").is_ok());
        assert!(dns1123_subdomain(&"a".repeat(253)).is_ok());
        assert!(dns1123_subdomain(&"a".repeat(254)).is_err());
        assert!(dns1123_label("kube-system").is_ok());
        assert_eq!(dns1123_label("a.b").unwrap_err(), "must not contain dots");
        assert!(dns1035_label("kube-dns").is_ok());
        assert!(dns1035_label("1abc").is_err());
        assert!(qualified_name("node-role.kubernetes.io/control-plane").is_ok());
        assert!(qualified_name("app.kubernetes.io/name").is_ok());
        assert!(qualified_name("k8s-app").is_ok());
        assert!(qualified_name("/x").is_err());
        assert!(label_value("").is_ok());
        assert!(label_value("v1.2_3").is_ok());
        assert!(host("10.0.0.1").is_ok());
        assert!(host("fd00::1").is_ok());
        assert!(host("node-1").is_ok());
    }

    #[test]
    fn cidrs_and_ports() {
        for good in [
            "10.244.0.0/16",
            "0.0.0.0/0",
            "fd00::/64",
            "::/0",
            "10.0.0.1/32",
        ] {
            assert!(cidr(good).is_ok(), "{good}");
        }
        for bad in [
            "10.0.0.0/99",
            "::/200",
            "300.0.0.0/8",
            "10.0.0.0",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "x/8",
        ] {
            assert!(cidr(bad).is_err(), "{bad}");
        }
        assert!(port(8472).is_ok());
        assert!(port(0).is_err() && port(70000).is_err() && port(-1).is_err());
    }

    #[test]
    fn shown_escapes_control_characters() {
        assert_eq!(shown("a\nb"), "\"a\\nb\"");
        assert!(shown(&"x".repeat(200)).ends_with("...\""));
    }
}
