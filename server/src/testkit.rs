//! The test harness (feature `testkit`): one real PostgreSQL cluster per test run, a fresh migrated database
//! per test.
//!
//! The cluster is the one `TEST_DATABASE_URL` names (a superuser URL), or else a private cluster under
//! `target/test-pg` started here with the server's own embedded module and left running for the next run
//! (the test script stops it).

use std::sync::OnceLock;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

/// The superuser URL `cluster()` was made from.
static CLUSTER_URL: OnceLock<String> = OnceLock::new();

/// A superuser connection to the cluster's maintenance database.
fn cluster() -> &'static PgConnectOptions {
    static CLUSTER: OnceLock<PgConnectOptions> = OnceLock::new();
    CLUSTER.get_or_init(|| {
        // Its own runtime, since every test has one of its own and this outlives them all.
        std::thread::spawn(|| {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(prepare_cluster())
        })
        .join()
        .expect("preparing the test cluster")
    })
}

async fn prepare_cluster() -> PgConnectOptions {
    let url = match std::env::var("TEST_DATABASE_URL") {
        Ok(url) => url,
        Err(_) => {
            // LOYALTY_TEST_PG_DIR moves it (the test script does, where the postgres user cannot enter the tree).
            let root = std::env::var_os("LOYALTY_TEST_PG_DIR").map_or_else(
                || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-pg"),
                std::path::PathBuf::from,
            );
            let port =
                std::env::var("TEST_PG_PORT").map_or(54330, |p| p.parse().expect("TEST_PG_PORT"));
            crate::embedded::EmbeddedPostgres::attach_or_start(&root, port)
                .await
                .expect("starting the test PostgreSQL cluster")
                .superuser_url("postgres")
        }
    };
    let options: PgConnectOptions = url.parse().expect("TEST_DATABASE_URL");
    CLUSTER_URL.get_or_init(|| url.clone());
    let mut admin = PgConnection::connect_with(&options)
        .await
        .expect("connecting to the test cluster");
    // Test processes started at once (several test binaries, or a worktree's) prepare the cluster one at a time.
    exec(&mut admin, "select pg_advisory_lock(7301)").await;
    // A migrated template per version of the migrations: each test's database is a cheap copy of it.
    let template = template_name();
    let exists: bool =
        sqlx::query_scalar("select exists (select 1 from pg_database where datname = $1)")
            .bind(&template)
            .fetch_one(&mut admin)
            .await
            .unwrap();
    if !exists {
        let building = format!("{template}_building_{}", Uuid::new_v4().simple());
        exec(&mut admin, &format!("create database {building}")).await;
        let mut conn = PgConnection::connect_with(&options.clone().database(&building))
            .await
            .unwrap();
        crate::database::MIGRATOR
            .run(&mut conn)
            .await
            .expect("migrating the template");
        conn.close().await.unwrap();
        exec(
            &mut admin,
            &format!("alter database {building} rename to {template}"),
        )
        .await;
    }
    exec(
        &mut admin,
        "alter role loyalty_app login password 'loyalty_app'",
    )
    .await;
    // Roles with no rights of their own, for attacks: the intruder is granted what the server's role is
    // granted on the functions, the bystander nothing.
    for role in ["intruder", "bystander"] {
        let exists: bool =
            sqlx::query_scalar("select exists (select 1 from pg_roles where rolname = $1)")
                .bind(role)
                .fetch_one(&mut admin)
                .await
                .unwrap();
        if !exists {
            exec(&mut admin, &format!("create role {role} nologin")).await;
        }
    }
    // Ends the session, and with it the advisory lock.
    admin.close().await.unwrap();
    options
}

fn template_name() -> String {
    let mut hash: u64 = 0xcbf29ce484222325;
    for migration in crate::database::MIGRATOR.iter() {
        for b in migration.checksum.iter() {
            hash = (hash ^ u64::from(*b)).wrapping_mul(0x100000001b3);
        }
    }
    format!("loyalty_template_{hash:016x}")
}

