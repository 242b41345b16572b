//! Where an image is pushed: `REGISTRY/NAME[:TAG]`, checked by the image reference rules
//! before anything is built or sent.

use std::net::{IpAddr, Ipv6Addr};

/// A push target: registry host (with port), repository path and tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImageName {
    /// `registry.example.com`, `127.0.0.1:5000`, `[::1]:5000`.
    pub registry: String,
    /// `team/cniswap`.
    pub repository: String,
    pub tag: String,
}

/// Why a push target is refused, in words, with what to write instead.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct NameError {
    pub message: String,
    pub help: String,
}

fn refuse(message: String, help: &str) -> NameError {
    NameError {
        message,
        help: help.to_string(),
    }
}

const EXAMPLE: &str = "give REGISTRY/NAME[:TAG], e.g. registry.example.com/team/cniswap:0.1.0 or 127.0.0.1:5000/cniswap (Docker Hub: docker.io/USER/cniswap)";

impl ImageName {
    /// Parses `REGISTRY/NAME[:TAG]`; without a tag, `default_tag`. The first component must be
    /// a registry host (a dot or a port in it, or `localhost`): a short name such as
    /// `cniswap:0.1.0` or `team/cniswap` is refused rather than sent to Docker Hub by guess.
    pub fn parse(text: &str, default_tag: &str) -> Result<Self, NameError> {
        // Messages carry the input as given: the CLI escapes control characters when it prints.
        let shown = text;
        if text.contains('@') {
            return Err(refuse(
                format!("{shown} names a digest"),
                "push to a tag (REGISTRY/NAME:TAG); the digest is printed after the push",
            ));
        }
        let Some((registry, rest)) = text.split_once('/') else {
            return Err(refuse(format!("{shown} has no registry host"), EXAMPLE));
        };
        if !is_registry_host(registry) {
            return Err(refuse(
                format!(
                    "{shown} has no registry host (`{}` is a name, not a host: a host has a dot or a port, or is localhost)",
                    registry
                ),
                EXAMPLE,
            ));
        }
        check_host(registry).map_err(|why| {
            refuse(
                format!("{shown}: `{}` is not a registry host: {why}", registry),
                EXAMPLE,
            )
        })?;
        let (repository, tag) = match rest.rsplit_once(':') {
            Some((repository, tag)) => (repository, tag),
            None => (rest, default_tag),
        };
        check_repository(repository).map_err(|why| {
            refuse(
                format!("{shown}: the name `{}` {why}", repository),
                "a name is lower-case letters and digits, separated by `.`, `_`, `-` or `/`, up to 255 characters",
            )
        })?;
        check_tag(tag)?;
        Ok(Self {
            registry: registry.to_string(),
            repository: repository.to_string(),
            tag: tag.to_string(),
        })
    }

    /// A registry on this machine (`localhost`, 127.0.0.0/8, `[::1]`), which docker treats as
    /// insecure: it may speak plain HTTP.
    pub fn is_loopback(&self) -> bool {
        let host = host_part(&self.registry);
        if host == "localhost" {
            return true;
        }
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        match bare.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => v4.is_loopback(),
            Ok(IpAddr::V6(v6)) => v6 == Ipv6Addr::LOCALHOST,
            Err(_) => false,
        }
    }

    /// `REGISTRY/NAME:TAG`.
    pub fn tagged(&self) -> String {
        format!("{}/{}:{}", self.registry, self.repository, self.tag)
    }

    /// `REGISTRY/NAME@DIGEST`: the reference that names exactly what was pushed.
    pub fn pinned(&self, digest: &str) -> String {
        format!("{}/{}@{digest}", self.registry, self.repository)
    }
}

/// A tag as the OCI distribution spec allows it: up to 128 of `[A-Za-z0-9_.-]`, not starting
/// with `.` or `-`.
pub fn check_tag(tag: &str) -> Result<(), NameError> {
    let ok = !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(refuse(
            format!("{tag} is not a valid image tag"),
            "a tag is up to 128 letters, digits, `_`, `.` and `-`, not starting with `.` or `-`",
        ))
    }
}

/// The reference rules' test for a first component that is a host rather than a path.
fn is_registry_host(first: &str) -> bool {
    first.contains('.') || first.contains(':') || first == "localhost"
}

/// `host` of `host:port` (`[v6]` kept in brackets).
fn host_part(registry: &str) -> &str {
    if registry.starts_with('[') {
        return registry.find(']').map_or(registry, |end| &registry[..=end]);
    }
    registry.split(':').next().unwrap_or(registry)
}

