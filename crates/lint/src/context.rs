//! Everything a rule can read: the snapshot, its facts, the typed input views and the target.

use crate::input::calico::{self, CalicoInputs};
use crate::input::cilium::{self, CiliumValues};
use crate::input::flannel::{self, FlannelConfig};
use crate::input::talos::{self, TalosView};
use crate::rule::Input;
use cniswap_config::Node;
use cniswap_model::{CniKind, Facts, Location, PlatformKind};
use cniswap_snapshot::Snapshot;

/// How the migration will run (DESIGN.md "Strategies").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Fresh,
    Cutover,
    Rolling,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Fresh => "fresh",
            Strategy::Cutover => "cutover",
            Strategy::Rolling => "rolling",
        }
    }
}

/// What the user intends: `--to` and `--strategy`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Target {
    pub cni: Option<CniKind>,
    pub strategy: Option<Strategy>,
    /// The planner's estimate of the longest pod-network outage (MIG009); lint alone has none.
    pub estimated_outage_minutes: Option<u32>,
}

pub struct Context<'a> {
    pub snapshot: &'a Snapshot,
    pub facts: &'a Facts,
    pub target: Target,
    pub talos: Vec<TalosView>,
    pub cilium: Vec<CiliumValues>,
    pub calico: CalicoInputs,
    pub flannel: Vec<FlannelConfig>,
    pub grouping: crate::input::Grouping,
}

impl<'a> Context<'a> {
    pub fn new(snapshot: &'a Snapshot, facts: &'a Facts, target: Target) -> Self {
        let cilium_version = facts
            .cnis
            .iter()
            .find(|c| c.kind == CniKind::Cilium)
            .and_then(|c| c.version.as_deref());
        Context {
            snapshot,
            facts,
            target,
            // Only a running cluster's version is evidence for the files; facts derived from
            // the files themselves may belong to another cluster in the same repository.
            talos: talos::views(
                snapshot,
                facts
                    .platform
                    .version
                    .as_deref()
                    .filter(|_| !snapshot.objects.nodes.is_empty()),
            ),
            cilium: cilium::collect(snapshot, cilium_version),
            calico: calico::collect(snapshot),
            flannel: flannel::collect(snapshot),
            grouping: crate::input::Grouping::new(snapshot),
        }
    }

    /// Talos views that describe the same cluster as the file `label` (same directory group);
    /// all views when none does.
    pub fn views_for(&self, label: &str) -> Vec<&TalosView> {
        let group = self.grouping.group_of(label);
        let matching: Vec<&TalosView> = self
            .talos
            .iter()
            .filter(|v| !group.is_empty() && v.group == group)
            .collect();
        if matching.is_empty() {
            self.talos.iter().collect()
        } else {
            matching
        }
    }

    /// The cluster (Talos view group) a file belongs to, when the inputs hold several clusters
    /// side by side and the file sits in one of their directories; `None` otherwise.
    pub fn cluster_of(&self, label: &str) -> Option<String> {
        let mut groups: Vec<&str> = self
            .talos
            .iter()
            .map(|v| v.group.as_str())
            .filter(|g| !g.is_empty())
            .collect();
        groups.sort_unstable();
        groups.dedup();
        // Several Talos clusters side by side: every top-level directory is its own cluster.
        let group = self.grouping.group_of(label);
        (groups.len() > 1 && !group.is_empty()).then_some(group)
    }

    /// Whether two files may describe the same cluster.
    pub fn same_cluster(&self, a: &str, b: &str) -> bool {
        match (self.cluster_of(a), self.cluster_of(b)) {
            (Some(a), Some(b)) => a == b,
            _ => true,
        }
    }

    /// Cilium values that describe the same cluster as `view`; all when none is in its group.
    pub fn cilium_for(&self, view: &TalosView) -> Vec<&CiliumValues> {
        let matching: Vec<&CiliumValues> = self
            .cilium
            .iter()
            .filter(|c| !view.group.is_empty() && self.grouping.group_of(&c.label) == view.group)
            .collect();
        if matching.is_empty() {
            self.cilium.iter().collect()
        } else {
            matching
        }
    }

