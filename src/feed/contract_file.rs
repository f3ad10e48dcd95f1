//! The cluster feed: the contract file the controller's Secret is mounted as, polled for
//! changes. The kubelet swaps a Secret volume's files atomically (a `..data` symlink pointing at
//! a new directory), so the path is looked up afresh on every poll: a cheap `stat`, and a read
//! only when what it points at changed. A read is bounded by [`MAX_CONTRACT_BYTES`].
//!
//! Each poll answers with what changed, once per change: a new contract (or why it is not one),
//! the file going missing, or the file becoming unreadable. Polling again in the same state
//! answers [`Change::None`], so callers can log every answer without flooding the log.

use std::io::{self, Read};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use crate::engine::contract::{Contract, ContractError};

/// Far above what a Secret can hold (1 MiB).
pub const MAX_CONTRACT_BYTES: u64 = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ContractFileError {
    #[error("{path}: {size} bytes is over the {max}-byte limit for a contract")]
    TooLarge { path: String, size: u64, max: u64 },
    #[error("{path}: {source}")]
    Malformed { path: String, source: ContractError },
}

/// What a poll found.
#[derive(Debug)]
pub enum Change {
    /// Nothing new since the last poll.
    None,
    /// The file holds different bytes: the contract they parse to, or why they do not.
    Updated(Result<Contract, ContractFileError>),
    /// The file does not exist (yet, or any more).
    Missing,
    /// The file exists but cannot be read.
    Unreadable(io::Error),
}

/// Identifies a file's contents cheaply: a change of any part means it must be read again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fingerprint {
    device: u64,
    inode: u64,
    len: u64,
    modified_ns: i128,
}

impl Fingerprint {
    fn of(metadata: &std::fs::Metadata) -> Self {
        Self {
            device: metadata.dev(),
            inode: metadata.ino(),
            len: metadata.len(),
            modified_ns: i128::from(metadata.mtime()) * 1_000_000_000
                + i128::from(metadata.mtime_nsec()),
        }
    }
}

/// The state the last poll found the file in.
#[derive(Debug, PartialEq, Eq)]
enum Seen {
    Nothing,
    Missing,
    Unreadable(io::ErrorKind),
    File(Fingerprint),
}

enum Looked {
    /// Unchanged since `known`.
    Same,
    TooLarge(Fingerprint),
    Read(Fingerprint, Vec<u8>),
}

/// Stats `path` and reads it unless it still matches `known`. Blocking.
fn look(path: &Path, known: Option<Fingerprint>) -> io::Result<Looked> {
    let metadata = std::fs::metadata(path)?;
    let fingerprint = Fingerprint::of(&metadata);
    if known == Some(fingerprint) {
        return Ok(Looked::Same);
    }
    if metadata.len() > MAX_CONTRACT_BYTES {
        return Ok(Looked::TooLarge(fingerprint));
    }
    // Read after the stat: if the file changes in between, the next look sees a new fingerprint
    // and reads again. The read is bounded too, in case it grew in between.
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(MAX_CONTRACT_BYTES + 1)
        .read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_CONTRACT_BYTES {
        return Ok(Looked::TooLarge(fingerprint));
    }
    Ok(Looked::Read(fingerprint, bytes))
}

pub struct ContractFile {
    path: PathBuf,
    seen: Seen,
    /// The bytes last read, so a rewrite with the same contents is no change.
    bytes: Option<Vec<u8>>,
}

