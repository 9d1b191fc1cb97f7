//! The design seed's SQL has holes. Each probe below opens one; the seed's own functions (loaded verbatim into
//! a database of their own) must show every hole, and ours none.

use server::testkit::TestDb;
use sqlx::{Connection, PgConnection};

/// The outcome of one probe: true when the hole is open.
type Probe = fn(&TestDb) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>>;

async fn member_with(db: &TestDb, external_id: &str, points: i32) {
    sqlx::query("insert into passes_master (program_id, external_id, points) values ($1, $2, $3)")
        .bind(db.program_id)
        .bind(external_id)
        .bind(points)
        .execute(&db.owner)
        .await
        .unwrap();
}

async fn transact(db: &TestDb, external_id: &str, points: i32, ty: &str) -> serde_json::Value {
    sqlx::query_scalar(
        "select process_membership_transaction(
            p_program_id => $1, p_member_external_id => $2, p_points => $3, p_type => $4, p_description => 'probe')",
    )
    .bind(db.program_id)
    .bind(external_id)
    .bind(points)
    .bind(ty)
    .fetch_one(&db.app)
    .await
    .unwrap()
}

async fn claim(conn: &mut PgConnection, db: &TestDb, code: &str) -> serde_json::Value {
    sqlx::query_scalar("select process_claim_attempt(p_code => $1, p_program_id => $2)")
        .bind(code)
        .bind(db.program_id)
        .fetch_one(conn)
        .await
        .unwrap()
}

async fn unclaimed_code(db: &TestDb, code: &str) {
    sqlx::query("insert into claim_codes (program_id, code) values ($1, $2)")
        .bind(db.program_id)
        .bind(code)
        .execute(&db.owner)
        .await
        .unwrap();
}

