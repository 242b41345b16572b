//! Registry credentials from where docker, podman and skopeo keep them.
//!
//! Order (the first that has an entry for the registry wins): the caller's own (`--username`
//! with `--password-stdin`), `$REGISTRY_AUTH_FILE`, `$XDG_RUNTIME_DIR/containers/auth.json`,
//! `~/.config/containers/auth.json`, then docker's `$DOCKER_CONFIG/config.json` or
//! `~/.docker/config.json`. An entry is `auths.<key>` with `auth` (base64 of `user:password`),
//! `username` + `password`, or `registrytoken`; keys may be the host, a URL of it (docker), or
//! the host with a repository namespace (podman; the longest match wins). A credential helper
//! named by `credHelpers.<host>` or `credsStore` is run (`docker-credential-<helper> get`).
//! Nothing found: anonymous. Secrets never reach a message: errors name the file, the registry
//! and the user, never a password or token.

use base64::Engine as _;
use std::fmt;
use std::path::{Path, PathBuf};

/// What is sent to the registry. Debug never shows a password or token.
#[derive(Clone, PartialEq, Eq)]
pub enum Auth {
    Anonymous,
    Basic {
        username: String,
        password: String,
    },
    /// A registry token stored by `registrytoken` (sent as a bearer token).
    Bearer(String),
}

impl fmt::Debug for Auth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Auth::Anonymous => f.write_str("Anonymous"),
            Auth::Basic { username, .. } => write!(f, "Basic({username:?}, <redacted>)"),
            Auth::Bearer(_) => f.write_str("Bearer(<redacted>)"),
        }
    }
}

/// Where credentials came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `--username` and `--password-stdin`.
    Given,
    File(PathBuf),
    Helper {
        program: String,
        file: PathBuf,
    },
    /// Nothing for this registry in any of `looked_in` (files that exist or were named).
    Anonymous {
        looked_in: Vec<PathBuf>,
    },
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Given => f.write_str("--username/--password-stdin"),
            Source::File(path) => write!(f, "{}", path.display()),
            Source::Helper { program, file } => {
                write!(f, "{program} (the helper {} names)", file.display())
            }
            Source::Anonymous { looked_in } if looked_in.is_empty() => f.write_str("no auth file"),
            Source::Anonymous { looked_in } => {
                let files: Vec<String> =
                    looked_in.iter().map(|p| p.display().to_string()).collect();
                write!(f, "no entry for the registry in {}", files.join(", "))
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub auth: Auth,
    pub source: Source,
}

impl Credentials {
    pub fn given(username: String, password: String) -> Self {
        Self {
            auth: Auth::Basic { username, password },
            source: Source::Given,
        }
    }

    /// `user alice from ~/.docker/config.json`, `no credentials (no auth file)`.
    pub fn describe(&self) -> String {
        match &self.auth {
            Auth::Anonymous => format!("no credentials ({})", self.source),
            Auth::Basic { username, .. } => format!("user {username} from {}", self.source),
            Auth::Bearer(_) => format!("a registry token from {}", self.source),
        }
    }

    /// The secret values, so a message that would carry one can be scrubbed.
    pub(crate) fn secrets(&self) -> Vec<String> {
        match &self.auth {
            Auth::Anonymous => Vec::new(),
            Auth::Basic { username, password } => vec![
                password.clone(),
                base64::engine::general_purpose::STANDARD.encode(format!("{username}:{password}")),
            ],
            Auth::Bearer(token) => vec![token.clone()],
        }
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect()
    }
}

/// A credentials file or helper that cannot be used, named without its contents.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct CredentialsError {
    pub message: String,
    pub help: String,
}

fn refuse(message: String, help: impl Into<String>) -> CredentialsError {
    CredentialsError {
        message,
        help: help.into(),
    }
}

