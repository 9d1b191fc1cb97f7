//! Faults under load: the server killed mid-request, and PostgreSQL stopped mid-request. No acknowledged change
//! is lost or applied twice, and the server answers plainly while its database is gone, then recovers by itself.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use loyalty_core::LoyaltyError;
use loyalty_core::wire::{PointsReceipt, Role};
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use server::embedded::EmbeddedPostgres;
use server::testkit::{ApiClient, Credentials, ServerProcess, TestDb, member_of, new_program};
use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;
use tokio::sync::{Barrier, Mutex, watch};
use tokio::time::timeout;

const MANAGER_EMAIL: &str = "manager@faults.example";
const MANAGER_PASSWORD: &str = "manager-password-1";

/// A signed-in manager's session, usable from many tasks and across server restarts (sessions live in the
/// database): its earns and redeems are adjustments, points typed by hand, which only a manager may make.
async fn sign_in(url: &str) -> ApiClient {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let manager = Credentials {
        email: MANAGER_EMAIL.into(),
        password: MANAGER_PASSWORD.into(),
    };
    ApiClient::sign_in_using(http, url, &manager).await
}

/// One keyed earn or redeem, as a till sends it.
#[derive(Debug, Clone)]
struct Op {
    key: String,
    endpoint: &'static str,
    member: String,
    points: i64,
}

#[derive(Debug, Clone)]
enum Outcome {
    /// A 2xx receipt.
    Acknowledged(PointsReceipt),
    /// A 4xx refusal in the domain's JSON shape.
    Refused(StatusCode, LoyaltyError),
    /// A 5xx answer: never expected while the database is up.
    #[allow(dead_code, reason = "shown through Debug when the test fails")]
    Failed(StatusCode, String),
    /// The connection failed or was cut before an answer came.
    NoAnswer,
}

/// Sends `op` over `session`: what came back, or that nothing did.
async fn send(session: &ApiClient, op: &Op) -> Outcome {
    let points = op.points.to_string();
    let sent = session
        .http
        .post(format!("{}/api/{}", session.url, op.endpoint))
        .header(COOKIE, &session.cookie)
        .form(&[
            ("csrf", session.csrf.as_str()),
            ("external_id", &op.member),
            ("points", &points),
            ("note", "fault drill"),
            ("idempotency_key", &op.key),
        ])
        .send()
        .await;
    let Ok(response) = sent else {
        return Outcome::NoAnswer;
    };
    let status = response.status();
    let Ok(body) = response.text().await else {
        return Outcome::NoAnswer;
    };
    if status.is_success() {
        Outcome::Acknowledged(
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{status} {body}: {e}")),
        )
    } else if status.is_client_error() {
        Outcome::Refused(
            status,
            serde_json::from_str(&body).unwrap_or_else(|e| panic!("{status} {body}: {e}")),
        )
    } else {
        Outcome::Failed(status, body)
    }
}

/// A small deterministic mix of earns and redeems; redeems large enough that some are refused.
fn op(task: usize, i: usize, members: &[String]) -> Op {
    let mix = (task * 7919 + i * 104_729) % 1000;
    let (endpoint, points) = if mix.is_multiple_of(3) {
        ("redeem", 20 + (mix % 90) as i64)
    } else {
        ("earn", 1 + (mix % 40) as i64)
    };
    Op {
        key: format!("kill-{task}-{i}"),
        endpoint,
        member: members[(task + i) % members.len()].clone(),
        points,
    }
}

