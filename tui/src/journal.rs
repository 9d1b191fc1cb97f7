//! The journal of earns taken while the server could not be reached: one file of lines, only ever appended to,
//! each line on disk before the clerk is told "queued". It is read again at start, so nothing is lost to a
//! crash or a reboot; a line cut off by a crash is found by its checksum and left out; and the file is held
//! under an exclusive lock, so a second terminal never sends the same queue.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use loyalty_core::LoyaltyError;
use loyalty_core::wire::TxType;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::client::PointsRequest;

/// Hex digits of a line's SHA-256 written in front of it: enough to tell a torn line from a whole one.
const CHECKSUM_CHARS: usize = 16;

/// An earn taken while the server could not be reached, as it will be sent: under its own idempotency key, so
/// one that had reached the server before the outage is not applied twice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QueuedEarn {
    pub idempotency_key: Uuid,
    pub external_id: String,
    pub points: i64,
    pub note: Option<String>,
    /// A sale's amount as the clerk typed it: the server counts its points when it is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sale_amount: Option<String>,
    /// When the clerk took it, by the till's clock: the time of the sale.
    pub sold_at: DateTime<Utc>,
    pub staff_email: String,
    pub staff_name: String,
    pub till: String,
}

impl QueuedEarn {
    /// The earn as it goes to the server, with the time of the sale.
    pub fn request(&self) -> PointsRequest {
        PointsRequest {
            tx_type: TxType::Earn,
            external_id: self.external_id.clone(),
            points: self.points,
            note: self.note.clone(),
            idempotency_key: self.idempotency_key,
            sold_at: Some(self.sold_at),
            sale_amount: self.sale_amount.clone(),
            reward: None,
        }
    }
}

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "record", rename_all = "snake_case")]
pub enum Record {
    Queued(QueuedEarn),
    /// The server applied it, now or (`replayed`) before.
    Applied {
        idempotency_key: Uuid,
        transaction_id: i64,
        new_balance: i64,
        replayed: bool,
    },
    /// The server refused it: it stays listed for the clerk.
    Refused {
        idempotency_key: Uuid,
        error: LoyaltyError,
    },
    /// The clerk dealt with a refused earn.
    Dismissed {
        idempotency_key: Uuid,
    },
}

/// An earn the server refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedEarn {
    pub earn: QueuedEarn,
    pub error: LoyaltyError,
}

/// What the journal holds open: earns waiting to be sent, in the order they were taken, and refused earns the
/// clerk has not dealt with yet.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Backlog {
    pub waiting: Vec<QueuedEarn>,
    pub refused: Vec<RefusedEarn>,
}

impl Backlog {
    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty() && self.refused.is_empty()
    }

    /// The backlog after `record`.
    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::Queued(earn) => {
                if !self.holds(earn.idempotency_key) {
                    self.waiting.push(earn.clone());
                }
            }
            Record::Applied {
                idempotency_key, ..
            } => {
                self.waiting
                    .retain(|earn| earn.idempotency_key != *idempotency_key);
            }
            Record::Refused {
                idempotency_key,
                error,
            } => {
                if let Some(at) = self
                    .waiting
                    .iter()
                    .position(|earn| earn.idempotency_key == *idempotency_key)
                {
                    let earn = self.waiting.remove(at);
                    self.refused.push(RefusedEarn {
                        earn,
                        error: error.clone(),
                    });
                }
            }
            Record::Dismissed { idempotency_key } => {
                self.refused
                    .retain(|refused| refused.earn.idempotency_key != *idempotency_key);
            }
        }
    }

    fn holds(&self, key: Uuid) -> bool {
        self.waiting.iter().any(|earn| earn.idempotency_key == key)
            || self
                .refused
                .iter()
                .any(|refused| refused.earn.idempotency_key == key)
    }
}

/// Why a journal cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error(
        "another counter terminal is using the journal {}: quit it first, or give this one its own with --journal",
        .0.display()
    )]
    InUse(PathBuf),
    #[error(
        "the journal {} is damaged at line {line}, before lines that are whole: nothing was sent or changed. \
         Move the file aside, start again, and enter its earns by hand",
        path.display()
    )]
    Damaged { path: PathBuf, line: usize },
    #[error("the journal {}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
}

/// An open journal, locked for this terminal until it is dropped.
#[derive(Debug)]
pub struct Journal {
    file: File,
    path: PathBuf,
    /// Bytes of whole lines: where the next line goes.
    len: u64,
    backlog: Backlog,
}

/// A journal as it was found at start.
#[derive(Debug)]
pub struct Opened {
    pub journal: Journal,
    pub backlog: Backlog,
    /// A last line was cut off by a crash while it was written: never confirmed to the clerk, it was left out.
    pub torn_tail: bool,
}

