//! A small YAML tree with positions, built from saphyr-parser's event stream.
//!
//! Readers work on this tree rather than on saphyr types so that positions (for error messages
//! and lint findings) survive and the parser can change without touching every reader.
//!
//! The tree is built without recursion and within the budgets of [`crate::limits`]: nesting
//! depth, node count and the bytes that aliases produce (a "billion laughs" file ends in an
//! error, not in an abort). An alias becomes a copy of its anchor that keeps the anchor's
//! positions, marked [`Pos::aliased`], so that redaction rewrites the anchor's text when the
//! alias lands on a secret field.

use crate::limits::{self, LimitHit, Limits};
use saphyr::{Scalar, ScalarStyle};
use saphyr_parser::{Event, Parser, Span};
use std::collections::{HashMap, HashSet};
use std::fmt;

/// 1-based line and column of a node's first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, PartialOrd, Ord)]
pub struct Pos {
    pub line: usize,
    pub column: usize,
    /// Character offset (not byte offset) from the start of the text.
    pub char_start: usize,
    pub char_end: usize,
    /// Which file the node came from: an index the loader assigns (0 = unknown).
    pub source: u32,
    /// The node is the copy an alias (`*name`) made of its anchor: the positions are the
    /// anchor's, not the alias's.
    pub aliased: bool,
    /// A block scalar (`|` or `>`): its span starts at the first content line.
    pub block: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Node>),
    /// Entries in source order; keys keep their own positions.
    Map(Vec<(Node, Node)>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub pos: Pos,
    pub value: Value,
}

/// A YAML syntax error, or a budget the text went over, with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
    /// Set when the text went over a budget rather than being invalid.
    pub limit: Option<LimitHit>,
}

impl YamlError {
    fn at(span: &Span, message: impl Into<String>) -> Self {
        YamlError {
            line: span.start.line(),
            column: span.start.col() + 1,
            message: message.into(),
            limit: None,
        }
    }

    fn over(span: &Span, budget: limits::Budget, limit: u64) -> Self {
        let hit = LimitHit::new(budget, limit);
        YamlError {
            limit: Some(hit),
            ..YamlError::at(span, hit.to_string())
        }
    }
}

/// Parses every document of a YAML stream within the budgets in force. Empty documents are
/// dropped.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, YamlError> {
    parse_documents_with(text, &Limits::current())
}

/// [`parse_documents`] with explicit budgets.
pub fn parse_documents_with(text: &str, limits: &Limits) -> Result<Vec<Node>, YamlError> {
    let mut parser = Parser::new_from_str(text);
    let mut builder = Builder::new(limits);
    while let Some(event) = parser.next_event() {
        let (event, span) = event.map_err(|e| YamlError {
            line: e.marker().line(),
            column: e.marker().col() + 1,
            message: e.info().to_string(),
            limit: None,
        })?;
        builder.on_event(event, &span)?;
    }
    Ok(builder.docs)
}

/// An open collection while the tree is built.
enum Frame {
    Seq {
        pos: Pos,
        anchor: usize,
        items: Vec<Node>,
    },
    Map {
        pos: Pos,
        anchor: usize,
        entries: Vec<(Node, Node)>,
        key: Option<Node>,
        /// Scalar keys seen, once the map is large enough for a linear scan to hurt.
        seen: Option<HashSet<String>>,
    },
}

struct Builder<'l> {
    limits: &'l Limits,
    docs: Vec<Node>,
    stack: Vec<Frame>,
    anchors: HashMap<usize, Node>,
    nodes: usize,
    alias_bytes: u64,
}

/// Bytes an alias copy costs: its scalars plus a fixed amount per node.
const NODE_COST: u64 = 64;

/// Maps with more entries than this check duplicate keys with a hash set.
const LINEAR_KEY_SCAN: usize = 16;

impl<'l> Builder<'l> {
    fn new(limits: &'l Limits) -> Self {
        Builder {
            limits,
            docs: Vec::new(),
            stack: Vec::new(),
            anchors: HashMap::new(),
            nodes: 0,
            alias_bytes: 0,
        }
    }

    fn pos(span: &Span) -> Pos {
        Pos {
            line: span.start.line(),
            column: span.start.col() + 1,
            char_start: span.start.index(),
            char_end: span.end.index(),
            source: 0,
            aliased: false,
            block: false,
        }
    }

