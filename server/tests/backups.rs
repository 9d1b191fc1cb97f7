//! Backups that restore: the embedded database's WAL archived into a backup folder and its base backups, a
//! lost disk restored from them (to the last archived change, or to a time) with every change that was
//! acknowledged and archived and nothing else, and the backups' health for operators and managers.

mod operator;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use app::backups::BackupHealth;
use operator::{
    Folder, Server, Store, Tally, archive_now, assert_ledger_is, earn_under_load, embedded_args,
    eventually, free_port, owner_pool, run_command, stop_cluster_now, till,
};
use server::backup::{base_backups, wal_folder};
use server::testkit::ApiClient;

/// Tills earning at once, and rounds of earns each sends.
const TILLS: usize = 4;
const ROUNDS: usize = 25;

fn addr() -> std::net::SocketAddr {
    std::net::SocketAddr::from(([127, 0, 0, 1], free_port()))
}

/// A server on the folder's embedded database, backing up into `backups/`, with an archive timeout long enough
/// that only the tests' own segment switches archive anything.
async fn serve(
    folder: &Folder,
    pg_port: u16,
    addr: std::net::SocketAddr,
    extra: &[&str],
) -> Server {
    let mut args = embedded_args(folder, pg_port, Some(&folder.join("backups")));
    args.extend(["--archive-timeout", "3600"].map(String::from));
    args.extend(extra.iter().map(|a| a.to_string()));
    Server::start(addr, &args, &[]).await
}

/// The disk holding the data folder is lost: the server and its database end at once, the folder is gone.
fn lose_the_disk(folder: &Folder, server: &mut Server) {
    server.kill();
    stop_cluster_now(&folder.join("data/pgdata"));
    std::fs::remove_dir_all(folder.join("data")).unwrap();
}

fn restore(folder: &Folder, pg_port: u16, to_time: Option<&str>) -> String {
    let mut args = embedded_args(folder, pg_port, None);
    args.extend(["restore", "--from"].map(String::from));
    args.push(folder.join("backups").display().to_string());
    if let Some(to_time) = to_time {
        args.extend(["--to-time".to_owned(), to_time.to_owned()]);
    }
    let out = run_command(&args);
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

async fn tills(store: &Store, url: &str) -> Vec<ApiClient> {
    let mut tills = Vec::new();
    for clerk in &store.clerks {
        tills.push(till(url, clerk).await);
    }
    tills
}

#[tokio::test]
async fn a_lost_disk_is_restored_with_every_change_acknowledged_and_archived_and_nothing_else() {
    let folder = Folder::new("restore");
    let backups = folder.join("backups");
    let (pg_port, addr) = (free_port(), addr());
    let mut server = serve(&folder, pg_port, addr, &["--backup-keep", "1"]).await;
    // The first start takes a base backup at once.
    eventually("the first base backup", Duration::from_secs(60), || {
        base_backups(&backups).unwrap().len() == 1
    })
    .await;
    let first = base_backups(&backups).unwrap().remove(0);
    let owner = owner_pool(&folder, pg_port).await;
    let store = Store::open(&owner, TILLS, 8).await;
    let tills = tills(&store, &server.url).await;
    let tally = Arc::new(Mutex::new(Tally::default()));
    earn_under_load(&tills, &store.members, "before", ROUNDS, &tally).await;

    // A base backup on demand, beside the running server: with one kept, the first goes, and the WAL only it
    // needed with it.
    let mut args = embedded_args(&folder, pg_port, Some(&backups));
    args.extend(["--backup-keep", "1", "backup"].map(String::from));
    let out = run_command(&args);
    assert!(out.status.success(), "{out:?}");
    let kept = base_backups(&backups).unwrap();
    assert_eq!(kept.len(), 1);
    assert!(kept[0].finished > first.finished);
    assert!(String::from_utf8_lossy(&out.stdout).contains(&kept[0].name()));
    let label = std::fs::read_to_string(kept[0].data().join("backup_label")).unwrap();
    let start = label
        .split("(file ")
        .nth(1)
        .and_then(|rest| rest.get(..24))
        .unwrap()
        .to_owned();
    let segments: Vec<String> = std::fs::read_dir(wal_folder(&backups))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|name| name.len() == 24)
        .collect();
    assert!(
        segments.iter().all(|segment| *segment >= start),
        "segments older than {start}, where the kept backup starts, are gone: {segments:?}"
    );

    earn_under_load(&tills, &store.members, "after-backup", ROUNDS, &tally).await;
    archive_now(&owner).await;
    let archived = tally.lock().unwrap().acknowledged.clone();
    // Acknowledged, but still in the segment being written when the disk is lost.
    earn_under_load(&tills, &store.members, "unarchived", ROUNDS, &tally).await;
    {
        let tally = tally.lock().unwrap();
        assert!(tally.unexpected.is_empty(), "{:?}", tally.unexpected);
        assert_eq!(tally.acknowledged.len(), 3 * TILLS * ROUNDS);
    }
    owner.close().await;
    lose_the_disk(&folder, &mut server);

    let said = restore(&folder, pg_port, None);
    assert!(
        said.contains(&format!("from the base backup {}", kept[0].name())),
        "{said}"
    );
    let mut server = serve(&folder, pg_port, addr, &[]).await;
    let owner = owner_pool(&folder, pg_port).await;
    assert_ledger_is(&store, &owner, &archived).await;
    // The restored database takes changes again, through the same sessions.
    let more = Arc::new(Mutex::new(Tally::default()));
    earn_under_load(&tills[..1], &store.members, "restored", 1, &more).await;
    assert_eq!(more.lock().unwrap().acknowledged.len(), 1);
    owner.close().await;
    assert!(server.terminate().await.success());
}

