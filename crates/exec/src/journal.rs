//! The journal: an append-only file of records in the plan directory, one JSON object per line,
//! each line carrying a checksum of its record and a sequence number.
//!
//! Every append is written with one `write` and made durable with `fsync` before the caller
//! goes on, so a record the executor acted on is on disk first (write-ahead). A tail that was cut
//! off (the process or machine died in the middle of a write) is detected and moved aside into
//! a file next to the journal, with a record saying so; a damaged line anywhere else refuses the
//! journal. Nothing is ever dropped silently.

use crate::record::{Event, Record};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

pub const JOURNAL_FILE: &str = "journal.jsonl";

#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} line {line}: {reason}")]
    Corrupt {
        path: PathBuf,
        line: usize,
        reason: String,
    },
    #[error("{path} is in use by another cniswap process on this machine")]
    Busy { path: PathBuf },
}

impl JournalError {
    pub fn help(&self) -> String {
        match self {
            JournalError::Io { .. } => {
                "check that the plan directory exists and is writable".into()
            }
            JournalError::Corrupt { path, .. } => format!(
                "the journal was changed or damaged after it was written; keep a copy of {} and compare it with the cluster's mirror (`kubectl -n kube-system get configmap {} -o yaml`); cniswap will not guess which steps ran",
                path.display(),
                crate::MIRROR_NAME
            ),
            JournalError::Busy { .. } => {
                "wait for the other `cniswap apply` to finish, or stop it (Ctrl-C) first".into()
            }
        }
    }
}

/// What a line on disk looks like: the record as raw JSON, and a checksum of exactly those bytes.
#[derive(Deserialize)]
struct Line<'a> {
    sum: String,
    #[serde(borrow)]
    r: &'a serde_json::value::RawValue,
}

#[derive(Serialize)]
struct LineOut<'a> {
    sum: String,
    r: &'a serde_json::value::RawValue,
}

fn checksum(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    digest[..8].iter().map(|b| format!("{b:02x}")).collect()
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
    next_seq: u64,
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

/// Reads a journal without opening it for writing (for `apply status`). A cut-off tail is
/// reported in the second value and left where it is.
pub fn read(dir: &Path) -> Result<(Vec<Record>, Option<usize>), JournalError> {
    let path = dir.join(JOURNAL_FILE);
    let mut bytes = Vec::new();
    match File::open(&path) {
        Ok(mut f) => {
            f.read_to_end(&mut bytes).map_err(io(&path))?;
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), None)),
        Err(e) => return Err(io(&path)(e)),
    }
    let (records, good) = parse(&path, &bytes)?;
    let tail = (good < bytes.len()).then_some(bytes.len() - good);
    Ok((records, tail))
}

/// Parses complete lines; returns the records and the length of the well-formed prefix.
fn parse(path: &Path, bytes: &[u8]) -> Result<(Vec<Record>, usize), JournalError> {
    let mut records = Vec::new();
    let mut offset = 0;
    let mut line_no = 0;
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
        if checksum(line.r.get().as_bytes()) != line.sum {
            return Err(corrupt(
                "checksum mismatch: the record was altered after it was written".into(),
            ));
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
        offset += end + 1;
    }
    Ok((records, offset))
}

