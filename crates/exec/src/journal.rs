//! The journal: an append-only file of records in the plan directory, one JSON object per line,
//! each line carrying a sequence number and a signature (HMAC-SHA256 with the operator's key,
//! kept outside the plan directory, chained over the previous line's signature).
//!
//! Every append is written with one `write` and made durable with `fsync` before the caller
//! goes on, so a record the executor acted on is on disk first (write-ahead). A tail that was cut
//! off (the process or machine died in the middle of a write) is detected and moved aside into
//! a new file next to the journal, with a record saying so; a damaged, unsigned or foreign line
//! anywhere else refuses the journal. Nothing is ever dropped silently. The journal is opened
//! from the plan directory's handle, never through a link, and read within the input budget.

use crate::key::JournalKey;
use crate::plandir::{Access, FileError, PlanDir};
use crate::record::{Event, Record};
use cniswap_config::limits;
use serde::{Deserialize, Serialize};
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

pub const JOURNAL_FILE: &str = "journal.jsonl";

/// The chain's start: what the first record's signature covers before the record.
const CHAIN_START: &str = "cniswap-journal-v2";

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    File(FileError),
    #[error("{path} line {line}: {reason}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path} is in use by another cniswap process on this machine")]
    Busy { path: PathBuf },
}

impl From<FileError> for JournalError {
    fn from(e: FileError) -> Self {
        JournalError::File(e)
    }
}

impl JournalError {
    pub fn help(&self) -> String {
        match self {
            JournalError::Io { .. } => {
                "check that the plan directory exists and is writable".into()
            }
            JournalError::File(e) => e.help.clone(),
            JournalError::Corrupt { path, .. } => format!(
                "the journal was changed or damaged after it was written, or signed with another key; keep a copy of {} and compare it with the cluster's mirror (`kubectl -n kube-system get configmap {} -o yaml`); cniswap will not guess which steps ran ({})",
                path.display(),
                crate::MIRROR_NAME,
                JournalKey::help_move()
            ),
            JournalError::Busy { .. } => {
                "wait for the other `cniswap apply` to finish, or stop it (Ctrl-C) first".into()
            }
        }
    }
}

/// What a line on disk looks like: the record as raw JSON, and its signature.
#[derive(Deserialize)]
struct Line<'a> {
    #[serde(default)]
    mac: Option<String>,
    #[serde(default)]
    sum: Option<String>,
    #[serde(borrow)]
    r: &'a serde_json::value::RawValue,
}

#[derive(Serialize)]
struct LineOut<'a> {
    mac: String,
    r: &'a serde_json::value::RawValue,
}

/// The bytes after the last complete line, moved aside because they were cut off.
#[derive(Debug, Clone, PartialEq)]
pub struct Quarantine {
    pub file: PathBuf,
    pub bytes: usize,
}

/// An open journal: records read so far and a handle to append more.
pub struct Journal {
    path: PathBuf,
    file: File,
    key: JournalKey,
    next_seq: u64,
    /// The last line's signature, which the next one covers.
    last_mac: String,
    pub records: Vec<Record>,
    /// Set when opening found a cut-off tail and moved it aside.
    pub quarantined: Option<Quarantine>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("path", &self.path)
            .field("records", &self.records.len())
            .finish()
    }
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Reads a journal without opening it for writing (for `apply status` and dry runs). A
/// cut-off tail is reported in the second value and left where it is. `key` is asked for
/// only when there are records to check.
pub fn read(
    dir: &PlanDir,
    key: impl FnOnce() -> Result<JournalKey, FileError>,
) -> Result<(Vec<Record>, Option<usize>), JournalError> {
    let path = dir.join(JOURNAL_FILE);
    let Some(bytes) = dir.read(JOURNAL_FILE, limits::MAX_INPUT_BYTES)? else {
        return Ok((Vec::new(), None));
    };
    if bytes.is_empty() {
        return Ok((Vec::new(), None));
    }
    let key = key()?;
    let (records, good, _) = parse(&path, &bytes, &key)?;
    let tail = (good < bytes.len()).then_some(bytes.len() - good);
    Ok((records, tail))
}

