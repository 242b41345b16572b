//! The journal's key: a secret of the person who runs apply, kept outside the plan directory
//! (owner-only), with which every journal record is signed (HMAC-SHA256, chained). Someone who
//! can write the plan directory but cannot read this key cannot make an approval or a "done"
//! record, change a plan and re-sign its journal, or reorder, splice or drop records in the
//! middle of it.

use crate::plandir::FileError;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::{Path, PathBuf};

/// Where the key is: this variable, else `$XDG_STATE_HOME/cniswap/journal.key`, else
/// `~/.local/state/cniswap/journal.key`.
pub const KEY_ENV: &str = "CNISWAP_JOURNAL_KEY";

#[derive(Clone)]
pub struct JournalKey {
    bytes: Vec<u8>,
    pub path: PathBuf,
}

impl std::fmt::Debug for JournalKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JournalKey")
            .field("path", &self.path)
            .finish()
    }
}

const HELP_MOVE: &str = "to resume on another machine, copy the key file there too (owner-only) and point CNISWAP_JOURNAL_KEY at it";

impl JournalKey {
    /// The key's file, by [`KEY_ENV`] and the XDG rules.
    pub fn location() -> Result<PathBuf, FileError> {
        if let Some(p) = std::env::var_os(KEY_ENV).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
        if let Some(state) = std::env::var_os("XDG_STATE_HOME").filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(state).join("cniswap/journal.key"));
        }
        match std::env::var_os("HOME").filter(|p| !p.is_empty()) {
            Some(home) => Ok(PathBuf::from(home).join(".local/state/cniswap/journal.key")),
            None => Err(FileError::new(
                KEY_ENV,
                "no place for the journal key: neither CNISWAP_JOURNAL_KEY, XDG_STATE_HOME nor HOME is set",
                "set CNISWAP_JOURNAL_KEY to a file outside the plan directory",
            )),
        }
    }

    /// A key from bytes (tests, and callers that keep keys elsewhere).
    pub fn from_bytes(bytes: &[u8], path: impl Into<PathBuf>) -> JournalKey {
        JournalKey {
            bytes: bytes.to_vec(),
            path: path.into(),
        }
    }

    /// Reads the key at `path`; `None` when there is none yet. A key others may read, or
    /// that is not the caller's, is refused: whoever reads it can sign journal records.
    pub fn load(path: &Path) -> Result<Option<JournalKey>, FileError> {
        use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
        let file = match std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc_flags())
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => {
                return Err(FileError::new(
                    path,
                    format!("cannot open the journal key: {e}"),
                    "the key must be a regular file, not a link",
                ));
            }
        };
        let meta = file
            .metadata()
            .map_err(|e| FileError::new(path, e.to_string(), "check the key file"))?;
        if meta.mode() & 0o077 != 0 {
            return Err(FileError::new(
                path,
                format!(
                    "the journal key may be read by others (mode {:o}): whoever reads it can sign journal records",
                    meta.mode() & 0o777
                ),
                format!("`chmod 600 {}`", path.display()),
            ));
        }
        if meta.uid() != rustix::process::geteuid().as_raw() {
            return Err(FileError::new(
                path,
                format!("the journal key belongs to uid {}, not to you", meta.uid()),
                "use a key of your own (CNISWAP_JOURNAL_KEY)",
            ));
        }
        let bytes =
            cniswap_snapshot::read_regular(path, file, cniswap_config::limits::MAX_FILE_BYTES)
                .map_err(|e| FileError::new(path, e.message.clone(), e.help.clone()))?;
        let text = String::from_utf8_lossy(&bytes);
        let key = decode_hex(text.trim()).filter(|k| k.len() >= 32).ok_or_else(|| {
            FileError::new(
                path,
                "not a cniswap journal key (64 hexadecimal digits)",
                "move it away: cniswap makes a new key, and journals signed with the old one are refused",
            )
        })?;
        Ok(Some(JournalKey {
            bytes: key,
            path: path.to_path_buf(),
        }))
    }

    /// Reads the key, or makes one (32 random bytes, owner-only, in an owner-only directory).
    pub fn load_or_create(path: &Path) -> Result<JournalKey, FileError> {
        if let Some(key) = JournalKey::load(path)? {
            return Ok(key);
        }
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        {
            use std::os::unix::fs::DirBuilderExt;
            std::fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(dir)
                .map_err(|e| {
                    FileError::new(
                        dir,
                        format!("cannot create: {e}"),
                        "set CNISWAP_JOURNAL_KEY to a writable place",
                    )
                })?;
        }
        let mut bytes = [0u8; 32];
        rustix::rand::getrandom(&mut bytes, rustix::rand::GetRandomFlags::empty())
            .map_err(|e| FileError::new(path, format!("no randomness: {e}"), "try again"))?;
        let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        // Written whole to a new file, then linked into place: a cniswap starting at the same
        // moment either makes the key or reads a complete one.
        let tmp = dir.join(format!(
            ".journal.key.tmp-{}-{}",
            std::process::id(),
            text.get(..8).unwrap_or_default()
        ));
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc_flags())
                .open(&tmp)
                .map_err(|e| {
                    FileError::new(
                        path,
                        format!("cannot create the journal key: {e}"),
                        "set CNISWAP_JOURNAL_KEY to a writable place",
                    )
                })?;
            f.write_all(format!("{text}\n").as_bytes())
                .and_then(|()| f.sync_all())
                .map_err(|e| FileError::new(path, e.to_string(), "check the disk"))?;
        }
        let linked = std::fs::hard_link(&tmp, path);
        let _ = std::fs::remove_file(&tmp);
        match linked {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                return JournalKey::load(path)?.ok_or_else(|| {
                    FileError::new(
                        path,
                        "the journal key vanished while it was made",
                        "try again",
                    )
                });
            }
            Err(e) => {
                return Err(FileError::new(
                    path,
                    format!("cannot create the journal key: {e}"),
                    "set CNISWAP_JOURNAL_KEY to a writable place",
                ));
            }
        }
        Ok(JournalKey {
            bytes: bytes.to_vec(),
            path: path.to_path_buf(),
        })
    }

    /// The key must not be where the plan's writers can reach it.
    pub fn check_outside(&self, plan_dir: &Path) -> Result<(), FileError> {
        let key_dir = self.path.parent().and_then(|p| {
            std::fs::canonicalize(if p.as_os_str().is_empty() {
                Path::new(".")
            } else {
                p
            })
            .ok()
        });
        let plan = std::fs::canonicalize(plan_dir).ok();
        if let (Some(k), Some(p)) = (key_dir, plan)
            && k.starts_with(&p)
        {
            return Err(FileError::new(
                &self.path,
                "the journal key is inside the plan directory, where whoever can write the plan could read it",
                "keep it outside (the default is ~/.local/state/cniswap/journal.key)",
            ));
        }
        Ok(())
    }

    /// The signature of a record: over the previous record's signature and its bytes.
    pub fn sign(&self, previous: &str, record: &[u8]) -> String {
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes)
            .unwrap_or_else(|_| unreachable_key());
        mac.update(previous.as_bytes());
        mac.update(b"\n");
        mac.update(record);
        mac.finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Whether `signature` is this key's for the record (compared in constant time).
    pub fn verify(&self, previous: &str, record: &[u8], signature: &str) -> bool {
        let Some(given) = decode_hex(signature) else {
            return false;
        };
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.bytes)
            .unwrap_or_else(|_| unreachable_key());
        mac.update(previous.as_bytes());
        mac.update(b"\n");
        mac.update(record);
        mac.verify_slice(&given).is_ok()
    }

    pub fn help_move() -> &'static str {
        HELP_MOVE
    }
}

