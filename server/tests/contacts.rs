//! Members' phone numbers and emails: kept as keyed digests and masked hints, unique in a program, found at the
//! counter by the same scan as a pass, and throttled with the guesses of codes.

use std::sync::Arc;

use loyalty_core::wire::{ContactHint, ScanOutcome};
use loyalty_core::{Contact, ContactKind, LoyaltyError};
use reqwest::StatusCode;
use server::testkit::{
    ApiClient, TestDb, TestServer, Till, contact_key, member_of, new_program, refused,
};
use tokio::sync::Barrier;

/// The pass a scan of `typed` opens.
async fn found(till: &Till, typed: &str) -> Result<String, LoyaltyError> {
    match till.scan(typed).await? {
        ScanOutcome::Member { member } => Ok(member.external_id),
        other => panic!("{typed} claimed a postcard: {other:?}"),
    }
}

/// Every contact row of the database, as text.
async fn contacts_as_text(db: &TestDb) -> String {
    sqlx::query_scalar("select coalesce(string_agg(c::text, ' '), '') from member_contacts c")
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_contact_is_kept_as_a_digest_and_a_hint_and_finds_its_member() {
    let db = TestDb::new().await;
    let clerk = Till::clerk(&db).await;
    let member = db.member(40).await;
    assert_eq!(
        clerk.set_contact(&member, "+33 6 12 34 48 21").await,
        Ok(ContactHint {
            kind: ContactKind::Phone,
            hint: "... 4821".into()
        })
    );
    assert_eq!(
        clerk
            .set_contact(&member, " Ada.Lovelace@Example.com")
            .await,
        Ok(ContactHint {
            kind: ContactKind::Email,
            hint: "a...@example.com".into()
        })
    );

    // The database holds neither the number nor the address: only the digests under the server's key.
    let stored = contacts_as_text(&db).await;
    for secret in ["612344821", "12 34 48 21", "lovelace", "ada."] {
        assert!(!stored.contains(secret), "{secret} in {stored}");
    }
    let digest: Vec<u8> =
        sqlx::query_scalar("select digest from member_contacts where kind = 'phone'")
            .fetch_one(&db.owner)
            .await
            .unwrap();
    let phone = Contact::parse("+33612344821", "33").unwrap();
    assert_eq!(digest, contact_key().digest(db.program_id, &phone));

    // However it is typed.
    for typed in [
        "06 12 34 48 21",
        "0033 6 12 34 48 21",
        "+33612344821",
        "06.12.34.48.21",
        "ADA.LOVELACE@example.COM",
    ] {
        assert_eq!(found(&clerk, typed).await, Ok(member.clone()), "{typed}");
    }
    let detail = app::members::db::member_detail(&db.app, db.program_id, &member, 10)
        .await
        .unwrap();
    assert_eq!(
        detail
            .contacts
            .iter()
            .map(|c| c.hint.as_str())
            .collect::<Vec<_>>(),
        ["... 4821", "a...@example.com"]
    );

    // A new number replaces the old one, which no longer finds anybody.
    clerk.set_contact(&member, "07 00 00 00 01").await.unwrap();
    assert_eq!(
        found(&clerk, "06 12 34 48 21").await,
        Err(LoyaltyError::ContactNotFound)
    );
    assert_eq!(found(&clerk, "0700000001").await, Ok(member.clone()));
    clerk
        .remove_contact(&member, ContactKind::Email)
        .await
        .unwrap();
    assert_eq!(
        found(&clerk, "ada.lovelace@example.com").await,
        Err(LoyaltyError::ContactNotFound)
    );
    let kinds: Vec<String> = sqlx::query_scalar("select kind from member_contacts order by kind")
        .fetch_all(&db.owner)
        .await
        .unwrap();
    assert_eq!(kinds, ["phone"]);
}

#[tokio::test]
async fn what_is_not_a_contact_is_refused_in_words() {
    let db = TestDb::new().await;
    let clerk = Till::clerk(&db).await;
    let member = db.member(0).await;
    for typed in ["12", "06 12 34", "ada@", "@example.com", "not a number"] {
        assert_eq!(
            clerk.set_contact(&member, typed).await,
            Err(LoyaltyError::InvalidContact),
            "{typed}"
        );
    }
    assert_eq!(
        clerk.set_contact("MBR-NXSVCHPASS", "06 12 34 48 21").await,
        Err(LoyaltyError::MemberNotFound)
    );
    assert_eq!(
        found(&clerk, "ada@").await,
        Err(LoyaltyError::MalformedCode)
    );
    assert_eq!(
        found(&clerk, "ada@@example.com").await,
        Err(LoyaltyError::InvalidContact)
    );
    assert_eq!(contacts_as_text(&db).await, "");
    // Refused in the database too, whatever a caller sends it.
    let answer: serde_json::Value = sqlx::query_scalar(
        "select public.set_member_contact($1, $2, 'phone', '\\x00'::bytea, '... 0000')",
    )
    .bind(db.program_id)
    .bind(&member)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(answer["error"], "INVALID_CONTACT", "{answer}");
    let answer: serde_json::Value = sqlx::query_scalar(
        "select public.set_member_contact($1, $2, 'fax', pg_catalog.sha256('x'), '... 0000')",
    )
    .bind(db.program_id)
    .bind(&member)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(answer["error"], "INVALID_CONTACT", "{answer}");
}

#[tokio::test]
async fn of_passes_racing_for_one_number_exactly_one_gets_it() {
    const PASSES: usize = 12;
    let db = TestDb::with_pool_size(PASSES as u32 + 4).await;
    let tills = Till::clerks(&db, PASSES).await;
    let mut members = Vec::new();
    for _ in 0..PASSES {
        members.push(db.member(0).await);
    }
    let barrier = Arc::new(Barrier::new(PASSES));
    let tasks: Vec<_> = tills
        .into_iter()
        .zip(members.clone())
        .map(|(till, member)| {
            let barrier = barrier.clone();
            tokio::spawn(async move {
                barrier.wait().await;
                (
                    member.clone(),
                    till.set_contact(&member, "+44 20 7946 0958").await,
                )
            })
        })
        .collect();
    let mut winners = Vec::new();
    for task in tasks {
        match task.await.unwrap() {
            (member, Ok(_)) => winners.push(member),
            (_, Err(LoyaltyError::ContactTaken { kind })) => assert_eq!(kind, ContactKind::Phone),
            (_, other) => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let clerk = Till::clerk(&db).await;
    assert_eq!(found(&clerk, "+442079460958").await, Ok(winners[0].clone()));
    // The winner giving the same number again is no conflict.
    assert!(
        clerk
            .set_contact(&winners[0], "+44 20 7946 0958")
            .await
            .is_ok()
    );
    let err = clerk
        .set_contact(
            &members.iter().find(|m| **m != winners[0]).unwrap().clone(),
            "+442079460958",
        )
        .await
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "This phone number is already on another member's pass."
    );
}

#[tokio::test]
async fn one_number_in_two_programs_is_two_unrelated_members() {
    let db = TestDb::new().await;
    let other = new_program(&db.owner, "Another Café").await;
    let ours = db.member(5).await;
    let theirs = member_of(&db.owner, other, 7).await;
    let clerk = Till::clerk(&db).await;
    let their_clerk = Till::clerk_of(&db, other).await;
    their_clerk
        .set_contact(&theirs, "ada@example.com")
        .await
        .unwrap();
    // Not ours to find, nor to set on their pass.
    assert_eq!(
        found(&clerk, "ada@example.com").await,
        Err(LoyaltyError::ContactNotFound)
    );
    assert_eq!(
        clerk.set_contact(&theirs, "bob@example.com").await,
        Err(LoyaltyError::MemberNotFound)
    );
    // Ours may have the same address, under an unrelated digest.
    clerk.set_contact(&ours, "ada@example.com").await.unwrap();
    assert_eq!(found(&clerk, "ada@example.com").await, Ok(ours));
    assert_eq!(found(&their_clerk, "ada@example.com").await, Ok(theirs));
    let digests: i64 = sqlx::query_scalar("select count(distinct digest) from member_contacts")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(digests, 2);
}

#[tokio::test]
async fn look_ups_that_miss_count_with_the_guesses_of_codes() {
    let db = TestDb::new().await;
    let clerk = Till::clerk(&db).await;
    let member = db.member(0).await;
    clerk.set_contact(&member, "06 11 11 11 11").await.unwrap();
    for n in 0..3 {
        assert_eq!(
            found(&clerk, &format!("06 22 22 22 2{n}")).await,
            Err(LoyaltyError::ContactNotFound)
        );
    }
    // Passes that do not exist are misses too.
    for pass in ["MBR-NXSVCHPASS", "PUB-NXSVCHPASS"] {
        assert_eq!(found(&clerk, pass).await, Err(LoyaltyError::MemberNotFound));
    }
    // Five misses: even a real contact or pass waits now, and a waiting look-up is not counted.
    for typed in ["06 11 11 11 11", member.as_str()] {
        let err = found(&clerk, typed).await.unwrap_err();
        assert!(matches!(err, LoyaltyError::Throttled { .. }), "{err:?}");
    }
    let misses: i64 = sqlx::query_scalar("select count(*) from scan_misses")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(misses, 5);
    // Another clerk is not slowed by them, and finding someone is never a miss.
    let other = Till::clerk(&db).await;
    for _ in 0..8 {
        assert_eq!(found(&other, "06 11 11 11 11").await, Ok(member.clone()));
    }
}

#[tokio::test]
async fn over_http_contacts_are_set_found_and_refused_with_their_statuses() {
    let server = TestServer::start().await;
    let member = server.db.member(12).await;
    let clerk = ApiClient::sign_in(&server, &server.clerk).await;
    let response = clerk
        .change(
            "set_contact",
            &[("external_id", &member), ("contact", "06 12 34 48 21")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let hint: ContactHint = response.json().await.unwrap();
    assert_eq!(hint.hint, "... 4821");

    let response = clerk.change("scan", &[("code", "+33 6 12 34 48 21")]).await;
    assert_eq!(response.status(), StatusCode::OK);
    match response.json::<ScanOutcome>().await.unwrap() {
        ScanOutcome::Member { member: found } => assert_eq!(found.external_id, member),
        other => panic!("{other:?}"),
    }

    let other = server.db.member(0).await;
    let (status, err) = refused(
        clerk
            .change(
                "set_contact",
                &[("external_id", &other), ("contact", "0612344821")],
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, err),
        (
            StatusCode::CONFLICT,
            LoyaltyError::ContactTaken {
                kind: ContactKind::Phone
            }
        )
    );
    let (status, err) = refused(clerk.change("scan", &[("code", "06 99 99 99 99")]).await).await;
    assert_eq!(
        (status, err),
        (StatusCode::NOT_FOUND, LoyaltyError::ContactNotFound)
    );
    let (status, err) = refused(
        clerk
            .change(
                "set_contact",
                &[("external_id", &other), ("contact", "x@y")],
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, err),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            LoyaltyError::InvalidContact
        )
    );

    let response = clerk
        .change(
            "remove_contact",
            &[("external_id", &member), ("kind", "phone")],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let (status, err) = refused(clerk.change("scan", &[("code", "06 12 34 48 21")]).await).await;
    assert_eq!(
        (status, err),
        (StatusCode::NOT_FOUND, LoyaltyError::ContactNotFound)
    );
}

/// The passes of the test program, and the hints of their contacts.
async fn passes_and_hints(db: &TestDb) -> (i64, Vec<String>) {
    let passes = sqlx::query_scalar("select count(*) from passes_master where program_id = $1")
        .bind(db.program_id)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    let hints = sqlx::query_scalar("select hint from member_contacts order by hint")
        .fetch_all(&db.owner)
        .await
        .unwrap();
    (passes, hints)
}

#[tokio::test]
async fn a_member_enrolled_at_the_counter_gets_their_contact_with_the_pass_or_neither() {
    let server = TestServer::start().await;
    let clerk = ApiClient::sign_in(&server, &server.clerk).await;
    let response = clerk
        .change("enrol", &[("contact", "ada@example.com")])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let member: loyalty_core::wire::Member = response.json().await.unwrap();
    let till = Till::clerk(&server.db).await;
    assert_eq!(
        found(&till, "ada@example.com").await,
        Ok(member.external_id)
    );
    // No contact, or an empty field: a pass alone.
    for fields in [vec![], vec![("contact", " ")]] {
        assert_eq!(
            clerk.change("enrol", &fields).await.status(),
            StatusCode::OK
        );
    }
    let before = passes_and_hints(&server.db).await;
    assert_eq!(before.1, ["a...@example.com"]);
    // A contact that is taken, or no contact at all, makes no pass.
    let (status, err) = refused(
        clerk
            .change("enrol", &[("contact", "ADA@example.com")])
            .await,
    )
    .await;
    assert_eq!(
        (status, err),
        (
            StatusCode::CONFLICT,
            LoyaltyError::ContactTaken {
                kind: ContactKind::Email
            }
        )
    );
    let (status, err) = refused(clerk.change("enrol", &[("contact", "06 12")]).await).await;
    assert_eq!(
        (status, err),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            LoyaltyError::InvalidContact
        )
    );
    assert_eq!(passes_and_hints(&server.db).await, before);
}

#[tokio::test]
async fn a_public_sign_up_keeps_a_contact_but_never_tells_whose_it_is() {
    let server = TestServer::start().await;
    sqlx::query("update programs set public_slug = 'test-cafe' where id = $1")
        .bind(server.db.program_id)
        .execute(&server.db.owner)
        .await
        .unwrap();
    let join = |contact: &'static str| {
        let url = format!("{}/api/join", server.url);
        async move {
            reqwest::Client::new()
                .post(url)
                .form(&[("slug", "test-cafe"), ("contact", contact)])
                .send()
                .await
                .unwrap()
        }
    };
    let response = join("+33 6 55 44 33 22").await;
    assert_eq!(response.status(), StatusCode::OK);
    let first: app::enrolment::Joined = response.json().await.unwrap();
    let till = Till::clerk(&server.db).await;
    assert_eq!(
        found(&till, "06 55 44 33 22").await,
        Ok(first.external_id.clone())
    );

    // The same number again: a pass all the same, answered alike, and the number still finds the first one.
    let response = join("0655443322").await;
    assert_eq!(response.status(), StatusCode::OK);
    let second: app::enrolment::Joined = response.json().await.unwrap();
    assert_ne!(second.external_id, first.external_id);
    assert_eq!(found(&till, "06 55 44 33 22").await, Ok(first.external_id));
    assert_eq!(
        passes_and_hints(&server.db).await.1,
        ["... 3322"],
        "the second pass has no contact"
    );
    // What is not a contact is said so, and makes no pass.
    let passes = passes_and_hints(&server.db).await.0;
    let (status, err) = refused(join("not a phone").await).await;
    assert_eq!(
        (status, err),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            LoyaltyError::InvalidContact
        )
    );
    assert_eq!(passes_and_hints(&server.db).await.0, passes);
}

#[tokio::test]
async fn trying_numbers_on_a_pass_is_throttled_like_looking_them_up() {
    let db = TestDb::new().await;
    let owner_clerk = Till::clerk(&db).await;
    let mut members = Vec::new();
    for n in 0..6 {
        let member = db.member(0).await;
        owner_clerk
            .set_contact(&member, &format!("06 33 33 33 3{n}"))
            .await
            .unwrap();
        members.push(member);
    }
    let prober = Till::clerk(&db).await;
    let dummy = db.member(0).await;
    // A number nobody has simply goes on the pass; each number a member has is a miss.
    prober.set_contact(&dummy, "06 44 44 44 44").await.unwrap();
    for n in 0..5 {
        assert_eq!(
            prober
                .set_contact(&dummy, &format!("06 33 33 33 3{n}"))
                .await,
            Err(LoyaltyError::ContactTaken {
                kind: ContactKind::Phone
            })
        );
    }
    let err = prober
        .set_contact(&dummy, "06 33 33 33 35")
        .await
        .unwrap_err();
    assert!(matches!(err, LoyaltyError::Throttled { .. }), "{err:?}");
    let err = found(&prober, "06 33 33 33 35").await.unwrap_err();
    assert!(matches!(err, LoyaltyError::Throttled { .. }), "{err:?}");
}

/// Runs the server binary on `url` with `key` in a key file until it listens (then stops it), or until it
/// exits: whether it started, and what it wrote.
async fn start_with_key(url: &str, key: &str) -> (bool, String) {
    let key_file = std::env::temp_dir().join(format!("loyalty-key-{}.key", uuid::Uuid::new_v4()));
    std::fs::write(&key_file, key).unwrap();
    let addr = format!("127.0.0.1:{}", server::testkit::free_port());
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_server"))
        .env("DATABASE_URL", url)
        .env("LOYALTY_ADDR", &addr)
        .env("LOYALTY_CONTACT_KEY_FILE", &key_file)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // Bounded: a minute for the server to listen or exit.
    let mut started = false;
    for _ in 0..600 {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            started = true;
            break;
        }
        if child.try_wait().unwrap().is_some() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let _ = child.start_kill();
    let output = child.wait_with_output().await.unwrap();
    std::fs::remove_file(key_file).unwrap();
    (
        started,
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_server_given_another_contact_key_than_its_contacts_refuses_to_start() {
    let db = TestDb::new().await;
    let url = db.owner_url();
    let first = "the first key of this database, long enough";
    let second = "a second key of this database, just as long";
    // The first key a database meets is its key; while no contact is kept, another one takes its place.
    assert!(start_with_key(&url, first).await.0);
    assert!(start_with_key(&url, second).await.0);
    // With a contact kept under the second key, the first one is refused, and the second still starts.
    let member = db.member(0).await;
    let kept: serde_json::Value = sqlx::query_scalar(
        "select public.set_member_contact($1, $2, 'phone', pg_catalog.sha256('x'), '... 0000')",
    )
    .bind(db.program_id)
    .bind(&member)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!(kept["success"], true);
    let (started, stderr) = start_with_key(&url, first).await;
    assert!(!started, "{stderr}");
    assert!(
        stderr.contains(
            "is not the contact key this database's phone numbers and emails are kept under"
        ),
        "{stderr}"
    );
    assert!(start_with_key(&url, second).await.0);
}

#[tokio::test]
async fn numbers_typed_without_a_country_code_are_read_in_the_programs_own() {
    let db = TestDb::new().await;
    let manager = Till::manager(&db).await;
    let clerk = Till::clerk(&db).await;
    let set = |code: &'static str, minutes: i32, who: &Till| {
        let (pool, staff) = (db.app.clone(), who.staff.clone());
        async move { app::rules::db::set_counter_settings(&pool, &staff, code, minutes).await }
    };
    assert_eq!(set("44", 30, &clerk).await, Err(LoyaltyError::ManagersOnly));
    for bad in ["0", "1234", "4a", ""] {
        assert_eq!(
            set(bad, 30, &manager).await,
            Err(LoyaltyError::InvalidCallingCode),
            "{bad}"
        );
    }
    assert_eq!(
        set("44", 0, &manager).await,
        Err(LoyaltyError::InvalidReturnMinutes)
    );
    assert_eq!(
        set("44", 10081, &manager).await,
        Err(LoyaltyError::InvalidReturnMinutes)
    );
    set("44", 45, &manager).await.unwrap();
    let rules = app::rules::db::rules(&db.app, db.program_id).await.unwrap();
    assert_eq!(
        (rules.calling_code.as_str(), rules.return_minutes),
        ("44", 45)
    );

    let member = db.member(0).await;
    clerk.set_contact(&member, "020 7946 0958").await.unwrap();
    match clerk.scan("+44 20 7946 0958").await.unwrap() {
        ScanOutcome::Member { member: found } => assert_eq!(found.external_id, member),
        other => panic!("{other:?}"),
    }
}
