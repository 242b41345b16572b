//! The fast way through a JSON file of Kubernetes objects: the file is read in large chunks, cut
//! into top-level objects and, for a `List`, into its items, and each piece is decoded from a
//! slice. serde_json's reader-based decoder takes each byte through a call and tracks lines as
//! it goes; decoding slices is several times faster, and a List's items go to the sink one by
//! one instead of being held as a whole list first.
//!
//! This path only ever gives the same objects as decoding the whole stream with
//! `serde_json::Deserializer::from_reader` would. Whatever it does not handle exactly that way
//! (a read error, invalid UTF-8, the byte budget, a syntax or value error anywhere, nesting
//! deep enough to meet serde_json's recursion limit, a top-level value other than an object,
//! two `items` in one object) makes it answer [`Split::Fallback`]: the caller then reads the
//! file again the slow way, which reports the error with its exact message and position.
//! The objects given to the sink before a fallback must be thrown away.

use crate::decode::Object;
use std::io::{self, Read};

/// What became of the stream.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Split {
    /// Every object was decoded and given to the sink.
    Done,
    /// Read the stream again the slow way (see the module documentation).
    Fallback,
}

/// How much is read at once.
const CHUNK: usize = 1 << 20;

/// Nesting this deep (counted from the top of the file) goes the slow way: serde_json counts
/// its recursion limit (128) from where decoding starts, so a List item decoded on its own
/// would be allowed two levels more than inside its List.
const MAX_FAST_DEPTH: usize = 100;

/// Decodes every top-level object of `reader` (a List as its items), handing each to `sink`.
pub(crate) fn split(reader: impl Read, mut sink: impl FnMut(Object)) -> Split {
    let mut input = Input {
        reader,
        buf: Vec::new(),
        pos: 0,
        eof: false,
    };
    match input.objects(&mut sink) {
        Ok(Some(())) => Split::Done,
        Ok(None) | Err(_) => Split::Fallback,
    }
}

/// `None`: fall back.
type Step<T> = io::Result<Option<T>>;

/// Leaves the function with `Ok(None)` (fall back) when `$e` is `Ok(None)`.
macro_rules! need {
    ($e:expr) => {
        match $e? {
            Some(v) => v,
            None => return Ok(None),
        }
    };
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\n' | b'\t' | b'\r')
}

/// The unread part of the stream is `buf[pos..]`.
struct Input<R> {
    reader: R,
    buf: Vec<u8>,
    pos: usize,
    eof: bool,
}

