//! The server binary as a newcomer and an operator use it: the embedded default as an ordinary user, and the
//! command that creates a program's first manager.

use std::process::{Command, Stdio};
use std::time::Duration;

use loyalty_core::wire::Role;
use server::testkit::{ApiClient, Credentials, ServerProcess, TestDb, TestTls, free_port};

fn is_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").unwrap().uid() == 0
}

/// Runs the server binary as an ordinary user: as root, as the `postgres` system user (not root) from a copy in
/// `home` (which that user can reach wherever the tree is), otherwise as whoever runs the tests.
fn as_ordinary_user(home: &std::path::Path, args: &[&str]) -> Command {
    let bin = env!("CARGO_BIN_EXE_server");
    let mut cmd = if is_root() {
        let copy = home.join("server");
        std::fs::copy(bin, &copy).unwrap();
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(copy);
        cmd
    } else {
        Command::new(bin)
    };
    cmd.args(args).env_remove("DATABASE_URL").current_dir("/");
    cmd
}

#[tokio::test]
async fn an_ordinary_user_runs_the_embedded_default_and_sigterm_stops_its_cluster() {
    let root = std::env::temp_dir().join(format!("loyalty-user-{}", uuid::Uuid::new_v4().simple()));
    std::fs::create_dir_all(&root).unwrap();
    if is_root() {
        let status = Command::new("chown")
            .args(["postgres:", root.to_str().unwrap()])
            .status()
            .unwrap();
        assert!(status.success());
    }
    let data = root.join("data");
    let (port, pg_port) = (free_port(), free_port());
    let addr = format!("127.0.0.1:{port}");
    let log =
        std::fs::File::create(std::env::temp_dir().join(format!("{}.log", uuid::Uuid::new_v4())))
            .unwrap();
    let mut server = as_ordinary_user(
        &root,
        &[
            "--data-dir",
            data.to_str().unwrap(),
            "--addr",
            &addr,
            "--pg-port",
            &pg_port.to_string(),
        ],
    )
    .stdout(Stdio::piped())
    .stderr(log)
    .spawn()
    .unwrap();

    // Bounded wait for the server to answer.
    let health = format!("http://{addr}/healthz");
    let mut up = false;
    for _ in 0..300 {
        if let Ok(response) = reqwest::get(&health).await
            && response.status() == 200
        {
            up = true;
            break;
        }
        if server.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "the server did not come up as an ordinary user");
    let pid_file = data.join("pgdata/postmaster.pid");
    assert!(pid_file.exists(), "the cluster runs from the data folder");

    // SIGTERM to the server itself (under runuser, its child), as a service manager sends it.
    let pid = if is_root() {
        let children = Command::new("pgrep")
            .args(["-P", &server.id().to_string()])
            .output()
            .unwrap();
        String::from_utf8_lossy(&children.stdout).trim().to_owned()
    } else {
        server.id().to_string()
    };
    let status = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(status.success());
    let output = tokio::task::spawn_blocking(move || server.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    assert!(output.status.success(), "{output:?}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(stdout.contains("Seeded the demo program"), "{stdout}");
    assert!(
        stdout.contains("sign in as clerk with clerk@demo.test"),
        "{stdout}"
    );
    assert!(!pid_file.exists(), "SIGTERM must stop the cluster too");
    std::fs::remove_dir_all(&root).unwrap();
}

#[tokio::test]
async fn create_manager_makes_the_program_and_a_manager_who_can_sign_in() {
    let db = TestDb::new().await;
    let run = |email: &str| {
        Command::new(env!("CARGO_BIN_EXE_server"))
            .args([
                "create-manager",
                "--program",
                "Corner Coffee",
                "--email",
                email,
                "--name",
                "Ada Owner",
            ])
            .env("DATABASE_URL", db.owner_url())
            .env("LOYALTY_MANAGER_PASSWORD", "a long enough password")
            .output()
            .unwrap()
    };
    let first = run("Owner@Corner.example");
    assert!(first.status.success(), "{first:?}");
    let session = app::auth::db::sign_in(
        &db.app,
        "owner@corner.example",
        "a long enough password",
        "test",
    )
    .await
    .unwrap();
    assert_eq!(session.staff.role, Role::Manager);
    assert_eq!(session.staff.program_name, "Corner Coffee");

    let again = run("owner@corner.example");
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("already has an account in this program"),
        "{again:?}"
    );
    // A second manager joins the same program rather than making another.
    assert!(run("second@corner.example").status.success());
    let programs: i64 =
        sqlx::query_scalar("select count(*) from programs where name = 'Corner Coffee'")
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(programs, 1);
}

#[tokio::test]
async fn given_a_certificate_the_server_serves_https_only_and_its_session_cookie_is_secure() {
    let db = TestDb::new().await;
    let clerk = Credentials {
        email: "clerk@tls.example".into(),
        password: "clerk-password-1".into(),
    };
    app::auth::db::create_staff(
        &db.owner,
        db.program_id,
        &clerk.email,
        "TLS Clerk",
        Role::Clerk,
        &clerk.password,
    )
    .await
    .unwrap();
    let tls = TestTls::generate();
    let server = ServerProcess::start(
        env!("CARGO_BIN_EXE_server"),
        &db.owner_url(),
        &[
            ("LOYALTY_TLS_CERT", tls.chain_pem.to_str().unwrap()),
            ("LOYALTY_TLS_KEY", tls.key_pem.to_str().unwrap()),
        ],
    )
    .await;
    assert!(server.url.starts_with("https://"), "{}", server.url);

    let signed_in = tls
        .client()
        .post(format!("{}/api/sign_in", server.url))
        .form(&[("email", &clerk.email), ("password", &clerk.password)])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), reqwest::StatusCode::OK);
    let cookie = signed_in
        .headers()
        .get(reqwest::header::SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );

    // A signed-in sale over HTTPS, carried out.
    let member = db.member(10).await;
    let session = ApiClient::sign_in_using(tls.client(), &server.url, &clerk).await;
    let earned = session
        .change(
            "earn_sale",
            &[
                ("external_id", &member),
                ("amount", "5"),
                ("idempotency_key", "tls-earn-1"),
            ],
        )
        .await;
    assert_eq!(earned.status(), reqwest::StatusCode::OK);
    assert_eq!(db.balance(&member).await, 15);

    // Plain HTTP on the same port gets no answer, and a client that does not trust the CA gets no session.
    let plain = reqwest::get(format!("http://{}/healthz", server.addr)).await;
    assert!(plain.is_err(), "{plain:?}");
    let untrusting = reqwest::get(format!("{}/healthz", server.url)).await;
    assert!(untrusting.is_err(), "{untrusting:?}");
    let trusted = tls
        .client()
        .get(format!("{}/healthz", server.url))
        .send()
        .await
        .unwrap();
    assert_eq!(trusted.status(), reqwest::StatusCode::OK);
}

