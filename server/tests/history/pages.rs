//! The history over HTTP: the API for managers only, and the page, which works without JavaScript.

use std::collections::BTreeMap;

use chrono::{DateTime, SecondsFormat, Utc};
use loyalty_core::LoyaltyError;
use loyalty_core::wire::{HistorySummary, HistoryTotals, TxType};
use server::testkit::{TestServer, Till};

use crate::{ids, last_id, transact};

/// One exchange with the running server, redirects not followed: status, headers, body.
async fn http(
    server: &TestServer,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, BTreeMap<String, String>, Vec<u8>) {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut request = client
        .request(method.parse().unwrap(), format!("{}{path}", server.url))
        .body(body.to_owned());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    (status, headers, response.bytes().await.unwrap().to_vec())
}

fn error_of(body: &[u8]) -> LoyaltyError {
    serde_json::from_slice(body)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(body)))
}

#[tokio::test]
async fn over_http_the_history_the_void_and_the_csv_are_for_managers_only() {
    let server = TestServer::start().await;
    let (addr, db) = (&server, &server.db);
    let manager = Till::sign_in(db, &server.manager).await;
    let clerk = Till::sign_in(db, &server.clerk).await;
    let (manager_cookie, clerk_cookie) = (manager.cookie.clone(), clerk.cookie.clone());
    let member = db.member(100).await;
    let target = last_id(db).await;
    let form = ("Content-Type", "application/x-www-form-urlencoded");
    let json = ("Accept", "application/json");
    let void_body =
        |csrf: &str, reason: &str| format!("csrf={csrf}&transaction_id={target}&reason={reason}");

    // Nobody signed in; a clerk.
    for (cookie, status, expected) in [
        (None, 401, LoyaltyError::NotSignedIn),
        (Some(clerk_cookie.as_str()), 403, LoyaltyError::ManagersOnly),
    ] {
        let mut headers = vec![form, json];
        if let Some(cookie) = cookie {
            headers.push(("Cookie", cookie));
        }
        let (got, _, body) = http(addr, "POST", "/api/history", &headers, "").await;
        assert_eq!((got, error_of(&body)), (status, expected.clone()));
        let (got, _, body) = http(addr, "POST", "/api/history_summary", &headers, "").await;
        assert_eq!((got, error_of(&body)), (status, expected.clone()));
        let csrf = clerk.csrf.clone();
        let (got, _, body) =
            http(addr, "POST", "/api/void", &headers, &void_body(&csrf, "x")).await;
        assert_eq!((got, error_of(&body)), (status, expected.clone()));
        let (got, _, body) = http(addr, "GET", "/api/history.csv", &headers, "").await;
        assert_eq!((got, error_of(&body)), (status, expected.clone()));
    }
    assert_eq!(db.balance(&member).await, 100);

    // A manager reads the history.
    let headers = [form, json, ("Cookie", manager_cookie.as_str())];
    let (status, _, body) = http(addr, "POST", "/api/history", &headers, "tx_type=EARN").await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let page: loyalty_core::wire::HistoryPage = serde_json::from_slice(&body).unwrap();
    assert_eq!(ids(&page.entries), vec![target]);
    let (status, _, body) = http(
        addr,
        "POST",
        "/api/history_summary",
        &headers,
        "tx_type=EARN",
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let summary: HistorySummary = serde_json::from_slice(&body).unwrap();
    assert_eq!(
        summary.totals,
        HistoryTotals {
            transactions: 1,
            earned: 100,
            redeemed: 0,
            expired: 0,
        }
    );
    assert_eq!(summary.daily.len(), 1);
    for endpoint in ["/api/history", "/api/history_summary"] {
        let (status, _, body) = http(addr, "POST", endpoint, &headers, "from=yesterday").await;
        assert_eq!(status, 422, "{endpoint}");
        assert_eq!(
            error_of(&body).to_string(),
            "Enter the start date as year-month-day, like 2026-11-27."
        );
    }

    // A void needs the session's CSRF token and a reason.
    let (status, _, body) = http(
        addr,
        "POST",
        "/api/void",
        &headers,
        &void_body("forged", "typo"),
    )
    .await;
    assert_eq!((status, error_of(&body)), (403, LoyaltyError::CsrfRejected));
    let csrf = manager.csrf.clone();
    let (status, _, body) = http(
        addr,
        "POST",
        "/api/void",
        &headers,
        &void_body(&csrf, "+++"),
    )
    .await;
    assert_eq!(status, 422);
    assert_eq!(
        error_of(&body).to_string(),
        "Give a reason for the void, up to 400 characters."
    );
    assert_eq!(db.balance(&member).await, 100);

    // A plain HTML form (no JavaScript) is sent back to the page it came from, with the outcome.
    let referer = format!("{}/history?type=EARN&cursor=1_2", server.url);
    let html_form = [
        form,
        ("Accept", "text/html"),
        ("Cookie", manager_cookie.as_str()),
        ("Referer", referer.as_str()),
    ];
    let (status, headers_back, _) = http(
        addr,
        "POST",
        "/api/void",
        &html_form,
        &void_body(&csrf, "rang+up+twice"),
    )
    .await;
    assert_eq!(status, 302);
    assert_eq!(
        headers_back["location"],
        format!("/history?type=EARN&cursor=1_2&voided={target}")
    );
    assert_eq!(db.balance(&member).await, 0);
    let (status, headers_back, _) = http(
        addr,
        "POST",
        "/api/void",
        &html_form,
        &void_body(&csrf, "again"),
    )
    .await;
    assert_eq!(status, 302);
    assert_eq!(
        headers_back["location"],
        "/history?type=EARN&cursor=1_2&void_error=ALREADY_VOIDED"
    );

    // And the export, streamed.
    let (status, headers_back, body) = http(
        addr,
        "GET",
        "/api/history.csv?type=REDEEM&from=&member=",
        &[("Cookie", manager_cookie.as_str())],
        "",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        headers_back["content-disposition"],
        "attachment; filename=\"history.csv\""
    );
    assert_eq!(headers_back["transfer-encoding"], "chunked");
    let records: Vec<csv::StringRecord> = csv::Reader::from_reader(body.as_slice())
        .records()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(records.len(), 1);
    assert_eq!(&records[0][3], "REDEEM");
    assert_eq!(&records[0][8], target.to_string());
    assert_eq!(
        &records[0][1],
        DateTime::parse_from_rfc3339(&records[0][1])
            .unwrap()
            .with_timezone(&Utc)
            .to_rfc3339_opts(SecondsFormat::Micros, true)
    );
}

/// The page as a browser without JavaScript gets it.
async fn page(addr: &TestServer, path: &str, cookie: &str) -> String {
    page_with_status(addr, path, cookie, 200).await
}

/// A page that says an error carries its status too.
async fn page_with_status(addr: &TestServer, path: &str, cookie: &str, expected: u16) -> String {
    let (status, _, body) = http(addr, "GET", path, &[("Cookie", cookie)], "").await;
    assert_eq!(status, expected, "{path}");
    String::from_utf8(body).unwrap()
}

#[tokio::test]
async fn the_history_page_works_without_javascript() {
    let server = TestServer::start().await;
    let (addr, db) = (&server, &server.db);
    let manager = Till::sign_in(db, &server.manager).await;
    let clerk = Till::sign_in(db, &server.clerk).await.cookie;
    let member = db.member(0).await;
    for i in 0..60 {
        transact(&manager, &member, i % 7 + 1, TxType::Earn).await;
    }
    let redeemed = transact(&manager, &member, 3, TxType::Redeem).await;
    let (csrf, manager) = (manager.csrf, manager.cookie);

    let html = page(addr, "/history", &manager).await;
    assert_eq!(
        html.matches("<tr id=\"tx-").count(),
        50,
        "a page of 50 rows"
    );
    assert!(
        html.contains(&format!("<tr id=\"tx-{redeemed}\"")),
        "newest first"
    );
    assert!(html.contains("<dd>61</dd>"), "the totals count every row");
    assert!(html.contains("<svg"), "the chart");
    assert!(html.contains("Points per day as a table"));
    assert!(
        html.contains(&format!("name=\"csrf\" value=\"{csrf}\"")),
        "each void form carries the token"
    );
    assert!(html.contains("name=\"reason\""));
    assert!(html.contains("href=\"/api/history.csv\""));
    let older = html
        .split("href=\"")
        .filter_map(|rest| rest.split('"').next())
        .find(|href| href.starts_with("/history?cursor="))
        .expect("an Older link")
        .replace("&amp;", "&");
    let html = page(addr, &older, &manager).await;
    assert_eq!(html.matches("<tr id=\"tx-").count(), 11, "the rest");
    assert!(
        html.contains("<dd>61</dd>"),
        "the totals are the filter's, on every page"
    );
    assert!(!html.contains("rel=\"next\""), "no page after the last");

    // Filters travel in the address, into the form, the links and the export.
    let html = page(
        addr,
        &format!("/history?type=REDEEM&member={}", member.to_lowercase()),
        &manager,
    )
    .await;
    assert_eq!(html.matches("<tr id=\"tx-").count(), 1);
    assert!(html.contains(&format!(
        "href=\"/api/history.csv?type=REDEEM&amp;member={}\"",
        member.to_lowercase()
    )));
    assert!(html.contains("<option value=\"REDEEM\" selected"));

    // A void's outcome, as the plain form post leaves it in the address.
    let html = page(addr, &format!("/history?voided={redeemed}"), &manager).await;
    assert!(html.contains(&format!("Transaction #{redeemed} was voided.")));
    let html = page(
        addr,
        "/history?void_error=INSUFFICIENT_FUNDS&balance=10",
        &manager,
    )
    .await;
    assert!(html.contains("Not enough points: the balance is 10 points."));

    // Bad input and the wrong role are said in words.
    let html = page_with_status(
        addr,
        "/history?from=2026-03-02&to=2026-03-01",
        &manager,
        422,
    )
    .await;
    assert!(html.contains("The start date is after the end date."));
    let html = page_with_status(addr, "/history", &clerk, 403).await;
    assert!(html.contains("This page is for managers."));
    assert!(!html.contains("<tr id=\"tx-"));
}
