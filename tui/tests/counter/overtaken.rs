//! Answers that come after a later request went out: none takes the later one's place on screen, and an earn or
//! redeem stays tracked until its own answer.

use crossterm::event::KeyCode;
use loyalty_core::LoyaltyError;
use loyalty_core::code::claim_code_from_body;
use loyalty_core::wire::{MemberDetail, ScanOutcome, TxType};
use tui::app::{Command, PendingPoints, Tone};
use tui::event::{ApiEvent, Attempt};

use crate::support::*;

#[test]
fn an_answer_overtaken_by_a_later_scan_does_not_take_its_place() {
    let mut app = signed_in();
    let postcard = claim_code_from_body("7KQ2M9XRT4PB");
    type_text(&mut app, &postcard);
    press(&mut app, KeyCode::Enter);
    type_text(&mut app, MEMBER_ID);
    press(&mut app, KeyCode::Enter);
    answer(
        &mut app,
        ApiEvent::Scanned {
            code: MEMBER_ID.to_owned(),
            result: Ok(ScanOutcome::Member {
                member: member(MEMBER_ID, 150),
            }),
        },
    );
    let commands = answer(
        &mut app,
        ApiEvent::Scanned {
            code: postcard.clone(),
            result: Ok(ScanOutcome::Claimed {
                code: postcard.clone(),
                member: member("CLM-NEWPASS23", 0),
            }),
        },
    );
    assert!(commands.is_empty());
    assert_eq!(app.counter.member(), Some(&member(MEMBER_ID, 150)));
    assert_eq!(
        notice(&app),
        (
            Tone::Info,
            format!("Postcard {postcard} claimed earlier: new member CLM-NEWPASS23.").as_str()
        )
    );
}

#[test]
fn a_late_ledger_of_another_member_is_ignored() {
    let mut app = with_member(150);
    answer(
        &mut app,
        ApiEvent::MemberLoaded {
            external_id: "MBR-OTHER2345".to_owned(),
            result: Ok(MemberDetail {
                member: member("MBR-OTHER2345", 9),
                next_expiry: None,
                contacts: Vec::new(),
                replaced: None,
                ledger: vec![],
            }),
        },
    );
    assert_eq!(app.counter.member(), Some(&member(MEMBER_ID, 150)));
}

#[test]
fn a_scan_while_an_earn_is_out_keeps_the_earn_until_its_answer() {
    let mut app = with_member(100);
    confirm_points(&mut app, 'e', "50");
    type_text(&mut app, "MBR-ZZZZ9999");
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.waiting(), Some("Looking up MBR-ZZZZ9999…".to_owned()));
    answer(
        &mut app,
        ApiEvent::Scanned {
            code: "MBR-ZZZZ9999".to_owned(),
            result: Ok(ScanOutcome::Member {
                member: member("MBR-ZZZZ9999", 9),
            }),
        },
    );
    assert!(type_text(&mut app, "q").is_empty(), "the earn is still out");
    type_text(&mut app, "e");
    assert_eq!(
        notice(&app),
        (Tone::Info, "Wait for the answer to the last request.")
    );
    let Some(PendingPoints::Sending(earn)) = app.counter.points.clone() else {
        panic!("the earn is out: {:?}", app.counter.points);
    };
    let commands = answer(
        &mut app,
        ApiEvent::Points {
            request: earn,
            attempt: Attempt::First,
            result: Ok(receipt(TxType::Earn, 50, 150, false)),
        },
    );
    assert!(commands.is_empty(), "the receipt is another member's");
    assert_eq!(app.counter.points, None);
    assert_eq!(app.counter.member().map(|m| m.points), Some(9));
}

#[test]
fn a_scan_overtaken_by_an_enrol_does_not_take_its_place() {
    let mut app = signed_in();
    type_text(&mut app, MEMBER_ID);
    press(&mut app, KeyCode::Enter);
    type_text(&mut app, "n");
    assert_eq!(press(&mut app, KeyCode::Enter), vec![Command::Enrol]);
    assert_eq!(app.waiting(), Some("Enrolling a new member…".to_owned()));
    answer(&mut app, ApiEvent::Enrolled(Ok(member("MBR-NEW23456", 0))));
    let commands = answer(
        &mut app,
        ApiEvent::Scanned {
            code: MEMBER_ID.to_owned(),
            result: Ok(ScanOutcome::Member {
                member: member(MEMBER_ID, 150),
            }),
        },
    );
    assert!(commands.is_empty());
    assert_eq!(app.counter.member(), Some(&member("MBR-NEW23456", 0)));
}

#[test]
fn a_scan_sent_after_an_enrol_keeps_the_panel_for_its_answer() {
    let mut app = signed_in();
    type_text(&mut app, "n");
    press(&mut app, KeyCode::Enter);
    type_text(&mut app, MEMBER_ID);
    press(&mut app, KeyCode::Enter);
    let commands = answer(&mut app, ApiEvent::Enrolled(Ok(member("MBR-NEW23456", 0))));
    assert!(commands.is_empty(), "the scan's member takes the panel");
    assert_eq!(
        notice(&app),
        (
            Tone::Success,
            "New member MBR-NEW23456 enrolled: hand over their pass."
        )
    );
    assert_eq!(app.waiting(), Some(format!("Looking up {MEMBER_ID}…")));
    answer(
        &mut app,
        ApiEvent::Scanned {
            code: MEMBER_ID.to_owned(),
            result: Ok(ScanOutcome::Member {
                member: member(MEMBER_ID, 150),
            }),
        },
    );
    assert_eq!(app.counter.member(), Some(&member(MEMBER_ID, 150)));
}

#[test]
fn a_retry_sent_while_a_scan_is_out_leaves_the_scan_its_answer() {
    let mut app = with_member(100);
    let first = confirm_points(&mut app, 'r', "30");
    answer(
        &mut app,
        ApiEvent::Points {
            request: first.clone(),
            attempt: Attempt::First,
            result: Err(LoyaltyError::Network {
                detail: "no answer within 5 seconds".to_owned(),
            }),
        },
    );
    answer(&mut app, ApiEvent::Health(true));
    type_text(&mut app, "MBR-ZZZZ9999");
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        type_text(&mut app, "t"),
        vec![Command::Points {
            request: first,
            attempt: Attempt::Retry
        }]
    );
    answer(
        &mut app,
        ApiEvent::Scanned {
            code: "MBR-ZZZZ9999".to_owned(),
            result: Ok(ScanOutcome::Member {
                member: member("MBR-ZZZZ9999", 9),
            }),
        },
    );
    assert_eq!(app.counter.member(), Some(&member("MBR-ZZZZ9999", 9)));
    assert_eq!(
        app.waiting(),
        Some(format!("Sending again: redeem 30 points for {MEMBER_ID}…"))
    );
}
