//! Burning postcards: the only way in is `process_claim_attempt`.

use chrono::{DateTime, Utc};
use loyalty_core::Result;
use loyalty_core::wire::{Member, PassOrigin, ScanOutcome};
use serde::Deserialize;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::auth::db::SessionKey;
use crate::db::{CounterPool, RpcAnswer, db_error, on_program_clock, read_on_program_clock};

#[derive(Deserialize)]
struct Claimed {
    code: String,
    pass: ClaimedPass,
}

#[derive(Deserialize)]
struct ClaimedPass {
    external_id: String,
    points: i64,
    created_at: DateTime<Utc>,
}

/// Burns a postcard's code once and returns the member pass it became.
pub async fn claim_postcard(
    db: impl PgExecutor<'_>,
    program_id: Uuid,
    staff_id: Option<Uuid>,
    code: &str,
) -> Result<ScanOutcome> {
    // With the program's clock's offset at the moment a refusal names, for its sentence.
    let (answer, offset): (sqlx::types::Json<RpcAnswer>, Option<i32>) = sqlx::query_as(
        "select a, public.program_utc_offset($2, coalesce(a->>'claimed_at', a->>'voided_at')::timestamptz)
           from public.process_claim_attempt($1, $2, $3) a",
    )
    .bind(code)
    .bind(program_id)
    .bind(staff_id)
    .fetch_one(db)
    .await
    .map_err(db_error)?;
    claimed(answer.0).map_err(|err| on_program_clock(err, offset))
}

/// [`claim_postcard`] as the staff member of a session, checked in the same statement.
pub async fn claim_postcard_in_session(
    db: &CounterPool,
    session: &SessionKey,
    csrf: &str,
    code: &str,
) -> Result<ScanOutcome> {
    let mut conn = db.get().await?;
    let row = session
        .query(
            crate::in_session!("public.process_claim_attempt($6, $1, s.staff_id)"),
            csrf,
        )
        .bind(code)
        .fetch_optional(conn.conn())
        .await;
    let answer: sqlx::types::Json<RpcAnswer> = session.answer(conn, row).await?;
    match claimed(answer.0) {
        Err(err) if err.moment().is_some() => {
            let mut conn = db.get().await?;
            Err(read_on_program_clock(conn.conn(), session.program_id, err).await)
        }
        result => result,
    }
}

fn claimed(answer: RpcAnswer) -> Result<ScanOutcome> {
    let claimed: Claimed = answer.into_result()?.data()?;
    Ok(ScanOutcome::Claimed {
        code: claimed.code,
        member: Member {
            origin: PassOrigin::of(&claimed.pass.external_id),
            external_id: claimed.pass.external_id,
            points: claimed.pass.points,
            created_at: claimed.pass.created_at,
        },
    })
}
