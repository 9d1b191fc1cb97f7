//! The catalog's queries: every change goes through a hardened function of the database.

use loyalty_core::wire::{PointsReceipt, Reward, TxType};
use loyalty_core::{LoyaltyError, Result};
use uuid::Uuid;

use crate::db::{CounterPool, PgPool, RpcAnswer, call_function, db_error};
use crate::session::SessionKey;
use crate::session::Staff;

/// A reward as a manager's form gives it; no `reward_id` for a new one.
#[derive(Debug, Clone)]
pub struct RewardChange<'a> {
    pub reward_id: Option<i64>,
    pub name: &'a str,
    pub points_cost: i64,
    pub stock: Option<i64>,
    pub daily_limit: Option<i64>,
}

/// The rewards on offer in a program, cheapest first.
pub async fn rewards(db: &PgPool, program_id: Uuid) -> Result<Vec<Reward>> {
    let rows: Vec<(i64, String, i32, Option<i32>, Option<i32>)> = sqlx::query_as(
        "select r.id, r.name, r.points_cost, r.stock, r.daily_limit from public.rewards r
          where r.program_id = $1 and r.retired_at is null
          order by r.points_cost, r.name, r.id",
    )
    .bind(program_id)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    Ok(rows
        .into_iter()
        .map(|(id, name, points_cost, stock, daily_limit)| Reward {
            id,
            name,
            points_cost: points_cost.into(),
            stock: stock.map(Into::into),
            daily_limit: daily_limit.map(Into::into),
        })
        .collect())
}

/// Adds or changes a reward; its id.
pub async fn save_reward(db: &PgPool, by: &Staff, change: &RewardChange<'_>) -> Result<i64> {
    let answer = call_function(
        sqlx::query_scalar("select public.save_reward($1, $2, $3, $4, $5, $6, $7)")
            .bind(by.program_id)
            .bind(by.id)
            .bind(change.reward_id)
            .bind(change.name)
            .bind(change.points_cost)
            .bind(change.stock)
            .bind(change.daily_limit),
        db,
    )
    .await?;
    reward_id(&answer)
}

/// Takes a reward out of the catalog.
pub async fn retire_reward(db: &PgPool, by: &Staff, reward_id: i64) -> Result<()> {
    call_function(
        sqlx::query_scalar("select public.retire_reward($1, $2, $3)")
            .bind(by.program_id)
            .bind(by.id)
            .bind(reward_id),
        db,
    )
    .await
    .map(drop)
}

/// Redeems a reward for a member as the staff member of a session, checked in the same statement: its cost
/// and one of its stock, in one transaction.
pub async fn redeem_reward(
    db: &CounterPool,
    session: &SessionKey,
    csrf: &str,
    external_id: &str,
    reward_id: i64,
    idempotency_key: Option<&str>,
) -> Result<PointsReceipt> {
    let mut conn = db.get().await?;
    let row = session
        .query(
            crate::in_session!("public.redeem_reward($1, $6, $7, $8, s.staff_id)"),
            csrf,
        )
        .bind(external_id)
        .bind(reward_id)
        .bind(idempotency_key)
        .fetch_optional(conn.conn())
        .await;
    let answer: sqlx::types::Json<RpcAnswer> = session.answer(conn, row).await?;
    let answer = answer.0.into_result()?;
    let reward = answer
        .other
        .get("reward")
        .and_then(|r| r.as_str())
        .map(str::to_owned);
    let points = answer
        .other
        .get("points")
        .and_then(serde_json::Value::as_i64);
    match (
        answer.new_balance,
        answer.transaction_id,
        answer.created_at,
        points,
    ) {
        (Some(new_balance), Some(transaction_id), Some(created_at), Some(points)) => {
            Ok(PointsReceipt {
                external_id: external_id.to_owned(),
                tx_type: TxType::Redeem,
                points,
                new_balance,
                transaction_id,
                created_at,
                replayed: answer.replayed,
                reward,
                rule: None,
            })
        }
        _ => Err(LoyaltyError::Internal),
    }
}

fn reward_id(answer: &RpcAnswer) -> Result<i64> {
    answer
        .other
        .get("reward_id")
        .and_then(serde_json::Value::as_i64)
        .ok_or(LoyaltyError::Internal)
}
