//! Config readers: YAML with source positions, Talos machine configs (v1alpha1 and the 1.14
//! multi-document form), Talos strategic-merge patches, Omni ConfigPatches and cluster templates,
//! talhelper `talconfig.yaml`, Helm values, and redaction of secrets.
//!
//! Pure: no I/O beyond what the caller passes in, no Kubernetes client, no async.

pub mod helm;
pub mod limits;
pub mod omni;
pub mod redact;
pub mod talhelper;
pub mod talos;
pub mod template;
pub mod values;
pub mod yaml;

pub use yaml::{Node, Pos, Value, YamlError};