/// Polls `condition` every 50 ms, up to `limit`; false if it never held.
async fn eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    timeout(limit, async {
        while !condition() {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killing_the_server_mid_load_loses_no_acknowledged_change_and_doubles_none() {
    const TASKS: usize = 12;
    const KILLS: usize = 3;
    const ACKS_BETWEEN_KILLS: usize = 40;

    let db = TestDb::new().await;
    app::auth::db::create_staff(
        &db.owner,
        db.program_id,
        MANAGER_EMAIL,
        "Fault Manager",
        Role::Manager,
        MANAGER_PASSWORD,
    )
    .await
    .unwrap();
    let mut members = Vec::new();
    for _ in 0..6 {
        members.push(db.member(200).await);
    }
    let members = Arc::new(members);
    let mut server = ServerProcess::start(
        env!("CARGO_BIN_EXE_server"),
        &db.owner_url(),
        &[("LOYALTY_DB_POOL", "8")],
    )
    .await;
    let session = sign_in(&server.url).await;

    let acknowledged = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let (generation_tx, generation) = watch::channel(0usize);
    let record: Arc<Mutex<Vec<(Op, Outcome)>>> = Arc::default();
    let barrier = Arc::new(Barrier::new(TASKS + 1));
    let mut clients = Vec::new();
    for task in 0..TASKS {
        let (session, members, acknowledged, stop, record, barrier) = (
            session.clone(),
            members.clone(),
            acknowledged.clone(),
            stop.clone(),
            record.clone(),
            barrier.clone(),
        );
        let mut generation = generation.clone();
        clients.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                let op = op(task, i, &members);
                i += 1;
                let before = *generation.borrow_and_update();
                let outcome = send(&session, &op).await;
                if matches!(outcome, Outcome::Acknowledged(_)) {
                    acknowledged.fetch_add(1, Ordering::SeqCst);
                }
                let unanswered = matches!(outcome, Outcome::NoAnswer);
                record.lock().await.push((op, outcome));
                // The server is down: wait for the next one (or the end) instead of spinning on refused connections.
                if unanswered && *generation.borrow() == before {
                    let stopped = async {
                        while !stop.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                    };
                    tokio::select! {
                        _ = generation.changed() => {}
                        _ = stopped => {}
                    }
                }
            }
        }));
    }
    barrier.wait().await;
    for kill in 1..=KILLS {
        let target = acknowledged.load(Ordering::SeqCst) + ACKS_BETWEEN_KILLS;
        assert!(
            eventually(Duration::from_secs(120), || acknowledged
                .load(Ordering::SeqCst)
                >= target)
            .await,
            "the load stalled before kill {kill}:\n{}",
            server.logs()
        );
        server.kill();
        server.restart().await;
        generation_tx.send_replace(kill);
    }
    let target = acknowledged.load(Ordering::SeqCst) + ACKS_BETWEEN_KILLS;
    assert!(
        eventually(Duration::from_secs(120), || acknowledged
            .load(Ordering::SeqCst)
            >= target)
        .await,
        "the load stalled after the last restart"
    );
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.await.unwrap();
    }
    let record = std::mem::take(&mut *record.lock().await);

    // Every request that got no answer is sent again with its same key until it is answered.
    let mut finals: BTreeMap<String, (Op, Outcome)> = BTreeMap::new();
    let (mut unanswered, mut were_applied, mut applied_on_replay) = (0, 0, 0);
    for (op, outcome) in record {
        let outcome = match outcome {
            Outcome::NoAnswer => {
                unanswered += 1;
                let mut answer = Outcome::NoAnswer;
                for _ in 0..20 {
                    answer = send(&session, &op).await;
                    if !matches!(answer, Outcome::NoAnswer) {
                        break;
                    }
                }
                match &answer {
                    Outcome::Acknowledged(r) if r.replayed => were_applied += 1,
                    Outcome::Acknowledged(_) => applied_on_replay += 1,
                    Outcome::NoAnswer => panic!("{} got no answer after the restarts", op.key),
                    _ => {}
                }
                answer
            }
            answered => answered,
        };
        assert!(
            finals.insert(op.key.clone(), (op, outcome)).is_none(),
            "keys are unique per request"
        );
    }
    eprintln!(
        "{} requests, {KILLS} kills, {unanswered} unanswered: {were_applied} had been applied before the kill, \
         {applied_on_replay} applied on replay",
        finals.len()
    );
    assert!(unanswered > 0, "the kills must have cut requests off");
    let failed: Vec<_> = finals
        .values()
        .filter(|(_, o)| matches!(o, Outcome::Failed(..)))
        .collect();
    assert!(failed.is_empty(), "server errors: {failed:?}");
    for (op, outcome) in finals.values() {
        if let Outcome::Refused(status, err) = outcome {
            assert!(
                matches!(err, LoyaltyError::InsufficientFunds { .. }) && op.endpoint == "redeem",
                "{op:?} refused with {status} {err:?}"
            );
        }
    }

    // The ledger holds exactly the acknowledged operations, each once, under the acknowledged transaction.
    let acked: HashMap<&str, i64> = finals
        .iter()
        .filter_map(|(key, (_, o))| match o {
            Outcome::Acknowledged(r) => Some((key.as_str(), r.transaction_id)),
            _ => None,
        })
        .collect();
    let ledger: Vec<(String, i64)> = sqlx::query_as(
        "select idempotency_key, id from transactions
          where program_id = $1 and idempotency_key is not null",
    )
    .bind(db.program_id)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let by_key: HashMap<&str, i64> = ledger.iter().map(|(k, id)| (k.as_str(), *id)).collect();
    assert_eq!(
        by_key.len(),
        ledger.len(),
        "a key appears twice in the ledger"
    );
    assert_eq!(
        by_key, acked,
        "the ledger is exactly the acknowledged operations"
    );

    // A replay of an acknowledged operation is answered with its original transaction, not applied again.
    let rows_before = db.ledger_rows().await;
    for (op, outcome) in finals.values() {
        if let Outcome::Acknowledged(first) = outcome {
            let Outcome::Acknowledged(again) = send(&session, op).await else {
                panic!("{} was not answered on replay", op.key);
            };
            assert!(again.replayed, "{}", op.key);
            assert_eq!(again.transaction_id, first.transaction_id, "{}", op.key);
        }
    }
    assert_eq!(db.ledger_rows().await, rows_before);
    assert_eq!(db.invariant_violations().await, Vec::<String>::new());
}

