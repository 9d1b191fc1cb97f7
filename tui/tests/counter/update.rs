//! Key events and the server's answers, into state and requests: no terminal, no network.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyEventState, KeyModifiers};
use loyalty_core::LoyaltyError;
use loyalty_core::code::claim_code_from_body;
use loyalty_core::wire::{ScanOutcome, TxType};
use tui::app::{App, Command, Ledger, MemberPanel, PendingPoints, Prompt, SignInField, Tone};
use tui::event::{ApiEvent, Attempt, Event};

use crate::support::*;

fn timed_out() -> LoyaltyError {
    LoyaltyError::Network {
        detail: "no answer within 5 seconds".to_owned(),
    }
}

#[test]
fn signing_in_sends_the_typed_email_and_password() {
    let mut app = App::new("http://127.0.0.1:3000");
    type_text(&mut app, "alice@example.com");
    assert_eq!(app.sign_in.focus, SignInField::Email);
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(app.sign_in.focus, SignInField::Password);
    type_text(&mut app, "s3cret?q");
    press(&mut app, KeyCode::Backspace);
    let commands = press(&mut app, KeyCode::Enter);
    assert_eq!(
        commands,
        vec![Command::SignIn {
            email: "alice@example.com".to_owned(),
            password: "s3cret?".to_owned(),
        }]
    );
    assert!(app.signing_in());
    assert!(
        press(&mut app, KeyCode::Enter).is_empty(),
        "no second sign-in while one is out"
    );
}

#[test]
fn an_empty_password_is_not_sent() {
    let mut app = App::new("http://127.0.0.1:3000");
    type_text(&mut app, "alice@example.com");
    press(&mut app, KeyCode::Tab);
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(
        notice(&app),
        (Tone::Error, "Enter your email and your password.")
    );
}

#[test]
fn a_refused_sign_in_says_why_and_clears_the_password() {
    let mut app = App::new("http://127.0.0.1:3000");
    type_text(&mut app, "alice@example.com");
    press(&mut app, KeyCode::Enter);
    type_text(&mut app, "wrong");
    press(&mut app, KeyCode::Enter);
    answer(
        &mut app,
        ApiEvent::SignedIn(Err(LoyaltyError::BadCredentials)),
    );
    assert!(app.session.is_none());
    assert!(!app.signing_in());
    assert_eq!(app.sign_in.email, "alice@example.com");
    assert_eq!(app.sign_in.password, "");
    assert_eq!(
        notice(&app),
        (Tone::Error, "That email and password do not match.")
    );
}

#[test]
fn signing_in_opens_the_counter() {
    let app = signed_in();
    assert_eq!(app.session, Some(session()));
    assert_eq!(app.counter.prompt, Prompt::Scan);
    assert_eq!(app.sign_in.password, "");
    assert_eq!(
        notice(&app),
        (Tone::Success, "Signed in as Alice Clerk at Corner Bakery.")
    );
}

#[test]
fn a_scanned_code_is_read_and_sent_in_capitals() {
    let mut app = signed_in();
    let code = claim_code_from_body("7KQ2M9XRT4PB");
    assert!(type_text(&mut app, &code.to_ascii_lowercase()).is_empty());
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        vec![Command::Scan { code: code.clone() }]
    );
    assert_eq!(app.counter.input, "");
    assert_eq!(app.waiting(), Some(format!("Looking up {code}…")));
}

#[test]
fn garbage_and_typos_never_reach_the_server() {
    let mut app = signed_in();
    type_text(&mut app, "hello-world");
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(
        notice(&app),
        (
            Tone::Error,
            "That is not a code we recognise. Scan it again or type it carefully."
        )
    );
    let code = claim_code_from_body("7KQ2M9XRT4PB");
    let typo = code.replace('7', "8");
    type_text(&mut app, &typo);
    assert!(press(&mut app, KeyCode::Enter).is_empty());
    assert_eq!(
        notice(&app),
        (
            Tone::Error,
            "This postcard code has a typo: check each character and try again."
        )
    );
}