async fn exec(conn: &mut PgConnection, sql: &str) {
    sqlx::query(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(conn)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A fresh, migrated database with one program in it; dropped when the test ends, pass or fail.
pub struct TestDb {
    pub name: String,
    /// Connected as the server's own unprivileged role, as the server is.
    pub app: PgPool,
    /// Connected as a superuser, for setting up and for looking behind the functions.
    pub owner: PgPool,
    pub program_id: Uuid,
}

impl TestDb {
    pub async fn new() -> Self {
        Self::with_pool_size(8).await
    }

    pub async fn with_pool_size(app_connections: u32) -> Self {
        Self::create(app_connections, None).await
    }

    /// A database holding the design seed's own tables and functions instead of ours.
    pub async fn seed_design() -> Self {
        Self::create(4, Some(include_str!("../tests/fixtures/seed_017.sql"))).await
    }

    async fn create(app_connections: u32, schema: Option<&str>) -> Self {
        let options = cluster().clone();
        let name = format!("t_{}", Uuid::new_v4().simple());
        let mut admin = PgConnection::connect_with(&options).await.unwrap();
        let template = match schema {
            None => template_name(),
            Some(_) => "template0".to_owned(),
        };
        exec(
            &mut admin,
            &format!("create database {name} template {template}"),
        )
        .await;
        admin.close().await.unwrap();
        if let Some(sql) = schema {
            let mut conn = PgConnection::connect_with(&options.clone().database(&name))
                .await
                .unwrap();
            sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::raw_sql("grant select on all tables in schema public to loyalty_app")
                .execute(&mut conn)
                .await
                .unwrap();
            conn.close().await.unwrap();
        }
        let owner = PgPoolOptions::new()
            .max_connections(4)
            .connect_with(options.clone().database(&name))
            .await
            .unwrap();
        let app = PgPoolOptions::new()
            .max_connections(app_connections)
            .connect_with(
                options
                    .clone()
                    .database(&name)
                    .username("loyalty_app")
                    .password("loyalty_app"),
            )
            .await
            .unwrap();
        let program_id = new_program(&owner, "Test program").await;
        Self {
            name,
            app,
            owner,
            program_id,
        }
    }

    /// The options of this database as a superuser, for tests that need their own connections.
    pub fn owner_options(&self) -> PgConnectOptions {
        cluster().clone().database(&self.name)
    }

    /// This database's URL as a superuser, for a server process that applies the migrations itself.
    pub fn owner_url(&self) -> String {
        cluster();
        let url = CLUSTER_URL.get().expect("the cluster's URL");
        let (scheme, rest) = url.split_once("://").expect("a URL");
        let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
        let query = path.split_once('?').map_or("", |(_, q)| q);
        let query = if query.is_empty() {
            String::new()
        } else {
            format!("?{query}")
        };
        format!("{scheme}://{authority}/{}{query}", self.name)
    }

    /// A member pass of this program with `points`, made through the hardened functions.
    pub async fn member(&self, points: i64) -> String {
        member_of(&self.owner, self.program_id, points).await
    }

    /// A fresh, unclaimed postcard code of this program.
    pub async fn postcard(&self) -> String {
        postcard_of(&self.owner, self.program_id).await
    }

    pub async fn balance(&self, external_id: &str) -> i64 {
        sqlx::query_scalar::<_, i32>("select points from passes_master where external_id = $1")
            .bind(external_id)
            .fetch_one(&self.owner)
            .await
            .unwrap()
            .into()
    }

    pub async fn ledger_rows(&self) -> i64 {
        sqlx::query_scalar("select count(*) from transactions")
            .fetch_one(&self.owner)
            .await
            .unwrap()
    }

    /// Passes whose balance is not the sum of their ledger: must always be none.
    pub async fn invariant_violations(&self) -> Vec<String> {
        sqlx::query_scalar(
            "select m.external_id
               from passes_master m
               left join transactions t on t.program_id = m.program_id and t.member_id = m.id
              group by m.program_id, m.id, m.external_id, m.points
             having m.points <> coalesce(sum(case t.type when 'EARN' then t.points else -t.points end), 0)
                 or m.points < 0",
        )
        .fetch_all(&self.owner)
        .await
        .unwrap()
    }
}

pub async fn new_program(owner: &PgPool, name: &str) -> Uuid {
    sqlx::query_scalar("insert into programs (name) values ($1) returning id")
        .bind(name)
        .fetch_one(owner)
        .await
        .unwrap()
}

pub async fn member_of(owner: &PgPool, program_id: Uuid, points: i64) -> String {
    let external_id: String = sqlx::query_scalar(
        "select public.create_member_pass($1, 'MBR') -> 'data' ->> 'external_id'",
    )
    .bind(program_id)
    .fetch_one(owner)
    .await
    .unwrap();
    if points > 0 {
        let answer: serde_json::Value = sqlx::query_scalar(
            "select public.process_membership_transaction($1, $2, $3, 'EARN', 'opening balance')",
        )
        .bind(program_id)
        .bind(&external_id)
        .bind(points)
        .fetch_one(owner)
        .await
        .unwrap();
        assert_eq!(answer["success"], true, "{answer}");
    }
    external_id
}

pub async fn postcard_of(owner: &PgPool, program_id: Uuid) -> String {
    sqlx::query_scalar("insert into claim_codes (program_id, code) values ($1, public.new_claim_code()) returning code")
        .bind(program_id)
        .fetch_one(owner)
        .await
        .unwrap()
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        let options = cluster().clone();
        // Drop runs inside the test's runtime, which cannot be blocked on: the clean-up gets a thread of its own.
        std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .unwrap()
                .block_on(async move {
                    if let Ok(mut admin) = PgConnection::connect_with(&options).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "drop database if exists {name} with (force)"
                        )))
                        .execute(&mut admin)
                        .await;
                    }
                })
        })
        .join()
        .ok();
    }
}

