//! Read-only access to a live cluster.
//!
//! Every list is paginated (`limit` + `continue`) and deserialized straight into the minimal
//! types of `cniswap-snapshot`, so a large cluster costs memory for the fields facts need only.
//! Secrets are never requested. A kind the user may not list (RBAC) is recorded as unread,
//! not fatal: inspect and lint then exit 2 naming it, and plan refuses.

pub mod bounds;
mod connect;
mod list;
mod nodes;
pub mod pods;
pub mod talosctl;

pub use bounds::Exceeded;
pub use connect::{ConnectError, Connection, LiveOptions, api_status, chain, connect};
pub use list::{ReadError, read_cluster};
pub use nodes::node_names;