/// HMAC takes keys of any length; this is never reached.
fn unreachable_key() -> Hmac<Sha256> {
    <Hmac<Sha256> as Mac>::new_from_slice(&[0u8; 32]).unwrap_or_else(|_| std::process::abort())
}

fn libc_flags() -> i32 {
    (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK | rustix::fs::OFlags::CLOEXEC)
        .bits() as i32
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) || !text.is_ascii() {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn a_key_is_made_owner_only_and_read_back() {
        let t = tempfile::tempdir().unwrap();
        let path = t.path().join("state/cniswap/journal.key");
        let made = JournalKey::load_or_create(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let read = JournalKey::load(&path).unwrap().unwrap();
        assert_eq!(made.sign("a", b"b"), read.sign("a", b"b"));
        assert!(read.verify("a", b"b", &made.sign("a", b"b")));
        assert!(!read.verify("a", b"c", &made.sign("a", b"b")));
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        let err = JournalKey::load(&path).unwrap_err();
        assert!(err.message.contains("read by others"), "{err}");
    }

    #[test]
    fn a_key_inside_the_plan_directory_is_refused() {
        let t = tempfile::tempdir().unwrap();
        let key = JournalKey::load_or_create(&t.path().join("keys/k")).unwrap();
        assert!(key.check_outside(t.path()).is_err());
        let other = tempfile::tempdir().unwrap();
        assert!(key.check_outside(other.path()).is_ok());
    }
}
