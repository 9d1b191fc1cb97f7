//! Members' pass pages and public sign-up, over real HTTP with no staff session.

use std::sync::Arc;

use loyalty_core::LoyaltyError;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, LOCATION, REFERER};
use server::testkit::{ApiClient, TestServer, Till, member_of, new_program, refused};
use tokio::sync::Barrier;

/// A browser without a session that does not follow redirects, so a redirect to sign-in would show.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn token_of(server: &TestServer, external_id: &str) -> String {
    sqlx::query_scalar("select pass_token from passes_master where external_id = $1")
        .bind(external_id)
        .fetch_one(&server.db.owner)
        .await
        .unwrap()
}

async fn page(server: &TestServer, path: &str) -> (StatusCode, String) {
    let response = browser()
        .get(format!("{}{path}", server.url))
        .send()
        .await
        .unwrap();
    (response.status(), response.text().await.unwrap())
}

async fn earn(server: &TestServer, external_id: &str, points: i64, note: &str) {
    let answer: serde_json::Value =
        sqlx::query_scalar("select public.process_membership_transaction($1, $2, $3, 'EARN', $4)")
            .bind(server.db.program_id)
            .bind(external_id)
            .bind(points)
            .bind(note)
            .fetch_one(&server.db.owner)
            .await
            .unwrap();
    assert_eq!(answer["success"], true, "{answer}");
}

#[tokio::test]
async fn passes_made_before_tokens_existed_each_get_their_own() {
    let server = TestServer::start().await;
    let db = &server.db;
    // Back to the schema before the tokens' migration, with passes in it; then that migration again.
    sqlx::query("alter table passes_master drop column pass_token")
        .execute(&db.owner)
        .await
        .unwrap();
    let members = [db.member(10).await, db.member(0).await, db.member(3).await];
    sqlx::raw_sql(include_str!(
        "../../migrations/20261127000020_pass_tokens.sql"
    ))
    .execute(&db.owner)
    .await
    .unwrap();
    let mut tokens = Vec::new();
    for member in &members {
        tokens.push(token_of(&server, member).await);
    }
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 3);
    assert!(
        tokens.iter().all(|t| app::passes::is_pass_token(t)),
        "{tokens:?}"
    );
    let (status, body) = page(
        &server,
        &format!("/pass/{}", token_of(&server, &members[0]).await),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains(&members[0]) && body.contains(r#"data-balance="10""#),
        "{body}"
    );
}

#[tokio::test]
async fn every_new_pass_has_its_own_long_random_token() {
    let server = TestServer::start().await;
    let mut tokens = Vec::new();
    for _ in 0..20 {
        let member = server.db.member(0).await;
        tokens.push(token_of(&server, &member).await);
    }
    let till = Till::sign_in(&server.db, &server.clerk).await;
    let claimed = till.claim(&server.db.postcard().await).await;
    tokens.push(token_of(&server, &claimed).await);
    for token in &tokens {
        assert!(app::passes::is_pass_token(token), "{token}");
    }
    tokens.sort();
    tokens.dedup();
    assert_eq!(tokens.len(), 21);
}

