//! What every database module shares: the answers of the hardened functions, and how a failed query becomes
//! the domain's error.

use chrono::{DateTime, Utc};
use loyalty_core::LoyaltyError;
use serde::Deserialize;

pub use sqlx::PgPool;

/// The JSON every hardened function answers with: `success`, and either its data or an error code.
#[derive(Debug, Deserialize)]
pub struct RpcAnswer {
    pub success: bool,
    pub error: Option<String>,
    pub claimed_at: Option<DateTime<Utc>>,
    pub voided_at: Option<DateTime<Utc>>,
    pub retry_after_secs: Option<u64>,
    pub balance: Option<i64>,
    pub limit_days: Option<i64>,
    pub new_balance: Option<i64>,
    pub transaction_id: Option<i64>,
    pub created_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub replayed: bool,
    pub data: Option<serde_json::Value>,
    /// Whatever else the answer carries: the fields of a refusal no other field names (`reward`, `limit`).
    #[serde(flatten)]
    pub other: serde_json::Map<String, serde_json::Value>,
}

impl RpcAnswer {
    /// The answer when the call went through, its refusal as the domain's error otherwise.
    pub fn into_result(self) -> Result<Self, LoyaltyError> {
        if self.success {
            return Ok(self);
        }
        let code = self.error.as_deref().unwrap_or("");
        // The fields a refusal may carry, under the names its variant gives them.
        let mut fields = self.other;
        let moments = [
            ("claimed_at", self.claimed_at),
            ("voided_at", self.voided_at),
        ];
        for (name, at) in moments {
            if let Some(at) = at {
                fields.insert(name.into(), serde_json::json!(at));
            }
        }
        if let Some(balance) = self.balance {
            fields.insert("balance".into(), balance.into());
        }
        if let Some(days) = self.limit_days {
            fields.insert("limit_days".into(), days.into());
        }
        if let Some(secs) = self.retry_after_secs {
            fields.insert("retry_after_secs".into(), secs.into());
        }
        Err(LoyaltyError::from_code(code, fields).unwrap_or_else(|| {
            tracing::error!(code, "unexpected refusal from a database function");
            LoyaltyError::Internal
        }))
    }

    /// The `data` object, read as `T`.
    pub fn data<T: for<'de> Deserialize<'de>>(&self) -> Result<T, LoyaltyError> {
        let data = self.data.clone().ok_or(LoyaltyError::Internal)?;
        serde_json::from_value(data).map_err(|e| {
            tracing::error!(error = %e, "malformed data from a database function");
            LoyaltyError::Internal
        })
    }
}

/// A hardened function's answer to a query that selects it: the answer, or its refusal as the domain's error.
pub async fn call_function(
    query: sqlx::query::QueryScalar<
        '_,
        sqlx::Postgres,
        sqlx::types::Json<RpcAnswer>,
        sqlx::postgres::PgArguments,
    >,
    db: &PgPool,
) -> Result<RpcAnswer, LoyaltyError> {
    query.fetch_one(db).await.map_err(db_error)?.0.into_result()
}

/// `err` with the moment it names put on a clock `offset_secs` ahead of UTC.
fn on_program_clock(mut err: LoyaltyError, offset_secs: Option<i32>) -> LoyaltyError {
    if let (Some(at), Some(offset)) = (
        err.moment_mut(),
        offset_secs.and_then(chrono::FixedOffset::east_opt),
    ) {
        *at = at.with_timezone(&offset);
    }
    err
}

/// `err` with the moment it names (a claim, a withdrawal) put on the program's clock, so a clerk in New York
/// reads the day it was in New York. The offset is asked of the database (`public.program_utc_offset`), which
/// knows the time zones, on these refusals only.
pub async fn read_on_program_clock(
    db: impl sqlx::PgExecutor<'_>,
    program_id: uuid::Uuid,
    err: LoyaltyError,
) -> LoyaltyError {
    let Some(at) = err.moment().map(|at| at.to_utc()) else {
        return err;
    };
    match sqlx::query_scalar("select public.program_utc_offset($1, $2)")
        .bind(program_id)
        .bind(at)
        .fetch_one(db)
        .await
    {
        Ok(offset) => on_program_clock(err, offset),
        Err(e) => {
            // The moment itself is right; only the clock it is read on stays UTC's.
            tracing::warn!(error = %e, "no time zone offset for a refusal's moment");
            err
        }
    }
}

