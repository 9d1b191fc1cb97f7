//! A test's own database: made from the migrated template (through Citus: made on every node, migrated and
//! distributed), with one program in it, dropped when the test ends.

use app::db::CounterPool;
use loyalty_core::wire::Role;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::{Connection, PgConnection, PgPool};
use uuid::Uuid;

use super::citus::{citus_url, drop_distributed_database, make_distributed_database};
use super::cluster::{cluster, cluster_url, exec, template_name};
use super::server::Credentials;

/// The password of every staff member [`TestDb::staff`] makes.
pub const STAFF_PASSWORD: &str = "test-staff-password";

/// [`STAFF_PASSWORD`] hashed as the server hashes passwords, once per test process: hashing is slow on purpose.
async fn staff_password_hash() -> &'static str {
    static HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    HASH.get_or_init(|| async {
        tokio::task::spawn_blocking(|| app::auth::db::hash_password(STAFF_PASSWORD))
            .await
            .expect("hashing the test password")
    })
    .await
}

/// A fresh, migrated database with one program in it; dropped when the test ends, pass or fail.
pub struct TestDb {
    pub name: String,
    /// Connected as the server's own unprivileged role, as the server is.
    pub app: PgPool,
    /// Connected as a superuser, for setting up and for looking behind the functions.
    pub owner: PgPool,
    /// The counter's connections, as the server makes them from `app`: shared by every [`super::Till`] of
    /// the test, as one server's are by all its clerks.
    pub counter: CounterPool,
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
        Self::create(4, Some(include_str!("../../tests/fixtures/seed_017.sql"))).await
    }

    async fn create(app_connections: u32, schema: Option<&str>) -> Self {
        let options = cluster().clone();
        if schema.is_none() && citus_url().is_some() {
            let name = make_distributed_database(&options).await;
            return Self::connect(options, name, app_connections).await;
        }
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
        Self::connect(options, name, app_connections).await
    }

    async fn connect(options: PgConnectOptions, name: String, app_connections: u32) -> Self {
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
            counter: CounterPool::like(&app),
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
        let url = cluster_url();
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

    /// A new staff member of `program_id` (this database's program, or one made with [`new_program`]) named
    /// `Test clerk` or `Test manager`, with a fresh email and [`STAFF_PASSWORD`]: their id and what signs them in.
    pub async fn staff(&self, program_id: Uuid, role: Role) -> (Uuid, Credentials) {
        let email = format!("{}@test.example", Uuid::new_v4().simple());
        let name = match role {
            Role::Clerk => "Test clerk",
            Role::Manager => "Test manager",
        };
        let id = self.staff_named(program_id, &email, name, role).await;
        let password = STAFF_PASSWORD.to_owned();
        (id, Credentials { email, password })
    }

    /// A new staff member of `program_id` with this email and name, and [`STAFF_PASSWORD`].
    pub async fn staff_named(&self, program_id: Uuid, email: &str, name: &str, role: Role) -> Uuid {
        sqlx::query_scalar(
            "insert into staff (program_id, email, display_name, role, password_hash)
             values ($1, $2, $3, $4, $5) returning id",
        )
        .bind(program_id)
        .bind(email)
        .bind(name)
        .bind(role.as_sql())
        .bind(staff_password_hash().await)
        .fetch_one(&self.owner)
        .await
        .unwrap()
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

    /// Sessions of this database waiting for a lock whose activity meets `condition` (SQL over the columns of
    /// `pg_stat_activity`), on every node: through Citus a function's statements, and so its waits, are on the
    /// worker of the program's shard.
    pub async fn sessions_waiting_for_a_lock(&self, condition: &str) -> i64 {
        let activity = if citus_url().is_some() {
            "citus_stat_activity"
        } else {
            "pg_stat_activity"
        };
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select count(*) from {activity}
              where datname = current_database() and wait_event_type = 'Lock' and ({condition})"
        )))
        .fetch_one(&self.owner)
        .await
        .unwrap()
    }

    /// [`Self::sessions_waiting_for_a_lock`] of the server's role.
    pub async fn app_sessions_waiting_for_a_lock(&self) -> i64 {
        self.sessions_waiting_for_a_lock("usename = 'loyalty_app'")
            .await
    }

    /// Moves a ledger row of this program `months` into the past, as if it had been made then: set-up only, as
    /// the owner, with the ledger's append-only trigger held off for this one statement (on the row's worker too,
    /// through Citus). The new time is a value, not an expression of the column, which Citus refuses in an update.
    pub async fn backdate(&self, transaction_id: i64, months: u32) {
        let created_at: chrono::DateTime<chrono::Utc> = sqlx::query_scalar(
            "select created_at from public.transactions where program_id = $1 and id = $2",
        )
        .bind(self.program_id)
        .bind(transaction_id)
        .fetch_one(&self.owner)
        .await
        .unwrap();
        let mut tx = self.owner.begin().await.unwrap();
        // Without Citus the first is a setting nothing reads.
        for set in [
            "set local citus.propagate_set_commands = 'local'",
            "set local session_replication_role = replica",
        ] {
            sqlx::query(set).execute(&mut *tx).await.unwrap();
        }
        let changed = sqlx::query(
            "update public.transactions set created_at = $3 where program_id = $1 and id = $2",
        )
        .bind(self.program_id)
        .bind(transaction_id)
        .bind(
            created_at
                .checked_sub_months(chrono::Months::new(months))
                .unwrap(),
        )
        .execute(&mut *tx)
        .await
        .unwrap();
        assert_eq!(changed.rows_affected(), 1);
        tx.commit().await.unwrap();
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
                    if citus_url().is_some() {
                        drop_distributed_database(&options, &name).await;
                    } else if let Ok(mut admin) = PgConnection::connect_with(&options).await {
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
