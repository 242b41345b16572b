//! The lab: a real Kubernetes cluster on one machine, for every test that touches a cluster.
//!
//! Upstream components are built from pinned Go modules (`lab/components/`), images are written
//! locally as OCI archives and imported without a registry, and every process, mount, network
//! namespace and firewall rule the lab makes is tracked so that `down` removes it all.

pub mod components;
pub mod image;
