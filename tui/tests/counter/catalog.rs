//! Sales and rewards at the counter: the amount of a sale typed, a reward by its key, and what the clerk reads.

use crossterm::event::KeyCode;
use loyalty_core::LoyaltyError;
use loyalty_core::wire::{Reward, TxType};
use tui::app::{App, Command, PendingPoints, Prompt, Tone, doing};
use tui::event::{ApiEvent, Attempt};

use crate::support::*;

fn catalog() -> Vec<Reward> {
    let reward = |id: i64, name: &str, points_cost: i64, stock: Option<i64>| Reward {
        id,
        name: name.to_owned(),
        points_cost,
        stock,
        daily_limit: None,
    };
    vec![
        reward(11, "Coffee", 100, None),
        reward(12, "Cake", 250, Some(0)),
    ]
}

fn with_catalog(points: i64) -> App {
    let mut app = with_member(points);
    answer(&mut app, ApiEvent::Rewards(Ok(catalog())));
    app
}

#[test]
fn signing_in_loads_the_catalog() {
    let mut app = App::new("http://127.0.0.1:3000");
    answer(&mut app, ApiEvent::Health(true));
    let commands = answer(&mut app, ApiEvent::SignedIn(Ok(session())));
    assert!(commands.contains(&Command::LoadRewards), "{commands:?}");
}

