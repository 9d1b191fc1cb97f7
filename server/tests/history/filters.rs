//! Filters, sums and keyset pages find exactly the rows they name, however the rows share their instants.

use std::collections::HashSet;

use app::history::db::{Cursor, history_page, history_summary};
use app::history::parse_filter;
use chrono::{DateTime, NaiveDate, Utc};
use loyalty_core::LoyaltyError;
use loyalty_core::wire::{DailyPoints, HistoryFilter, HistorySummary, HistoryTotals, TxType};
use server::testkit::{TestDb, Till, new_program};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::seeded::{seeded_history, sums};
use crate::{at, day, ids, walk};

#[tokio::test]
async fn each_filter_and_their_combination_match_exactly_the_rows_they_name() {
    let db = TestDb::new().await;
    let seeded = seeded_history(&db).await;
    let (m, alice, bob) = (
        &seeded.members,
        seeded.staff[0].email.clone(),
        seeded.staff[1].email.clone(),
    );
    let filters = [
        HistoryFilter::default(),
        HistoryFilter {
            from: Some(day(3)),
            ..Default::default()
        },
        HistoryFilter {
            to: Some(day(2)),
            ..Default::default()
        },
        HistoryFilter {
            from: Some(day(2)),
            to: Some(day(2)),
            ..Default::default()
        },
        HistoryFilter {
            from: Some(day(4)),
            to: Some(day(5)),
            ..Default::default()
        },
        HistoryFilter {
            tx_type: Some(TxType::Earn),
            ..Default::default()
        },
        HistoryFilter {
            tx_type: Some(TxType::Redeem),
            ..Default::default()
        },
        HistoryFilter {
            member: Some(m[0].clone()),
            ..Default::default()
        },
        HistoryFilter {
            member: Some(m[2].clone()),
            ..Default::default()
        },
        HistoryFilter {
            staff: Some(alice.clone()),
            ..Default::default()
        },
        HistoryFilter {
            staff: Some(bob.clone()),
            ..Default::default()
        },
        HistoryFilter {
            from: Some(day(2)),
            to: Some(day(5)),
            tx_type: Some(TxType::Earn),
            member: Some(m[1].clone()),
            staff: Some(alice.clone()),
        },
    ];
    let everything = seeded.rows.len();
    for filter in &filters {
        let expected = seeded.expected(filter);
        assert!(
            !expected.is_empty(),
            "a filter that matches nothing proves little: {filter:?}"
        );
        if filter != &HistoryFilter::default() {
            assert!(
                expected.len() < everything,
                "{filter:?} must leave rows out"
            );
        }
        let entries = walk(&db, filter, 7).await;
        assert_eq!(
            ids(&entries),
            expected.iter().map(|r| r.id).collect::<Vec<_>>(),
            "{filter:?}"
        );
        for (entry, known) in entries.iter().zip(&expected) {
            assert_eq!(entry.external_id, known.member);
            assert_eq!(entry.tx_type, known.tx_type);
            assert_eq!(entry.points, known.points);
            assert_eq!(entry.balance_after, known.balance_after);
            assert_eq!(entry.created_at, known.created_at);
            assert_eq!(entry.staff_name, seeded.staff_name(known));
            assert_eq!(
                entry.description.as_deref().unwrap_or(""),
                known.description
            );
        }
        let summary = history_summary(&db.app, db.program_id, filter)
            .await
            .unwrap();
        assert_eq!(summary, sums(&expected), "{filter:?}");
    }

    // Whole days, inclusive, in UTC: the first and last microsecond of 2 March are in, 3 March's first is out.
    let second_of_march = walk(
        &db,
        &HistoryFilter {
            from: Some(day(2)),
            to: Some(day(2)),
            ..Default::default()
        },
        100,
    )
    .await;
    let times: HashSet<DateTime<Utc>> = second_of_march.iter().map(|e| e.created_at).collect();
    assert!(times.contains(&at(2, 0, 0, 0, 0)));
    assert!(times.contains(&at(2, 23, 59, 59, 999_999)));
    assert!(!times.contains(&at(3, 0, 0, 0, 0)));

    // A member or staff member the program does not have matches nothing; it is not an error.
    for filter in [
        HistoryFilter {
            member: Some("MBR-ZZZZZZZZZZ".into()),
            ..Default::default()
        },
        HistoryFilter {
            staff: Some("nobody@example.com".into()),
            ..Default::default()
        },
    ] {
        let page = history_page(&db.app, db.program_id, &filter, None, 10)
            .await
            .unwrap();
        assert!(page.entries.is_empty() && page.next_cursor.is_none());
        let summary = history_summary(&db.app, db.program_id, &filter)
            .await
            .unwrap();
        assert_eq!(summary.totals, HistoryTotals::default());
        assert!(summary.daily.is_empty());
    }

    // Another program's history is not this one's.
    let other = new_program(&db.owner, "Other program").await;
    let page = history_page(&db.app, other, &HistoryFilter::default(), None, 10)
        .await
        .unwrap();
    assert!(page.entries.is_empty());
    let summary = history_summary(&db.app, other, &HistoryFilter::default())
        .await
        .unwrap();
    assert_eq!(summary, HistorySummary::default());
}