/// Credentials for `registry` (`registry.example.com:5000`) and `repository` from this
/// process's environment.
pub fn lookup(registry: &str, repository: &str) -> Result<Credentials, CredentialsError> {
    lookup_with(registry, repository, &|name| std::env::var(name).ok())
}

/// The files to read, in order.
fn auth_files(env: &dyn Fn(&str) -> Option<String>) -> Vec<PathBuf> {
    let set = |name: &str| env(name).filter(|v| !v.is_empty());
    let home = set("HOME").map(PathBuf::from);
    let mut files = Vec::new();
    if let Some(file) = set("REGISTRY_AUTH_FILE") {
        files.push(PathBuf::from(file));
    }
    if let Some(runtime) = set("XDG_RUNTIME_DIR") {
        files.push(Path::new(&runtime).join("containers/auth.json"));
    }
    if let Some(home) = &home {
        files.push(home.join(".config/containers/auth.json"));
    }
    match (set("DOCKER_CONFIG"), &home) {
        (Some(dir), _) => files.push(Path::new(&dir).join("config.json")),
        (None, Some(home)) => files.push(home.join(".docker/config.json")),
        (None, None) => {}
    }
    files
}

/// Docker Hub's host names are one registry.
fn same_host(a: &str, b: &str) -> bool {
    let hub = |h: &str| matches!(h, "docker.io" | "index.docker.io" | "registry-1.docker.io");
    a == b || (hub(a) && hub(b))
}

/// How well an `auths` key names `registry/repository`: None if not at all, else the length
/// of what it matched (a namespace beats the bare host). Docker writes URLs
/// (`https://host/v1/`): the host is what counts; podman writes `host[/namespace]`.
fn key_match(key: &str, registry: &str, repository: &str) -> Option<usize> {
    let (has_scheme, rest) = match key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
    {
        Some(rest) => (true, rest),
        None => (false, key),
    };
    let (host, path) = match rest.split_once('/') {
        Some((host, path)) if !has_scheme => (host, path.trim_end_matches('/')),
        Some((host, _)) => (host, ""),
        None => (rest, ""),
    };
    if !same_host(host, registry) {
        return None;
    }
    if path.is_empty() {
        return Some(0);
    }
    let within = repository == path
        || repository
            .strip_prefix(path)
            .is_some_and(|r| r.starts_with('/'));
    within.then_some(path.len())
}

fn lookup_with(
    registry: &str,
    repository: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Credentials, CredentialsError> {
    let mut looked_in = Vec::new();
    for file in auth_files(env) {
        let text = match std::fs::read_to_string(&file) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(refuse(
                    format!(
                        "cannot read registry credentials from {}: {e}",
                        file.display()
                    ),
                    "fix its permissions, or point REGISTRY_AUTH_FILE at a file you can read",
                ));
            }
        };
        looked_in.push(file.clone());
        let config: serde_json::Value = serde_json::from_str(&text).map_err(|e| {
            refuse(
                format!(
                    "{} is not JSON (line {}, column {}), so cniswap cannot read registry credentials from it",
                    file.display(),
                    e.line(),
                    e.column()
                ),
                "fix the file (docker login / podman login rewrite it), or move it away",
            )
        })?;
        let best = config["auths"].as_object().and_then(|auths| {
            auths
                .iter()
                .filter_map(|(key, entry)| {
                    key_match(key, registry, repository).map(|rank| (rank, entry))
                })
                .max_by_key(|(rank, _)| *rank)
                .map(|(_, entry)| entry)
        });
        if let Some(entry) = best
            && let Some(auth) = from_entry(entry, registry, &file)?
        {
            return Ok(Credentials {
                auth,
                source: Source::File(file),
            });
        }
        let helper = config["credHelpers"]
            .as_object()
            .and_then(|helpers| {
                helpers
                    .iter()
                    .find(|(key, _)| key_match(key, registry, "").is_some())
                    .and_then(|(_, helper)| helper.as_str())
            })
            .or_else(|| config["credsStore"].as_str());
        if let Some(helper) = helper
            && let Some(auth) = from_helper(helper, registry, &file, env)?
        {
            return Ok(Credentials {
                auth,
                source: Source::Helper {
                    program: format!("docker-credential-{helper}"),
                    file,
                },
            });
        }
    }
    Ok(Credentials {
        auth: Auth::Anonymous,
        source: Source::Anonymous { looked_in },
    })
}

