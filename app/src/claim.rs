//! Scanning: a postcard becomes a member pass, a pass opens its member.

use loyalty_core::wire::ScanOutcome;
#[cfg(feature = "ssr")]
pub mod db;

/// Resolves what a scanner or a clerk entered: burns a postcard, or finds the member a pass belongs to.
#[cfg(feature = "ssr")]
pub async fn resolve_scan(
    pool: &sqlx::PgPool,
    program_id: uuid::Uuid,
    staff_id: Option<uuid::Uuid>,
    raw: &str,
) -> loyalty_core::Result<ScanOutcome> {
    use loyalty_core::{ScanCode, parse_scan};
    match parse_scan(raw)? {
        ScanCode::Claim(code) => db::claim_postcard(pool, program_id, staff_id, &code).await,
        ScanCode::Member(external_id) => Ok(ScanOutcome::Member {
            member: crate::members::db::find_member(pool, program_id, &external_id).await?,
        }),
    }
}
