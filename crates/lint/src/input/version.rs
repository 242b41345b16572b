//! Chart and image versions, as far as the rules compare them.

/// A semantic version; pre-release tags are ignored for comparisons (1.19.0-pre.1 ~ 1.19.0).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ChartVersion {
    pub major: u32,
    pub minor: u32,
    pub patch: u32,
}

impl ChartVersion {
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        ChartVersion {
            major,
            minor,
            patch,
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim().trim_start_matches('v');
        let core = text.split(['-', '+', '@']).next()?;
        let mut parts = core.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor = parts.next()?.parse().ok()?;
        let patch = parts.next().map_or(Some(0), |p| p.parse().ok())?;
        Some(ChartVersion::new(major, minor, patch))
    }

    pub fn minor(&self) -> (u32, u32) {
        (self.major, self.minor)
    }
}

impl std::fmt::Display for ChartVersion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tags_and_ranges() {
        assert_eq!(
            ChartVersion::parse("1.16.5"),
            Some(ChartVersion::new(1, 16, 5))
        );
        assert_eq!(
            ChartVersion::parse("v1.19.0-pre.1"),
            Some(ChartVersion::new(1, 19, 0))
        );
        assert_eq!(
            ChartVersion::parse("1.17"),
            Some(ChartVersion::new(1, 17, 0))
        );
        assert_eq!(ChartVersion::parse(">=1.15.0"), None);
        assert_eq!(ChartVersion::parse("main"), None);
    }
}