fn from_entry(
    entry: &serde_json::Value,
    registry: &str,
    file: &Path,
) -> Result<Option<Auth>, CredentialsError> {
    let broken = |what: &str| {
        refuse(
            format!("{}: the entry for {registry} {what}", file.display()),
            format!(
                "log in again (`podman login {registry}` or `docker login {registry}`), or fix the entry"
            ),
        )
    };
    if let Some(encoded) = entry["auth"].as_str().filter(|a| !a.is_empty()) {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .ok_or_else(|| broken("has an `auth` that is not base64 of user:password"))?;
        let (username, password) = decoded
            .split_once(':')
            .ok_or_else(|| broken("has an `auth` without the `:` between user and password"))?;
        return Ok(Some(Auth::Basic {
            username: username.into(),
            password: password.into(),
        }));
    }
    if let (Some(username), Some(password)) =
        (entry["username"].as_str(), entry["password"].as_str())
    {
        return Ok(Some(Auth::Basic {
            username: username.into(),
            password: password.into(),
        }));
    }
    if let Some(token) = entry["registrytoken"].as_str().filter(|t| !t.is_empty()) {
        return Ok(Some(Auth::Bearer(token.into())));
    }
    if entry["identitytoken"]
        .as_str()
        .is_some_and(|t| !t.is_empty())
    {
        return Err(refuse(
            format!(
                "{}: the entry for {registry} holds an identity token (an OAuth refresh token), which cniswap cannot exchange",
                file.display()
            ),
            format!(
                "pass a user and password or access token instead: cniswap image push ... --username USER --password-stdin (for {registry})"
            ),
        ));
    }
    Ok(None)
}

