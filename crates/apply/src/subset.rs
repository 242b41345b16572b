//! "Does the live configuration contain this patch?": every field the patch sets has that
//! value in the target; a `$patch: delete` entry is absent. Used to prove Talos and Omni
//! patches, whose merged result only the tools themselves compute.

use serde_json::Value;

/// The first path where `target` does not contain `patch`, or `None` when it does.
pub fn missing(patch: &Value, target: Option<&Value>, path: &str) -> Option<String> {
    match patch {
        Value::Object(map) => {
            if map.get("$patch").and_then(Value::as_str) == Some("delete") {
                return target.map(|_| format!("{path} should be deleted"));
            }
            let Some(Value::Object(t)) = target else {
                return Some(format!("{path} is missing"));
            };
            map.iter()
                .filter(|(k, _)| !k.starts_with('$'))
                .find_map(|(k, v)| missing(v, t.get(k), &format!("{path}.{k}")))
        }
        Value::Array(items) => {
            let Some(Value::Array(t)) = target else {
                return Some(format!("{path} is missing"));
            };
            items
                .iter()
                .find(|item| !t.iter().any(|x| missing(item, Some(x), path).is_none()))
                .map(|item| format!("{path} lacks {item}"))
        }
        scalar => match target {
            Some(t) if t == scalar => None,
            // YAML spells numbers and booleans as text in places.
            Some(Value::String(s)) if s == &scalar.to_string() => None,
            Some(t) => Some(format!("{path} is {t}, not {scalar}")),
            None => Some(format!("{path} is missing")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_lists_and_deletes() {
        let target = json!({"cluster": {"network": {"cni": {"name": "none"}, "podSubnets": ["10.244.0.0/16"]}}});
        assert_eq!(
            missing(
                &json!({"cluster": {"network": {"cni": {"name": "none"}}}}),
                Some(&target),
                ""
            ),
            None
        );
        assert_eq!(
            missing(
                &json!({"cluster": {"network": {"cni": {"name": "flannel"}}}}),
                Some(&target),
                ""
            )
            .unwrap(),
            ".cluster.network.cni.name is \"none\", not \"flannel\""
        );
        assert_eq!(
            missing(
                &json!({"cluster": {"proxy": {"$patch": "delete"}}}),
                Some(&target),
                ""
            ),
            None
        );
        assert!(
            missing(
                &json!({"cluster": {"network": {"$patch": "delete"}}}),
                Some(&target),
                ""
            )
            .is_some()
        );
        assert!(
            missing(
                &json!({"cluster": {"network": {"podSubnets": ["10.9.0.0/16"]}}}),
                Some(&target),
                ""
            )
            .is_some()
        );
    }
}
