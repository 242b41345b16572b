//! Helm steps through the `helm` command: install/upgrade, uninstall with a backup, roll back;
//! each proven by reading the release back (`helm list`, `helm get values`, `helm history`).

use crate::KubeActions;
use crate::errors::failed;
use crate::tools::{self, Ran};
use cniswap_exec::{ActionError, Failure};
use serde_json::Value;
use std::time::Duration;

const QUERY: Duration = Duration::from_secs(60);

/// The release description that records which values a release runs with (as plan.yaml's
/// check reads it).
pub fn description(values_sha256: &str) -> String {
    format!("cniswap values sha256:{values_sha256}")
}

/// The render with each values file replaced by a checked private copy (crates/apply files).
pub(crate) fn checked_render(
    actions: &KubeActions,
    scratch: &crate::files::Scratch,
    render: &cniswap_plan::Render,
) -> Result<cniswap_plan::Render, ActionError> {
    let mut render = render.clone();
    if let cniswap_plan::Render::Helm { values, .. } = &mut render {
        for v in values.iter_mut() {
            *v = actions.artifact_copy(scratch, v)?;
        }
    }
    Ok(render)
}

/// The tool and arguments that render a manifest (its output is the manifest).
pub fn render_command(render: &cniswap_plan::Render) -> (&'static str, Vec<String>) {
    match render {
        cniswap_plan::Render::Helm {
            repo,
            chart,
            version,
            release,
            namespace,
            values,
        } => {
            let mut args = tools::args(&["template", release, chart]);
            args.extend(source_args(repo, version));
            args.extend(tools::args(&["--namespace", namespace]));
            for v in values {
                args.extend(tools::args(&["--values", v]));
            }
            ("helm", args)
        }
        cniswap_plan::Render::Kustomize { dir } => ("kubectl", tools::args(&["kustomize", dir])),
    }
}

/// `--repo REPO --version VERSION`; nothing for a chart in the plan directory (an empty
/// repo: `--chart` copied it there, and it is the version it is).
fn source_args(repo: &str, version: &str) -> Vec<String> {
    if repo.is_empty() {
        Vec::new()
    } else {
        tools::args(&["--repo", repo, "--version", version])
    }
}

#[allow(clippy::too_many_arguments)]
pub fn upgrade_args(
    release: &str,
    namespace: &str,
    repo: &str,
    chart: &str,
    version: &str,
    values: &[String],
    values_sha256: &str,
    timeout: Duration,
) -> Vec<String> {
    let mut args = tools::args(&["upgrade", "--install", release, chart]);
    args.extend(source_args(repo, version));
    args.extend(tools::args(&[
        "--namespace",
        namespace,
        "--create-namespace",
    ]));
    for file in values {
        args.extend(tools::args(&["--values", file]));
    }
    args.push(format!("--description={}", description(values_sha256)));
    args.extend(tools::args(&[
        "--wait",
        "--timeout",
        &format!("{}s", timeout.as_secs()),
    ]));
    args
}

fn parse_json(ran: &Ran) -> Result<Value, ActionError> {
    let text = ran.stdout.trim();
    if text.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|e| {
        ActionError::failed(
            Failure::new(format!("helm printed something that is not JSON: {e}"))
                .command(ran.argv.clone())
                .output(ran.stdout.clone()),
        )
    })
}

impl KubeActions {
    async fn helm(&self, args: Vec<String>, timeout: Duration) -> Result<Ran, ActionError> {
        tools::run_ok("helm", &args, &self.dir, timeout).await
    }

    /// The release as `helm list` shows it (any status), or `None`.
    pub async fn helm_release(
        &self,
        release: &str,
        namespace: &str,
    ) -> Result<Option<Value>, ActionError> {
        let ran = self
            .helm(
                tools::args(&[
                    "list",
                    "--namespace",
                    namespace,
                    // Every status, spelled so helm 3 and 4 both take it (4 dropped --all).
                    "--deployed",
                    "--failed",
                    "--pending",
                    "--superseded",
                    "--uninstalling",
                    "--filter",
                    &format!("^{release}$"),
                    "--output",
                    "json",
                ]),
                QUERY,
            )
            .await?;
        Ok(parse_json(&ran)?
            .as_array()
            .and_then(|a| a.iter().find(|r| r["name"] == release).cloned()))
    }

    /// The release's latest revision, or `None` when there is no release.
    pub async fn helm_revision(
        &self,
        release: &str,
        namespace: &str,
    ) -> Result<Option<i64>, ActionError> {
        Ok(self
            .helm_history(release, namespace)
            .await?
            .iter()
            .filter_map(|h| h["revision"].as_i64())
            .max())
    }

