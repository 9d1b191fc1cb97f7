//! The program's rules and promotions: read here, changed only through the database's own functions.

use chrono::{NaiveDate, NaiveTime};
use loyalty_core::error::DateBound;
use loyalty_core::{LoyaltyError, Result};
use uuid::Uuid;

use super::{ProgramRules, Promotion, WEEKDAYS};
use crate::db::{PgPool, call_function, db_error};
use crate::session::Staff;

/// The program's rules, with the rate in words.
pub async fn rules(db: &PgPool, program_id: Uuid) -> Result<ProgramRules> {
    type Row = (
        String,
        i16,
        i32,
        i64,
        Option<i32>,
        i32,
        i32,
        String,
        String,
        Option<i32>,
        String,
        i32,
    );
    let row: Option<Row> = sqlx::query_as(
        "select p.currency, p.currency_minor_units, p.earn_points, p.earn_per_minor, p.sale_points_cap,
                p.welcome_points_counter, p.welcome_points_signup,
                p.earn_points || case when p.earn_points = 1 then ' point' else ' points' end || ' per '
                  || public.money_text(p.earn_per_minor, p.currency_minor_units) || ' ' || p.currency,
                public.money_text(p.earn_per_minor, p.currency_minor_units), p.points_expire_months,
                p.calling_code, p.return_minutes
           from public.programs p where p.id = $1",
    )
    .bind(program_id)
    .fetch_optional(db)
    .await
    .map_err(db_error)?;
    let (
        currency,
        minor,
        points,
        per,
        cap,
        counter,
        signup,
        rate,
        per_amount,
        expiry,
        calling_code,
        return_minutes,
    ) = row.ok_or(LoyaltyError::ProgramNotFound)?;
    Ok(ProgramRules {
        currency,
        currency_minor_units: minor,
        earn_points: points.into(),
        earn_per_minor: per,
        sale_points_cap: cap.map(Into::into),
        welcome_points_counter: counter.into(),
        welcome_points_signup: signup.into(),
        rate,
        earn_per_amount: per_amount,
        points_expire_months: expiry.map(Into::into),
        calling_code,
        return_minutes: return_minutes.into(),
    })
}

/// The rules as a manager's form gives them; the amount per which points are earned as typed ("1.00").
#[derive(Debug, Clone)]
pub struct RulesChange {
    pub currency: String,
    pub currency_minor_units: i64,
    pub earn_points: i64,
    pub per_amount: String,
    pub sale_points_cap: Option<i64>,
    pub welcome_points_counter: i64,
    pub welcome_points_signup: i64,
}

/// Sets the program's rules; the amount is read in the new currency's minor units, by the database.
pub async fn set_rules(db: &PgPool, by: &Staff, change: &RulesChange) -> Result<()> {
    let minor_units =
        i32::try_from(change.currency_minor_units).map_err(|_| LoyaltyError::InvalidCurrency)?;
    call_function(
        sqlx::query_scalar(
            "select public.set_program_rules($1, $2, $3, $4, $5,
                        coalesce(public.money_minor($6, least(greatest($4, 0), 3)), 0), $7, $8, $9)",
        )
        .bind(by.program_id)
        .bind(by.id)
        .bind(&change.currency)
        .bind(minor_units)
        .bind(change.earn_points)
        .bind(&change.per_amount)
        .bind(change.sale_points_cap)
        .bind(change.welcome_points_counter)
        .bind(change.welcome_points_signup),
        db,
    )
    .await
    .map(drop)
}

/// The program's promotions not yet ended, newest first.
pub async fn promotions(db: &PgPool, program_id: Uuid) -> Result<Vec<Promotion>> {
    type Row = (
        i64,
        String,
        i32,
        Option<NaiveDate>,
        Option<NaiveDate>,
        Option<Vec<i16>>,
        Option<NaiveTime>,
        Option<NaiveTime>,
    );
    let rows: Vec<Row> = sqlx::query_as(
        "select p.id, p.name, p.multiplier_percent, p.starts_on, p.ends_on, p.weekdays, p.starts_at, p.ends_at
           from public.promotions p
          where p.program_id = $1 and p.retired_at is null
          order by p.id desc",
    )
    .bind(program_id)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    Ok(rows
        .into_iter()
        .map(
            |(id, name, percent, starts_on, ends_on, weekdays, starts_at, ends_at)| {
                let days = match weekdays {
                    None => "every day".to_owned(),
                    Some(days) => days
                        .iter()
                        .filter_map(|d| {
                            WEEKDAYS
                                .get(usize::try_from(*d - 1).ok()?)
                                .map(|(_, label)| *label)
                        })
                        .collect::<Vec<_>>()
                        .join(", "),
                };
                let hours = match (starts_at, ends_at) {
                    (Some(from), Some(to)) => {
                        format!(" {}-{}", from.format("%H:%M"), to.format("%H:%M"))
                    }
                    _ => String::new(),
                };
                let dates = match (starts_on, ends_on) {
                    (None, None) => String::new(),
                    (Some(from), None) => format!(", from {from}"),
                    (None, Some(to)) => format!(", until {to}"),
                    (Some(from), Some(to)) => format!(", {from} to {to}"),
                };
                Promotion {
                    id,
                    name,
                    multiplier_percent: percent.into(),
                    when: format!("{days}{hours}{dates}"),
                }
            },
        )
        .collect())
}

