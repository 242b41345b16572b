//! The node agent: what a CNI, kube-proxy or the runtime owns on this node, and the careful
//! removal of one CNI's state with a restorable backup.
//!
//! Data flow: `inventory` reads the kernel (through iproute2, iptables, nft and ipset in batch
//! mode) and the host filesystem under a root (`/` or `/host`), and labels every item with its
//! owner by name + kind + protocol + CIDR together (`owner`). `clean` turns an inventory into
//! an ordered plan for one CNI, writes the backup, then applies it; `restore` puts a backup
//! back. Nothing here talks to Kubernetes.

pub mod clean;
pub mod distribution;
mod error;
pub mod inventory;
pub mod iptables;
pub mod owner;
pub mod paths;
pub mod restore;
mod tools;

pub use error::NodeError;
