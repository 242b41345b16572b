//! `--values FILE`: Helm values the user passes to `plan`, read like every other input (a
//! regular file within the budgets, YAML errors at file:line without echoing the file's lines,
//! which may hold passwords).

use crate::error::CliError;
use cniswap_snapshot::InputError;
use std::path::Path;

pub fn read(path: &Path) -> Result<serde_json::Value, CliError> {
    let text = cniswap_snapshot::read_config_file(path)?;
    let docs = cniswap_config::yaml::parse_documents(&text).map_err(|e| {
        let (message, help) = match e.limit {
            Some(hit) => (hit.to_string(), hit.help()),
            None => (
                format!("not valid YAML: {}", e.message),
                "pass a Helm values file (YAML)".to_string(),
            ),
        };
        CliError::Input(InputError::new(path, message, help).at(e.line, e.column))
    })?;
    match docs.as_slice() {
        [] => Ok(serde_json::Value::Object(Default::default())),
        [doc] if doc.is_map() => Ok(doc.to_json()),
        [doc] => Err(CliError::Input(
            InputError::new(
                path,
                "Helm values must be a mapping of keys to values",
                "pass a Helm values file (`key: value` at the top level)",
            )
            .at(doc.pos.line, doc.pos.column),
        )),
        [_, second, ..] => Err(CliError::Input(
            InputError::new(
                path,
                "more than one YAML document: Helm values are one document",
                "split the file, and pass each with its own --values",
            )
            .at(second.pos.line, second.pos.column),
        )),
    }
}
