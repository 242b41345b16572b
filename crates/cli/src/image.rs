//! `cniswap image build|push`: the agents' image, made from the running binary, written as an
//! OCI image layout directory or pushed to a registry.

use crate::args::{ImageCommand, OutputFormat};
use crate::error::CliError;
use crate::{exit, render};
use cniswap_oci::{Layer, RunConfig};
use cniswap_registry::{Credentials, ImageName, Registry, Transport};
use std::io::IsTerminal;
use std::path::Path;

pub fn run(command: ImageCommand) -> Result<u8, CliError> {
    match command {
        ImageCommand::Build { out_dir, tag } => {
            cniswap_registry::check_tag(&tag).map_err(|e| CliError::usage(e.message, e.help))?;
            build(&out_dir, &tag)
        }
        ImageCommand::Push {
            reference,
            username,
            password_stdin,
            insecure,
            output,
        } => {
            let password = password_stdin.then(read_password).transpose()?;
            push(&reference, username.zip(password), insecure, output)
        }
    }
}

/// This binary at /usr/local/bin/cniswap (its shared libraries too, when it is not static),
/// this machine's iptables (both backends), nft, ipset, ip, tc and bridge with theirs (the node
/// agent reads and cleans a node with them), `/tmp`, and cniswap as the entrypoint. No user is
/// set: apply's node steps run it as root in privileged pods, and verify's pods set their own
/// non-root user.
fn image_layer() -> Result<(Layer, RunConfig), CliError> {
    let binary = std::env::current_exe().map_err(|e| {
        CliError::other(
            format!("cannot find this cniswap binary: {e}"),
            "run cniswap from a file on disk",
        )
    })?;
    let mut layer = Layer::new();
    layer
        .host_binary(&binary, "/usr/local/bin/cniswap")
        .and_then(|l| l.dir("/tmp", 0o1777))
        .map_err(|e| {
            CliError::other(
                format!("cannot put {} into the image: {e}", binary.display()),
                "check that ldd can read it (a static build needs nothing else)",
            )
        })?;
    cniswap_oci::tools::add_node_tools(&mut layer).map_err(|e| {
        CliError::other(
            format!("cannot put the node agent's tools into the image: {e}"),
            "build the image on a Linux machine with iptables, nftables and ipset installed (Debian: apt-get install iptables nftables ipset iproute2)",
        )
    })?;
    let config = RunConfig {
        entrypoint: vec!["/usr/local/bin/cniswap".into()],
        ..RunConfig::default()
    };
    Ok((layer, config))
}

fn build(out_dir: &Path, tag: &str) -> Result<u8, CliError> {
    if std::fs::symlink_metadata(out_dir).is_ok() {
        return Err(CliError::other(
            format!("{} already exists", out_dir.display()),
            "give a new directory to --out-dir (an image layout is written whole, never into an old one)",
        ));
    }
    let (layer, config) = image_layer()?;
    let info = cniswap_oci::write_layout(tag, &[&layer], &config, out_dir).map_err(|e| {
        CliError::other(
            format!("cannot write the image: {e}"),
            "check that the parent directory exists and is writable",
        )
    })?;
    let dir = cniswap_model::text::escape_control(&out_dir.display().to_string()).into_owned();
    render::write_stdout(&format!(
        "Wrote the cniswap {tag} image ({} bytes, manifest {}) to {dir}\n\
         Copy it into a registry: skopeo copy oci:{dir}:{tag} docker://REGISTRY/cniswap:{tag}\n\
         (from a machine that reaches the registry, `cniswap image push REGISTRY/cniswap` does both)\n\
         Then: cniswap verify --image REGISTRY/cniswap:{tag}; cniswap plan ... --agent-image REGISTRY/cniswap:{tag}\n",
        info.size, info.manifest_digest
    ))?;
    Ok(exit::OK)
}

/// One line of standard input, without its line ending (as `docker login --password-stdin`).
fn read_password() -> Result<String, CliError> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(CliError::usage(
            "--password-stdin reads the password from a pipe, and standard input is a terminal",
            "pipe it in: `cniswap image push ... --username USER --password-stdin < FILE` (or from a secret store)",
        ));
    }
    let mut line = String::new();
    stdin.read_line(&mut line).map_err(|e| {
        CliError::other(
            format!("cannot read the password from standard input: {e}"),
            "pipe it in as one line of UTF-8",
        )
    })?;
    let password = line.trim_end_matches(['\n', '\r']).to_string();
    if password.is_empty() {
        return Err(CliError::usage(
            "--password-stdin read an empty password",
            "pipe the password or access token in as one line",
        ));
    }
    Ok(password)
}

