//! Typed views over a snapshot, one per kind of input the rules read (RULES.md "Inputs").

pub mod calico;
pub mod cilium;
pub mod flannel;
pub mod talos;
pub mod version;