#[test]
fn a_claimed_postcard_shows_the_new_member_and_loads_their_ledger() {
    let mut app = signed_in();
    let code = claim_code_from_body("7KQ2M9XRT4PB");
    type_text(&mut app, &code);
    press(&mut app, KeyCode::Enter);
    let commands = answer(
        &mut app,
        ApiEvent::Scanned {
            code: code.clone(),
            result: Ok(ScanOutcome::Claimed {
                code: code.clone(),
                member: member(&code, 0),
            }),
        },
    );
    assert_eq!(
        commands,
        vec![Command::LoadMember {
            external_id: code.clone()
        }]
    );
    assert_eq!(
        app.counter.panel,
        MemberPanel::Shown {
            member: member(&code, 0),
            ledger: Ledger::Loading,
            expiry: None,
        }
    );
    assert_eq!(app.waiting(), None);
    assert_eq!(
        notice(&app),
        (
            Tone::Success,
            format!("Postcard {code} claimed: new member {code}.").as_str()
        )
    );
}

#[test]
fn a_new_scan_takes_the_previous_member_off_the_screen() {
    let mut app = with_member(150);
    type_text(&mut app, "MBR-ZZZZ9999");
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        app.counter.member(),
        None,
        "while the next pass is looked up"
    );
    answer(
        &mut app,
        ApiEvent::Scanned {
            code: "MBR-ZZZZ9999".to_owned(),
            result: Err(LoyaltyError::MemberNotFound),
        },
    );
    assert_eq!(app.counter.member(), None);
    assert_eq!(
        notice(&app),
        (Tone::Error, "No member with this pass in this program.")
    );
    assert!(
        type_text(&mut app, "e").is_empty() && app.counter.prompt == Prompt::Scan,
        "nobody to earn for"
    );
}