impl Journal {
    /// Where the journal lives unless told otherwise: the user's data folder.
    pub fn default_path() -> Option<PathBuf> {
        use etcetera::BaseStrategy;
        let strategy = etcetera::choose_base_strategy().ok()?;
        Some(strategy.data_dir().join("loyalty-counter").join("journal"))
    }

    /// Opens (or creates) the journal at `path`, takes its lock and reads what it holds open.
    pub fn open(path: &Path) -> Result<Opened, JournalError> {
        let io_error = |source| JournalError::Io {
            path: path.to_owned(),
            source,
        };
        let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
        if let Some(folder) = folder {
            std::fs::create_dir_all(folder).map_err(io_error)?;
        }
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(path)
            .map_err(io_error)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(JournalError::InUse(path.to_owned())),
            Err(TryLockError::Error(e)) => return Err(io_error(e)),
        }
        if !existed {
            // The new file's name must survive a reboot as well as its lines.
            if let Some(folder) = folder {
                sync_folder(folder).map_err(io_error)?;
            }
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).map_err(io_error)?;
        let read = read_lines(&bytes).map_err(|line| JournalError::Damaged {
            path: path.to_owned(),
            line,
        })?;
        let mut backlog = Backlog::default();
        for record in &read.records {
            backlog.apply(record);
        }
        let torn_tail = read.whole_len < bytes.len();
        let mut journal = Self {
            file,
            path: path.to_owned(),
            len: read.whole_len as u64,
            backlog: backlog.clone(),
        };
        if backlog.is_empty() {
            journal.truncate(0).map_err(io_error)?;
        } else if torn_tail {
            journal.truncate(journal.len).map_err(io_error)?;
        }
        Ok(Opened {
            journal,
            backlog,
            torn_tail,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends one record and waits until it is on disk. When nothing is left open, the file is emptied: the
    /// server's ledger holds what was sent.
    pub fn append(&mut self, record: &Record) -> io::Result<()> {
        let line = encode(record)?;
        if let Err(e) = self
            .file
            .write_all(&line)
            .and_then(|()| self.file.sync_data())
        {
            // A part-written line would sit before the next whole one: cut it off, as far as the disk lets us.
            let _ = self.truncate(self.len);
            return Err(e);
        }
        self.len += line.len() as u64;
        self.backlog.apply(record);
        if self.backlog.is_empty() {
            self.truncate(0)?;
        }
        Ok(())
    }

    fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.file.set_len(len)?;
        self.file.sync_data()?;
        self.len = len;
        Ok(())
    }
}

/// A record as one line: `<checksum> <json>\n`.
fn encode(record: &Record) -> io::Result<Vec<u8>> {
    let json = serde_json::to_vec(record)?;
    let mut line = checksum(&json).into_bytes();
    line.push(b' ');
    line.extend_from_slice(&json);
    line.push(b'\n');
    Ok(line)
}

fn checksum(json: &[u8]) -> String {
    let digest = Sha256::digest(json);
    let mut hex = String::with_capacity(CHECKSUM_CHARS);
    for byte in digest.iter().take(CHECKSUM_CHARS / 2) {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// One whole line's record, or `None` when the line is not one this journal wrote whole.
fn decode(line: &[u8]) -> Option<Record> {
    let (sum, json) = line.split_at_checked(CHECKSUM_CHARS)?;
    let json = json.strip_prefix(b" ")?;
    if sum != checksum(json).as_bytes() {
        return None;
    }
    serde_json::from_slice(json).ok()
}

struct Lines {
    records: Vec<Record>,
    /// Bytes up to the end of the last whole line.
    whole_len: usize,
}

/// The records of a journal's bytes. A bad last line is a write a crash cut short, and is left out; a bad line
/// with whole lines after it is damage, answered with its line number.
fn read_lines(bytes: &[u8]) -> Result<Lines, usize> {
    let mut records = Vec::new();
    let mut whole_len = 0;
    let mut bad_line = None;
    let mut start = 0;
    let mut number = 0;
    while start < bytes.len() {
        number += 1;
        let end = bytes[start..]
            .iter()
            .position(|b| *b == b'\n')
            .map(|at| start + at + 1);
        let record = end.and_then(|end| decode(&bytes[start..end - 1]));
        match (record, bad_line) {
            (Some(_), Some(bad)) => return Err(bad),
            (Some(record), None) => {
                records.push(record);
                whole_len = end.unwrap_or(bytes.len());
            }
            (None, _) => bad_line = bad_line.or(Some(number)),
        }
        start = end.unwrap_or(bytes.len());
    }
    Ok(Lines { records, whole_len })
}

#[cfg(unix)]
fn sync_folder(folder: &Path) -> io::Result<()> {
    File::open(folder)?.sync_all()
}

#[cfg(not(unix))]
fn sync_folder(_folder: &Path) -> io::Result<()> {
    Ok(())
}
