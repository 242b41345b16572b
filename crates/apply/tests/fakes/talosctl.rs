//! A fake talosctl: machine configs per node address, patched the way Talos merges patches
//! (maps merge, lists replace, `$patch: delete` removes a document), read back with `get`.

use super::argv::{Command, Flag::*, parse};
use serde_json::{Value, json};

const GLOBAL: &[(&str, Option<char>, super::argv::Flag)] = &[
    ("nodes", Some('n'), Takes),
    ("endpoints", Some('e'), Takes),
    ("talosconfig", None, Takes),
    ("context", None, Takes),
];

const COMMANDS: &[Command] = &[
    Command {
        path: &["patch"],
        flags: &[
            ("patch", Some('p'), Takes),
            ("patch-file", None, Takes),
            ("mode", Some('m'), Takes),
            ("dry-run", None, Bool),
            ("timeout", None, Takes),
        ],
        args: (1, 2),
    },
    Command {
        path: &["get"],
        flags: &[
            ("output", Some('o'), Takes),
            ("watch", Some('w'), Bool),
            ("namespace", None, Takes),
            ("insecure", Some('i'), Bool),
        ],
        args: (1, 2),
    },
    Command {
        path: &["reboot"],
        flags: &[
            ("wait", None, Bool),
            ("mode", Some('m'), Takes),
            ("debug", None, Bool),
            ("timeout", None, Takes),
        ],
        args: (0, 0),
    },
    Command {
        path: &["version"],
        flags: &[("client", None, Bool), ("short", None, Bool)],
        args: (0, 0),
    },
    Command {
        path: &["etcd", "snapshot"],
        flags: &[],
        args: (1, 1),
    },
];

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                if v.get("$patch").and_then(Value::as_str) == Some("delete") {
                    b.remove(k);
                } else {
                    match b.get_mut(k) {
                        Some(e) if e.is_object() && v.is_object() => merge(e, v),
                        _ => {
                            b.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn same(a: &Value, b: &Value) -> bool {
    match a.get("kind") {
        Some(k) => b.get("kind") == Some(k) && a.get("name") == b.get("name"),
        None => b.get("kind").is_none(),
    }
}

pub fn run(argv: &[String]) -> Result<String, String> {
    let p = parse(argv, GLOBAL, COMMANDS)?;
    let nodes: Vec<String> = p
        .one("nodes")
        .ok_or("error: nodes are not set for the command: please use `--nodes` flag")?
        .split(',')
        .map(str::to_string)
        .collect();
    let mut state = super::state("talosctl");
    let path: Vec<&str> = p.path.iter().map(String::as_str).collect();
    let out = match path.as_slice() {
        ["version"] => "Client:\n\tTag: v1.11.0\n".into(),
        ["patch"] => {
            if !matches!(
                p.args[0].as_str(),
                "machineconfig" | "mc" | "machineconfigs"
            ) {
                return Err(format!(
                    "the fake patches machineconfig only, not {}",
                    p.args[0]
                ));
            }
            if let Some(mode) = p.one("mode")
                && !["auto", "no-reboot", "reboot", "staged", "try"].contains(&mode)
            {
                return Err(format!("error: invalid --mode {mode}"));
            }
            let mut docs = Vec::new();
            for patch in p.all("patch") {
                let file = patch
                    .strip_prefix('@')
                    .ok_or("the fake reads patches from @files only")?;
                let text =
                    std::fs::read_to_string(file).map_err(|e| format!("error: {file}: {e}"))?;
                docs.extend(super::yaml_docs(&text));
            }
            for node in &nodes {
                let mut config = state["nodes"][node]
                    .as_array()
                    .cloned()
                    .ok_or(format!("error: rpc error: node {node} unknown to the fake"))?;
                for d in &docs {
                    if d.get("$patch").and_then(Value::as_str) == Some("delete") {
                        config.retain(|c| !same(d, c));
                    } else if let Some(target) = config.iter_mut().find(|c| same(d, c)) {
                        merge(target, d);
                    } else {
                        config.push(d.clone());
                    }
                }
                state["nodes"][node] = json!(config);
            }
            nodes
                .iter()
                .map(|n| {
                    format!("patched MachineConfigs.config.talos.dev/v1alpha1 at the node {n}\n")
                })
                .collect()
        }
        ["get"] => {
            if p.one("output") != Some("yaml") {
                return Err("the fake prints --output yaml only".into());
            }
            let mut out = String::new();
            for node in &nodes {
                let config = state["nodes"][node]
                    .as_array()
                    .cloned()
                    .ok_or(format!("error: node {node} unknown to the fake"))?;
                let text: Vec<String> = config
                    .iter()
                    .map(|d| serde_saphyr::to_string(d).unwrap_or_default())
                    .collect();
                let spec = text.join("---\n");
                out.push_str(&format!(
                    "node: {node}\nmetadata:\n  namespace: config\n  type: MachineConfigs.config.talos.dev\n  id: v1alpha1\nspec: |\n{}",
                    spec.lines().map(|l| format!("  {l}\n")).collect::<String>()
                ));
            }
            out
        }
        ["etcd", "snapshot"] => {
            std::fs::write(&p.args[0], b"fake etcd snapshot\n")
                .map_err(|e| format!("error: {e}"))?;
            format!("etcd snapshot saved to {:?}\n", p.args[0])
        }
        ["reboot"] => {
            for node in &nodes {
                let n = state["reboots"][node].as_u64().unwrap_or(0);
                state["reboots"][node] = json!(n + 1);
            }
            String::new()
        }
        _ => return Err("unreachable".into()),
    };
    super::save("talosctl", &state);
    Ok(out)
}
