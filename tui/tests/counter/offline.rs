//! The counter while the server cannot be reached: earns queued in the journal, what needs the server refused,
//! and the queue sent in order once the server is back.

use chrono::Utc;
use crossterm::event::KeyCode;
use loyalty_core::LoyaltyError;
use loyalty_core::code::claim_code_from_body;
use loyalty_core::wire::TxType;
use tui::app::{App, Command, MemberPanel, Prompt, Tone};
use tui::event::{ApiEvent, Attempt, Event};
use tui::journal::{Backlog, QueuedEarn, Record};

use crate::support::*;

fn unreachable() -> LoyaltyError {
    LoyaltyError::Network {
        detail: "no connection could be made".to_owned(),
    }
}

/// Signed in, then the server stopped answering its health check.
fn offline() -> App {
    let mut app = signed_in();
    answer(&mut app, ApiEvent::Health(false));
    assert!(app.offline());
    app
}

/// Offline, with a member's pass typed in.
fn offline_with_pass(pass: &str) -> App {
    let mut app = offline();
    type_text(&mut app, pass);
    let commands = press(&mut app, KeyCode::Enter);
    assert!(
        !commands.iter().any(|c| matches!(c, Command::Scan { .. })),
        "no lookup is sent while offline: {commands:?}"
    );
    app
}

/// Presses e, types the amount and confirms: the record the state asks the journal for.
fn queue(app: &mut App, amount: &str) -> QueuedEarn {
    type_text(app, "e");
    type_text(app, amount);
    press(app, KeyCode::Enter);
    match press(app, KeyCode::Enter).as_slice() {
        [Command::Record(Record::Queued(earn))] => earn.clone(),
        other => panic!("expected the earn for the journal, got {other:?}"),
    }
}

/// The journal's answer that the record is on disk.
fn written(app: &mut App, record: Record) -> Vec<Command> {
    app.update(Event::Recorded {
        record,
        result: Ok(()),
    })
}

/// Three earns queued for the member, on disk.
fn three_queued() -> (App, Vec<QueuedEarn>) {
    let mut app = offline_with_pass(MEMBER_ID);
    let earns: Vec<QueuedEarn> = ["10", "20", "30"]
        .into_iter()
        .map(|amount| {
            let earn = queue(&mut app, amount);
            written(&mut app, Record::Queued(earn.clone()));
            earn
        })
        .collect();
    (app, earns)
}

#[test]
fn an_earn_taken_offline_is_queued_only_once_it_is_on_disk() {
    let mut app = offline_with_pass(MEMBER_ID);
    assert_eq!(
        app.counter.panel,
        MemberPanel::Offline {
            external_id: MEMBER_ID.to_owned(),
            postcard: false
        }
    );
    let before = Utc::now();
    let earn = queue(&mut app, "50");
    assert_eq!((earn.external_id.as_str(), earn.points), (MEMBER_ID, 50));
    assert!(earn.sold_at >= before && earn.sold_at <= Utc::now());
    assert_eq!(
        (earn.staff_email.as_str(), earn.staff_name.as_str()),
        ("alice@example.com", "Alice Clerk")
    );
    assert_eq!(
        app.queue.waiting(),
        0,
        "not queued before the journal says so"
    );
    assert_ne!(notice(&app).0, Tone::Success);

    assert!(written(&mut app, Record::Queued(earn.clone())).is_empty());
    assert_eq!(app.queue.backlog.waiting, vec![earn]);
    assert_eq!(
        notice(&app),
        (
            Tone::Success,
            "Queued: Earn 50 points for MBR-ABCD2345XY, sent when the server is back (1 earn waiting)."
        )
    );
    assert_eq!(app.counter.prompt, Prompt::Scan);
}

#[test]
fn an_earn_the_server_did_not_answer_is_queued_under_the_key_it_was_sent_with() {
    for failure in [unreachable(), LoyaltyError::Unavailable] {
        let mut app = with_member(100);
        let sent = confirm_points(&mut app, 'e', "50");
        let commands = answer(
            &mut app,
            ApiEvent::Points {
                request: sent.clone(),
                attempt: Attempt::First,
                result: Err(failure.clone()),
            },
        );
        let [Command::Record(Record::Queued(earn))] = commands.as_slice() else {
            panic!("{failure:?}: expected the earn for the journal, got {commands:?}");
        };
        assert_eq!(earn.idempotency_key, sent.idempotency_key, "{failure:?}");
        assert_eq!(earn.request().idempotency_key, sent.idempotency_key);
        assert_eq!(app.counter.points, None, "not left to retry by hand");
        assert!(app.offline());
        written(&mut app, Record::Queued(earn.clone()));
        assert_eq!(app.queue.waiting(), 1);
    }
}

