//! A program's own clock: its history's days (filters, sums, summed days), the times its staff read, and the
//! day a refused postcard names are the program's time zone's, and a manager can change the zone.

use app::history::db::{history_page, history_summary, roll_up_ledger_days};
use chrono::{NaiveDate, NaiveDateTime};
use loyalty_core::LoyaltyError;
use loyalty_core::wire::{HistoryFilter, Role};
use reqwest::StatusCode;
use server::testkit::{ApiClient, TestDb, TestServer, Till, refused};
use uuid::Uuid;

fn date(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

fn on(day: &str) -> HistoryFilter {
    HistoryFilter {
        from: Some(date(day)),
        to: Some(date(day)),
        ..HistoryFilter::default()
    }
}

async fn set_zone(db: &TestDb, program_id: Uuid, manager: Uuid, zone: &str) -> serde_json::Value {
    sqlx::query_scalar("select public.set_program_time_zone($1, $2, $3)")
        .bind(program_id)
        .bind(manager)
        .bind(zone)
        .fetch_one(&db.app)
        .await
        .unwrap()
}

async fn summed_days(db: &TestDb) -> Vec<NaiveDate> {
    sqlx::query_scalar("select day from ledger_days where program_id = $1 order by day")
        .bind(db.program_id)
        .fetch_all(&db.owner)
        .await
        .unwrap()
}

#[tokio::test]
async fn the_history_counts_a_late_evening_on_the_programs_own_day_before_and_after_a_change_of_zone()
 {
    let db = TestDb::new().await;
    let manager = app::auth::db::create_staff(
        &db.owner,
        db.program_id,
        "zone-manager@test.example",
        "Zoe",
        Role::Manager,
        "zone-manager-password",
    )
    .await
    .unwrap();
    let member = db.member(0).await;
    // 11:30 UTC on 15 March is 01:30 on 16 March at UTC+14 (Etc/GMT-14 in the tz database's sign).
    sqlx::query(
        "insert into transactions (program_id, member_id, points, type, balance_after, created_at)
         select m.program_id, m.id, 7, 'EARN', 7, timestamptz '2026-03-15 11:30:00+00'
           from passes_master m where m.program_id = $1 and m.external_id = $2",
    )
    .bind(db.program_id)
    .bind(&member)
    .execute(&db.owner)
    .await
    .unwrap();
    assert_eq!(
        set_zone(&db, db.program_id, manager, "Etc/GMT-14").await["success"],
        true
    );

    let page = history_page(&db.app, db.program_id, &on("2026-03-16"), None, 50)
        .await
        .unwrap();
    assert_eq!(page.time_zone, "Etc/GMT-14");
    assert_eq!(page.entries.len(), 1);
    let local: NaiveDateTime = "2026-03-16T01:30:00".parse().unwrap();
    assert_eq!(page.entries[0].local_at, local);
    let none = history_page(&db.app, db.program_id, &on("2026-03-15"), None, 50)
        .await
        .unwrap();
    assert!(none.entries.is_empty());

    for summed in [false, true] {
        if summed {
            roll_up_ledger_days(&db.app).await.unwrap();
            assert_eq!(summed_days(&db).await, [date("2026-03-16")]);
        }
        let all = history_summary(&db.app, db.program_id, &HistoryFilter::default())
            .await
            .unwrap();
        assert_eq!(
            all.daily
                .iter()
                .map(|d| (d.day, d.earned))
                .collect::<Vec<_>>(),
            [(date("2026-03-16"), 7)],
            "summed days: {summed}"
        );
        let day_before = history_summary(&db.app, db.program_id, &on("2026-03-15"))
            .await
            .unwrap();
        assert_eq!(day_before.totals.transactions, 0, "summed days: {summed}");
    }

    // Back to UTC: the days summed at UTC+14 are dropped at once, and summed again on UTC's days.
    assert_eq!(
        set_zone(&db, db.program_id, manager, "UTC").await["success"],
        true
    );
    assert_eq!(summed_days(&db).await, Vec::<NaiveDate>::new());
    let all = history_summary(&db.app, db.program_id, &HistoryFilter::default())
        .await
        .unwrap();
    assert_eq!(all.daily[0].day, date("2026-03-15"));
    roll_up_ledger_days(&db.app).await.unwrap();
    assert_eq!(summed_days(&db).await, [date("2026-03-15")]);
    let page = history_page(&db.app, db.program_id, &on("2026-03-15"), None, 50)
        .await
        .unwrap();
    assert_eq!(page.entries.len(), 1);

    // A name the database does not know, and a clerk, change nothing.
    assert_eq!(
        set_zone(&db, db.program_id, manager, "Mars/Olympus_Mons").await["error"],
        "INVALID_TIME_ZONE"
    );
    let clerk = app::auth::db::create_staff(
        &db.owner,
        db.program_id,
        "zone-clerk@test.example",
        "Cleo",
        Role::Clerk,
        "zone-clerk-password",
    )
    .await
    .unwrap();
    assert_eq!(
        set_zone(&db, db.program_id, clerk, "Europe/Paris").await["error"],
        "MANAGERS_ONLY"
    );
    assert_eq!(summed_days(&db).await, [date("2026-03-15")]);
}

#[tokio::test]
async fn a_postcard_scanned_again_names_the_day_on_the_programs_clock() {
    let server = TestServer::start().await;
    let db = &server.db;
    let clerk = ApiClient::sign_in(&server, &server.clerk).await;
    let till = Till::sign_in(db, &server.clerk).await;
    let mut differs_from_utc = false;
    // 26 hours apart, so at any moment at least one of them is on another day than UTC.
    for zone in ["Etc/GMT-14", "Etc/GMT+12"] {
        sqlx::query("update programs set time_zone = $2 where id = $1")
            .bind(db.program_id)
            .bind(zone)
            .execute(&db.owner)
            .await
            .unwrap();
        let code = db.postcard().await;
        let first = clerk.change("scan", &[("code", &code)]).await;
        assert_eq!(first.status(), StatusCode::OK);
        let (local_day, utc_day): (String, String) = sqlx::query_as(
            "select to_char(claimed_at at time zone $2, 'FMDD Mon YYYY'),
                    to_char(claimed_at at time zone 'UTC', 'FMDD Mon YYYY')
               from claim_codes where code = $1",
        )
        .bind(&code)
        .bind(zone)
        .fetch_one(&db.owner)
        .await
        .unwrap();
        differs_from_utc |= local_day != utc_day;
        // Over HTTP and at a till, which calls what the server calls: the same refusal, in the same words.
        let (status, err) = refused(clerk.change("scan", &[("code", &code)]).await).await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(
            err.to_string(),
            format!("This postcard has already been claimed on {local_day}."),
            "{zone}"
        );
        let at_till = till.scan(&code).await.unwrap_err();
        assert_eq!(at_till, err);
        assert_eq!(at_till.to_string(), err.to_string());
    }
    assert!(differs_from_utc);
}

#[tokio::test]
async fn a_manager_sets_the_time_zone_and_the_history_names_it() {
    let server = TestServer::start().await;
    let manager = ApiClient::sign_in(&server, &server.manager).await;
    let (status, err) = refused(
        manager
            .change("set_time_zone", &[("time_zone", "Mars/Olympus_Mons")])
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        err.to_string(),
        "Choose a time zone from the list, such as Europe/Paris."
    );
    let set = manager
        .change("set_time_zone", &[("time_zone", "America/New_York")])
        .await;
    assert_eq!(set.status(), StatusCode::OK);
    let choice: app::program::TimeZoneChoice =
        manager.post("time_zone", &[]).await.json().await.unwrap();
    assert_eq!(choice.time_zone, "America/New_York");
    assert!(choice.zones.iter().any(|z| z == "Europe/Paris"));
    assert!(choice.zones.iter().any(|z| z == "UTC"));
    assert!(!choice.zones.iter().any(|z| z.starts_with("Etc/")));
    let member = server.db.member(3).await;
    let earned = manager
        .change(
            "earn",
            &[
                ("external_id", member.as_str()),
                ("points", "2"),
                ("note", "opening gift"),
                ("idempotency_key", "zone-earn"),
            ],
        )
        .await;
    assert_eq!(earned.status(), StatusCode::OK);
    let history = manager.get("/history").await.text().await.unwrap();
    assert!(history.contains("Time (America/New_York)"), "{history}");

    let clerk = ApiClient::sign_in(&server, &server.clerk).await;
    let (status, err) = refused(
        clerk
            .change("set_time_zone", &[("time_zone", "Europe/Paris")])
            .await,
    )
    .await;
    assert_eq!(
        (status, err),
        (StatusCode::FORBIDDEN, LoyaltyError::ManagersOnly)
    );
}

/// Days summed in `ledger_days` that differ from the rows' own sums for the same days on the program's clock
/// now: none, if every summed day was summed in the zone the program is in.
async fn days_summed_in_another_zone(db: &TestDb) -> i64 {
    sqlx::query_scalar(
        "with z as (select p.time_zone from programs p where p.id = $1),
              x as (select t.next_day from ledger_days_through t where t.program_id = $1),
              rows as (
                select (t.created_at at time zone z.time_zone)::date as day, t.type,
                       count(*) as n, sum(t.points) as points
                  from transactions t, z, x
                 where t.program_id = $1 and (t.created_at at time zone z.time_zone)::date < x.next_day
                 group by 1, 2)
         select count(*) from (select * from ledger_days d where d.program_id = $1) d
           full join rows r on r.day = d.day and r.type = d.type
          where d.tx_count is distinct from r.n or d.points is distinct from r.points",
    )
    .bind(db.program_id)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roll_ups_racing_changes_of_zone_sum_every_day_in_the_zone_the_program_is_in() {
    let db = TestDb::with_pool_size(8).await;
    let manager = app::auth::db::create_staff(
        &db.owner,
        db.program_id,
        "race-zone@test.example",
        "Rae",
        Role::Manager,
        "race-zone-password",
    )
    .await
    .unwrap();
    let member = db.member(0).await;
    // A row every 50 minutes for ten days: some near every midnight of every zone below.
    sqlx::query(
        "insert into transactions (program_id, member_id, points, type, balance_after, created_at)
         select m.program_id, m.id, 1 + g % 5, 'EARN', 1, timestamptz '2026-03-01 00:10:00+00' + g * interval '50 minutes'
           from passes_master m, generate_series(0, 287) g
          where m.program_id = $1 and m.external_id = $2",
    )
    .bind(db.program_id)
    .bind(&member)
    .execute(&db.owner)
    .await
    .unwrap();
    let zones = ["Etc/GMT-14", "UTC", "Etc/GMT+12", "America/New_York"];
    for round in 0..8 {
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(5));
        let mut tasks = Vec::new();
        for n in 0..5 {
            let (pool, barrier, program) = (db.app.clone(), barrier.clone(), db.program_id);
            let zone = zones[(round + n) % zones.len()];
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                if n % 2 == 0 {
                    roll_up_ledger_days(&pool).await.unwrap();
                } else {
                    let answer: serde_json::Value =
                        sqlx::query_scalar("select public.set_program_time_zone($1, $2, $3)")
                            .bind(program)
                            .bind(manager)
                            .bind(zone)
                            .fetch_one(&pool)
                            .await
                            .unwrap();
                    assert_eq!(answer["success"], true, "{answer}");
                }
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
        // Whichever ran last (a change leaves nothing summed, a roll-up sums the days again), no day is
        // summed in a zone the program is not in; then a roll-up on its own sums them all in that zone.
        assert_eq!(days_summed_in_another_zone(&db).await, 0, "round {round}");
        roll_up_ledger_days(&db.app).await.unwrap();
        assert!(!summed_days(&db).await.is_empty(), "round {round}");
        assert_eq!(days_summed_in_another_zone(&db).await, 0, "round {round}");
    }
}
