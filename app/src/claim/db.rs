//! Burning postcards: the only way in is `process_claim_attempt`.

use chrono::{DateTime, Utc};
use loyalty_core::Result;
use loyalty_core::wire::{Member, PassOrigin, ScanOutcome};
use serde::Deserialize;

use crate::db::{CounterPool, RpcAnswer};
use crate::session::SessionKey;

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

/// Burns a postcard's code once, as the staff member of a session (checked in the same statement), and
/// returns the member pass it became.
pub async fn claim_postcard(
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
    db.dated(session.program_id, claimed(answer.0)).await
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
