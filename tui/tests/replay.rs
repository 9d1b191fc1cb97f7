//! The journal's queue sent to the real server on a fresh database: once each, in order, with the time of each
//! sale, after a lost answer, a restart, or a copy of the queue sent again.

#![allow(clippy::unwrap_used)]

#[path = "common/drive.rs"]
mod drive;

use std::sync::atomic::Ordering;

use crossterm::event::KeyCode;
use loyalty_core::LoyaltyError;
use server::testkit::{ApiClient, TestServer, refused};
use tui::app::{App, Command};
use tui::client::Client;
use tui::event::{ApiEvent, Event};
use tui::journal::Journal;

use crate::drive::{Proxy, notice, press, settle_with, type_text};

/// A journal in a folder of its own, removed when the test ends.
struct JournalFolder(std::path::PathBuf);

impl JournalFolder {
    fn new() -> Self {
        Self(std::env::temp_dir().join(format!("loyalty-api-journal-{}", uuid::Uuid::new_v4())))
    }

    fn open(&self) -> tui::journal::Opened {
        Journal::open(&self.0.join("journal")).unwrap()
    }
}

impl Drop for JournalFolder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Signs the counter in through the client, writing the journal as the terminal does.
async fn sign_in_app(app: &mut App, client: &Client, journal: &mut Journal, server: &TestServer) {
    type_text(app, &server.clerk.email);
    press(app, KeyCode::Enter);
    type_text(app, &server.clerk.password);
    let commands = press(app, KeyCode::Enter);
    settle_with(app, client, Some(journal), commands).await;
    assert!(app.session.is_some(), "{}", notice(app));
}

/// An earn whose answer never came back is queued under the key it was sent with; after the terminal is
/// started again, the replay finds it applied and applies nothing.
#[tokio::test]
async fn an_earn_whose_answer_was_lost_is_queued_and_after_a_restart_applied_once() {
    let server = TestServer::start().await;
    let member = server.db.member(100).await;
    let proxy = Proxy::start(server.url.trim_start_matches("http://").parse().unwrap()).await;
    let folder = JournalFolder::new();
    let key = {
        let opened = folder.open();
        let mut journal = opened.journal;
        let client = Client::new(&proxy.url).unwrap();
        let mut app = App::new(&proxy.url).with_journal("till-2", opened.backlog, false);
        sign_in_app(&mut app, &client, &mut journal, &server).await;
        type_text(&mut app, &member);
        let commands = press(&mut app, KeyCode::Enter);
        settle_with(&mut app, &client, Some(&mut journal), commands).await;
        type_text(&mut app, "s");
        type_text(&mut app, "50");
        press(&mut app, KeyCode::Enter);
        let commands = press(&mut app, KeyCode::Enter);
        let Some(Command::Points { request, .. }) = commands.first().cloned() else {
            panic!("expected the earn to go out, got {commands:?}");
        };
        proxy.drop_answers.store(true, Ordering::SeqCst);
        settle_with(&mut app, &client, Some(&mut journal), commands).await;
        assert_eq!(
            notice(&app),
            format!(
                "Queued: Record a sale of 50 for {member}, sent when the server is back (1 earn waiting)."
            )
        );
        assert_eq!(
            server.db.balance(&member).await,
            150,
            "the server did apply it"
        );
        request.idempotency_key
    };

    // Started again: the journal still holds the earn, and the server answers.
    proxy.drop_answers.store(false, Ordering::SeqCst);
    let opened = folder.open();
    assert_eq!(opened.backlog.waiting.len(), 1);
    assert_eq!(opened.backlog.waiting[0].idempotency_key, key);
    let mut journal = opened.journal;
    let client = Client::new(&proxy.url).unwrap();
    let mut app = App::new(&proxy.url).with_journal("till-2", opened.backlog, false);
    sign_in_app(&mut app, &client, &mut journal, &server).await;
    assert_eq!(
        notice(&app),
        "The server is back: the queue is sent (1 earn). 1 earn had gone through before the outage: not \
         applied again."
    );
    assert_eq!(app.queue.waiting(), 0);
    assert_eq!(server.db.balance(&member).await, 150, "applied once");
    let rows: i64 =
        sqlx::query_scalar("select count(*) from transactions where idempotency_key = $1")
            .bind(key.to_string())
            .fetch_one(&server.db.owner)
            .await
            .unwrap();
    assert_eq!(rows, 1);
    drop(journal);
    assert!(folder.open().backlog.is_empty(), "nothing left open");
}

