//! The wallet settings: none given sets up nothing, some without the others is refused by name, all of them
//! set up Apple Wallet in the running server; and the secrets they name reach neither its log nor its database.

use clap::Parser;
use server::testkit::{ServerProcess, TEST_PASS_TYPE_ID, TestDb, TestPassIdentity};
use server::wallet::Webhook;
use server::wallet::devices::Channel;
use server::wallet::settings::WalletArgs;

#[derive(Parser)]
struct Settings {
    #[command(flatten)]
    wallet: WalletArgs,
}

fn parse(args: &[&str]) -> WalletArgs {
    Settings::try_parse_from(std::iter::once("server").chain(args.iter().copied()))
        .unwrap()
        .wallet
}

/// Every Apple setting, as flags, for `identity`.
fn apple_flags(identity: &TestPassIdentity) -> Vec<String> {
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    vec![
        "--public-url".into(),
        "https://loyalty.test".into(),
        "--apple-pass-type-id".into(),
        TEST_PASS_TYPE_ID.into(),
        "--apple-team-id".into(),
        "TEAM123456".into(),
        "--apple-pass-cert".into(),
        path(&identity.files.certificate),
        "--apple-pass-key".into(),
        path(&identity.files.key),
        "--apple-wwdr-cert".into(),
        path(&identity.files.wwdr),
        "--apns-key".into(),
        path(&identity.apns_key),
        "--apns-key-id".into(),
        "KEY1234567".into(),
    ]
}

#[test]
fn nothing_set_sets_up_nothing_and_some_settings_alone_are_refused_by_name() {
    let none = parse(&[]).wallets().unwrap();
    assert!(none.config.apple.is_none());
    assert!(none.apns.is_none());
    assert_eq!(none.channels(None), []);
    assert!(!none.config.buttons().apple);
    let webhook = Webhook::new(
        "http://127.0.0.1:9/x",
        std::time::Duration::from_secs(1),
        None,
    )
    .unwrap();
    assert_eq!(none.channels(Some(&webhook)), [Channel::Webhook]);

    let err = parse(&[
        "--apple-pass-type-id",
        TEST_PASS_TYPE_ID,
        "--apns-key-id",
        "K",
    ])
    .wallets()
    .err()
    .unwrap()
    .to_string();
    assert!(
        err.contains("missing: --apple-team-id, --apple-pass-cert"),
        "{err}"
    );
    assert!(!err.contains("--apns-key-id"), "{err}");
    let err = parse(&["--google-issuer-id", "3388"])
        .wallets()
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("Google Wallet needs all of its settings; missing: --google-class-id, --google-service-account"),
        "{err}"
    );
}

#[test]
fn all_apple_settings_set_up_passes_and_pushes() {
    let identity = TestPassIdentity::generate();
    let flags = apple_flags(&identity);
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let wallets = parse(&args).wallets().unwrap();
    assert!(wallets.config.buttons().apple);
    assert_eq!(wallets.channels(None), [Channel::Apple]);
    assert_eq!(
        wallets.config.apple_web_service_url(),
        "https://loyalty.test/wallet/apple"
    );

    let mut plain = flags.clone();
    plain[1] = "http://loyalty.test".into();
    let args: Vec<&str> = plain.iter().map(String::as_str).collect();
    let err = parse(&args).wallets().err().unwrap().to_string();
    assert!(err.contains("https://"), "{err}");

    let args: Vec<&str> = flags[2..].iter().map(String::as_str).collect();
    let err = parse(&args).wallets().err().unwrap().to_string();
    assert!(err.contains("need --public-url"), "{err}");

    let mut wrong_key = flags.clone();
    wrong_key[13] = identity.files.key.to_str().unwrap().to_owned();
    let args: Vec<&str> = wrong_key.iter().map(String::as_str).collect();
    let err = format!("{:#}", parse(&args).wallets().err().unwrap());
    assert!(err.contains("is not an APNs key"), "{err}");
    assert!(!err.contains("PRIVATE KEY"), "{err}");
}

#[tokio::test]
async fn the_server_offers_apple_passes_and_keeps_its_secrets_out_of_logs_and_database() {
    let identity = TestPassIdentity::generate();
    let db = TestDb::new().await;
    let member = db.member(3).await;
    let flags = apple_flags(&identity);
    let env: Vec<(String, String)> = flags
        .chunks(2)
        .map(|pair| {
            let name = format!(
                "LOYALTY_{}",
                pair[0]
                    .trim_start_matches("--")
                    .replace('-', "_")
                    .to_uppercase()
            );
            (name, pair[1].clone())
        })
        .collect();
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let server = ServerProcess::start(env!("CARGO_BIN_EXE_server"), &db.owner_url(), &env).await;

    let token: String =
        sqlx::query_scalar("select pass_token from passes_master where external_id = $1")
            .bind(&member)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    let page = reqwest::get(format!("{}/pass/{token}", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Add to Apple Wallet"));
    let pass = reqwest::get(format!("{}/pass/{token}/wallet.pkpass", server.url))
        .await
        .unwrap();
    assert_eq!(pass.status(), 200);
    let channels: Vec<String> = sqlx::query_scalar("select channel from wallet_channels")
        .fetch_all(&db.owner)
        .await
        .unwrap();
    assert_eq!(channels, ["apple"]);

    // A line from the middle of each key: the part no header or path could hold by chance.
    let secrets: Vec<String> = [&identity.files.key, &identity.apns_key]
        .iter()
        .map(|path| {
            std::fs::read_to_string(path)
                .unwrap()
                .lines()
                .nth(1)
                .unwrap()
                .to_owned()
        })
        .collect();
    let log = std::fs::read_to_string(&server.log).unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "select c.relname::text from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
          where n.nspname = 'public' and c.relkind = 'r'",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    for secret in &secrets {
        assert!(!log.contains(secret.as_str()), "a key is in the log");
        for table in &tables {
            let holding: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "select count(*) from public.{table} x where x::text like '%' || $1 || '%'"
            )))
            .bind(secret)
            .fetch_one(&db.owner)
            .await
            .unwrap();
            assert_eq!(holding, 0, "a key is in {table}");
        }
    }
}