#[test]
fn an_earn_the_journal_could_not_keep_is_left_to_send_again_or_drop() {
    let mut app = offline_with_pass(MEMBER_ID);
    let earn = queue(&mut app, "50");
    app.update(Event::Recorded {
        record: Record::Queued(earn.clone()),
        result: Err("/var/lib/till/journal: No space left on device".to_owned()),
    });
    assert_eq!(app.queue.waiting(), 0);
    assert_eq!(
        notice(&app),
        (
            Tone::Error,
            "The earn could not be written to the journal (/var/lib/till/journal: No space left on device), \
             so it is not queued: t sends it when the server is back, x drops it."
        )
    );
    let unanswered = app.counter.unanswered().expect("left unanswered");
    assert_eq!(unanswered.request, earn.request());
}

#[test]
fn what_needs_the_server_is_refused_offline_and_the_server_is_checked_at_once() {
    let mut app = offline_with_pass(MEMBER_ID);
    answer(&mut app, ApiEvent::Health(false));
    let checks = |commands: &[Command]| commands.contains(&Command::CheckHealth);
    let commands = type_text(&mut app, "r");
    assert_eq!(app.counter.prompt, Prompt::Scan);
    assert_eq!(
        notice(&app),
        (
            Tone::Warning,
            "Offline: a redeem needs the server, which cannot be reached. Earns are queued; try this again when \
             it is back."
        )
    );
    assert!(checks(&commands), "{commands:?}");
    answer(&mut app, ApiEvent::Health(false));
    let commands = type_text(&mut app, "n");
    assert_eq!(app.counter.prompt, Prompt::Scan);
    assert!(
        notice(&app)
            .1
            .starts_with("Offline: enrolling a member needs the server")
    );
    assert!(checks(&commands));
}

#[test]
fn a_postcard_scanned_offline_is_not_claimed_and_says_when_it_will_be() {
    let code = claim_code_from_body("7KQ2M9XRT4PB");
    let app = offline_with_pass(&code);
    assert_eq!(
        app.counter.panel,
        MemberPanel::Offline {
            external_id: code.clone(),
            postcard: true
        }
    );
    let (tone, text) = notice(&app);
    assert_eq!(tone, Tone::Warning);
    assert!(
        text.ends_with(
            "A new postcard is claimed only then: scan it again when the server is back."
        ),
        "{text}"
    );
}

#[test]
fn a_phone_number_typed_offline_or_met_by_an_outage_finds_nobody_and_opens_no_pass() {
    let mut app = offline();
    type_text(&mut app, "06 12 34 48 21");
    let commands = press(&mut app, KeyCode::Enter);
    assert!(
        !commands.iter().any(|c| matches!(c, Command::Scan { .. })),
        "{commands:?}"
    );
    assert_eq!(app.counter.panel, MemberPanel::Empty);
    assert_eq!(
        notice(&app),
        (
            Tone::Warning,
            "Offline: members cannot be found by phone or email now. Scan their pass instead."
        )
    );

    let mut app = signed_in();
    type_text(&mut app, "f");
    type_text(&mut app, "ada@example.com");
    let commands = press(&mut app, KeyCode::Enter);
    assert!(
        commands.contains(&Command::Scan {
            code: "ada@example.com".to_owned()
        }),
        "sent as typed: {commands:?}"
    );
    answer(
        &mut app,
        ApiEvent::Scanned {
            code: "ada@example.com".to_owned(),
            result: Err(unreachable()),
        },
    );
    assert_eq!(app.counter.panel, MemberPanel::Empty);
    assert_eq!(app.counter.pass(), None, "no pass to queue earns for");
}

#[test]
fn a_scan_that_finds_the_server_gone_opens_the_pass_for_queued_earns() {
    let mut app = signed_in();
    type_text(&mut app, MEMBER_ID);
    press(&mut app, KeyCode::Enter);
    answer(
        &mut app,
        ApiEvent::Scanned {
            code: MEMBER_ID.to_owned(),
            result: Err(unreachable()),
        },
    );
    assert!(app.offline());
    assert_eq!(app.counter.pass(), Some(MEMBER_ID));
    assert_eq!(app.waiting(), None);
    queue(&mut app, "5");
}