    #[allow(clippy::too_many_arguments)]
    pub async fn helm_upgrade(
        &self,
        release: &str,
        namespace: &str,
        repo: &str,
        chart: &str,
        version: &str,
        values: &[String],
        values_sha256: &str,
        revision_backup: Option<&str>,
        timeout: Duration,
    ) -> Result<String, ActionError> {
        let mut out = String::new();
        // The values must be the ones the plan was made with: each file checked against the
        // run's digest, all of them against the plan's values digest, and helm given the
        // checked copies (so what it reads is what was checked).
        let scratch = crate::files::Scratch::new()?;
        let mut bytes = Vec::new();
        let mut copies = Vec::new();
        for file in values {
            bytes.extend(self.artifact(file)?);
            copies.push(self.artifact_copy(&scratch, file)?);
        }
        let sha = cniswap_exec::digest::sha256(&bytes);
        if sha != values_sha256 {
            return Err(failed(format!(
                "the values files {} do not have the digest the plan recorded (sha256:{values_sha256})",
                values.join(" + ")
            )));
        }
        // The revision before, once (the rollback goes back to it; empty: no release yet).
        if let Some(file) = revision_backup
            && self
                .plan_dir
                .entry(file)
                .map_err(crate::files::plan_dir_failed)?
                == cniswap_exec::plandir::Entry::Missing
        {
            let revision = self.helm_revision(release, namespace).await?;
            let text = revision.map(|r| format!("{r}\n")).unwrap_or_default();
            self.save(file, text.as_bytes())?;
            out.push_str(&format!(
                "recorded the revision before in {file}: {}\n",
                text.trim()
            ));
        }
        let ran = self
            .helm(
                upgrade_args(
                    release,
                    namespace,
                    repo,
                    chart,
                    version,
                    &copies,
                    values_sha256,
                    timeout,
                ),
                timeout + QUERY,
            )
            .await?;
        out.push_str(&ran.transcript());
        Ok(out)
    }

    /// Deployed, with the plan's values (their digest is in the release description).
    pub async fn helm_in_place(
        &self,
        release: &str,
        namespace: &str,
        values_sha256: &str,
    ) -> Result<(bool, String), ActionError> {
        let ran = tools::run(
            "helm",
            &tools::args(&[
                "status",
                release,
                "--namespace",
                namespace,
                "--output",
                "json",
            ]),
            &self.dir,
            QUERY,
        )
        .await?;
        if ran.code != 0 {
            return Ok((false, format!("no release {namespace}/{release}")));
        }
        let status = parse_json(&ran)?;
        let state = status
            .pointer("/info/status")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let desc = status
            .pointer("/info/description")
            .and_then(Value::as_str)
            .unwrap_or_default();
        Ok(
            if state == "deployed" && desc == description(values_sha256) {
                (
                    true,
                    format!("release {release} deployed with the plan's values ({desc})"),
                )
            } else {
                (
                    false,
                    format!("release {release} is {state} with description {desc:?}"),
                )
            },
        )
    }

    pub async fn helm_uninstall(
        &self,
        release: &str,
        namespace: &str,
        backup: &str,
        timeout: Duration,
    ) -> Result<String, ActionError> {
        let mut out = String::new();
        if !self.holds(backup)? {
            let ran = self
                .helm(
                    tools::args(&["get", "all", release, "--namespace", namespace]),
                    QUERY,
                )
                .await?;
            self.save(backup, ran.stdout.as_bytes())?;
            out.push_str(&format!("backed up release {release} to {backup}\n"));
        }
        let ran = self
            .helm(
                tools::args(&[
                    "uninstall",
                    release,
                    "--namespace",
                    namespace,
                    "--wait",
                    "--timeout",
                    &format!("{}s", timeout.as_secs()),
                ]),
                timeout + QUERY,
            )
            .await?;
        out.push_str(&ran.transcript());
        Ok(out)
    }

    pub async fn helm_history(
        &self,
        release: &str,
        namespace: &str,
    ) -> Result<Vec<Value>, ActionError> {
        let ran = tools::run(
            "helm",
            &tools::args(&[
                "history",
                release,
                "--namespace",
                namespace,
                "--output",
                "json",
            ]),
            &self.dir,
            QUERY,
        )
        .await?;
        if ran.code != 0 {
            return Ok(Vec::new()); // no such release
        }
        Ok(parse_json(&ran)?.as_array().cloned().unwrap_or_default())
    }

