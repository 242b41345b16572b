//! The commands the README (and docs/) show work as written.
//!
//! - Blocks fenced as ```` ```sh offline ```` need no cluster: each `cniswap ...` line runs, in
//!   order, in a scratch directory that sees the repository's `examples/`, and must exit 0, or
//!   the status its comment names (`# exit 1`).
//! - Every other `cniswap ...` line of a `sh` block (cluster commands, root commands) is parsed
//!   by the binary with `--help` appended: a flag, subcommand or value that no longer exists
//!   makes clap exit 2 before any help is printed.

#![allow(clippy::unwrap_used)] // test helpers may panic: a panic is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// A fenced block: its info string (`sh offline`) and its lines.
struct Block {
    file: String,
    line: usize,
    info: String,
    lines: Vec<String>,
}

fn blocks(file: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(file).unwrap();
    let name = file
        .strip_prefix(repo())
        .unwrap_or(file)
        .display()
        .to_string();
    let mut out = Vec::new();
    let mut open: Option<Block> = None;
    for (i, line) in text.lines().enumerate() {
        match (&mut open, line.strip_prefix("```")) {
            (None, Some(info)) => {
                open = Some(Block {
                    file: name.clone(),
                    line: i + 2,
                    info: info.trim().to_string(),
                    lines: Vec::new(),
                })
            }
            (Some(_), Some(_)) => out.extend(open.take()),
            (Some(block), None) => block.lines.push(line.to_string()),
            (None, None) => {}
        }
    }
    out
}

/// One `cniswap` command of a block: its arguments and the exit status its comment expects.
#[derive(Debug)]
struct Documented {
    at: String,
    args: Vec<String>,
    exit: i32,
}

/// The `cniswap` command of a line, if it has one: `sudo`, `VAR=value` and `kubectl` (the
/// plugin) in front are dropped, and a pipe or redirection ends it.
fn documented(at: String, line: &str) -> Option<Documented> {
    let (command, comment) = match line.find(" #") {
        Some(i) => (&line[..i], line[i + 2..].trim()),
        None => (line, ""),
    };
    let words = shlex::split(command)?;
    let mut words = words
        .into_iter()
        .skip_while(|w| w == "sudo" || w == "kubectl" || (w.contains('=') && !w.starts_with('-')))
        .take_while(|w| !w.starts_with(['|', '>', '<', '&', ';']))
        .collect::<Vec<_>>();
    if words.first().map(String::as_str) != Some("cniswap") {
        return None;
    }
    words.remove(0);
    let exit = comment
        .strip_prefix("exit ")
        .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    Some(Documented {
        at,
        args: words,
        exit,
    })
}

fn commands(block: &Block) -> Vec<Documented> {
    block
        .lines
        .iter()
        .enumerate()
        .filter_map(|(i, line)| documented(format!("{}:{}", block.file, block.line + i), line))
        .collect()
}

fn cniswap(dir: &Path, args: &[String]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_cniswap"))
        .args(args)
        .current_dir(dir)
        .env("HOME", dir)
        .env("NO_COLOR", "1")
        .env_remove("KUBECONFIG")
        .env_remove("CNISWAP_JOURNAL_KEY")
        .output()
        .unwrap()
}

fn shell_block(info: &str) -> bool {
    matches!(
        info.split_whitespace().next(),
        Some("sh" | "bash" | "console")
    )
}

#[test]
fn the_readmes_offline_commands_run_as_written() {
    let work = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(repo().join("examples"), work.path().join("examples")).unwrap();
    let mut ran = 0;
    for block in blocks(&repo().join("README.md")) {
        if block.info != "sh offline" {
            continue;
        }
        for command in commands(&block) {
            let out = cniswap(work.path(), &command.args);
            assert_eq!(
                out.status.code(),
                Some(command.exit),
                "{}: `cniswap {}` exited {:?}, the README says {}\nstdout:\n{}\nstderr:\n{}",
                command.at,
                command.args.join(" "),
                out.status.code(),
                command.exit,
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            ran += 1;
        }
    }
    // The README's tour has them; losing the marker must not pass silently.
    eprintln!("{ran} offline commands ran");
    assert!(ran >= 5, "only {ran} offline commands found in README.md");
}

#[test]
fn every_documented_command_uses_flags_that_exist() {
    let mut files = vec![repo().join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(repo().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let scratch = tempfile::tempdir().unwrap();
    let mut checked = 0;
    let mut wrong = Vec::new();
    for file in &files {
        for block in blocks(file) {
            if !shell_block(&block.info) {
                continue;
            }
            for command in commands(&block) {
                let mut args = command.args.clone();
                args.push("--help".into());
                let out = cniswap(scratch.path(), &args);
                if out.status.code() != Some(0) {
                    wrong.push(format!(
                        "{}: cniswap {}\n{}",
                        command.at,
                        command.args.join(" "),
                        String::from_utf8_lossy(&out.stderr)
                    ));
                }
                checked += 1;
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    eprintln!("{checked} documented commands checked");
    assert!(checked >= 30, "only {checked} documented commands found");
}

#[test]
fn the_parser_finds_commands_and_their_expected_status() {
    let c = documented(
        "x".into(),
        "sudo cniswap node clean --cni flannel --dry-run  # no change",
    )
    .unwrap();
    assert_eq!(c.args, ["node", "clean", "--cni", "flannel", "--dry-run"]);
    assert_eq!(c.exit, 0);
    let c = documented(
        "x".into(),
        "cniswap lint . -o sarif > cniswap.sarif   # exit 1: findings",
    )
    .unwrap();
    assert_eq!(c.args, ["lint", ".", "-o", "sarif"]);
    assert_eq!(c.exit, 1);
    let c = documented(
        "x".into(),
        "KUBECONFIG=k cniswap inspect -o json | jq .facts",
    )
    .unwrap();
    assert_eq!(c.args, ["inspect", "-o", "json"]);
    assert_eq!(
        documented("x".into(), "kubectl cniswap --help")
            .unwrap()
            .args,
        ["--help"]
    );
    assert!(documented("x".into(), "scripts/lab up --dir lab").is_none());
    assert!(documented("x".into(), "source <(COMPLETE=bash cniswap)").is_none());
}
