//! What `citus/distribute.sql` made: tables and functions where they belong, the ledger's guard, the statistics
//! and the grants on the workers' shards, and the counter's statements each routed whole to one worker.

use std::collections::BTreeSet;

use server::testkit::{TestDb, Till};
use sqlx::{PgPool, Row};

use super::{ONE_AT_A_TIME, cluster_workers, coordinator, on_worker, placement};

/// The foreign keys of the plain schema, by name, as `schema/structure.sql` records them.
fn plain_foreign_keys() -> BTreeSet<String> {
    include_str!("../../../schema/structure.sql")
        .lines()
        .filter_map(|line| {
            let rest = line.trim().strip_prefix("ADD CONSTRAINT ")?;
            let (name, kind) = rest.split_once(' ')?;
            kind.starts_with("FOREIGN KEY").then(|| name.to_owned())
        })
        .collect()
}

/// Each worker's answer to `sql`, through the coordinator.
async fn on_workers(owner: &PgPool, sql: &str) -> Vec<String> {
    sqlx::query("select success, result from run_command_on_workers($1) order by nodeport")
        .bind(sql)
        .fetch_all(owner)
        .await
        .unwrap()
        .into_iter()
        .map(|row| {
            let result: String = row.get("result");
            assert!(row.get::<bool, _>("success"), "{sql}: {result}");
            result
        })
        .collect()
}

