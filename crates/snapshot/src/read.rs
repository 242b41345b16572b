//! Opening input files safely: only regular files (a FIFO named `*.yaml` would block forever),
//! within the byte budgets, with encoding problems reported at their line.

use crate::error::InputError;
use cniswap_config::limits::{self, LimitHit, Limits};
use std::fs::{File, FileType};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// An opened input, or why it is not read.
pub(crate) enum Opened {
    File {
        file: File,
        size: u64,
    },
    /// Not a regular file: what it is.
    NotRegular(&'static str),
}

/// What a non-regular file is, for the skip reason.
pub(crate) fn describe(file_type: FileType) -> &'static str {
    if file_type.is_fifo() {
        "a FIFO (named pipe)"
    } else if file_type.is_socket() {
        "a socket"
    } else if file_type.is_char_device() {
        "a character device"
    } else if file_type.is_block_device() {
        "a block device"
    } else if file_type.is_dir() {
        "a directory"
    } else if file_type.is_symlink() {
        "a symbolic link"
    } else {
        "not a regular file"
    }
}

/// Opens `path` for reading without blocking (a FIFO opens at once instead of waiting for a
/// writer), and checks on the opened file, not the name, that it is a regular file.
pub(crate) fn open_regular(path: &Path) -> io::Result<Opened> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Ok(Opened::NotRegular(describe(meta.file_type())));
    }
    Ok(Opened::File {
        file,
        size: meta.len(),
    })
}

/// Why the first bytes of a file cannot be read as UTF-8 text, with what to do and the line.
pub(crate) struct EncodingProblem {
    pub message: String,
    pub help: &'static str,
    pub line: Option<usize>,
}

pub(crate) fn encoding_problem(head: &[u8]) -> Option<EncodingProblem> {
    // ASCII-heavy UTF-16 without a byte order mark: every other byte is zero.
    let sample = &head[..head.len().min(64) & !1];
    let pairs = sample.len() / 2;
    let zero_high = sample.chunks(2).filter(|c| c[1] == 0 && c[0] != 0).count();
    let zero_low = sample.chunks(2).filter(|c| c[0] == 0 && c[1] != 0).count();
    let utf16 = head.starts_with(&[0xFF, 0xFE])
        || head.starts_with(&[0xFE, 0xFF])
        || (pairs >= 2 && (zero_high * 2 > pairs || zero_low * 2 > pairs));
    if utf16 {
        return Some(EncodingProblem {
            message: "UTF-16 (or UTF-32) encoded text; cniswap reads UTF-8".to_string(),
            help: "convert it, e.g. `iconv -f UTF-16 -t UTF-8 FILE > FILE.new` (PowerShell: `Out-File -Encoding utf8`)",
            line: None,
        });
    }
    if head.contains(&0) {
        return Some(EncodingProblem {
            message: "binary content where YAML or JSON was expected".to_string(),
            help: "remove the file, or replace it with `kubectl get -o yaml` output",
            line: None,
        });
    }
    match std::str::from_utf8(head) {
        Err(e) if e.error_len().is_some() => Some(EncodingProblem {
            message: "invalid UTF-8".to_string(),
            help: "save the file as UTF-8",
            line: Some(line_of(head, e.valid_up_to())),
        }),
        _ => None,
    }
}

impl EncodingProblem {
    pub(crate) fn into_error(self, path: &Path) -> InputError {
        let error = InputError::new(path, self.message, self.help);
        match self.line {
            Some(line) => error.at(line, 1),
            None => error,
        }
    }
}

/// 1-based line of byte offset `at`.
pub(crate) fn line_of(bytes: &[u8], at: usize) -> usize {
    bytes[..at.min(bytes.len())]
        .iter()
        .filter(|b| **b == b'\n')
        .count()
        + 1
}

/// The UTF-8 byte order mark, which JSON parsers refuse as "expected value at 1:1".
pub(crate) const BOM: &[u8] = &[0xEF, 0xBB, 0xBF];

/// A budget breach travelling through `io::Error`.
#[derive(Debug)]
pub(crate) struct OverBudget(pub LimitHit);

impl std::fmt::Display for OverBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for OverBudget {}