impl Journal {
    /// Opens (or creates) the journal in `dir`, takes an exclusive lock on it for this process,
    /// reads every record, and moves a cut-off tail aside (recording that it did).
    pub fn open(dir: &Path) -> Result<Journal, JournalError> {
        let path = dir.join(JOURNAL_FILE);
        let created = !path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io(&path))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(JournalError::Busy { path });
            }
            Err(std::fs::TryLockError::Error(e)) => return Err(io(&path)(e)),
        }
        if created {
            sync_dir(dir).map_err(io(dir))?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io(&path))?;
        let (records, good) = parse(&path, &bytes)?;
        let mut quarantined = None;
        if good < bytes.len() {
            // A cut-off write. Its record never took effect (the executor acts only after a
            // record is durable), so it is safe to set aside; it is kept, not deleted.
            let stamp = jiff::Timestamp::now().as_second();
            let aside = dir.join(format!("{JOURNAL_FILE}.tail-{stamp}"));
            std::fs::write(&aside, &bytes[good..]).map_err(io(&aside))?;
            File::open(&aside)
                .and_then(|f| f.sync_all())
                .map_err(io(&aside))?;
            file.set_len(good as u64).map_err(io(&path))?;
            file.sync_all().map_err(io(&path))?;
            quarantined = Some(Quarantine {
                file: aside,
                bytes: bytes.len() - good,
            });
        }
        let mut journal = Journal {
            next_seq: records.len() as u64 + 1,
            path,
            file,
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
        let mut line = serde_json::to_string(&LineOut {
            sum: checksum(raw.get().as_bytes()),
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
        self.records.push(record);
        Ok(self.records.last().expect("just pushed"))
    }
}

/// The current time, RFC 3339 in UTC with milliseconds.
pub fn now() -> String {
    let now = jiff::Timestamp::now();
    format!("{:.3}", now)
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Writes `bytes` to `path` atomically: a temporary file in the same directory, fsync'd, then
/// renamed over the target, then the directory fsync'd. Readers see the old file or the new one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    sync_dir(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stopped(reason: &str) -> Event {
        Event::Stopped {
            reason: reason.into(),
        }
    }

    #[test]
    fn records_survive_reopening_in_order() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut j = Journal::open(dir.path()).unwrap();
            j.append(stopped("a")).unwrap();
            j.append(stopped("b")).unwrap();
        }
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.records.len(), 2);
        assert_eq!(j.records[1].seq, 2);
        assert_eq!(j.records[1].event, stopped("b"));
        assert!(j.quarantined.is_none());
    }

    #[test]
    fn a_cut_off_tail_is_moved_aside_and_recorded() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut j = Journal::open(dir.path()).unwrap();
            j.append(stopped("a")).unwrap();
        }
        let path = dir.path().join(JOURNAL_FILE);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(br#"{"sum":"0011","r":{"seq":2,"at":"#).unwrap();
        drop(f);
        let (records, tail) = read(dir.path()).unwrap();
        assert_eq!((records.len(), tail), (1, Some(32)));

        let j = Journal::open(dir.path()).unwrap();
        let q = j.quarantined.clone().unwrap();
        assert_eq!(q.bytes, 32);
        assert_eq!(
            std::fs::read(&q.file).unwrap(),
            br#"{"sum":"0011","r":{"seq":2,"at":"#
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
            let mut j = Journal::open(dir.path()).unwrap();
            j.append(stopped("a")).unwrap();
            j.append(stopped("b")).unwrap();
        }
        let path = dir.path().join(JOURNAL_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replacen("\"a\"", "\"x\"", 1)).unwrap();
        let err = Journal::open(dir.path()).unwrap_err();
        assert!(
            matches!(&err, JournalError::Corrupt { line: 1, reason, .. } if reason.contains("checksum")),
            "{err}"
        );
        // A removed line is a sequence gap.
        let lines: Vec<&str> = text.lines().collect();
        std::fs::write(&path, format!("{}\n", lines[1])).unwrap();
        let err = Journal::open(dir.path()).unwrap_err();
        assert!(
            matches!(&err, JournalError::Corrupt { line: 1, reason, .. } if reason.contains("sequence")),
            "{err}"
        );
    }

    #[test]
    fn a_second_writer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let _first = Journal::open(dir.path()).unwrap();
        assert!(matches!(
            Journal::open(dir.path()),
            Err(JournalError::Busy { .. })
        ));
    }

    #[test]
    fn atomic_writes_replace_whole_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b/x.yaml");
        write_atomic(&path, b"one").unwrap();
        write_atomic(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        let names: Vec<_> = std::fs::read_dir(dir.path().join("b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "no temporary file left: {names:?}");
    }
}
