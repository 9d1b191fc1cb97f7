//! Every screen at 80x24, read as the clerk reads it.

use crossterm::event::KeyCode;
use loyalty_core::LoyaltyError;
use loyalty_core::code::claim_code_from_body;
use loyalty_core::wire::{MemberDetail, TxType};
use tui::app::App;
use tui::event::{ApiEvent, Attempt};

use crate::support::*;

fn timed_out_redeem(app: &mut App, points: &str) {
    type_text(app, "r");
    type_text(app, points);
    press(app, KeyCode::Enter);
    let request = match press(app, KeyCode::Enter).pop() {
        Some(tui::app::Command::Points { request, .. }) => request,
        other => panic!("{other:?}"),
    };
    answer(
        app,
        ApiEvent::Points {
            request,
            attempt: Attempt::First,
            result: Err(LoyaltyError::Network {
                detail: "no answer within 5 seconds".to_owned(),
            }),
        },
    );
}

#[test]
fn sign_in_screen() {
    let mut app = App::new("http://127.0.0.1:3000");
    answer(&mut app, ApiEvent::Health(true));
    type_text(&mut app, "alice@example.com");
    press(&mut app, KeyCode::Enter);
    type_text(&mut app, "hunter2");
    let screen = screen(&app);
    assert_shows(
        &screen,
        &[
            "Loyalty counter",
            "Sign in",
            "  Server   http://127.0.0.1:3000",
            "  Email    alice@example.com",
            "› Password •••••••",
            "Enter next / sign in",
            "● Server online │ Not signed in │ Ctrl-C quit",
        ],
    );
    assert_hides(&screen, &["hunter2"]);
}

#[test]
fn sign_in_refused() {
    let mut app = App::new("http://127.0.0.1:3000");
    type_text(&mut app, "alice@example.com");
    press(&mut app, KeyCode::Enter);
    type_text(&mut app, "wrong");
    press(&mut app, KeyCode::Enter);
    assert_shows(&screen(&app), &["Signing in as alice@example.com…"]);
    answer(
        &mut app,
        ApiEvent::SignedIn(Err(LoyaltyError::BadCredentials)),
    );
    assert_shows(
        &screen(&app),
        &["✘ That email and password do not match.", "Password"],
    );
}

#[test]
fn counter_waiting_for_a_scan() {
    let app = signed_in();
    let screen = screen(&app);
    assert_shows(
        &screen,
        &[
            "Loyalty counter · Corner Bakery",
            "Scan or type a code, then Enter",
            "Scan a postcard or a member's pass",
            "✔ Signed in as Alice Clerk at Corner Bakery.",
            "● Server online │ Alice Clerk · Corner Bakery │ ? keys · q quit",
        ],
    );
}

#[test]
fn scanning_shows_what_was_typed_and_then_the_member_panel() {
    let mut app = signed_in();
    type_text(&mut app, "mbr-abcd");
    assert_shows(&screen(&app), &["› mbr-abcd"]);
    type_text(&mut app, "2345xy");
    press(&mut app, KeyCode::Enter);
    assert_shows(&screen(&app), &["Looking up MBR-ABCD2345XY…"]);

    let mut app = with_member(150);
    answer(
        &mut app,
        ApiEvent::MemberLoaded {
            external_id: MEMBER_ID.to_owned(),
            result: Ok(MemberDetail {
                member: member(MEMBER_ID, 150),
                next_expiry: None,
                contacts: Vec::new(),
                replaced: None,
                ledger: vec![
                    entry(3, TxType::Redeem, 20, 150),
                    entry(2, TxType::Earn, 70, 170),
                    entry(1, TxType::Earn, 100, 100),
                ],
            }),
        },
    );
    let screen = screen(&app);
    assert_shows(
        &screen,
        &[
            "Pass     MBR-ABCD2345XY  enrolled at the counter on 1 Nov 2026",
            "Balance  150 points",
            "e earn  r redeem",
            "Last transactions",
            "When              Type      Points  Balance  By · note",
            "Redeem       -20      150  Alice Clerk",
            "Earn         +70      170",
            "Earn        +100      100",
            "Member MBR-ABCD2345XY: 150 points.",
        ],
    );
}

