//! What an operator sees: /healthz, /metrics by route and outcome, request ids, and the log lines.

use reqwest::StatusCode;
use reqwest::header::{ACCEPT, COOKIE};
use server::testkit::{ApiClient, ServerProcess, TestDb, TestServer};

async fn metrics(url: &str) -> String {
    let response = reqwest::get(format!("{url}/metrics")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"].to_str().unwrap();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "{content_type}"
    );
    response.text().await.unwrap()
}

/// The value of the sample whose line starts with `series` (name and labels, exactly as exposed).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
}

#[tokio::test]
async fn healthz_says_ok_while_the_database_answers() {
    let server = TestServer::start().await;
    let response = reqwest::get(format!("{}/healthz", server.url))
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.text().await.unwrap(), "ok\n");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_api_outcomes_by_error_code() {
    let server = TestServer::start().await;
    // A manager's adjustments: points typed by hand, with a reason.
    let staff = ApiClient::sign_in(&server, &server.manager).await;
    let member = server.db.member(10).await;

    let earned = staff
        .change(
            "earn",
            &[
                ("external_id", &member),
                ("points", "5"),
                ("note", "observed"),
                ("idempotency_key", "obs-earn-1"),
            ],
        )
        .await;
    assert_eq!(earned.status(), StatusCode::OK);
    let refused = staff
        .change(
            "redeem",
            &[
                ("external_id", &member),
                ("points", "500"),
                ("note", "observed"),
                ("idempotency_key", "obs-redeem-1"),
            ],
        )
        .await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The same refusal as a plain HTML form post: a redirect back to the form, counted by its code all the same.
    let form_post = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(format!("{}/api/redeem", server.url))
        .header(COOKIE, &staff.cookie)
        .header(ACCEPT, "text/html")
        .header("referer", format!("{}/member/{member}", server.url))
        .form(&[
            ("csrf", staff.csrf.as_str()),
            ("external_id", &member),
            ("points", "500"),
            ("note", "observed"),
            ("idempotency_key", "obs-redeem-2"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        form_post.status().is_redirection(),
        "{}",
        form_post.status()
    );
    let page = staff.get(&format!("/member/{member}")).await;
    assert_eq!(page.status(), StatusCode::OK);
    let unknown = staff.change("no_such_function_9f3a", &[]).await;
    assert!(unknown.status().is_client_error() || unknown.status().is_server_error());

    let text = metrics(&server.url).await;
    let expect = |series: &str, value: f64| {
        assert_eq!(sample(&text, series), Some(value), "{series} in\n{text}");
    };
    expect(
        r#"loyalty_http_requests_total{method="POST",route="/api/earn",status="2xx"}"#,
        1.0,
    );
    expect(
        r#"loyalty_http_requests_total{method="POST",route="/api/redeem",status="4xx"}"#,
        1.0,
    );
    expect(
        r#"loyalty_http_requests_total{method="POST",route="/api/redeem",status="3xx"}"#,
        1.0,
    );
    expect(
        r#"loyalty_http_requests_total{method="GET",route="/member/{id}",status="2xx"}"#,
        1.0,
    );
    expect(
        r#"loyalty_http_request_duration_seconds_count{method="POST",route="/api/earn"}"#,
        1.0,
    );
    expect(
        r#"loyalty_http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/api/earn"}"#,
        1.0,
    );
    expect(
        r#"loyalty_rpc_outcomes_total{endpoint="/api/earn",code="ok"}"#,
        1.0,
    );
    expect(
        r#"loyalty_rpc_outcomes_total{endpoint="/api/redeem",code="INSUFFICIENT_FUNDS"}"#,
        2.0,
    );
    expect(
        r#"loyalty_rpc_outcomes_total{endpoint="/api/sign_in",code="ok"}"#,
        1.0,
    );
    // Labels never carry what the client chose: no member id, no made-up endpoint name.
    assert!(!text.contains(&member), "{text}");
    assert!(!text.contains("no_such_function"), "{text}");
    assert!(text.contains(r#"route="/api/{*name}""#), "{text}");
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_clients_own_is_kept() {
    let server = TestServer::start().await;
    let http = reqwest::Client::new();
    let mut seen = Vec::new();
    for path in ["/healthz", "/login", "/metrics"] {
        let response = http
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .unwrap();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        uuid::Uuid::parse_str(&id).unwrap_or_else(|e| panic!("{path}: {id}: {e}"));
        seen.push(id);
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 3, "each request has its own id");

    let refused = http
        .post(format!("{}/api/me", server.url))
        .header("x-request-id", "till-7-req-42")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(refused.headers()["x-request-id"], "till-7-req-42");
}

#[tokio::test]
async fn json_log_lines_carry_the_request_id_method_route_status_and_latency() {
    let db = TestDb::new().await;
    let mut server = ServerProcess::start(
        env!("CARGO_BIN_EXE_server"),
        &db.owner_url(),
        &[("LOYALTY_LOG_FORMAT", "json"), ("RUST_LOG", "info")],
    )
    .await;
    let response = reqwest::Client::new()
        .post(format!("{}/api/me", server.url))
        .header("x-request-id", "log-test-5b1c")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    // An answer that went through, quickly, is counted by the metrics and logged at debug only.
    let fine = reqwest::Client::new()
        .get(format!("{}/healthz", server.url))
        .header("x-request-id", "log-test-quiet")
        .send()
        .await
        .unwrap();
    assert_eq!(fine.status(), StatusCode::OK);
    // The line is written when the answer is; the process is ended so that everything is on disk.
    server.kill();
    let logs = server.logs();
    let line = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .find(|line| line["span"]["request_id"] == "log-test-5b1c")
        .unwrap_or_else(|| panic!("no JSON log line for the request in\n{logs}"));
    let span = &line["span"];
    assert_eq!(span["method"], "POST", "{line}");
    assert_eq!(span["route"], "/api/me", "{line}");
    assert_eq!(span["status"], 401, "{line}");
    assert!(span["latency_ms"].is_u64(), "{line}");
    assert_eq!(line["level"], "INFO", "{line}");
    assert!(!logs.contains("log-test-quiet"), "{logs}");
}