    fn count_node(&mut self, span: &Span) -> Result<(), YamlError> {
        self.nodes += 1;
        if self.nodes > self.limits.max_nodes {
            return Err(YamlError::over(
                span,
                limits::MAX_NODES,
                self.limits.max_nodes as u64,
            ));
        }
        Ok(())
    }

    fn open(&mut self, span: &Span) -> Result<Pos, YamlError> {
        self.count_node(span)?;
        if self.stack.len() >= self.limits.max_depth {
            return Err(YamlError::over(
                span,
                limits::MAX_DEPTH,
                self.limits.max_depth as u64,
            ));
        }
        Ok(Self::pos(span))
    }

    fn on_event(&mut self, event: Event<'_>, span: &Span) -> Result<(), YamlError> {
        match event {
            Event::DocumentStart(_) => self.anchors.clear(),
            Event::Nothing | Event::StreamStart | Event::StreamEnd | Event::DocumentEnd => {}
            Event::SequenceStart(anchor, _) => {
                let pos = self.open(span)?;
                self.stack.push(Frame::Seq {
                    pos,
                    anchor,
                    items: Vec::new(),
                });
            }
            Event::MappingStart(anchor, _) => {
                let pos = self.open(span)?;
                self.stack.push(Frame::Map {
                    pos,
                    anchor,
                    entries: Vec::new(),
                    key: None,
                    seen: None,
                });
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (node, anchor) = match self.stack.pop() {
                    Some(Frame::Seq { pos, anchor, items }) => (
                        Node {
                            pos: Pos {
                                char_end: span.end.index(),
                                ..pos
                            },
                            value: Value::Seq(items),
                        },
                        anchor,
                    ),
                    Some(Frame::Map {
                        pos,
                        anchor,
                        entries,
                        ..
                    }) => (
                        Node {
                            pos: Pos {
                                char_end: span.end.index(),
                                ..pos
                            },
                            value: Value::Map(entries),
                        },
                        anchor,
                    ),
                    None => return Err(YamlError::at(span, "unbalanced collection end")),
                };
                self.insert(node, anchor)?;
            }
            Event::Scalar(text, style, anchor, tag) => {
                self.count_node(span)?;
                let value = match Scalar::parse_from_cow_and_metadata(text, style, tag.as_ref()) {
                    Some(Scalar::Null) | None => Value::Null,
                    Some(Scalar::Boolean(b)) => Value::Bool(b),
                    Some(Scalar::Integer(i)) => Value::Int(i),
                    Some(Scalar::FloatingPoint(f)) => Value::Float(f.into_inner()),
                    Some(Scalar::String(s)) => Value::Str(s.into_owned()),
                };
                let node = Node {
                    pos: Pos {
                        block: matches!(style, ScalarStyle::Literal | ScalarStyle::Folded),
                        ..Self::pos(span)
                    },
                    value,
                };
                self.insert(node, anchor)?;
            }
            Event::Alias(id) => {
                let Some(anchored) = self.anchors.get(&id) else {
                    return Err(YamlError::at(span, "alias to an unknown anchor"));
                };
                let budget = self.limits.max_alias_expansion;
                let cost = copy_cost(anchored, budget.saturating_sub(self.alias_bytes));
                self.alias_bytes = self.alias_bytes.saturating_add(cost);
                if self.alias_bytes > budget {
                    return Err(YamlError::over(span, limits::MAX_ALIAS_EXPANSION, budget));
                }
                let mut copy = anchored.clone();
                copy.pos.aliased = true;
                self.insert(copy, 0)?;
            }
        }
        Ok(())
    }

    fn insert(&mut self, node: Node, anchor: usize) -> Result<(), YamlError> {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
        match self.stack.last_mut() {
            None => {
                if !matches!(node.value, Value::Null) {
                    self.docs.push(node);
                }
            }
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map {
                entries, key, seen, ..
            }) => match key.take() {
                None => *key = Some(node),
                Some(k) => {
                    if let Some(repr) = key_repr(&k) {
                        let duplicate = match seen {
                            Some(set) => !set.insert(repr),
                            None => {
                                let dup = entries
                                    .iter()
                                    .any(|(e, _)| key_repr(e).as_deref() == Some(repr.as_str()));
                                if entries.len() >= LINEAR_KEY_SCAN {
                                    let mut set: HashSet<String> =
                                        entries.iter().filter_map(|(e, _)| key_repr(e)).collect();
                                    set.insert(repr);
                                    *seen = Some(set);
                                }
                                dup
                            }
                        };
                        if duplicate {
                            return Err(YamlError {
                                line: k.pos.line,
                                column: k.pos.column,
                                message: "duplicated key in mapping".into(),
                                limit: None,
                            });
                        }
                    }
                    entries.push((k, node));
                }
            },
        }
        Ok(())
    }
}

