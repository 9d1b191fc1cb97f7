//! Earning from a sale: the rate's arithmetic at its edges (integers, rounded down once), the cap, promotions on
//! the program's clock at the time of the sale, retries, and the program's rules refused when they are bad.

use chrono::{DateTime, TimeZone, Utc};
use loyalty_core::LoyaltyError;
use server::testkit::{TestDb, Till};

/// The program's rules, set as a manager sets them.
async fn rules(
    db: &TestDb,
    manager: &Till,
    rules: (&str, i32, i64, i64, Option<i64>),
) -> serde_json::Value {
    let (currency, minor_units, earn_points, per_minor, cap) = rules;
    sqlx::query_scalar("select public.set_program_rules($1, $2, $3, $4, $5, $6, $7, 0, 0)")
        .bind(db.program_id)
        .bind(manager.staff.id)
        .bind(currency)
        .bind(minor_units)
        .bind(earn_points)
        .bind(per_minor)
        .bind(cap)
        .fetch_one(&db.app)
        .await
        .unwrap()
}

async fn promotion(db: &TestDb, manager: &Till, sql_args: &str) -> i64 {
    let answer: serde_json::Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "select public.save_promotion($1, $2, null, {sql_args})"
    )))
    .bind(db.program_id)
    .bind(manager.staff.id)
    .fetch_one(&db.app)
    .await
    .unwrap();
    assert_eq!(answer["success"], true, "{answer}");
    answer["promotion_id"].as_i64().unwrap()
}

#[tokio::test]
async fn the_rate_is_integer_arithmetic_rounded_down_once_at_its_edges() {
    let db = TestDb::new().await;
    let cases: [(i64, i32, i64, i32, i64); 9] = [
        // amount (minor units), points, per minor units, multiplier %, points earned
        (1250, 1, 100, 100, 12),
        (99, 1, 100, 100, 0),
        (100, 1, 100, 100, 1),
        (199, 1, 100, 200, 3),
        // 1.5x of 1.99 is 2.985: one rounding, at the end.
        (199, 1, 100, 150, 2),
        (1, 1000, 1, 1000, 10_000),
        (1_000_000_000_000, 1000, 1, 1000, 10_000_000_000_000_000),
        (333, 3, 1000, 100, 0),
        (334, 3, 1000, 100, 1),
    ];
    for (amount, points, per, multiplier, expected) in cases {
        let got: i64 = sqlx::query_scalar("select public.sale_points($1, $2, $3, $4)")
            .bind(amount)
            .bind(points)
            .bind(per)
            .bind(multiplier)
            .fetch_one(&db.app)
            .await
            .unwrap();
        assert_eq!(got, expected, "{amount} x {points}/{per} x {multiplier}%");
    }
    for (text, minor_units, minor) in [
        ("12.50", 2, Some(1250_i64)),
        ("12,5", 2, Some(1250)),
        ("12", 2, Some(1200)),
        (" 0.01 ", 2, Some(1)),
        ("12.505", 2, None),
        ("-3", 2, None),
        ("1e3", 2, None),
        ("12.5", 0, None),
        ("1200", 0, Some(1200)),
        ("1.234", 3, Some(1234)),
        ("", 2, None),
        ("99999999999", 2, None),
    ] {
        let got: Option<i64> = sqlx::query_scalar("select public.money_minor($1, $2)")
            .bind(text)
            .bind(minor_units)
            .fetch_one(&db.owner)
            .await
            .unwrap();
        assert_eq!(got, minor, "{text:?} with {minor_units} minor units");
    }
}

