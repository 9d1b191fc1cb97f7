//! Events, states and a screen to read, as a clerk's session would produce them.

use chrono::{DateTime, TimeZone, Utc};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use loyalty_core::wire::{
    LedgerEntry, Member, MemberDetail, PassOrigin, PointsReceipt, Role, ScanOutcome, StaffSession,
    TxType,
};
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use tui::app::{App, Command, Tone};
use tui::client::PointsRequest;
use tui::event::{ApiEvent, Attempt, Event};

pub const MEMBER_ID: &str = "MBR-ABCD2345XY";

pub fn key(code: KeyCode) -> Event {
    Event::Key(KeyEvent::new(code, KeyModifiers::NONE))
}

pub fn ctrl(c: char) -> Event {
    Event::Key(KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL))
}

pub fn press(app: &mut App, code: KeyCode) -> Vec<Command> {
    app.update(key(code))
}

/// Types text the way a keyboard-wedge scanner does: one key event per character.
pub fn type_text(app: &mut App, text: &str) -> Vec<Command> {
    text.chars()
        .flat_map(|c| app.update(key(KeyCode::Char(c))))
        .collect()
}

pub fn answer(app: &mut App, answer: ApiEvent) -> Vec<Command> {
    app.update(Event::Api(answer))
}

pub fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, 15, 4, 5).unwrap()
}

pub fn session() -> StaffSession {
    StaffSession {
        staff_name: "Alice Clerk".to_owned(),
        email: "alice@example.com".to_owned(),
        role: Role::Clerk,
        program_name: "Corner Bakery".to_owned(),
        time_zone: "UTC".to_owned(),
        csrf_token: "csrf-token".to_owned(),
    }
}

pub fn member(external_id: &str, points: i64) -> Member {
    Member {
        external_id: external_id.to_owned(),
        points,
        origin: PassOrigin::of(external_id),
        created_at: at(1),
    }
}

pub fn entry(id: i64, tx_type: TxType, points: i64, balance_after: i64) -> LedgerEntry {
    LedgerEntry {
        id,
        external_id: MEMBER_ID.to_owned(),
        tx_type,
        points,
        balance_after,
        description: None,
        staff_name: Some("Alice Clerk".to_owned()),
        created_at: at(2),
        local_at: at(2).naive_utc(),
        voids: None,
        voided_by: None,
        sold_at: None,
        local_sold_at: None,
    }
}

pub fn receipt(tx_type: TxType, points: i64, new_balance: i64, replayed: bool) -> PointsReceipt {
    PointsReceipt {
        external_id: MEMBER_ID.to_owned(),
        tx_type,
        points,
        new_balance,
        transaction_id: 7,
        created_at: at(3),
        replayed,
        reward: None,
        rule: None,
    }
}

/// Signed in, with the server up.
pub fn signed_in() -> App {
    let mut app = App::new("http://127.0.0.1:3000");
    answer(&mut app, ApiEvent::Health(true));
    answer(&mut app, ApiEvent::SignedIn(Ok(session())));
    app
}

/// Signed in, with a member scanned and their ledger loaded.
pub fn with_member(points: i64) -> App {
    let mut app = signed_in();
    type_text(&mut app, MEMBER_ID);
    press(&mut app, KeyCode::Enter);
    answer(
        &mut app,
        ApiEvent::Scanned {
            code: MEMBER_ID.to_owned(),
            result: Ok(ScanOutcome::Member {
                member: member(MEMBER_ID, points),
            }),
        },
    );
    answer(
        &mut app,
        ApiEvent::MemberLoaded {
            external_id: MEMBER_ID.to_owned(),
            result: Ok(MemberDetail {
                member: member(MEMBER_ID, points),
                next_expiry: None,
                contacts: Vec::new(),
                replaced: None,
                ledger: vec![entry(2, TxType::Earn, points, points)],
            }),
        },
    );
    app
}

/// The last notice's tone and text.
pub fn notice(app: &App) -> (Tone, &str) {
    let notice = app.notice.as_ref().expect("a notice");
    (notice.tone, notice.text.as_str())
}

/// Presses e (or r), types the amount and confirms, returning the request that went out.
pub fn confirm_points(app: &mut App, tx_key: char, amount: &str) -> PointsRequest {
    assert!(type_text(app, &tx_key.to_string()).is_empty());
    assert!(type_text(app, amount).is_empty());
    assert!(
        press(app, KeyCode::Enter).is_empty(),
        "Enter on the amount only asks to confirm"
    );
    match press(app, KeyCode::Enter).as_slice() {
        [
            Command::Points {
                request,
                attempt: Attempt::First,
            },
        ] => request.clone(),
        other => panic!("expected one first attempt, got {other:?}"),
    }
}

/// The screen as text, one line per row, drawn at the size of a small terminal.
pub fn screen(app: &App) -> String {
    screen_at(app, 80, 24)
}

pub fn screen_at(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|frame| tui::ui::draw(frame, app)).unwrap();
    let buffer = terminal.backend().buffer();
    (0..buffer.area.height)
        .map(|y| {
            (0..buffer.area.width)
                .map(|x| buffer[(x, y)].symbol())
                .collect::<String>()
                .trim_end()
                .to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Asserts the screen shows each text, printing the screen when it does not.
#[track_caller]
pub fn assert_shows(screen: &str, texts: &[&str]) {
    for text in texts {
        assert!(
            screen.contains(text),
            "{text:?} is not on the screen:\n{screen}"
        );
    }
}

#[track_caller]
pub fn assert_hides(screen: &str, texts: &[&str]) {
    for text in texts {
        assert!(
            !screen.contains(text),
            "{text:?} should not be on the screen:\n{screen}"
        );
    }
}