/// A scalar key with its type, for duplicate detection (`1` and `"1"` are different keys).
fn key_repr(key: &Node) -> Option<String> {
    Some(match &key.value {
        Value::Null => "~".to_string(),
        Value::Bool(b) => format!("b{b}"),
        Value::Int(i) => format!("i{i}"),
        Value::Float(f) => format!("f{f}"),
        Value::Str(s) => format!("s{s}"),
        Value::Seq(_) | Value::Map(_) => return None,
    })
}

/// What copying `node` costs, counted without recursion and stopping once over `budget`.
fn copy_cost(node: &Node, budget: u64) -> u64 {
    let mut cost = 0u64;
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        cost = cost.saturating_add(NODE_COST);
        match &n.value {
            Value::Str(s) => cost = cost.saturating_add(s.len() as u64),
            Value::Seq(items) => stack.extend(items.iter()),
            Value::Map(entries) => {
                for (k, v) in entries {
                    stack.push(k);
                    stack.push(v);
                }
            }
            _ => {}
        }
        if cost > budget {
            return cost;
        }
    }
    cost
}

impl Node {
    /// Looks up a key in a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// Follows a dotted path of mapping keys: `node.path(&["cluster", "network", "cni"])`.
    pub fn path(&self, keys: &[&str]) -> Option<&Node> {
        keys.iter().try_fold(self, |node, key| node.get(key))
    }

    /// The key node (not the value) of the last segment of `keys`: findings about a section
    /// point at its key rather than at its first child.
    pub fn path_key(&self, keys: &[&str]) -> Option<&Node> {
        let (last, parents) = keys.split_last()?;
        self.path(parents)?
            .entries()
            .iter()
            .find(|(k, _)| k.as_str() == Some(last))
            .map(|(k, _)| k)
    }

    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The scalar as text, whatever its YAML type (`8472`, `true`, `"8472"` all work).
    pub fn scalar_text(&self) -> Option<String> {
        match &self.value {
            Value::Str(s) => Some(s.clone()),
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(f.to_string()),
            _ => None,
        }
    }

    /// Booleans written as YAML booleans or as the strings "true"/"false".
    pub fn as_bool(&self) -> Option<bool> {
        match &self.value {
            Value::Bool(b) => Some(*b),
            Value::Str(s) if s.eq_ignore_ascii_case("true") => Some(true),
            Value::Str(s) if s.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }

    pub fn as_u16(&self) -> Option<u16> {
        self.scalar_text()?.trim().parse().ok()
    }

    pub fn as_seq(&self) -> &[Node] {
        match &self.value {
            Value::Seq(items) => items,
            _ => &[],
        }
    }

    pub fn entries(&self) -> &[(Node, Node)] {
        match &self.value {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    pub fn is_map(&self) -> bool {
        matches!(self.value, Value::Map(_))
    }

    /// The strings of a sequence of scalars; other items are ignored.
    pub fn string_list(&self) -> Vec<String> {
        self.as_seq().iter().filter_map(Node::scalar_text).collect()
    }

    /// Converts to JSON (positions are dropped). Map keys that are not scalars are skipped.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match &self.value {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Str(s) => J::String(s.clone()),
            Value::Seq(items) => J::Array(items.iter().map(Node::to_json).collect()),
            Value::Map(entries) => J::Object(
                entries
                    .iter()
                    .filter_map(|(k, v)| Some((k.scalar_text()?, v.to_json())))
                    .collect(),
            ),
        }
    }

    /// Builds a tree from JSON (objects read from a live cluster or a JSON file). The nodes
    /// have no position (line 0), so findings about them point at the object instead.
    pub fn from_json(value: &serde_json::Value) -> Node {
        use serde_json::Value as J;
        Node::synthetic(match value {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            J::Number(n) => n
                .as_i64()
                .map_or_else(|| Value::Float(n.as_f64().unwrap_or_default()), Value::Int),
            J::String(s) => Value::Str(s.clone()),
            J::Array(items) => Value::Seq(items.iter().map(Node::from_json).collect()),
            J::Object(map) => Value::Map(
                map.iter()
                    .map(|(k, v)| (Node::synthetic(Value::Str(k.clone())), Node::from_json(v)))
                    .collect(),
            ),
        })
    }

    /// Whether the node came from a file (line 0 means built in code or from JSON).
    pub fn has_position(&self) -> bool {
        self.pos.line > 0
    }

    /// Moves the positions of a tree parsed from a string embedded in another file
    /// (Omni `spec.data`, talhelper string patches) so they point into that file.
    pub fn shift(&mut self, lines: usize, columns: usize) {
        self.pos.line += lines;
        self.pos.column += columns;
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| n.shift(lines, columns)),
            Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.shift(lines, columns);
                v.shift(lines, columns);
            }),
            _ => {}
        }
    }

    /// A detached node (no position), used when building trees in code.
    pub fn synthetic(value: Value) -> Node {
        Node {
            pos: Pos::default(),
            value,
        }
    }
}