fn check_host(registry: &str) -> Result<(), String> {
    let host = host_part(registry);
    let port = &registry[host.len()..];
    if let Some(port) = port.strip_prefix(':') {
        if port.parse::<u16>().map_or(true, |p| p == 0) {
            return Err(format!("port `{}` is not a port number", port));
        }
    } else if !port.is_empty() {
        return Err("a port follows the host after one `:`".into());
    }
    if let Some(v6) = host.strip_prefix('[') {
        return match v6.strip_suffix(']').map(str::parse::<Ipv6Addr>) {
            Some(Ok(_)) => Ok(()),
            _ => Err("an IPv6 address in brackets is not valid".into()),
        };
    }
    let labels_ok = !host.is_empty()
        && host.split('.').all(|label| {
            !label.is_empty()
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    if labels_ok {
        Ok(())
    } else {
        Err("a host is letters, digits and `-` in dot-separated labels".into())
    }
}

/// Path components of lower-case letters and digits joined by `.`, `_`, `__` or dashes.
fn check_repository(repository: &str) -> Result<(), String> {
    if repository.is_empty() {
        return Err("is empty".into());
    }
    if repository.len() > 255 {
        return Err("is longer than 255 characters".into());
    }
    for component in repository.split('/') {
        let bytes = component.as_bytes();
        let alnum = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
        let edges =
            bytes.first().is_some_and(|&b| alnum(b)) && bytes.last().is_some_and(|&b| alnum(b));
        if !edges {
            return Err("has a component that is empty or does not start and end with a lower-case letter or digit".into());
        }
        if !component
            .bytes()
            .all(|b| alnum(b) || matches!(b, b'.' | b'_' | b'-'))
        {
            return Err(
                "has characters other than lower-case letters, digits, `.`, `_`, `-` and `/`"
                    .into(),
            );
        }
        // Separators: one `.`, one or two `_`, or any run of `-`, never mixed.
        for separator in component.split(|c: char| c.is_ascii_alphanumeric()) {
            let ok = separator.is_empty()
                || separator == "."
                || separator == "_"
                || separator == "__"
                || separator.bytes().all(|b| b == b'-');
            if !ok {
                return Err(format!(
                    "has the separator `{separator}` (one `.`, `_` or `__`, or dashes)"
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ImageName, NameError> {
        ImageName::parse(text, "0.1.0")
    }

    #[test]
    fn registry_name_and_tag() {
        let name = parse("registry.example.com/team/cniswap:v1").unwrap();
        assert_eq!(name.registry, "registry.example.com");
        assert_eq!(name.repository, "team/cniswap");
        assert_eq!(name.tag, "v1");
        assert!(!name.is_loopback());
        let name = parse("127.0.0.1:5000/cniswap").unwrap();
        assert_eq!(
            (name.registry.as_str(), name.tag.as_str()),
            ("127.0.0.1:5000", "0.1.0")
        );
        assert!(name.is_loopback());
        assert_eq!(name.pinned("sha256:ab"), "127.0.0.1:5000/cniswap@sha256:ab");
        assert!(parse("localhost:5000/a/b:c").unwrap().is_loopback());
        assert!(parse("[::1]:5000/cniswap").unwrap().is_loopback());
        assert!(parse("127.9.0.1/cniswap").unwrap().is_loopback());
        assert!(!parse("[2001:db8::1]:5000/cniswap").unwrap().is_loopback());
        assert!(
            !parse("localhost.example.com/cniswap")
                .unwrap()
                .is_loopback()
        );
        assert_eq!(
            parse("docker.io/me/cniswap").unwrap().repository,
            "me/cniswap"
        );
    }

    #[test]
    fn names_without_a_registry_host_are_refused() {
        for text in [
            "cniswap",
            "cniswap:0.1.0",
            "team/cniswap",
            "team/cniswap:v1",
        ] {
            let e = parse(text).unwrap_err();
            assert!(e.message.contains("has no registry host"), "{text}: {e:?}");
            assert!(e.help.contains("REGISTRY/NAME"), "{e:?}");
        }
    }

    #[test]
    fn bad_parts_are_named() {
        let cases = [
            ("reg.example/cniswap@sha256:00", "names a digest"),
            ("reg.example:99999/cniswap", "not a port number"),
            ("reg.example:/cniswap", "not a port number"),
            ("[::zz]:5000/cniswap", "IPv6"),
            ("reg_x.example/cniswap", "not a registry host"),
            ("reg.example/Cniswap", "the name `Cniswap`"),
            ("reg.example/team//cniswap", "component that is empty"),
            ("reg.example/cni..swap", "separator `..`"),
            ("reg.example/", "is empty"),
            ("reg.example/cniswap:-x", "-x is not a valid image tag"),
            ("reg.example/cniswap:", "is not a valid image tag"),
        ];
        for (text, expected) in cases {
            let e = parse(text).unwrap_err();
            assert!(e.message.contains(expected), "{text}: {e:?}");
        }
    }
}
