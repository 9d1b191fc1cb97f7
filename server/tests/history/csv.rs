//! The CSV export: streamed as the rows are read, exactly the filter's rows, for managers only.

use app::history::db::{CSV_HEADER, history_csv, void};
use app::history::{CsvQuery, csv_download};
use app::request::Outcome;
use app::session::Staff;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use chrono::DateTime;
use futures::StreamExt;
use loyalty_core::LoyaltyError;
use loyalty_core::wire::{HistoryFilter, Role, TxType};
use server::testkit::TestDb;
use uuid::Uuid;

use crate::seeded::seeded_history;
use crate::{day, walk};

fn session_of(program_id: Uuid, id: Uuid, role: Role) -> Staff {
    Staff {
        id,
        program_id,
        program_name: "Test program".into(),
        time_zone: "UTC".into(),
        name: "Someone".into(),
        email: "someone@example.com".into(),
        role,
        csrf_token: "csrf".into(),
    }
}

async fn collect_csv(
    db: &TestDb,
    filter: &HistoryFilter,
) -> (Vec<Vec<u8>>, Vec<csv::StringRecord>) {
    let chunks: Vec<Vec<u8>> = history_csv(db.app.clone(), db.program_id, filter.clone())
        .map(|chunk| chunk.unwrap())
        .collect()
        .await;
    let bytes = chunks.concat();
    let mut reader = csv::Reader::from_reader(bytes.as_slice());
    assert_eq!(
        reader.headers().unwrap(),
        &csv::StringRecord::from(CSV_HEADER.to_vec())
    );
    let records = reader.records().map(|r| r.unwrap()).collect();
    (chunks, records)
}

/// The CSV cell a note becomes: formulas are defused.
fn cell(text: &str) -> String {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}")
    } else {
        text.to_owned()
    }
}

#[tokio::test]
async fn the_csv_export_streams_exactly_the_filtered_rows() {
    let db = TestDb::new().await;
    let seeded = seeded_history(&db).await;
    // A void, so the voids column has something in it.
    let voided = seeded
        .rows
        .iter()
        .find(|r| r.tx_type == TxType::Redeem)
        .unwrap();
    let void_entry = void(&db.app, db.program_id, None, voided.id, "rang up twice")
        .await
        .unwrap();
    for filter in [
        HistoryFilter::default(),
        HistoryFilter {
            from: Some(day(2)),
            to: Some(day(4)),
            tx_type: Some(TxType::Earn),
            ..Default::default()
        },
        HistoryFilter {
            member: Some(seeded.members[0].clone()),
            staff: Some(seeded.staff[1].email.clone()),
            ..Default::default()
        },
    ] {
        let entries = walk(&db, &filter, 500).await;
        let (_, records) = collect_csv(&db, &filter).await;
        assert!(!records.is_empty());
        assert_eq!(records.len(), entries.len(), "{filter:?}");
        for (record, entry) in records.iter().zip(&entries) {
            assert_eq!(record[0].parse::<i64>().unwrap(), entry.id);
            assert_eq!(
                DateTime::parse_from_rfc3339(&record[1]).unwrap(),
                entry.created_at
            );
            assert_eq!(&record[2], entry.external_id);
            assert_eq!(&record[3], entry.tx_type.as_sql());
            assert_eq!(record[4].parse::<i64>().unwrap(), entry.points);
            assert_eq!(record[5].parse::<i64>().unwrap(), entry.balance_after);
            assert_eq!(&record[6], entry.staff_name.as_deref().unwrap_or(""));
            assert_eq!(record[7], cell(entry.description.as_deref().unwrap_or("")));
            assert_eq!(
                record[8],
                entry.voids.map(|v| v.to_string()).unwrap_or_default()
            );
        }
    }
    let (_, records) = collect_csv(&db, &HistoryFilter::default()).await;
    let void_record = records
        .iter()
        .find(|r| r[0] == void_entry.id.to_string())
        .unwrap();
    assert_eq!(void_record[8], voided.id.to_string());
    assert!(
        records.iter().any(|r| &r[7] == "'=SUM(A1:A9)"),
        "a formula is written as text"
    );
    assert!(records.iter().any(|r| &r[7] == "two\nlines"));
    assert!(records.iter().any(|r| &r[7] == "said \"thanks\""));

    // A large export arrives in many chunks as the rows are read, not as one body built in memory.
    let member = db.member(0).await;
    sqlx::query(
        "insert into transactions (program_id, member_id, points, type, balance_after, description)
         select $1, m.id, 1, 'EARN', g, 'bulk row ' || g
           from passes_master m, generate_series(1, 6000) g
          where m.program_id = $1 and m.external_id = $2",
    )
    .bind(db.program_id)
    .bind(&member)
    .execute(&db.owner)
    .await
    .unwrap();
    sqlx::query("update passes_master set points = 6000 where external_id = $1")
        .bind(&member)
        .execute(&db.owner)
        .await
        .unwrap();
    assert!(db.invariant_violations().await.is_empty());
    let filter = HistoryFilter {
        member: Some(member),
        ..Default::default()
    };
    let (chunks, records) = collect_csv(&db, &filter).await;
    assert_eq!(records.len(), 6000);
    assert!(chunks.len() >= 5, "{} chunks", chunks.len());
    assert!(chunks.iter().all(|c| c.len() < 64 * 1024));
}

