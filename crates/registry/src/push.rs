//! Pushing a built image with the OCI distribution API (through oci-client): blobs the
//! registry lacks, then the manifest as the exact bytes `image build` writes (so the digest is
//! the same), then the manifest's digest read back from the registry.

use crate::credentials::{Auth, Credentials};
use crate::name::ImageName;
use cniswap_oci::BuiltImage;
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::errors::{OciDistributionError, OciErrorCode};
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference, RegistryOperation};
use std::time::Duration;

/// How to speak to the registry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTPS with the system's trusted CAs; a loopback registry that answers in plain HTTP is
    /// then spoken to in plain HTTP (docker's rule for local registries).
    Https,
    /// Plain HTTP, asked for (`--insecure`).
    PlainHttp,
}

/// What a push did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    /// `sha256:...` of the manifest, as the registry reports it.
    pub digest: String,
    /// Blobs sent, and blobs the registry already had.
    pub sent: usize,
    pub present: usize,
    /// Whether the push went over plain HTTP.
    pub plain_http: bool,
}

/// Why a push failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    Unreachable,
    /// HTTPS asked, plain HTTP answered.
    PlainHttpAnswer,
    Certificate,
    Unauthorized,
    Forbidden,
    /// The registry answered with another error.
    Refused,
    /// The digest read back is not the manifest's.
    DigestMismatch,
    Other,
}

/// A failed push in words: what happened and what to do. Never carries a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PushError {
    pub failure: Failure,
    pub message: String,
    pub help: String,
}

/// How long to wait for a registry to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long to wait for any one read (a registry that stops answering mid-push).
const READ_TIMEOUT: Duration = Duration::from_secs(120);

/// A registry session: the transport settled and the credentials accepted for reading, before
/// anything is built or sent.
pub struct Registry<'a> {
    runtime: tokio::runtime::Runtime,
    client: Client,
    reference: Reference,
    auth: RegistryAuth,
    name: &'a ImageName,
    credentials: &'a Credentials,
    plain_http: bool,
}

/// The digest of no bytes: a blob no registry is asked to hold, so asking for it checks only
/// that the registry answers and takes the credentials (404 then; 401 if it refuses them).
const EMPTY_BLOB: &str = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

impl<'a> Registry<'a> {
    /// Speaks to the registry of `name` (GET /v2/, a token if it asks for one, a HEAD of a
    /// blob with the credentials): an unreachable registry, plain HTTP where HTTPS was asked,
    /// an untrusted certificate or refused credentials are reported here, within seconds.
    pub fn connect(
        name: &'a ImageName,
        credentials: &'a Credentials,
        transport: Transport,
    ) -> Result<Self, PushError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| PushError {
                failure: Failure::Other,
                message: format!("cannot start the network runtime: {e}"),
                help: "check the process limits (`ulimit -n`)".into(),
            })?;
        let plain_http = transport == Transport::PlainHttp;
        let mut registry = Registry {
            runtime,
            client: client(plain_http),
            reference: Reference::with_tag(
                name.registry.clone(),
                name.repository.clone(),
                name.tag.clone(),
            ),
            auth: registry_auth(&credentials.auth),
            name,
            credentials,
            plain_http,
        };
        match registry.check_access() {
            Err(e) if e.failure == Failure::PlainHttpAnswer && name.is_loopback() => {
                registry.plain_http = true;
                registry.client = client(true);
                registry.check_access()?;
            }
            other => other?,
        }
        Ok(registry)
    }

    fn check_access(&self) -> Result<(), PushError> {
        self.runtime
            .block_on(async {
                self.client
                    .auth(&self.reference, &self.auth, RegistryOperation::Push)
                    .await?;
                self.client.blob_exists(&self.reference, EMPTY_BLOB).await
            })
            .map(drop)
            .map_err(|e| self.explain(&e))
    }

    /// Pushes `image`: blobs the registry lacks, the manifest as built, then the digest read
    /// back (it must be the manifest's).
    pub fn push(&self, image: &BuiltImage) -> Result<Pushed, PushError> {
        let mut blobs: Vec<(String, bytes::Bytes)> = Vec::new();
        for layer in &image.layers {
            let data = std::fs::read(&layer.path).map_err(|e| PushError {
                failure: Failure::Other,
                message: format!("cannot read the built layer {}: {e}", layer.path.display()),
                help: "check that the temporary directory ($TMPDIR) has room".into(),
            })?;
            blobs.push((format!("sha256:{}", layer.digest), data.into()));
        }
        blobs.push((
            format!("sha256:{}", image.config_digest),
            bytes::Bytes::from(image.config_json.clone().into_bytes()),
        ));
        let (client, reference) = (&self.client, &self.reference);
        let (sent, present, digest) = self
            .runtime
            .block_on(async {
                let (mut sent, mut present) = (0, 0);
                for (digest, data) in blobs {
                    if client.blob_exists(reference, &digest).await? {
                        present += 1;
                    } else {
                        client.push_blob(reference, data, &digest).await?;
                        sent += 1;
                    }
                }
                let media_type =
                    http::HeaderValue::from_static(oci_client::manifest::OCI_IMAGE_MEDIA_TYPE);
                let manifest = bytes::Bytes::from(image.manifest_json.clone().into_bytes());
                client
                    .push_manifest_raw(reference, manifest, media_type)
                    .await?;
                let digest = client.fetch_manifest_digest(reference, &self.auth).await?;
                Ok((sent, present, digest))
            })
            .map_err(|e| self.explain(&e))?;
        let expected = format!("sha256:{}", image.manifest_digest);
        if digest != expected {
            return Err(PushError {
                failure: Failure::DigestMismatch,
                message: format!(
                    "{} holds {} under {digest}, not the pushed manifest {expected}",
                    self.name.registry,
                    self.name.tagged()
                ),
                help: "another push to this tag may have raced this one: push again, or push to a tag of its own".into(),
            });
        }
        Ok(Pushed {
            digest,
            sent,
            present,
            plain_http: self.plain_http,
        })
    }

    /// The error in words; a registry may echo a request, so no secret leaves here.
    fn explain(&self, e: &OciDistributionError) -> PushError {
        let mut error = explain(e, self.name, self.credentials, self.plain_http);
        for secret in self.credentials.secrets() {
            error.message = error.message.replace(&secret, "<redacted>");
        }
        error
    }
}