#[tokio::test]
async fn a_sale_earns_by_the_rate_and_the_receipt_says_how() {
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    let till = Till::clerk(&db).await;
    let member = db.member(0).await;

    let receipt = till
        .sale(&member, "12.50", Some("sale-1"), None)
        .await
        .unwrap();
    assert_eq!(receipt.points, 12);
    assert_eq!(receipt.new_balance, 12);
    assert_eq!(
        receipt.rule.as_deref(),
        Some("12.50 EUR -> 12 points, 1 point per 1.00 EUR")
    );
    let recorded: (i64, String) = sqlx::query_as(
        "select d.sale_amount_minor, d.currency from ledger_details d where d.transaction_id = $1",
    )
    .bind(receipt.transaction_id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(recorded, (1250, "EUR".to_owned()));

    // The same request again: answered as the first, even once the rules have changed.
    assert_eq!(
        rules(&db, &manager, ("GBP", 2, 5, 100, None)).await["success"],
        true
    );
    let again = till
        .sale(&member, "12.50", Some("sale-1"), None)
        .await
        .unwrap();
    assert!(again.replayed);
    assert_eq!((again.points, again.new_balance), (12, 12));
    assert_eq!(
        till.sale(&member, "13.00", Some("sale-1"), None).await,
        Err(LoyaltyError::IdempotencyMismatch)
    );

    let five_a_pound = till.sale(&member, "2.40", None, None).await.unwrap();
    assert_eq!(five_a_pound.points, 12);
    assert_eq!(
        five_a_pound.rule.as_deref(),
        Some("2.40 GBP -> 12 points, 5 points per 1.00 GBP")
    );

    // A yen has no minor units; a cap of 50 a sale.
    assert_eq!(
        rules(&db, &manager, ("JPY", 0, 1, 100, Some(50))).await["success"],
        true
    );
    let capped = till.sale(&member, "9000", None, None).await.unwrap();
    assert_eq!(capped.points, 50);
    assert_eq!(
        capped.rule.as_deref(),
        Some("9000 JPY -> 50 points, 1 point per 100 JPY, at most 50 a sale")
    );
    assert_eq!(
        till.sale(&member, "99", None, None).await,
        Err(LoyaltyError::NoPointsForSale {
            amount: "99 JPY".into(),
            rate: "1 point per 100 JPY".into()
        })
    );
    assert_eq!(
        till.sale(&member, "12.50", None, None).await,
        Err(LoyaltyError::InvalidSaleAmount {
            currency: "JPY".into()
        })
    );
    assert_eq!(db.balance(&member).await, 12 + 12 + 50);
    assert!(db.invariant_violations().await.is_empty());
}

#[tokio::test]
async fn the_best_running_promotion_applies_on_the_programs_clock_at_the_time_of_the_sale() {
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    let till = Till::clerk(&db).await;
    let member = db.member(0).await;
    sqlx::query("select public.set_program_time_zone($1, $2, 'Europe/Paris')")
        .bind(db.program_id)
        .bind(manager.staff.id)
        .execute(&db.app)
        .await
        .unwrap();
    // Tuesdays 14:00 to 17:00 in Paris: double points. December 2026: x1.5.
    promotion(
        &db,
        &manager,
        "'Tuesday afternoons', 200, null, null, '{2}', '14:00', '17:00'",
    )
    .await;
    promotion(&db, &manager, "'December', 150, '2026-12-01', '2026-12-31'").await;
    let at =
        |y, m, d, h, min| -> DateTime<Utc> { Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap() };
    for (moment, expected) in [
        // Tuesday 1 December, 15:30 in Paris: both run, the double wins.
        (at(2026, 12, 1, 14, 30), Some("Tuesday afternoons")),
        // 17:00 in Paris: the window has closed; December still runs.
        (at(2026, 12, 1, 16, 0), Some("December")),
        // 13:59 in Paris: not yet.
        (at(2026, 12, 1, 12, 59), Some("December")),
        (at(2026, 12, 2, 14, 30), Some("December")),
        (at(2026, 11, 24, 14, 30), Some("Tuesday afternoons")),
        (at(2026, 11, 25, 14, 30), None),
        // 23:30 on 31 December in Paris, then 00:30 on 1 January: the program's clock, not UTC's.
        (at(2026, 12, 31, 22, 30), Some("December")),
        (at(2026, 12, 31, 23, 30), None),
    ] {
        let best: Option<String> =
            sqlx::query_scalar("select (public.best_promotion($1, $2)).name")
                .bind(db.program_id)
                .bind(moment)
                .fetch_one(&db.owner)
                .await
                .unwrap();
        assert_eq!(best.as_deref(), expected, "at {moment}");
    }

    // A sale two days ago at 15:30 in Paris, sent late: the weekly window of that day applies, not today's.
    let (sold_at, weekday): (DateTime<Utc>, i32) = sqlx::query_as(
        "select ((public.program_time($1, now()) - interval '2 days')::date + time '15:30')
                    at time zone 'Europe/Paris',
                extract(isodow from public.program_time($1, now()) - interval '2 days')::int",
    )
    .bind(db.program_id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    promotion(
        &db,
        &manager,
        &format!("'Triple that day', 300, null, null, '{{{weekday}}}', '15:00', '16:00'"),
    )
    .await;
    let receipt = till
        .sale(&member, "10.00", None, Some(sold_at))
        .await
        .unwrap();
    assert_eq!(receipt.points, 30);
    assert_eq!(
        receipt.rule.as_deref(),
        Some("10.00 EUR -> 30 points, 1 point per 1.00 EUR, x3 Triple that day")
    );
    let promoted: Option<i64> = sqlx::query_scalar(
        "select d.promotion_id from ledger_details d where d.transaction_id = $1",
    )
    .bind(receipt.transaction_id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert!(promoted.is_some());
    // The same sale now, outside that day's window, earns by the plain rate or a promotion running now.
    let now = till.sale(&member, "10.00", None, None).await.unwrap();
    assert_ne!(now.points, 30);
    assert!(db.invariant_violations().await.is_empty());
}

#[tokio::test]
async fn bad_rules_and_promotions_are_refused_by_the_database() {
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    let clerk = Till::clerk(&db).await;
    for (rules_given, code) in [
        (("eur", 2, 1, 100, None), "INVALID_CURRENCY"),
        (("EURO", 2, 1, 100, None), "INVALID_CURRENCY"),
        (("EUR", 4, 1, 100, None), "INVALID_CURRENCY"),
        (("EUR", 2, 0, 100, None), "INVALID_EARN_RATE"),
        (("EUR", 2, 1001, 100, None), "INVALID_EARN_RATE"),
        (("EUR", 2, 1, 0, None), "INVALID_EARN_RATE"),
        (("EUR", 2, 1, 100, Some(0)), "INVALID_SALE_CAP"),
    ] {
        let answer = rules(&db, &manager, rules_given).await;
        assert_eq!(answer["error"], code, "{rules_given:?}");
    }
    assert_eq!(
        rules(&db, &clerk, ("EUR", 2, 1, 100, None)).await["error"],
        "MANAGERS_ONLY"
    );
    for (args, code) in [
        ("'', 200", "INVALID_PROMOTION_NAME"),
        ("'Double', 100", "INVALID_MULTIPLIER"),
        ("'Double', 1001", "INVALID_MULTIPLIER"),
        (
            "'Double', 200, '2026-12-31', '2026-12-01'",
            "START_AFTER_END",
        ),
        ("'Double', 200, null, null, '{0}'", "INVALID_WEEKDAYS"),
        ("'Double', 200, null, null, '{}'", "INVALID_WEEKDAYS"),
        (
            "'Double', 200, null, null, null, '17:00', '14:00'",
            "INVALID_PROMOTION_HOURS",
        ),
        (
            "'Double', 200, null, null, null, '17:00', null",
            "INVALID_PROMOTION_HOURS",
        ),
    ] {
        let answer: serde_json::Value = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "select public.save_promotion($1, $2, null, {args})"
        )))
        .bind(db.program_id)
        .bind(manager.staff.id)
        .fetch_one(&db.app)
        .await
        .unwrap();
        assert_eq!(answer["error"], code, "{args}");
    }
    let promotions: i64 = sqlx::query_scalar("select count(*) from promotions")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(promotions, 0);
}
