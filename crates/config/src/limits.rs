//! Budgets for reading untrusted input: snapshots and repositories are shared between people,
//! so a crafted file must end in a clear error, never in an out-of-memory abort, a stack
//! overflow or a hang.
//!
//! Each budget has an environment variable that raises (or lowers) it; the error that reports a
//! breached budget names the file, the budget and that variable. The CLI reads the variables
//! once at start-up ([`Limits::from_env`]) and installs them with [`set`]; library callers and
//! tests get the defaults unless they pass their own.

use std::fmt;
use std::sync::OnceLock;

/// One budget: its environment variable, what it counts, and the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    pub env: &'static str,
    /// What is counted, for messages: "bytes of input", "levels of nesting", ...
    pub what: &'static str,
    pub default: u64,
}

pub const MAX_INPUT_BYTES: Budget = Budget {
    env: "CNISWAP_MAX_INPUT_BYTES",
    what: "bytes of input in one run (all files together)",
    default: 2 << 30,
};
pub const MAX_FILE_BYTES: Budget = Budget {
    env: "CNISWAP_MAX_FILE_BYTES",
    what: "bytes in one configuration file read as a whole (Talos, Omni, Helm values, node inventories, --values)",
    default: 16 << 20,
};
pub const MAX_DEPTH: Budget = Budget {
    env: "CNISWAP_MAX_DEPTH",
    what: "levels of nesting",
    default: 256,
};
pub const MAX_NODES: Budget = Budget {
    env: "CNISWAP_MAX_NODES",
    what: "YAML nodes in one file",
    default: 1_000_000,
};
pub const MAX_ALIAS_EXPANSION: Budget = Budget {
    env: "CNISWAP_MAX_ALIAS_EXPANSION",
    what: "bytes produced by YAML aliases in one file",
    default: 16 << 20,
};

// The API server's answers: a server (or something posing as one) that never ends a list,
// answers with gigabytes or trickles its answer must end in a clear error too.
pub const MAX_RESPONSE_BYTES: Budget = Budget {
    env: "CNISWAP_MAX_RESPONSE_BYTES",
    what: "bytes in one answer of the API server (one watch event for watches)",
    default: 256 << 20,
};
pub const MAX_LIST_OBJECTS: Budget = Budget {
    env: "CNISWAP_MAX_LIST_OBJECTS",
    what: "objects in one list from the API server",
    default: 1_000_000,
};
pub const MAX_LIST_PAGES: Budget = Budget {
    env: "CNISWAP_MAX_LIST_PAGES",
    what: "pages in one list from the API server",
    default: 10_000,
};
pub const MAX_REQUEST_SECONDS: Budget = Budget {
    env: "CNISWAP_MAX_REQUEST_SECONDS",
    what: "seconds for one answer of the API server to arrive in full (watches: their own timeout plus this)",
    default: 120,
};

/// Every budget, in the order docs/usage.md ("Limits") lists them.
pub const ALL: &[Budget] = &[
    MAX_INPUT_BYTES,
    MAX_FILE_BYTES,
    MAX_DEPTH,
    MAX_NODES,
    MAX_ALIAS_EXPANSION,
    MAX_RESPONSE_BYTES,
    MAX_LIST_OBJECTS,
    MAX_LIST_PAGES,
    MAX_REQUEST_SECONDS,
];

/// The budgets in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_input_bytes: u64,
    pub max_file_bytes: u64,
    pub max_depth: usize,
    pub max_nodes: usize,
    pub max_alias_expansion: u64,
    pub max_response_bytes: u64,
    pub max_list_objects: u64,
    pub max_list_pages: u64,
    pub max_request_seconds: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_input_bytes: MAX_INPUT_BYTES.default,
            max_file_bytes: MAX_FILE_BYTES.default,
            max_depth: MAX_DEPTH.default as usize,
            max_nodes: MAX_NODES.default as usize,
            max_alias_expansion: MAX_ALIAS_EXPANSION.default,
            max_response_bytes: MAX_RESPONSE_BYTES.default,
            max_list_objects: MAX_LIST_OBJECTS.default,
            max_list_pages: MAX_LIST_PAGES.default,
            max_request_seconds: MAX_REQUEST_SECONDS.default,
        }
    }
}

