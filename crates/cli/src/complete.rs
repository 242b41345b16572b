//! Dynamic shell completion (`COMPLETE=bash cniswap`, clap_complete's `CompleteEnv`): rule IDs
//! from the catalogue, node names from the kubeconfig's cluster. docs/completion.md says how to
//! enable it.
//!
//! Node names cost a request to the cluster on Tab: it runs on its own thread under a short
//! deadline and says nothing on failure (no kubeconfig, no network, no permission), so a Tab
//! never hangs the shell nor prints into the command line.

use clap_complete::engine::{ArgValueCandidates, ArgValueCompleter, CompletionCandidate};
use std::ffi::{OsStr, OsString};
use std::time::Duration;

/// How long Tab waits for the cluster's node names.
const NODE_DEADLINE: Duration = Duration::from_secs(2);

/// Answers a completion request and exits, if the shell sent one (`COMPLETE` is set);
/// otherwise returns at once. Call before any thread starts and before anything is printed.
pub fn answer_if_asked(display_name: &str) {
    let bin = if display_name.starts_with("kubectl") {
        "kubectl-cniswap"
    } else {
        "cniswap"
    };
    clap_complete::CompleteEnv::with_factory(move || {
        <crate::Cli as clap::CommandFactory>::command().bin_name(bin)
    })
    .complete();
}

/// The name kubectl (1.26 and later) runs to complete `kubectl cniswap ...`: a link to this
/// binary, as `kubectl-cniswap` is.
pub const KUBECTL_COMPLETER: &str = "kubectl_complete-cniswap";

/// Answers kubectl's completion request for the plugin: `args` are the words after
/// `kubectl cniswap`, the last one the word being completed (kubectl passes it, empty when the
/// cursor is after a space). Prints the candidates as cobra's `__complete` does (`value<TAB>help`
/// per line, then the directive `:4`, "no file completion": paths are among the candidates when
/// an argument takes one).
pub fn answer_kubectl(args: Vec<OsString>) {
    let mut command = <crate::Cli as clap::CommandFactory>::command().bin_name("kubectl cniswap");
    let mut words = vec![OsString::from("kubectl-cniswap")];
    words.extend(args);
    if words.len() == 1 {
        words.push(OsString::new());
    }
    let index = words.len() - 1;
    let current_dir = std::env::current_dir().ok();
    let candidates =
        clap_complete::engine::complete(&mut command, words, index, current_dir.as_deref())
            .unwrap_or_default();
    let mut out = String::new();
    for candidate in candidates.iter().filter(|c| !c.is_hide_set()) {
        out.push_str(&candidate.get_value().to_string_lossy());
        if let Some(help) = candidate.get_help() {
            let help = help.to_string();
            if let Some(first) = help.lines().next().filter(|l| !l.is_empty()) {
                out.push('\t');
                out.push_str(first);
            }
        }
        out.push('\n');
    }
    out.push_str(":4\n");
    let _ = std::io::Write::write_all(&mut std::io::stdout(), out.as_bytes());
}

/// `explain RULE`: every rule ID, its title beside it.
pub fn rule_ids() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        cniswap_lint::RULES
            .iter()
            .map(|r| CompletionCandidate::new(r.meta.id).help(Some(r.meta.title.into())))
            .collect::<Vec<_>>()
    })
}

/// `lint --select/--ignore CODE`: ALL, each rule family (TAL, CIL, ...) and every rule ID.
pub fn rule_codes() -> ArgValueCandidates {
    ArgValueCandidates::new(|| {
        let mut out = vec![CompletionCandidate::new("ALL").help(Some("every rule".into()))];
        let mut families: Vec<&str> = cniswap_lint::RULES
            .iter()
            .map(|r| r.meta.id.trim_end_matches(|c: char| c.is_ascii_digit()))
            .collect();
        families.sort_unstable();
        families.dedup();
        out.extend(
            families
                .into_iter()
                .map(|f| CompletionCandidate::new(f).help(Some(format!("every {f} rule").into()))),
        );
        out.extend(
            cniswap_lint::RULES
                .iter()
                .map(|r| CompletionCandidate::new(r.meta.id).help(Some(r.meta.title.into()))),
        );
        out
    })
}

