//! The API over real HTTP: sessions, CSRF, roles, tenants, and bodies a program might send.

use loyalty_core::LoyaltyError;
use loyalty_core::wire::{MemberDetail, PointsReceipt, ScanOutcome, StaffSession};
use reqwest::StatusCode;
use reqwest::header::{COOKIE, ORIGIN, SET_COOKIE};
use server::testkit::{ApiClient, Credentials, TestServer, refused, session_cookie};

async fn sign_in_with(
    server: &TestServer,
    who: &Credentials,
    cookie: Option<&str>,
) -> reqwest::Response {
    let mut request = reqwest::Client::new()
        .post(format!("{}/api/sign_in", server.url))
        .form(&[
            ("email", who.email.as_str()),
            ("password", who.password.as_str()),
        ]);
    if let Some(cookie) = cookie {
        request = request.header(COOKIE, cookie);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn sign_in_sets_a_strict_http_only_cookie_and_me_tells_who() {
    let server = TestServer::start().await;
    let response = sign_in_with(&server, &server.clerk, None).await;
    let header = response
        .headers()
        .get(SET_COOKIE)
        .and_then(|v| v.to_str().ok())
        .unwrap()
        .to_owned();
    // Over plain HTTP (the dashboard on 127.0.0.1, say) the cookie cannot be Secure: a browser would drop it.
    assert!(
        header.contains("HttpOnly")
            && header.contains("SameSite=Strict")
            && !header.contains("Secure"),
        "{header}"
    );
    let client = ApiClient::sign_in(&server, &server.clerk).await;
    let me: StaffSession = client.post("me", &[]).await.json().await.unwrap();
    assert_eq!(me.email, server.clerk.email);
    assert_eq!(me.program_name, "Test program");
}

#[tokio::test]
async fn wrong_passwords_are_refused_then_throttled_even_with_the_right_one() {
    let server = TestServer::start().await;
    let wrong = Credentials {
        password: "not-the-password".into(),
        ..server.clerk.clone()
    };
    for _ in 0..5 {
        let (status, err) = refused(sign_in_with(&server, &wrong, None).await).await;
        assert_eq!(
            (status, err),
            (StatusCode::UNAUTHORIZED, LoyaltyError::BadCredentials)
        );
    }
    let (status, err) = refused(sign_in_with(&server, &server.clerk, None).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let LoyaltyError::Throttled { retry_after_secs } = err else {
        panic!("expected THROTTLED, got {err:?}");
    };
    assert!((1..=900).contains(&retry_after_secs));
    assert!(err.to_string().starts_with("Too many attempts: wait "));
}

#[tokio::test]
async fn sign_in_issues_a_new_session_and_ends_the_one_the_browser_had() {
    let server = TestServer::start().await;
    let first = ApiClient::sign_in(&server, &server.clerk).await;
    // A fixed cookie planted by someone else is never adopted: sign-in always issues its own.
    let planted = format!(
        "loyalty_session={}.{}",
        server.db.program_id,
        "f".repeat(64)
    );
    let response = sign_in_with(&server, &server.clerk, Some(&planted)).await;
    let issued = session_cookie(&response).unwrap();
    assert_ne!(issued, planted);
    // A mistyped password in the same browser leaves its session as it was.
    let mistyped = Credentials {
        password: "not-the-password".into(),
        ..server.clerk.clone()
    };
    let response = sign_in_with(&server, &mistyped, Some(&first.cookie)).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(first.post("me", &[]).await.status(), StatusCode::OK);
    // Signing in again in the same browser ends its previous session.
    let response = sign_in_with(&server, &server.clerk, Some(&first.cookie)).await;
    assert_ne!(session_cookie(&response).unwrap(), first.cookie);
    let (status, err) = refused(first.post("me", &[]).await).await;
    assert_eq!(
        (status, err),
        (StatusCode::UNAUTHORIZED, LoyaltyError::NotSignedIn)
    );
}

#[tokio::test]
async fn a_session_copied_before_sign_out_is_dead_after_it() {
    let server = TestServer::start().await;
    let client = ApiClient::sign_in(&server, &server.clerk).await;
    let member = server.db.member(10).await;
    assert_eq!(
        client.change("sign_out", &[]).await.status(),
        StatusCode::OK
    );
    let (status, err) = refused(client.post("member", &[("external_id", &member)]).await).await;
    assert_eq!(
        (status, err),
        (StatusCode::UNAUTHORIZED, LoyaltyError::NotSignedIn)
    );
    let (_, err) = refused(
        client
            .change(
                "earn",
                &[
                    ("external_id", &member),
                    ("points", "5"),
                    ("idempotency_key", "k"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(err, LoyaltyError::NotSignedIn);
    assert_eq!(server.db.balance(&member).await, 10);
}

/// Earn 5, redeem 5 and a postcard scan: the changes a counter makes.
fn counter_changes<'a>(
    member: &'a str,
    code: &'a str,
) -> Vec<(&'static str, Vec<(&'static str, &'a str)>)> {
    vec![
        (
            "earn",
            vec![
                ("external_id", member),
                ("points", "5"),
                ("idempotency_key", "k1"),
            ],
        ),
        (
            "redeem",
            vec![
                ("external_id", member),
                ("points", "5"),
                ("idempotency_key", "k2"),
            ],
        ),
        ("scan", vec![("code", code)]),
    ]
}

async fn claimed(server: &TestServer, code: &str) -> bool {
    sqlx::query_scalar("select claimed_at is not null from claim_codes where code = $1")
        .bind(code)
        .fetch_one(&server.db.owner)
        .await
        .unwrap()
}

async fn idle_for(server: &TestServer, minutes: i32) {
    sqlx::query("update staff_sessions set last_seen_at = now() - make_interval(mins => $1)")
        .bind(minutes)
        .execute(&server.db.owner)
        .await
        .unwrap();
}

#[tokio::test]
async fn an_idle_session_expires() {
    let server = TestServer::start().await;
    let client = ApiClient::sign_in(&server, &server.clerk).await;
    let member = server.db.member(10).await;
    let code = server.db.postcard().await;
    idle_for(&server, 31).await;
    let (status, _) = refused(client.post("me", &[]).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Earn, redeem and scan check the session in the statement that makes their change: the same refusal.
    for (endpoint, fields) in counter_changes(&member, &code) {
        let (status, err) = refused(client.change(endpoint, &fields).await).await;
        assert_eq!(
            (status, err),
            (StatusCode::UNAUTHORIZED, LoyaltyError::NotSignedIn),
            "{endpoint}"
        );
    }
    assert_eq!(server.db.balance(&member).await, 10);
    assert!(!claimed(&server, &code).await);
}

#[tokio::test]
async fn a_session_in_use_stays_open() {
    let server = TestServer::start().await;
    let client = ApiClient::sign_in(&server, &server.clerk).await;
    let member = server.db.member(10).await;
    let idle_minutes = || async {
        sqlx::query_scalar::<_, f64>(
            "select extract(epoch from now() - last_seen_at)::float8 / 60 from staff_sessions",
        )
        .fetch_one(&server.db.owner)
        .await
        .unwrap()
    };
    // A sale 29 minutes after the last request moves the idle clock on, as any request does.
    idle_for(&server, 29).await;
    let earned = client
        .change(
            "earn_sale",
            &[
                ("external_id", &member),
                ("amount", "5"),
                ("idempotency_key", "k1"),
            ],
        )
        .await;
    assert_eq!(earned.status(), StatusCode::OK);
    assert!(idle_minutes().await < 1.0);
    idle_for(&server, 29).await;
    assert_eq!(client.post("me", &[]).await.status(), StatusCode::OK);
    assert!(idle_minutes().await < 1.0);
    assert_eq!(server.db.balance(&member).await, 15);
}

#[tokio::test]
async fn pages_lead_to_sign_in_when_signed_out() {
    let server = TestServer::start().await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for page in ["/", "/member/MBR-ABCD2345", "/enrol", "/history", "/staff"] {
        let response = http
            .get(format!("{}{page}", server.url))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{page}");
        assert_eq!(response.headers()["location"], "/login", "{page}");
    }
}

#[tokio::test]
async fn a_change_without_the_sessions_csrf_token_is_refused_and_writes_nothing() {
    let server = TestServer::start().await;
    let client = ApiClient::sign_in(&server, &server.clerk).await;
    let member = server.db.member(100).await;
    let code = server.db.postcard().await;
    for csrf in ["", "0123456789abcdef0123456789abcdef"] {
        let others = [("enrol", vec![]), ("sign_out", vec![])];
        for (endpoint, fields) in counter_changes(&member, &code).into_iter().chain(others) {
            let mut all = vec![("csrf", csrf)];
            all.extend(fields);
            let (status, err) = refused(client.post(endpoint, &all).await).await;
            assert_eq!(
                (status, err),
                (StatusCode::FORBIDDEN, LoyaltyError::CsrfRejected),
                "{endpoint}"
            );
        }
    }
    assert_eq!(server.db.balance(&member).await, 100);
    assert!(!claimed(&server, &code).await);
    // And the session still works: the refused calls did not sign it out.
    assert_eq!(client.post("me", &[]).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_cross_site_sign_in_is_refused() {
    let server = TestServer::start().await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/sign_in", server.url))
        .header(ORIGIN, "https://evil.example")
        .form(&[
            ("email", server.clerk.email.as_str()),
            ("password", server.clerk.password.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert!(session_cookie(&response).is_none());
    let (status, err) = refused(response).await;
    assert_eq!(
        (status, err),
        (StatusCode::FORBIDDEN, LoyaltyError::CsrfRejected)
    );
}

#[tokio::test]
async fn a_clerk_is_refused_every_manager_endpoint() {
    let server = TestServer::start().await;
    let clerk = ApiClient::sign_in(&server, &server.clerk).await;
    for (endpoint, fields) in [
        ("staff", vec![]),
        (
            "add_staff",
            vec![
                ("email", "x@test.example"),
                ("name", "X"),
                ("password", "long-enough-pw"),
                ("role", "manager"),
            ],
        ),
        ("history", vec![]),
        ("void", vec![("transaction_id", "1"), ("reason", "because")]),
    ] {
        let (status, err) = refused(clerk.change(endpoint, &fields).await).await;
        assert_eq!(
            (status, err),
            (StatusCode::FORBIDDEN, LoyaltyError::ManagersOnly),
            "{endpoint}"
        );
    }
    let csv = clerk
        .http
        .get(format!("{}/api/history.csv", server.url))
        .header(COOKIE, &clerk.cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::FORBIDDEN);
    let staff: i64 = sqlx::query_scalar("select count(*) from staff")
        .fetch_one(&server.db.owner)
        .await
        .unwrap();
    assert_eq!(staff, 2);
}

#[tokio::test]
async fn a_manager_adds_a_clerk_who_can_then_sign_in() {
    let server = TestServer::start().await;
    let manager = ApiClient::sign_in(&server, &server.manager).await;
    let response = manager
        .change(
            "add_staff",
            &[
                ("email", "New.Clerk@Test.Example"),
                ("name", "New Clerk"),
                ("password", "a-long-password"),
                ("role", "clerk"),
            ],
        )
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    let new = Credentials {
        email: "new.clerk@test.example".into(),
        password: "a-long-password".into(),
    };
    let clerk = ApiClient::sign_in(&server, &new).await;
    let me: StaffSession = clerk.post("me", &[]).await.json().await.unwrap();
    assert_eq!(me.role, loyalty_core::wire::Role::Clerk);
}

#[tokio::test]
async fn another_programs_members_and_postcards_are_not_found_over_the_api() {
    let server = TestServer::start().await;
    let client = ApiClient::sign_in(&server, &server.clerk).await;
    let other = server::testkit::new_program(&server.db.owner, "Rival").await;
    let theirs = server::testkit::member_of(&server.db.owner, other, 60).await;
    let their_code = server::testkit::postcard_of(&server.db.owner, other).await;

    let (status, err) = refused(client.post("member", &[("external_id", &theirs)]).await).await;
    assert_eq!(
        (status, err),
        (StatusCode::NOT_FOUND, LoyaltyError::MemberNotFound)
    );
    let (_, err) = refused(
        client
            .change(
                "earn_sale",
                &[
                    ("external_id", &theirs),
                    ("amount", "10"),
                    ("idempotency_key", "sale"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(err, LoyaltyError::MemberNotFound);
    // Nor can their manager adjust them from here.
    let manager = ApiClient::sign_in(&server, &server.manager).await;
    for endpoint in ["earn", "redeem"] {
        let (_, err) = refused(
            manager
                .change(
                    endpoint,
                    &[
                        ("external_id", &theirs),
                        ("points", "10"),
                        ("note", "moved over"),
                        ("idempotency_key", endpoint),
                    ],
                )
                .await,
        )
        .await;
        assert_eq!(err, LoyaltyError::MemberNotFound);
    }
    let (_, err) = refused(client.change("scan", &[("code", &their_code)]).await).await;
    assert_eq!(err, LoyaltyError::InvalidCode);
    assert_eq!(server.db.balance(&theirs).await, 60);
}

#[tokio::test]
async fn the_api_takes_json_as_well_as_forms() {
    let server = TestServer::start().await;
    let client = ApiClient::sign_in(&server, &server.clerk).await;
    let member = server.db.member(0).await;
    let body = serde_json::json!({
        "csrf": client.csrf, "external_id": member, "amount": "40", "sold_at": null, "idempotency_key": "json-1"
    });
    let response = client
        .http
        .post(format!("{}/api/earn_sale", server.url))
        .header(COOKIE, &client.cookie)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let receipt: PointsReceipt = response.json().await.unwrap();
    assert_eq!(receipt.new_balance, 40);

    let detail: MemberDetail = client
        .post("member", &[("external_id", &member)])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(detail.member.points, 40);
    assert_eq!(detail.ledger.len(), 1);

    let code = server.db.postcard().await;
    let outcome: ScanOutcome = client
        .change("scan", &[("code", &code)])
        .await
        .json()
        .await
        .unwrap();
    assert!(matches!(outcome, ScanOutcome::Claimed { .. }));
}

#[tokio::test]
async fn malformed_nested_and_oversized_bodies_are_refused_in_the_domains_words() {
    let server = TestServer::start().await;
    let client = ApiClient::sign_in(&server, &server.clerk).await;
    let member = server.db.member(5).await;
    let send = |body: Vec<u8>| {
        client
            .http
            .post(format!("{}/api/earn", server.url))
            .header(COOKIE, &client.cookie)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    for body in [
        b"{not json".to_vec(),
        b"[1, 2, 3]".to_vec(),
        format!(
            "{{\"csrf\": \"{}\", \"external_id\": {{\"nested\": [[[[1]]]]}}}}",
            client.csrf
        )
        .into_bytes(),
        format!("{{\"pad\": \"{}\"}}", "x".repeat(100_000)).into_bytes(),
    ] {
        let (status, err) = refused(send(body).await.unwrap()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(matches!(err, LoyaltyError::InvalidInput { .. }), "{err:?}");
    }
    let (status, err) = refused(
        client
            .change(
                "earn",
                &[
                    ("external_id", &member),
                    ("points", "lots"),
                    ("idempotency_key", "k"),
                ],
            )
            .await,
    )
    .await;
    assert_eq!(
        (status, err),
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            LoyaltyError::InvalidAmount
        )
    );
    assert_eq!(server.db.balance(&member).await, 5);
}

#[tokio::test]
async fn the_browser_code_is_cacheable_and_signed_in_pages_are_not() {
    let server = TestServer::start().await;
    let client = ApiClient::sign_in(&server, &server.clerk).await;
    let get = |path: &str| {
        client
            .http
            .get(format!("{}{path}", server.url))
            .header(COOKIE, &client.cookie)
            .send()
    };
    let page = get("/").await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["cache-control"], "no-store");
    for asset in ["/pkg/loyalty.css", "/healthz"] {
        let response = get(asset).await.unwrap();
        let cache = response
            .headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap().to_owned());
        assert_ne!(cache.as_deref(), Some("no-store"), "{asset}");
    }
}

/// `loyalty_http_requests_abandoned_total` for a route, as /metrics says it.
async fn abandoned(server: &TestServer, route: &str) -> u64 {
    let text = reqwest::get(format!("{}/metrics", server.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find(|line| {
            line.starts_with("loyalty_http_requests_abandoned_total")
                && line.contains(&format!("route=\"{route}\""))
        })
        .and_then(|line| line.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::test]
async fn an_earn_whose_client_went_away_is_made_once_and_its_connection_answers_the_next_earn_rightly()
 {
    // One connection for the counter's changes, so the next earn runs on the one the abandoned earn left.
    let server = TestServer::on(server::testkit::TestDb::with_pool_size(1).await).await;
    let clerk = ApiClient::sign_in(&server, &server.clerk).await;
    let (held, next) = (server.db.member(100).await, server.db.member(100).await);
    let earn = |member: String, key: &'static str| {
        let clerk = clerk.clone();
        async move {
            clerk
                .change(
                    "earn_sale",
                    &[
                        ("external_id", member.as_str()),
                        ("amount", "5"),
                        ("idempotency_key", key),
                    ],
                )
                .await
        }
    };

    // The first earn waits on its member's row lock, held here, when its client goes away.
    let mut lock = server.db.owner.begin().await.unwrap();
    sqlx::query(
        "select 1 from public.passes_master where program_id = $1 and external_id = $2 for update",
    )
    .bind(server.db.program_id)
    .bind(&held)
    .execute(&mut *lock)
    .await
    .unwrap();
    let first = tokio::spawn(earn(held.clone(), "abandoned-1"));
    let blocked = async {
        while server.db.app_sessions_waiting_for_a_lock().await != 1 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), blocked)
        .await
        .expect("the first earn reached the row lock");
    first.abort();
    let gone = async {
        while abandoned(&server, "/api/earn_sale").await == 0 {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(std::time::Duration::from_secs(30), gone)
        .await
        .expect("the server counted the earn as abandoned");

    // Its statement goes on in the database; the next earn gets the connection, and its own answer.
    let second = tokio::spawn(earn(next.clone(), "after-abandoned-1"));
    lock.commit().await.unwrap();
    let response = second.await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let receipt: PointsReceipt = response.json().await.unwrap();
    assert_eq!(
        (
            receipt.external_id.as_str(),
            receipt.new_balance,
            receipt.replayed
        ),
        (next.as_str(), 105, false)
    );

    // The abandoned earn was made, once: its retry says so, with the first call's answer.
    let retried: PointsReceipt = earn(held.clone(), "abandoned-1")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            retried.external_id.as_str(),
            retried.new_balance,
            retried.replayed
        ),
        (held.as_str(), 105, true)
    );
    assert_eq!(server.db.balance(&held).await, 105);
    assert_eq!(server.db.invariant_violations().await, Vec::<String>::new());
}
