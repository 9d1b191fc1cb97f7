//! Upgrades without stopping the counter: a new server starts beside the running one on the same database and
//! the same port, and the old one, told to stop, drains its requests. Tills earning all the while lose no
//! acknowledged change and get no 5xx answer; a till whose connection was cut sends again with the same key.

mod operator;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use operator::{
    Folder, Server, Store, Tally, assert_ledger_is, earn, embedded_args, eventually, free_port,
    owner_pool, record, till,
};
use server::testkit::{ServerProcess, TestDb};

/// Tills earning at once through the switch.
const TILLS: usize = 6;
/// The most earns one till sends, so the load ends even if the test's own stop never comes.
const MOST_EARNS: usize = 20_000;

#[tokio::test]
async fn a_new_server_takes_over_the_port_under_load_and_nothing_acknowledged_is_lost_or_refused() {
    let folder = Folder::new("upgrade");
    let pg_port = free_port();
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let args = embedded_args(&folder, pg_port, None);
    let mut old = Server::start(addr, &args, &[]).await;
    let owner = owner_pool(&folder, pg_port).await;
    let store = Store::open(&owner, TILLS, 10).await;

    let tally = Arc::new(Mutex::new(Tally::default()));
    let stop = Arc::new(AtomicBool::new(false));
    let mut tills = Vec::new();
    for (t, clerk) in store.clerks.iter().enumerate() {
        let till = till(&old.url, clerk).await;
        let (members, tally, stop) = (store.members.clone(), tally.clone(), stop.clone());
        tills.push(tokio::spawn(async move {
            for round in 0..MOST_EARNS {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let key = format!("upgrade-{t}-{round}");
                let member = &members[round % members.len()];
                let answer = earn(&till, member, 1, &key, &tally).await;
                record(&tally, &key, member, 1, answer);
            }
        }));
    }
    let acknowledged = || tally.lock().unwrap().acknowledged.len();
    let a_while = Duration::from_secs(120);

    eventually("earns through the old server", a_while, || {
        acknowledged() >= 100
    })
    .await;
    // The new version starts beside the old one, on its database and its port.
    let mut new = Server::start(addr, &args, &[]).await;
    let before = acknowledged();
    eventually("earns with both servers up", a_while, || {
        acknowledged() >= before + 200
    })
    .await;
    let status = old.terminate().await;
    assert!(status.success(), "{status}:\n{}", old.logs());
    assert!(old.logs().contains("shut down"), "{}", old.logs());
    let after = acknowledged();
    eventually("earns through the new server alone", a_while, || {
        acknowledged() >= after + 200
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for till in tills {
        till.await.unwrap();
    }

    let tally = std::mem::take(&mut *tally.lock().unwrap());
    assert!(
        tally.unexpected.is_empty(),
        "answers other than a receipt: {:?}",
        tally.unexpected
    );
    assert_ledger_is(&store, &owner, &tally.acknowledged).await;
    eprintln!(
        "{} earns acknowledged, {} sent again after no answer, {} answered as replays",
        tally.acknowledged.len(),
        tally.no_answer,
        tally.replayed
    );
    owner.close().await;

    // The last server to stop stops the cluster it shared.
    let pgdata = folder.join("data/pgdata");
    assert!(pgdata.join("postmaster.pid").exists());
    assert!(new.terminate().await.success(), "{}", new.logs());
    assert!(!pgdata.join("postmaster.pid").exists(), "{}", new.logs());
}

#[tokio::test]
async fn a_server_starts_on_a_database_a_newer_version_has_migrated() {
    let db = TestDb::new().await;
    // A migration this version does not have, as a newer version leaves it.
    sqlx::query(
        "insert into _sqlx_migrations (version, description, success, checksum, execution_time)
         values (99990101000000, 'from a newer version', true, '\\x00', 0)",
    )
    .execute(&db.owner)
    .await
    .unwrap();
    let server = ServerProcess::start(env!("CARGO_BIN_EXE_server"), &db.owner_url(), &[]).await;
    let health = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap();
    assert_eq!(health.status(), reqwest::StatusCode::OK);
}
