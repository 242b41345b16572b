//! The cniswap vocabulary shared by every stage of the data flow
//! (sources -> snapshot -> facts -> findings -> plan -> execution -> results).
//!
//! Everything here is plain data with stable serde names: the JSON/YAML output of
//! `cniswap inspect` is these types, so renaming a field is a breaking change.

mod cni;
mod facts;
mod finding;
mod inventory;
pub mod names;
mod platform;
pub mod text;

pub use cni::CniKind;
pub use facts::*;
pub use finding::{Finding, Location, Severity};
pub use inventory::*;
pub use platform::{PlatformKind, TalosConfigFormat};

/// Version of the `inspect` JSON/YAML schema. Bump on incompatible changes.
pub const REPORT_SCHEMA_VERSION: u32 = 1;