#[tokio::test]
async fn the_csv_download_is_for_signed_in_managers_and_names_its_file() {
    let db = TestDb::new().await;
    let seeded = seeded_history(&db).await;
    let manager = session_of(db.program_id, seeded.staff[0].id, Role::Manager);
    let clerk = session_of(db.program_id, seeded.staff[1].id, Role::Clerk);
    let body_json = |body: axum::body::Body| async move {
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
        serde_json::from_slice::<LoyaltyError>(&bytes).unwrap()
    };

    let outcome = Outcome::default();
    let response = csv_download(
        State(db.app.clone()),
        None,
        Some(axum::Extension(outcome.clone())),
        Query(CsvQuery::default()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        outcome.get(),
        Some("NOT_SIGNED_IN"),
        "the refusal's outcome"
    );
    assert_eq!(
        body_json(response.into_body()).await,
        LoyaltyError::NotSignedIn
    );

    let response = csv_download(
        State(db.app.clone()),
        Some(axum::Extension(clerk)),
        None,
        Query(CsvQuery::default()),
    )
    .await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let err = body_json(response.into_body()).await;
    assert_eq!(err, LoyaltyError::ManagersOnly);
    assert_eq!(err.to_string(), "This page is for managers.");

    let response = csv_download(
        State(db.app.clone()),
        Some(axum::Extension(manager.clone())),
        None,
        Query(CsvQuery {
            from: Some("1 March".into()),
            ..Default::default()
        }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        body_json(response.into_body()).await.to_string(),
        "Enter the start date as year-month-day, like 2026-11-27."
    );

    let response = csv_download(
        State(db.app.clone()),
        Some(axum::Extension(manager)),
        None,
        Query(CsvQuery {
            tx_type: Some("redeem".into()),
            member: Some(seeded.members[1].to_lowercase()),
            ..Default::default()
        }),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"history.csv\""
    );
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    let ids: Vec<i64> = csv::Reader::from_reader(bytes.as_ref())
        .records()
        .map(|r| r.unwrap()[0].parse().unwrap())
        .collect();
    let expected = seeded.expected(&HistoryFilter {
        tx_type: Some(TxType::Redeem),
        member: Some(seeded.members[1].clone()),
        ..Default::default()
    });
    assert!(!expected.is_empty());
    assert_eq!(ids, expected.iter().map(|r| r.id).collect::<Vec<_>>());
}