/// Earns taken while the server was away reach it in order, once each, with the time of each sale and the
/// clerk who sends them; a copy of the same queue sent again applies nothing.
#[tokio::test]
async fn earns_queued_while_the_server_was_away_are_applied_once_each_with_their_sale_times() {
    let server = TestServer::start().await;
    let member = server.db.member(0).await;
    let folder = JournalFolder::new();
    let opened = folder.open();
    let mut journal = opened.journal;
    let client = Client::new(&server.url).unwrap();
    let mut app = App::new(&server.url).with_journal("till-5", opened.backlog, false);
    sign_in_app(&mut app, &client, &mut journal, &server).await;
    app.update(Event::Api(ApiEvent::Health(false)));
    type_text(&mut app, &member);
    let commands = press(&mut app, KeyCode::Enter);
    assert_eq!(
        commands,
        vec![Command::CheckHealth],
        "no lookup while offline"
    );
    for amount in ["10", "20", "30"] {
        type_text(&mut app, "s");
        type_text(&mut app, amount);
        press(&mut app, KeyCode::Enter);
        let commands = press(&mut app, KeyCode::Enter);
        settle_with(&mut app, &client, Some(&mut journal), commands).await;
    }
    let queued = app.queue.backlog.waiting.clone();
    assert_eq!(queued.len(), 3);
    assert!(queued.iter().all(|earn| earn.till == "till-5"));
    assert_eq!(
        server.db.balance(&member).await,
        0,
        "nothing sent while offline"
    );

    settle_with(
        &mut app,
        &client,
        Some(&mut journal),
        vec![Command::CheckHealth],
    )
    .await;
    assert_eq!(app.queue.waiting(), 0, "{}", notice(&app));
    assert_eq!(server.db.balance(&member).await, 60);
    let ledger: Vec<(String, i32, Option<chrono::DateTime<chrono::Utc>>, String)> = sqlx::query_as(
        "select t.idempotency_key, t.points, t.sold_at, s.email
           from transactions t
           join passes_master m on m.program_id = t.program_id and m.id = t.member_id
           join staff s on s.program_id = t.program_id and s.id = t.staff_id
          where m.external_id = $1 order by t.id",
    )
    .bind(&member)
    .fetch_all(&server.db.owner)
    .await
    .unwrap();
    let expected: Vec<_> = queued
        .iter()
        .map(|earn| {
            (
                earn.idempotency_key.to_string(),
                earn.sale_amount.as_deref().unwrap().parse::<i32>().unwrap(),
                Some(earn.sold_at),
                server.clerk.email.clone(),
            )
        })
        .collect();
    let micros = |rows: &[(String, i32, Option<chrono::DateTime<chrono::Utc>>, String)]| {
        rows.iter()
            .map(|(key, points, at, staff)| {
                (
                    key.clone(),
                    *points,
                    at.map(|at| at.timestamp_micros()),
                    staff.clone(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        micros(&ledger),
        micros(&expected),
        "in order, with their sale times"
    );

    // The same queue from a copy of the journal (a second till's, say): every earn is already there.
    for earn in &queued {
        match tui::execute(&client, Command::Replay(earn.clone())).await {
            Some(ApiEvent::Replayed {
                result: Ok(receipt),
                ..
            }) => assert!(receipt.replayed),
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(server.db.balance(&member).await, 60, "applied once each");
}

#[tokio::test]
async fn the_sale_endpoint_reads_the_time_of_the_sale_and_refuses_one_it_cannot() {
    let server = TestServer::start().await;
    let member = server.db.member(0).await;
    let api = ApiClient::sign_in(&server, &server.clerk).await;
    let earn = |key: &'static str, sold_at: String| {
        let (api, member) = (api.clone(), member.clone());
        async move {
            api.change(
                "earn_sale",
                &[
                    ("external_id", member.as_str()),
                    ("amount", "5"),
                    ("idempotency_key", key),
                    ("sold_at", sold_at.as_str()),
                ],
            )
            .await
        }
    };
    let (status, err) = refused(earn("k1", "yesterday at noon".to_owned()).await).await;
    assert_eq!((status.as_u16(), err), (422, LoyaltyError::InvalidSaleTime));
    let future = (chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339();
    let (status, err) = refused(earn("k2", future).await).await;
    assert_eq!((status.as_u16(), err), (422, LoyaltyError::SaleInTheFuture));
    assert_eq!(server.db.balance(&member).await, 0);
    let response = earn("k3", "2000-01-01T00:00:00Z".to_owned()).await;
    let (_, err) = refused(response).await;
    assert_eq!(err, LoyaltyError::SaleTooOld { limit_days: 7 });
    let an_hour_ago = (chrono::Utc::now() - chrono::TimeDelta::hours(1)).to_rfc3339();
    assert!(earn("k4", an_hour_ago).await.status().is_success());
    assert!(
        earn("k5", String::new()).await.status().is_success(),
        "empty is now"
    );
    assert_eq!(server.db.balance(&member).await, 10);
}
