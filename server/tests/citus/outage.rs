//! One worker stopped under load and started again: the programs on the other worker keep earning, the
//! affected ones are told the service is unavailable (503, never a 500), and after the worker returns every
//! acknowledged earn is there once.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use loyalty_core::LoyaltyError;
use loyalty_core::wire::{PointsReceipt, Role};
use reqwest::StatusCode;
use server::embedded::PgPrograms;
use server::testkit::{ApiClient, TestDb, TestServer, member_of};
use tokio::sync::{Mutex, Notify};
use uuid::Uuid;

use super::{ONE_AT_A_TIME, cluster_workers, coordinator, on_worker, program_per_worker};

const UP: u8 = 0;
const DOWN: u8 = 1;
const BACK: u8 = 2;

/// Every answer a program's till had, by the phase it was sent and answered in.
#[derive(Default)]
struct Answers {
    /// (phase, status) of each answer whose request was sent and answered in the same phase.
    statuses: Vec<(u8, StatusCode)>,
    /// Earns acknowledged: idempotency key and transaction id.
    acknowledged: Vec<(String, i64)>,
}

/// A worker's cluster, stopped; started again when dropped, whatever the test did.
struct StoppedWorker {
    pgdata: String,
    started: bool,
}

impl StoppedWorker {
    async fn stop(pgdata: String) -> Self {
        run_pg_ctl(&["-D", &pgdata, "stop", "-m", "immediate", "-w"]).await;
        Self {
            pgdata,
            started: false,
        }
    }

    async fn start(&mut self) {
        let log = format!("{}/server.log", self.pgdata);
        run_pg_ctl(&["-D", &self.pgdata, "-l", &log, "start", "-w"]).await;
        self.started = true;
    }
}

impl Drop for StoppedWorker {
    fn drop(&mut self) {
        if !self.started {
            let pgdata = self.pgdata.clone();
            std::thread::spawn(move || {
                tokio::runtime::Runtime::new().unwrap().block_on(async {
                    let log = format!("{pgdata}/server.log");
                    run_pg_ctl(&["-D", &pgdata, "-l", &log, "start", "-w"]).await;
                })
            })
            .join()
            .ok();
        }
    }
}

async fn run_pg_ctl(args: &[&str]) {
    let output = PgPrograms::find()
        .unwrap()
        .run("pg_ctl", args)
        .await
        .unwrap();
    assert!(output.status.success(), "pg_ctl {args:?}: {output:?}");
}

/// Earns 1 point for `member` (a sale of 1.00) with fresh keys until the phase is past BACK's first acknowledged earn.
async fn till_at_work(
    client: ApiClient,
    member: String,
    phase: Arc<AtomicU8>,
    answers: Arc<Mutex<Answers>>,
    progress: Arc<Notify>,
) {
    for i in 0.. {
        let sent = phase.load(Ordering::SeqCst);
        let key = format!("outage-{}-{i}", Uuid::new_v4().simple());
        let response = client
            .change(
                "earn_sale",
                &[
                    ("external_id", &member),
                    ("amount", "1"),
                    ("idempotency_key", &key),
                ],
            )
            .await;
        let status = response.status();
        let answered = phase.load(Ordering::SeqCst);
        let mut answers = answers.lock().await;
        if status == StatusCode::OK {
            let receipt: PointsReceipt = response.json().await.unwrap();
            answers.acknowledged.push((key, receipt.transaction_id));
        } else {
            let body = response.text().await.unwrap();
            assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
            let err: LoyaltyError = serde_json::from_str(&body).unwrap();
            assert_eq!(err, LoyaltyError::Unavailable);
        }
        if sent == answered {
            answers.statuses.push((sent, status));
        }
        let enough_back = answers
            .statuses
            .iter()
            .filter(|(p, s)| *p == BACK && *s == StatusCode::OK)
            .count()
            >= 5;
        drop(answers);
        progress.notify_one();
        if enough_back {
            return;
        }
    }
}

