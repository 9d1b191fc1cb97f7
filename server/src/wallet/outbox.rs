//! The pass changes sent to each wallet channel: a worker per channel takes a due delivery nobody else holds
//! (`for update skip locked` over one program's deliveries, held while it sends), hands it to the channel's sender, and records the outcome;
//! a failure is retried with growing waits, so nothing is lost and nothing is sent twice at once.

use std::future::Future;

use chrono::{DateTime, Utc};
use sqlx::PgPool;
use tokio::task::JoinHandle;
use uuid::Uuid;

use super::devices::Channel;
use super::{Attempt, Backoff, WorkerSettings};

/// One balance change of one pass, as the outbox holds it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct PassChange {
    pub program_id: Uuid,
    /// Also the idempotency key a receiver deduplicates on.
    pub change_id: i64,
    pub pass_id: Uuid,
    /// Counts the pass's changes: a receiver orders by it.
    pub pass_version: i64,
    pub balance: i32,
    pub changed_at: DateTime<Utc>,
}

/// Where one channel's deliveries go.
pub trait ChangeSender: Send + Sync + 'static {
    fn channel(&self) -> Channel;

    /// Sends one change: `Ok` once the service surely has it, `Err` with a short reason (kept for the
    /// managers, so never a secret) otherwise.
    fn send(
        &self,
        pool: &PgPool,
        change: &PassChange,
    ) -> impl Future<Output = Result<(), String>> + Send;
}

/// Takes this channel's most overdue delivery nobody else holds, sends it, and records the outcome; `None`
/// when nothing is due. Program by program, as [`super::deliver_next`] does and for the same reason.
pub async fn deliver_next_change<S: ChangeSender>(
    pool: &PgPool,
    sender: &S,
    backoff: &Backoff,
) -> Result<Option<Attempt>, sqlx::Error> {
    let programs: Vec<Uuid> = sqlx::query_scalar(
        "select program_id
           from (select program_id, next_attempt_at
                   from public.wallet_deliveries
                  where channel = $1 and delivered_at is null and next_attempt_at <= now()
                  order by next_attempt_at
                  limit $2) due
          group by program_id
          order by min(next_attempt_at)",
    )
    .bind(sender.channel().as_sql())
    .bind(super::DUE_ROWS_LOOKED_AT)
    .fetch_all(pool)
    .await?;
    for program_id in programs {
        if let Some(attempt) = deliver_next_change_of(pool, sender, backoff, program_id).await? {
            return Ok(Some(attempt));
        }
    }
    Ok(None)
}

/// [`deliver_next_change`] in one program.
async fn deliver_next_change_of<S: ChangeSender>(
    pool: &PgPool,
    sender: &S,
    backoff: &Backoff,
    program_id: Uuid,
) -> Result<Option<Attempt>, sqlx::Error> {
    let mut tx = pool.begin().await?;
    let row: Option<(i32, PassChange)> = sqlx::query_as::<
        _,
        (i32, Uuid, i64, Uuid, i64, i32, DateTime<Utc>),
    >(
        "select d.attempts, c.program_id, c.id, c.pass_id, c.pass_version, c.balance, c.changed_at
           from public.wallet_deliveries d
           join public.pass_changes c on c.program_id = d.program_id and c.id = d.change_id
          where d.program_id = $2 and c.program_id = $2
            and d.channel = $1 and d.delivered_at is null and d.next_attempt_at <= now()
          order by d.next_attempt_at, d.change_id
          limit 1
            for update of d skip locked",
    )
    .bind(sender.channel().as_sql())
    .bind(program_id)
    .fetch_optional(&mut *tx)
    .await?
    .map(
        |(attempts, program_id, change_id, pass_id, pass_version, balance, changed_at)| {
            (
                attempts,
                PassChange {
                    program_id,
                    change_id,
                    pass_id,
                    pass_version,
                    balance,
                    changed_at,
                },
            )
        },
    );
    let Some((attempts, change)) = row else {
        return Ok(None);
    };
    let id = change.change_id;
    let attempt = match sender.send(pool, &change).await {
        Ok(()) => {
            sqlx::query(
                "update public.wallet_deliveries
                    set delivered_at = now(), last_attempt_at = now(), last_error = null
                  where program_id = $1 and change_id = $2 and channel = $3",
            )
            .bind(change.program_id)
            .bind(id)
            .bind(sender.channel().as_sql())
            .execute(&mut *tx)
            .await?;
            Attempt::Delivered { id }
        }
        Err(error) => {
            let error: String = error.chars().take(500).collect();
            let wait = backoff.after(attempts.saturating_add(1));
            sqlx::query(
                "update public.wallet_deliveries
                    set attempts = attempts + 1, last_attempt_at = now(), last_error = $4,
                        next_attempt_at = now() + make_interval(secs => $5)
                  where program_id = $1 and change_id = $2 and channel = $3",
            )
            .bind(change.program_id)
            .bind(id)
            .bind(sender.channel().as_sql())
            .bind(&error)
            .bind(wait.as_secs_f64())
            .execute(&mut *tx)
            .await?;
            Attempt::Failed { id, error }
        }
    };
    tx.commit().await?;
    Ok(Some(attempt))
}

/// Delivers one channel for as long as it runs: everything due, then a look every `poll`.
pub async fn run<S: ChangeSender>(pool: PgPool, sender: S, settings: WorkerSettings) {
    loop {
        match deliver_next_change(&pool, &sender, &settings.backoff).await {
            Ok(Some(Attempt::Delivered { .. })) => continue,
            Ok(Some(Attempt::Failed { id, error })) => {
                let channel = sender.channel().as_sql();
                tracing::warn!(
                    id,
                    channel,
                    error,
                    "wallet delivery failed; it will be retried"
                );
                continue;
            }
            Ok(None) => {}
            Err(err) => tracing::warn!(error = %err, "wallet outbox unavailable"),
        }
        tokio::time::sleep(settings.poll).await;
    }
}

/// Starts a channel's worker on the runtime; abort the handle to stop it.
pub fn spawn<S: ChangeSender>(pool: PgPool, sender: S, settings: WorkerSettings) -> JoinHandle<()> {
    tokio::spawn(run(pool, sender, settings))
}

/// A sender shared with the pages (Google's, which also signs the save links) sends as itself.
impl<S: ChangeSender> ChangeSender for std::sync::Arc<S> {
    fn channel(&self) -> Channel {
        (**self).channel()
    }

    fn send(
        &self,
        pool: &PgPool,
        change: &PassChange,
    ) -> impl Future<Output = Result<(), String>> + Send {
        (**self).send(pool, change)
    }
}