/// A budget breach or invalid UTF-8 found while a reader was consumed (the parsers wrap the
/// reader's error, so the whole chain is searched).
pub(crate) fn input_error_from_io(path: &Path, e: &io::Error) -> Option<InputError> {
    let mut cause: Option<&(dyn std::error::Error + 'static)> = e.get_ref().map(|r| r as _);
    while let Some(error) = cause {
        if let Some(OverBudget(hit)) = error.downcast_ref::<OverBudget>() {
            return Some(InputError::new(path, hit.to_string(), hit.help()));
        }
        if let Some(bad) = error.downcast_ref::<BadUtf8>() {
            return Some(bad_utf8(path, bad.line));
        }
        if let Some(io) = error.downcast_ref::<io::Error>()
            && let Some(found) = io.get_ref().and_then(|inner| {
                let inner: &(dyn std::error::Error + 'static) = inner;
                inner
                    .downcast_ref::<BadUtf8>()
                    .map(|b| bad_utf8(path, b.line))
                    .or_else(|| {
                        inner
                            .downcast_ref::<OverBudget>()
                            .map(|o| InputError::new(path, o.0.to_string(), o.0.help()))
                    })
            })
        {
            return Some(found);
        }
        cause = error.source();
    }
    // Rewrapped as text: recover the line from the message.
    let text = e.to_string();
    let line = text
        .split("invalid UTF-8 at line ")
        .nth(1)?
        .split(|c: char| !c.is_ascii_digit())
        .next()?
        .parse()
        .ok()?;
    Some(bad_utf8(path, line))
}

fn bad_utf8(path: &Path, line: usize) -> InputError {
    InputError::new(path, "invalid UTF-8", "save the file as UTF-8").at(line, 1)
}

#[derive(Debug)]
pub(crate) struct BadUtf8 {
    pub line: usize,
}

impl std::fmt::Display for BadUtf8 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invalid UTF-8 at line {}", self.line)
    }
}

impl std::error::Error for BadUtf8 {}

/// Passes bytes through while checking that they are UTF-8 (reporting the line of the first
/// bad byte) and that no more than `budget` bytes are read. Wrap it in a `BufReader`: parsers
/// that read byte by byte (serde_json's `from_reader`) would otherwise call it once per byte.
pub(crate) struct Checked<R> {
    inner: R,
    /// Bytes of an unfinished character carried over from the previous read.
    carry: Vec<u8>,
    line: usize,
    /// Whether `line` is kept (see [`Checked::without_lines`]).
    count_lines: bool,
    read: u64,
    budget: u64,
}

impl<R: Read> Checked<R> {
    pub(crate) fn new(inner: R, budget: u64) -> Self {
        Checked {
            inner,
            carry: Vec::new(),
            line: 1,
            count_lines: true,
            read: 0,
            budget,
        }
    }

    /// The same checks without counting lines, so an error names no line: for a reader whose
    /// every error only means "read the file again with [`Checked::new`]" (the fast JSON path).
    pub(crate) fn without_lines(inner: R, budget: u64) -> Self {
        Checked {
            count_lines: false,
            ..Checked::new(inner, budget)
        }
    }
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read += n as u64;
        if self.read > self.budget {
            return Err(io::Error::other(OverBudget(LimitHit::new(
                limits::MAX_INPUT_BYTES,
                self.budget,
            ))));
        }
        // Check the carried bytes and the new ones together; without a carry (nearly always)
        // the new bytes are checked where they are, so a read costs no allocation.
        let joined;
        let check: &[u8] = if self.carry.is_empty() {
            &buf[..n]
        } else {
            let mut carry = std::mem::take(&mut self.carry);
            carry.extend_from_slice(&buf[..n]);
            joined = carry;
            &joined
        };
        let complete = match std::str::from_utf8(check) {
            Ok(_) => check.len(),
            Err(e) if e.error_len().is_none() && n > 0 => {
                self.carry = check[e.valid_up_to()..].to_vec();
                e.valid_up_to()
            }
            Err(e) => {
                let line = self.line + line_of(check, e.valid_up_to()) - 1;
                return Err(io::Error::new(io::ErrorKind::InvalidData, BadUtf8 { line }));
            }
        };
        if self.count_lines {
            self.line += check[..complete].iter().filter(|b| **b == b'\n').count();
        }
        Ok(n)
    }
}

/// Reads a configuration file whole (`--values`, `.cniswap.yaml`): a regular file, within
/// the file budget, UTF-8 (a byte order mark is dropped).
pub fn read_config_file(path: &Path) -> Result<String, InputError> {
    let opened = open_regular(path).map_err(|e| cannot_open(path, &e))?;
    let bytes = read_opened(path, opened, limits::MAX_FILE_BYTES)?;
    text_of(path, bytes)
}

fn cannot_open(path: &Path, e: &io::Error) -> InputError {
    InputError::new(
        path,
        format!("cannot open: {e}"),
        "check the path and permissions",
    )
}

/// The value of `budget` in force (only the byte budgets are file budgets).
fn bytes_allowed(budget: limits::Budget) -> u64 {
    let limits = Limits::current();
    if budget == limits::MAX_INPUT_BYTES {
        limits.max_input_bytes
    } else {
        limits.max_file_bytes
    }
}