#[test]
fn a_claimed_postcard_and_an_empty_ledger() {
    let mut app = signed_in();
    let code = claim_code_from_body("7KQ2M9XRT4PB");
    type_text(&mut app, &code);
    press(&mut app, KeyCode::Enter);
    answer(
        &mut app,
        ApiEvent::Scanned {
            code: code.clone(),
            result: Ok(loyalty_core::wire::ScanOutcome::Claimed {
                code: code.clone(),
                member: member(&code, 0),
            }),
        },
    );
    assert_shows(&screen(&app), &["Loading the last transactions…"]);
    answer(
        &mut app,
        ApiEvent::MemberLoaded {
            external_id: code.clone(),
            result: Ok(MemberDetail {
                member: member(&code, 0),
                next_expiry: None,
                contacts: Vec::new(),
                replaced: None,
                ledger: vec![],
            }),
        },
    );
    assert_shows(
        &screen(&app),
        &[
            &format!("Postcard {code} claimed: new member {code}."),
            "claimed a postcard on 1 Nov 2026",
            "Balance  0 points",
            "No transactions yet.",
        ],
    );
}

#[test]
fn already_claimed_names_the_day() {
    let mut app = signed_in();
    let code = claim_code_from_body("7KQ2M9XRT4PB");
    type_text(&mut app, &code);
    press(&mut app, KeyCode::Enter);
    answer(
        &mut app,
        ApiEvent::Scanned {
            code,
            result: Err(LoyaltyError::AlreadyClaimed {
                claimed_at: at(3).fixed_offset(),
            }),
        },
    );
    assert_shows(
        &screen(&app),
        &["✘ This postcard has already been claimed on 3 Nov 2026."],
    );
}

#[test]
fn invalid_code_and_unknown_member() {
    let mut app = signed_in();
    let code = claim_code_from_body("7KQ2M9XRT4PB");
    type_text(&mut app, &code);
    press(&mut app, KeyCode::Enter);
    answer(
        &mut app,
        ApiEvent::Scanned {
            code,
            result: Err(LoyaltyError::InvalidCode),
        },
    );
    assert_shows(
        &screen(&app),
        &["✘ This code is not valid for this program."],
    );
    type_text(&mut app, "MBR-ZZZZ9999");
    press(&mut app, KeyCode::Enter);
    answer(
        &mut app,
        ApiEvent::Scanned {
            code: "MBR-ZZZZ9999".to_owned(),
            result: Err(LoyaltyError::MemberNotFound),
        },
    );
    let screen = screen(&app);
    assert_shows(&screen, &["✘ No member with this pass in this program."]);
    assert_hides(&screen, &["Balance"]);
}

#[test]
fn earn_prompt_confirmation_and_receipt() {
    let mut app = with_member(100);
    type_text(&mut app, "e");
    type_text(&mut app, "50 birthday gift");
    assert_shows(
        &screen(&app),
        &[
            "Earn points for MBR-ABCD2345XY (managers)",
            "Points and reason: 50 birthday gift",
            "Enter continue · Esc cancel",
        ],
    );
    press(&mut app, KeyCode::Enter);
    assert_shows(
        &screen(&app),
        &[
            "Confirm",
            "Earn 50 points (birthday gift) for MBR-ABCD2345XY?",
            "Enter yes · Esc no",
        ],
    );
    let request = match press(&mut app, KeyCode::Enter).pop() {
        Some(tui::app::Command::Points { request, .. }) => request,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        request.note.as_deref(),
        Some("birthday gift"),
        "the reason goes with it"
    );
    assert_shows(
        &screen(&app),
        &["Earn 50 points (birthday gift) for MBR-ABCD2345XY…"],
    );
    answer(
        &mut app,
        ApiEvent::Points {
            request,
            attempt: Attempt::First,
            result: Ok(receipt(TxType::Earn, 50, 150, false)),
        },
    );
    assert_shows(
        &screen(&app),
        &[
            "✔ 50 points earned for MBR-ABCD2345XY: new balance 150 points.",
            "Balance  150 points",
        ],
    );
}

