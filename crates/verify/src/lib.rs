//! Pure logic of `cniswap verify` (no Kubernetes client, no async runtime):
//!
//! - [`wire`]: the probe agent's HTTP API types;
//! - [`topology`] and [`plan`]: every check for every node and node pair;
//! - [`report`], [`matrix`], [`junit`]: one-shot results for people, scripts and CI;
//! - [`gaps`], [`continuous`], [`windows`], [`plot`]: outages per path during `--continuous`,
//!   attributed to the nodes being switched when they happened;
//! - [`manifests`]: the objects verify deploys and the RBAC to run it.

pub mod continuous;
pub mod gaps;
pub mod junit;
pub mod kind;
pub mod manifests;
pub mod matrix;
pub mod names;
pub mod plan;
pub mod plot;
pub mod report;
pub mod topology;
pub mod windows;
pub mod wire;

pub use kind::Kind;
pub use plan::PathKey;