    pub fn has(&self, input: Input) -> bool {
        match input {
            Input::Talos => !self.talos.is_empty(),
            Input::Omni => {
                self.snapshot
                    .talos
                    .iter()
                    .any(|t| t.summary.kind.starts_with("omni"))
                    || !self.snapshot.omni_templates.is_empty()
            }
            Input::Cilium => !self.cilium.is_empty(),
            Input::Calico => !self.calico.is_empty(),
            Input::Flannel => !self.flannel.is_empty(),
            Input::Facts => self.has_cluster(),
            Input::Target => self.target.cni.is_some(),
            Input::Node => !self.snapshot.node_inventories.is_empty(),
        }
    }

    /// Cluster objects were read (live or a snapshot dump), not only config files.
    pub fn has_cluster(&self) -> bool {
        !self.snapshot.objects.nodes.is_empty()
    }

    /// The file position of a node, when it came from a file.
    pub fn location(&self, node: &Node) -> Option<Location> {
        if !node.has_position() {
            return None;
        }
        let file = self.snapshot.source_file(node.pos.source)?;
        Some(Location {
            file: file.path.clone(),
            line: node.pos.line,
            column: node.pos.column,
        })
    }

    /// For a setting that is absent: the file `node` came from, as a whole (column 0), so
    /// renderers name the file without underlining an unrelated key.
    pub fn file_location(&self, node: &Node) -> Option<Location> {
        let file = self.snapshot.source_file(node.pos.source)?;
        Some(Location {
            file: file.path.clone(),
            line: 1,
            column: 0,
        })
    }

    /// The node's position when it is set, else the file of `fallback`.
    pub fn location_or_file(&self, node: Option<&Node>, fallback: &Node) -> Option<Location> {
        node.and_then(|n| self.location(n))
            .or_else(|| self.file_location(fallback))
    }

    /// The cluster runs Talos (facts), or Talos configs were given.
    pub fn is_talos(&self) -> bool {
        self.facts.platform.kind == PlatformKind::Talos || !self.talos.is_empty()
    }

    /// CNIs whose agents run, per cluster facts.
    pub fn running_cnis(&self) -> Vec<CniKind> {
        self.facts
            .cnis
            .iter()
            .filter(|c| c.running)
            .map(|c| c.kind)
            .collect()
    }

    /// Running CNIs other than the target: what a migration moves away from.
    pub fn source_cnis(&self) -> Vec<CniKind> {
        self.running_cnis()
            .into_iter()
            .filter(|k| Some(*k) != self.target.cni)
            .collect()
    }

    /// A migration is planned or running: a target other than a running CNI, or a
    /// rolling/cutover strategy.
    pub fn migrating(&self) -> bool {
        self.target.cni.is_some()
            && (!self.source_cnis().is_empty()
                || matches!(
                    self.target.strategy,
                    Some(Strategy::Rolling | Strategy::Cutover)
                ))
    }

    /// A rolling (dual-dataplane) migration to `cni`: `--strategy rolling`, or no strategy
    /// given while the facts show another CNI running on a multi-node cluster (what `auto`
    /// would pick when the prerequisites hold).
    pub fn rolling_to(&self, cni: CniKind) -> bool {
        if self.target.cni != Some(cni) {
            return false;
        }
        match self.target.strategy {
            Some(strategy) => strategy == Strategy::Rolling,
            None => !self.source_cnis().is_empty() && self.facts.nodes.len() > 1,
        }
    }

    /// How a rule should describe the rolling assumption in its message.
    pub fn rolling_reason(&self) -> &'static str {
        if self.target.strategy == Some(Strategy::Rolling) {
            "during the rolling migration"
        } else {
            "during a rolling migration (assumed: another CNI runs and no --strategy was given)"
        }
    }

    /// The object label for a finding about a Talos view without a file position.
    pub fn talos_object(&self, view: &TalosView) -> String {
        format!("Talos config {}", view.describe())
    }
}