/// Whether a client that trusts only `tls`'s CA gets an answer from `url`: a fresh client, so a fresh handshake.
async fn trusted_by(tls: &TestTls, url: &str) -> bool {
    tls.client()
        .get(format!("{url}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
}

fn hang_up(server: &ServerProcess) {
    let status = Command::new("kill")
        .args(["-HUP", &server.pid().unwrap().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

#[tokio::test]
async fn a_renewed_certificate_is_served_after_sighup_and_an_unreadable_one_leaves_the_old_in_use()
{
    let db = TestDb::new().await;
    let (first, renewed) = (TestTls::generate(), TestTls::generate());
    let dir = std::env::temp_dir().join(format!("loyalty-renewal-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let (chain, key) = (dir.join("chain.pem"), dir.join("key.pem"));
    let install = |tls: &TestTls| {
        std::fs::copy(&tls.chain_pem, &chain).unwrap();
        std::fs::copy(&tls.key_pem, &key).unwrap();
    };
    install(&first);
    let server = ServerProcess::start(
        env!("CARGO_BIN_EXE_server"),
        &db.owner_url(),
        &[
            ("LOYALTY_TLS_CERT", chain.to_str().unwrap()),
            ("LOYALTY_TLS_KEY", key.to_str().unwrap()),
        ],
    )
    .await;
    assert!(trusted_by(&first, &server.url).await);
    assert!(!trusted_by(&renewed, &server.url).await);
    let deadline = || std::time::Instant::now() + Duration::from_secs(20);

    // A half-written renewal: the reload is refused, said in the log, and the old certificate stays.
    std::fs::write(&chain, "not a certificate yet").unwrap();
    hang_up(&server);
    let until = deadline();
    while !server
        .logs()
        .contains("the TLS certificate was not reloaded")
    {
        assert!(
            std::time::Instant::now() < until,
            "the failed reload was not logged"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(trusted_by(&first, &server.url).await);

    install(&renewed);
    hang_up(&server);
    let until = deadline();
    while !trusted_by(&renewed, &server.url).await {
        assert!(
            std::time::Instant::now() < until,
            "the renewed certificate was not served"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(!trusted_by(&first, &server.url).await);
    assert!(server.logs().contains("reloaded the TLS certificate"));
    std::fs::remove_dir_all(&dir).unwrap();
}