#[tokio::test]
async fn totals_and_daily_sums_are_sqls_own_sums() {
    let db = TestDb::new().await;
    seeded_history(&db).await;
    let HistorySummary { totals, daily } =
        history_summary(&db.app, db.program_id, &HistoryFilter::default())
            .await
            .unwrap();
    let (count, earned, redeemed): (i64, i64, i64) = sqlx::query_as(
        "select count(*),
                sum(points) filter (where type = 'EARN'),
                sum(points) filter (where type = 'REDEEM')
           from transactions",
    )
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        totals,
        HistoryTotals {
            transactions: count,
            earned,
            redeemed,
            expired: 0,
        }
    );
    let by_day: Vec<(NaiveDate, i64, i64)> = sqlx::query_as(
        "select d::date,
                coalesce(sum(points) filter (where type = 'EARN'), 0),
                coalesce(sum(points) filter (where type = 'REDEEM'), 0)
           from generate_series(timestamp '2026-03-01', timestamp '2026-03-06', interval '1 day') d
           join transactions t on t.created_at >= d at time zone 'UTC'
                              and t.created_at < (d + interval '1 day') at time zone 'UTC'
          group by d order by d",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(by_day.len(), 6);
    assert_eq!(
        daily,
        by_day
            .into_iter()
            .map(|(day, earned, redeemed)| DailyPoints {
                day,
                earned,
                redeemed
            })
            .collect::<Vec<_>>()
    );
}

/// An earn through the function itself, inside `tx`: rows made in one transaction share its now().
async fn earn_in(tx: &mut PgConnection, program_id: Uuid, member: &str, points: i64) {
    let answer: serde_json::Value = sqlx::query_scalar(
        "select public.process_membership_transaction($1, $2, $3, 'EARN', null)",
    )
    .bind(program_id)
    .bind(member)
    .bind(points)
    .fetch_one(tx)
    .await
    .unwrap();
    assert_eq!(answer["success"], true, "{answer}");
}

