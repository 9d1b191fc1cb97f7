//! Staff sessions: the cookie that names one, the staff member it signs in, and the statements that check it
//! in the same round trip as the change they guard.

use loyalty_core::wire::Role;
use loyalty_core::{LoyaltyError, Result};
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use uuid::Uuid;

use crate::db::{CounterConnection, CounterPool, db_error};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "loyalty_session";
/// A session ends after this long without a request.
pub const IDLE_MINUTES: i64 = 30;
/// And after this long in any case.
pub const MAX_HOURS: i64 = 12;

/// A signed-in staff member, as every request sees them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staff {
    pub id: Uuid,
    pub program_id: Uuid,
    pub program_name: String,
    /// The program's time zone (`Europe/Paris`, say): its days and the times its staff read.
    pub time_zone: String,
    pub name: String,
    pub email: String,
    pub role: Role,
    pub csrf_token: String,
}

pub(crate) fn token_hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

pub(crate) fn parse_cookie(cookie_value: &str) -> Option<(Uuid, &str)> {
    let (program, token) = cookie_value.split_once('.')?;
    Some((program.parse().ok()?, token))
}

/// Whether session `s` is open: program `$1`, token hashing to `$2`, used within `$3` minutes and signed in
/// within `$4` hours.
#[doc(hidden)]
#[macro_export]
macro_rules! open_session {
    () => {
        " s.program_id = $1 and s.token_hash = $2
          and s.last_seen_at > now() - make_interval(mins => $3::int)
          and s.created_at > now() - make_interval(hours => $4::int)"
    };
}

/// A change made as the staff member of a session, checked in the same statement: the session must be open and
/// `$5` must be its CSRF token, or `$call` does not run. `$call` names the staff member `s.staff_id` (a session
/// ends with its staff member: the foreign key cascades) and takes its own arguments from `$6`. The columns:
/// whether the CSRF token matched, whether the session's idle clock wants moving on, and the call's answer. One
/// round trip instead of a look-up, then the call. The tokens are compared by their digests, so the time the
/// comparison takes says nothing of the token.
#[macro_export]
macro_rules! in_session {
    ($call:literal) => {
        concat!(
            "select s.csrf_ok, s.stale, case when s.csrf_ok then ",
            $call,
            " end from (select s.staff_id,
                               pg_catalog.sha256(pg_catalog.convert_to(s.csrf_token, 'UTF8'))
                                 = pg_catalog.sha256(pg_catalog.convert_to($5, 'UTF8')) as csrf_ok,
                               s.last_seen_at < now() - interval '1 minute' as stale
                          from public.staff_sessions s
                         where",
            $crate::open_session!(),
            ") s"
        )
    };
}

/// A session cookie as a request carries it, not yet checked: for a change that checks it in its own statement
/// ([`in_session!`]).
#[derive(Debug, Clone)]
pub struct SessionKey {
    pub program_id: Uuid,
    token_hash: Vec<u8>,
}

impl SessionKey {
    pub fn from_cookie(cookie_value: &str) -> Option<Self> {
        let (program_id, token) = parse_cookie(cookie_value)?;
        Some(Self {
            program_id,
            token_hash: token_hash(token),
        })
    }

    /// A query of a statement made by [`in_session!`], with the session's arguments (`$1` to `$5`) bound.
    pub fn query<'q, O>(
        &'q self,
        statement: &'static str,
        csrf: &'q str,
    ) -> sqlx::query::QueryAs<'q, sqlx::Postgres, O, sqlx::postgres::PgArguments>
    where
        O: for<'r> sqlx::FromRow<'r, sqlx::postgres::PgRow>,
    {
        sqlx::query_as(statement)
            .bind(self.program_id)
            .bind(&self.token_hash)
            .bind(IDLE_MINUTES as i32)
            .bind(MAX_HOURS as i32)
            .bind(csrf)
    }

    /// What an [`in_session!`] statement run on `conn` answered: the call's answer, or why the call did not
    /// run.
    pub async fn answer<T>(
        &self,
        mut conn: CounterConnection,
        row: std::result::Result<Option<(bool, bool, Option<T>)>, sqlx::Error>,
    ) -> Result<T> {
        let row = match row {
            Ok(row) => row,
            Err(err) => return conn.outcome(Err(err)),
        };
        let (csrf_ok, stale, answer) = row.ok_or(LoyaltyError::NotSignedIn)?;
        if !csrf_ok {
            return Err(LoyaltyError::CsrfRejected);
        }
        if stale {
            let touched = touch(conn.conn(), self.program_id, &self.token_hash).await;
            conn.outcome(touched)?;
        }
        answer.ok_or(LoyaltyError::Internal)
    }

    /// Checks the session and its CSRF token as an [`in_session!`] statement does, for a request that must be
    /// made by whoever may change something but changes nothing itself (a scan that finds a member's pass).
    pub async fn check(&self, db: &CounterPool, csrf: &str) -> Result<()> {
        let mut conn = db.get().await?;
        let row = self
            .query(crate::in_session!("true"), csrf)
            .fetch_optional(conn.conn())
            .await;
        self.answer::<bool>(conn, row).await.map(drop)
    }
}

/// Idle time is measured to the minute, so a busy clerk costs one write a minute, not one a request.
async fn touch(
    db: impl sqlx::PgExecutor<'_>,
    program_id: Uuid,
    token_hash: &[u8],
) -> std::result::Result<(), sqlx::Error> {
    sqlx::query(
        "update public.staff_sessions set last_seen_at = now() where program_id = $1 and token_hash = $2",
    )
    .bind(program_id)
    .bind(token_hash)
    .execute(db)
    .await?;
    Ok(())
}

/// A session's row as [`signed_in`] reads it.
#[derive(sqlx::FromRow)]
struct SessionRow {
    id: Uuid,
    name: String,
    email: String,
    role: String,
    program_name: String,
    time_zone: String,
    csrf_token: String,
    stale: bool,
}

/// The staff member a session cookie belongs to, if the session is open and not idle for too long.
pub async fn signed_in(db: &PgPool, cookie_value: &str) -> Result<Staff> {
    let (program_id, token) = parse_cookie(cookie_value).ok_or(LoyaltyError::NotSignedIn)?;
    let hash = token_hash(token);
    let row: Option<SessionRow> = sqlx::query_as(concat!(
        "select st.id, st.display_name as name, st.email, st.role, p.name as program_name, p.time_zone,
                s.csrf_token, s.last_seen_at < now() - interval '1 minute' as stale
           from public.staff_sessions s
           join public.staff st on st.program_id = s.program_id and st.id = s.staff_id
           join public.programs p on p.id = s.program_id
          where",
        crate::open_session!()
    ))
    .bind(program_id)
    .bind(&hash)
    .bind(IDLE_MINUTES as i32)
    .bind(MAX_HOURS as i32)
    .fetch_optional(db)
    .await
    .map_err(db_error)?;
    let row = row.ok_or(LoyaltyError::NotSignedIn)?;
    if row.stale {
        touch(db, program_id, &hash).await.map_err(db_error)?;
    }
    Ok(Staff {
        id: row.id,
        program_id,
        program_name: row.program_name,
        time_zone: row.time_zone,
        name: row.name,
        email: row.email,
        role: Role::from_sql(&row.role).ok_or(LoyaltyError::Internal)?,
        csrf_token: row.csrf_token,
    })
}
