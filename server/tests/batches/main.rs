//! Postcard batches: made in one call, counted, exported, printed and withdrawn; and guessing codes at the
//! counter is throttled while real postcards always go through.

mod exports;
mod guesses;
mod orders;
mod withdrawals;

use app::batches::BatchSummary;
use app::batches::db as batches;
use loyalty_core::wire::Role;
use reqwest::StatusCode;
use server::testkit::{ApiClient, TestDb};
use uuid::Uuid;

/// A manager of `program_id`, who is never signed in: the batch functions take their id.
async fn manager_of(db: &TestDb, program_id: Uuid) -> Uuid {
    db.staff(program_id, Role::Manager).await.0
}

async fn batch_of(db: &TestDb, program_id: Uuid, manager: Uuid, size: i64) -> BatchSummary {
    batches::create_batch(&db.app, program_id, manager, "Test mailing", size, None)
        .await
        .unwrap()
}

async fn codes_of(db: &TestDb, batch: &BatchSummary) -> Vec<String> {
    sqlx::query_scalar("select code from claim_codes where batch_id = $1 order by code")
        .bind(batch.id)
        .fetch_all(&db.owner)
        .await
        .unwrap()
}

fn today() -> String {
    chrono::Utc::now().format("%-d %b %Y").to_string()
}

/// A code that parses as a postcard but was never issued.
fn unissued(n: usize) -> String {
    let alphabet = loyalty_core::code::ALPHABET;
    let body: String = (0..12)
        .map(|i| alphabet[(n * 7 + i * 13 + n / 31) % 31] as char)
        .collect();
    loyalty_core::code::claim_code_from_body(&body)
}

async fn made_over_http(manager: &ApiClient, name: &str, size: &str) -> BatchSummary {
    let response = manager
        .change("create_batch", &[("name", name), ("size", size)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}