/// A promotion as a manager's form gives it, read.
#[derive(Debug, Clone)]
pub struct PromotionChange {
    pub name: String,
    pub multiplier_percent: i64,
    pub starts_on: Option<NaiveDate>,
    pub ends_on: Option<NaiveDate>,
    /// ISO days (1 Monday); `None` for every day.
    pub weekdays: Option<Vec<i16>>,
    pub starts_at: Option<NaiveTime>,
    pub ends_at: Option<NaiveTime>,
}

impl PromotionChange {
    /// Reads the form's fields; the database checks the values.
    pub fn read(
        name: &str,
        multiplier_percent: &str,
        [starts_on, ends_on]: [Option<&str>; 2],
        ticked: [bool; 7],
        [starts_at, ends_at]: [Option<&str>; 2],
    ) -> Result<Self> {
        fn filled(text: Option<&str>) -> Option<&str> {
            text.map(str::trim).filter(|t| !t.is_empty())
        }
        let day = |text: Option<&str>, bound| {
            filled(text)
                .map(|t| {
                    NaiveDate::parse_from_str(t, "%Y-%m-%d")
                        .map_err(|_| LoyaltyError::InvalidDate { bound })
                })
                .transpose()
        };
        let hour = |text: Option<&str>| {
            filled(text)
                .map(|t| {
                    NaiveTime::parse_from_str(t, "%H:%M")
                        .map_err(|_| LoyaltyError::InvalidPromotionHours)
                })
                .transpose()
        };
        let days: Vec<i16> = (1..=7)
            .zip(ticked)
            .filter(|(_, on)| *on)
            .map(|(d, _)| d)
            .collect();
        Ok(Self {
            name: name.trim().to_owned(),
            multiplier_percent: multiplier_percent
                .trim()
                .parse()
                .map_err(|_| LoyaltyError::InvalidMultiplier)?,
            starts_on: day(starts_on, DateBound::Start)?,
            ends_on: day(ends_on, DateBound::End)?,
            weekdays: (!days.is_empty()).then_some(days),
            starts_at: hour(starts_at)?,
            ends_at: hour(ends_at)?,
        })
    }
}

/// Adds a promotion; its id.
pub async fn save_promotion(db: &PgPool, by: &Staff, p: &PromotionChange) -> Result<i64> {
    let answer = call_function(
        sqlx::query_scalar(
            "select public.save_promotion($1, $2, null, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(by.program_id)
        .bind(by.id)
        .bind(&p.name)
        .bind(p.multiplier_percent)
        .bind(p.starts_on)
        .bind(p.ends_on)
        .bind(&p.weekdays)
        .bind(p.starts_at)
        .bind(p.ends_at),
        db,
    )
    .await?;
    answer
        .other
        .get("promotion_id")
        .and_then(serde_json::Value::as_i64)
        .ok_or(LoyaltyError::Internal)
}

/// Ends a promotion.
pub async fn retire_promotion(db: &PgPool, by: &Staff, promotion_id: i64) -> Result<()> {
    call_function(
        sqlx::query_scalar("select public.retire_promotion($1, $2, $3)")
            .bind(by.program_id)
            .bind(by.id)
            .bind(promotion_id),
        db,
    )
    .await
    .map(drop)
}

/// Turns the program's points expiry on (`months`) or off.
pub async fn set_points_expiry(db: &PgPool, by: &Staff, months: Option<i64>) -> Result<()> {
    call_function(
        sqlx::query_scalar("select public.set_points_expiry($1, $2, $3)")
            .bind(by.program_id)
            .bind(by.id)
            .bind(months),
        db,
    )
    .await
    .map(drop)
}

/// Sets how the counter reads phone numbers typed without a country code, and a clerk's time for returns.
pub async fn set_counter_settings(
    db: &PgPool,
    by: &Staff,
    calling_code: &str,
    return_minutes: i32,
) -> Result<()> {
    call_function(
        sqlx::query_scalar("select public.set_counter_settings($1, $2, $3, $4)")
            .bind(by.program_id)
            .bind(by.id)
            .bind(calling_code)
            .bind(return_minutes),
        db,
    )
    .await
    .map(drop)
}

/// Members looked at in one step of an expiry run, each step its own transaction.
const EXPIRY_STEP: i32 = 500;

/// Runs a program's points expiry to the end, step by step: the points expired. A run stopped half way keeps
/// the steps it committed, and the next run finds only what is left.
pub async fn run_expiry(db: &PgPool, program_id: Uuid) -> Result<i64> {
    let mut after: Option<Uuid> = None;
    let mut expired = 0;
    loop {
        let (last, points): (Option<Uuid>, i64) = sqlx::query_as(
            "select last_member, expired from public.expire_points_step($1, $2, $3)",
        )
        .bind(program_id)
        .bind(after)
        .bind(EXPIRY_STEP)
        .fetch_one(db)
        .await
        .map_err(db_error)?;
        expired += points;
        match last {
            Some(last) => after = Some(last),
            None => return Ok(expired),
        }
    }
}

/// Runs the expiry of every program whose points expire: the hourly run.
pub async fn run_every_expiry(db: &PgPool) -> Result<i64> {
    let programs: Vec<Uuid> = sqlx::query_scalar(
        "select p.id from public.programs p where p.points_expire_months is not null",
    )
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    let mut expired = 0;
    for program in programs {
        expired += run_expiry(db, program).await?;
    }
    Ok(expired)
}