#[tokio::test]
async fn a_pass_page_shows_the_program_the_members_qr_code_and_balance_without_sign_in() {
    let server = TestServer::start().await;
    let member = server.db.member(120).await;
    let token = token_of(&server, &member).await;
    let (status, body) = page(&server, &format!("/pass/{token}")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Test program"), "{body}");
    assert!(body.contains(&member), "{body}");
    assert!(body.contains(r#"data-balance="120""#), "{body}");
    // The QR code is the SVG of exactly the external id, which the scan page resolves to the member.
    let qr = app::passes::qr_svg(&member).unwrap();
    assert!(qr.starts_with("<svg"), "{qr}");
    assert!(body.contains(&qr), "the page carries the member's QR code");
    // Staff notes stay with the staff.
    assert!(!body.contains("opening balance"), "{body}");
}

#[tokio::test]
async fn a_pass_page_shows_only_the_newest_five_transactions() {
    let server = TestServer::start().await;
    let member = server.db.member(0).await;
    for points in 1..=7 {
        earn(&server, &member, points, "visit").await;
    }
    let token = token_of(&server, &member).await;
    let (status, body) = page(&server, &format!("/pass/{token}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body.matches(r#"<li class="earn""#).count(), 5, "{body}");
    assert!(body.contains(r#"data-balance="28""#), "{body}");
}

/// Where the program's points expire, the member reads on their pass which points go next and on which day, as
/// the staff's member page says it.
#[tokio::test]
async fn a_pass_page_says_which_points_expire_next_and_when() {
    let server = TestServer::start().await;
    let member = server.db.member(0).await;
    earn(&server, &member, 40, "visit").await;
    let token = token_of(&server, &member).await;
    let (_, body) = page(&server, &format!("/pass/{token}")).await;
    assert!(!body.contains("expire on"), "off by default: {body}");

    let manager = Till::sign_in(&server.db, &server.manager).await;
    let set: serde_json::Value = sqlx::query_scalar("select public.set_points_expiry($1, $2, 12)")
        .bind(server.db.program_id)
        .bind(manager.staff.id)
        .fetch_one(&server.db.app)
        .await
        .unwrap();
    assert_eq!(set["success"], true, "{set}");
    let day: chrono::NaiveDate = sqlx::query_scalar(
        "select e.next_day from passes_master m, public.member_expiry(m.program_id, m.id) e
          where m.external_id = $1",
    )
    .bind(&member)
    .fetch_one(&server.db.owner)
    .await
    .unwrap();
    let (status, body) = page(&server, &format!("/pass/{token}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(r#"data-expiry="40""#), "{body}");
    assert!(
        body.contains(&format!(
            "40 points expire on {}: spend them before then.",
            loyalty_core::error::day(&day)
        )),
        "{body}"
    );
}

#[tokio::test]
async fn unknown_and_garbled_tokens_find_no_pass() {
    let server = TestServer::start().await;
    let member = server.db.member(10).await;
    let real = token_of(&server, &member).await;
    let unknown = "0".repeat(64);
    let shifted = format!("{}{}", &real[1..], &real[..1]);
    for token in [
        unknown.as_str(),
        shifted.as_str(),
        "not-a-token",
        &real.to_uppercase(),
        &real[..63],
        "%27%20or%201%3D1",
    ] {
        let (status, body) = page(&server, &format!("/pass/{token}")).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{token}: {body}");
        assert!(body.contains("Pass not found"), "{token}: {body}");
        assert!(!body.contains(&member), "{token}");
    }
}

#[tokio::test]
async fn a_pass_page_never_shows_another_programs_data() {
    let server = TestServer::start().await;
    let ours = server.db.member(75).await;
    let other_program = new_program(&server.db.owner, "Other Bakery").await;
    let theirs = member_of(&server.db.owner, other_program, 9_999).await;
    let (_, our_page) = page(
        &server,
        &format!("/pass/{}", token_of(&server, &ours).await),
    )
    .await;
    let (_, their_page) = page(
        &server,
        &format!("/pass/{}", token_of(&server, &theirs).await),
    )
    .await;
    assert!(our_page.contains("Test program") && our_page.contains(&ours));
    assert!(!our_page.contains("Other Bakery") && !our_page.contains(&theirs));
    assert!(!our_page.contains("9999"));
    assert!(their_page.contains("Other Bakery") && their_page.contains(&theirs));
    assert!(!their_page.contains("Test program") && !their_page.contains(&ours));
}

#[tokio::test]
async fn the_staff_member_page_links_to_the_members_pass_page() {
    let server = TestServer::start().await;
    let member = server.db.member(5).await;
    let token = token_of(&server, &member).await;
    let clerk = ApiClient::sign_in_using(browser(), &server.url, &server.clerk).await;
    let body = clerk
        .get(&format!("/member/{member}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(body.contains(&format!(r#"href="/pass/{token}""#)), "{body}");
}

async fn open_sign_up(server: &TestServer, slug: &str) {
    sqlx::query("update programs set public_slug = $2 where id = $1")
        .bind(server.db.program_id)
        .bind(slug)
        .execute(&server.db.owner)
        .await
        .unwrap();
}

/// A sign-up as a browser without JavaScript posts it: a plain form that expects a redirect.
async fn join_as_form(server: &TestServer, slug: &str) -> reqwest::Response {
    browser()
        .post(format!("{}/api/join", server.url))
        .header(ACCEPT, "text/html")
        .form(&[("slug", slug)])
        .send()
        .await
        .unwrap()
}

async fn join_as_api(server: &TestServer, slug: &str) -> reqwest::Response {
    browser()
        .post(format!("{}/api/join", server.url))
        .form(&[("slug", slug)])
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn public_sign_up_without_javascript_makes_a_pub_pass_and_leads_to_its_page() {
    let server = TestServer::start().await;
    open_sign_up(&server, "test-cafe").await;
    let (status, body) = page(&server, "/join/test-cafe").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(
        body.contains("Test program") && body.contains("Get my pass"),
        "{body}"
    );
    assert!(body.contains(r#"action="/api/join""#), "{body}");

    let response = join_as_form(&server, "test-cafe").await;
    assert!(response.status().is_redirection(), "{}", response.status());
    let location = response.headers()[LOCATION].to_str().unwrap().to_owned();
    let token = location.strip_prefix("/pass/").expect("a pass page");
    let external_id: String =
        sqlx::query_scalar("select external_id from passes_master where pass_token = $1")
            .bind(token)
            .fetch_one(&server.db.owner)
            .await
            .unwrap();
    assert!(external_id.starts_with("PUB-"), "{external_id}");
    let (status, body) = page(&server, &location).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        body.contains(&external_id) && body.contains(r#"data-balance="0""#),
        "{body}"
    );

    let joined: app::enrolment::Joined = join_as_api(&server, "test-cafe")
        .await
        .json()
        .await
        .unwrap();
    assert!(joined.external_id.starts_with("PUB-"));
    assert!(joined.pass_url.starts_with("/pass/"));
}

#[tokio::test]
async fn a_queue_of_customers_on_one_address_signs_up_and_the_sixty_first_in_an_hour_is_throttled()
{
    let server = TestServer::start().await;
    open_sign_up(&server, "test-cafe").await;
    // A shop's own Wi-Fi is one address for every customer joining there: sixty an hour get through.
    for _ in 0..60 {
        assert_eq!(
            join_as_api(&server, "test-cafe").await.status(),
            StatusCode::OK
        );
    }
    let (status, err) = refused(join_as_api(&server, "test-cafe").await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let LoyaltyError::Throttled { retry_after_secs } = err else {
        panic!("expected THROTTLED, got {err:?}");
    };
    assert!((1..=3600).contains(&retry_after_secs), "{retry_after_secs}");
    assert!(
        err.to_string().starts_with("Too many attempts: wait "),
        "{err}"
    );
    // A form post without JavaScript is sent back to the sign-up page, which says why; no pass is made.
    let response = browser()
        .post(format!("{}/api/join", server.url))
        .header(ACCEPT, "text/html")
        .header(REFERER, format!("{}/join/test-cafe", server.url))
        .form(&[("slug", "test-cafe")])
        .send()
        .await
        .unwrap();
    assert!(response.status().is_redirection(), "{}", response.status());
    let back = response.headers()[LOCATION].to_str().unwrap().to_owned();
    assert!(back.contains("/join/test-cafe"), "{back}");
    let body = browser()
        .get(&back)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("Too many attempts: wait "), "{body}");
    // Another address is not held back by this one.
    let other = app::enrolment::db::enrol_publicly(&server.db.app, "test-cafe", "192.0.2.7")
        .await
        .unwrap();
    assert!(other.external_id.starts_with("PUB-"));
    let made: i64 =
        sqlx::query_scalar("select count(*) from passes_master where external_id like 'PUB-%'")
            .fetch_one(&server.db.owner)
            .await
            .unwrap();
    assert_eq!(made, 61);
}

#[tokio::test]
async fn the_programs_ceiling_stops_sign_ups_spread_over_many_addresses() {
    let server = TestServer::start().await;
    open_sign_up(&server, "test-cafe").await;
    sqlx::query("update programs set sign_ups_per_program_hour = 10 where id = $1")
        .bind(server.db.program_id)
        .execute(&server.db.owner)
        .await
        .unwrap();
    // Fifteen addresses at once, one sign-up each.
    let barrier = Arc::new(Barrier::new(15));
    let handles: Vec<_> = (0..15)
        .map(|n| {
            let (barrier, pool) = (barrier.clone(), server.db.app.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                app::enrolment::db::enrol_publicly(&pool, "test-cafe", &format!("203.0.113.{n}"))
                    .await
            })
        })
        .collect();
    let mut joined = 0;
    for handle in handles {
        match handle.await.unwrap() {
            Ok(_) => joined += 1,
            Err(LoyaltyError::Throttled { retry_after_secs }) => {
                assert!((1..=3600).contains(&retry_after_secs), "{retry_after_secs}");
            }
            Err(err) => panic!("{err:?}"),
        }
    }
    assert_eq!(
        joined, 10,
        "fifteen addresses at once, ten through the ceiling"
    );
    let made: i64 =
        sqlx::query_scalar("select count(*) from passes_master where external_id like 'PUB-%'")
            .fetch_one(&server.db.owner)
            .await
            .unwrap();
    assert_eq!(made, 10);
}

#[tokio::test]
async fn a_burst_of_sign_ups_from_one_address_gets_exactly_its_allowance_through() {
    let server = TestServer::start().await;
    open_sign_up(&server, "test-cafe").await;
    let tasks = 80;
    let barrier = Arc::new(Barrier::new(tasks));
    let mut handles = Vec::new();
    for _ in 0..tasks {
        let barrier = barrier.clone();
        let pool = server.db.app.clone();
        handles.push(tokio::spawn(async move {
            barrier.wait().await;
            app::enrolment::db::enrol_publicly(&pool, "test-cafe", "198.51.100.1").await
        }));
    }
    let mut joined = 0;
    for handle in handles {
        match handle.await.unwrap() {
            Ok(_) => joined += 1,
            Err(LoyaltyError::Throttled { .. }) => {}
            Err(err) => panic!("{err:?}"),
        }
    }
    assert_eq!(joined, 60);
    let made: i64 =
        sqlx::query_scalar("select count(*) from passes_master where external_id like 'PUB-%'")
            .fetch_one(&server.db.owner)
            .await
            .unwrap();
    assert_eq!(made, 60);
}

#[tokio::test]
async fn a_program_without_a_slug_has_no_sign_up_page() {
    let server = TestServer::start().await;
    let (status, body) = page(&server, "/join/test-cafe").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body.contains("Sign-up page not found"), "{body}");
    let (status, err) = refused(join_as_api(&server, "test-cafe").await).await;
    assert_eq!(
        (status, err),
        (StatusCode::NOT_FOUND, LoyaltyError::ProgramNotFound)
    );
    // Closing a page that was open closes it at once.
    open_sign_up(&server, "test-cafe").await;
    assert_eq!(page(&server, "/join/test-cafe").await.0, StatusCode::OK);
    sqlx::query("update programs set public_slug = null")
        .execute(&server.db.owner)
        .await
        .unwrap();
    assert_eq!(
        page(&server, "/join/test-cafe").await.0,
        StatusCode::NOT_FOUND
    );
    let made: i64 = sqlx::query_scalar("select count(*) from passes_master")
        .fetch_one(&server.db.owner)
        .await
        .unwrap();
    assert_eq!(made, 0);
}