fn push(
    reference: &str,
    given: Option<(String, String)>,
    insecure: bool,
    output: OutputFormat,
) -> Result<u8, CliError> {
    let name = ImageName::parse(reference, env!("CARGO_PKG_VERSION"))
        .map_err(|e| CliError::usage(e.message, e.help))?;
    let credentials = match given {
        Some((username, password)) => Credentials::given(username, password),
        None => cniswap_registry::credentials::lookup(&name.registry, &name.repository)
            .map_err(|e| CliError::other(e.message, e.help))?,
    };
    let transport = if insecure {
        Transport::PlainHttp
    } else {
        Transport::Https
    };
    let spinner = Spinner::new();
    spinner.say(format!(
        "connecting to {} with {}",
        name.registry,
        credentials.describe()
    ));
    let pushing_error = |e: cniswap_registry::PushError| CliError::other(e.message, e.help);
    let registry = Registry::connect(&name, &credentials, transport).map_err(pushing_error)?;
    spinner.say("building the image from this binary".into());
    let (layer, config) = image_layer()?;
    let scratch = tempfile::tempdir().map_err(|e| {
        CliError::other(
            format!("cannot create a temporary directory: {e}"),
            "check that $TMPDIR (or /tmp) exists and is writable",
        )
    })?;
    let image = cniswap_oci::build(&[&layer], &config, scratch.path()).map_err(|e| {
        CliError::other(
            format!("cannot build the image: {e}"),
            "check that $TMPDIR (or /tmp) has room for the compressed binary",
        )
    })?;
    let size: u64 = image.layers.iter().map(|l| l.size).sum();
    spinner.say(format!(
        "pushing {} ({:.1} MiB)",
        name.tagged(),
        size as f64 / (1024.0 * 1024.0)
    ));
    let pushed = registry.push(&image).map_err(pushing_error)?;
    drop(spinner);
    let pinned = name.pinned(&pushed.digest);
    let report = PushReport {
        pushed: name.tagged(),
        reference: pinned.clone(),
        digest: pushed.digest.clone(),
        blobs_sent: pushed.sent,
        blobs_present: pushed.present,
        plain_http: pushed.plain_http,
    };
    let text = match output {
        OutputFormat::Json => serde_json::to_string_pretty(&report).unwrap_or_default() + "\n",
        OutputFormat::Yaml => serde_saphyr::to_string(&report).unwrap_or_default(),
        OutputFormat::Text => {
            let over = if pushed.plain_http {
                ", over plain HTTP"
            } else {
                ""
            };
            format!(
                "Pushed {} ({} blobs sent, {} already there{over}):\n\
                 {pinned}\n\
                 Use it:\n  cniswap verify --image {pinned}\n  cniswap plan ... --agent-image {pinned}\n",
                report.pushed, pushed.sent, pushed.present,
            )
        }
    };
    render::write_stdout(&text)?;
    Ok(exit::OK)
}

/// What `image push -o json|yaml` prints.
#[derive(serde::Serialize)]
struct PushReport {
    /// REGISTRY/NAME:TAG.
    pushed: String,
    /// REGISTRY/NAME@sha256:..., for verify --image and plan --agent-image.
    reference: String,
    digest: String,
    blobs_sent: usize,
    blobs_present: usize,
    plain_http: bool,
}

/// A spinner on stderr when it is a terminal (silent otherwise), cleared when dropped.
struct Spinner(indicatif::ProgressBar);

impl Spinner {
    fn new() -> Self {
        Spinner(if std::io::stderr().is_terminal() {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            bar
        } else {
            indicatif::ProgressBar::hidden()
        })
    }

    fn say(&self, text: String) {
        self.0
            .set_message(cniswap_model::text::escape_control(&text).into_owned());
    }
}

impl Drop for Spinner {
    fn drop(&mut self) {
        self.0.finish_and_clear();
    }
}
