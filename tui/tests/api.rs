//! The client against the real server on a fresh database: every answer comes from the real thing.

#![allow(clippy::unwrap_used)]

#[path = "common/drive.rs"]
mod drive;

use std::sync::atomic::Ordering;
use std::time::Duration;

use crossterm::event::KeyCode;
use loyalty_core::LoyaltyError;
use loyalty_core::wire::{ScanOutcome, TxType};
use server::testkit::{TestServer, TestTls};
use tokio::net::TcpListener;
use tui::app::{App, Command};
use tui::client::{Client, PointsRequest, REQUEST_TIMEOUT};
use tui::event::{ApiEvent, Attempt, Event};

use crate::drive::{Proxy, notice, press, settle_with, type_text};

async fn signed_in(server: &TestServer) -> Client {
    let client = Client::new(&server.url).unwrap();
    client
        .sign_in(&server.clerk.email, &server.clerk.password)
        .await
        .unwrap();
    client
}

/// Runs the state's commands against the server until no more come, as the terminal's loop would.
async fn settle(app: &mut App, client: &Client, commands: Vec<Command>) {
    settle_with(app, client, None, commands).await;
}

/// A reward of `cost` points in the server's catalog, added by its manager: its name.
async fn coffee(server: &TestServer, cost: i64) -> &'static str {
    server::testkit::Till::sign_in(&server.db, &server.manager)
        .await
        .add_reward("Coffee", cost, None, None)
        .await
        .unwrap();
    "Coffee"
}