/// Whether a failure means the database cannot be reached (gone, restarting, shutting down), rather than a
/// statement that failed on a connection that still works.
fn is_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => db
            .code()
            .is_some_and(|c| c.starts_with("08") || c.starts_with("57P")),
        _ => false,
    }
}

/// A database failure as the domain sees it: unreachable means unavailable; anything else is ours to fix and
/// is logged, never shown.
pub fn db_error(err: sqlx::Error) -> LoyaltyError {
    match &err {
        _ if is_unavailable(&err) => {
            tracing::warn!(error = %err, "database unavailable");
            LoyaltyError::Unavailable
        }
        // Text PostgreSQL cannot hold (a NUL character) came in with the request: the sender's mistake, not ours.
        sqlx::Error::Database(db) if matches!(db.code().as_deref(), Some("22021" | "22P05")) => {
            LoyaltyError::UnsavableText
        }
        _ => {
            tracing::error!(error = %err, "database error");
            LoyaltyError::Internal
        }
    }
}

/// The connections the counter's changes run on: earn, redeem and a postcard scan, one statement each.
///
/// sqlx's pool tests every connection on its way back with a round trip of its own, which doubled the round
/// trips of these calls and held the connection for the second one. These connections go back as they are: a
/// connection that a cancelled request left mid-answer finishes reading it before its next statement (sqlx
/// does that itself), one that failed because the database went away is closed rather than handed out again,
/// and one that sat idle for more than a second is pinged before it is used, so a restarted database is
/// noticed before a clerk's request meets it.
#[derive(Clone)]
pub struct CounterPool(deadpool::managed::Pool<Connector>);

pub struct Connector(sqlx::postgres::PgConnectOptions);

impl deadpool::managed::Manager for Connector {
    type Type = sqlx::PgConnection;
    type Error = sqlx::Error;

    async fn create(&self) -> Result<sqlx::PgConnection, sqlx::Error> {
        <sqlx::PgConnection as sqlx::Connection>::connect_with(&self.0).await
    }

    async fn recycle(
        &self,
        conn: &mut sqlx::PgConnection,
        metrics: &deadpool::managed::Metrics,
    ) -> deadpool::managed::RecycleResult<sqlx::Error> {
        if metrics.last_used() > std::time::Duration::from_secs(1) {
            sqlx::Connection::ping(conn).await?;
        }
        Ok(())
    }
}

impl CounterPool {
    /// `result`, with the moment its refusal names (a claim, a withdrawal, a replacement) read on the program's
    /// clock.
    pub async fn dated<T>(
        &self,
        program_id: uuid::Uuid,
        result: Result<T, LoyaltyError>,
    ) -> Result<T, LoyaltyError> {
        match result {
            Err(err) if err.moment().is_some() => {
                let mut conn = self.get().await?;
                Err(read_on_program_clock(conn.conn(), program_id, err).await)
            }
            result => result,
        }
    }

    /// As many connections as `pool` may open, to the same database as the same role, and the same wait for
    /// one before a request is told the service is unavailable. None is opened until a request needs it.
    pub fn like(pool: &PgPool) -> Self {
        let manager = Connector((*pool.connect_options()).clone());
        let wait = Some(pool.options().get_acquire_timeout());
        let pool = deadpool::managed::Pool::builder(manager)
            .max_size(pool.options().get_max_connections() as usize)
            .wait_timeout(wait)
            .create_timeout(wait)
            .recycle_timeout(wait)
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .expect("a pool with a runtime and a size");
        Self(pool)
    }