/// `docker-credential-<helper> get` (found on PATH): the server on stdin, `{"Username",
/// "Secret"}` out. "Not found" (a non-zero exit) means anonymous, as for docker.
fn from_helper(
    helper: &str,
    registry: &str,
    file: &Path,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Auth>, CredentialsError> {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let program = format!("docker-credential-{helper}");
    if helper.is_empty()
        || !helper
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err(refuse(
            format!(
                "{}: the credential helper {helper:?} is not a plain name",
                file.display()
            ),
            "fix credsStore/credHelpers in that file",
        ));
    }
    let found = env("PATH")
        .unwrap_or_default()
        .split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(&program))
        .find(|p| p.is_file())
        .ok_or_else(|| {
            refuse(
                format!(
                    "{} names the credential helper {program}, which is not on PATH",
                    file.display()
                ),
                format!("install {program}, or pass --username USER --password-stdin"),
            )
        })?;
    // Docker Hub's helper entries are stored under its v1 URL.
    let server = if same_host(registry, "docker.io") {
        "https://index.docker.io/v1/"
    } else {
        registry
    };
    let failed = |what: String| {
        refuse(
            format!("{program} (named in {}) {what}", file.display()),
            format!(
                "check the helper (`echo {server} | {program} get`), or pass --username USER --password-stdin"
            ),
        )
    };
    let mut child = Command::new(&found)
        .arg("get")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| failed(format!("cannot be run: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        // A helper that exits without reading is judged by its exit status below.
        let _ = stdin.write_all(server.as_bytes());
    }
    let out = child
        .wait_with_output()
        .map_err(|e| failed(format!("did not finish: {e}")))?;
    if !out.status.success() {
        return Ok(None);
    }
    let answer: serde_json::Value = serde_json::from_slice(&out.stdout)
        .map_err(|_| failed("did not answer `get` with JSON".into()))?;
    match (answer["Username"].as_str(), answer["Secret"].as_str()) {
        // Docker's convention: the user `<token>` means the secret is an identity token.
        (Some("<token>"), Some(_)) => Err(failed(
            "gave an identity token (an OAuth refresh token), which cniswap cannot exchange".into(),
        )),
        (Some(username), Some(secret)) if !secret.is_empty() => Ok(Some(Auth::Basic {
            username: username.into(),
            password: secret.into(),
        })),
        _ => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::collections::HashMap;

    fn env(vars: HashMap<&'static str, String>) -> impl Fn(&str) -> Option<String> {
        move |name| vars.get(name).cloned()
    }

    fn basic(user: &str, password: &str) -> Auth {
        Auth::Basic {
            username: user.into(),
            password: password.into(),
        }
    }

    #[test]
    fn the_first_file_with_an_entry_wins_in_podman_then_docker_order() {
        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir_all(home.join(".docker")).unwrap();
        // docker's URL key; "docker:secret".
        std::fs::write(
            home.join(".docker/config.json"),
            r#"{"auths":{"https://reg.example:5000/v1/":{"auth":"ZG9ja2VyOnNlY3JldA=="}}}"#,
        )
        .unwrap();
        let mut vars = HashMap::from([("HOME", home.display().to_string())]);
        let found = lookup_with("reg.example:5000", "cniswap", &env(vars.clone())).unwrap();
        assert_eq!(found.auth, basic("docker", "secret"));
        assert_eq!(found.source, Source::File(home.join(".docker/config.json")));

        // An XDG runtime auth.json without an entry for this registry is passed over.
        let runtime = dir.path().join("run");
        std::fs::create_dir_all(runtime.join("containers")).unwrap();
        std::fs::write(
            runtime.join("containers/auth.json"),
            r#"{"auths":{"other.example":{"auth":"b3RoZXI6eA=="}}}"#,
        )
        .unwrap();
        vars.insert("XDG_RUNTIME_DIR", runtime.display().to_string());
        let found = lookup_with("reg.example:5000", "cniswap", &env(vars.clone())).unwrap();
        assert_eq!(found.auth, basic("docker", "secret"));

        // REGISTRY_AUTH_FILE comes first; a namespaced key beats the bare host.
        let auth_file = dir.path().join("auth.json");
        std::fs::write(
            &auth_file,
            r#"{"auths":{"reg.example:5000":{"username":"podman","password":"pw"},
                         "reg.example:5000/team":{"username":"team","password":"tpw"}}}"#,
        )
        .unwrap();
        vars.insert("REGISTRY_AUTH_FILE", auth_file.display().to_string());
        let found = lookup_with("reg.example:5000", "cniswap", &env(vars.clone())).unwrap();
        assert_eq!(found.auth, basic("podman", "pw"));
        let found = lookup_with("reg.example:5000", "team/cniswap", &env(vars.clone())).unwrap();
        assert_eq!(found.auth, basic("team", "tpw"));
        assert_eq!(
            found.describe(),
            format!("user team from {}", auth_file.display())
        );
        // `team2/x` is not inside the namespace `team`.
        let found = lookup_with("reg.example:5000", "team2/x", &env(vars.clone())).unwrap();
        assert_eq!(found.auth, basic("podman", "pw"));

        // Another registry: anonymous, naming the files that were read.
        let other = lookup_with("elsewhere.example", "cniswap", &env(vars)).unwrap();
        assert_eq!(other.auth, Auth::Anonymous);
        let Source::Anonymous { looked_in } = &other.source else {
            panic!("{other:?}")
        };
        assert_eq!(looked_in.len(), 3, "{looked_in:?}");
        assert!(
            other.describe().contains("auth.json"),
            "{}",
            other.describe()
        );
    }

    #[test]
    fn docker_hub_names_are_one_registry() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"auths":{"https://index.docker.io/v1/":{"auth":"aHViOmh1YnB3"}}}"#,
        )
        .unwrap();
        let vars = HashMap::from([("DOCKER_CONFIG", dir.path().display().to_string())]);
        let found = lookup_with("docker.io", "me/cniswap", &env(vars)).unwrap();
        assert_eq!(found.auth, basic("hub", "hubpw"));
    }

    #[test]
    fn broken_entries_are_named_without_their_contents() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("auth.json");
        let vars = HashMap::from([("REGISTRY_AUTH_FILE", file.display().to_string())]);
        for (text, expected) in [
            (
                r#"{"auths":{"reg.example":{"auth":"not base64 SECRET!"}}}"#,
                "not base64",
            ),
            // base64 of "SECRETnocolon"
            (
                r#"{"auths":{"reg.example":{"auth":"U0VDUkVUbm9jb2xvbg=="}}}"#,
                "without the `:`",
            ),
            (
                r#"{"auths":{"reg.example":{"identitytoken":"SECRET"}}}"#,
                "identity token",
            ),
            ("{\"auths\": SECRET", "is not JSON (line 1"),
        ] {
            std::fs::write(&file, text).unwrap();
            let e = lookup_with("reg.example", "cniswap", &env(vars.clone())).unwrap_err();
            assert!(
                e.message.contains("auth.json") && e.message.contains(expected),
                "{e:?}"
            );
            assert!(
                !e.message.contains("SECRET") && !e.help.contains("SECRET"),
                "{e:?}"
            );
        }
    }

    #[test]
    fn debug_and_descriptions_never_show_a_secret() {
        let credentials = Credentials::given("alice".into(), "hunter2".into());
        let shown = format!("{credentials:?} {}", credentials.describe());
        assert!(
            shown.contains("alice") && !shown.contains("hunter2"),
            "{shown}"
        );
        let bearer = format!("{:?}", Auth::Bearer("tok3n".into()));
        assert!(!bearer.contains("tok3n"));
        assert!(credentials.secrets().contains(&"hunter2".to_string()));
        // base64("alice:hunter2"), as a Basic header would carry it.
        assert!(
            credentials
                .secrets()
                .contains(&"YWxpY2U6aHVudGVyMg==".to_string())
        );
    }

    fn helper_script(dir: &Path, name: &str, body: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join(format!("docker-credential-{name}"));
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    #[test]
    fn a_credential_helper_answers_for_its_registry() {
        let dir = tempfile::tempdir().unwrap();
        helper_script(
            dir.path(),
            "cniswaptest",
            "read registry\n[ \"$registry\" = reg.example ] || exit 1\necho '{\"ServerURL\":\"reg.example\",\"Username\":\"helper\",\"Secret\":\"s3\"}'",
        );
        helper_script(dir.path(), "broken", "echo not json");
        let config = dir.path().join("docker");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(
            config.join("config.json"),
            r#"{"credHelpers":{"reg.example":"cniswaptest","bad.example":"broken","gone.example":"absent"}}"#,
        )
        .unwrap();
        let vars = HashMap::from([
            ("DOCKER_CONFIG", config.display().to_string()),
            ("PATH", format!("/nonexistent:{}", dir.path().display())),
        ]);
        let found = lookup_with("reg.example", "cniswap", &env(vars.clone())).unwrap();
        assert_eq!(found.auth, basic("helper", "s3"));
        assert!(found.describe().contains("docker-credential-cniswaptest"));

        let e = lookup_with("bad.example", "cniswap", &env(vars.clone())).unwrap_err();
        assert!(
            e.message.contains("did not answer `get` with JSON"),
            "{e:?}"
        );
        let e = lookup_with("gone.example", "cniswap", &env(vars.clone())).unwrap_err();
        assert!(e.message.contains("not on PATH"), "{e:?}");
        // A registry the helpers do not cover: anonymous.
        let none = lookup_with("free.example", "cniswap", &env(vars)).unwrap();
        assert_eq!(none.auth, Auth::Anonymous);
    }
}
