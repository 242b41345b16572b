//! FLN: Flannel.

pub mod flannel_network_mismatch;
pub mod vtep_reuse_prerequisites;