    pub async fn get(&self) -> Result<CounterConnection, LoyaltyError> {
        use deadpool::managed::PoolError;
        match self.0.get().await {
            Ok(conn) => Ok(CounterConnection(conn)),
            Err(PoolError::Backend(err)) => Err(db_error(err)),
            Err(err) => {
                tracing::warn!(error = %err, "database unavailable");
                Err(LoyaltyError::Unavailable)
            }
        }
    }
}

/// One of the counter's connections, for one statement.
pub struct CounterConnection(deadpool::managed::Object<Connector>);

impl CounterConnection {
    pub fn conn(&mut self) -> &mut sqlx::PgConnection {
        &mut self.0
    }

    /// The statement's outcome as the domain's: a connection the database went away from is closed, not
    /// handed out again.
    pub fn outcome<T>(self, result: Result<T, sqlx::Error>) -> Result<T, LoyaltyError> {
        result.map_err(|err| {
            if is_unavailable(&err) {
                drop(deadpool::managed::Object::take(self.0));
            }
            db_error(err)
        })
    }
}

/// Bytes gathered before a chunk of a CSV download goes out: large enough to be cheap, small enough to stream.
const CSV_CHUNK: usize = 32 * 1024;

/// A CSV download as a response body, streamed as `write` produces it: memory stays at a chunk or two however
/// large the export. `write` runs in a task of its own (a query borrows its connection, the body must own its
/// stream), with a small channel for back-pressure from a slow client. An error from `write` ends the stream
/// with an error, so the download fails rather than looking complete.
pub fn csv_body<F, Fut>(
    what: &'static str,
    write: F,
) -> impl futures::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static
where
    F: FnOnce(CsvChunks) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = loyalty_core::Result<()>> + Send + 'static,
{
    let (chunks, received) = tokio::sync::mpsc::channel::<std::io::Result<Vec<u8>>>(2);
    let errors = chunks.clone();
    tokio::spawn(async move {
        let out = CsvChunks {
            what,
            out: CsvChunks::writer(),
            chunks,
        };
        if let Err(err) = write(out).await {
            let _ = errors
                .send(Err(std::io::Error::other(err.to_string())))
                .await;
        }
    });
    futures::stream::unfold(received, |mut received| async move {
        received.recv().await.map(|chunk| (chunk, received))
    })
}

/// The writing end of [`csv_body`]: records in, chunks of the body out.
pub struct CsvChunks {
    /// What is being written, for the log line of a failure.
    what: &'static str,
    out: csv::Writer<Vec<u8>>,
    chunks: tokio::sync::mpsc::Sender<std::io::Result<Vec<u8>>>,
}

impl CsvChunks {
    fn writer() -> csv::Writer<Vec<u8>> {
        csv::Writer::from_writer(Vec::with_capacity(CSV_CHUNK * 2))
    }

    fn error(&self, err: csv::Error) -> LoyaltyError {
        tracing::error!(error = %err, "writing {}", self.what);
        LoyaltyError::Internal
    }

    /// Writes one record, sending a chunk when enough has gathered. `Ok(false)` when the client has gone: the
    /// writer should stop, without error.
    pub async fn write<I, T>(&mut self, record: I) -> loyalty_core::Result<bool>
    where
        I: IntoIterator<Item = T>,
        T: AsRef<[u8]>,
    {
        if let Err(err) = self.out.write_record(record) {
            return Err(self.error(err));
        }
        if let Err(err) = self.out.flush() {
            return Err(self.error(err.into()));
        }
        if self.out.get_ref().len() < CSV_CHUNK {
            return Ok(true);
        }
        let chunk = match std::mem::replace(&mut self.out, Self::writer()).into_inner() {
            Ok(chunk) => chunk,
            Err(err) => return Err(self.error(err.into_error().into())),
        };
        Ok(self.chunks.send(Ok(chunk)).await.is_ok())
    }

    /// Sends what is left.
    pub async fn finish(self) -> loyalty_core::Result<()> {
        let rest = match self.out.into_inner() {
            Ok(rest) => rest,
            Err(err) => {
                tracing::error!(error = %err.error(), "writing {}", self.what);
                return Err(LoyaltyError::Internal);
            }
        };
        let _ = self.chunks.send(Ok(rest)).await;
        Ok(())
    }
}
