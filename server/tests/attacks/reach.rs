//! Staff of one program reach nothing of another's, a clerk nothing of a manager's, and a change without the
//! session's own CSRF token nothing at all.

use loyalty_core::LoyaltyError;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, ORIGIN};
use server::testkit::ApiClient;

use crate::table::{Access, Case, Theirs, case_named, cases};
use crate::world::{Attacker, Csrf, error_of, fingerprint, http, sign_in, world};

#[tokio::test]
async fn staff_of_one_program_reach_nothing_of_another_through_any_endpoint() {
    let w = world().await;
    let mut checked = 0;
    for (role, who) in w.staff() {
        for case in cases().iter().filter(|c| c.access != Access::Anyone) {
            // A fresh session each time, so signing out or a refusal cannot spoil the next request.
            let client = sign_in(&w.server, who).await;
            let before = fingerprint(&w.server.db, Some(w.rival)).await;
            let fields = (case.fields)(&w.theirs);
            let (status, body) = client.send(case, &fields, &Csrf::Session).await;
            let what = format!("our {role} → {} {fields:?}", case.endpoint);
            assert!(!status.is_server_error(), "{what}: {status} {body}");
            assert_eq!(
                w.leaked(&body, &fields),
                Vec::<&String>::new(),
                "{what}: {body}"
            );
            let expected = match (case.access, role) {
                (Access::Manager, "clerk") => Theirs::Refused(case.clerk_refusal()),
                _ => case.theirs,
            };
            match expected {
                Theirs::Refused(code) => {
                    assert_eq!(error_of(status, &body, &what).code(), code, "{what}");
                }
                Theirs::OwnProgramOnly => assert!(status.is_success(), "{what}: {status} {body}"),
            }
            assert_eq!(
                fingerprint(&w.server.db, Some(w.rival)).await,
                before,
                "{what} changed the rival's data"
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        2 * cases()
            .iter()
            .filter(|c| c.access != Access::Anyone)
            .count()
    );
    // The rival's staff still work as before.
    let (status, _) = w
        .rival_clerk
        .send(&case_named("me"), &Vec::new(), &Csrf::Session)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_session_cookie_relabelled_with_another_program_signs_nobody_in() {
    let w = world().await;
    let client = sign_in(&w.server, &w.server.manager).await;
    let (_, token) = client.cookie.split_once('.').unwrap();
    let relabelled = ApiClient {
        cookie: format!("loyalty_session={}.{}", w.rival, token),
        http: http(),
        url: client.url.clone(),
        csrf: client.csrf.clone(),
    };
    let before = fingerprint(&w.server.db, None).await;
    for case in cases().iter().filter(|c| c.access != Access::Anyone) {
        let fields = (case.fields)(&w.theirs);
        let (status, body) = relabelled.send(case, &fields, &Csrf::Session).await;
        let what = format!("{} {fields:?}", case.endpoint);
        assert_eq!(
            error_of(status, &body, &what),
            LoyaltyError::NotSignedIn,
            "{what}"
        );
    }
    assert_eq!(fingerprint(&w.server.db, None).await, before);
}

#[tokio::test]
async fn a_clerk_is_refused_every_manager_endpoint_even_for_their_own_programs_data() {
    let w = world().await;
    let before = fingerprint(&w.server.db, None).await;
    let manager_cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| c.access == Access::Manager)
        .collect();
    assert!(manager_cases.len() >= 5);
    for case in &manager_cases {
        let clerk = sign_in(&w.server, &w.server.clerk).await;
        let fields = (case.fields)(&w.ours);
        let (status, body) = clerk.send(case, &fields, &Csrf::Session).await;
        let what = format!("clerk → {} {fields:?}", case.endpoint);
        assert_eq!(
            error_of(status, &body, &what).code(),
            case.clerk_refusal(),
            "{what}"
        );
    }
    // Sign-ins write sessions; nothing else may change.
    let after = fingerprint(&w.server.db, None).await;
    let changed: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b != a)
        .map(|(b, _)| b.0.as_str())
        .collect();
    assert_eq!(changed, vec!["staff_sessions"]);
}

#[tokio::test]
async fn every_change_without_the_sessions_csrf_token_is_refused_and_writes_nothing() {
    let w = world().await;
    let changing: Vec<Case> = cases().into_iter().filter(|c| c.changes).collect();
    assert!(changing.len() >= 8);
    for case in &changing {
        let who = match case.access {
            Access::Manager => &w.server.manager,
            _ => &w.server.clerk,
        };
        let client = sign_in(&w.server, who).await;
        // A token that is valid, but for another session of the same person.
        let other = sign_in(&w.server, who).await;
        let fields = (case.fields)(&w.ours);
        let before = fingerprint(&w.server.db, None).await;
        let wrong = [
            String::new(),
            "0".repeat(32),
            other.csrf.clone(),
            w.rival_clerk.csrf.clone(),
            client.csrf.to_uppercase(),
            format!("{} ", client.csrf),
            client.csrf[..31].to_owned(),
        ];
        for token in wrong {
            let (status, body) = client
                .send(case, &fields, &Csrf::Given(token.clone()))
                .await;
            let what = format!("{} with csrf {token:?}", case.endpoint);
            assert_eq!(
                error_of(status, &body, &what),
                LoyaltyError::CsrfRejected,
                "{what}"
            );
        }
        // With no token at all the request is not even understood.
        let (status, body) = client.send(case, &fields, &Csrf::Absent).await;
        let what = format!("{} with no csrf field", case.endpoint);
        let err = error_of(status, &body, &what);
        assert!(
            matches!(
                err,
                LoyaltyError::CsrfRejected | LoyaltyError::InvalidInput { .. }
            ),
            "{what}: {err:?}"
        );
        // A cross-site form post: the browser's own form submission from another site, cookie and all. It is
        // refused, or sent back to where it came from with the error.
        let response = client
            .request(case)
            .header(ORIGIN, "https://evil.example")
            .header(ACCEPT, "text/html")
            .form(&fields)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(
            status.is_client_error() || status.is_redirection(),
            "cross-site form post to {}: {status} {body}",
            case.endpoint
        );
        assert_eq!(
            fingerprint(&w.server.db, None).await,
            before,
            "{} wrote without its token",
            case.endpoint
        );
        // The refusals did not end the session.
        let (status, _) = client
            .send(&case_named("me"), &Vec::new(), &Csrf::Session)
            .await;
        assert_eq!(status, StatusCode::OK, "{}", case.endpoint);
    }
}

#[tokio::test]
async fn public_endpoints_answer_a_stranger_as_the_table_says() {
    let w = world().await;
    // A client with no session: its cookie names nobody.
    let stranger = ApiClient {
        http: http(),
        url: w.server.url.clone(),
        cookie: "loyalty_session=none".into(),
        csrf: String::new(),
    };
    for case in cases().iter().filter(|c| c.access == Access::Anyone) {
        let fields = (case.fields)(&w.theirs);
        let (status, body) = stranger.send(case, &fields, &Csrf::Absent).await;
        let what = format!("stranger → {} {fields:?}", case.endpoint);
        match case.theirs {
            Theirs::Refused(code) => assert_eq!(error_of(status, &body, &what).code(), code),
            Theirs::OwnProgramOnly => assert!(status.is_success(), "{what}: {status} {body}"),
        }
    }
}

#[tokio::test]
async fn a_cross_site_public_sign_up_is_refused_and_makes_no_pass() {
    let w = world().await;
    sqlx::query("update programs set public_slug = 'our-shop' where id = $1")
        .bind(w.server.db.program_id)
        .execute(&w.server.db.owner)
        .await
        .unwrap();
    let before = fingerprint(&w.server.db, None).await;
    let response = http()
        .post(format!("{}/api/join", w.server.url))
        .header(ORIGIN, "https://evil.example")
        .form(&[("slug", "our-shop")])
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(
        error_of(status, &body, "cross-site join"),
        LoyaltyError::CsrfRejected
    );
    assert_eq!(fingerprint(&w.server.db, None).await, before);
    // The same sign-up from the shop's own page goes through.
    let response = http()
        .post(format!("{}/api/join", w.server.url))
        .header(ORIGIN, w.server.url.clone())
        .form(&[("slug", "our-shop")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