/// Checks, without reading it, that `path` is a regular file within `budget` bytes (the
/// snapshot reader's rules, for files another library reads itself, like a kubeconfig).
pub fn check_regular_file(path: &Path, budget: limits::Budget) -> Result<(), InputError> {
    match open_regular(path).map_err(|e| cannot_open(path, &e))? {
        Opened::NotRegular(what) => Err(not_regular(path, what)),
        Opened::File { size, .. } => within(path, size, budget),
    }
}

fn not_regular(path: &Path, what: &str) -> InputError {
    InputError::new(
        path,
        format!("{what}: only regular files are read"),
        "pass a regular file",
    )
}

fn within(path: &Path, size: u64, budget: limits::Budget) -> Result<(), InputError> {
    let allowed = bytes_allowed(budget);
    if size > allowed {
        let hit = LimitHit::new(budget, allowed);
        return Err(InputError::new(path, hit.to_string(), hit.help()));
    }
    Ok(())
}

/// Reads an already opened file whole by the snapshot reader's rules: a regular file (checked
/// on the open file, so a FIFO or a device never blocks), at most `budget` bytes (checked
/// before reading and while reading, so a sparse or growing file is refused fast). `path`
/// names the file in errors.
pub fn read_regular(
    path: &Path,
    file: File,
    budget: limits::Budget,
) -> Result<Vec<u8>, InputError> {
    let meta = file
        .metadata()
        .map_err(|e| InputError::new(path, format!("cannot read: {e}"), "check the file"))?;
    let opened = if meta.file_type().is_file() {
        Opened::File {
            file,
            size: meta.len(),
        }
    } else {
        Opened::NotRegular(describe(meta.file_type()))
    };
    read_opened(path, opened, budget)
}

fn read_opened(path: &Path, opened: Opened, budget: limits::Budget) -> Result<Vec<u8>, InputError> {
    let (file, size) = match opened {
        Opened::File { file, size } => (file, size),
        Opened::NotRegular(what) => return Err(not_regular(path, what)),
    };
    within(path, size, budget)?;
    let allowed = bytes_allowed(budget);
    let mut bytes = Vec::with_capacity(usize::try_from(size).unwrap_or(0));
    file.take(allowed + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| InputError::new(path, format!("cannot read: {e}"), "check the file"))?;
    within(path, bytes.len() as u64, budget)?;
    Ok(bytes)
}

/// Bytes to text: a byte order mark is dropped; UTF-16 and invalid UTF-8 are errors with the
/// line and what to do.
pub(crate) fn text_of(path: &Path, mut bytes: Vec<u8>) -> Result<String, InputError> {
    if bytes.starts_with(BOM) {
        bytes.drain(..BOM.len());
    }
    if let Some(problem) = encoding_problem(&bytes[..bytes.len().min(4096)]) {
        return Err(problem.into_error(path));
    }
    String::from_utf8(bytes).map_err(|e| {
        let line = line_of(e.as_bytes(), e.utf8_error().valid_up_to());
        InputError::new(path, "invalid UTF-8", "save the file as UTF-8").at(line, 1)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_and_bad_utf8_are_named() {
        let utf16: Vec<u8> = "{\"a\": 1}"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert!(encoding_problem(&utf16).unwrap().message.contains("UTF-16"));
        let mut with_bom = vec![0xFF, 0xFE];
        with_bom.extend(&utf16);
        assert!(
            encoding_problem(&with_bom)
                .unwrap()
                .message
                .contains("UTF-16")
        );
        assert_eq!(encoding_problem(b"a: 1\nb: \xff\n").unwrap().line, Some(2));
        assert!(encoding_problem(b"a: 1\n").is_none());
    }

    #[test]
    fn checked_reader_reports_the_line_of_a_bad_byte_across_reads() {
        let mut text = "x: 1\n".repeat(5000).into_bytes();
        text.extend(b"y: \xc3\x28\n");
        let mut reader = Checked::new(std::io::BufReader::with_capacity(7, &text[..]), u64::MAX);
        let err = std::io::copy(&mut reader, &mut std::io::sink()).unwrap_err();
        let bad = err.get_ref().unwrap().downcast_ref::<BadUtf8>().unwrap();
        assert_eq!(bad.line, 5001);
        // A character split across reads is fine.
        let ok = "é: ü\n".repeat(100);
        let mut reader = Checked::new(
            std::io::BufReader::with_capacity(3, ok.as_bytes()),
            u64::MAX,
        );
        assert!(std::io::copy(&mut reader, &mut std::io::sink()).is_ok());
        let mut reader = Checked::new(ok.as_bytes(), 10);
        let err = std::io::copy(&mut reader, &mut std::io::sink()).unwrap_err();
        assert!(
            err.get_ref()
                .unwrap()
                .downcast_ref::<OverBudget>()
                .is_some()
        );
    }
}