#[test]
fn a_sale_asks_its_amount_then_confirmation_and_sends_the_amount_as_typed() {
    let mut app = with_member(100);
    type_text(&mut app, "s");
    assert_eq!(app.counter.prompt, Prompt::Sale);
    assert_shows(
        &screen(&app),
        &["Record a sale for MBR-ABCD2345XY", "Sale amount:"],
    );
    type_text(&mut app, "12,50");
    press(&mut app, KeyCode::Enter);
    let Prompt::ConfirmPoints(asked) = app.counter.prompt.clone() else {
        panic!("expected a confirmation, got {:?}", app.counter.prompt);
    };
    assert_eq!(
        (
            asked.tx_type,
            asked.sale_amount.as_deref(),
            asked.reward.as_ref()
        ),
        (TxType::Earn, Some("12,50"), None)
    );
    assert_shows(
        &screen(&app),
        &["Record a sale of 12,50 for MBR-ABCD2345XY?"],
    );
    let sent = match press(&mut app, KeyCode::Enter).as_slice() {
        [Command::Points { request, attempt }] => {
            assert_eq!(*attempt, Attempt::First);
            request.clone()
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(sent, asked);
    let mut counted = receipt(TxType::Earn, 12, 112, false);
    counted.rule = Some("12.50 EUR -> 12 points, 1 point per 1.00 EUR".to_owned());
    answer(
        &mut app,
        ApiEvent::Points {
            request: sent,
            attempt: Attempt::First,
            result: Ok(counted),
        },
    );
    assert_eq!(
        notice(&app),
        (
            Tone::Success,
            "12 points earned for MBR-ABCD2345XY (12.50 EUR -> 12 points, 1 point per 1.00 EUR): new balance 112 points."
        )
    );
}

#[test]
fn a_sale_amount_that_is_not_one_never_leaves_the_counter() {
    for typed in ["", "12.", ".50", "1.2345", "1.2.3", "12,5,0"] {
        let mut app = with_member(100);
        type_text(&mut app, "s");
        type_text(&mut app, typed);
        let commands = press(&mut app, KeyCode::Enter);
        assert!(commands.is_empty(), "{typed:?}: {commands:?}");
        assert_eq!(app.counter.prompt, Prompt::Sale, "{typed:?}");
        assert_eq!(
            notice(&app),
            (Tone::Error, "Enter the sale's amount, like 12.50."),
            "{typed:?}"
        );
    }
}

#[test]
fn a_letter_during_a_sale_starts_a_scan() {
    let mut app = with_member(100);
    type_text(&mut app, "s12M");
    assert_eq!(app.counter.prompt, Prompt::Scan);
    assert_eq!(app.counter.input, "M");
}

#[test]
fn the_member_panel_lists_the_rewards_by_key() {
    let app = with_catalog(300);
    assert_shows(
        &screen(&app),
        &["Rewards  1 Coffee 100 · 2 Cake 250 (none left)", "s sale"],
    );
}

#[test]
fn a_reward_is_one_key_then_confirmation_and_names_the_reward() {
    let mut app = with_catalog(300);
    type_text(&mut app, "1");
    let Prompt::ConfirmPoints(asked) = app.counter.prompt.clone() else {
        panic!("expected a confirmation, got {:?}", app.counter.prompt);
    };
    assert_eq!(
        (
            asked.tx_type,
            asked.points,
            asked.reward.as_ref().map(|r| (r.id, r.name.as_str()))
        ),
        (TxType::Redeem, 100, Some((11, "Coffee")))
    );
    assert_eq!(doing(&asked), "Redeem Coffee (100 points)");
    assert_shows(
        &screen(&app),
        &["Redeem Coffee (100 points) for MBR-ABCD2345XY?"],
    );
    let sent = match press(&mut app, KeyCode::Enter).as_slice() {
        [Command::Points { request, .. }] => request.clone(),
        other => panic!("{other:?}"),
    };
    let mut redeemed = receipt(TxType::Redeem, 100, 200, false);
    redeemed.reward = Some("Coffee".to_owned());
    let commands = answer(
        &mut app,
        ApiEvent::Points {
            request: sent,
            attempt: Attempt::First,
            result: Ok(redeemed),
        },
    );
    assert_eq!(
        commands,
        vec![
            Command::LoadRewards,
            Command::LoadMember {
                external_id: MEMBER_ID.to_owned()
            }
        ],
        "the stock changed: the catalog is read again"
    );
    assert_eq!(
        notice(&app),
        (
            Tone::Success,
            "100 points redeemed for MBR-ABCD2345XY (Coffee): new balance 200 points."
        )
    );
}

#[test]
fn a_refused_reward_says_why_and_reads_the_catalog_again() {
    let mut app = with_catalog(300);
    type_text(&mut app, "2");
    let sent = match press(&mut app, KeyCode::Enter).as_slice() {
        [Command::Points { request, .. }] => request.clone(),
        other => panic!("{other:?}"),
    };
    let refusal = LoyaltyError::OutOfStock {
        reward: "Cake".to_owned(),
    };
    let commands = answer(
        &mut app,
        ApiEvent::Points {
            request: sent,
            attempt: Attempt::First,
            result: Err(refusal.clone()),
        },
    );
    assert_eq!(commands, vec![Command::LoadRewards]);
    assert_eq!(notice(&app), (Tone::Error, refusal.to_string().as_str()));
    assert_eq!(app.counter.points, None);
}

#[test]
fn a_key_with_no_reward_names_the_keys_there_are() {
    let mut app = with_catalog(300);
    let commands = type_text(&mut app, "7");
    assert_eq!(commands, vec![Command::LoadRewards]);
    assert_eq!(app.counter.prompt, Prompt::Scan);
    assert_eq!(
        notice(&app),
        (
            Tone::Info,
            "There is no reward 7. The program offers 2 rewards: press 1 to 2."
        )
    );
}

#[test]
fn offline_a_sale_is_queued_and_a_reward_is_refused() {
    let mut app = with_catalog(300);
    answer(&mut app, ApiEvent::Health(false));
    type_text(&mut app, "2");
    assert_eq!(app.counter.prompt, Prompt::Scan, "no reward offline");
    assert!(
        notice(&app)
            .1
            .starts_with("Offline: a reward needs the server")
    );
    type_text(&mut app, "s7.5");
    press(&mut app, KeyCode::Enter);
    let commands = press(&mut app, KeyCode::Enter);
    let [Command::Record(tui::journal::Record::Queued(queued))] = commands.as_slice() else {
        panic!("{commands:?}");
    };
    assert_eq!(queued.sale_amount.as_deref(), Some("7.5"));
    assert_eq!(app.counter.points, None::<PendingPoints>);
}

#[test]
fn points_typed_by_hand_take_a_reason_after_a_space() {
    let mut app = with_member(100);
    type_text(&mut app, "e");
    type_text(&mut app, "50 coffee machine broken, q e r 7");
    press(&mut app, KeyCode::Enter);
    let Prompt::ConfirmPoints(asked) = app.counter.prompt.clone() else {
        panic!("expected a confirmation, got {:?}", app.counter.prompt);
    };
    assert_eq!(
        (asked.points, asked.note.as_deref()),
        (50, Some("coffee machine broken, q e r 7"))
    );
    // Without a space, a letter still starts a scan.
    let mut app = with_member(100);
    type_text(&mut app, "r5M");
    assert_eq!(
        (app.counter.prompt.clone(), app.counter.input.as_str()),
        (Prompt::Scan, "M")
    );
}
