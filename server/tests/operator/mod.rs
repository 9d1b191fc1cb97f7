//! The server binary as an operator runs it: on its own embedded database in a folder of its own, started,
//! signalled and restarted as a service manager would, with tills earning through its API.
#![allow(dead_code, reason = "each test file uses its own part")]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use loyalty_core::wire::{PointsReceipt, Role};
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use server::testkit::{ApiClient, Credentials, member_of, new_program};
use sqlx::PgPool;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A folder for one test's data and backups, under the system's temporary folder (which the `postgres` user
/// can enter when the tests run as root). Dropped, it stops any cluster left running in it and is removed.
pub struct Folder(PathBuf);

impl Folder {
    pub fn new(purpose: &str) -> Self {
        let path = std::env::temp_dir().join(format!(
            "loyalty-{purpose}-{}",
            uuid::Uuid::new_v4().simple()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Self(path)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let pgdata = self.0.join("data/pgdata");
        if pgdata.join("postmaster.pid").exists() {
            stop_cluster_now(&pgdata);
        }
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Stops the cluster in `pgdata` at once, as a power cut would: no checkpoint, nothing more archived.
pub fn stop_cluster_now(pgdata: &Path) {
    let pgdata = pgdata.to_owned();
    std::thread::spawn(move || {
        tokio::runtime::Runtime::new().unwrap().block_on(async {
            let programs = server::embedded::PgPrograms::find().unwrap();
            let pgdata = pgdata.to_str().unwrap();
            programs
                .run("pg_ctl", &["-D", pgdata, "stop", "-m", "immediate", "-w"])
                .await
                .unwrap()
        })
    })
    .join()
    .unwrap();
}

/// The server binary's arguments for a folder's embedded database, with backups into `backups` if given.
pub fn embedded_args(folder: &Folder, pg_port: u16, backups: Option<&Path>) -> Vec<String> {
    let mut args = vec![
        "--data-dir".to_owned(),
        folder.join("data").display().to_string(),
        "--pg-port".to_owned(),
        pg_port.to_string(),
    ];
    if let Some(backups) = backups {
        args.extend(["--backup-dir".to_owned(), backups.display().to_string()]);
    }
    args
}

/// Runs a command of the server binary (`backup`, `restore`) to its end.
pub fn run_command(args: &[String]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_server"))
        .args(args)
        .env_remove("DATABASE_URL")
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

/// The server binary serving on `addr`, its output in a log file.
pub struct Server {
    child: Option<Child>,
    pub url: String,
    log: PathBuf,
}

impl Server {
    /// Starts the binary with `args` and `--addr addr`, and waits until it says it listens.
    pub async fn start(addr: std::net::SocketAddr, args: &[String], env: &[(&str, &str)]) -> Self {
        let log = std::env::temp_dir().join(format!(
            "loyalty-server-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        let out = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_server"))
            .args(args)
            .args(["--addr", &addr.to_string()])
            .envs(env.iter().copied())
            .env_remove("DATABASE_URL")
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        let mut server = Self {
            child: Some(child),
            url: format!("http://{addr}"),
            log,
        };
        let listening = format!("Loyalty dashboard: http://{addr}/");
        eventually("the server to listen", Duration::from_secs(120), || {
            if let Some(status) = server.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("the server exited with {status}:\n{}", server.logs());
            }
            server.logs().contains(&listening)
        })
        .await;
        server
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    /// SIGTERM, as a service manager stops a service, and its exit.
    pub async fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not stop:\n{}",
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL: the process ends at once, leaving its cluster running.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Waits until `condition` holds, looking every 50 ms for at most `limit`; fails naming `what`.
pub async fn eventually(what: &str, limit: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "waited in vain for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The embedded cluster's `loyalty` database as its superuser, with the password kept in the data folder.
pub async fn owner_pool(folder: &Folder, pg_port: u16) -> PgPool {
    let password = std::fs::read_to_string(folder.join("data/superuser.password")).unwrap();
    let options = PgConnectOptions::new()
        .host("127.0.0.1")
        .port(pg_port)
        .username("postgres")
        .password(password.trim())
        .database("loyalty");
    PgPoolOptions::new()
        .max_connections(2)
        .connect_with(options)
        .await
        .unwrap()
}

/// A program of the test's own, with clerks, a manager and members at zero points.
pub struct Store {
    pub program_id: uuid::Uuid,
    pub clerks: Vec<Credentials>,
    pub manager: Credentials,
    pub members: Vec<String>,
}

impl Store {
    pub async fn open(owner: &PgPool, clerks: usize, members: usize) -> Self {
        let program_id = new_program(owner, "Operations test").await;
        let staff = |who: &str, i: usize| Credentials {
            email: format!("{who}{i}@operations.example"),
            password: format!("{who}-password-{i}"),
        };
        let clerks: Vec<Credentials> = (0..clerks).map(|i| staff("clerk", i)).collect();
        let manager = staff("manager", 0);
        for (who, role) in clerks
            .iter()
            .map(|c| (c, Role::Clerk))
            .chain([(&manager, Role::Manager)])
        {
            app::auth::db::create_staff(
                owner,
                program_id,
                &who.email,
                "Staff",
                role,
                &who.password,
            )
            .await
            .unwrap();
        }
        let mut all = Vec::new();
        for _ in 0..members {
            all.push(member_of(owner, program_id, 0).await);
        }
        Self {
            program_id,
            clerks,
            manager,
            members: all,
        }
    }

    /// The ledger's idempotency keys and points of this program, by key.
    pub async fn ledger(&self, owner: &PgPool) -> HashMap<String, i64> {
        sqlx::query_as::<_, (String, i64)>(
            "select idempotency_key, points::bigint from transactions
              where program_id = $1 and idempotency_key is not null",
        )
        .bind(self.program_id)
        .fetch_all(owner)
        .await
        .unwrap()
        .into_iter()
        .collect()
    }

    /// Each member's balance, by external id.
    pub async fn balances(&self, owner: &PgPool) -> HashMap<String, i64> {
        sqlx::query_as::<_, (String, i64)>(
            "select external_id, points::bigint from passes_master where program_id = $1",
        )
        .bind(self.program_id)
        .fetch_all(owner)
        .await
        .unwrap()
        .into_iter()
        .collect()
    }
}

/// A till: a clerk's session on its own HTTP client (and so its own connections).
pub async fn till(url: &str, clerk: &Credentials) -> ApiClient {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    ApiClient::sign_in_using(http, url, clerk).await
}

/// One acknowledged earn.
#[derive(Debug, Clone)]
pub struct Earned {
    pub key: String,
    pub member: String,
    pub points: i64,
}

/// What the tills saw: the earns acknowledged, every answer that was not, and how often nothing came back.
#[derive(Debug, Default)]
pub struct Tally {
    pub acknowledged: Vec<Earned>,
    pub unexpected: Vec<(StatusCode, String)>,
    pub no_answer: usize,
    pub replayed: usize,
}

/// Earns `points` for `member` under `key`, as a sale of as many units at the default rate, sending it again
/// with the same key whenever no answer came (a connection reset, say), as a till does; the answer, once one
/// comes.
pub async fn earn(
    till: &ApiClient,
    member: &str,
    points: i64,
    key: &str,
    tally: &Mutex<Tally>,
) -> (StatusCode, String) {
    let points = points.to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "no answer to {key} for a minute");
        let sent = till
            .http
            .post(format!("{}/api/earn_sale", till.url))
            .header(COOKIE, &till.cookie)
            .form(&[
                ("csrf", till.csrf.as_str()),
                ("external_id", member),
                // A sale of whole units: a program of the default rate earns one point per unit.
                ("amount", &points),
                ("idempotency_key", key),
            ])
            .send()
            .await;
        match sent {
            Ok(response) => {
                let status = response.status();
                match response.text().await {
                    Ok(body) => return (status, body),
                    Err(_) => tally.lock().unwrap().no_answer += 1,
                }
            }
            Err(_) => tally.lock().unwrap().no_answer += 1,
        }
    }
}

/// Sends `rounds` earns from each till at once, each under a key of its own starting with `label`, and
/// records the outcomes in `tally`.
pub async fn earn_under_load(
    tills: &[ApiClient],
    members: &[String],
    label: &str,
    rounds: usize,
    tally: &Arc<Mutex<Tally>>,
) {
    let mut tasks = Vec::new();
    for (t, till) in tills.iter().enumerate() {
        let (till, members, label, tally) = (
            till.clone(),
            members.to_vec(),
            label.to_owned(),
            tally.clone(),
        );
        tasks.push(tokio::spawn(async move {
            for round in 0..rounds {
                let key = format!("{label}-{t}-{round}");
                let member = &members[(t + round) % members.len()];
                let points = 1 + (round % 5) as i64;
                record(
                    &tally,
                    &key,
                    member,
                    points,
                    earn(&till, member, points, &key, &tally).await,
                );
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
}

/// Notes one answer in the tally.
pub fn record(
    tally: &Mutex<Tally>,
    key: &str,
    member: &str,
    points: i64,
    answer: (StatusCode, String),
) {
    let (status, body) = answer;
    let mut tally = tally.lock().unwrap();
    if status != StatusCode::OK {
        tally.unexpected.push((status, body));
        return;
    }
    let receipt: PointsReceipt = serde_json::from_str(&body).unwrap();
    tally.replayed += usize::from(receipt.replayed);
    tally.acknowledged.push(Earned {
        key: key.to_owned(),
        member: member.to_owned(),
        points,
    });
}

/// Checks the ledger holds exactly `earned`, once each, and every balance is the sum of its member's earns.
pub async fn assert_ledger_is(store: &Store, owner: &PgPool, earned: &[Earned]) {
    let ledger = store.ledger(owner).await;
    let expected: HashMap<String, i64> = earned.iter().map(|e| (e.key.clone(), e.points)).collect();
    assert_eq!(expected.len(), earned.len(), "a key was acknowledged twice");
    let missing: Vec<&String> = expected
        .keys()
        .filter(|k| !ledger.contains_key(*k))
        .collect();
    let extra: Vec<&String> = ledger
        .keys()
        .filter(|k| !expected.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "acknowledged but missing: {missing:?}; in the ledger but not expected: {extra:?}"
    );
    assert_eq!(ledger, expected, "points differ");
    let mut sums: HashMap<String, i64> = store.members.iter().map(|m| (m.clone(), 0)).collect();
    for e in earned {
        *sums.get_mut(&e.member).unwrap() += e.points;
    }
    assert_eq!(store.balances(owner).await, sums);
}

/// Ends the WAL segment in use and waits until the archiver has archived it: everything committed before is
/// then in the backup folder.
pub async fn archive_now(owner: &PgPool) -> String {
    let segment: String = sqlx::query_scalar("select pg_walfile_name(pg_switch_wal())")
        .fetch_one(owner)
        .await
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let archived: Option<String> =
            sqlx::query_scalar("select last_archived_wal from pg_stat_archiver")
                .fetch_one(owner)
                .await
                .unwrap();
        // Segments are archived in order; a name with a suffix (`.backup`) is a file beside its segment.
        let done = archived.as_deref().is_some_and(|last| {
            last == segment || last.get(..24).is_some_and(|last| last > segment.as_str())
        });
        if done {
            return segment;
        }
        assert!(
            Instant::now() < deadline,
            "{segment} was not archived; the archiver says {archived:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