#[tokio::test]
async fn every_table_is_distributed_by_program_and_every_function_is_on_every_node() {
    let Some(_) = coordinator("layout") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let db = TestDb::new().await;
    let tables: Vec<(String, String, bool)> = sqlx::query_as(
        "select c.relname::text, coalesce(p.partmethod::text, 'local'),
                p.colocationid is not distinct from
                  (select colocationid from pg_dist_partition where logicalrelid = 'public.passes_master'::regclass)
           from pg_class c
           left join pg_dist_partition p on p.logicalrelid = c.oid
          where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'
          order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    for (table, method, colocated) in &tables {
        match table.as_str() {
            "programs" | "wallet_channels" | "contact_key_check" => {
                assert_eq!(method, "n", "{table} is a reference table")
            }
            "sign_in_failures" | "_sqlx_migrations" => assert_eq!(method, "local", "{table}"),
            _ => assert!(
                method == "h" && *colocated,
                "{table}: {method}, co-located {colocated}"
            ),
        }
    }
    assert!(tables.len() >= 21, "{tables:?}");

    let keys: BTreeSet<String> = sqlx::query_scalar(
        "select conname::text from pg_constraint where contype = 'f' and connamespace = 'public'::regnamespace",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap()
    .into_iter()
    .collect();
    assert_eq!(keys, plain_foreign_keys(), "every foreign key put back");

    let functions = "select string_agg(p.oid::regprocedure::text || ' ' || p.prosecdef || ' '
                                       || coalesce(p.proconfig::text, '') || ' ' || coalesce(p.proacl::text, ''),
                                       E'\\n' order by p.oid::regprocedure::text)
                       from pg_proc p where p.pronamespace = 'public'::regnamespace";
    let here: String = sqlx::query_scalar(sqlx::AssertSqlSafe(functions))
        .fetch_one(&db.owner)
        .await
        .unwrap();
    for there in on_workers(&db.owner, functions).await {
        assert_eq!(
            there, here,
            "the same functions, definer rights, search_path and grants"
        );
    }
    let delegated: Vec<String> = sqlx::query_scalar(
        "select objid::regprocedure::text from pg_dist_object
          where classid = 'pg_proc'::regclass and distribution_argument_index is not null order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    assert_eq!(delegated.len(), 23, "{delegated:?}");
}

#[tokio::test]
async fn the_ledger_refuses_updates_deletes_and_truncates_on_its_shards() {
    let Some(_) = coordinator("append-only") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let db = TestDb::new().await;
    let member = db.member(50).await;
    let rows = db.ledger_rows().await;
    for change in [
        "update public.transactions set description = 'rewritten' where program_id = $1",
        "delete from public.transactions where program_id = $1",
    ] {
        let err = sqlx::query(change)
            .bind(db.program_id)
            .execute(&db.owner)
            .await
            .expect_err(change);
        assert!(err.to_string().contains("append-only"), "{change}: {err}");
    }
    // With its details: a truncate of the ledger alone is refused by their foreign key before the guard is asked.
    let err = sqlx::query("truncate public.transactions cascade")
        .execute(&db.owner)
        .await
        .expect_err("truncate");
    assert!(err.to_string().contains("append-only"), "truncate: {err}");

    // On the worker itself, on the shard table, as a superuser.
    let at = placement(&db.owner, db.program_id).await;
    let worker = cluster_workers(&db)
        .await
        .into_iter()
        .find(|w| w.port == at.port)
        .unwrap();
    let shard: String = sqlx::query_scalar(
        "select shard_name::text from citus_shards
          where shardid = get_shard_id_for_distribution_column('public.transactions', $1)",
    )
    .bind(db.program_id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    let there = on_worker(&db, &worker).await;
    let err = sqlx::query(sqlx::AssertSqlSafe(format!(
        "delete from {shard} where program_id = $1"
    )))
    .bind(db.program_id)
    .execute(&there)
    .await
    .expect_err("a delete on the shard");
    assert!(err.to_string().contains("append-only"), "{shard}: {err}");
    assert_eq!(db.ledger_rows().await, rows);
    assert_eq!(db.balance(&member).await, 50);
}

#[tokio::test]
async fn the_day_statistics_are_on_every_shard_and_analyse_there() {
    let Some(_) = coordinator("statistics") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let db = TestDb::new().await;
    let member = db.member(10).await;
    for _ in 0..5 {
        sqlx::query("select public.process_membership_transaction($1, $2, 1, 'EARN', 'day')")
            .bind(db.program_id)
            .bind(&member)
            .execute(&db.owner)
            .await
            .unwrap();
    }
    sqlx::query("analyze public.transactions")
        .execute(&db.owner)
        .await
        .unwrap();
    let workers = cluster_workers(&db).await;
    let at = placement(&db.owner, db.program_id).await;
    for worker in &workers {
        let shards: i64 = sqlx::query_scalar(
            "select count(*) from citus_shards where table_name = 'public.transactions'::regclass and nodeport = $1",
        )
        .bind(i32::from(worker.port))
        .fetch_one(&db.owner)
        .await
        .unwrap();
        let there = on_worker(&db, worker).await;
        let (statistics, built): (i64, i64) = sqlx::query_as(
            "select count(*), count(d.stxoid) from pg_statistic_ext e
               left join pg_statistic_ext_data d on d.stxoid = e.oid
              where e.stxname ~ '^transactions_day_stats_[0-9]+$'",
        )
        .fetch_one(&there)
        .await
        .unwrap();
        assert_eq!(statistics, shards, "one per shard on {}", worker.port);
        if worker.port == at.port {
            assert!(built > 0, "analysed on the program's worker");
        }
    }
}

#[tokio::test]
async fn the_app_role_has_on_every_shard_exactly_what_it_has_on_the_coordinator() {
    let Some(_) = coordinator("grants") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let db = TestDb::new().await;
    let tables: Vec<String> =
        sqlx::query_scalar("select logicalrelid::regclass::text from pg_dist_partition order by 1")
            .fetch_all(&db.owner)
            .await
            .unwrap();
    for table in tables {
        for privilege in ["select", "insert", "update", "delete", "truncate"] {
            let here: bool =
                sqlx::query_scalar("select has_table_privilege('loyalty_app', $1, $2)")
                    .bind(&table)
                    .bind(privilege)
                    .fetch_one(&db.owner)
                    .await
                    .unwrap();
            let shards: Vec<(bool, String)> = sqlx::query_as(
                "select success, result from run_command_on_placements($1::regclass,
                     format('select has_table_privilege(''loyalty_app'', ''%%s'', %L)', $2::text))",
            )
            .bind(&table)
            .bind(privilege)
            .fetch_all(&db.owner)
            .await
            .unwrap();
            assert!(!shards.is_empty());
            for (success, result) in shards {
                assert!(success, "{table}: {result}");
                assert_eq!(result == "t", here, "{privilege} on a shard of {table}");
            }
        }
    }
}

/// The plan of the counter's statements with this program's session (earn, redeem, scan, sale): one task, on
/// the program's worker.
#[tokio::test]
async fn earn_redeem_scan_and_sale_are_each_one_statement_on_the_programs_worker() {
    let Some(_) = coordinator("routing") else {
        return;
    };
    let _turn = ONE_AT_A_TIME.lock().await;
    let db = TestDb::new().await;
    let till = Till::clerk(&db).await;
    let member = db.member(100).await;
    let at = placement(&db.owner, db.program_id).await;
    let points = concat!(
        "explain (costs off) ",
        app::in_session!(
            "public.process_membership_transaction($1, $6, $7, $8, $9, $10, s.staff_id, $11)"
        )
    );
    let scan = concat!(
        "explain (costs off) ",
        app::in_session!("public.process_claim_attempt($6, $1, s.staff_id)")
    );
    let sale = concat!(
        "explain (costs off) ",
        app::in_session!("public.earn_from_sale($1, $6, $7, $8, s.staff_id, $9)")
    );
    let session = |sql: &'static str| {
        sqlx::query_scalar::<_, String>(sql)
            .bind(db.program_id)
            .bind(vec![0u8; 32])
            .bind(30)
            .bind(12)
            .bind(&till.csrf)
    };
    let mut plans = Vec::new();
    for tx_type in ["EARN", "REDEEM"] {
        plans.push(
            session(points)
                .bind(&member)
                .bind(5i64)
                .bind(tx_type)
                .bind(None::<String>)
                .bind(Some("plan"))
                .bind(None::<chrono::DateTime<chrono::Utc>>)
                .fetch_all(&db.app)
                .await
                .unwrap(),
        );
    }
    plans.push(
        session(scan)
            .bind(db.postcard().await)
            .fetch_all(&db.app)
            .await
            .unwrap(),
    );
    plans.push(
        session(sale)
            .bind(&member)
            .bind("12.50")
            .bind(Some("plan"))
            .bind(None::<chrono::DateTime<chrono::Utc>>)
            .fetch_all(&db.app)
            .await
            .unwrap(),
    );
    for plan in plans {
        let plan = plan.join("\n");
        eprintln!("{plan}\n");
        assert!(plan.contains("Task Count: 1"), "{plan}");
        assert!(plan.contains(&format!("port={}", at.port)), "{plan}");
        assert!(!plan.contains("Distributed Subplan"), "{plan}");
    }
}
