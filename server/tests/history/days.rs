//! Summed days: each day of the ledger summed once, by however many servers, giving the sums the rows give.

use std::sync::Arc;

use app::history::db::history_summary;
use chrono::{NaiveDate, Utc};
use loyalty_core::wire::{HistoryFilter, TxType};
use server::testkit::{TestDb, Till};
use tokio::sync::Barrier;

use crate::day;
use crate::seeded::seeded_history;

#[tokio::test]
async fn summed_days_give_the_sums_the_rows_give_and_are_summed_once() {
    const TASKS: usize = 8;
    let db = TestDb::with_pool_size(TASKS as u32).await;
    let seeded = seeded_history(&db).await;
    let member = &seeded.members[0];
    let till = Till::manager(&db).await;
    for points in [5, 6, 7] {
        till.earn(member, points).await.unwrap();
    }
    let filters = [
        HistoryFilter::default(),
        HistoryFilter {
            from: Some(day(3)),
            ..Default::default()
        },
        HistoryFilter {
            from: Some(day(2)),
            to: Some(day(4)),
            ..Default::default()
        },
        HistoryFilter {
            tx_type: Some(TxType::Redeem),
            ..Default::default()
        },
        HistoryFilter {
            from: Some(day(4)),
            tx_type: Some(TxType::Earn),
            ..Default::default()
        },
        HistoryFilter {
            member: Some(member.clone()),
            ..Default::default()
        },
    ];
    let mut row_by_row = Vec::new();
    for filter in &filters {
        row_by_row.push(
            history_summary(&db.app, db.program_id, filter)
                .await
                .unwrap(),
        );
    }

    // Many servers summing at once sum each day once.
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (app, barrier) = (db.app.clone(), barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            app::history::db::roll_up_ledger_days(&app).await
        }));
    }
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    let (summed, rows_before_yesterday, next_day): (i64, i64, NaiveDate) = sqlx::query_as(
        "select (select sum(tx_count)::bigint from ledger_days where program_id = $1),
                (select count(*) from transactions
                  where program_id = $1 and created_at < (current_date - 1)::timestamp at time zone 'UTC'),
                (select next_day from ledger_days_through where program_id = $1)",
    )
    .bind(db.program_id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(summed, seeded.rows.len() as i64);
    assert_eq!(summed, rows_before_yesterday);
    assert_eq!(next_day, Utc::now().date_naive().pred_opt().unwrap());

    for (filter, expected) in filters.iter().zip(&row_by_row) {
        let summary = history_summary(&db.app, db.program_id, filter)
            .await
            .unwrap();
        assert_eq!(&summary, expected, "{filter:?}");
    }

    // Today's changes, not summed yet, count as they come; summing again changes nothing.
    till.earn(member, 11).await.unwrap();
    app::history::db::roll_up_ledger_days(&db.app)
        .await
        .unwrap();
    let summary = history_summary(&db.app, db.program_id, &HistoryFilter::default())
        .await
        .unwrap();
    assert_eq!(
        (summary.totals.transactions, summary.totals.earned),
        (
            row_by_row[0].totals.transactions + 1,
            row_by_row[0].totals.earned + 11
        )
    );
    let summed_again: i64 =
        sqlx::query_scalar("select sum(tx_count)::bigint from ledger_days where program_id = $1")
            .bind(db.program_id)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(summed_again, summed);
}

#[tokio::test]
async fn the_server_sums_the_days_when_it_starts() {
    let db = TestDb::new().await;
    let seeded = seeded_history(&db).await;
    let server =
        server::testkit::ServerProcess::start(env!("CARGO_BIN_EXE_server"), &db.owner_url(), &[])
            .await;
    let summed = async {
        loop {
            let summed: Option<i64> = sqlx::query_scalar(
                "select sum(d.tx_count)::bigint from ledger_days d
                  where d.program_id = $1
                    and exists (select 1 from ledger_days_through x where x.program_id = d.program_id)",
            )
            .bind(db.program_id)
            .fetch_one(&db.owner)
            .await
            .unwrap();
            if let Some(summed) = summed {
                return summed;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    };
    let summed = tokio::time::timeout(std::time::Duration::from_secs(30), summed)
        .await
        .unwrap_or_else(|_| panic!("the server did not sum the days:\n{}", server.logs()));
    assert_eq!(summed, seeded.rows.len() as i64);
}
