//! A manager's hold on staff access: switching an account off ends its sessions at once and refuses its
//! sign-ins, even those already under way; a new password ends the old sessions; and two managers switching
//! each other off at the same moment leave the program with a manager; and staff change their own password.

use std::sync::Arc;

use app::auth::db::{AccessChange, set_staff_access, sign_in};
use app::staff::StaffMember;
use loyalty_core::LoyaltyError;
use loyalty_core::wire::Role;
use reqwest::StatusCode;
use server::testkit::{ApiClient, Credentials, TestDb, TestServer, refused};
use tokio::sync::Barrier;
use uuid::Uuid;

async fn staff_id(db: &TestDb, email: &str) -> Uuid {
    sqlx::query_scalar("select id from staff where program_id = $1 and email = $2")
        .bind(db.program_id)
        .bind(email)
        .fetch_one(&db.owner)
        .await
        .unwrap()
}

async fn open_sessions(db: &TestDb, staff_id: Uuid) -> i64 {
    sqlx::query_scalar(
        "select count(*) from staff_sessions where program_id = $1 and staff_id = $2",
    )
    .bind(db.program_id)
    .bind(staff_id)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

async fn sign_in_status(server: &TestServer, who: &Credentials) -> (StatusCode, LoyaltyError) {
    refused(
        reqwest::Client::new()
            .post(format!("{}/api/sign_in", server.url))
            .form(&[("email", &who.email), ("password", &who.password)])
            .send()
            .await
            .unwrap(),
    )
    .await
}

/// A clerk's earn: a sale of 5.00, five points at the default rate.
async fn earn(clerk: &ApiClient, member: &str) -> reqwest::Response {
    clerk
        .change(
            "earn_sale",
            &[
                ("external_id", member),
                ("amount", "5"),
                ("idempotency_key", &Uuid::new_v4().to_string()),
            ],
        )
        .await
}

#[tokio::test]
async fn a_switched_off_clerk_is_signed_out_at_once_and_cannot_sign_in_until_switched_on() {
    let server = TestServer::start().await;
    let manager = ApiClient::sign_in(&server, &server.manager).await;
    let clerk = ApiClient::sign_in(&server, &server.clerk).await;
    let member = server.db.member(10).await;
    assert_eq!(earn(&clerk, &member).await.status(), StatusCode::OK);
    let clerk_id = staff_id(&server.db, &server.clerk.email).await;

    let switched: StaffMember = manager
        .change(
            "set_staff_active",
            &[("staff_id", &clerk_id.to_string()), ("active", "false")],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (switched.id, switched.active, switched.you),
        (clerk_id, false, false)
    );
    assert_eq!(open_sessions(&server.db, clerk_id).await, 0);

    // The clerk's open session is gone: the next earn is refused and writes nothing.
    let (status, err) = refused(earn(&clerk, &member).await).await;
    assert_eq!(
        (status, err),
        (StatusCode::UNAUTHORIZED, LoyaltyError::NotSignedIn)
    );
    assert_eq!(server.db.balance(&member).await, 15);
    // The right password says the account is off; a wrong one says no more than for anyone.
    assert_eq!(
        sign_in_status(&server, &server.clerk).await,
        (StatusCode::FORBIDDEN, LoyaltyError::AccountSwitchedOff)
    );
    let wrong = Credentials {
        password: "not-the-password".into(),
        ..server.clerk.clone()
    };
    assert_eq!(
        sign_in_status(&server, &wrong).await,
        (StatusCode::UNAUTHORIZED, LoyaltyError::BadCredentials)
    );
    let listed: Vec<StaffMember> = manager.post("staff", &[]).await.json().await.unwrap();
    let row = listed.iter().find(|s| s.id == clerk_id).unwrap();
    assert!(!row.active);
    assert!(listed.iter().any(|s| s.you && s.role == Role::Manager));

    let on: StaffMember = manager
        .change(
            "set_staff_active",
            &[("staff_id", &clerk_id.to_string()), ("active", "true")],
        )
        .await
        .json()
        .await
        .unwrap();
    assert!(on.active);
    let back = ApiClient::sign_in(&server, &server.clerk).await;
    assert_eq!(earn(&back, &member).await.status(), StatusCode::OK);
    assert_eq!(server.db.balance(&member).await, 20);
}

#[tokio::test]
async fn a_new_password_ends_the_old_sessions_and_only_it_signs_in() {
    let server = TestServer::start().await;
    let manager = ApiClient::sign_in(&server, &server.manager).await;
    let clerk = ApiClient::sign_in(&server, &server.clerk).await;
    let clerk_id = staff_id(&server.db, &server.clerk.email).await;

    let (status, err) = refused(
        manager
            .change(
                "set_staff_password",
                &[("staff_id", &clerk_id.to_string()), ("password", "short")],
            )
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(
        err.to_string(),
        "Choose a password of at least 10 characters."
    );
    assert_eq!(open_sessions(&server.db, clerk_id).await, 1);

    let set = manager
        .change(
            "set_staff_password",
            &[
                ("staff_id", &clerk_id.to_string()),
                ("password", "a-brand-new-password"),
            ],
        )
        .await;
    assert_eq!(set.status(), StatusCode::OK);
    assert_eq!(open_sessions(&server.db, clerk_id).await, 0);
    let (status, _) = refused(clerk.post("me", &[]).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(
        sign_in_status(&server, &server.clerk).await,
        (StatusCode::UNAUTHORIZED, LoyaltyError::BadCredentials)
    );
    let renewed = Credentials {
        password: "a-brand-new-password".into(),
        ..server.clerk.clone()
    };
    ApiClient::sign_in(&server, &renewed).await;
}

#[tokio::test]
async fn a_manager_does_not_change_their_own_access_or_an_unknown_account() {
    let server = TestServer::start().await;
    let manager = ApiClient::sign_in(&server, &server.manager).await;
    let own = staff_id(&server.db, &server.manager.email).await;
    for (endpoint, field, value) in [
        ("set_staff_active", "active", "false"),
        ("set_staff_password", "password", "another-password-1"),
    ] {
        let (status, err) = refused(
            manager
                .change(endpoint, &[("staff_id", &own.to_string()), (field, value)])
                .await,
        )
        .await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{endpoint}");
        assert_eq!(
            err.to_string(),
            "You cannot change your own access here: ask another manager."
        );
        let (status, err) = refused(
            manager
                .change(
                    endpoint,
                    &[("staff_id", &Uuid::new_v4().to_string()), (field, value)],
                )
                .await,
        )
        .await;
        assert_eq!(
            (status, err),
            (StatusCode::NOT_FOUND, LoyaltyError::StaffNotFound),
            "{endpoint}"
        );
    }
    assert_eq!(open_sessions(&server.db, own).await, 1);
    let me = manager.post("me", &[]).await;
    assert_eq!(me.status(), StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_racing_a_switch_off_leave_no_open_session() {
    const SIGN_INS: usize = 12;
    let db = TestDb::with_pool_size(16).await;
    let password = "racing-clerk-password";
    let manager = app::auth::db::create_staff(
        &db.owner,
        db.program_id,
        "boss@race.example",
        "Boss",
        Role::Manager,
        "boss-password-123",
    )
    .await
    .unwrap();
    let clerk = app::auth::db::create_staff(
        &db.owner,
        db.program_id,
        "clerk@race.example",
        "Racer",
        Role::Clerk,
        password,
    )
    .await
    .unwrap();
    for round in 0..4 {
        let barrier = Arc::new(Barrier::new(SIGN_INS + 1));
        let mut tasks = Vec::new();
        for n in 0..SIGN_INS {
            let (pool, barrier) = (db.app.clone(), barrier.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                sign_in(
                    &pool,
                    "clerk@race.example",
                    password,
                    &format!("race-{round}-{n}"),
                )
                .await
                .map(|_| ())
            }));
        }
        barrier.wait().await;
        let off = set_staff_access(
            &db.app,
            db.program_id,
            manager,
            clerk,
            AccessChange::Active(false),
        )
        .await;
        assert_eq!(off, Ok(false));
        let mut outcomes = Vec::new();
        for task in tasks {
            outcomes.push(task.await.unwrap());
        }
        assert!(
            outcomes
                .iter()
                .all(|o| matches!(o, Ok(()) | Err(LoyaltyError::AccountSwitchedOff))),
            "{outcomes:?}"
        );
        // Whatever the order, once the switch-off has answered no session of the clerk is open.
        assert_eq!(open_sessions(&db, clerk).await, 0, "round {round}");
        assert_eq!(
            sign_in(&db.app, "clerk@race.example", password, "after")
                .await
                .err(),
            Some(LoyaltyError::AccountSwitchedOff)
        );
        set_staff_access(
            &db.app,
            db.program_id,
            manager,
            clerk,
            AccessChange::Active(true),
        )
        .await
        .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_switching_each_other_off_at_once_leave_one_manager_on() {
    let db = TestDb::new().await;
    let mut managers = Vec::new();
    for name in ["Ada", "Bea"] {
        managers.push(
            app::auth::db::create_staff(
                &db.owner,
                db.program_id,
                &format!("{}@duel.example", name.to_lowercase()),
                name,
                Role::Manager,
                "manager-password-1",
            )
            .await
            .unwrap(),
        );
    }
    let (a, b) = (managers[0], managers[1]);
    for round in 0..10 {
        let barrier = Arc::new(Barrier::new(2));
        let duel = |actor: Uuid, target: Uuid| {
            let (pool, barrier, program) = (db.app.clone(), barrier.clone(), db.program_id);
            tokio::spawn(async move {
                barrier.wait().await;
                set_staff_access(&pool, program, actor, target, AccessChange::Active(false)).await
            })
        };
        let (first, second) = (duel(a, b), duel(b, a));
        let outcomes = [first.await.unwrap(), second.await.unwrap()];
        let switched = outcomes.iter().filter(|o| **o == Ok(false)).count();
        let refused = outcomes
            .iter()
            .filter(|o| **o == Err(LoyaltyError::NotSignedIn))
            .count();
        assert_eq!((switched, refused), (1, 1), "round {round}: {outcomes:?}");
        let active: i64 = sqlx::query_scalar(
            "select count(*) from staff where program_id = $1 and role = 'manager' and active",
        )
        .bind(db.program_id)
        .fetch_one(&db.owner)
        .await
        .unwrap();
        assert_eq!(active, 1, "round {round}");
        sqlx::query("update staff set active = true where program_id = $1")
            .bind(db.program_id)
            .execute(&db.owner)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn staff_change_their_own_password_given_the_current_one_and_their_other_sessions_end() {
    let server = TestServer::start().await;
    let here = ApiClient::sign_in(&server, &server.clerk).await;
    let elsewhere = ApiClient::sign_in(&server, &server.clerk).await;
    let clerk_id = staff_id(&server.db, &server.clerk.email).await;
    assert_eq!(open_sessions(&server.db, clerk_id).await, 2);

    let (status, err) = refused(
        here.change(
            "change_password",
            &[
                ("current", "not-the-password"),
                ("new", "my-own-new-password"),
            ],
        )
        .await,
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err.to_string(), "That is not your current password.");
    assert_eq!(open_sessions(&server.db, clerk_id).await, 2);

    let changed = here
        .change(
            "change_password",
            &[
                ("current", server.clerk.password.as_str()),
                ("new", "my-own-new-password"),
            ],
        )
        .await;
    assert_eq!(changed.status(), StatusCode::OK);
    // This session goes on; the other one has ended.
    assert_eq!(here.post("me", &[]).await.status(), StatusCode::OK);
    let (status, _) = refused(elsewhere.post("me", &[]).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(open_sessions(&server.db, clerk_id).await, 1);
    assert_eq!(
        sign_in_status(&server, &server.clerk).await,
        (StatusCode::UNAUTHORIZED, LoyaltyError::BadCredentials)
    );
    ApiClient::sign_in(
        &server,
        &Credentials {
            password: "my-own-new-password".into(),
            ..server.clerk.clone()
        },
    )
    .await;
}

#[tokio::test]
async fn guessing_the_current_password_from_an_open_session_is_throttled() {
    let server = TestServer::start().await;
    let session = ApiClient::sign_in(&server, &server.clerk).await;
    for n in 0..5 {
        let (_, err) = refused(
            session
                .change(
                    "change_password",
                    &[
                        ("current", &format!("guess-{n}")),
                        ("new", "a-new-password-1"),
                    ],
                )
                .await,
        )
        .await;
        assert_eq!(err.to_string(), "That is not your current password.");
    }
    // Now even the right one waits, as a sign-in would.
    let (status, err) = refused(
        session
            .change(
                "change_password",
                &[
                    ("current", server.clerk.password.as_str()),
                    ("new", "a-new-password-1"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(matches!(err, LoyaltyError::Throttled { .. }), "{err:?}");
    assert!(matches!(
        sign_in_status(&server, &server.clerk).await,
        (
            StatusCode::TOO_MANY_REQUESTS,
            LoyaltyError::Throttled { .. }
        )
    ));
}

/// Signs in as `email` while the staff row is held by another transaction, which changes it (as a manager's
/// switch-off or new password would) once the sign-in is waiting for the row, and commits.
async fn sign_in_while_the_row_changes(
    db: &TestDb,
    email: &str,
    password: &str,
    change: &str,
) -> Result<(), LoyaltyError> {
    let mut holder = db.owner.begin().await.unwrap();
    sqlx::query("select 1 from staff where program_id = $1 and email = $2 for update")
        .bind(db.program_id)
        .bind(email)
        .execute(&mut *holder)
        .await
        .unwrap();
    let (pool, email_owned, password) = (db.app.clone(), email.to_owned(), password.to_owned());
    let signing_in = tokio::spawn(async move {
        sign_in(&pool, &email_owned, &password, "held")
            .await
            .map(|_| ())
    });
    // The password is checked before the session is opened: wait until the opening waits for the row.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let waiting = db
            .sessions_waiting_for_a_lock("query like '%open_staff_session%'")
            .await;
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the sign-in never waited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "update staff set {change} where program_id = $1 and email = $2"
    )))
    .bind(db.program_id)
    .bind(email)
    .execute(&mut *holder)
    .await
    .unwrap();
    holder.commit().await.unwrap();
    signing_in.await.unwrap()
}

#[tokio::test]
async fn a_sign_in_overtaken_by_a_new_password_or_a_switch_off_opens_no_session_and_says_which() {
    let db = TestDb::new().await;
    let email = "overtaken@test.example";
    let password = "overtaken-password-1";
    let id = app::auth::db::create_staff(
        &db.owner,
        db.program_id,
        email,
        "Overtaken",
        Role::Clerk,
        password,
    )
    .await
    .unwrap();
    let other_hash = app::auth::db::hash_password("someone-elses-choice");
    let replaced = sign_in_while_the_row_changes(
        &db,
        email,
        password,
        &format!("password_hash = '{other_hash}'"),
    )
    .await;
    assert_eq!(replaced, Err(LoyaltyError::BadCredentials));
    assert_eq!(open_sessions(&db, id).await, 0);

    sqlx::query("update staff set password_hash = $1 where id = $2")
        .bind(app::auth::db::hash_password(password))
        .bind(id)
        .execute(&db.owner)
        .await
        .unwrap();
    let switched = sign_in_while_the_row_changes(&db, email, password, "active = false").await;
    assert_eq!(switched, Err(LoyaltyError::AccountSwitchedOff));
    assert_eq!(open_sessions(&db, id).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ins_with_the_old_password_racing_its_change_leave_only_the_changers_session() {
    const SIGN_INS: usize = 12;
    let db = TestDb::with_pool_size(16).await;
    let email = "changer@race.example";
    let mut current = "first-password-0".to_owned();
    let clerk = app::auth::db::create_staff(
        &db.owner,
        db.program_id,
        email,
        "Changer",
        Role::Clerk,
        &current,
    )
    .await
    .unwrap();
    let mine = sign_in(&db.app, email, &current, "changer").await.unwrap();
    for round in 1..=3 {
        let next = format!("next-password-{round}");
        let barrier = Arc::new(Barrier::new(SIGN_INS + 1));
        let mut tasks = Vec::new();
        for n in 0..SIGN_INS {
            let (pool, barrier, password) = (db.app.clone(), barrier.clone(), current.clone());
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                sign_in(&pool, email, &password, &format!("till-{round}-{n}"))
                    .await
                    .map(|_| ())
            }));
        }
        barrier.wait().await;
        app::auth::db::change_own_password(
            &db.app,
            &mine.staff,
            &mine.cookie_value,
            &current,
            &next,
            "changer",
        )
        .await
        .unwrap();
        for task in tasks {
            let outcome = task.await.unwrap();
            assert!(
                matches!(
                    outcome,
                    Ok(()) | Err(LoyaltyError::BadCredentials | LoyaltyError::Throttled { .. })
                ),
                "{outcome:?}"
            );
        }
        // Whichever sign-ins got in before the change, only the session that asked for it is left.
        assert_eq!(open_sessions(&db, clerk).await, 1, "round {round}");
        app::session::signed_in(&db.app, &mine.cookie_value)
            .await
            .unwrap();
        current = next;
        // The refused sign-ins counted towards the throttle; the next round starts afresh.
        sqlx::query("delete from sign_in_failures")
            .execute(&db.owner)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn a_sign_in_that_commits_while_a_password_change_waits_for_it_is_ended_by_the_change() {
    let db = TestDb::new().await;
    let email = "waited@test.example";
    let password = "waited-password-1";
    let clerk = app::auth::db::create_staff(
        &db.owner,
        db.program_id,
        email,
        "Waited",
        Role::Clerk,
        password,
    )
    .await
    .unwrap();
    let mine = sign_in(&db.app, email, password, "changer").await.unwrap();
    // Another till's sign-in, caught between opening its session and committing: it holds the row `for share`.
    let mut till = db.app.begin().await.unwrap();
    let opened: bool = sqlx::query_scalar(
        "select public.open_staff_session($1, $2, s.password_hash, '\\x00ff'::bytea, 'csrf')
           from staff s where s.program_id = $1 and s.id = $2",
    )
    .bind(db.program_id)
    .bind(clerk)
    .fetch_one(&mut *till)
    .await
    .unwrap();
    assert!(opened);
    let (pool, staff, cookie) = (
        db.app.clone(),
        mine.staff.clone(),
        mine.cookie_value.clone(),
    );
    let changing = tokio::spawn(async move {
        app::auth::db::change_own_password(
            &pool,
            &staff,
            &cookie,
            password,
            "changed-password-2",
            "changer",
        )
        .await
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        // On a Citus worker the statement reads as the coordinator wrote it for the shard.
        let waiting = db
            .sessions_waiting_for_a_lock("query ilike '%update public.staff%set password_hash%'")
            .await;
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the change never waited"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    till.commit().await.unwrap();
    changing.await.unwrap().unwrap();
    // The till's session, committed while the change waited, is ended with the others; the changer's stays.
    assert_eq!(open_sessions(&db, clerk).await, 1);
    app::session::signed_in(&db.app, &mine.cookie_value)
        .await
        .unwrap();
}