impl<R: Read> Input<R> {
    /// Reads another chunk after `buf[pos..]` (moved to the front first); `false` at the end.
    fn more(&mut self) -> io::Result<bool> {
        if self.eof {
            return Ok(false);
        }
        if self.pos > 0 {
            self.buf.drain(..self.pos);
            self.pos = 0;
        }
        let kept = self.buf.len();
        // At least as much again as is held, so that a large value costs linear time.
        self.buf.resize(kept + CHUNK.max(kept), 0);
        let n = loop {
            match self.reader.read(&mut self.buf[kept..]) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        self.buf.truncate(kept + *n.as_ref().unwrap_or(&0));
        if n? == 0 {
            self.eof = true;
            return Ok(false);
        }
        Ok(true)
    }

    /// The next byte that is not white space (not consumed); `None` at the end of the stream.
    fn peek(&mut self) -> io::Result<Option<u8>> {
        loop {
            if let Some(skip) = self.buf[self.pos..].iter().position(|b| !is_space(*b)) {
                self.pos += skip;
                return Ok(Some(self.buf[self.pos]));
            }
            self.pos = self.buf.len();
            if !self.more()? {
                return Ok(None);
            }
        }
    }

    /// Consumes `byte` if it is the next one after white space.
    fn eat(&mut self, byte: u8) -> io::Result<bool> {
        if self.peek()? == Some(byte) {
            self.pos += 1;
            return Ok(true);
        }
        Ok(false)
    }

    /// The length of the JSON value at `pos` (after white space), reading as much as it needs;
    /// `None` when the stream ends inside it or nesting goes deeper than `MAX_FAST_DEPTH`
    /// (`depth`: how deep the value sits). Only strings and brackets are followed: the value
    /// is checked when it is decoded.
    fn value(&mut self, depth: usize) -> Step<usize> {
        if self.peek()?.is_none() {
            return Ok(None);
        }
        let mut scan = Scan {
            at: 0,
            depth: 0,
            in_string: false,
        };
        loop {
            match scan.run(&self.buf[self.pos..], MAX_FAST_DEPTH.saturating_sub(depth)) {
                Scanned::End(len) => return Ok(Some(len)),
                Scanned::TooDeep => return Ok(None),
                // A scalar at the very end of the stream ends there.
                Scanned::More if !self.more()? => {
                    return Ok(
                        (scan.depth == 0 && !scan.in_string && scan.at > 0).then_some(scan.at)
                    );
                }
                Scanned::More => {}
            }
        }
    }

    fn objects(&mut self, sink: &mut impl FnMut(Object)) -> Step<()> {
        while let Some(first) = self.peek()? {
            if first != b'{' {
                return Ok(None);
            }
            need!(self.object(sink));
        }
        Ok(Some(()))
    }

    /// One top-level object. Every member but a List's `items` array is copied into `rest`,
    /// with `items` as `[]`, and decoded at the end: the object's own fields are checked the
    /// same as before, while the items went to the sink one by one.
    fn object(&mut self, sink: &mut impl FnMut(Object)) -> Step<()> {
        self.pos += 1;
        let mut rest = vec![b'{'];
        let mut items_seen = false;
        if !self.eat(b'}')? {
            loop {
                if self.peek()? != Some(b'"') {
                    return Ok(None);
                }
                let len = need!(self.value(1));
                let key = &self.buf[self.pos..self.pos + len];
                let is_items = key == b"\"items\""
                    || (key.contains(&b'\\')
                        && serde_json::from_slice::<String>(key).is_ok_and(|k| k == "items"));
                rest.extend_from_slice(key);
                self.pos += len;
                if !self.eat(b':')? {
                    return Ok(None);
                }
                rest.push(b':');
                if is_items && self.peek()? == Some(b'[') {
                    // serde keeps the last of two `items`; this path has sent the first on.
                    if items_seen {
                        return Ok(None);
                    }
                    items_seen = true;
                    rest.extend_from_slice(b"[]");
                    need!(self.items(sink));
                } else {
                    let len = need!(self.value(1));
                    rest.extend_from_slice(&self.buf[self.pos..self.pos + len]);
                    self.pos += len;
                }
                if self.eat(b',')? {
                    rest.push(b',');
                } else if self.eat(b'}')? {
                    break;
                } else {
                    return Ok(None);
                }
            }
        }
        rest.push(b'}');
        match serde_json::from_slice::<Object>(&rest) {
            Ok(object) => sink(object),
            Err(_) => return Ok(None),
        }
        Ok(Some(()))
    }

    /// A List's `items` array, at its `[`: each item decoded on its own.
    fn items(&mut self, sink: &mut impl FnMut(Object)) -> Step<()> {
        self.pos += 1;
        if self.eat(b']')? {
            return Ok(Some(()));
        }
        loop {
            let (object, len) = need!(self.item());
            sink(object);
            self.pos += len;
            if self.eat(b',')? {
                // `[a,]`: serde_json's trailing-comma error.
                if self.peek()? == Some(b']') {
                    return Ok(None);
                }
            } else if self.eat(b']')? {
                return Ok(Some(()));
            } else {
                return Ok(None);
            }
        }
    }

    /// The List item (an object) at `pos`, decoded straight from the buffer, and its length.
    /// An item the buffer holds only part of fails as "end of input": then more is read and
    /// the item decoded again (one item in a megabyte or so).
    fn item(&mut self) -> Step<(Object, usize)> {
        if self.peek()? != Some(b'{') {
            return Ok(None);
        }
        loop {
            let bytes = &self.buf[self.pos..];
            let mut stream = serde_json::Deserializer::from_slice(bytes).into_iter::<Object>();
            match stream.next() {
                Some(Ok(object)) => {
                    let len = stream.byte_offset();
                    return Ok(within_depth(&bytes[..len], 2).then_some((object, len)));
                }
                Some(Err(e)) if e.is_eof() => {
                    if !self.more()? {
                        return Ok(None);
                    }
                }
                Some(Err(_)) | None => return Ok(None),
            }
        }
    }
}

/// Whether `value`, sitting `depth` levels deep, nests no deeper than `MAX_FAST_DEPTH` in all.
/// Most objects have fewer brackets than that, which settles it without following strings.
fn within_depth(value: &[u8], depth: usize) -> bool {
    let limit = MAX_FAST_DEPTH.saturating_sub(depth);
    if brackets(value) <= limit {
        return true;
    }
    let mut scan = Scan {
        at: 0,
        depth: 0,
        in_string: false,
    };
    matches!(scan.run(value, limit), Scanned::End(_))
}

/// How many `{` and `[` `bytes` holds (they differ only in bit 0x20), counted in blocks small
/// enough for byte-wide counters, which the compiler turns into vector code: every byte of a
/// snapshot passes through here, and a plain count took a tenth of inspect's time.
fn brackets(bytes: &[u8]) -> usize {
    bytes
        .chunks(255)
        .map(|block| {
            block
                .iter()
                .fold(0u8, |n, &b| n + u8::from(b | 0x20 == b'{')) as usize
        })
        .sum()
}

/// Where a scan stopped.
enum Scanned {
    /// The value is this many bytes long.
    End(usize),
    /// The bytes ran out inside the value.
    More,
    TooDeep,
}

/// A scan through one value that can go on when more bytes arrive.
struct Scan {
    /// Bytes looked at so far.
    at: usize,
    depth: usize,
    in_string: bool,
}

impl Scan {
    fn run(&mut self, bytes: &[u8], max_depth: usize) -> Scanned {
        while self.at < bytes.len() {
            if self.in_string {
                // To the closing quote, stepping over escapes.
                match bytes[self.at..]
                    .iter()
                    .position(|b| matches!(b, b'"' | b'\\'))
                {
                    None => {
                        self.at = bytes.len();
                        return Scanned::More;
                    }
                    Some(i) if bytes[self.at + i] == b'\\' => {
                        // The escaped byte must be here too, else wait for it.
                        if self.at + i + 1 >= bytes.len() {
                            self.at += i;
                            return Scanned::More;
                        }
                        self.at += i + 2;
                    }
                    Some(i) => {
                        self.at += i + 1;
                        self.in_string = false;
                        if self.depth == 0 {
                            return Scanned::End(self.at);
                        }
                    }
                }
                continue;
            }
            let b = bytes[self.at];
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => {
                    self.depth += 1;
                    if self.depth > max_depth {
                        return Scanned::TooDeep;
                    }
                }
                b'}' | b']' => {
                    if self.depth == 0 {
                        // A scalar ended by its container's bracket.
                        return Scanned::End(self.at);
                    }
                    self.depth -= 1;
                    if self.depth == 0 {
                        return Scanned::End(self.at + 1);
                    }
                }
                b',' | b':' if self.depth == 0 => return Scanned::End(self.at),
                b if self.depth == 0 && is_space(b) => return Scanned::End(self.at),
                _ => {}
            }
            self.at += 1;
        }
        Scanned::More
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The objects of `text` the fast way, or `None` for a fallback; read `chunk` bytes at a
    /// time so that values straddle reads.
    fn fast(text: &str, chunk: usize) -> Option<Vec<Object>> {
        struct Trickle<'a>(&'a [u8], usize);
        impl Read for Trickle<'_> {
            fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
                let n = self.0.len().min(self.1).min(buf.len());
                buf[..n].copy_from_slice(&self.0[..n]);
                self.0 = &self.0[n..];
                Ok(n)
            }
        }
        let mut objects = Vec::new();
        match split(Trickle(text.as_bytes(), chunk), |o| objects.push(o)) {
            Split::Done => Some(objects),
            Split::Fallback => None,
        }
    }

    /// The objects of `text` the slow way, Lists flattened as the snapshot store does.
    fn slow(text: &str) -> Result<Vec<Object>, serde_json::Error> {
        fn flatten(object: Object, into: &mut Vec<Object>) {
            match object {
                Object::List(items) => items.into_iter().for_each(|o| flatten(o, into)),
                other => into.push(other),
            }
        }
        let mut objects = Vec::new();
        for object in serde_json::Deserializer::from_reader(text.as_bytes()).into_iter::<Object>() {
            flatten(object?, &mut objects);
        }
        Ok(objects)
    }

    fn flat(objects: Vec<Object>) -> Vec<Object> {
        let mut out = Vec::new();
        for o in objects {
            match o {
                Object::List(items) => out.extend(flat(items)),
                other => out.push(other),
            }
        }
        out
    }

    /// Escaped quotes, backslashes and brackets inside strings (in fields decoding skips).
    const POD: &str = r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","namespace":"default","labels":{"app":"a"},"annotations":{"note":"a \"}]\" \\"}},"spec":{"nodeName":"n1","containers":[{"name":"c","image":"nginx","args":["x\\\"]"]}]},"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}"#;

    #[test]
    fn the_same_objects_as_the_slow_way_at_any_chunk_size() {
        let pod = POD;
        let list = format!(
            "\u{20}\n{{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [\n{pod},\n {pod} ,{pod}\n],\n\"metadata\":{{\"resourceVersion\":\"\"}}}}\n{pod}{{\"kind\":\"List\",\"items\":[]}} {{\"kind\":\"List\",\"items\":null}}\n{{\"it\\u0065ms\":[{pod}],\"kind\":\"List\"}}\n"
        );
        let expected = slow(&list).unwrap();
        assert_eq!(expected.len(), 5);
        for chunk in [1, 2, 3, 7, 64, 1 << 20] {
            assert_eq!(flat(fast(&list, chunk).unwrap()), expected, "chunk {chunk}");
        }
    }

    #[test]
    fn anything_the_slow_way_would_refuse_falls_back() {
        let pod = POD;
        let deep = format!(
            "{{\"kind\":\"List\",\"items\":[{{\"kind\":\"Pod\",\"metadata\":{{\"name\":\"p\"}},\"x\":{}{}}}]}}",
            "[".repeat(126),
            "]".repeat(126)
        );
        for bad in [
            format!("{{\"kind\":\"List\",\"items\":[{pod},]}}"),
            format!("{{\"kind\":\"List\",\"items\":[{pod}"),
            format!("{{\"kind\":\"List\",\"items\":[{pod}]"),
            format!("{{\"kind\":\"List\",\"items\":[{pod} {pod}]}}"),
            format!("{{\"kind\":\"List\",\"items\":[{pod}],\"kind\":5}}"),
            format!("{{\"kind\":\"List\",\"items\":[{pod}],\"items\":[]}}"),
            "{\"kind\":\"List\",\"items\":[1]}".to_string(),
            "{\"kind\":\"List\",\"items\":[{\"kind\":\"Pod\",\"metadata\":{\"name\":\"UPPER\"}}]}"
                .to_string(),
            "[{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"a\"}}]".to_string(),
            "{\"kind\":\"Namespace\",\"metadata\":{\"name\":\"a\"}} x".to_string(),
            "{\"kind\":\"Namespace\"  \"metadata\":{}}".to_string(),
            deep,
        ] {
            assert_eq!(fast(&bad, 5), None, "{bad}");
        }
        // Deep nesting the slow way still reads is read the slow way, not refused.
        let fine = format!(
            "{{\"kind\":\"List\",\"items\":[{{\"kind\":\"Pod\",\"metadata\":{{\"name\":\"p\"}},\"x\":{}{}}}]}}",
            "[".repeat(110),
            "]".repeat(110)
        );
        assert!(slow(&fine).is_ok());
        assert_eq!(fast(&fine, 64), None);
    }

    #[test]
    fn escaped_quotes_and_brackets_inside_strings_do_not_end_a_value() {
        let text = format!("{{\"kind\":\"List\",\"items\":[{POD}]}}");
        let expected = slow(&text).unwrap();
        for chunk in [1, 2, 5, 1 << 20] {
            assert_eq!(flat(fast(&text, chunk).unwrap()), expected, "chunk {chunk}");
        }
    }

    #[test]
    fn brackets_are_counted_outside_and_inside_strings() {
        let text = "{[\"{[}]\" {{{ ;[".repeat(300);
        assert_eq!(brackets(text.as_bytes()), 8 * 300);
        assert_eq!(brackets(b"{}[]KkYy;"), 2);
    }

    #[test]
    fn a_read_error_falls_back() {
        struct Broken;
        impl Read for Broken {
            fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
                Err(io::Error::other("gone"))
            }
        }
        assert_eq!(split(Broken, |_| {}), Split::Fallback);
    }
}
