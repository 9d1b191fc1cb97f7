//! The real HTTP application over a test's database: served in the test's process, or the server binary run
//! as a process of its own.

use uuid::Uuid;

use super::db::TestDb;
use super::tls::TestTls;

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
        Self::serve(db, None, crate::wallet::WalletConfig::default()).await
    }

    /// As [`TestServer::start`], provisioning passes in the wallets `wallet` sets up.
    pub async fn start_with_wallet(wallet: crate::wallet::WalletConfig) -> Self {
        Self::serve(TestDb::with_pool_size(16).await, None, wallet).await
    }

    /// As [`TestServer::start`], over HTTPS with `tls`'s certificate; its session cookies are `Secure`.
    pub async fn start_tls(tls: &TestTls) -> Self {
        Self::serve(
            TestDb::with_pool_size(16).await,
            Some(tls.server_config()),
            crate::wallet::WalletConfig::default(),
        )
        .await
    }

    async fn serve(
        db: TestDb,
        tls: Option<std::sync::Arc<rustls::ServerConfig>>,
        wallet: crate::wallet::WalletConfig,
    ) -> Self {
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
            wallet,
            contact_key: super::contact_key(),
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
    key_file: std::path::PathBuf,
    child: Option<std::process::Child>,
}

impl ServerProcess {
    /// Starts `bin` (the test's `env!("CARGO_BIN_EXE_server")`) on `database_url` and waits until it listens.
    pub async fn start(bin: &str, database_url: &str, env: &[(&str, &str)]) -> Self {
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut all = vec![
            ("DATABASE_URL".to_owned(), database_url.to_owned()),
            ("LOYALTY_ADDR".to_owned(), addr.to_string()),
        ];
        all.extend(env.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())));
        // The tests' contact key, in a file of this process's own, unless the test names one.
        let key_file =
            std::env::temp_dir().join(format!("loyalty-contact-{}.key", Uuid::new_v4().simple()));
        if !env.iter().any(|(k, _)| *k == "LOYALTY_CONTACT_KEY_FILE") {
            std::fs::write(&key_file, super::TEST_CONTACT_KEY).expect("writing the contact key");
            all.push((
                "LOYALTY_CONTACT_KEY_FILE".to_owned(),
                key_file.display().to_string(),
            ));
        }
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
            key_file,
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
        let _ = std::fs::remove_file(&self.key_file);
    }
}

/// A loopback port nothing listens on at the moment of asking.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}
