//! The test harness (feature `testkit`): one real PostgreSQL cluster per test run, a fresh migrated database
//! per test, and the real HTTP application over it.

mod api;
mod cluster;
mod db;
mod server;
mod tls;

pub use api::{ApiClient, refused, session_cookie};
pub use db::{TestDb, member_of, new_program, postcard_of};
pub use server::{Credentials, ServerProcess, TestServer};
pub use tls::TestTls;