/// Where YAML embedded in the string `holder` starts inside its file, as the (lines, columns)
/// to pass to [`Node::shift`]. Only block scalars (`|`, `>`) keep a line structure that maps
/// back; for anything else the caller anchors findings at `holder`. (A block scalar's position
/// is its first content line.)
pub fn embedded_offset(holder: &Node) -> Option<(usize, usize)> {
    (holder.pos.block && !holder.pos.aliased && holder.pos.line > 1)
        .then(|| (holder.pos.line - 1, holder.pos.column - 1))
}

/// Parses YAML embedded in a string node and moves its positions into the enclosing file.
/// Without `source`, or for a quoted string, every node is anchored at `holder`.
pub fn parse_embedded(holder: &Node, source: Option<&str>) -> Result<Vec<Node>, YamlError> {
    let text = holder.as_str().unwrap_or_default();
    let mut docs = parse_documents(text)?;
    anchor_embedded(&mut docs, holder, source);
    Ok(docs)
}

/// Applies the same position fix as [`parse_embedded`] to documents parsed elsewhere.
pub fn anchor_embedded(docs: &mut [Node], holder: &Node, source: Option<&str>) {
    match source.and_then(|_| embedded_offset(holder)) {
        Some((lines, columns)) => docs.iter_mut().for_each(|d| {
            d.shift(lines, columns);
            d.set_source(holder.pos.source);
        }),
        None => docs.iter_mut().for_each(|d| d.pin(holder.pos)),
    }
}