/// Stops a private cluster at the end of the test, pass or fail.
struct Cluster {
    root: PathBuf,
    port: u16,
    running: Option<EmbeddedPostgres>,
}

impl Cluster {
    async fn start(root: &Path, port: u16) -> Self {
        Self {
            root: root.to_owned(),
            port,
            running: Some(EmbeddedPostgres::start(root, port).await.unwrap()),
        }
    }

    async fn stop(&mut self) {
        self.running.take().unwrap().stop().await.unwrap();
    }

    async fn restart(&mut self) {
        self.running = Some(
            EmbeddedPostgres::start(&self.root, self.port)
                .await
                .unwrap(),
        );
    }

    fn url(&self) -> String {
        self.running.as_ref().unwrap().superuser_url("postgres")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if let Some(cluster) = self.running.take() {
            std::thread::spawn(move || {
                tokio::runtime::Runtime::new()
                    .unwrap()
                    .block_on(async move { cluster.stop().await })
            })
            .join()
            .ok();
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

async fn earn(session: &ApiClient, member: &str, key: &str) -> reqwest::Result<reqwest::Response> {
    session
        .http
        .post(format!("{}/api/earn", session.url))
        .header(COOKIE, &session.cookie)
        .form(&[
            ("csrf", session.csrf.as_str()),
            ("external_id", member),
            ("points", "3"),
            ("note", "fault drill"),
            ("idempotency_key", key),
        ])
        .send()
        .await
}

/// What a load task saw.
#[derive(Debug)]
enum Answer {
    Receipt,
    Unavailable,
    #[allow(dead_code, reason = "shown through Debug when the test fails")]
    Other(StatusCode, String),
    Hung,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_postgres_stopped_requests_fail_fast_with_unavailable_and_recover_without_a_restart() {
    const TASKS: usize = 6;
    let root =
        std::env::temp_dir().join(format!("loyalty-faults-{}", uuid::Uuid::new_v4().simple()));
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cluster = Cluster::start(&root, port).await;
    // The server applies the migrations; the program and its manager are made after.
    let server = ServerProcess::start(env!("CARGO_BIN_EXE_server"), &cluster.url(), &[]).await;
    let owner: PgPool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&cluster.url())
        .await
        .unwrap();
    let program_id = new_program(&owner, "Faults program").await;
    app::auth::db::create_staff(
        &owner,
        program_id,
        MANAGER_EMAIL,
        "Fault Manager",
        Role::Manager,
        MANAGER_PASSWORD,
    )
    .await
    .unwrap();
    let member = member_of(&owner, program_id, 100).await;
    owner.close().await;
    let session = sign_in(&server.url).await;

    let receipts = Arc::new(AtomicUsize::new(0));
    let unavailable = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(TASKS + 1));
    let mut load = Vec::new();
    for task in 0..TASKS {
        let (session, member, receipts, unavailable, stop, barrier) = (
            session.clone(),
            member.clone(),
            receipts.clone(),
            unavailable.clone(),
            stop.clone(),
            barrier.clone(),
        );
        load.push(tokio::spawn(async move {
            barrier.wait().await;
            let mut answers = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::SeqCst) {
                i += 1;
                let key = format!("stop-{task}-{i}");
                let answer = match timeout(Duration::from_secs(10), earn(&session, &member, &key))
                    .await
                {
                    Err(_) => Answer::Hung,
                    Ok(Err(err)) => Answer::Other(StatusCode::default(), err.to_string()),
                    Ok(Ok(response)) => {
                        let status = response.status();
                        let body = response.text().await.unwrap_or_default();
                        match (status, serde_json::from_str::<LoyaltyError>(&body)) {
                            (StatusCode::OK, _) => {
                                receipts.fetch_add(1, Ordering::SeqCst);
                                Answer::Receipt
                            }
                            (StatusCode::SERVICE_UNAVAILABLE, Ok(LoyaltyError::Unavailable)) => {
                                unavailable.fetch_add(1, Ordering::SeqCst);
                                Answer::Unavailable
                            }
                            _ => Answer::Other(status, body),
                        }
                    }
                };
                answers.push(answer);
            }
            answers
        }));
    }
    barrier.wait().await;
    assert!(
        eventually(Duration::from_secs(60), || receipts.load(Ordering::SeqCst)
            >= 30)
        .await
    );
    cluster.stop().await;

    // With the database gone: the API says so in its JSON shape, a page says the sentence, /healthz says 503,
    // each well before a generous bound.
    let bound = Duration::from_secs(10);
    let asked = std::time::Instant::now();
    let response = timeout(bound, earn(&session, &member, "while-stopped"))
        .await
        .expect("the API answered while PostgreSQL was down")
        .unwrap();
    let api_answered_in = asked.elapsed();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let err: LoyaltyError = response.json().await.unwrap();
    assert_eq!(err, LoyaltyError::Unavailable);
    assert_eq!(
        err.to_string(),
        "The loyalty service is unavailable right now. Try again in a moment."
    );
    let asked = std::time::Instant::now();
    let health = timeout(bound, reqwest::get(format!("{}/healthz", server.url)))
        .await
        .expect("/healthz answered while PostgreSQL was down")
        .unwrap();
    eprintln!(
        "with PostgreSQL down: the API answered 503 in {api_answered_in:?}, /healthz in {:?}",
        asked.elapsed()
    );
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    let page = timeout(
        bound,
        session
            .http
            .get(format!("{}/", server.url))
            .header(COOKIE, &session.cookie)
            .send(),
    )
    .await
    .expect("a page answered while PostgreSQL was down")
    .unwrap();
    assert_eq!(page.status(), StatusCode::SERVICE_UNAVAILABLE);
    let html = page.text().await.unwrap();
    assert!(
        html.contains("The loyalty service is unavailable right now. Try again in a moment."),
        "{html}\n{}",
        server.logs()
    );
    let seen = unavailable.load(Ordering::SeqCst);
    assert!(
        eventually(Duration::from_secs(60), || unavailable
            .load(Ordering::SeqCst)
            >= seen + TASKS)
        .await,
        "the load went on being answered"
    );

    // PostgreSQL is back: the same server process serves again by itself.
    cluster.restart().await;
    assert!(
        eventually_async(Duration::from_secs(60), || async {
            reqwest::get(format!("{}/healthz", server.url))
                .await
                .is_ok_and(|r| r.status() == StatusCode::OK)
        })
        .await,
        "/healthz did not recover:\n{}",
        server.logs()
    );
    let served = receipts.load(Ordering::SeqCst);
    assert!(
        eventually(Duration::from_secs(60), || receipts.load(Ordering::SeqCst)
            > served)
        .await,
        "the load was not served again"
    );
    stop.store(true, Ordering::SeqCst);
    let mut answers = Vec::new();
    for task in load {
        answers.extend(task.await.unwrap());
    }
    let earned = earn(&session, &member, "after-restart").await.unwrap();
    assert_eq!(earned.status(), StatusCode::OK);
    let receipt: PointsReceipt = earned.json().await.unwrap();
    assert!(!receipt.replayed);

    let odd: Vec<_> = answers
        .iter()
        .filter(|a| !matches!(a, Answer::Receipt | Answer::Unavailable))
        .collect();
    assert!(
        odd.is_empty(),
        "answers other than a receipt or UNAVAILABLE: {odd:?}\n{}",
        server.logs()
    );
    eprintln!(
        "{} load requests: {} receipts, {} UNAVAILABLE",
        answers.len(),
        answers
            .iter()
            .filter(|a| matches!(a, Answer::Receipt))
            .count(),
        answers
            .iter()
            .filter(|a| matches!(a, Answer::Unavailable))
            .count()
    );

    let owner: PgPool = PgPoolOptions::new()
        .max_connections(1)
        .connect(&cluster.url())
        .await
        .unwrap();
    let (balance, ledger): (i32, i64) = sqlx::query_as(
        "select m.points, coalesce(sum(case t.type when 'EARN' then t.points else -t.points end), 0)::bigint
           from passes_master m left join transactions t on t.program_id = m.program_id and t.member_id = m.id
          where m.external_id = $1 group by m.points",
    )
    .bind(&member)
    .fetch_one(&owner)
    .await
    .unwrap();
    assert_eq!(i64::from(balance), ledger);
    assert_eq!(i64::from(balance), receipt.new_balance);
    owner.close().await;
    drop(server);
}

/// Polls an async `condition` every 250 ms, up to `limit`.
async fn eventually_async<F, Fut>(limit: Duration, mut condition: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    timeout(limit, async {
        while !condition().await {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    })
    .await
    .is_ok()
}
