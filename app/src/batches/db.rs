//! Batches of postcards: made and withdrawn by `create_claim_code_batch` and `void_claim_code_batch`, read here.

use std::io;

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use futures::{Stream, TryStreamExt};
use loyalty_core::{LoyaltyError, Result};
use sqlx::{PgExecutor, PgPool};
use uuid::Uuid;

use super::{BatchSummary, Postcard};
use crate::db::{RpcAnswer, csv_body, db_error};

/// The CSV export's columns.
pub const CSV_HEADER: [&str; 4] = ["code", "batch", "claimed_at", "withdrawn_at"];

#[derive(sqlx::FromRow)]
struct BatchRow {
    id: Uuid,
    name: String,
    size: i32,
    created_at: DateTime<Utc>,
    created_on: NaiveDate,
    created_by: String,
    voided_at: Option<DateTime<Utc>>,
    voided_on: Option<NaiveDate>,
    voided_by: Option<String>,
    voided: i32,
    claimed: i64,
    welcome_points: i32,
    last_day: Option<NaiveDate>,
}

impl From<BatchRow> for BatchSummary {
    fn from(row: BatchRow) -> Self {
        let size = i64::from(row.size);
        let voided = i64::from(row.voided);
        Self {
            id: row.id,
            name: row.name,
            size,
            claimed: row.claimed,
            unclaimed: size - row.claimed - voided,
            voided,
            created_at: row.created_at,
            created_on: row.created_on,
            created_by: row.created_by,
            voided_at: row.voided_at,
            voided_on: row.voided_on,
            voided_by: row.voided_by,
            welcome_points: row.welcome_points.into(),
            last_day: row.last_day,
        }
    }
}

// The claimed count reads the partial index of claimed codes: its cost is the batch's claims, not its size.
macro_rules! batch_select {
    () => {
        "
    select b.id, b.name, b.size, b.created_at,
           public.program_time(b.program_id, b.created_at)::date as created_on,
           cs.display_name as created_by, b.voided_at,
           public.program_time(b.program_id, b.voided_at)::date as voided_on,
           vs.display_name as voided_by, coalesce(b.voided_count, 0) as voided,
           b.welcome_points, b.last_day,
           (select count(*) from public.claim_codes c
             where c.program_id = b.program_id and c.batch_id = b.id and c.claimed_at is not null) as claimed
      from public.claim_code_batches b
      join public.staff cs on cs.program_id = b.program_id and cs.id = b.created_by
      left join public.staff vs on vs.program_id = b.program_id and vs.id = b.voided_by
     where b.program_id = $1"
    };
}

/// Makes a batch of `size` new postcard codes in one transaction, with no offer.
pub async fn create_batch(
    db: &PgPool,
    program_id: Uuid,
    staff_id: Uuid,
    name: &str,
    size: i64,
    request_key: Option<&str>,
) -> Result<BatchSummary> {
    let offer = BatchOffer::default();
    create_batch_with_offer(db, program_id, staff_id, name, size, request_key, &offer).await
}

/// Makes a batch of `size` new postcard codes, and its offer, in one transaction.
pub async fn create_batch_with_offer(
    db: &PgPool,
    program_id: Uuid,
    staff_id: Uuid,
    name: &str,
    size: i64,
    request_key: Option<&str>,
    offer: &BatchOffer,
) -> Result<BatchSummary> {
    // Out of range for the database's integer is out of range for a batch too.
    let size = i32::try_from(size).unwrap_or(i32::MAX);
    let mut tx = db.begin().await.map_err(db_error)?;
    let answer: sqlx::types::Json<RpcAnswer> =
        sqlx::query_scalar("select public.create_claim_code_batch($1, $2, $3, $4, $5)")
            .bind(program_id)
            .bind(name)
            .bind(size)
            .bind(staff_id)
            .bind(request_key)
            .fetch_one(&mut *tx)
            .await
            .map_err(db_error)?;
    #[derive(serde::Deserialize)]
    struct Made {
        id: Uuid,
    }
    let made: Made = answer.0.into_result()?.data()?;
    // The offer is the batch's from the start: set in the transaction that makes it.
    if offer.welcome_points != 0 || offer.last_day.is_some() {
        let set: sqlx::types::Json<RpcAnswer> =
            sqlx::query_scalar("select public.set_batch_offer($1, $2, $3, $4, $5)")
                .bind(program_id)
                .bind(staff_id)
                .bind(made.id)
                .bind(offer.welcome_points)
                .bind(offer.last_day)
                .fetch_one(&mut *tx)
                .await
                .map_err(db_error)?;
        set.0.into_result()?;
    }
    let batch = find_batch(&mut *tx, program_id, made.id).await?;
    tx.commit().await.map_err(db_error)?;
    Ok(batch)
}

/// What a batch's postcards give when claimed: welcome points, until a last day on the program's clock.
#[derive(Debug, Clone, Default)]
pub struct BatchOffer {
    pub welcome_points: i64,
    pub last_day: Option<NaiveDate>,
}

/// The program's batches, newest first.
pub async fn list_batches(
    db: impl PgExecutor<'_>,
    program_id: Uuid,
    limit: i64,
) -> Result<Vec<BatchSummary>> {
    let rows: Vec<BatchRow> = sqlx::query_as(concat!(
        batch_select!(),
        " order by b.created_at desc, b.id desc limit $2"
    ))
    .bind(program_id)
    .bind(limit)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    Ok(rows.into_iter().map(BatchSummary::from).collect())
}

