//! The embedded default: a private cluster from the installed PostgreSQL programs, kept between runs.

use server::database::{Database, DatabaseConfig};
use server::embedded::{EmbeddedError, EmbeddedPostgres};
use server::testkit::free_port;

async fn programs(db: &Database) -> Vec<String> {
    sqlx::query_scalar("select name from programs order by name")
        .fetch_all(&db.pool)
        .await
        .unwrap()
}

// One test, so the environment variable it sets is seen by nothing else.
#[tokio::test]
async fn a_private_cluster_starts_keeps_its_data_survives_a_killed_server_and_stops() {
    let root = std::env::temp_dir().join(format!(
        "loyalty-embedded-{}",
        uuid::Uuid::new_v4().simple()
    ));
    let config = DatabaseConfig::Embedded {
        data_dir: root.clone(),
        port: free_port(),
        share_running: false,
        archive: None,
    };

    let first = Database::open(&config, 2).await.unwrap();
    let demo = first
        .demo
        .as_ref()
        .expect("the first run seeds the demo program");
    assert_eq!(demo.claim_codes.len(), 20);
    assert_eq!(
        programs(&first).await,
        vec![server::seed::DEMO_PROGRAM.to_owned()]
    );
    let user: String = sqlx::query_scalar("select current_user")
        .fetch_one(&first.pool)
        .await
        .unwrap();
    assert_eq!(
        user, "loyalty_app",
        "the server must not work as a superuser"
    );
    first.close().await.unwrap();

    let second = Database::open(&config, 2).await.unwrap();
    assert!(
        second.demo.is_none(),
        "the demo is seeded on the first run only"
    );
    assert_eq!(
        programs(&second).await,
        vec![server::seed::DEMO_PROGRAM.to_owned()]
    );
    // A server killed without stopping its cluster: the next start takes over the running cluster.
    std::mem::forget(second.embedded);
    second.pool.close().await;
    let DatabaseConfig::Embedded { port, .. } = config else {
        unreachable!()
    };
    let cluster = EmbeddedPostgres::start(&root, port).await.unwrap();
    cluster.stop().await.unwrap();
    let after_stop =
        <sqlx::PgConnection as sqlx::Connection>::connect(&cluster.superuser_url("postgres")).await;
    assert!(after_stop.is_err(), "the cluster must be stopped");

    // SAFETY: this test binary runs this one test, so no other thread reads the environment meanwhile.
    unsafe { std::env::set_var("PG_BIN_DIR", root.join("nowhere")) };
    let missing = EmbeddedPostgres::start(&root, port).await.unwrap_err();
    unsafe { std::env::remove_var("PG_BIN_DIR") };
    assert!(matches!(missing, EmbeddedError::NotInstalled));
    assert!(
        missing.to_string().contains("apt-get install postgresql"),
        "{missing}"
    );

    std::fs::remove_dir_all(&root).unwrap();
}