/// Parses complete lines; returns the records, the length of the well-formed prefix and the
/// last signature.
fn parse(
    path: &Path,
    bytes: &[u8],
    key: &JournalKey,
) -> Result<(Vec<Record>, usize, String), JournalError> {
    let mut records = Vec::new();
    let mut offset = 0;
    let mut line_no = 0;
    let mut previous = CHAIN_START.to_string();
    while let Some(end) = bytes[offset..].iter().position(|b| *b == b'\n') {
        line_no += 1;
        let text = &bytes[offset..offset + end];
        let corrupt = |reason: String| JournalError::Corrupt {
            path: path.to_path_buf(),
            line: line_no,
            reason,
        };
        let line: Line = serde_json::from_slice(text)
            .map_err(|e| corrupt(format!("not a journal line ({e})")))?;
        let Some(mac) = line.mac else {
            return Err(corrupt(if line.sum.is_some() {
                "an unsigned record (an older cniswap's journal, or one made by hand): finish or roll back that run with the cniswap that began it".into()
            } else {
                "a record without a signature".into()
            }));
        };
        if !key.verify(&previous, line.r.get().as_bytes(), &mac) {
            return Err(corrupt(format!(
                "signature mismatch: the record was altered, moved or made without the journal key ({})",
                key.path.display()
            )));
        }
        let record: Record = serde_json::from_str(line.r.get())
            .map_err(|e| corrupt(format!("unknown record ({e})")))?;
        let expected = records.len() as u64 + 1;
        if record.seq != expected {
            return Err(corrupt(format!(
                "sequence number {} where {expected} was expected: records are missing or repeated",
                record.seq
            )));
        }
        records.push(record);
        previous = mac;
        offset += end + 1;
    }
    Ok((records, offset, previous))
}

