//! Member passes: looking them up, their ledgers, and enrolment without a postcard.

use chrono::{DateTime, NaiveDateTime, Utc};
use loyalty_core::wire::{LedgerEntry, Member, MemberDetail, PassOrigin, TxType};
use loyalty_core::{LoyaltyError, Result};
use serde::Deserialize;
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use crate::db::{RpcAnswer, db_error};

#[derive(sqlx::FromRow, Deserialize)]
struct PassRow {
    external_id: String,
    points: i32,
    created_at: DateTime<Utc>,
}

impl From<PassRow> for Member {
    fn from(row: PassRow) -> Self {
        Member {
            origin: PassOrigin::of(&row.external_id),
            external_id: row.external_id,
            points: row.points.into(),
            created_at: row.created_at,
        }
    }
}

/// A member of this program by their pass id; another program's pass is not found.
pub async fn find_member(
    db: impl PgExecutor<'_>,
    program_id: Uuid,
    external_id: &str,
) -> Result<Member> {
    sqlx::query_as::<_, PassRow>(
        "select external_id, points, created_at from public.passes_master
          where program_id = $1 and external_id = $2",
    )
    .bind(program_id)
    .bind(external_id)
    .fetch_optional(db)
    .await
    .map_err(db_error)?
    .map(Member::from)
    .ok_or(LoyaltyError::MemberNotFound)
}

#[derive(sqlx::FromRow)]
pub(crate) struct LedgerRow {
    id: i64,
    external_id: String,
    tx_type: String,
    points: i32,
    balance_after: i32,
    description: Option<String>,
    staff_name: Option<String>,
    created_at: DateTime<Utc>,
    local_at: NaiveDateTime,
    voids: Option<i64>,
    voided_by: Option<i64>,
    sold_at: Option<DateTime<Utc>>,
    local_sold_at: Option<NaiveDateTime>,
}

impl From<LedgerRow> for LedgerEntry {
    fn from(row: LedgerRow) -> Self {
        LedgerEntry {
            id: row.id,
            external_id: row.external_id,
            tx_type: TxType::from_sql(&row.tx_type).unwrap_or(TxType::Earn),
            points: row.points.into(),
            balance_after: row.balance_after.into(),
            description: row.description,
            staff_name: row.staff_name,
            created_at: row.created_at,
            local_at: row.local_at,
            voids: row.voids,
            voided_by: row.voided_by,
            sold_at: row.sold_at,
            local_sold_at: row.local_sold_at,
        }
    }
}

/// A member with the newest `limit` rows of their ledger.
pub async fn member_detail(
    db: &PgPool,
    program_id: Uuid,
    external_id: &str,
    limit: i64,
) -> Result<MemberDetail> {
    let member = find_member(db, program_id, external_id).await?;
    let ledger = sqlx::query_as::<_, LedgerRow>(
        "select t.id, m.external_id, t.type as tx_type, t.points, t.balance_after, t.description,
                st.display_name as staff_name, t.created_at,
                public.program_time(t.program_id, t.created_at) as local_at, t.voids_id as voids,
                (select v.id from public.transactions v
                  where v.program_id = t.program_id and v.voids_id = t.id) as voided_by,
                t.sold_at, public.program_time(t.program_id, t.sold_at) as local_sold_at
           from public.transactions t
           join public.passes_master m on m.program_id = t.program_id and m.id = t.member_id
           left join public.staff st on st.program_id = t.program_id and st.id = t.staff_id
          where t.program_id = $1 and m.external_id = $2
          order by t.id desc
          limit $3",
    )
    .bind(program_id)
    .bind(external_id)
    .bind(limit)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    let next_expiry: Option<(Option<i64>, Option<chrono::NaiveDate>)> = sqlx::query_as(
        "select e.next_points, e.next_day
           from public.passes_master m, public.member_expiry(m.program_id, m.id) e
          where m.program_id = $1 and m.external_id = $2",
    )
    .bind(program_id)
    .bind(external_id)
    .fetch_optional(db)
    .await
    .map_err(db_error)?;
    let contacts = crate::contacts::db::hints(db, program_id, external_id).await?;
    let replaced = replacement(db, program_id, external_id).await?;
    Ok(MemberDetail {
        replaced,
        contacts,
        member,
        ledger: ledger.into_iter().map(LedgerEntry::from).collect(),
        next_expiry: next_expiry.and_then(|(points, day)| points.zip(day)),
    })
}

/// Enrols a member at the counter, with the phone number or email they give, if any: the pass and its contact
/// are made together or not at all (a number already on another pass refuses both).
pub async fn enrol_at_counter(
    pool: &PgPool,
    key: &crate::contacts::db::ContactKey,
    program_id: Uuid,
    staff_id: Uuid,
    contact: Option<&str>,
) -> Result<Member> {
    use crate::contacts::db::{given, keep_contact, read_contact};
    let contact = match given(contact) {
        Some(raw) => Some(read_contact(pool, program_id, raw).await?),
        None => None,
    };
    let mut tx = pool.begin().await.map_err(db_error)?;
    let member = enrol_member(&mut *tx, program_id, PassOrigin::Counter).await?;
    if let Some(contact) = &contact {
        keep_contact(
            &mut *tx,
            key,
            program_id,
            &member.external_id,
            contact,
            Some(staff_id),
        )
        .await?;
    }
    tx.commit().await.map_err(db_error)?;
    Ok(member)
}

/// Enrols a member without a postcard: `MBR-` at the counter, `PUB-` through public sign-up.
pub async fn enrol_member(
    db: impl PgExecutor<'_>,
    program_id: Uuid,
    origin: PassOrigin,
) -> Result<Member> {
    let prefix = match origin {
        PassOrigin::Counter => "MBR",
        PassOrigin::Public => "PUB",
        PassOrigin::Postcard => return Err(LoyaltyError::InvalidType),
    };
    let answer: sqlx::types::Json<RpcAnswer> =
        sqlx::query_scalar("select public.create_member_pass($1, $2)")
            .bind(program_id)
            .bind(prefix)
            .fetch_one(db)
            .await
            .map_err(db_error)?;
    Ok(answer.0.into_result()?.data::<PassRow>()?.into())
}

/// Replaces a lost pass with a new one, as the staff member of a session: the balance, the phone number and the
/// email move to the new pass, and the old one stops working. Answers the new pass.
pub async fn replace_pass(
    db: &crate::db::CounterPool,
    session: &crate::session::SessionKey,
    csrf: &str,
    external_id: &str,
) -> Result<Member> {
    let mut conn = db.get().await?;
    let row = session
        .query(
            crate::in_session!("public.replace_member_pass($1, $6, s.staff_id)"),
            csrf,
        )
        .bind(external_id)
        .fetch_optional(conn.conn())
        .await;
    let answer: sqlx::types::Json<RpcAnswer> = session.answer(conn, row).await?;
    let member = answer
        .0
        .into_result()
        .and_then(|answer| answer.data::<PassRow>())
        .map(Member::from);
    db.dated(session.program_id, member).await
}

/// When the pass was replaced, and by which, if it was.
pub async fn replacement(
    db: impl PgExecutor<'_>,
    program_id: Uuid,
    external_id: &str,
) -> Result<Option<(DateTime<Utc>, String)>> {
    sqlx::query_as(
        "select m.replaced_at, n.external_id
           from public.passes_master m
           join public.passes_master n on n.program_id = m.program_id and n.id = m.replaced_by
          where m.program_id = $1 and m.external_id = $2",
    )
    .bind(program_id)
    .bind(external_id)
    .fetch_optional(db)
    .await
    .map_err(db_error)
}