#[test]
fn the_queue_is_sent_in_order_once_the_server_is_back_each_under_its_own_key() {
    let (mut app, earns) = three_queued();
    assert!(
        (0..40)
            .flat_map(|_| app.update(Event::Tick))
            .all(|c| c == Command::CheckHealth),
        "nothing is sent while the server is away"
    );
    let mut sent = Vec::new();
    let mut commands = answer(&mut app, ApiEvent::Health(true));
    for (n, earn) in earns.iter().enumerate() {
        assert_eq!(commands, vec![Command::Replay(earn.clone())], "earn {n}");
        assert_eq!(app.queue.sending, Some(earn.idempotency_key));
        assert!(type_text(&mut app, "?").is_empty(), "one at a time");
        type_text(&mut app, "?");
        let replayed = n == 0;
        commands = answer(
            &mut app,
            ApiEvent::Replayed {
                earn: earn.clone(),
                result: Ok(receipt(TxType::Earn, earn.points, 100, replayed)),
            },
        );
        let Some(Command::Record(record)) = commands.first().cloned() else {
            panic!("expected the journal to hear of it, got {commands:?}");
        };
        assert_eq!(
            record,
            Record::Applied {
                idempotency_key: earn.idempotency_key,
                transaction_id: 7,
                new_balance: 100,
                replayed
            }
        );
        sent.push(record.clone());
        commands.remove(0);
        commands.extend(written(&mut app, record));
    }
    assert!(commands.is_empty(), "{commands:?}");
    assert_eq!(app.queue.backlog, Backlog::default());
    assert_eq!(
        notice(&app),
        (
            Tone::Success,
            "The server is back: the queue is sent (3 earns). 1 earn had gone through before the outage: not \
             applied again."
        )
    );
}

#[test]
fn nothing_is_sent_before_someone_signs_in_and_a_lost_session_pauses_the_queue() {
    let backlog = Backlog {
        waiting: three_queued().1,
        refused: Vec::new(),
    };
    let mut app = App::new("http://127.0.0.1:3000").with_journal("till-2", backlog.clone(), false);
    assert_eq!(
        notice(&app),
        (
            Tone::Info,
            "3 earns waiting from before: sent once someone is signed in and the server answers."
        )
    );
    assert!(
        answer(&mut app, ApiEvent::Health(true)).is_empty(),
        "nobody signed in"
    );
    let commands = answer(&mut app, ApiEvent::SignedIn(Ok(session())));
    assert_eq!(
        commands,
        vec![
            Command::LoadRewards,
            Command::Replay(backlog.waiting[0].clone())
        ]
    );

    let commands = answer(
        &mut app,
        ApiEvent::Replayed {
            earn: backlog.waiting[0].clone(),
            result: Err(LoyaltyError::NotSignedIn),
        },
    );
    assert!(commands.is_empty());
    assert_eq!(app.session, None, "the clerk signs in again");
    assert_eq!(app.queue.waiting(), 3, "nothing dropped");
    let commands = answer(&mut app, ApiEvent::SignedIn(Ok(session())));
    assert_eq!(
        commands,
        vec![
            Command::LoadRewards,
            Command::Replay(backlog.waiting[0].clone())
        ],
        "and the queue goes on where it stopped"
    );
}

#[test]
fn a_queue_that_finds_the_server_gone_again_waits_for_it_and_goes_on() {
    let (mut app, earns) = three_queued();
    answer(&mut app, ApiEvent::Health(true));
    let commands = answer(
        &mut app,
        ApiEvent::Replayed {
            earn: earns[0].clone(),
            result: Err(unreachable()),
        },
    );
    assert!(commands.is_empty());
    assert!(app.offline());
    assert_eq!(app.queue.waiting(), 3);
    assert_eq!(
        answer(&mut app, ApiEvent::Health(true)),
        vec![Command::Replay(earns[0].clone())]
    );
    // A server that fails (it may have applied it) or throttles: the same earn waits for the next check.
    for failure in [
        LoyaltyError::Internal,
        LoyaltyError::Throttled {
            retry_after_secs: 3,
        },
    ] {
        let commands = answer(
            &mut app,
            ApiEvent::Replayed {
                earn: earns[0].clone(),
                result: Err(failure.clone()),
            },
        );
        assert!(commands.is_empty(), "{failure:?}: {commands:?}");
        assert!(
            app.update(Event::Tick)
                .iter()
                .all(|c| *c == Command::CheckHealth)
        );
        assert_eq!(
            answer(&mut app, ApiEvent::Health(true)),
            vec![Command::Replay(earns[0].clone())],
            "{failure:?}"
        );
    }
}

#[test]
fn an_earn_the_server_refuses_is_listed_until_the_clerk_has_dealt_with_it() {
    let (mut app, earns) = three_queued();
    answer(&mut app, ApiEvent::Health(true));
    let commands = answer(
        &mut app,
        ApiEvent::Replayed {
            earn: earns[0].clone(),
            result: Err(LoyaltyError::MemberNotFound),
        },
    );
    let refused = Record::Refused {
        idempotency_key: earns[0].idempotency_key,
        error: LoyaltyError::MemberNotFound,
    };
    assert_eq!(
        commands,
        vec![Command::Record(refused), Command::Replay(earns[1].clone())],
        "the next one goes on"
    );
    assert_eq!(app.queue.backlog.refused.len(), 1);
    assert_eq!(
        notice(&app),
        (
            Tone::Warning,
            "The server refused a queued earn, earn 10 points for MBR-ABCD2345XY: No member with this pass in \
             this program. It is listed: d once dealt with."
        )
    );
    assert_eq!(
        type_text(&mut app, "d"),
        vec![Command::Record(Record::Dismissed {
            idempotency_key: earns[0].idempotency_key
        })]
    );
    assert!(app.queue.backlog.refused.is_empty());
    assert!(
        type_text(&mut app, "d").is_empty(),
        "nothing left to deal with"
    );
}

