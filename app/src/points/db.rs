//! Earning and redeeming: points typed by hand go through `adjust_points` (managers, with a reason), a sale
//! through `earn_from_sale`; both end in `process_membership_transaction`.

use chrono::{DateTime, Utc};
use loyalty_core::wire::{PointsReceipt, TxType};
use loyalty_core::{LoyaltyError, Result};

use crate::db::{CounterPool, RpcAnswer};
use crate::session::SessionKey;

/// One earn or redeem of points typed by hand: a manager's adjustment.
#[derive(Debug, Clone)]
pub struct PointsRequest<'a> {
    pub external_id: &'a str,
    pub tx_type: TxType,
    pub points: i64,
    /// Why the balance is adjusted: required, 3 to 500 characters.
    pub note: Option<&'a str>,
    /// Makes retries of this request apply once.
    pub idempotency_key: Option<&'a str>,
    /// When the sale happened, where the till says so (an earn taken offline); `None` for now. The database
    /// refuses a time in the future or older than the program's limit.
    pub sold_at: Option<DateTime<Utc>>,
}

/// Applies an adjustment as the staff member of a session, checked in the same statement, under the member's row
/// lock: the database refuses anyone but a manager, and an adjustment without a reason; a redeem never drives the
/// balance below zero.
pub async fn apply_points(
    db: &CounterPool,
    session: &SessionKey,
    csrf: &str,
    req: &PointsRequest<'_>,
) -> Result<PointsReceipt> {
    let mut conn = db.get().await?;
    let row = session
        .query(
            crate::in_session!("public.adjust_points($1, $6, $7, $8, $9, $10, s.staff_id, $11)"),
            csrf,
        )
        .bind(req.external_id)
        .bind(req.points)
        .bind(req.tx_type.as_sql())
        .bind(req.note)
        .bind(req.idempotency_key)
        .bind(req.sold_at)
        .fetch_optional(conn.conn())
        .await;
    let answer: sqlx::types::Json<RpcAnswer> = session.answer(conn, row).await?;
    receipt(req, answer.0)
}

/// A sale, as the point of sale gives it: its amount as the clerk typed it.
#[derive(Debug, Clone)]
pub struct Sale<'a> {
    pub external_id: &'a str,
    pub amount: &'a str,
    pub idempotency_key: Option<&'a str>,
    pub sold_at: Option<DateTime<Utc>>,
}

/// Earns the points of a sale as the staff member of a session, checked in the same statement; the database
/// counts them under the program's rules.
pub async fn earn_from_sale(
    db: &CounterPool,
    session: &SessionKey,
    csrf: &str,
    sale: &Sale<'_>,
) -> Result<PointsReceipt> {
    let mut conn = db.get().await?;
    let row = session
        .query(
            crate::in_session!("public.earn_from_sale($1, $6, $7, $8, s.staff_id, $9)"),
            csrf,
        )
        .bind(sale.external_id)
        .bind(sale.amount)
        .bind(sale.idempotency_key)
        .bind(sale.sold_at)
        .fetch_optional(conn.conn())
        .await;
    let answer: sqlx::types::Json<RpcAnswer> = session.answer(conn, row).await?;
    let answer = answer.0.into_result()?;
    let read = |name: &str| answer.other.get(name).cloned();
    let points = read("points").and_then(|p| p.as_i64());
    let rule = read("rule").and_then(|r| r.as_str().map(str::to_owned));
    match (
        answer.new_balance,
        answer.transaction_id,
        answer.created_at,
        points,
    ) {
        (Some(new_balance), Some(transaction_id), Some(created_at), Some(points)) => {
            Ok(PointsReceipt {
                external_id: sale.external_id.to_owned(),
                tx_type: TxType::Earn,
                points,
                new_balance,
                transaction_id,
                created_at,
                replayed: answer.replayed,
                reward: None,
                rule,
            })
        }
        _ => Err(LoyaltyError::Internal),
    }
}

fn receipt(req: &PointsRequest<'_>, answer: RpcAnswer) -> Result<PointsReceipt> {
    let answer = answer.into_result()?;
    match (answer.new_balance, answer.transaction_id, answer.created_at) {
        (Some(new_balance), Some(transaction_id), Some(created_at)) => Ok(PointsReceipt {
            external_id: req.external_id.to_owned(),
            tx_type: req.tx_type,
            points: req.points,
            new_balance,
            transaction_id,
            created_at,
            replayed: answer.replayed,
            reward: None,
            rule: None,
        }),
        _ => Err(LoyaltyError::Internal),
    }
}