/// One batch of the program.
pub async fn find_batch(
    db: impl PgExecutor<'_>,
    program_id: Uuid,
    batch_id: Uuid,
) -> Result<BatchSummary> {
    let row: Option<BatchRow> = sqlx::query_as(concat!(batch_select!(), " and b.id = $2"))
        .bind(program_id)
        .bind(batch_id)
        .fetch_optional(db)
        .await
        .map_err(db_error)?;
    row.map(BatchSummary::from)
        .ok_or(LoyaltyError::BatchNotFound)
}

/// Withdraws the batch's unclaimed codes; claimed codes stay claimed.
pub async fn void_batch(
    db: &PgPool,
    program_id: Uuid,
    staff_id: Uuid,
    batch_id: Uuid,
) -> Result<BatchSummary> {
    let answer: sqlx::types::Json<RpcAnswer> =
        sqlx::query_scalar("select public.void_claim_code_batch($1, $2, $3)")
            .bind(program_id)
            .bind(batch_id)
            .bind(staff_id)
            .fetch_one(db)
            .await
            .map_err(db_error)?;
    if let Err(err) = answer.0.into_result() {
        return Err(crate::db::read_on_program_clock(db, program_id, err).await);
    }
    find_batch(db, program_id, batch_id).await
}

/// Up to `limit` postcards of the batch that can still be claimed, in code order after `after`, each with
/// its QR code.
pub async fn printable_postcards(
    db: impl PgExecutor<'_>,
    program_id: Uuid,
    batch_id: Uuid,
    after: Option<&str>,
    limit: i64,
) -> Result<Vec<Postcard>> {
    let codes: Vec<String> = sqlx::query_scalar(
        "select c.code from public.claim_codes c
          where c.program_id = $1 and c.batch_id = $2 and c.code > $3
            and c.claimed_at is null and c.voided_at is null
          order by c.code
          limit $4",
    )
    .bind(program_id)
    .bind(batch_id)
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    codes
        .into_iter()
        .map(|code| {
            let qr_svg = qr_svg(&code)?;
            Ok(Postcard { code, qr_svg })
        })
        .collect()
}

/// The code as a QR code in inline SVG: one path of horizontal runs of dark modules, with the quiet zone of
/// four modules around it, sized by the page's CSS.
pub fn qr_svg(code: &str) -> Result<String> {
    use std::fmt::Write;
    let qr = qrcode::QrCode::with_error_correction_level(code.as_bytes(), qrcode::EcLevel::M)
        .map_err(|err| {
            tracing::error!(error = %err, "encoding a QR code");
            LoyaltyError::Internal
        })?;
    let width = qr.width();
    let modules = qr.to_colors();
    let side = width + 8;
    let mut path = String::with_capacity(width * width);
    for (y, row) in modules.chunks(width).enumerate() {
        let mut x = 0;
        while x < width {
            if row[x] == qrcode::Color::Dark {
                let run = row[x..]
                    .iter()
                    .take_while(|c| **c == qrcode::Color::Dark)
                    .count();
                let _ = write!(path, "M{} {}h{run}v1h-{run}z", x + 4, y + 4);
                x += run;
            } else {
                x += 1;
            }
        }
    }
    Ok(format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {side} {side}\" role=\"img\" \
         aria-label=\"QR code of {code}\" shape-rendering=\"crispEdges\">\
         <rect width=\"{side}\" height=\"{side}\" fill=\"#fff\"/><path fill=\"#000\" d=\"{path}\"/></svg>"
    ))
}

/// A cell a spreadsheet would run as a formula is written with a leading `'`: batch names are typed by staff.
fn spreadsheet_safe(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

fn timestamp(at: Option<DateTime<Utc>>) -> String {
    at.map(|at| at.to_rfc3339_opts(SecondsFormat::Micros, true))
        .unwrap_or_default()
}

/// Every code of the batch as CSV in code order, streamed from one query as the rows arrive. A database failure
/// part-way ends the stream with an error, so the download fails rather than looking complete.
pub fn batch_csv(
    db: PgPool,
    program_id: Uuid,
    batch: BatchSummary,
) -> impl Stream<Item = io::Result<Vec<u8>>> + Send + 'static {
    csv_body("a batch CSV", move |mut out| async move {
        let name = spreadsheet_safe(&batch.name);
        out.write(CSV_HEADER).await?;
        let mut rows = sqlx::query_as::<_, (String, Option<DateTime<Utc>>, Option<DateTime<Utc>>)>(
            "select c.code, c.claimed_at, c.voided_at from public.claim_codes c
                  where c.program_id = $1 and c.batch_id = $2
                  order by c.code",
        )
        .bind(program_id)
        .bind(batch.id)
        .fetch(&db);
        while let Some((code, claimed_at, voided_at)) = rows.try_next().await.map_err(db_error)? {
            let record = [
                code.as_str(),
                name.as_str(),
                &timestamp(claimed_at),
                &timestamp(voided_at),
            ];
            if !out.write(record).await? {
                return Ok(());
            }
        }
        out.finish().await
    })
}