#[test]
fn while_the_server_is_away_its_checks_back_off_to_sixteen_seconds() {
    let mut app = offline();
    let mut gaps = Vec::new();
    let mut since = 0;
    for _ in 0..200 {
        since += 1;
        if app.update(Event::Tick).contains(&Command::CheckHealth) {
            gaps.push(since);
            since = 0;
            answer(&mut app, ApiEvent::Health(false));
        }
    }
    assert_eq!(
        &gaps[..6],
        &[2, 4, 8, 16, 32, 32],
        "in ticks of half a second"
    );
    answer(&mut app, ApiEvent::Health(true));
    let checks = (0..12)
        .filter(|_| {
            let check = app.update(Event::Tick).contains(&Command::CheckHealth);
            if check {
                answer(&mut app, ApiEvent::Health(true));
            }
            check
        })
        .count();
    assert_eq!(checks, 2, "every three seconds again once it answers");
}

#[test]
fn offline_screens_say_what_waits_and_what_was_refused() {
    let (mut app, earns) = three_queued();
    let screen_offline = screen(&app);
    assert_shows(
        &screen_offline,
        &[
            "Pass     MBR-ABCD2345XY  not looked up: the server cannot be reached",
            "Balance  known again when the server is back",
            "e earn (queued)",
            "Queued for this pass",
            "Earn         +10  Alice Clerk",
            "Earn         +30  Alice Clerk",
            "○ Offline: 3 earns waiting │ Alice Clerk · Corner Bakery",
        ],
    );
    type_text(&mut app, "e");
    type_text(&mut app, "5");
    press(&mut app, KeyCode::Enter);
    assert_shows(
        &screen(&app),
        &[
            "Earn 5 points for MBR-ABCD2345XY?",
            "Enter queue it until the server is back",
        ],
    );
    press(&mut app, KeyCode::Esc);

    answer(&mut app, ApiEvent::Health(true));
    assert_shows(&screen(&app), &["● Sending 3 earns waiting…"]);
    answer(
        &mut app,
        ApiEvent::Replayed {
            earn: earns[0].clone(),
            result: Err(LoyaltyError::SaleTooOld { limit_days: 7 }),
        },
    );
    let with_refusal = screen(&app);
    assert_shows(
        &with_refusal,
        &[
            "Refused when sent",
            "Earn 10 points for MBR-ABCD2345XY, taken",
            "This sale is more than 7 days old: too late to earn points for it.",
            "d dealt with the first",
            "● Sending 2 earns waiting… │ 1 earn refused │",
        ],
    );
    for (width, height) in [(40, 12), (20, 6), (200, 60), (1, 1)] {
        assert_eq!(
            screen_at(&app, width, height).lines().count(),
            usize::from(height)
        );
    }
    type_text(&mut app, "?");
    assert_shows(
        &screen(&app),
        &["mark the first refused queued earn dealt with"],
    );
}

#[test]
fn the_sign_in_screen_counts_the_earns_waiting_and_a_torn_journal_line_is_told() {
    let waiting = three_queued().1;
    let mut app = App::new("http://127.0.0.1:3000").with_journal(
        "till-2",
        Backlog {
            waiting,
            refused: Vec::new(),
        },
        true,
    );
    assert_eq!(
        notice(&app),
        (
            Tone::Warning,
            "The journal's last line was cut off when the terminal stopped while writing it: that earn was never \
             confirmed as queued, and is left out."
        )
    );
    answer(&mut app, ApiEvent::Health(true));
    assert_shows(
        &screen(&app),
        &["● Server online: 3 earns waiting │ Not signed in"],
    );
    answer(&mut app, ApiEvent::Health(false));
    assert_shows(
        &screen(&app),
        &["○ Offline: 3 earns waiting │ Not signed in"],
    );
}

#[test]
fn only_the_earn_out_is_queued_never_a_late_answer_to_one_already_settled() {
    let mut app = with_member(100);
    let sent = confirm_points(&mut app, 'e', "50");
    let lost = ApiEvent::Points {
        request: sent.clone(),
        attempt: Attempt::First,
        result: Err(unreachable()),
    };
    assert_eq!(answer(&mut app, lost.clone()).len(), 1, "queued once");
    let again = answer(&mut app, lost);
    assert!(
        !again.iter().any(|c| matches!(c, Command::Record(_))),
        "{again:?}"
    );
}