fn count(answers: &Answers, phase: u8, status: StatusCode) -> usize {
    answers
        .statuses
        .iter()
        .filter(|(p, s)| *p == phase && *s == status)
        .count()
}

type Tills<'a> = (&'a [(Uuid, String, Arc<Mutex<Answers>>)], &'a Notify);

/// Until, within `phase`, the first program has `live_ok` earns answered 200 and the second `lost_count`
/// answers of `lost_status`; a till that stops first fails the test.
async fn wait_for(
    (answers, progress): Tills<'_>,
    working: &mut tokio::task::JoinSet<()>,
    phase: u8,
    live_ok: usize,
    lost_status: StatusCode,
    lost_count: usize,
) {
    loop {
        let live_done = count(&*answers[0].2.lock().await, phase, StatusCode::OK);
        let lost_done = count(&*answers[1].2.lock().await, phase, lost_status);
        if live_done >= live_ok && lost_done >= lost_count {
            return;
        }
        tokio::select! {
            () = progress.notified() => {}
            Some(stopped) = working.join_next() => panic!("a till stopped early: {stopped:?}"),
        }
    }
}

#[tokio::test]
async fn a_stopped_worker_stops_only_its_programs_and_loses_nothing_acknowledged() {
    let Some(_) = coordinator("worker lost") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let server = TestServer::on(TestDb::with_pool_size(16).await).await;
    let db = &server.db;
    let workers = cluster_workers(db).await;
    let programs = program_per_worker(db, &workers).await;
    let (live, lost) = (programs[0], programs[1]);
    let pgdata: String = sqlx::query_scalar("show data_directory")
        .fetch_one(&on_worker(db, &workers[1]).await)
        .await
        .unwrap();

    let phase = Arc::new(AtomicU8::new(UP));
    let progress = Arc::new(Notify::new());
    let mut answers = Vec::new();
    let mut working = tokio::task::JoinSet::new();
    for program in [live, lost] {
        let (_, clerk) = db.staff(program, Role::Clerk).await;
        let client = ApiClient::sign_in_using(reqwest::Client::new(), &server.url, &clerk).await;
        let member = member_of(&db.owner, program, 0).await;
        let program_answers = Arc::new(Mutex::new(Answers::default()));
        answers.push((program, member.clone(), program_answers.clone()));
        working.spawn(till_at_work(
            client,
            member,
            phase.clone(),
            program_answers,
            progress.clone(),
        ));
    }
    let progress = &*progress;
    let tills: Tills = (&answers, progress);
    wait_for(tills, &mut working, UP, 10, StatusCode::OK, 10).await;
    let mut worker = StoppedWorker::stop(pgdata).await;
    phase.store(DOWN, Ordering::SeqCst);
    wait_for(
        tills,
        &mut working,
        DOWN,
        20,
        StatusCode::SERVICE_UNAVAILABLE,
        5,
    )
    .await;
    worker.start().await;
    phase.store(BACK, Ordering::SeqCst);
    working.join_all().await;

    assert_eq!(
        count(
            &*answers[0].2.lock().await,
            DOWN,
            StatusCode::SERVICE_UNAVAILABLE
        ),
        0,
        "the program on the other worker kept working"
    );
    for (program, member, program_answers) in &answers {
        let program_answers = program_answers.lock().await;
        for (key, transaction_id) in &program_answers.acknowledged {
            let ids: Vec<i64> = sqlx::query_scalar(
                "select id from public.transactions where program_id = $1 and idempotency_key = $2",
            )
            .bind(program)
            .bind(key)
            .fetch_all(&db.owner)
            .await
            .unwrap();
            assert_eq!(ids, vec![*transaction_id], "{key}");
        }
        let balance: i64 = sqlx::query_scalar(
            "select points::bigint from public.passes_master where program_id = $1 and external_id = $2",
        )
        .bind(program)
        .bind(member)
        .fetch_one(&db.owner)
        .await
        .unwrap();
        assert!(
            balance >= program_answers.acknowledged.len() as i64,
            "{member}: {balance}"
        );
    }
    assert_eq!(db.invariant_violations().await, Vec::<String>::new());
}