async fn claimed_at(server: &TestServer, code: &str) -> chrono::DateTime<chrono::Utc> {
    sqlx::query_scalar("select claimed_at from claim_codes where code = $1")
        .bind(code)
        .fetch_one(&server.db.owner)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_wrong_password_is_refused_in_the_servers_words() {
    let server = TestServer::start().await;
    let client = Client::new(&server.url).unwrap();
    let err = client
        .sign_in(&server.clerk.email, "not-the-password")
        .await
        .unwrap_err();
    assert_eq!(err, LoyaltyError::BadCredentials);
    assert_eq!(err.to_string(), "That email and password do not match.");
}

#[tokio::test]
async fn nothing_is_done_before_signing_in_and_after_signing_out() {
    let server = TestServer::start().await;
    let postcard = server.db.postcard().await;
    let client = Client::new(&server.url).unwrap();
    assert_eq!(
        client.scan(&postcard).await.unwrap_err(),
        LoyaltyError::NotSignedIn
    );
    let session = client
        .sign_in(&server.clerk.email, &server.clerk.password)
        .await
        .unwrap();
    assert_eq!(session.email, server.clerk.email);
    assert_eq!(client.me().await.unwrap(), session);
    client.sign_out().await.unwrap();
    assert_eq!(client.me().await.unwrap_err(), LoyaltyError::NotSignedIn);
    assert_eq!(
        client.scan(&postcard).await.unwrap_err(),
        LoyaltyError::NotSignedIn
    );
    let burned: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("select claimed_at from claim_codes where code = $1")
            .bind(&postcard)
            .fetch_one(&server.db.owner)
            .await
            .unwrap();
    assert_eq!(burned, None, "the postcard was never claimed");
}

/// The session's cookie goes with each request once signed in, and no longer once signing out has expired it.
#[tokio::test]
async fn the_session_cookie_is_kept_until_the_server_expires_it() {
    let server = TestServer::start().await;
    let proxy = Proxy::start(server.url.trim_start_matches("http://").parse().unwrap()).await;
    let client = Client::new(&proxy.url).unwrap();
    let sends_session = |sent: &str| {
        sent.to_ascii_lowercase()
            .contains("\r\ncookie: loyalty_session=")
    };
    client
        .sign_in(&server.clerk.email, &server.clerk.password)
        .await
        .unwrap();
    assert!(!sends_session(&proxy.take_sent()), "none before signing in");
    client.me().await.unwrap();
    assert!(sends_session(&proxy.take_sent()));
    client.sign_out().await.unwrap();
    assert!(
        sends_session(&proxy.take_sent()),
        "signing out names the session"
    );
    assert_eq!(client.me().await.unwrap_err(), LoyaltyError::NotSignedIn);
    assert!(!sends_session(&proxy.take_sent()), "expired by the server");
}

#[tokio::test]
async fn a_postcard_is_claimed_once_and_the_second_scan_names_the_day() {
    let server = TestServer::start().await;
    let client = signed_in(&server).await;
    let postcard = server.db.postcard().await;

    let member = match client.scan(&postcard).await.unwrap() {
        ScanOutcome::Claimed { code, member } => {
            assert_eq!(code, postcard);
            member
        }
        other => panic!("expected a claim, got {other:?}"),
    };
    assert_eq!(member.points, 0);
    assert_eq!(server.db.balance(&member.external_id).await, 0);

    let err = client.scan(&postcard).await.unwrap_err();
    let claimed_at = claimed_at(&server, &postcard).await;
    assert_eq!(
        err,
        LoyaltyError::AlreadyClaimed {
            claimed_at: claimed_at.fixed_offset()
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "This postcard has already been claimed on {}.",
            loyalty_core::error::day(&claimed_at)
        )
    );

    match client.scan(&member.external_id).await.unwrap() {
        ScanOutcome::Member { member: found } => assert_eq!(found, member),
        other => panic!("the new pass opens its member, got {other:?}"),
    }
}

#[tokio::test]
async fn unknown_codes_and_passes_are_refused() {
    let server = TestServer::start().await;
    let client = signed_in(&server).await;
    let never_printed = loyalty_core::code::claim_code_from_body("7KQ2M9XRT4PB");
    assert_eq!(
        client.scan(&never_printed).await.unwrap_err(),
        LoyaltyError::InvalidCode
    );
    assert_eq!(
        client.scan("MBR-ZZZZ9999").await.unwrap_err(),
        LoyaltyError::MemberNotFound
    );
    assert_eq!(
        client.member("MBR-ZZZZ9999").await.unwrap_err(),
        LoyaltyError::MemberNotFound
    );
    let earn = PointsRequest::sale("MBR-ZZZZ9999", "10");
    assert_eq!(
        client.points(&earn).await.unwrap_err(),
        LoyaltyError::MemberNotFound
    );
}

#[tokio::test]
async fn over_https_the_terminal_works_when_it_trusts_the_stores_ca_and_says_why_it_cannot_when_not()
 {
    let tls = TestTls::generate();
    let server = TestServer::start_tls(&tls).await;
    assert!(server.url.starts_with("https://"), "{}", server.url);

    // Not told of the store's CA: refused at the handshake, before a password leaves the terminal.
    let untrusting = Client::new(&server.url).unwrap();
    let refused = untrusting
        .sign_in(&server.clerk.email, &server.clerk.password)
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, LoyaltyError::Network { detail }
            if detail.starts_with("the server's certificate was refused") && detail.contains("UnknownIssuer")),
        "{refused:?}"
    );
    let sessions: i64 = sqlx::query_scalar("select count(*) from staff_sessions")
        .fetch_one(&server.db.owner)
        .await
        .unwrap();
    assert_eq!(sessions, 0);

    let pem = std::fs::read(&tls.ca_pem).unwrap();
    let roots = reqwest::Certificate::from_pem_bundle(&pem).unwrap();
    let client = Client::with_roots(&server.url, REQUEST_TIMEOUT, roots).unwrap();
    client
        .sign_in(&server.clerk.email, &server.clerk.password)
        .await
        .unwrap();
    let member = server.db.member(5).await;
    let earned = client
        .points(&PointsRequest::sale(&member, "20"))
        .await
        .unwrap();
    assert_eq!((earned.new_balance, earned.replayed), (25, false));
    assert_eq!(server.db.balance(&member).await, 25);
}