impl Journal {
    /// Opens (or creates) the journal in `dir`, takes an exclusive lock on it for this process,
    /// reads every record (checking each signature with `key`), and moves a cut-off tail
    /// aside (recording that it did).
    pub fn open(dir: &PlanDir, key: &JournalKey) -> Result<Journal, JournalError> {
        let path = dir.join(JOURNAL_FILE);
        let (file, _) = dir.open_append(JOURNAL_FILE)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(JournalError::Busy { path });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
        }
        let reader = file.try_clone().map_err(io(&path))?;
        let bytes = cniswap_snapshot::read_regular(&path, reader, limits::MAX_INPUT_BYTES)
            .map_err(|e| FileError::new(&path, e.message.clone(), e.help.clone()))?;
        let (records, good, last_mac) = parse(&path, &bytes, key)?;
        let mut quarantined = None;
        if good < bytes.len() {
            // A cut-off write. Its record never took effect (the executor acts only after a
            // record is durable), so it is safe to set aside; it is kept, not deleted.
            let stamp = jiff::Timestamp::now().as_second();
            let (mut aside, name) =
                dir.create_new(&format!("{JOURNAL_FILE}.tail-{stamp}"), Access::Private)?;
            let aside_path = dir.join(&name);
            aside
                .write_all(&bytes[good..])
                .and_then(|()| aside.sync_all())
                .map_err(io(&aside_path))?;
            file.set_len(good as u64).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
            quarantined = Some(Quarantine {
                file: aside_path,
                bytes: bytes.len() - good,
            });
        }
        let mut journal = Journal {
            next_seq: records.len() as u64 + 1,
            path,
            file,
            key: key.clone(),
            last_mac,
            records,
            quarantined: quarantined.clone(),
        };
        if let Some(q) = quarantined {
            journal.append(Event::Quarantined {
                file: q
                    .file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                bytes: q.bytes,
            })?;
        }
        Ok(journal)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and waits until it is on disk.
    pub fn append(&mut self, event: Event) -> Result<&Record, JournalError> {
        let record = Record {
            seq: self.next_seq,
            at: now(),
            event,
        };
        let body = serde_json::to_string(&record).map_err(|e| JournalError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        let raw = serde_json::value::RawValue::from_string(body).map_err(|e| JournalError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        let mac = self.key.sign(&self.last_mac, raw.get().as_bytes());
        let mut line = serde_json::to_string(&LineOut {
            mac: mac.clone(),
            r: &raw,
        })
        .map_err(|e| JournalError::Io {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        line.push('\n');
        let path = self.path.clone();
        self.file.write_all(line.as_bytes()).map_err(io(&path))?;
        self.file.sync_data().map_err(io(&path))?;
        self.next_seq += 1;
        self.last_mac = mac;
        self.records.push(record);
        Ok(self.records.last().expect("just pushed"))
    }
}

/// The current time, RFC 3339 in UTC with milliseconds.
pub fn now() -> String {
    let now = jiff::Timestamp::now();
    format!("{:.3}", now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;
    use std::fs::OpenOptions;

    fn stopped(reason: &str) -> Event {
        Event::Stopped {
            reason: reason.into(),
        }
    }

    fn key() -> JournalKey {
        JournalKey::from_bytes(&[7; 32], "test-key")
    }

    fn open(dir: &Path) -> Result<Journal, JournalError> {
        Journal::open(&PlanDir::open(dir).unwrap(), &key())
    }

    fn read(dir: &Path) -> Result<(Vec<Record>, Option<usize>), JournalError> {
        super::read(&PlanDir::open(dir).unwrap(), || Ok(key()))
    }

    #[test]
    fn records_survive_reopening_in_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut j = open(dir.path()).unwrap();
            j.append(stopped("a")).unwrap();
            j.append(stopped("b")).unwrap();
        }
        let j = open(dir.path()).unwrap();
        assert_eq!(j.records.len(), 2);
        assert_eq!(j.records[1].seq, 2);
        assert_eq!(j.records[1].event, stopped("b"));
        assert!(j.quarantined.is_none());
    }

    #[test]
    fn a_cut_off_tail_is_moved_aside_and_recorded() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut j = open(dir.path()).unwrap();
            j.append(stopped("a")).unwrap();
        }
        let path = dir.path().join(JOURNAL_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"mac":"0011","r":{"seq":2,"at":"#).unwrap();
        drop(f);
        let (records, tail) = read(dir.path()).unwrap();
        assert_eq!((records.len(), tail), (1, Some(32)));

        let j = open(dir.path()).unwrap();
        let q = j.quarantined.clone().unwrap();
        assert_eq!(q.bytes, 32);
        assert_eq!(
            std::fs::read(&q.file).unwrap(),
            br#"{"mac":"0011","r":{"seq":2,"at":"#
        );
        assert!(matches!(
            &j.records[1].event,
            Event::Quarantined { bytes: 32, .. }
        ));
        drop(j);
        // The journal is whole again.
        assert_eq!(read(dir.path()).unwrap().1, None);
    }

    #[test]
    fn an_altered_line_refuses_the_journal() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut j = open(dir.path()).unwrap();
            j.append(stopped("a")).unwrap();
            j.append(stopped("b")).unwrap();
        }
        let path = dir.path().join(JOURNAL_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("\"a\"", "\"x\"", 1)).unwrap();
        let err = open(dir.path()).unwrap_err();
        assert!(
            matches!(&err, JournalError::Corrupt { line: 1, reason, .. } if reason.contains("signature")),
            "{err}"
        );
        // A removed line breaks the chain of signatures.
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(&path, format!("{}\n", lines[1])).unwrap();
        let err = open(dir.path()).unwrap_err();
        assert!(
            matches!(&err, JournalError::Corrupt { line: 1, reason, .. } if reason.contains("signature")),
            "{err}"
        );
    }

    #[test]
    fn records_made_without_the_key_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut j = open(dir.path()).unwrap();
            j.append(stopped("a")).unwrap();
        }
        let path = dir.path().join(JOURNAL_FILE);
        let good = std::fs::read_to_string(&path).unwrap();
        // An approval anyone could compute: the old unkeyed checksum.
        let forged = r#"{"seq":2,"at":"2026-01-01T00:00:00.000Z","event":"approved","step":"1.1","by":"--yes"}"#;
        let sum: String = sha2::Sha256::digest(forged.as_bytes())[..8]
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        std::fs::write(
            &path,
            format!("{good}{{\"sum\":\"{sum}\",\"r\":{forged}}}\n"),
        )
        .unwrap();
        let err = open(dir.path()).unwrap_err();
        assert!(
            matches!(&err, JournalError::Corrupt { line: 2, reason, .. } if reason.contains("unsigned")),
            "{err}"
        );
        // Signed with another key.
        let other = JournalKey::from_bytes(&[8; 32], "other");
        let last = good
            .split("\"mac\":\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let mac = other.sign(last, forged.as_bytes());
        std::fs::write(
            &path,
            format!("{good}{{\"mac\":\"{mac}\",\"r\":{forged}}}\n"),
        )
        .unwrap();
        let err = open(dir.path()).unwrap_err();
        assert!(
            matches!(&err, JournalError::Corrupt { line: 2, reason, .. } if reason.contains("signature")),
            "{err}"
        );
        // The same record signed with the journal's key is accepted: the key is what counts.
        let mac = key().sign(last, forged.as_bytes());
        std::fs::write(
            &path,
            format!("{good}{{\"mac\":\"{mac}\",\"r\":{forged}}}\n"),
        )
        .unwrap();
        assert_eq!(open(dir.path()).unwrap().records.len(), 2);
    }

    #[test]
    fn a_planted_link_at_the_journal_or_its_tail_is_refused() {
        use std::os::unix::fs::symlink;
        let dir = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        symlink(&victim, dir.path().join(JOURNAL_FILE)).unwrap();
        let err = open(dir.path()).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        std::fs::remove_file(dir.path().join(JOURNAL_FILE)).unwrap();
        {
            let mut j = open(dir.path()).unwrap();
            j.append(stopped("a")).unwrap();
        }
        let path = dir.path().join(JOURNAL_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"mac\":\"cut").unwrap();
        drop(f);
        // Every name the tail could get is a link to the victim.
        let now = jiff::Timestamp::now().as_second();
        for s in now..now + 5 {
            symlink(&victim, dir.path().join(format!("{JOURNAL_FILE}.tail-{s}"))).unwrap();
        }
        let j = open(dir.path()).unwrap();
        let q = j.quarantined.clone().unwrap();
        assert!(
            !std::fs::symlink_metadata(&q.file)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
    }

    #[test]
    fn a_second_writer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = open(dir.path()).unwrap();
        assert!(matches!(open(dir.path()), Err(JournalError::Busy { .. })));
    }
}