#[test]
fn earning_asks_the_amount_then_confirmation_then_sends_a_fresh_key() {
    let mut app = with_member(100);
    type_text(&mut app, "e");
    assert_eq!(app.counter.prompt, Prompt::Amount(TxType::Earn));
    type_text(&mut app, "50");
    press(&mut app, KeyCode::Enter);
    let Prompt::ConfirmPoints(asked) = app.counter.prompt.clone() else {
        panic!("expected a confirmation, got {:?}", app.counter.prompt);
    };
    assert_eq!(
        (asked.tx_type, asked.external_id.as_str(), asked.points),
        (TxType::Earn, MEMBER_ID, 50)
    );
    let sent = match press(&mut app, KeyCode::Enter).as_slice() {
        [Command::Points { request, attempt }] => {
            assert_eq!(*attempt, Attempt::First);
            request.clone()
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(sent, asked, "the confirmed request is the one sent");
    assert_eq!(
        app.counter.points,
        Some(PendingPoints::Sending(sent.clone()))
    );
    assert_eq!(app.counter.prompt, Prompt::Scan);

    let next = confirm_points(&mut with_member(100), 'e', "50");
    assert_ne!(
        next.idempotency_key, sent.idempotency_key,
        "a new attempt is a new key"
    );
}

#[test]
fn a_receipt_shows_the_new_balance_and_reloads_the_ledger() {
    let mut app = with_member(100);
    let request = confirm_points(&mut app, 'r', "30");
    assert_eq!(request.tx_type, TxType::Redeem);
    let commands = answer(
        &mut app,
        ApiEvent::Points {
            request,
            attempt: Attempt::First,
            result: Ok(receipt(TxType::Redeem, 30, 70, false)),
        },
    );
    assert_eq!(
        commands,
        vec![Command::LoadMember {
            external_id: MEMBER_ID.to_owned()
        }]
    );
    assert_eq!(app.counter.member().map(|m| m.points), Some(70));
    assert_eq!(app.counter.points, None);
    assert_eq!(app.waiting(), None);
    assert_eq!(
        notice(&app),
        (
            Tone::Success,
            "30 points redeemed for MBR-ABCD2345XY: new balance 70 points."
        )
    );
}

#[test]
fn amounts_outside_the_allowed_range_are_refused_at_the_counter() {
    for amount in ["0", "1000001"] {
        let mut app = with_member(100);
        type_text(&mut app, "e");
        type_text(&mut app, amount);
        assert!(press(&mut app, KeyCode::Enter).is_empty());
        assert_eq!(app.counter.prompt, Prompt::Amount(TxType::Earn), "{amount}");
        assert_eq!(
            notice(&app),
            (
                Tone::Error,
                "Enter a whole number of points from 1 to 1,000,000."
            )
        );
    }
}

#[test]
fn a_scan_during_the_amount_prompt_goes_to_the_scan_line() {
    let mut app = with_member(100);
    type_text(&mut app, "e5");
    type_text(&mut app, "MBR-ZZZZ9999");
    assert_eq!(app.counter.prompt, Prompt::Scan);
    assert_eq!(app.counter.input, "MBR-ZZZZ9999");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        vec![Command::Scan {
            code: "MBR-ZZZZ9999".to_owned()
        }]
    );
}

#[test]
fn escape_cancels_a_confirmation_without_sending() {
    let mut app = with_member(100);
    type_text(&mut app, "e");
    type_text(&mut app, "20");
    press(&mut app, KeyCode::Enter);
    assert!(press(&mut app, KeyCode::Esc).is_empty());
    assert_eq!(app.counter.prompt, Prompt::Scan);
    assert_eq!(app.counter.points, None);
    assert_eq!(notice(&app), (Tone::Info, "Cancelled: nothing was sent."));
}

#[test]
fn the_servers_refusals_are_shown_in_its_own_words() {
    let mut app = with_member(40);
    let request = confirm_points(&mut app, 'r', "50");
    answer(
        &mut app,
        ApiEvent::Points {
            request,
            attempt: Attempt::First,
            result: Err(LoyaltyError::InsufficientFunds { balance: 40 }),
        },
    );
    assert_eq!(
        notice(&app),
        (Tone::Error, "Not enough points: the balance is 40 points.")
    );
    assert_eq!(app.counter.points, None, "a refusal is an answer");
    assert_eq!(app.counter.member().map(|m| m.points), Some(40));

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
    assert_eq!(
        notice(&app),
        (
            Tone::Error,
            "This postcard has already been claimed on 3 Nov 2026."
        )
    );
}

#[test]
fn a_timed_out_redeem_is_retried_with_the_same_key_by_one_key() {
    let mut app = with_member(100);
    let first = confirm_points(&mut app, 'r', "30");
    answer(
        &mut app,
        ApiEvent::Points {
            request: first.clone(),
            attempt: Attempt::First,
            result: Err(timed_out()),
        },
    );
    let pending = app
        .counter
        .unanswered()
        .cloned()
        .expect("the redeem is unanswered");
    assert_eq!(pending.request, first);
    assert_eq!(pending.detail, "no answer within 5 seconds");
    assert_eq!(app.health.reachable, Some(false));
    assert_eq!(notice(&app).0, Tone::Warning);

    let retry = type_text(&mut app, "t");
    assert_eq!(
        retry,
        vec![Command::Points {
            request: first.clone(),
            attempt: Attempt::Retry
        }]
    );
    assert!(
        type_text(&mut app, "t").is_empty(),
        "no second copy while the retry is out"
    );
    answer(
        &mut app,
        ApiEvent::Points {
            request: first.clone(),
            attempt: Attempt::Retry,
            result: Ok(receipt(TxType::Redeem, 30, 70, true)),
        },
    );
    assert_eq!(app.counter.unanswered(), None);
    assert_eq!(app.counter.member().map(|m| m.points), Some(70));
    assert_eq!(
        notice(&app),
        (
            Tone::Success,
            "The first attempt had gone through: 30 points redeemed for MBR-ABCD2345XY, once. Balance 70 points."
        )
    );
}

#[test]
fn f5_retries_too_and_says_when_the_first_attempt_had_not_gone_through() {
    let mut app = with_member(100);
    let first = confirm_points(&mut app, 'r', "30");
    answer(
        &mut app,
        ApiEvent::Points {
            request: first.clone(),
            attempt: Attempt::First,
            result: Err(timed_out()),
        },
    );
    // F5 works even with something on the scan line.
    type_text(&mut app, "MBR");
    assert_eq!(
        press(&mut app, KeyCode::F(5)),
        vec![Command::Points {
            request: first.clone(),
            attempt: Attempt::Retry
        }]
    );
    answer(
        &mut app,
        ApiEvent::Points {
            request: first,
            attempt: Attempt::Retry,
            result: Ok(receipt(TxType::Redeem, 30, 70, false)),
        },
    );
    assert_eq!(
        notice(&app),
        (
            Tone::Success,
            "The first attempt had not gone through; now 30 points redeemed for MBR-ABCD2345XY: new balance 70 points."
        )
    );
}

#[test]
fn a_retry_that_times_out_again_stays_ready_to_retry() {
    let mut app = with_member(100);
    let first = confirm_points(&mut app, 'r', "30");
    for attempt in [Attempt::First, Attempt::Retry] {
        answer(
            &mut app,
            ApiEvent::Points {
                request: first.clone(),
                attempt,
                result: Err(timed_out()),
            },
        );
        assert_eq!(app.counter.unanswered().map(|u| &u.request), Some(&first));
        assert_eq!(
            type_text(&mut app, "t"),
            vec![Command::Points {
                request: first.clone(),
                attempt: Attempt::Retry
            }]
        );
    }
}

#[test]
fn a_session_lost_during_a_retry_keeps_the_request_to_retry_after_signing_in() {
    let mut app = with_member(100);
    let first = confirm_points(&mut app, 'r', "30");
    answer(
        &mut app,
        ApiEvent::Points {
            request: first.clone(),
            attempt: Attempt::First,
            result: Err(timed_out()),
        },
    );
    type_text(&mut app, "t");
    answer(
        &mut app,
        ApiEvent::Points {
            request: first.clone(),
            attempt: Attempt::Retry,
            result: Err(LoyaltyError::NotSignedIn),
        },
    );
    assert_eq!(app.session, None, "back to the sign-in screen");
    assert_eq!(notice(&app), (Tone::Error, "Please sign in."));
    answer(&mut app, ApiEvent::SignedIn(Ok(session())));
    assert_eq!(
        type_text(&mut app, "t"),
        vec![Command::Points {
            request: first,
            attempt: Attempt::Retry
        }]
    );
}

#[test]
fn no_new_earn_starts_while_a_redeem_is_unanswered_until_it_is_dropped() {
    let mut app = with_member(100);
    let first = confirm_points(&mut app, 'r', "30");
    answer(
        &mut app,
        ApiEvent::Points {
            request: first,
            attempt: Attempt::First,
            result: Err(timed_out()),
        },
    );
    type_text(&mut app, "e");
    assert_eq!(app.counter.prompt, Prompt::Scan);
    assert_eq!(
        notice(&app),
        (
            Tone::Warning,
            "First settle the unanswered request: t sends it again (never twice), x drops it."
        )
    );
    type_text(&mut app, "x");
    assert_eq!(app.counter.unanswered(), None);
    type_text(&mut app, "e");
    assert_eq!(app.counter.prompt, Prompt::Amount(TxType::Earn));
}

#[test]
fn enrolling_asks_first_then_shows_the_new_member() {
    let mut app = signed_in();
    assert!(type_text(&mut app, "n").is_empty());
    assert_eq!(app.counter.prompt, Prompt::ConfirmEnrol);
    assert_eq!(press(&mut app, KeyCode::Enter), vec![Command::Enrol]);
    let commands = answer(&mut app, ApiEvent::Enrolled(Ok(member("MBR-NEW23456", 0))));
    assert_eq!(
        commands,
        vec![Command::LoadMember {
            external_id: "MBR-NEW23456".to_owned()
        }]
    );
    assert_eq!(app.counter.member(), Some(&member("MBR-NEW23456", 0)));
    assert_eq!(
        notice(&app),
        (
            Tone::Success,
            "New member MBR-NEW23456 enrolled: hand over their pass."
        )
    );
}

#[test]
fn q_quits_only_from_an_empty_scan_line_and_ctrl_c_always() {
    let mut app = signed_in();
    type_text(&mut app, "MBR-");
    assert!(type_text(&mut app, "q").is_empty());
    assert_eq!(app.counter.input, "MBR-q");
    press(&mut app, KeyCode::Esc);
    assert_eq!(type_text(&mut app, "q"), vec![Command::Quit]);

    let mut signing_in = App::new("http://127.0.0.1:3000");
    assert!(type_text(&mut signing_in, "q").is_empty());
    assert_eq!(signing_in.sign_in.email, "q");
    assert_eq!(signing_in.update(ctrl('c')), vec![Command::Quit]);
}

#[test]
fn q_does_not_walk_away_from_an_unanswered_redeem() {
    let mut app = with_member(100);
    let first = confirm_points(&mut app, 'r', "30");
    assert!(type_text(&mut app, "q").is_empty(), "still out");
    answer(
        &mut app,
        ApiEvent::Points {
            request: first,
            attempt: Attempt::First,
            result: Err(timed_out()),
        },
    );
    assert!(type_text(&mut app, "q").is_empty(), "unanswered");
    assert_eq!(
        notice(&app),
        (
            Tone::Warning,
            "An earn or redeem is still unanswered: t sends it again, x drops it, then q quits."
        )
    );
    assert_eq!(app.update(ctrl('c')), vec![Command::Quit]);
    type_text(&mut app, "x");
    assert_eq!(type_text(&mut app, "q"), vec![Command::Quit]);
}

#[test]
fn key_releases_are_not_typing() {
    let mut app = signed_in();
    let release = KeyEvent {
        code: KeyCode::Char('M'),
        modifiers: KeyModifiers::NONE,
        kind: KeyEventKind::Release,
        state: KeyEventState::NONE,
    };
    app.update(Event::Key(release));
    assert_eq!(app.counter.input, "");
}

#[test]
fn question_mark_toggles_the_help_and_escape_closes_it() {
    let mut app = signed_in();
    type_text(&mut app, "?");
    assert!(app.counter.show_help);
    type_text(&mut app, "?");
    assert!(!app.counter.show_help);
    type_text(&mut app, "?");
    press(&mut app, KeyCode::Esc);
    assert!(!app.counter.show_help);
    type_text(&mut app, "?");
    type_text(&mut app, "M");
    assert!(!app.counter.show_help, "a scan closes the help");
    assert_eq!(app.counter.input, "M");
}

#[test]
fn the_server_is_checked_every_three_seconds_one_check_at_a_time() {
    let mut app = App::new("http://127.0.0.1:3000");
    assert_eq!(app.start(), vec![Command::CheckHealth]);
    let checks_while_out: usize = (0..12).map(|_| app.update(Event::Tick).len()).sum();
    assert_eq!(checks_while_out, 0, "the first check has not answered");
    answer(&mut app, ApiEvent::Health(false));
    assert_eq!(app.health.reachable, Some(false));
    let checks: Vec<Command> = (0..12).flat_map(|_| app.update(Event::Tick)).collect();
    assert_eq!(checks, vec![Command::CheckHealth]);
    answer(&mut app, ApiEvent::Health(true));
    assert_eq!(app.health.reachable, Some(true));
    let mut checks = 0;
    for _ in 0..12 {
        for command in app.update(Event::Tick) {
            assert_eq!(command, Command::CheckHealth);
            checks += 1;
            answer(&mut app, ApiEvent::Health(true));
        }
    }
    assert_eq!(checks, 2, "one every six ticks of half a second");
}

#[test]
fn a_lost_session_goes_back_to_signing_in_with_the_email_kept() {
    let mut app = signed_in();
    app.sign_in.email = "alice@example.com".to_owned();
    type_text(&mut app, "MBR-ABCD2345");
    press(&mut app, KeyCode::Enter);
    answer(
        &mut app,
        ApiEvent::Scanned {
            code: "MBR-ABCD2345".to_owned(),
            result: Err(LoyaltyError::NotSignedIn),
        },
    );
    assert_eq!(app.session, None);
    assert_eq!(app.sign_in.email, "alice@example.com");
    assert_eq!(app.sign_in.focus, SignInField::Password);
}