#[tokio::test]
async fn a_restore_to_a_time_keeps_the_changes_before_it_and_none_after() {
    let folder = Folder::new("restore-to-time");
    let backups = folder.join("backups");
    let (pg_port, addr) = (free_port(), addr());
    let mut server = serve(&folder, pg_port, addr, &[]).await;
    eventually("the first base backup", Duration::from_secs(60), || {
        !base_backups(&backups).unwrap().is_empty()
    })
    .await;
    let owner = owner_pool(&folder, pg_port).await;
    let store = Store::open(&owner, TILLS, 8).await;
    let tills = tills(&store, &server.url).await;
    let tally = Arc::new(Mutex::new(Tally::default()));
    earn_under_load(&tills, &store.members, "morning", ROUNDS, &tally).await;
    let morning = tally.lock().unwrap().acknowledged.clone();
    // Read on the database's clock, after the morning's last commit and before the afternoon's first.
    let noon: chrono::DateTime<chrono::Utc> = sqlx::query_scalar("select clock_timestamp()")
        .fetch_one(&owner)
        .await
        .unwrap();
    earn_under_load(&tills, &store.members, "afternoon", ROUNDS, &tally).await;
    archive_now(&owner).await;
    assert!(tally.lock().unwrap().unexpected.is_empty());
    owner.close().await;
    lose_the_disk(&folder, &mut server);

    let noon = noon.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    let said = restore(&folder, pg_port, Some(&noon));
    assert!(
        said.contains("the last change replayed was committed at"),
        "{said}"
    );
    let mut server = serve(&folder, pg_port, addr, &[]).await;
    let owner = owner_pool(&folder, pg_port).await;
    assert_ledger_is(&store, &owner, &morning).await;
    owner.close().await;
    assert!(server.terminate().await.success());
}