/// The real HTTP application on 127.0.0.1 over a fresh database, with a clerk and a manager of its program.
pub struct TestServer {
    pub db: TestDb,
    /// `http://127.0.0.1:<port>`, or `https://` for [`TestServer::start_tls`]
    pub url: String,
    pub clerk: Credentials,
    pub manager: Credentials,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug, Clone)]
pub struct Credentials {
    pub email: String,
    pub password: String,
}

impl TestServer {
    pub async fn start() -> Self {
        Self::on(TestDb::with_pool_size(16).await).await
    }

    /// Serves the app over `db`, adding a clerk and a manager to its program.
    pub async fn on(db: TestDb) -> Self {
        Self::serve(db, None).await
    }

    /// As [`TestServer::start`], over HTTPS with `tls`'s certificate; its session cookies are `Secure`.
    pub async fn start_tls(tls: &TestTls) -> Self {
        Self::serve(TestDb::with_pool_size(16).await, Some(tls.server_config())).await
    }

    async fn serve(db: TestDb, tls: Option<std::sync::Arc<rustls::ServerConfig>>) -> Self {
        use loyalty_core::wire::Role;
        let clerk = Credentials {
            email: "clerk@test.example".into(),
            password: "clerk-password-1".into(),
        };
        let manager = Credentials {
            email: "manager@test.example".into(),
            password: "manager-password-1".into(),
        };
        for (who, name, role) in [
            (&clerk, "Test Clerk", Role::Clerk),
            (&manager, "Test Manager", Role::Manager),
        ] {
            app::auth::db::create_staff(
                &db.owner,
                db.program_id,
                &who.email,
                name,
                role,
                &who.password,
            )
            .await
            .expect("creating test staff");
        }
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = crate::router(crate::AppState {
            pool: db.app.clone(),
            leptos_options: crate::leptos_options("target/site", addr),
            secure_cookies: tls.is_some(),
        })
        .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let (scheme, task) = match tls {
            None => (
                "http",
                tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }),
            ),
            Some(tls) => {
                use axum::serve::ListenerExt;
                let listener = crate::tls::TlsListener::new(listener, tls)
                    .unwrap()
                    .tap_io(|_| {});
                (
                    "https",
                    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() }),
                )
            }
        };
        Self {
            db,
            url: format!("{scheme}://{addr}"),
            clerk,
            manager,
            task,
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The real server binary as a process of its own on a loopback port, for tests about the process: killed,
/// restarted, or cut off from its database. Its log lines are kept in a file.
pub struct ServerProcess {
    bin: std::path::PathBuf,
    env: Vec<(String, String)>,
    pub addr: std::net::SocketAddr,
    /// `http://127.0.0.1:<port>`, or `https://` for [`TestServer::start_tls`]
    pub url: String,
    pub log: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl ServerProcess {
    /// Starts `bin` (the test's `env!("CARGO_BIN_EXE_server")`) on `database_url` and waits until it listens.
    pub async fn start(bin: &str, database_url: &str, env: &[(&str, &str)]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
        let mut all = vec![
            ("DATABASE_URL".to_owned(), database_url.to_owned()),
            ("LOYALTY_ADDR".to_owned(), addr.to_string()),
        ];
        all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        let scheme = if env.iter().any(|(k, _)| *k == "LOYALTY_TLS_CERT") {
            "https"
        } else {
            "http"
        };
        let mut server = Self {
            bin: bin.into(),
            env: all,
            addr,
            url: format!("{scheme}://{addr}"),
            log: std::env::temp_dir()
                .join(format!("loyalty-server-{}.log", Uuid::new_v4().simple())),
            child: None,
        };
        server.restart().await;
        server
    }

    /// Starts the process again on the same port and database, and waits until it listens.
    pub async fn restart(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("the server's log file");
        let child = std::process::Command::new(&self.bin)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(std::process::Stdio::null())
            .stdout(log.try_clone().expect("the server's log file"))
            .stderr(log)
            .spawn()
            .expect("starting the server binary");
        self.child = Some(child);
        // Bounded: the server listens once its database is open and migrated.
        for _ in 0..600 {
            if tokio::net::TcpStream::connect(self.addr).await.is_ok() {
                return;
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!("the server exited with {status}:\n{}", self.logs());
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        panic!(
            "the server did not listen within a minute:\n{}",
            self.logs()
        );
    }

    /// The running process's id, for sending it a signal.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(std::process::Child::id)
    }

    /// SIGKILL: no shutdown, no flushing, no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Everything the process has written so far.
    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// A signed-in API client: the session cookie and the CSRF token its state-changing requests carry. The
/// fields are public so a test can relabel a cookie or build a client with no session.
#[derive(Debug, Clone)]
pub struct ApiClient {
    pub http: reqwest::Client,
    /// The server's base URL, `http://127.0.0.1:<port>`.
    pub url: String,
    /// The `Cookie` header value, `loyalty_session=…`.
    pub cookie: String,
    pub csrf: String,
}

impl ApiClient {
    /// Signs `who` in to a [`TestServer`] with a plain client.
    pub async fn sign_in(server: &TestServer, who: &Credentials) -> Self {
        Self::sign_in_using(reqwest::Client::new(), &server.url, who).await
    }

    /// Signs `who` in to the server at `url` (a [`ServerProcess`], say) and keeps `http` for its requests: a
    /// client with a timeout, or one that shows redirects rather than following them.
    pub async fn sign_in_using(http: reqwest::Client, url: &str, who: &Credentials) -> Self {
        let response = http
            .post(format!("{url}/api/sign_in"))
            .form(&[
                ("email", who.email.as_str()),
                ("password", who.password.as_str()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            reqwest::StatusCode::OK,
            "signing in {}",
            who.email
        );
        let cookie = session_cookie(&response).expect("a session cookie");
        let session: loyalty_core::wire::StaffSession = response.json().await.unwrap();
        Self {
            http,
            url: url.to_owned(),
            cookie,
            csrf: session.csrf_token,
        }
    }

    /// A POST to `/api/<endpoint>` with this session's cookie.
    pub async fn post(&self, endpoint: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        self.http
            .post(format!("{}/api/{endpoint}", self.url))
            .header(reqwest::header::COOKIE, &self.cookie)
            .form(fields)
            .send()
            .await
            .unwrap()
    }

    /// A state-changing call, with this session's CSRF token.
    pub async fn change(&self, endpoint: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let mut all = vec![("csrf", self.csrf.as_str())];
        all.extend_from_slice(fields);
        self.post(endpoint, &all).await
    }

    /// A GET of `path` (a page, say: `/member/…`) with this session's cookie.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.url))
            .header(reqwest::header::COOKIE, &self.cookie)
            .send()
            .await
            .unwrap()
    }
}

/// The `loyalty_session=…` cookie a response sets, as a `Cookie` header value.
pub fn session_cookie(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("loyalty_session="))
        .map(|v| v.split(';').next().unwrap_or_default().to_owned())
}

/// A refused call's status and the domain error its JSON body carries.
pub async fn refused(
    response: reqwest::Response,
) -> (reqwest::StatusCode, loyalty_core::LoyaltyError) {
    let status = response.status();
    let body = response.text().await.unwrap();
    let err = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{status} {body}: {e}"));
    (status, err)
}

/// A private certificate authority of its own and a server certificate it signed for 127.0.0.1 and
/// localhost, as PEM files in a folder removed on drop: for tests of HTTPS, where a client trusts this CA only
/// because it is told to.
pub struct TestTls {
    dir: std::path::PathBuf,
    /// The CA's certificate, for a client's extra roots.
    pub ca_pem: std::path::PathBuf,
    /// The server's certificate followed by the CA's: the chain a server presents.
    pub chain_pem: std::path::PathBuf,
    pub key_pem: std::path::PathBuf,
}

impl TestTls {
    pub fn generate() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
        let mut ca = CertificateParams::new(Vec::<String>::new()).expect("CA parameters");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(rcgen::DnType::CommonName, "Loyalty test CA");
        let ca = CertifiedIssuer::self_signed(ca, KeyPair::generate().expect("a CA key"))
            .expect("the CA certificate");
        let key = KeyPair::generate().expect("a server key");
        let server = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .expect("server parameters")
            .signed_by(&key, &ca)
            .expect("the server certificate");
        let dir = std::env::temp_dir().join(format!("loyalty-tls-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("a folder for the test certificates");
        let write = |name: &str, pem: String| {
            let path = dir.join(name);
            std::fs::write(&path, pem).expect("writing a test certificate");
            path
        };
        Self {
            ca_pem: write("ca.pem", ca.pem()),
            chain_pem: write("chain.pem", format!("{}{}", server.pem(), ca.pem())),
            key_pem: write("key.pem", key.serialize_pem()),
            dir,
        }
    }

    /// The server side, as the server binary builds it from the same files.
    pub fn server_config(&self) -> std::sync::Arc<rustls::ServerConfig> {
        crate::tls::server_config(&self.chain_pem, &self.key_pem).expect("the test TLS identity")
    }

    /// A client that trusts this CA (beside the system's roots) and keeps cookies out of it.
    pub fn client(&self) -> reqwest::Client {
        let pem = std::fs::read(&self.ca_pem).expect("the test CA file");
        reqwest::Client::builder()
            .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&pem).expect("the test CA"))
            .build()
            .expect("an HTTPS client")
    }
}

impl Drop for TestTls {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
