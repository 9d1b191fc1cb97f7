//! A program's shards moved to the other worker (`citus_move_shard_placement`) while its tills earn and claim:
//! every acknowledged change is there once, and every balance is the sum of its ledger.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use app::points::db::PointsRequest;
use loyalty_core::wire::{ScanOutcome, TxType};
use server::testkit::{TestDb, Till};
use tokio::sync::Notify;

use super::{ONE_AT_A_TIME, cluster_workers, coordinator, placement};

/// What one till had acknowledged: earns by idempotency key, and postcards claimed.
#[derive(Default)]
struct Acknowledged {
    earns: Vec<(String, String, i64, i64)>,
    claims: Vec<(String, String)>,
    retries: usize,
}

/// Earns (each retried with its key until answered) and claims until `moved`, then `after` more of each.
async fn till_at_work(
    till: Till,
    name: usize,
    member: String,
    postcards: Vec<String>,
    moved: Arc<AtomicBool>,
    done: Arc<AtomicUsize>,
    progress: Arc<Notify>,
) -> Acknowledged {
    let mut acknowledged = Acknowledged::default();
    let mut after = 0;
    let mut postcards = postcards.into_iter();
    for i in 0.. {
        if moved.load(Ordering::SeqCst) {
            after += 1;
            if after > 10 {
                break;
            }
        }
        let key = format!("move-{name}-{i}");
        let request = PointsRequest {
            external_id: &member,
            tx_type: TxType::Earn,
            points: 3,
            note: Some("moved under load"),
            idempotency_key: Some(&key),
            sold_at: None,
        };
        let receipt = loop {
            match till.apply(&request).await {
                Ok(receipt) => break receipt,
                Err(err) => {
                    acknowledged.retries += 1;
                    assert!(acknowledged.retries < 200, "earn {key}: {err}");
                }
            }
        };
        acknowledged
            .earns
            .push((key, member.clone(), 3, receipt.transaction_id));
        if i % 3 == 0
            && let Some(code) = postcards.next()
            && let Ok(ScanOutcome::Claimed { member, .. }) = till.scan(&code).await
        {
            acknowledged.claims.push((code, member.external_id));
        }
        done.fetch_add(1, Ordering::SeqCst);
        progress.notify_one();
    }
    acknowledged
}

#[tokio::test]
async fn a_programs_shards_move_to_the_other_worker_while_its_tills_earn_and_claim() {
    let Some(_) = coordinator("shard move") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let db = TestDb::with_pool_size(16).await;
    let workers = cluster_workers(&db).await;
    let from = placement(&db.owner, db.program_id).await;
    let to = workers
        .iter()
        .find(|w| w.port != from.port)
        .unwrap()
        .clone();

    // Points typed by hand: a manager's adjustments.
    let tills = Till::managers(&db, 4).await;
    let moved = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicUsize::new(0));
    let progress = Arc::new(Notify::new());
    let mut working = tokio::task::JoinSet::new();
    for (name, till) in tills.into_iter().enumerate() {
        let member = db.member(0).await;
        let mut postcards = Vec::new();
        for _ in 0..60 {
            postcards.push(db.postcard().await);
        }
        working.spawn(till_at_work(
            till,
            name,
            member,
            postcards,
            moved.clone(),
            done.clone(),
            progress.clone(),
        ));
    }
    while done.load(Ordering::SeqCst) < 20 {
        tokio::select! {
            () = progress.notified() => {}
            Some(stopped) = working.join_next() => panic!("a till stopped early: {:?}", stopped.map(|_| ())),
        }
    }
    let before = done.load(Ordering::SeqCst);
    sqlx::query("select citus_move_shard_placement($1, $2, $3, $4, $5)")
        .bind(from.shard_id)
        .bind(&from.host)
        .bind(i32::from(from.port))
        .bind(&to.host)
        .bind(i32::from(to.port))
        .execute(&db.owner)
        .await
        .expect("moving the program's shards");
    let during = done.load(Ordering::SeqCst) - before;
    moved.store(true, Ordering::SeqCst);
    let tills: Vec<Acknowledged> = working.join_all().await;

    let now = placement(&db.owner, db.program_id).await;
    assert_eq!(
        now.port, to.port,
        "the program's shard is on the other worker"
    );
    assert!(during > 0, "the tills worked while the shards moved");
    eprintln!(
        "{during} earns while the shards moved; {} retried",
        tills.iter().map(|t| t.retries).sum::<usize>()
    );

    let earns: Vec<_> = tills.iter().flat_map(|t| t.earns.iter()).collect();
    for (key, member, points, transaction_id) in &earns {
        let rows: Vec<(i64, String, i64)> = sqlx::query_as(
            "select t.id, m.external_id, t.points::bigint from public.transactions t
               join public.passes_master m on m.program_id = t.program_id and m.id = t.member_id
              where t.program_id = $1 and t.idempotency_key = $2",
        )
        .bind(db.program_id)
        .bind(key)
        .fetch_all(&db.owner)
        .await
        .unwrap();
        assert_eq!(
            rows,
            vec![(*transaction_id, member.clone(), *points)],
            "{key}"
        );
    }
    let keyed: i64 = sqlx::query_scalar(
        "select count(*) from public.transactions where program_id = $1 and idempotency_key like 'move-%'",
    )
    .bind(db.program_id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(keyed, earns.len() as i64, "nothing doubled");
    for (code, member) in tills.iter().flat_map(|t| t.claims.iter()) {
        let holder: Option<String> = sqlx::query_scalar(
            "select m.external_id from public.claim_codes c
               join public.passes_master m on m.program_id = c.program_id and m.id = c.pass_id
              where c.program_id = $1 and c.code = $2",
        )
        .bind(db.program_id)
        .bind(code)
        .fetch_one(&db.owner)
        .await
        .unwrap();
        assert_eq!(holder.as_ref(), Some(member), "{code}");
    }
    assert!(
        tills.iter().all(|t| !t.claims.is_empty()),
        "every till claimed"
    );
    assert_eq!(db.invariant_violations().await, Vec::<String>::new());
}
