//! Over a large ledger, every first page is read from an index in order, never from a sort of the program.

use app::history::db::{Cursor, history_page, history_summary, program_clock, push_page_query};
use chrono::NaiveDate;
use loyalty_core::wire::{HistoryFilter, Role, TxType};
use server::testkit::{TestDb, new_program};
use sqlx::{Postgres, QueryBuilder};

/// 200,000 rows in the program (and 20,000 in another), spread over 200 members, two staff members and
/// 277 days: enough that a sort of the program would show.
async fn big_ledger(db: &TestDb) -> (String, String) {
    let alice = db
        .staff_named(db.program_id, "alice@example.com", "Alice", Role::Manager)
        .await;
    let bob = db
        .staff_named(db.program_id, "bob@example.com", "Bob", Role::Clerk)
        .await;
    let other = new_program(&db.owner, "Other program").await;
    for (program, members, rows) in [(db.program_id, 200, 200_000), (other, 20, 20_000)] {
        sqlx::query("select create_member_pass($1, 'MBR') from generate_series(1, $2)")
            .bind(program)
            .bind(members)
            .execute(&db.owner)
            .await
            .unwrap();
        sqlx::query(
            "with m as (select id, row_number() over (order by id) - 1 as n
                          from passes_master where program_id = $1)
             insert into transactions (program_id, member_id, points, type, staff_id, balance_after, created_at)
             select $1, m.id, 1, 'EARN',
                    case when $1 = $5 then case g % 3 when 0 then $3::uuid when 1 then $4::uuid end end,
                    g / $2 + 1,
                    timestamptz '2026-01-01 00:00:00+00' + g * interval '2 minutes'
               from generate_series(0, $6 - 1) g join m on m.n = g % $2
              order by g",
        )
        .bind(program)
        .bind(members)
        .bind(alice)
        .bind(bob)
        .bind(db.program_id)
        .bind(rows)
        .execute(&db.owner)
        .await
        .unwrap();
    }
    sqlx::query(
        "update passes_master m set points = (select count(*) from transactions t
                                                where t.program_id = m.program_id and t.member_id = m.id)",
    )
    .execute(&db.owner)
    .await
    .unwrap();
    sqlx::raw_sql("vacuum analyze transactions")
        .execute(&db.owner)
        .await
        .unwrap();
    assert!(db.invariant_violations().await.is_empty());
    let member: String = sqlx::query_scalar(
        "select external_id from passes_master where program_id = $1 order by id limit 1",
    )
    .bind(db.program_id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    (member, "alice@example.com".into())
}

async fn explain(db: &TestDb, filter: &HistoryFilter, cursor: Option<Cursor>) -> String {
    let mut sql =
        QueryBuilder::<Postgres>::new("explain (analyze, costs off, timing off, summary on) ");
    let clock = program_clock(&db.app, db.program_id, filter).await.unwrap();
    push_page_query(&mut sql, db.program_id, filter, &clock, cursor, 50);
    let lines: Vec<String> = sql.build_query_scalar().fetch_all(&db.app).await.unwrap();
    lines.join("\n")
}

#[tokio::test]
async fn every_first_page_reads_an_index_in_order_not_a_sort_of_the_program() {
    let db = TestDb::new().await;
    let (member, staff) = big_ledger(&db).await;
    let cases = [
        (
            "first page",
            HistoryFilter::default(),
            None,
            "transactions_history_idx",
        ),
        (
            "an older page",
            HistoryFilter::default(),
            Some(Cursor {
                created_at: "2026-03-15T12:00:00Z".parse().unwrap(),
                id: 1,
            }),
            "transactions_history_idx",
        ),
        (
            "a type",
            HistoryFilter {
                tx_type: Some(TxType::Earn),
                ..Default::default()
            },
            None,
            "transactions_history_idx",
        ),
        (
            "a date range",
            HistoryFilter {
                from: Some(NaiveDate::from_ymd_opt(2026, 2, 1).unwrap()),
                to: Some(NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()),
                ..Default::default()
            },
            None,
            "transactions_history_idx",
        ),
        (
            "a member",
            HistoryFilter {
                member: Some(member),
                ..Default::default()
            },
            None,
            "transactions_member_history_idx",
        ),
        (
            "a staff member",
            HistoryFilter {
                staff: Some(staff),
                ..Default::default()
            },
            None,
            "transactions_staff_history_idx",
        ),
    ];
    for (name, filter, cursor, index) in cases {
        let plan = explain(&db, &filter, cursor).await;
        println!("-- {name}\n{plan}\n");
        assert!(
            plan.contains(&format!("Index Scan using {index} on transactions")),
            "{name}:\n{plan}"
        );
        assert!(!plan.contains("Sort"), "{name} sorts:\n{plan}");
        assert!(
            !plan.contains("Seq Scan on transactions"),
            "{name}:\n{plan}"
        );
    }
    let started = std::time::Instant::now();
    let page = history_page(&db.app, db.program_id, &HistoryFilter::default(), None, 50)
        .await
        .unwrap();
    let page_took = started.elapsed();
    let started = std::time::Instant::now();
    let summary = history_summary(&db.app, db.program_id, &HistoryFilter::default())
        .await
        .unwrap();
    println!(
        "first page: {page_took:?}; totals and the daily chart over {} rows, apart: {:?}",
        summary.totals.transactions,
        started.elapsed()
    );
    assert_eq!(page.entries.len(), 50);
    assert!(page.next_cursor.is_some());
    assert_eq!(summary.totals.transactions, 200_000);
}