    /// The revision the plan recorded before its upgrade: `Some(None)` when there was no
    /// release, `None` when the upgrade never ran (nothing to undo).
    fn recorded_revision(&self, file: &str) -> Result<Option<Option<i64>>, ActionError> {
        let Some(bytes) = self.saved(file)? else {
            return Ok(None);
        };
        let text = String::from_utf8_lossy(&bytes);
        let text = text.trim();
        if text.is_empty() {
            return Ok(Some(None));
        }
        text.parse::<i64>().map(|r| Some(Some(r))).map_err(|_| {
            failed(format!(
                "{file} should hold a revision number, not {text:?}"
            ))
        })
    }

    pub async fn helm_rollback(
        &self,
        release: &str,
        namespace: &str,
        revision_file: &str,
        timeout: Duration,
    ) -> Result<String, ActionError> {
        match self.recorded_revision(revision_file)? {
            None => Ok(format!(
                "{revision_file} does not exist: the upgrade never ran, nothing to undo"
            )),
            Some(Some(revision)) => Ok(self
                .helm(
                    tools::args(&[
                        "rollback",
                        release,
                        &revision.to_string(),
                        "--namespace",
                        namespace,
                        "--wait",
                        "--timeout",
                        &format!("{}s", timeout.as_secs()),
                    ]),
                    timeout + QUERY,
                )
                .await?
                .transcript()),
            Some(None) => {
                if self.helm_release(release, namespace).await?.is_none() {
                    return Ok(format!("no release {release} to remove"));
                }
                Ok(self
                    .helm(
                        tools::args(&["uninstall", release, "--namespace", namespace, "--wait"]),
                        timeout + QUERY,
                    )
                    .await?
                    .transcript())
            }
        }
    }

    pub async fn helm_rolled_back(
        &self,
        release: &str,
        namespace: &str,
        revision_file: &str,
    ) -> Result<(bool, String), ActionError> {
        match self.recorded_revision(revision_file)? {
            None => Ok((
                true,
                format!("{revision_file} does not exist: the upgrade never ran"),
            )),
            Some(None) => {
                let exists = self.helm_release(release, namespace).await?.is_some();
                Ok((
                    !exists,
                    format!(
                        "release {release} {}",
                        if exists {
                            "still exists"
                        } else {
                            "is gone, as before the plan"
                        }
                    ),
                ))
            }
            Some(Some(revision)) => {
                let history = self.helm_history(release, namespace).await?;
                let latest = history
                    .iter()
                    .max_by_key(|h| h["revision"].as_i64().unwrap_or(0));
                Ok(match latest {
                    Some(h)
                        if h["status"] == "deployed"
                            && h["description"].as_str()
                                == Some(format!("Rollback to {revision}").as_str()) =>
                    {
                        (
                            true,
                            format!("release {release} rolled back to revision {revision}"),
                        )
                    }
                    _ => (
                        false,
                        format!("release {release} is not rolled back to revision {revision}"),
                    ),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chart copied into the plan directory (`--chart`) is a path: helm must not look it up
    /// in a repository, and a local chart is the version it is.
    #[test]
    fn a_local_chart_has_no_repo_or_version_arguments() {
        let local = upgrade_args(
            "cilium",
            "kube-system",
            "",
            "artifacts/charts/cilium",
            "1.20.2",
            &["artifacts/cilium/values.yaml".into()],
            "abc",
            Duration::from_secs(60),
        );
        assert_eq!(
            &local[..4],
            ["upgrade", "--install", "cilium", "artifacts/charts/cilium"]
        );
        assert!(
            !local.iter().any(|a| a == "--repo" || a == "--version"),
            "{local:?}"
        );
        let remote = upgrade_args(
            "cilium",
            "kube-system",
            "https://helm.cilium.io",
            "cilium",
            "1.20.1",
            &[],
            "abc",
            Duration::from_secs(60),
        );
        assert_eq!(
            &remote[4..8],
            ["--repo", "https://helm.cilium.io", "--version", "1.20.1"]
        );
        let (_, template) = render_command(&cniswap_plan::Render::Helm {
            repo: String::new(),
            chart: "artifacts/charts/cilium".into(),
            version: "1.20.2".into(),
            release: "cilium".into(),
            namespace: "kube-system".into(),
            values: vec![],
        });
        assert_eq!(
            template[..3],
            ["template", "cilium", "artifacts/charts/cilium"]
        );
        assert_eq!(template[3], "--namespace");
    }
}
