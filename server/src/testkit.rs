//! The test harness (feature `testkit`): one real PostgreSQL cluster per test run, a fresh migrated database
//! per test, the real HTTP application over it, and counters signed in as its staff that call what the
//! server's own functions call.

mod api;
mod citus;
mod cluster;
mod db;
mod server;
mod till;
mod tls;
mod wallet;

pub use api::{ApiClient, refused, session_cookie};
pub use citus::{DISTRIBUTE_SQL, Worker, citus_url, run_sql_file, workers};
pub use db::{STAFF_PASSWORD, TestDb, member_of, new_program, postcard_of};
pub use server::{Credentials, ServerProcess, TestServer, free_port};
pub use till::{REASON, Till, points_request};
pub use tls::TestTls;
pub use wallet::{TEST_PASS_TYPE_ID, TestPassIdentity};

/// The secret of [`contact_key`].
pub const TEST_CONTACT_KEY: &str = "the tests' contact key, never a real one";

/// The contact key of every test server, server process and till: tests can work out the digest a contact is
/// kept under.
pub fn contact_key() -> app::contacts::db::ContactKey {
    app::contacts::db::ContactKey::new(TEST_CONTACT_KEY.as_bytes()).expect("long enough")
}