#[tokio::test]
async fn a_managers_adjustments_move_the_balance_and_the_ledger_with_their_reasons() {
    let server = TestServer::start().await;
    let client = Client::new(&server.url).unwrap();
    client
        .sign_in(&server.manager.email, &server.manager.password)
        .await
        .unwrap();
    let member = client.enrol().await.unwrap();
    assert!(member.external_id.starts_with("MBR-"), "{member:?}");

    let mut earn = PointsRequest::new(TxType::Earn, &member.external_id, 120);
    earn.note = Some("birthday".to_owned());
    let earned = client.points(&earn).await.unwrap();
    assert_eq!(
        (
            earned.tx_type,
            earned.points,
            earned.new_balance,
            earned.replayed
        ),
        (TxType::Earn, 120, 120, false)
    );
    let mut redeem = PointsRequest::new(TxType::Redeem, &member.external_id, 45);
    redeem.note = Some("returned a mug".to_owned());
    let redeemed = client.points(&redeem).await.unwrap();
    assert_eq!(
        (
            redeemed.tx_type,
            redeemed.points,
            redeemed.new_balance,
            redeemed.replayed
        ),
        (TxType::Redeem, 45, 75, false)
    );
    assert_eq!(server.db.balance(&member.external_id).await, 75);

    let detail = client.member(&member.external_id).await.unwrap();
    assert_eq!(detail.member.points, 75);
    let rows: Vec<_> = detail
        .ledger
        .iter()
        .map(|e| {
            (
                e.tx_type,
                e.points,
                e.balance_after,
                e.description.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (TxType::Redeem, 45, 75, Some("returned a mug")),
            (TxType::Earn, 120, 120, Some("birthday")),
        ],
        "newest first"
    );
    assert!(server.db.invariant_violations().await.is_empty());
}

/// The terminal's sale and reward keys go through the server's own rules: the points of a sale counted by the
/// program's rate, a reward's cost and stock taken by the database, the catalog read as the server has it.
#[tokio::test]
async fn a_sale_and_a_reward_go_through_the_programs_rules() {
    let server = TestServer::start().await;
    let manager = server::testkit::Till::sign_in(&server.db, &server.manager).await;
    let coffee = manager
        .add_reward("Coffee", 10, Some(1), None)
        .await
        .unwrap();
    let client = signed_in(&server).await;
    let member = server.db.member(0).await;

    let sale = client
        .points(&PointsRequest::sale(&member, "12.50"))
        .await
        .unwrap();
    assert_eq!(
        (
            sale.tx_type,
            sale.points,
            sale.new_balance,
            sale.rule.as_deref()
        ),
        (
            TxType::Earn,
            12,
            12,
            Some("12.50 EUR -> 12 points, 1 point per 1.00 EUR")
        )
    );

    let rewards = client.rewards().await.unwrap();
    assert_eq!(
        rewards
            .iter()
            .map(|r| (r.id, r.name.as_str(), r.stock))
            .collect::<Vec<_>>(),
        vec![(coffee, "Coffee", Some(1))]
    );
    let redeem = PointsRequest::reward(&member, &rewards[0]);
    let redeemed = client.points(&redeem).await.unwrap();
    assert_eq!(
        (
            redeemed.tx_type,
            redeemed.points,
            redeemed.new_balance,
            redeemed.reward.as_deref()
        ),
        (TxType::Redeem, 10, 2, Some("Coffee"))
    );
    assert!(
        client.points(&redeem).await.unwrap().replayed,
        "the same key, once"
    );
    let err = client
        .points(&PointsRequest::reward(&member, &rewards[0]))
        .await
        .unwrap_err();
    assert_eq!(
        err,
        LoyaltyError::OutOfStock {
            reward: "Coffee".to_owned()
        }
    );
    assert_eq!(client.rewards().await.unwrap()[0].stock, Some(0));
    assert_eq!(server.db.balance(&member).await, 2);
    assert!(server.db.invariant_violations().await.is_empty());
}

#[tokio::test]
async fn a_reward_over_the_balance_names_the_balance_and_changes_nothing() {
    let server = TestServer::start().await;
    coffee(&server, 50).await;
    let client = signed_in(&server).await;
    let member = server.db.member(40).await;
    let rows = server.db.ledger_rows().await;
    let reward = client.rewards().await.unwrap().remove(0);
    let err = client
        .points(&PointsRequest::reward(&member, &reward))
        .await
        .unwrap_err();
    assert_eq!(err, LoyaltyError::InsufficientFunds { balance: 40 });
    assert_eq!(
        err.to_string(),
        "Not enough points: the balance is 40 points."
    );
    assert_eq!(server.db.balance(&member).await, 40);
    assert_eq!(server.db.ledger_rows().await, rows);
}

#[tokio::test]
async fn the_same_request_twice_is_replayed_and_applied_once() {
    let server = TestServer::start().await;
    let client = signed_in(&server).await;
    let member = server.db.member(100).await;
    let rows = server.db.ledger_rows().await;
    let earn = PointsRequest::sale(&member, "30");
    let first = client.points(&earn).await.unwrap();
    let second = client.points(&earn).await.unwrap();
    assert!(!first.replayed);
    assert!(second.replayed);
    assert_eq!(second.transaction_id, first.transaction_id);
    assert_eq!(second.new_balance, 130);
    assert_eq!(server.db.balance(&member).await, 130);
    assert_eq!(server.db.ledger_rows().await, rows + 1);
}

/// The whole counter, state and client together, when the answer to a redeem is lost on the way back.
#[tokio::test]
async fn a_retry_after_a_dropped_answer_applies_once_and_says_so() {
    let server = TestServer::start().await;
    let reward = coffee(&server, 30).await;
    let member = server.db.member(100).await;
    let proxy = Proxy::start(server.url.trim_start_matches("http://").parse().unwrap()).await;
    let client = Client::new(&proxy.url).unwrap();
    let mut app = App::new(&proxy.url);

    type_text(&mut app, &server.clerk.email);
    press(&mut app, KeyCode::Enter);
    type_text(&mut app, &server.clerk.password);
    let commands = press(&mut app, KeyCode::Enter);
    settle(&mut app, &client, commands).await;
    assert!(app.session.is_some(), "{}", notice(&app));

    type_text(&mut app, &member);
    let commands = press(&mut app, KeyCode::Enter);
    settle(&mut app, &client, commands).await;
    assert_eq!(app.counter.member().map(|m| m.points), Some(100));

    type_text(&mut app, "1");
    let commands = press(&mut app, KeyCode::Enter);
    let Some(Command::Points { request, .. }) = commands.first().cloned() else {
        panic!("expected the redeem to go out, got {commands:?}");
    };
    proxy.drop_answers.store(true, Ordering::SeqCst);
    settle(&mut app, &client, commands).await;
    let pending = app
        .counter
        .unanswered()
        .cloned()
        .expect("the redeem got no answer");
    assert_eq!(pending.request, request);
    assert_eq!(
        pending.detail,
        "the connection was lost before the answer came"
    );
    assert_eq!(
        notice(&app),
        format!(
            "No answer to \"Redeem {reward} (30 points)\": it may or may not have gone through."
        )
    );
    assert_eq!(
        server.db.balance(&member).await,
        70,
        "the server did apply it"
    );

    proxy.drop_answers.store(false, Ordering::SeqCst);
    let commands = type_text(&mut app, "t");
    assert_eq!(
        commands,
        vec![Command::Points {
            request: request.clone(),
            attempt: Attempt::Retry
        }]
    );
    settle(&mut app, &client, commands).await;
    assert_eq!(app.counter.unanswered(), None);
    assert_eq!(
        notice(&app),
        format!(
            "The first attempt had gone through: 30 points redeemed for {member} ({reward}), once. Balance 70 points."
        )
    );
    assert_eq!(server.db.balance(&member).await, 70, "applied once");
    assert_eq!(app.counter.member().map(|m| m.points), Some(70));
    let rows: i64 =
        sqlx::query_scalar("select count(*) from transactions where idempotency_key = $1")
            .bind(request.idempotency_key.to_string())
            .fetch_one(&server.db.owner)
            .await
            .unwrap();
    assert_eq!(rows, 1);
}

#[tokio::test]
async fn a_retry_of_a_request_that_never_arrived_applies_it_now() {
    let server = TestServer::start().await;
    let reward = coffee(&server, 30).await;
    let member = server.db.member(100).await;
    let client = signed_in(&server).await;
    let mut app = App::new(&server.url);
    let commands = app.update(Event::Api(ApiEvent::SignedIn(client.me().await)));
    settle(&mut app, &client, commands).await;
    type_text(&mut app, &member);
    let commands = press(&mut app, KeyCode::Enter);
    settle(&mut app, &client, commands).await;

    type_text(&mut app, "1");
    let Some(Command::Points { request, attempt }) = press(&mut app, KeyCode::Enter).pop() else {
        panic!("expected the redeem to go out");
    };
    // The request is lost before it reaches the server: the state hears only that no answer came.
    app.update(Event::Api(ApiEvent::Points {
        request,
        attempt,
        result: Err(LoyaltyError::Network {
            detail: "no connection could be made".to_owned(),
        }),
    }));
    assert_eq!(server.db.balance(&member).await, 100);
    let commands = type_text(&mut app, "t");
    settle(&mut app, &client, commands).await;
    assert_eq!(
        notice(&app),
        format!(
            "The first attempt had not gone through; now 30 points redeemed for {member} ({reward}): new balance 70 points."
        )
    );
    assert_eq!(server.db.balance(&member).await, 70);
}

#[tokio::test]
async fn the_health_check_sees_the_server() {
    let server = TestServer::start().await;
    assert!(Client::new(&server.url).unwrap().healthy().await);
}

#[tokio::test]
async fn a_closed_port_is_a_network_failure() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let client = Client::new(&url).unwrap();
    assert!(!client.healthy().await);
    assert_eq!(
        client.sign_in("a@b.example", "pw").await.unwrap_err(),
        LoyaltyError::Network {
            detail: "no connection could be made".to_owned()
        }
    );
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    // Accepts connections and holds them open without a word.
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let client = Client::with_timeout(&url, Duration::from_millis(300)).unwrap();
    let request = PointsRequest::new(TxType::Earn, "MBR-ABCD2345", 5);
    let err = client.points(&request).await.unwrap_err();
    assert_eq!(
        err,
        LoyaltyError::Network {
            detail: "no answer within 0.3 seconds".to_owned()
        }
    );
    assert!(!client.healthy().await);
}
