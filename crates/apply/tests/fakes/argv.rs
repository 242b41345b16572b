//! A cobra-style command line checker: the real tools (helm, talosctl, omnictl) are cobra
//! programs, so flags may come anywhere, take `--flag value` or `--flag=value`, booleans take
//! `--flag` or `--flag=false`, and an unknown flag or a wrong number of arguments is an error.

use std::collections::BTreeMap;

#[derive(Clone, Copy, PartialEq)]
pub enum Flag {
    Bool,
    Takes,
}

pub struct Command {
    /// The subcommand words, e.g. `["get", "values"]`.
    pub path: &'static [&'static str],
    pub flags: &'static [(&'static str, Option<char>, Flag)],
    pub args: (usize, usize),
}

#[derive(Debug, Default)]
pub struct Parsed {
    pub path: Vec<String>,
    pub args: Vec<String>,
    pub flags: BTreeMap<String, Vec<String>>,
}

impl Parsed {
    pub fn one(&self, flag: &str) -> Option<&str> {
        self.flags
            .get(flag)
            .and_then(|v| v.last())
            .map(String::as_str)
    }
    pub fn all(&self, flag: &str) -> Vec<String> {
        self.flags.get(flag).cloned().unwrap_or_default()
    }
    pub fn has(&self, flag: &str) -> bool {
        self.flags
            .get(flag)
            .is_some_and(|v| v.last().map(String::as_str) != Some("false"))
    }
}

/// Parses argv (without the program name) against the global flags and the commands.
pub fn parse(
    argv: &[String],
    global: &'static [(&'static str, Option<char>, Flag)],
    commands: &[Command],
) -> Result<Parsed, String> {
    // Words that are not flags or flag values, in order.
    let mut words = Vec::new();
    let mut raw_flags = Vec::new();
    let mut i = 0;
    // A flag's arity depends on the command, which depends on the words: resolve the command
    // from the longest matching path of leading words, trying each candidate.
    let lookup = |name: &str, cmd: Option<&Command>| -> Option<(String, Flag)> {
        let all = global
            .iter()
            .chain(cmd.map(|c| c.flags.iter()).into_iter().flatten());
        for (long, short, kind) in all {
            if name == *long || (name.len() == 1 && Some(name.chars().next().unwrap()) == *short) {
                return Some((long.to_string(), *kind));
            }
        }
        None
    };
    // First pass: find the command by scanning words while skipping values of global flags
    // and of any known flag (cobra resolves the command first the same way).
    let command = {
        let mut path_words = Vec::new();
        let mut j = 0;
        while j < argv.len() {
            let a = &argv[j];
            if let Some(flag) = a
                .strip_prefix("--")
                .or_else(|| a.strip_prefix('-').filter(|f| f.len() == 1))
            {
                let name = flag.split('=').next().unwrap_or(flag);
                let takes = commands
                    .iter()
                    .map(Some)
                    .chain([None])
                    .find_map(|c| lookup(name, c))
                    .is_some_and(|(_, k)| k == Flag::Takes);
                if takes && !flag.contains('=') {
                    j += 1;
                }
            } else {
                path_words.push(a.clone());
            }
            j += 1;
        }
        commands
            .iter()
            .filter(|c| {
                c.path.len() <= path_words.len()
                    && c.path.iter().zip(&path_words).all(|(p, w)| p == w)
            })
            .max_by_key(|c| c.path.len())
            .ok_or_else(|| {
                format!(
                    "Error: unknown command {:?}",
                    path_words.first().cloned().unwrap_or_default()
                )
            })?
    };
    while i < argv.len() {
        let a = &argv[i];
        let flag = a
            .strip_prefix("--")
            .or_else(|| a.strip_prefix('-').filter(|f| !f.is_empty()));
        match flag {
            Some(flag) => {
                let (name, inline) = match flag.split_once('=') {
                    Some((n, v)) => (n, Some(v.to_string())),
                    None => (flag, None),
                };
                let Some((long, kind)) = lookup(name, Some(command)) else {
                    return Err(format!("Error: unknown flag: {a}"));
                };
                let value = match (kind, inline) {
                    (Flag::Bool, Some(v)) if v == "true" || v == "false" => v,
                    (Flag::Bool, Some(v)) => {
                        return Err(format!("Error: invalid argument {v:?} for {a}"));
                    }
                    (Flag::Bool, None) => "true".into(),
                    (Flag::Takes, Some(v)) => v,
                    (Flag::Takes, None) => {
                        i += 1;
                        argv.get(i)
                            .cloned()
                            .ok_or_else(|| format!("Error: flag needs an argument: {a}"))?
                    }
                };
                raw_flags.push((long, value));
            }
            None => words.push(a.clone()),
        }
        i += 1;
    }
    let args: Vec<String> = words[command.path.len()..].to_vec();
    if args.len() < command.args.0 || args.len() > command.args.1 {
        return Err(format!(
            "Error: \"{}\" accepts {}-{} arg(s), received {}",
            command.path.join(" "),
            command.args.0,
            command.args.1,
            args.len()
        ));
    }
    let mut parsed = Parsed {
        path: command.path.iter().map(|s| s.to_string()).collect(),
        args,
        ..Parsed::default()
    };
    for (k, v) in raw_flags {
        parsed.flags.entry(k).or_default().push(v);
    }
    Ok(parsed)
}
