//! A fake omnictl: resources applied from files, read back with `get`.

use super::argv::{Command, Flag::*, parse};
use serde_json::json;

const GLOBAL: &[(&str, Option<char>, super::argv::Flag)] = &[
    ("context", None, Takes),
    ("omniconfig", None, Takes),
    ("insecure-skip-tls-verify", None, Bool),
];

const COMMANDS: &[Command] = &[
    Command {
        path: &["apply"],
        flags: &[
            ("file", Some('f'), Takes),
            ("dry-run", Some('d'), Bool),
            ("verbose", Some('v'), Bool),
        ],
        args: (0, 0),
    },
    Command {
        path: &["get"],
        flags: &[
            ("namespace", Some('n'), Takes),
            ("output", Some('o'), Takes),
            ("selector", Some('l'), Takes),
            ("watch", Some('w'), Bool),
            ("id-match-regexp", Some('i'), Takes),
        ],
        args: (1, 2),
    },
    Command {
        path: &["delete"],
        flags: &[
            ("namespace", Some('n'), Takes),
            ("all", None, Bool),
            ("selector", Some('l'), Takes),
        ],
        args: (1, 64),
    },
    Command {
        path: &["cluster", "template", "validate"],
        flags: &[("file", Some('f'), Takes)],
        args: (0, 0),
    },
    Command {
        path: &["cluster", "template", "sync"],
        flags: &[
            ("file", Some('f'), Takes),
            ("dry-run", Some('d'), Bool),
            ("verbose", Some('v'), Bool),
        ],
        args: (0, 0),
    },
    Command {
        path: &["cluster", "template", "diff"],
        flags: &[("file", Some('f'), Takes)],
        args: (0, 0),
    },
];

pub fn run(argv: &[String]) -> Result<String, String> {
    let p = parse(argv, GLOBAL, COMMANDS)?;
    let mut state = super::state("omnictl");
    let path: Vec<&str> = p.path.iter().map(String::as_str).collect();
    let out = match path.as_slice() {
        ["apply"] => {
            let file = p
                .one("file")
                .ok_or("Error: required flag(s) \"file\" not set")?;
            let text = std::fs::read_to_string(file).map_err(|e| format!("Error: {file}: {e}"))?;
            let mut out = String::new();
            for doc in super::yaml_docs(&text) {
                let meta = &doc["metadata"];
                let (Some(kind), Some(id)) = (meta["type"].as_str(), meta["id"].as_str()) else {
                    return Err("Error: resource without metadata.type or metadata.id".into());
                };
                let ns = meta["namespace"].as_str().unwrap_or("default");
                state[format!("{ns}/{}/{id}", kind.to_lowercase())] = doc.clone();
                out.push_str(&format!("Updated {kind}(\"{id}\")\n"));
            }
            out
        }
        ["get"] => {
            let ns = p.one("namespace").unwrap_or("default");
            let id = p.args.get(1).ok_or("the fake gets one resource by id")?;
            let doc = state
                .get(format!("{ns}/{}/{id}", p.args[0]))
                .cloned()
                .filter(|d| !d.is_null());
            match doc {
                Some(d) => serde_saphyr::to_string(&d).unwrap_or_default(),
                None => return Err(format!("Error: resource {}({id}) doesn't exist", p.args[0])),
            }
        }
        ["delete"] => {
            let ns = p.one("namespace").unwrap_or("default");
            for id in &p.args[1..] {
                if let Some(o) = state.as_object_mut() {
                    o.remove(&format!("{ns}/{}/{id}", p.args[0].to_lowercase()));
                }
            }
            String::new()
        }
        ["cluster", "template", "validate"] | ["cluster", "template", "diff"] => {
            p.one("file")
                .ok_or("Error: required flag(s) \"file\" not set")?;
            String::new()
        }
        ["cluster", "template", "sync"] => {
            let file = p
                .one("file")
                .ok_or("Error: required flag(s) \"file\" not set")?;
            state["synced"] = json!(file);
            String::new()
        }
        _ => return Err("unreachable".into()),
    };
    super::save("omnictl", &state);
    Ok(out)
}
