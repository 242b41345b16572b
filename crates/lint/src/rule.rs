//! What a rule is: metadata from RULES.md plus a check over the [`Context`].

use crate::context::Context;
use cniswap_config::Node;
use cniswap_model::{Finding, Location, Severity};

/// The inputs of RULES.md; a rule runs only when every input it needs is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Input {
    /// Talos machine configs or patches (merged per role).
    Talos,
    /// Omni ConfigPatches or cluster templates.
    Omni,
    /// Cilium Helm values (or the cluster's `cilium-config`).
    Cilium,
    /// Calico Installation / FelixConfiguration / IPPool / services-endpoint ConfigMap.
    Calico,
    /// Flannel net-conf.json or Talos Flannel settings.
    Flannel,
    /// Cluster facts from a live cluster or a snapshot with cluster objects.
    Facts,
    /// The intended target CNI (`--to`).
    Target,
    /// Node inventories (`nodes/<node>.json`).
    Node,
}

impl Input {
    pub fn as_str(self) -> &'static str {
        match self {
            Input::Talos => "talos",
            Input::Omni => "omni",
            Input::Cilium => "cilium",
            Input::Calico => "calico",
            Input::Flannel => "flannel",
            Input::Facts => "facts",
            Input::Target => "target",
            Input::Node => "node",
        }
    }
}

/// A rule's identity and documentation.
pub struct RuleMeta {
    /// Stable ID, e.g. `CIL001`.
    pub id: &'static str,
    /// Kebab-case name, e.g. `cni-exclusive-disabled`.
    pub name: &'static str,
    /// One-line title shown in text output.
    pub title: &'static str,
    pub severity: Severity,
    /// Inputs that must all be present for the rule to run.
    pub inputs: &'static [Input],
    /// The default fix, shown as `help:` unless the rule gives a more specific one.
    pub fix: &'static str,
    /// docs/rules/<ID>.md, shown by `cniswap explain`.
    pub docs: &'static str,
}

pub struct Rule {
    pub meta: RuleMeta,
    pub check: fn(&Context, &mut Emitter),
}

/// Collects one rule's findings, filling in its ID, name, severity and default help.
pub struct Emitter<'a> {
    pub(crate) meta: &'static RuleMeta,
    pub(crate) ctx: &'a Context<'a>,
    pub(crate) findings: Vec<Finding>,
}

impl<'a> Emitter<'a> {
    pub fn new(meta: &'static RuleMeta, ctx: &'a Context<'a>) -> Self {
        Emitter {
            meta,
            ctx,
            findings: Vec::new(),
        }
    }

    /// Starts a finding; it is recorded when the returned builder is passed to [`Emitter::push`].
    pub fn finding(&self, message: impl Into<String>) -> Draft {
        Draft {
            finding: Finding {
                rule: self.meta.id.to_string(),
                name: self.meta.name.to_string(),
                severity: self.meta.severity,
                message: message.into(),
                location: None,
                object: None,
                help: self.meta.fix.to_string(),
            },
        }
    }

    pub fn push(&mut self, draft: Draft) {
        self.findings.push(draft.finding);
    }

    /// The file position of a node, when it came from a file.
    pub fn location(&self, node: &Node) -> Option<Location> {
        self.ctx.location(node)
    }

    pub fn into_findings(self) -> Vec<Finding> {
        self.findings
    }
}

#[must_use = "pass the draft to Emitter::push"]
pub struct Draft {
    finding: Finding,
}

impl Draft {
    pub fn at(mut self, location: Option<Location>) -> Self {
        if location.is_some() {
            self.finding.location = location;
        }
        self
    }

    pub fn object(mut self, object: impl Into<String>) -> Self {
        self.finding.object = Some(object.into());
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.finding.help = help.into();
        self
    }

    pub fn severity(mut self, severity: Severity) -> Self {
        self.finding.severity = severity;
        self
    }
}