async fn backup_health(manager: &ApiClient) -> BackupHealth {
    let response = manager.post("backups", &[]).await;
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_failing_archive_is_logged_at_error_and_shown_to_managers_and_never_overwrites_a_segment()
{
    let folder = Folder::new("archive-failure");
    let backups = folder.join("backups");
    let pg_port = free_port();
    let mut server = serve(&folder, pg_port, addr(), &["--log-format", "json"]).await;
    let owner = owner_pool(&folder, pg_port).await;
    let store = Store::open(&owner, 1, 2).await;
    let manager = till(&server.url, &store.manager).await;
    let clerk = till(&server.url, &store.clerks[0]).await;
    // The first base backup's own segment is archived, and the metrics and the page say so.
    eventually("the first base backup", Duration::from_secs(60), || {
        !base_backups(&backups).unwrap().is_empty()
    })
    .await;
    let mut health = backup_health(&manager).await;
    for _ in 0..200 {
        if health.last_archived.is_some() && health.last_base_backup.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        health = backup_health(&manager).await;
    }
    assert!(health.configured && !health.archiving_fails(), "{health:?}");
    let metrics = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for series in [
        "loyalty_backup_last_archived_timestamp_seconds",
        "loyalty_backup_last_base_backup_timestamp_seconds",
    ] {
        let value: f64 = metrics
            .lines()
            .find_map(|line| line.strip_prefix(series)?.trim().parse().ok())
            .unwrap_or_else(|| panic!("{series} in\n{metrics}"));
        assert!(value > 1.0e9, "{series} {value}");
    }

    // Something else already holds the name of the segment being written.
    let tally = Arc::new(Mutex::new(Tally::default()));
    earn_under_load(
        std::slice::from_ref(&clerk),
        &store.members,
        "doomed",
        2,
        &tally,
    )
    .await;
    let segment: String = sqlx::query_scalar("select pg_walfile_name(pg_current_wal_lsn())")
        .fetch_one(&owner)
        .await
        .unwrap();
    let squatter = wal_folder(&backups).join(&segment);
    std::fs::write(&squatter, "not this segment").unwrap();
    sqlx::query("select pg_switch_wal()")
        .execute(&owner)
        .await
        .unwrap();

    eventually(
        "the failure in the server's log",
        Duration::from_secs(60),
        || {
            server.logs().lines().any(|line| {
                let Ok(line) = serde_json::from_str::<serde_json::Value>(line) else {
                    return false;
                };
                line["level"] == "ERROR"
                    && line["segment"] == segment.as_str()
                    && line["message"].as_str().is_some_and(|m| {
                        m.contains("archiving a WAL segment to the backup folder failed")
                    })
            })
        },
    )
    .await;
    let health = backup_health(&manager).await;
    assert!(health.archiving_fails(), "{health:?}");
    assert_eq!(health.last_archive_failure.unwrap().detail, segment);
    let page = manager.get("/backups").await.text().await.unwrap();
    assert!(page.contains("data-failing=\"archive\""), "{page}");
    assert!(page.contains("Changes are not being archived."), "{page}");
    assert_eq!(
        std::fs::read_to_string(&squatter).unwrap(),
        "not this segment",
        "the archive never overwrites a file"
    );

    // Its name freed, the segment is archived at the archiver's next try, which each finished segment wakes.
    std::fs::remove_file(&squatter).unwrap();
    let mut round = 0;
    loop {
        earn_under_load(
            std::slice::from_ref(&clerk),
            &store.members,
            &format!("retry{round}"),
            1,
            &tally,
        )
        .await;
        sqlx::query("select pg_switch_wal()")
            .execute(&owner)
            .await
            .unwrap();
        if squatter.exists() {
            break;
        }
        round += 1;
        assert!(round < 100, "{segment} was never archived");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut health = backup_health(&manager).await;
    for _ in 0..200 {
        if !health.archiving_fails() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        health = backup_health(&manager).await;
    }
    assert!(!health.archiving_fails(), "{health:?}");
    assert!(
        server
            .logs()
            .contains("archiving WAL to the backup folder works again")
    );
    owner.close().await;
    assert!(server.terminate().await.success());
}

#[tokio::test]
async fn without_a_backup_folder_managers_are_told_nothing_is_backed_up_here_and_clerks_are_refused()
 {
    let server = server::testkit::TestServer::start().await;
    let manager = ApiClient::sign_in(&server, &server.manager).await;
    let health = backup_health(&manager).await;
    assert_eq!(health, BackupHealth::default());
    let page = manager.get("/backups").await.text().await.unwrap();
    assert!(page.contains("data-backups=\"off\""), "{page}");
    let clerk = ApiClient::sign_in(&server, &server.clerk).await;
    let refused = clerk.post("backups", &[]).await;
    let (status, error) = server::testkit::refused(refused).await;
    assert_eq!(status, reqwest::StatusCode::FORBIDDEN);
    assert_eq!(error, loyalty_core::LoyaltyError::ManagersOnly);
}