#[tokio::test]
async fn keyset_pages_over_300_rows_with_shared_timestamps_skip_and_repeat_nothing() {
    let db = TestDb::new().await;
    let till = Till::manager(&db).await;
    let members = [db.member(0).await, db.member(0).await];
    let earn = |i: usize| (members[i % 2].as_str(), (i % 9 + 1) as i64);
    // Rows made in one database transaction share its now(): 200 rows at one instant, 40 at another. The
    // counter commits each change at once, so these are made by the function itself.
    let mut tx = db.owner.begin().await.unwrap();
    for i in 0..200 {
        let (member, points) = earn(i);
        earn_in(&mut tx, db.program_id, member, points).await;
    }
    tx.commit().await.unwrap();
    for i in 0..60 {
        let (member, points) = earn(i);
        till.earn(member, points).await.unwrap();
    }
    let mut tx = db.owner.begin().await.unwrap();
    for i in 0..40 {
        let (member, points) = earn(i);
        earn_in(&mut tx, db.program_id, member, points).await;
    }
    tx.commit().await.unwrap();

    let expected: Vec<i64> =
        sqlx::query_scalar("select id from transactions order by created_at desc, id desc")
            .fetch_all(&db.owner)
            .await
            .unwrap();
    assert_eq!(expected.len(), 300);
    let instants: i64 = sqlx::query_scalar("select count(distinct created_at) from transactions")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert!(instants <= 62, "the rows must share instants: {instants}");

    for limit in [1, 7, 50, 199, 200, 201, 250, 300, 1000] {
        let entries = walk(&db, &HistoryFilter::default(), limit).await;
        let seen = ids(&entries);
        assert_eq!(
            seen.iter().collect::<HashSet<_>>().len(),
            seen.len(),
            "a row was repeated"
        );
        assert_eq!(seen, expected, "limit {limit}");
    }
    let summary = history_summary(&db.app, db.program_id, &HistoryFilter::default())
        .await
        .unwrap();
    assert_eq!(summary.totals.transactions, 300);

    // Rows written while a manager pages through do not shift the pages: the older pages hold what they held.
    let first = history_page(&db.app, db.program_id, &HistoryFilter::default(), None, 25)
        .await
        .unwrap();
    for i in 0..30 {
        let (member, points) = earn(i);
        till.earn(member, points).await.unwrap();
    }
    let mut seen = ids(&first.entries);
    let mut cursor = first.next_cursor;
    while let Some(next) = cursor {
        let page = history_page(
            &db.app,
            db.program_id,
            &HistoryFilter::default(),
            Some(&next),
            25,
        )
        .await
        .unwrap();
        seen.extend(ids(&page.entries));
        cursor = page.next_cursor;
    }
    assert_eq!(seen, expected);

    // A cursor is the row it names, to the microsecond.
    let cursor = Cursor {
        created_at: at(3, 10, 0, 0, 123_457),
        id: 42,
    };
    assert_eq!(Cursor::decode(&cursor.encode()).unwrap(), cursor);
    for broken in ["", "garbage", "12_x", "x_12", "99999999999999999999_1"] {
        let err = history_page(
            &db.app,
            db.program_id,
            &HistoryFilter::default(),
            Some(broken),
            10,
        )
        .await
        .unwrap_err();
        assert_eq!(
            err.to_string(),
            "This link to older transactions is broken: start again from the newest.",
            "{broken:?}"
        );
    }
}

#[test]
fn filters_are_read_as_the_form_sends_them_and_bad_ones_are_explained() {
    assert_eq!(
        parse_filter(Some(""), Some("  "), Some(""), Some(""), Some("")).unwrap(),
        HistoryFilter::default()
    );
    assert_eq!(
        parse_filter(
            Some("2026-03-01"),
            Some("2026-03-01"),
            Some("earn"),
            Some(" mbr-abcd2345 "),
            Some(" Alice@Example.COM ")
        )
        .unwrap(),
        HistoryFilter {
            from: Some(day(1)),
            to: Some(day(1)),
            tx_type: Some(TxType::Earn),
            member: Some("MBR-ABCD2345".into()),
            staff: Some("alice@example.com".into()),
        }
    );
    assert_eq!(
        parse_filter(None, None, Some("ALL"), None, None).unwrap(),
        HistoryFilter::default()
    );
    let message = |r: Result<HistoryFilter, LoyaltyError>| r.unwrap_err().to_string();
    assert_eq!(
        message(parse_filter(Some("03/01/2026"), None, None, None, None)),
        "Enter the start date as year-month-day, like 2026-11-27."
    );
    assert_eq!(
        message(parse_filter(None, Some("2026-02-30"), None, None, None)),
        "Enter the end date as year-month-day, like 2026-11-27."
    );
    assert_eq!(
        message(parse_filter(
            Some("2026-03-02"),
            Some("2026-03-01"),
            None,
            None,
            None
        )),
        "The start date is after the end date."
    );
    assert_eq!(
        message(parse_filter(None, None, Some("refund"), None, None)),
        "Choose earn, redeem, expired or all types."
    );
}