impl Node {
    /// Records which file (loader-assigned index) every node of the tree came from.
    pub fn set_source(&mut self, source: u32) {
        self.pos.source = source;
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| n.set_source(source)),
            Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.set_source(source);
                v.set_source(source);
            }),
            _ => {}
        }
    }

    fn pin(&mut self, pos: Pos) {
        self.pos = pos;
        match &mut self.value {
            Value::Seq(items) => items.iter_mut().for_each(|n| n.pin(pos)),
            Value::Map(entries) => entries.iter_mut().for_each(|(k, v)| {
                k.pin(pos);
                v.pin(pos);
            }),
            _ => {}
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based_lines_and_columns() {
        let docs = parse_documents("a:\n  b: 1\n---\nc: [x, y]\n").unwrap();
        assert_eq!(docs.len(), 2);
        let b = docs[0].path(&["a", "b"]).unwrap();
        assert_eq!((b.pos.line, b.pos.column), (2, 6));
        assert_eq!(docs[1].get("c").unwrap().string_list(), vec!["x", "y"]);
    }

    #[test]
    fn embedded_block_scalar_positions_point_into_the_file() {
        let source = "spec:\n  data: |\n    cluster:\n      proxy:\n        disabled: true\n";
        let doc = &parse_documents(source).unwrap()[0];
        let holder = doc.path(&["spec", "data"]).unwrap();
        let inner = parse_embedded(holder, Some(source)).unwrap();
        let disabled = inner[0].path(&["cluster", "proxy", "disabled"]).unwrap();
        assert_eq!((disabled.pos.line, disabled.pos.column), (5, 19));
        let quoted = parse_documents("data: \"a: 1\"\n").unwrap();
        let inner =
            parse_embedded(quoted[0].get("data").unwrap(), Some("data: \"a: 1\"\n")).unwrap();
        assert_eq!(inner[0].get("a").unwrap().pos.line, 1);
    }

    #[test]
    fn syntax_error_has_position() {
        let err = parse_documents("a: [1, 2\nb: 3\n").unwrap_err();
        assert!(err.line >= 1, "{err}");
        assert!(!err.message.is_empty());
    }

    fn tight(depth: usize, nodes: usize, alias: u64) -> Limits {
        Limits {
            max_depth: depth,
            max_nodes: nodes,
            max_alias_expansion: alias,
            ..Limits::default()
        }
    }

    #[test]
    fn deep_nesting_is_a_budget_error_not_a_stack_overflow() {
        // 15,000 levels in 30 KB overflowed the stack of the recursive converter.
        let text = format!("machine:\n  x:\n  {}x\n", "- ".repeat(15_000));
        let err = parse_documents(&text).unwrap_err();
        let hit = err.limit.expect("a budget error");
        assert_eq!(hit.budget.env, "CNISWAP_MAX_DEPTH");
        assert_eq!(err.line, 3, "{err}");
        // Raised, a deeper file loads.
        let text = format!("machine:\n  x:\n  {}x\n", "- ".repeat(300));
        assert!(parse_documents(&text).is_err());
        let docs = parse_documents_with(&text, &tight(400, 1_000_000, 1 << 20)).unwrap();
        assert_eq!(docs.len(), 1);
        let flow = format!("a: {}{}\n", "[".repeat(300), "]".repeat(300));
        assert!(parse_documents(&flow).is_err());
    }

    #[test]
    fn alias_amplification_is_bounded_in_bytes() {
        // One 64 KiB scalar referenced 80,000 times: a 768 KB file that expanded to 5 GB.
        let big = "x".repeat(64 * 1024);
        let mut text = format!("a: &big {big}\nlist:\n");
        for _ in 0..80_000 {
            text.push_str("  - *big\n");
        }
        let err = parse_documents(&text).unwrap_err();
        assert_eq!(
            err.limit.map(|h| h.budget.env),
            Some("CNISWAP_MAX_ALIAS_EXPANSION")
        );
        // Nested anchors (billion laughs) stop just as early.
        let mut laughs = String::from("l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..10 {
            let refs = vec![format!("*l{}", i - 1); 9].join(", ");
            laughs.push_str(&format!("l{i}: &l{i} [{refs}]\n"));
        }
        assert!(parse_documents(&laughs).unwrap_err().limit.is_some());
        // Ordinary aliases work and keep the anchor's position.
        let docs = parse_documents("a: &x {p: 1}\nb: *x\n").unwrap();
        let b = docs[0].get("b").unwrap();
        assert!(b.pos.aliased);
        assert_eq!(b.get("p").unwrap().pos.line, 1);
    }

    #[test]
    fn node_count_is_bounded() {
        let text = "- a\n".repeat(1000);
        let err = parse_documents_with(&text, &tight(256, 500, 1 << 20)).unwrap_err();
        assert_eq!(err.limit.map(|h| h.budget.env), Some("CNISWAP_MAX_NODES"));
        assert!(parse_documents_with(&text, &tight(256, 2000, 1 << 20)).is_ok());
    }

    #[test]
    fn duplicate_keys_are_refused_in_small_and_large_maps() {
        assert!(parse_documents("a: 1\na: 2\n").is_err());
        assert!(parse_documents("a: 1\n\"a\": 2\n").is_err());
        assert!(
            parse_documents("1: a\n\"1\": b\n").is_ok(),
            "an int and a string differ"
        );
        let mut large: String = (0..100).map(|i| format!("k{i}: {i}\n")).collect();
        assert!(parse_documents(&large).is_ok());
        large.push_str("k42: again\n");
        let err = parse_documents(&large).unwrap_err();
        assert_eq!(err.line, 101);
    }

    #[test]
    fn booleans_and_ports_tolerate_strings() {
        let docs = parse_documents("x: \"true\"\np: \"7445\"\nq: 8472\n").unwrap();
        assert_eq!(docs[0].get("x").unwrap().as_bool(), Some(true));
        assert_eq!(docs[0].get("p").unwrap().as_u16(), Some(7445));
        assert_eq!(docs[0].get("q").unwrap().as_u16(), Some(8472));
    }
}