fn client(plain_http: bool) -> Client {
    // reqwest's rustls takes the process-wide provider: ring, as kube uses (a second install
    // attempt is a harmless no-op).
    let _ = rustls::crypto::ring::default_provider().install_default();
    Client::new(ClientConfig {
        protocol: if plain_http {
            ClientProtocol::Http
        } else {
            ClientProtocol::Https
        },
        connect_timeout: Some(CONNECT_TIMEOUT),
        read_timeout: Some(READ_TIMEOUT),
        user_agent: concat!("cniswap/", env!("CARGO_PKG_VERSION")),
        ..ClientConfig::default()
    })
}

fn registry_auth(auth: &Auth) -> RegistryAuth {
    match auth {
        Auth::Anonymous => RegistryAuth::Anonymous,
        Auth::Basic { username, password } => {
            RegistryAuth::Basic(username.clone(), password.clone())
        }
        Auth::Bearer(token) => RegistryAuth::Bearer(token.clone()),
    }
}

/// The error and its sources, one line.
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(next) = source {
        let line = next.to_string();
        if !text.contains(&line) {
            text.push_str(": ");
            text.push_str(&line);
        }
        source = next.source();
    }
    text
}

/// The HTTP status of a failed request, where oci-client kept one.
fn status(e: &OciDistributionError) -> Option<u16> {
    match e {
        OciDistributionError::RequestError(r) => r.status().map(|s| s.as_u16()),
        OciDistributionError::ServerError { code, .. } => Some(*code),
        OciDistributionError::UnauthorizedError { .. }
        | OciDistributionError::AuthenticationFailure(_) => Some(401),
        OciDistributionError::RegistryError { envelope, .. } => {
            envelope.errors.iter().find_map(|error| match error.code {
                OciErrorCode::Unauthorized => Some(401),
                OciErrorCode::Denied => Some(403),
                _ => None,
            })
        }
        _ => None,
    }
}