/// A budget that an input went over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LimitHit {
    pub budget: Budget,
    pub limit: u64,
}

impl LimitHit {
    pub fn new(budget: Budget, limit: u64) -> Self {
        LimitHit { budget, limit }
    }

    /// What to do about it: the variable that raises the budget.
    pub fn help(&self) -> String {
        format!(
            "cniswap stops reading input that goes over a budget (it may be crafted to exhaust memory); if this file is genuine, raise the budget: {}=<larger value> (now {})",
            self.budget.env, self.limit
        )
    }
}

impl fmt::Display for LimitHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "over the limit of {} {} ({})",
            self.limit, self.budget.what, self.budget.env
        )
    }
}

/// A budget variable that is set but is not a positive whole number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{name}={value}: not a positive whole number")]
pub struct BadLimit {
    pub name: &'static str,
    pub value: String,
}

impl Limits {
    /// Reads the budget variables through `lookup` (`std::env::var` in the CLI); unset ones keep
    /// their defaults.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Limits, BadLimit> {
        let read = |budget: Budget| -> Result<u64, BadLimit> {
            match lookup(budget.env) {
                None => Ok(budget.default),
                Some(value) => value
                    .trim()
                    .replace('_', "")
                    .parse::<u64>()
                    .ok()
                    .filter(|v| *v > 0)
                    .ok_or(BadLimit {
                        name: budget.env,
                        value,
                    }),
            }
        };
        let as_usize = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
        Ok(Limits {
            max_input_bytes: read(MAX_INPUT_BYTES)?,
            max_file_bytes: read(MAX_FILE_BYTES)?,
            max_depth: as_usize(read(MAX_DEPTH)?),
            max_nodes: as_usize(read(MAX_NODES)?),
            max_alias_expansion: read(MAX_ALIAS_EXPANSION)?,
            max_response_bytes: read(MAX_RESPONSE_BYTES)?,
            max_list_objects: read(MAX_LIST_OBJECTS)?,
            max_list_pages: read(MAX_LIST_PAGES)?,
            max_request_seconds: read(MAX_REQUEST_SECONDS)?,
        })
    }

    /// The budgets from the process environment.
    pub fn from_env() -> Result<Limits, BadLimit> {
        Limits::from_lookup(|name| std::env::var(name).ok())
    }

    /// The budgets in force: those installed with [`set`], else the defaults.
    pub fn current() -> Limits {
        INSTALLED.get().copied().unwrap_or_default()
    }
}

static INSTALLED: OnceLock<Limits> = OnceLock::new();

/// Installs the budgets for the rest of the process (the first call wins).
pub fn set(limits: Limits) {
    let _ = INSTALLED.set(limits);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_override_defaults_and_garbage_is_refused() {
        let limits =
            Limits::from_lookup(|name| (name == "CNISWAP_MAX_DEPTH").then(|| "1_000".to_string()))
                .unwrap();
        assert_eq!(limits.max_depth, 1000);
        assert_eq!(limits.max_nodes, Limits::default().max_nodes);
        let err =
            Limits::from_lookup(|name| (name == "CNISWAP_MAX_NODES").then(|| "-1".to_string()))
                .unwrap_err();
        assert_eq!(err.name, "CNISWAP_MAX_NODES");
        assert!(
            Limits::from_lookup(|name| (name == "CNISWAP_MAX_NODES").then(|| "0".into())).is_err()
        );
    }

    #[test]
    fn a_breach_names_the_variable_that_raises_it() {
        let hit = LimitHit::new(MAX_DEPTH, 256);
        assert!(hit.to_string().contains("256 levels of nesting"));
        assert!(hit.help().contains("CNISWAP_MAX_DEPTH=<larger value>"));
    }
}
