//! A fake helm 3: releases with revisions, values merged from --values files like helm does.

use super::argv::{Command, Flag::*, parse};
use serde_json::{Value, json};

const GLOBAL: &[(&str, Option<char>, super::argv::Flag)] = &[
    ("namespace", Some('n'), Takes),
    ("kube-context", None, Takes),
    ("kubeconfig", None, Takes),
    ("debug", None, Bool),
];

const COMMANDS: &[Command] = &[
    Command {
        path: &["version"],
        flags: &[("short", None, Bool)],
        args: (0, 0),
    },
    Command {
        path: &["repo", "add"],
        flags: &[
            ("force-update", None, Bool),
            ("username", None, Takes),
            ("password", None, Takes),
        ],
        args: (2, 2),
    },
    Command {
        path: &["upgrade"],
        flags: &[
            ("install", Some('i'), Bool),
            ("version", None, Takes),
            ("values", Some('f'), Takes),
            ("set", None, Takes),
            ("wait", None, Bool),
            ("timeout", None, Takes),
            ("create-namespace", None, Bool),
            ("atomic", None, Bool),
            ("description", None, Takes),
            ("reuse-values", None, Bool),
            ("reset-values", None, Bool),
            ("repo", None, Takes),
        ],
        args: (2, 2),
    },
    Command {
        path: &["list"],
        // helm 4's flags (the lab's helm): `--all` is gone, the statuses are named.
        flags: &[
            ("filter", Some('f'), Takes),
            ("output", Some('o'), Takes),
            ("deployed", None, Bool),
            ("failed", None, Bool),
            ("pending", None, Bool),
            ("superseded", None, Bool),
            ("uninstalled", None, Bool),
            ("uninstalling", None, Bool),
            ("all-namespaces", Some('A'), Bool),
            ("short", Some('q'), Bool),
        ],
        args: (0, 0),
    },
    Command {
        path: &["get", "values"],
        flags: &[
            ("output", Some('o'), Takes),
            ("all", Some('a'), Bool),
            ("revision", None, Takes),
        ],
        args: (1, 1),
    },
    Command {
        path: &["get", "all"],
        flags: &[("revision", None, Takes), ("template", None, Takes)],
        args: (1, 1),
    },
    Command {
        path: &["status"],
        flags: &[("output", Some('o'), Takes), ("revision", None, Takes)],
        args: (1, 1),
    },
    Command {
        path: &["history"],
        flags: &[("output", Some('o'), Takes), ("max", None, Takes)],
        args: (1, 1),
    },
    Command {
        path: &["rollback"],
        flags: &[
            ("wait", None, Bool),
            ("timeout", None, Takes),
            ("force", None, Bool),
            ("cleanup-on-fail", None, Bool),
            ("dry-run", None, Bool),
        ],
        args: (1, 2),
    },
    Command {
        path: &["uninstall"],
        flags: &[
            ("wait", None, Bool),
            ("timeout", None, Takes),
            ("keep-history", None, Bool),
            ("dry-run", None, Bool),
            ("cascade", None, Takes),
        ],
        args: (1, 64),
    },
    Command {
        path: &["template"],
        flags: &[
            ("version", None, Takes),
            ("values", Some('f'), Takes),
            ("set", None, Takes),
            ("repo", None, Takes),
            ("namespace", Some('n'), Takes),
        ],
        args: (1, 2),
    },
];

