//! The journal on a real disk: what it keeps across a restart, a crash in the middle of a write, damage, and
//! a second terminal.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use chrono::{TimeZone, Utc};
use loyalty_core::LoyaltyError;
use tui::journal::{Backlog, Journal, JournalError, QueuedEarn, Record, RefusedEarn};
use uuid::Uuid;

/// A folder of its own under the system's temporary folder, removed when the test ends.
struct Folder(PathBuf);

impl Folder {
    fn new() -> Self {
        let path = std::env::temp_dir().join(format!("loyalty-journal-{}", Uuid::new_v4()));
        Self(path)
    }

    fn journal(&self) -> PathBuf {
        self.0.join("till").join("journal")
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn earn(n: u32) -> QueuedEarn {
    QueuedEarn {
        idempotency_key: Uuid::new_v4(),
        external_id: format!("MBR-ABCD234{n}"),
        points: i64::from(10 + n),
        note: None,
        sale_amount: None,
        sold_at: Utc.with_ymd_and_hms(2026, 11, 3, 15, 4, n).unwrap(),
        staff_email: "alice@example.com".to_owned(),
        staff_name: "Alice Clerk".to_owned(),
        till: "till-2".to_owned(),
    }
}

fn applied(earn: &QueuedEarn) -> Record {
    Record::Applied {
        idempotency_key: earn.idempotency_key,
        transaction_id: 7,
        new_balance: 40,
        replayed: false,
    }
}

fn open(path: &Path) -> tui::journal::Opened {
    Journal::open(path).unwrap_or_else(|e| panic!("opening {}: {e}", path.display()))
}

#[test]
fn what_is_open_is_read_back_after_a_restart_in_the_order_taken() {
    let folder = Folder::new();
    let (first, second, third) = (earn(1), earn(2), earn(3));
    {
        let mut journal = open(&folder.journal()).journal;
        for earn in [&first, &second, &third] {
            journal.append(&Record::Queued(earn.clone())).unwrap();
        }
        journal.append(&applied(&first)).unwrap();
        journal
            .append(&Record::Refused {
                idempotency_key: second.idempotency_key,
                error: LoyaltyError::MemberNotFound,
            })
            .unwrap();
    }
    let opened = open(&folder.journal());
    assert!(!opened.torn_tail);
    assert_eq!(
        opened.backlog,
        Backlog {
            waiting: vec![third.clone()],
            refused: vec![RefusedEarn {
                earn: second.clone(),
                error: LoyaltyError::MemberNotFound
            }],
        }
    );
    let mut journal = opened.journal;
    journal
        .append(&Record::Dismissed {
            idempotency_key: second.idempotency_key,
        })
        .unwrap();
    journal.append(&applied(&third)).unwrap();
    assert_eq!(
        std::fs::metadata(folder.journal()).unwrap().len(),
        0,
        "nothing open: the file is emptied, the server's ledger holds what was sent"
    );
    drop(journal);
    assert_eq!(open(&folder.journal()).backlog, Backlog::default());
}

/// A crash (kill -9, a power cut) part-way through writing the last line leaves some prefix of it: at every
/// length, the journal reads the lines before it and nothing of it, and the next line goes after them.
#[test]
fn a_last_line_cut_off_at_any_byte_is_left_out_and_the_journal_goes_on() {
    let folder = Folder::new();
    let path = folder.journal();
    let (kept, cut) = (earn(1), earn(2));
    let mut journal = open(&path).journal;
    journal.append(&Record::Queued(kept.clone())).unwrap();
    let whole = std::fs::metadata(&path).unwrap().len();
    journal.append(&Record::Queued(cut.clone())).unwrap();
    drop(journal);
    let full = std::fs::read(&path).unwrap();
    assert!(full.len() as u64 > whole + 2);
    for len in whole..full.len() as u64 {
        std::fs::write(&path, &full[..len as usize]).unwrap();
        let opened = open(&path);
        assert_eq!(opened.backlog.waiting, vec![kept.clone()], "cut at {len}");
        assert_eq!(opened.torn_tail, len > whole, "cut at {len}");
        assert_eq!(
            std::fs::metadata(&path).unwrap().len(),
            whole,
            "cut at {len}"
        );
        let mut journal = opened.journal;
        let next = earn(3);
        journal.append(&Record::Queued(next.clone())).unwrap();
        drop(journal);
        assert_eq!(
            open(&path).backlog.waiting,
            vec![kept.clone(), next],
            "after a cut at {len}, the next line reads whole"
        );
    }
}

#[test]
fn a_last_line_of_garbage_or_with_a_wrong_checksum_is_never_replayed() {
    let folder = Folder::new();
    let path = folder.journal();
    let kept = earn(1);
    let mut journal = open(&path).journal;
    journal.append(&Record::Queued(kept.clone())).unwrap();
    drop(journal);
    let whole = std::fs::read(&path).unwrap();
    let forged = serde_json::to_string(&Record::Queued(earn(2))).unwrap();
    for tail in [
        vec![0_u8; 300],
        format!("0000000000000000 {forged}\n").into_bytes(),
        format!("{forged}\n").into_bytes(),
        b"\n".to_vec(),
    ] {
        std::fs::write(&path, [whole.as_slice(), &tail].concat()).unwrap();
        let opened = open(&path);
        assert_eq!(opened.backlog.waiting, vec![kept.clone()]);
        assert!(opened.torn_tail);
    }
}

#[test]
fn a_damaged_line_before_whole_ones_stops_the_terminal_and_changes_nothing() {
    let folder = Folder::new();
    let path = folder.journal();
    let mut journal = open(&path).journal;
    for n in 1..=3 {
        journal.append(&Record::Queued(earn(n))).unwrap();
    }
    drop(journal);
    let mut bytes = std::fs::read(&path).unwrap();
    let second_line = bytes.iter().position(|b| *b == b'\n').unwrap() + 1;
    // One flipped character inside the second line's JSON.
    bytes[second_line + 40] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();
    match Journal::open(&path) {
        Err(JournalError::Damaged { line, .. }) => assert_eq!(line, 2),
        other => panic!("expected damage at line 2, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "left as it was found");
}

#[test]
fn a_second_terminal_on_the_same_journal_is_refused_until_the_first_is_gone() {
    let folder = Folder::new();
    let path = folder.journal();
    let first = open(&path);
    let err = Journal::open(&path).unwrap_err();
    assert!(
        matches!(&err, JournalError::InUse(p) if *p == path),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .starts_with("another counter terminal is using the journal"),
        "{err}"
    );
    drop(first);
    open(&path);
}

#[test]
fn a_queued_earn_goes_out_as_an_earn_with_its_key_and_the_time_of_its_sale() {
    let queued = earn(4);
    let request = queued.request();
    assert_eq!(request.tx_type, loyalty_core::wire::TxType::Earn);
    assert_eq!(request.idempotency_key, queued.idempotency_key);
    assert_eq!(request.sold_at, Some(queued.sold_at));
    assert_eq!(
        (request.external_id.as_str(), request.points),
        ("MBR-ABCD2344", 14)
    );
}

/// A sale taken offline keeps its amount through a restart and goes to the server as that sale, under its own
/// key and with the time it was taken: the server counts its points by the program's rules then.
#[test]
fn a_queued_sale_is_read_back_with_its_amount_and_sent_as_a_sale() {
    let folder = Folder::new();
    let sale = QueuedEarn {
        sale_amount: Some("12.50".to_owned()),
        points: 0,
        ..earn(4)
    };
    open(&folder.journal())
        .journal
        .append(&Record::Queued(sale.clone()))
        .unwrap();
    let opened = open(&folder.journal());
    assert_eq!(opened.backlog.waiting, vec![sale.clone()]);
    let request = opened.backlog.waiting[0].request();
    assert_eq!(request.sale_amount.as_deref(), Some("12.50"));
    assert_eq!(request.idempotency_key, sale.idempotency_key);
    assert_eq!(request.sold_at, Some(sale.sold_at));
    assert_eq!(tui::app::doing(&request), "Record a sale of 12.50");
}
