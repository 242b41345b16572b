//! Snapshots: what cniswap read from a cluster, as files or from the API.
//!
//! Layout (DESIGN.md "Inputs"): `cluster/` Kubernetes objects (`kubectl get -o yaml|json`,
//! multi-document YAML, `List` kinds), `talos/` machine configs and patches, `omni/` Omni
//! ConfigPatches and cluster templates, `helm/<chart>.yaml` values, `nodes/<node>.json` node
//! inventories. Files elsewhere are classified by content; files that are not understood are
//! listed as skipped with the reason, never silently ignored.

mod admit;
pub mod decode;
mod error;
mod json_split;
mod load;
pub mod objects;
mod read;
mod store;
mod validate;
mod values_from;
mod write;

pub use admit::admit;
pub use cniswap_model::UnreadKind;
pub use decode::Object;
pub use error::InputError;
pub use load::{
    Format, ROLLBACK_MARKER, is_rollback_file, load, load_as_given, load_paths, load_reader,
    load_repository, load_talos_text,
};
pub use read::{check_regular_file, read_config_file, read_regular};
pub use store::{
    ConfigMapEntry, GeneratedConfigMap, HelmValues, LINTED_CONFIG_MAPS, LINTED_KINDS, Manifest,
    NOT_YAML_OR_JSON, NodeInventory, Objects, OmniTemplateSource, ROLLBACK_FILE, Snapshot,
    SourceFile, TalosSource, UNREAD_FILE, ValuesReference, is_linted_manifest,
};
pub use write::{Written, write_snapshot};
