//! The wallet outbox of balance changes: every change, by any function, is written with the pass's new version
//! in the change's own transaction, with a delivery for each channel switched on; and the device registrations
//! Apple Wallet makes, through the hardened functions, as the server's role.

use loyalty_core::LoyaltyError;
use server::testkit::{TestDb, Till};
use server::wallet::devices::{self, Channel};
use uuid::Uuid;

/// (version, balance) of each change of a member's pass, oldest first.
async fn changes(db: &TestDb, external_id: &str) -> Vec<(i64, i32)> {
    sqlx::query_as(
        "select c.pass_version, c.balance from pass_changes c
           join passes_master m on m.program_id = c.program_id and m.id = c.pass_id
          where m.external_id = $1 order by c.id",
    )
    .bind(external_id)
    .fetch_all(&db.owner)
    .await
    .unwrap()
}

async fn deliveries(db: &TestDb) -> Vec<(i64, String)> {
    sqlx::query_as("select change_id, channel from wallet_deliveries order by change_id, channel")
        .fetch_all(&db.owner)
        .await
        .unwrap()
}

#[tokio::test]
async fn every_balance_change_is_written_with_its_version_and_a_refusal_writes_none() {
    let db = TestDb::new().await;
    let till = Till::manager(&db).await;
    let member = db.member(0).await;
    assert_eq!(
        changes(&db, &member).await,
        [(1, 0)],
        "a new pass has its first change"
    );
    till.earn(&member, 30).await.unwrap();
    till.redeem(&member, 10).await.unwrap();
    assert_eq!(
        till.redeem(&member, 500).await.unwrap_err(),
        LoyaltyError::InsufficientFunds { balance: 20 }
    );
    let earn = till.earn(&member, 5).await.unwrap();
    let void: serde_json::Value =
        sqlx::query_scalar("select public.void_transaction($1, $2, 'wrong member')")
            .bind(db.program_id)
            .bind(earn.transaction_id)
            .fetch_one(&db.app)
            .await
            .unwrap();
    assert_eq!(void["success"], true, "{void}");
    assert_eq!(
        changes(&db, &member).await,
        [(1, 0), (2, 30), (3, 20), (4, 25), (5, 20)]
    );
    let version: i64 =
        sqlx::query_scalar("select pass_version from passes_master where external_id = $1")
            .bind(&member)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert_eq!(version, 5);

    let claimed = till.claim(&db.postcard().await).await;
    assert_eq!(changes(&db, &claimed).await.first(), Some(&(1, 0)));
}

#[tokio::test]
async fn deliveries_are_queued_for_the_channels_switched_on_only() {
    let db = TestDb::new().await;
    let till = Till::manager(&db).await;
    let member = db.member(0).await;
    assert_eq!(
        deliveries(&db).await,
        [],
        "no channel is on until the server says so"
    );

    devices::set_channels(&db.app, &[Channel::Apple, Channel::Webhook])
        .await
        .unwrap();
    till.earn(&member, 7).await.unwrap();
    let change: i64 = sqlx::query_scalar("select max(id) from pass_changes")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(
        deliveries(&db).await,
        [(change, "apple".to_owned()), (change, "webhook".to_owned())]
    );

    devices::set_channels(&db.app, &[]).await.unwrap();
    till.earn(&member, 7).await.unwrap();
    assert_eq!(
        deliveries(&db).await.len(),
        2,
        "switched off: nothing more is queued"
    );

    let refused: serde_json::Value =
        sqlx::query_scalar("select public.set_wallet_channels(array['fax'])")
            .fetch_one(&db.app)
            .await
            .unwrap();
    assert_eq!(refused["error"], "INVALID_WALLET_CHANNEL");
    let err = LoyaltyError::from_code("INVALID_WALLET_CHANNEL", Default::default()).unwrap();
    assert!(
        err.to_string().contains("webhook, apple or google"),
        "{err}"
    );
}