/// A connection as a role with no table rights, but allowed to call the functions, as the server's role is.
async fn intruder(db: &TestDb) -> PgConnection {
    let mut conn = PgConnection::connect_with(&db.owner_options())
        .await
        .unwrap();
    sqlx::raw_sql(
        "do $$ begin
            if exists (select 1 from pg_proc where proname = 'process_claim_attempt' and pronargs = 3) then
                grant execute on function process_claim_attempt(text, uuid, uuid) to intruder;
                grant execute on function process_membership_transaction(uuid, text, bigint, text, text, text, uuid, timestamptz)
                    to intruder;
            end if;
         end $$;
         set role intruder",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    conn
}

fn negative_redeem_adds_points(
    db: &TestDb,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>> {
    Box::pin(async move {
        member_with(db, "MBR-NEGRDM22", 100).await;
        transact(db, "MBR-NEGRDM22", -50, "REDEEM").await;
        db.balance("MBR-NEGRDM22").await == 150
    })
}

fn negative_earn_drives_below_zero(
    db: &TestDb,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>> {
    Box::pin(async move {
        member_with(db, "MBR-NEGERN22", 100).await;
        transact(db, "MBR-NEGERN22", -500, "EARN").await;
        db.balance("MBR-NEGERN22").await == -400
    })
}

fn unknown_types_report_success(
    db: &TestDb,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>> {
    Box::pin(async move {
        member_with(db, "MBR-BADTYP22", 100).await;
        let rows = db.ledger_rows().await;
        let mut open = false;
        for ty in ["FOO", "redeem"] {
            open |= transact(db, "MBR-BADTYP22", 10, ty).await["success"] == true;
        }
        open || db.ledger_rows().await != rows
    })
}

fn temp_table_reclaims_a_burned_code(
    db: &TestDb,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>> {
    Box::pin(async move {
        let code = "CLM-SHADOW2222A";
        unclaimed_code(db, code).await;
        let mut owner = db.owner.acquire().await.unwrap();
        assert_eq!(claim(&mut owner, db, code).await["success"], true);
        drop(owner);

        let mut conn = intruder(db).await;
        sqlx::query(
            "create temp table claim_codes (
                id uuid, code text, program_id uuid, claimed_at timestamptz, pass_id uuid, created_at timestamptz)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        sqlx::query(
            "insert into claim_codes (id, code, program_id) values (gen_random_uuid(), $1, $2)",
        )
        .bind(code)
        .bind(db.program_id)
        .execute(&mut conn)
        .await
        .unwrap();
        let again = claim(&mut conn, db, code).await;
        conn.close().await.unwrap();
        again["success"] == true
    })
}

fn temp_table_earns_points_that_skip_the_ledger(
    db: &TestDb,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>> {
    Box::pin(async move {
        member_with(db, "MBR-SHADEW22", 0).await;
        let rows = db.ledger_rows().await;
        let mut conn = intruder(db).await;
        sqlx::query(
            "create temp table transactions (
                program_id uuid, member_id uuid, points integer, type text, description text,
                created_at timestamptz, staff_id uuid, balance_after integer, idempotency_key text, id bigint)",
        )
        .execute(&mut conn)
        .await
        .unwrap();
        let _: serde_json::Value = sqlx::query_scalar(
            "select process_membership_transaction(
                p_program_id => $1, p_member_external_id => 'MBR-SHADEW22', p_points => 500, p_type => 'EARN',
                p_description => 'ghost')",
        )
        .bind(db.program_id)
        .fetch_one(&mut conn)
        .await
        .unwrap();
        conn.close().await.unwrap();
        db.balance("MBR-SHADEW22").await == 500 && db.ledger_rows().await == rows
    })
}

fn code_burned_with_no_pass(
    db: &TestDb,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>> {
    Box::pin(async move {
        let code = "CLM-NOPASS2222A";
        unclaimed_code(db, code).await;
        let passes = || async {
            sqlx::query_scalar::<_, i64>("select count(*) from passes_master")
                .fetch_one(&db.owner)
                .await
                .unwrap()
        };
        let before = passes().await;
        let mut conn = db.app.acquire().await.unwrap();
        let answer = claim(&mut conn, db, code).await;
        answer["success"] == true && passes().await == before
    })
}

fn search_path_not_pinned(
    db: &TestDb,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>> {
    Box::pin(async move {
        let unpinned: i64 = sqlx::query_scalar(
            "select count(*) from pg_proc
              where proname in ('process_claim_attempt', 'process_membership_transaction')
                and prosecdef
                and not coalesce(proconfig @> array['search_path=pg_catalog, pg_temp'], false)",
        )
        .fetch_one(&db.owner)
        .await
        .unwrap();
        unpinned > 0
    })
}

fn public_can_execute(
    db: &TestDb,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = bool> + Send + '_>> {
    Box::pin(async move {
        let mut conn = PgConnection::connect_with(&db.owner_options())
            .await
            .unwrap();
        // A role that was granted nothing, unlike the intruder of the probes above.
        sqlx::query("set role bystander")
            .execute(&mut conn)
            .await
            .unwrap();
        let claim = sqlx::query(
            "select process_claim_attempt(p_code => 'CLM-X', p_program_id => gen_random_uuid())",
        )
        .execute(&mut conn)
        .await;
        let points = sqlx::query(
            "select process_membership_transaction(p_program_id => gen_random_uuid(), p_member_external_id => 'X',
                p_points => 1, p_type => 'EARN', p_description => null)",
        )
        .execute(&mut conn)
        .await;
        claim.is_ok() || points.is_ok()
    })
}

const PROBES: &[(&str, Probe)] = &[
    ("a negative redeem adds points", negative_redeem_adds_points),
    (
        "a negative earn drives a balance below zero",
        negative_earn_drives_below_zero,
    ),
    (
        "unknown or wrongly-cased types report success",
        unknown_types_report_success,
    ),
    (
        "a TEMP claim_codes re-claims a burned code",
        temp_table_reclaims_a_burned_code,
    ),
    (
        "a TEMP transactions earns points that skip the ledger",
        temp_table_earns_points_that_skip_the_ledger,
    ),
    (
        "a code is burned with no pass behind it",
        code_burned_with_no_pass,
    ),
    (
        "a SECURITY DEFINER function has no pinned search_path",
        search_path_not_pinned,
    ),
    ("PUBLIC can execute the functions", public_can_execute),
];

async fn open_holes(db: &TestDb) -> Vec<&'static str> {
    let mut open = Vec::new();
    for (name, probe) in PROBES {
        if probe(db).await {
            open.push(*name);
        }
    }
    open
}

#[tokio::test]
async fn every_hole_of_the_seed_is_open_in_its_sql() {
    let seed = TestDb::seed_design().await;
    let all: Vec<&str> = PROBES.iter().map(|(name, _)| *name).collect();
    assert_eq!(open_holes(&seed).await, all);
}

#[tokio::test]
async fn every_hole_of_the_seed_is_closed_in_ours() {
    let ours = TestDb::new().await;
    assert_eq!(open_holes(&ours).await, Vec::<&str>::new());
}

#[tokio::test]
async fn every_security_definer_function_pins_its_search_path_and_is_not_public() {
    let db = TestDb::new().await;
    let rows: Vec<(String, Option<Vec<String>>, bool, bool)> = sqlx::query_as(
        "select p.oid::regprocedure::text, p.proconfig,
                has_function_privilege('bystander', p.oid, 'execute'),
                has_function_privilege('loyalty_app', p.oid, 'execute')
           from pg_proc p join pg_namespace n on n.oid = p.pronamespace
          where n.nspname = 'public' and p.prosecdef",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let names: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    for expected in [
        "process_claim_attempt",
        "process_membership_transaction",
        "create_member_pass",
    ] {
        assert!(
            names.iter().any(|n| n.starts_with(expected)),
            "{expected} missing from {names:?}"
        );
    }
    for (name, config, public_may, app_may) in rows {
        assert_eq!(
            config,
            Some(vec!["search_path=pg_catalog, pg_temp".to_owned()]),
            "{name}"
        );
        assert!(!public_may, "{name} is executable by PUBLIC");
        assert!(app_may, "{name} is not executable by the server's role");
    }
}

#[tokio::test]
async fn the_servers_role_cannot_change_balances_or_history_by_hand() {
    let db = TestDb::new().await;
    let member = db.member(10).await;
    for sql in [
        "update passes_master set points = 1000000",
        "insert into transactions (program_id, member_id, points, type, balance_after)
           select program_id, id, 5, 'EARN', 15 from passes_master",
        "update claim_codes set claimed_at = null",
        "delete from transactions",
    ] {
        let err = sqlx::query(sql).execute(&db.app).await.unwrap_err();
        assert_eq!(
            err.as_database_error().and_then(|e| e.code()).as_deref(),
            Some("42501"),
            "{sql}: {err}"
        );
    }
    // Not even the owner may rewrite the ledger.
    let err = sqlx::query("delete from transactions")
        .execute(&db.owner)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("append-only"), "{err}");
    assert_eq!(db.balance(&member).await, 10);
}
