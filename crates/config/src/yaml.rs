//! A small YAML tree with positions, built on saphyr's marked loader.
//!
//! Readers work on this tree rather than on saphyr types so that positions (for error messages
//! and, later, lint findings) survive and the parser can change without touching every reader.

use saphyr::{LoadableYamlNode, MarkedYamlOwned, ScalarOwned, YamlDataOwned};
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

/// A YAML syntax error with its position.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{column}: {message}")]
pub struct YamlError {
    pub line: usize,
    pub column: usize,
    pub message: String,
}

/// Parses every document of a YAML stream. Empty documents are dropped.
pub fn parse_documents(text: &str) -> Result<Vec<Node>, YamlError> {
    let docs = MarkedYamlOwned::load_from_str(text).map_err(|e| YamlError {
        line: e.marker().line(),
        column: e.marker().col() + 1,
        message: e.info().to_string(),
    })?;
    Ok(docs
        .into_iter()
        .map(convert)
        .filter(|n| !matches!(n.value, Value::Null))
        .collect())
}

fn convert(node: MarkedYamlOwned) -> Node {
    let pos = Pos {
        line: node.span.start.line(),
        column: node.span.start.col() + 1,
        char_start: node.span.start.index(),
        char_end: node.span.end.index(),
        source: 0,
    };
    let value = match node.data {
        YamlDataOwned::Value(s) => scalar(s),
        YamlDataOwned::Representation(s, _, _) => Value::Str(s),
        YamlDataOwned::Sequence(items) => Value::Seq(items.into_iter().map(convert).collect()),
        YamlDataOwned::Mapping(map) => Value::Map(
            map.into_iter()
                .map(|(k, v)| (convert(k), convert(v)))
                .collect(),
        ),
        YamlDataOwned::Tagged(_, inner) => return convert(*inner),
        YamlDataOwned::Alias(_) | YamlDataOwned::BadValue => Value::Null,
    };
    Node { pos, value }
}

fn scalar(s: ScalarOwned) -> Value {
    match s {
        ScalarOwned::Null => Value::Null,
        ScalarOwned::Boolean(b) => Value::Bool(b),
        ScalarOwned::Integer(i) => Value::Int(i),
        ScalarOwned::FloatingPoint(f) => Value::Float(f.into_inner()),
        ScalarOwned::String(s) => Value::Str(s),
    }
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

/// Where YAML embedded in the string `holder` starts inside `source` (the file text), as the
/// (lines, columns) to pass to [`Node::shift`]. Only block scalars (`|`, `>`) keep a line
/// structure that maps back; for anything else the caller anchors findings at `holder`.
pub fn embedded_offset(source: &str, holder: &Node) -> Option<(usize, usize)> {
    // saphyr marks a block scalar at its first content line; the line before holds the
    // `|`/`>` indicator (with optional chomping and indentation indicators).
    let indicator_line = source.lines().nth(holder.pos.line.checked_sub(2)?)?;
    let indicator = indicator_line
        .trim_end()
        .trim_end_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '+');
    if !indicator.ends_with(['|', '>']) {
        return None;
    }
    Some((holder.pos.line - 1, holder.pos.column - 1))
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
    match source.and_then(|s| embedded_offset(s, holder)) {
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

    #[test]
    fn booleans_and_ports_tolerate_strings() {
        let docs = parse_documents("x: \"true\"\np: \"7445\"\nq: 8472\n").unwrap();
        assert_eq!(docs[0].get("x").unwrap().as_bool(), Some(true));
        assert_eq!(docs[0].get("p").unwrap().as_u16(), Some(7445));
        assert_eq!(docs[0].get("q").unwrap().as_u16(), Some(8472));
    }
}