#[tokio::test]
async fn devices_register_with_the_pass_token_and_are_told_which_passes_changed() {
    let db = TestDb::new().await;
    let till = Till::manager(&db).await;
    let member = db.member(0).await;
    let other = db.member(0).await;
    let pass = devices::pass_of_member(&db.app, db.program_id, &member)
        .await
        .unwrap();
    let second = devices::pass_of_member(&db.app, db.program_id, &other)
        .await
        .unwrap();
    let phone = "phone-1";
    let push = "ab12".repeat(8);

    assert_eq!(
        devices::register_device(&db.app, pass.pass_id, &second.wallet_token, phone, &push).await,
        Err(LoyaltyError::WalletUnauthorized),
        "another pass's token"
    );
    assert_eq!(
        devices::register_device(&db.app, Uuid::new_v4(), &pass.wallet_token, phone, &push).await,
        Err(LoyaltyError::WalletUnauthorized),
        "no such pass"
    );
    assert_eq!(
        devices::register_device(&db.app, pass.pass_id, &pass.wallet_token, "bad/id", &push).await,
        Err(LoyaltyError::InvalidWalletDevice)
    );
    assert_eq!(
        devices::register_device(&db.app, pass.pass_id, &pass.wallet_token, phone, "not hex").await,
        Err(LoyaltyError::InvalidWalletDevice)
    );
    assert_eq!(
        devices::register_device(&db.app, pass.pass_id, &pass.wallet_token, phone, &push).await,
        Ok(true)
    );
    assert_eq!(
        devices::register_device(&db.app, pass.pass_id, &pass.wallet_token, phone, &push).await,
        Ok(false)
    );
    devices::register_device(&db.app, second.pass_id, &second.wallet_token, phone, &push)
        .await
        .unwrap();

    let all = devices::passes_changed_since(&db.app, phone, None)
        .await
        .unwrap();
    let mut both = vec![pass.pass_id, second.pass_id];
    both.sort();
    assert_eq!(all.serial_numbers, both);
    let tag = all.last_updated.unwrap();
    // The tag names the version of each pass the device was told about.
    let mut named = both.iter().map(|id| format!("{id}:1")).collect::<Vec<_>>();
    assert_eq!(tag, named.join(","));
    let none = devices::passes_changed_since(&db.app, phone, Some(&tag))
        .await
        .unwrap();
    assert!(none.serial_numbers.is_empty());
    assert_eq!(none.last_updated.as_ref(), Some(&tag));
    till.earn(&member, 3).await.unwrap();
    let one = devices::passes_changed_since(&db.app, phone, Some(&tag))
        .await
        .unwrap();
    assert_eq!(
        one.serial_numbers,
        [pass.pass_id],
        "only the pass that changed"
    );
    let changed = both.iter().position(|id| *id == pass.pass_id).unwrap();
    named[changed] = format!("{}:2", pass.pass_id);
    assert_eq!(one.last_updated.unwrap(), named.join(","));

    assert_eq!(
        devices::devices_of(&db.app, db.program_id, pass.pass_id)
            .await
            .unwrap(),
        [(phone.to_owned(), push.clone())]
    );
    devices::unregister_device(&db.app, pass.pass_id, &pass.wallet_token, phone)
        .await
        .unwrap();
    assert_eq!(
        devices::devices_of(&db.app, db.program_id, pass.pass_id)
            .await
            .unwrap(),
        []
    );
    assert_eq!(
        devices::forget_device(&db.app, phone, "00".repeat(8).as_str()).await,
        Ok(false),
        "another push token"
    );
    assert_eq!(
        devices::forget_device(&db.app, phone, &push).await,
        Ok(true)
    );
    assert_eq!(
        devices::devices_of(&db.app, db.program_id, second.pass_id)
            .await
            .unwrap(),
        []
    );
}

#[tokio::test]
async fn the_servers_role_cannot_write_changes_or_registrations_by_hand() {
    let db = TestDb::new().await;
    let member = db.member(0).await;
    let pass = devices::pass_of_member(&db.app, db.program_id, &member)
        .await
        .unwrap();
    for statement in [
        "insert into pass_changes (program_id, pass_id, pass_version, balance) select program_id, id, 9, 9 from passes_master",
        "insert into wallet_channels (channel) values ('apple')",
        "insert into wallet_devices (device_library_id, push_token) values ('x', 'abababababababababab')",
        "delete from wallet_deliveries",
        "update passes_master set wallet_token = repeat('a', 64)",
    ] {
        let err = sqlx::query(statement).execute(&db.app).await.unwrap_err();
        assert!(
            err.to_string().contains("permission denied"),
            "{statement}: {err}"
        );
    }
    assert_eq!(pass.pass_version, 1);
}

#[tokio::test]
async fn a_change_that_commits_after_a_later_one_is_still_told_to_the_phone() {
    let db = TestDb::new().await;
    let till = Till::manager(&db).await;
    let (first, second) = (db.member(0).await, db.member(0).await);
    let phone = "phone-2";
    let push = "cd34".repeat(8);
    let mut passes = Vec::new();
    for member in [&first, &second] {
        let pass = devices::pass_of_member(&db.app, db.program_id, member)
            .await
            .unwrap();
        devices::register_device(&db.app, pass.pass_id, &pass.wallet_token, phone, &push)
            .await
            .unwrap();
        passes.push(pass.pass_id);
    }
    let tag = devices::passes_changed_since(&db.app, phone, None)
        .await
        .unwrap()
        .last_updated;
    let tag = tag.as_deref();

    // The first member's earn takes its change id, and commits only after the second member's.
    let mut slow = db.owner.begin().await.unwrap();
    let earned: serde_json::Value =
        sqlx::query_scalar("select public.process_membership_transaction($1, $2, 4, 'EARN', null)")
            .bind(db.program_id)
            .bind(&first)
            .fetch_one(&mut *slow)
            .await
            .unwrap();
    assert_eq!(earned["success"], true);
    till.earn(&second, 6).await.unwrap();
    let seen = devices::passes_changed_since(&db.app, phone, tag)
        .await
        .unwrap();
    assert_eq!(seen.serial_numbers, [passes[1]]);
    slow.commit().await.unwrap();

    let next = devices::passes_changed_since(&db.app, phone, seen.last_updated.as_deref())
        .await
        .unwrap();
    assert!(
        next.serial_numbers.contains(&passes[0]),
        "the earn committed last is told: {next:?}"
    );
}