/// The registry's own words from an error body (`{"errors":[{"message": ...}]}`), else the
/// body's first line; None when it sent none (a HEAD, or a bare status).
fn registry_words(e: &OciDistributionError) -> Option<String> {
    let body = match e {
        OciDistributionError::ServerError { message, .. }
        | OciDistributionError::AuthenticationFailure(message) => message.as_str(),
        OciDistributionError::RegistryError { envelope, .. } => {
            let messages: Vec<&str> = envelope.errors.iter().map(|e| e.message.as_str()).collect();
            return Some(messages.join("; ")).filter(|m| !m.is_empty());
        }
        _ => return None,
    };
    let parsed: Option<Vec<String>> = serde_json::from_str::<serde_json::Value>(body)
        .ok()
        .and_then(|v| {
            v["errors"].as_array().map(|errors| {
                errors
                    .iter()
                    .filter_map(|e| e["message"].as_str().map(str::to_string))
                    .collect()
            })
        });
    let words = match parsed {
        Some(messages) if !messages.is_empty() => messages.join("; "),
        _ => body
            .lines()
            .next()
            .unwrap_or("")
            .chars()
            .take(200)
            .collect(),
    };
    Some(words).filter(|w| !w.trim().is_empty())
}

/// `HTTP 401` or `HTTP 401: what the registry said`.
fn http(code: u16, e: &OciDistributionError) -> String {
    match registry_words(e) {
        Some(words) => format!("HTTP {code}: {words}"),
        None => format!("HTTP {code}"),
    }
}

fn explain(
    e: &OciDistributionError,
    name: &ImageName,
    credentials: &Credentials,
    plain_http: bool,
) -> PushError {
    let registry = &name.registry;
    let scheme = if plain_http { "HTTP" } else { "HTTPS" };
    let failed = |failure, message: String, help: String| PushError {
        failure,
        message,
        help,
    };
    let login = format!(
        "log in (`podman login {registry}` or `docker login {registry}`), set REGISTRY_AUTH_FILE, or pass --username USER --password-stdin"
    );
    match status(e) {
        Some(401) => {
            let message = match &credentials.auth {
                Auth::Anonymous => format!(
                    "{registry} wants credentials to push {} (HTTP 401); cniswap found {}",
                    name.tagged(),
                    credentials.describe()
                ),
                _ => format!(
                    "{registry} refused {} ({})",
                    credentials.describe(),
                    http(401, e)
                ),
            };
            return failed(Failure::Unauthorized, message, login);
        }
        Some(403) => {
            return failed(
                Failure::Forbidden,
                format!(
                    "{registry} denied pushing to {} with {} ({})",
                    name.repository,
                    credentials.describe(),
                    http(403, e)
                ),
                format!(
                    "the account may not push to this repository: ask the registry's administrators for push rights to {}, or push to a repository it may write",
                    name.repository
                ),
            );
        }
        Some(code) => {
            return failed(
                Failure::Refused,
                format!(
                    "{registry} refused the push of {} ({})",
                    name.tagged(),
                    http(code, e)
                ),
                "check the repository name and the registry's storage and logs".into(),
            );
        }
        None => {}
    }
    let text = chain(e);
    let lower = text.to_lowercase();
    if let OciDistributionError::RequestError(r) = e
        && (r.is_connect() || r.is_timeout())
    {
        if lower.contains("certificate") || lower.contains("unknownissuer") {
            return failed(
                Failure::Certificate,
                format!("the TLS certificate of {registry} is not trusted here: {text}"),
                "add the CA that signed it to the system's trust store (Debian: copy it to /usr/local/share/ca-certificates/ and run update-ca-certificates)".into(),
            );
        }
        if !plain_http
            && (lower.contains("invalidcontenttype")
                || lower.contains("corrupt message")
                || lower.contains("wrong version number")
                || lower.contains("http response to https"))
        {
            return failed(
                Failure::PlainHttpAnswer,
                format!("{registry} answered HTTPS in plain HTTP"),
                "push over plain HTTP with --insecure, only if you trust every network hop to it"
                    .into(),
            );
        }
        let timeout = if r.is_timeout() { " (timed out)" } else { "" };
        return failed(
            Failure::Unreachable,
            format!("cannot reach the registry {registry} over {scheme}{timeout}: {text}"),
            format!(
                "check the host and port, and that this machine reaches it (`curl {}://{registry}/v2/`)",
                scheme.to_lowercase()
            ),
        );
    }
    failed(
        Failure::Other,
        format!("cannot push {} to {registry}: {text}", name.tagged()),
        "check the registry's address and logs, then push again (blobs already sent are not sent twice)".into(),
    )
}