impl ContractFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            seen: Seen::Nothing,
            bytes: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Looks at the file once: what changed since the last poll.
    pub async fn poll(&mut self) -> Change {
        let path = self.path.clone();
        let known = match self.seen {
            Seen::File(fingerprint) => Some(fingerprint),
            _ => None,
        };
        let looked = tokio::task::spawn_blocking(move || look(&path, known))
            .await
            .unwrap_or_else(|error| Err(io::Error::other(error)));
        let (fingerprint, bytes) = match looked {
            Err(error) => return self.failed(error),
            Ok(Looked::Same) => return Change::None,
            Ok(Looked::TooLarge(fingerprint)) => {
                self.seen = Seen::File(fingerprint);
                return Change::Updated(Err(ContractFileError::TooLarge {
                    path: self.path.display().to_string(),
                    size: fingerprint.len,
                    max: MAX_CONTRACT_BYTES,
                }));
            }
            Ok(Looked::Read(fingerprint, bytes)) => (fingerprint, bytes),
        };
        self.seen = Seen::File(fingerprint);
        if self.bytes.as_deref() == Some(bytes.as_slice()) {
            return Change::None;
        }
        let parsed = Contract::from_json(&bytes).map_err(|source| ContractFileError::Malformed {
            path: self.path.display().to_string(),
            source,
        });
        self.bytes = Some(bytes);
        Change::Updated(parsed)
    }

    fn failed(&mut self, error: io::Error) -> Change {
        let seen = match error.kind() {
            io::ErrorKind::NotFound => Seen::Missing,
            kind => Seen::Unreadable(kind),
        };
        if self.seen == seen {
            return Change::None;
        }
        self.seen = seen;
        if error.kind() == io::ErrorKind::NotFound {
            Change::Missing
        } else {
            Change::Unreadable(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::plan::Plan;

    /// What a poll answered, without the payload.
    fn kind(change: &Change) -> String {
        match change {
            Change::None => "none".into(),
            Change::Updated(Ok(contract)) => format!("revision {}", contract.revision),
            Change::Updated(Err(error)) => format!("error {error}"),
            Change::Missing => "missing".into(),
            Change::Unreadable(error) => format!("unreadable {:?}", error.kind()),
        }
    }

    fn contract(revision: u64) -> Vec<u8> {
        Contract::new(revision, Plan::default()).to_json()
    }

    /// Writes `bytes` as the kubelet does: a new directory, then the `..data` symlink swapped to
    /// it with a rename; `contract.json` itself is a symlink through `..data`.
    fn kubelet_write(dir: &Path, generation: u32, bytes: &[u8]) {
        let data = dir.join(format!("..data_{generation}"));
        std::fs::create_dir(&data).unwrap();
        std::fs::write(data.join("contract.json"), bytes).unwrap();
        let tmp = dir.join("..data_tmp");
        std::os::unix::fs::symlink(data.file_name().unwrap(), &tmp).unwrap();
        std::fs::rename(&tmp, dir.join("..data")).unwrap();
        let link = dir.join("contract.json");
        if std::fs::symlink_metadata(&link).is_err() {
            std::os::unix::fs::symlink("..data/contract.json", &link).unwrap();
        }
    }

    #[tokio::test]
    async fn reports_each_change_once() {
        let dir = tempfile::tempdir().unwrap();
        let mut file = ContractFile::new(dir.path().join("contract.json"));
        type Step = Box<dyn Fn(&Path)>;
        let steps: Vec<(&str, Step, &str)> = vec![
            ("not there yet", Box::new(|_| {}), "missing"),
            ("still not there", Box::new(|_| {}), "none"),
            (
                "first contract",
                Box::new(|d| kubelet_write(d, 1, &contract(1))),
                "revision 1",
            ),
            ("no change", Box::new(|_| {}), "none"),
            (
                "same bytes rewritten",
                Box::new(|d| kubelet_write(d, 2, &contract(1))),
                "none",
            ),
            (
                "new revision",
                Box::new(|d| kubelet_write(d, 3, &contract(2))),
                "revision 2",
            ),
            (
                "malformed",
                Box::new(|d| kubelet_write(d, 4, b"{\"revision\": \"x\"}")),
                "error ",
            ),
            ("malformed, unchanged", Box::new(|_| {}), "none"),
            (
                "fixed",
                Box::new(|d| kubelet_write(d, 5, &contract(3))),
                "revision 3",
            ),
            (
                "too large",
                Box::new(|d| {
                    let big = vec![b' '; MAX_CONTRACT_BYTES as usize + 1];
                    kubelet_write(d, 6, &big)
                }),
                "error ",
            ),
            (
                "gone",
                Box::new(|d| std::fs::remove_file(d.join("contract.json")).unwrap()),
                "missing",
            ),
            (
                "back, new",
                Box::new(|d| kubelet_write(d, 7, &contract(4))),
                "revision 4",
            ),
        ];
        for (what, act, want) in steps {
            act(dir.path());
            let got = kind(&file.poll().await);
            assert!(got.starts_with(want), "{what}: got {got:?}, want {want:?}");
        }
        assert_eq!(file.path(), dir.path().join("contract.json"));
    }

    #[tokio::test]
    async fn errors_name_the_file_and_the_problem() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.json");
        std::fs::write(&path, b"{\"revision\": 1, \"sources\": {}}").unwrap();
        let mut file = ContractFile::new(&path);
        let Change::Updated(Err(error)) = file.poll().await else {
            panic!("a malformed contract is an error");
        };
        let message = error.to_string();
        assert!(
            message.starts_with(&path.display().to_string()),
            "{message}"
        );
        assert!(
            message.contains("at sources: invalid type: map"),
            "{message}"
        );
    }
}