#[test]
fn insufficient_funds_names_the_balance() {
    let mut app = with_member(40);
    type_text(&mut app, "r");
    type_text(&mut app, "50");
    assert_shows(
        &screen(&app),
        &["Redeem points for MBR-ABCD2345XY", "Points and reason: 50"],
    );
    press(&mut app, KeyCode::Enter);
    let request = match press(&mut app, KeyCode::Enter).pop() {
        Some(tui::app::Command::Points { request, .. }) => request,
        other => panic!("{other:?}"),
    };
    answer(
        &mut app,
        ApiEvent::Points {
            request,
            attempt: Attempt::First,
            result: Err(LoyaltyError::InsufficientFunds { balance: 40 }),
        },
    );
    assert_shows(
        &screen(&app),
        &[
            "✘ Not enough points: the balance is 40 points.",
            "Balance  40 points",
        ],
    );
}

#[test]
fn retry_prompt_after_a_timeout_and_its_outcome() {
    let mut app = with_member(100);
    timed_out_redeem(&mut app, "30");
    let screen_before = screen(&app);
    assert_shows(
        &screen_before,
        &[
            "Not answered",
            "Redeem 30 points for MBR-ABCD2345XY: no answer within 5 seconds.",
            "Not known if it went through. t send it again (never applied twice)  x drop",
            "! No answer to \"Redeem 30 points\": it may or may not have gone through.",
            "○ Server unreachable",
        ],
    );
    let request = match type_text(&mut app, "t").pop() {
        Some(tui::app::Command::Points { request, .. }) => request,
        other => panic!("{other:?}"),
    };
    assert_shows(
        &screen(&app),
        &[
            "Sending it again…",
            "Sending again: redeem 30 points for MBR-ABCD2345XY…",
        ],
    );
    answer(
        &mut app,
        ApiEvent::Points {
            request,
            attempt: Attempt::Retry,
            result: Ok(receipt(TxType::Redeem, 30, 70, true)),
        },
    );
    let screen = screen(&app);
    assert_shows(
        &screen,
        &[
            "✔ The first attempt had gone through: 30 points redeemed for MBR-ABCD2345XY,",
            "   once. Balance 70 points.",
            "● Server online",
        ],
    );
    assert_hides(&screen, &["Not answered"]);
}

#[test]
fn help_overlay() {
    let mut app = with_member(100);
    type_text(&mut app, "?");
    let screen = screen(&app);
    assert_shows(
        &screen,
        &[
            "Keys",
            "e          managers: add points by hand, then a reason",
            "r          managers: take points by hand, then a reason",
            "n          enrol a new member (MBR-)",
            "t / F5     send an unanswered request again",
            "q          quit",
            "Ctrl-C     quit at any time",
            "Letter keys act when the scan line is empty.",
            "Esc or ? to close",
        ],
    );
}

#[test]
fn disconnected_status() {
    let mut app = signed_in();
    answer(&mut app, ApiEvent::Health(false));
    assert_shows(
        &screen(&app),
        &["○ Server unreachable │ Alice Clerk · Corner Bakery │ ? keys · q quit"],
    );
    let fresh = App::new("http://127.0.0.1:3000");
    assert_shows(&screen(&fresh), &["◌ Checking server…"]);
}

#[test]
fn enrol_confirmation_and_new_member() {
    let mut app = signed_in();
    type_text(&mut app, "n");
    assert_shows(
        &screen(&app),
        &["Enrol a new member (MBR-)?", "Enter yes · Esc no"],
    );
    press(&mut app, KeyCode::Enter);
    assert_shows(&screen(&app), &["Enrolling a new member…"]);
    answer(&mut app, ApiEvent::Enrolled(Ok(member("MBR-NEW23456", 0))));
    assert_shows(
        &screen(&app),
        &[
            "✔ New member MBR-NEW23456 enrolled: hand over their pass.",
            "Pass     MBR-NEW23456  enrolled at the counter",
        ],
    );
}

#[test]
fn every_screen_survives_small_and_large_terminals() {
    let mut with_retry = with_member(100);
    timed_out_redeem(&mut with_retry, "30");
    let mut help = signed_in();
    type_text(&mut help, "?");
    for app in [
        App::new("http://127.0.0.1:3000"),
        signed_in(),
        with_member(100),
        with_retry,
        help,
    ] {
        for (width, height) in [(80, 24), (40, 12), (20, 6), (200, 60), (1, 1)] {
            let screen = screen_at(&app, width, height);
            assert_eq!(screen.lines().count(), usize::from(height));
        }
        assert_shows(&screen_at(&app, 120, 40), &["Loyalty counter"]);
    }
}
