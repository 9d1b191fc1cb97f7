//! Passes by their token, and the wallet outbox as managers read it.

use chrono::NaiveDateTime;
use loyalty_core::wire::TxType;
use loyalty_core::{LoyaltyError, Result};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::{ChannelDeliveries, PassActivity, PassView, WalletDelivery, WalletOverview};
use crate::db::db_error;

/// A pass and its newest `limit` transactions, by the pass's token. An indexed equality lookup on 244 random
/// bits: its timing can tell only that a token does not exist, which an attacker knew already.
pub async fn pass_by_token(db: &PgPool, token: &str, limit: i64) -> Result<PassView> {
    let mut found: Vec<(Uuid, Uuid, String, i32, String)> = sqlx::query_as(
        "select m.program_id, m.id, m.external_id, m.points, p.name
           from public.passes_master m
           join public.programs p on p.id = m.program_id
          where m.pass_token = $1 and m.replaced_at is null
          limit 2",
    )
    .bind(token)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    // Tokens are unique per program; one found in two programs would be ambiguous, so it opens neither.
    if found.len() != 1 {
        return Err(LoyaltyError::MemberNotFound);
    }
    let (program_id, member_id, external_id, points, program_name) = found.remove(0);
    let recent: Vec<(String, i32, NaiveDateTime)> = sqlx::query_as(
        "select t.type, t.points, public.program_time(t.program_id, t.created_at)
           from public.transactions t
          where t.program_id = $1 and t.member_id = $2
          order by t.id desc
          limit $3",
    )
    .bind(program_id)
    .bind(member_id)
    .bind(limit)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    let next_expiry: Option<(Option<i64>, Option<chrono::NaiveDate>)> =
        sqlx::query_as("select next_points, next_day from public.member_expiry($1, $2)")
            .bind(program_id)
            .bind(member_id)
            .fetch_optional(db)
            .await
            .map_err(db_error)?;
    Ok(PassView {
        program_name,
        next_expiry: next_expiry.and_then(|(points, day)| points.zip(day)),
        qr_svg: super::qr_svg(&external_id)?,
        external_id,
        points: points.into(),
        apple_wallet_href: None,
        google_wallet_href: None,
        recent: recent
            .into_iter()
            .filter_map(|(tx_type, points, created_at)| {
                Some(PassActivity {
                    tx_type: TxType::from_sql(&tx_type)?,
                    points: points.into(),
                    created_at,
                })
            })
            .collect(),
    })
}

/// The pass token of a member of this program.
pub async fn pass_token(
    db: impl PgExecutor<'_>,
    program_id: Uuid,
    external_id: &str,
) -> Result<String> {
    sqlx::query_scalar(
        "select pass_token from public.passes_master where program_id = $1 and external_id = $2",
    )
    .bind(program_id)
    .bind(external_id)
    .fetch_optional(db)
    .await
    .map_err(db_error)?
    .ok_or(LoyaltyError::MemberNotFound)
}

#[derive(sqlx::FromRow)]
struct DeliveryRow {
    id: i64,
    external_id: String,
    created_at: NaiveDateTime,
    attempts: i32,
    last_attempt_at: Option<NaiveDateTime>,
    last_error: Option<String>,
    next_attempt_at: NaiveDateTime,
    delivered_at: Option<NaiveDateTime>,
}

/// A program's wallet deliveries: totals, and the newest `limit` rows.
pub async fn wallet_overview(db: &PgPool, program_id: Uuid, limit: i64) -> Result<WalletOverview> {
    let (pending, retrying, delivered): (i64, i64, i64) = sqlx::query_as(
        "select count(*) filter (where delivered_at is null),
                count(*) filter (where delivered_at is null and attempts > 0),
                count(*) filter (where delivered_at is not null)
           from public.wallet_outbox
          where program_id = $1",
    )
    .bind(program_id)
    .fetch_one(db)
    .await
    .map_err(db_error)?;
    let rows = sqlx::query_as::<_, DeliveryRow>(
        "select o.id, m.external_id, public.program_time(o.program_id, o.created_at) as created_at,
                o.attempts, public.program_time(o.program_id, o.last_attempt_at) as last_attempt_at,
                o.last_error, public.program_time(o.program_id, o.next_attempt_at) as next_attempt_at,
                public.program_time(o.program_id, o.delivered_at) as delivered_at
           from public.wallet_outbox o
           join public.passes_master m on m.program_id = o.program_id and m.id = o.pass_id
          where o.program_id = $1
          order by o.id desc
          limit $2",
    )
    .bind(program_id)
    .bind(limit)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    let channels: Vec<(String, i64, i64, i64, Option<String>)> = sqlx::query_as(
        "select d.channel,
                count(*) filter (where d.delivered_at is null),
                count(*) filter (where d.delivered_at is null and d.attempts > 0),
                count(*) filter (where d.delivered_at is not null),
                (array_agg(d.last_error order by d.last_attempt_at desc)
                    filter (where d.delivered_at is null and d.last_error is not null))[1]
           from public.wallet_deliveries d
          where d.program_id = $1
          group by d.channel
          order by d.channel",
    )
    .bind(program_id)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    Ok(WalletOverview {
        channels: channels
            .into_iter()
            .map(
                |(channel, pending, retrying, delivered, last_error)| ChannelDeliveries {
                    channel,
                    pending,
                    retrying,
                    delivered,
                    last_error,
                },
            )
            .collect(),
        pending,
        delivered,
        retrying,
        rows: rows
            .into_iter()
            .map(|row| WalletDelivery {
                id: row.id,
                external_id: row.external_id,
                created_at: row.created_at,
                attempts: row.attempts,
                last_attempt_at: row.last_attempt_at,
                last_error: row.last_error,
                next_attempt_at: row.next_attempt_at,
                delivered_at: row.delivered_at,
            })
            .collect(),
    })
}