/// `--node`, `--focus`, `--switching NODE`: the names of the cluster's nodes.
pub fn node_names() -> ArgValueCompleter {
    ArgValueCompleter::new(|current: &OsStr| {
        let prefix = current.to_string_lossy();
        cluster_nodes(std::env::args_os().collect(), NODE_DEADLINE)
            .into_iter()
            .filter(|name| name.starts_with(prefix.as_ref()))
            .map(CompletionCandidate::new)
            .collect::<Vec<_>>()
    })
}

/// The node names of the cluster `--kubeconfig`/`--context` on the command line being
/// completed point at (else kubectl's default), or none when they cannot be had in `deadline`.
fn cluster_nodes(argv: Vec<OsString>, deadline: Duration) -> Vec<String> {
    let options = cniswap_kube::LiveOptions {
        kubeconfig: flag(&argv, "--kubeconfig").map(Into::into),
        context: flag(&argv, "--context").map(|c| c.to_string_lossy().into_owned()),
        no_client_retry: true,
    };
    let (send, receive) = std::sync::mpsc::channel();
    // A thread of its own: a stuck connect (or a credential plugin) cannot hold the answer up;
    // the process exits after answering, whatever the thread is doing.
    let spawned = std::thread::Builder::new()
        .name("complete-nodes".into())
        .spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            let names = runtime.block_on(async {
                let connection = cniswap_kube::connect(&options).await.ok()?;
                cniswap_kube::node_names(&connection).await.ok()
            });
            let _ = send.send(names.unwrap_or_default());
        });
    if spawned.is_err() {
        return Vec::new();
    }
    receive.recv_timeout(deadline).unwrap_or_default()
}

/// The value of `--name VALUE` or `--name=VALUE` in the words of the command line being
/// completed (after the `--` the shell integration puts before them); the last one wins.
fn flag(argv: &[OsString], name: &str) -> Option<OsString> {
    let words = match argv.iter().position(|a| a == "--") {
        Some(i) => &argv[i + 1..],
        None => argv,
    };
    let mut found = None;
    let mut words = words.iter();
    while let Some(word) = words.next() {
        let text = word.to_string_lossy();
        if text == name {
            found = words.next().cloned();
        } else if let Some(value) = text.strip_prefix(name).and_then(|v| v.strip_prefix('=')) {
            found = Some(OsString::from(value));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<OsString> {
        line.split(' ').map(OsString::from).collect()
    }

    #[test]
    fn flags_are_read_from_the_line_being_completed() {
        let argv = words("cniswap -- cniswap verify --context prod --kubeconfig=/k --focus w");
        assert_eq!(flag(&argv, "--context"), Some("prod".into()));
        assert_eq!(flag(&argv, "--kubeconfig"), Some("/k".into()));
        assert_eq!(flag(&argv, "--snapshot"), None);
        // Before the `--`: the completer's own arguments, not the user's.
        let argv = words("cniswap --context mine -- cniswap verify --focus w");
        assert_eq!(flag(&argv, "--context"), None);
        // A flag at the end without its value yet.
        assert_eq!(
            flag(&words("cniswap -- cniswap verify --context"), "--context"),
            None
        );
    }

    #[test]
    fn an_unreachable_cluster_gives_no_names_within_the_deadline() {
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        // A server that accepts connections and never answers: only the deadline ends the wait.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: https://127.0.0.1:{port}\n    insecure-skip-tls-verify: true\ncontexts:\n- name: x\n  context: {{cluster: c, user: u}}\ncurrent-context: x\nusers:\n- name: u\n  user: {{token: not-a-real-token}}\n"
            ),
        )
        .unwrap();
        let argv = vec![
            OsString::from("cniswap"),
            "--".into(),
            "cniswap".into(),
            "verify".into(),
            "--kubeconfig".into(),
            kubeconfig.into_os_string(),
        ];
        let started = std::time::Instant::now();
        assert!(cluster_nodes(argv, Duration::from_millis(500)).is_empty());
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(500), "{waited:?}");
        assert!(waited < Duration::from_secs(2), "{waited:?}");
        drop(listener);
    }
}
