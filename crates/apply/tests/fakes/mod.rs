//! Recording fakes of helm, talosctl and omnictl. The real tools are not available here; these
//! check every command line against the real tool's syntax (subcommands, flags, argument
//! counts), append it to `.fake-tools.log` in the working directory (the plan directory), and
//! keep just enough state there (`.fake-<tool>.json`) for the executor to read its effects back.

pub mod argv;
pub mod helm;
pub mod omnictl;
pub mod talosctl;

use serde_json::Value;
use std::path::Path;

pub const LOG: &str = ".fake-tools.log";

pub fn state(tool: &str) -> Value {
    std::fs::read_to_string(format!(".fake-{tool}.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_else(|| serde_json::json!({}))
}

pub fn save(tool: &str, value: &Value) {
    std::fs::write(
        format!(".fake-{tool}.json"),
        serde_json::to_string_pretty(value).unwrap_or_default(),
    )
    .expect("fake state is writable");
}

fn record(tool: &str, args: &[String]) {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(LOG)
        .expect("log");
    let _ = writeln!(f, "{tool} {}", args.join(" "));
}

/// Runs the fake named by `argv[0]`, if it is one; returns its exit code.
pub fn dispatch() -> Option<i32> {
    let argv: Vec<String> = std::env::args().collect();
    let name = Path::new(&argv[0])
        .file_name()?
        .to_string_lossy()
        .into_owned();
    let args = &argv[1..];
    let run = match name.as_str() {
        "helm" => helm::run,
        "talosctl" => talosctl::run,
        "omnictl" => omnictl::run,
        _ => return None,
    };
    record(&name, args);
    Some(match run(args) {
        Ok(out) => {
            print!("{out}");
            0
        }
        Err(e) => {
            eprintln!("{e}");
            1
        }
    })
}

pub fn yaml_docs(text: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(text)
        .unwrap_or_default()
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}