fn merge(base: &mut Value, over: &Value) {
    match (base, over) {
        (Value::Object(b), Value::Object(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(e) if e.is_object() && v.is_object() => merge(e, v),
                    _ => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (b, o) => *b = o.clone(),
    }
}

fn key(ns: &str, release: &str) -> String {
    format!("{ns}/{release}")
}

pub fn run(argv: &[String]) -> Result<String, String> {
    let p = parse(argv, GLOBAL, COMMANDS)?;
    let ns = p.one("namespace").unwrap_or("default").to_string();
    let mut state = super::state("helm");
    if state.get("releases").is_none() {
        state["releases"] = json!({});
    }
    let path: Vec<&str> = p.path.iter().map(String::as_str).collect();
    let out = match path.as_slice() {
        ["version"] => "v3.17.0\n".into(),
        ["repo", "add"] => {
            state["repos"][&p.args[0]] = json!(p.args[1]);
            format!("\"{}\" has been added to your repositories\n", p.args[0])
        }
        ["upgrade"] => {
            if !p.has("install") {
                return Err("Error: UPGRADE FAILED: the fake only models upgrade --install".into());
            }
            let (release, chart) = (&p.args[0], &p.args[1]);
            match (p.one("repo"), chart.split_once('/')) {
                (Some(url), _) if url.starts_with("https://") => {}
                (Some(url), _) => {
                    return Err(format!("Error: could not find protocol handler for: {url}"));
                }
                (None, Some((repo, _))) if state["repos"].get(repo).is_some() => {}
                (None, Some((repo, _))) => return Err(format!("Error: repo {repo} not found")),
                (None, None) => return Err(format!("Error: path \"{chart}\" not found")),
            }
            let mut values = json!({});
            for file in p.all("values") {
                let text = std::fs::read_to_string(&file)
                    .map_err(|e| format!("Error: open {file}: {e}"))?;
                for doc in super::yaml_docs(&text) {
                    merge(&mut values, &doc);
                }
            }
            let name = chart.rsplit('/').next().unwrap_or(chart);
            let version = p.one("version").unwrap_or("0.0.0").trim_start_matches('v');
            let entry = &mut state["releases"][key(&ns, release)];
            let mut revisions = entry["revisions"].as_array().cloned().unwrap_or_default();
            for r in &mut revisions {
                r["status"] = json!("superseded");
            }
            let revision = revisions.len() + 1;
            revisions.push(json!({
                "revision": revision, "status": "deployed", "chart": format!("{name}-{version}"),
                "app_version": version, "description": p.one("description").unwrap_or(if revision == 1 { "Install complete" } else { "Upgrade complete" }),
                "values": values,
            }));
            entry["revisions"] = json!(revisions);
            format!(
                "Release \"{release}\" has been upgraded. Happy Helming!\nREVISION: {revision}\n"
            )
        }
        ["list"] => {
            let filter = p.one("filter").unwrap_or("");
            let wanted = filter.trim_start_matches('^').trim_end_matches('$');
            let mut items = Vec::new();
            if let Some(map) = state["releases"].as_object() {
                for (k, r) in map {
                    let (rns, name) = k.split_once('/').unwrap_or_default();
                    if rns != ns || (!filter.is_empty() && name != wanted) {
                        continue;
                    }
                    let last = r["revisions"]
                        .as_array()
                        .and_then(|a| a.last())
                        .cloned()
                        .unwrap_or_default();
                    items.push(json!({"name": name, "namespace": rns, "revision": last["revision"].to_string(), "status": last["status"], "chart": last["chart"], "app_version": last["app_version"]}));
                }
            }
            if p.one("output") != Some("json") {
                return Err("fake helm list: only --output json is modelled".into());
            }
            format!("{}\n", Value::Array(items))
        }
        ["status"] => {
            let r = &state["releases"][key(&ns, &p.args[0])];
            let last = r["revisions"]
                .as_array()
                .and_then(|a| a.last())
                .ok_or("Error: release: not found")?;
            if p.one("output") != Some("json") {
                return Err("fake helm status: only --output json is modelled".into());
            }
            format!(
                "{}\n",
                json!({"name": p.args[0], "namespace": ns, "version": last["revision"], "info": {"status": last["status"], "description": last["description"]}})
            )
        }
        ["get", "values"] => {
            let r = &state["releases"][key(&ns, &p.args[0])];
            let last = r["revisions"]
                .as_array()
                .and_then(|a| a.last())
                .ok_or("Error: release: not found")?;
            format!("{}\n", last["values"])
        }
        ["get", "all"] => {
            let r = &state["releases"][key(&ns, &p.args[0])];
            let last = r["revisions"]
                .as_array()
                .and_then(|a| a.last())
                .ok_or("Error: release: not found")?;
            format!(
                "NAME: {}\nCHART: {}\nUSER-SUPPLIED VALUES:\n{}\n",
                p.args[0], last["chart"], last["values"]
            )
        }
        ["history"] => {
            let r = &state["releases"][key(&ns, &p.args[0])];
            let revisions = r["revisions"]
                .as_array()
                .ok_or("Error: release: not found")?;
            let list: Vec<Value> = revisions
                .iter()
                .map(|x| json!({"revision": x["revision"], "status": x["status"], "chart": x["chart"], "app_version": x["app_version"], "description": x["description"]}))
                .collect();
            format!("{}\n", Value::Array(list))
        }
        ["rollback"] => {
            let entry = &mut state["releases"][key(&ns, &p.args[0])];
            let mut revisions = entry["revisions"]
                .as_array()
                .cloned()
                .ok_or("Error: release: not found")?;
            let target: usize = match p.args.get(1) {
                Some(r) => r
                    .parse()
                    .map_err(|_| format!("Error: invalid revision {r}"))?,
                None => revisions.len().saturating_sub(1),
            };
            let target = if target == 0 {
                revisions.len().saturating_sub(1)
            } else {
                target
            };
            let old = revisions
                .get(target.wrapping_sub(1))
                .cloned()
                .ok_or("Error: release has no such revision")?;
            for r in &mut revisions {
                r["status"] = json!("superseded");
            }
            let mut new = old.clone();
            new["revision"] = json!(revisions.len() + 1);
            new["status"] = json!("deployed");
            new["description"] = json!(format!("Rollback to {target}"));
            revisions.push(new);
            entry["revisions"] = json!(revisions);
            "Rollback was a success! Happy Helming!\n".into()
        }
        ["uninstall"] => {
            let map = state["releases"].as_object_mut().ok_or("state")?;
            for release in &p.args {
                if map.remove(&key(&ns, release)).is_none() {
                    return Err(format!(
                        "Error: uninstall: Release not loaded: {release}: release: not found"
                    ));
                }
            }
            format!("release \"{}\" uninstalled\n", p.args.join(" "))
        }
        ["template"] => format!(
            "---\n# Source: {}/templates/daemonset.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: rendered\n",
            p.args.last().cloned().unwrap_or_default()
        ),
        _ => return Err("unreachable".into()),
    };
    super::save("helm", &state);
    Ok(out)
}
