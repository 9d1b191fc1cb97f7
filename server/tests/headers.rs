//! The headers a staff dashboard needs, on every route: a Content-Security-Policy that lets only the app's own
//! scripts run (a rendered page's inline scripts by a nonce of its own) and forbids framing, nosniff, a
//! referrer policy, and HSTS when the server is reached over HTTPS.

use reqwest::header::{
    CONTENT_SECURITY_POLICY, CONTENT_TYPE, HeaderMap, REFERRER_POLICY, STRICT_TRANSPORT_SECURITY,
    X_CONTENT_TYPE_OPTIONS,
};
use server::testkit::{ApiClient, TestServer, TestTls};

/// Every page route of the dashboard with its parameters filled in, then the server's other routes.
fn routes(member: &str) -> Vec<String> {
    let mut paths: Vec<String> = leptos_axum::generate_route_list(app::App)
        .iter()
        .map(|route| {
            route
                .path()
                .replace("{id}/print", &format!("{}/print", uuid::Uuid::new_v4()))
                .replace("{id}", member)
                .replace("{token}", &"0".repeat(64))
                .replace("{slug}", "no-such-program")
        })
        .collect();
    assert!(paths.iter().any(|p| p == "/backups"), "{paths:?}");
    paths.extend(
        [
            "/healthz",
            "/metrics",
            "/api/history.csv",
            app::batches::CSV_PATH,
            "/pkg/loyalty.css",
            "/no-such-page",
        ]
        .map(String::from),
    );
    paths
}

/// The headers every answer must carry, whatever it is.
fn assert_secured(what: &str, headers: &HeaderMap) {
    let policy = headers
        .get(CONTENT_SECURITY_POLICY)
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy in {headers:?}"))
        .to_str()
        .unwrap();
    for directive in [
        "default-src 'self'",
        "script-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ] {
        assert!(
            policy.contains(directive),
            "{what}: {directive} in {policy}"
        );
    }
    assert!(!policy.contains("unsafe-inline"), "{what}: {policy}");
    assert_eq!(headers[X_CONTENT_TYPE_OPTIONS], "nosniff", "{what}");
    assert_eq!(headers[REFERRER_POLICY], "same-origin", "{what}");
}

/// The nonce a page's policy allows, checked against every script element of the page.
fn assert_scripts_carry_the_nonce(what: &str, headers: &HeaderMap, html: &str) -> String {
    let policy = headers[CONTENT_SECURITY_POLICY].to_str().unwrap();
    let nonce = policy
        .split("'nonce-")
        .nth(1)
        .and_then(|rest| rest.split('\'').next())
        .unwrap_or_else(|| panic!("{what}: a page's policy has a nonce: {policy}"))
        .to_owned();
    let scripts: Vec<&str> = html.split("<script").skip(1).collect();
    assert!(!scripts.is_empty(), "{what}: the hydration script");
    for script in scripts {
        let tag = script.split('>').next().unwrap();
        assert!(
            tag.contains(&format!("nonce=\"{nonce}\"")),
            "{what}: <script{tag}> without the page's nonce {nonce}"
        );
    }
    nonce
}

#[tokio::test]
async fn every_route_answers_with_the_security_headers_and_pages_allow_only_their_own_scripts() {
    let server = TestServer::start().await;
    let member = server.db.member(10).await;
    let manager = ApiClient::sign_in(&server, &server.manager).await;
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut nonces = Vec::new();
    for path in routes(&member) {
        // Signed in, as a manager sees it, and without a session (a redirect to sign in, for most).
        let signed_in = manager.get(&path).await;
        let headers = signed_in.headers().clone();
        let status = signed_in.status();
        let is_page = headers
            .get(CONTENT_TYPE)
            .is_some_and(|t| t.to_str().unwrap().starts_with("text/html"));
        let body = signed_in.text().await.unwrap();
        assert_secured(&format!("GET {path} ({status})"), &headers);
        assert!(
            !headers.contains_key(STRICT_TRANSPORT_SECURITY),
            "{path}: plain HTTP"
        );
        if is_page && body.contains("<script") {
            nonces.push(assert_scripts_carry_the_nonce(&path, &headers, &body));
        }
        let outside = anonymous
            .get(format!("{}{path}", server.url))
            .send()
            .await
            .unwrap();
        assert_secured(&format!("GET {path} without a session"), outside.headers());
    }
    assert!(nonces.len() >= 10, "{nonces:?}");
    let mut distinct = nonces.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        nonces.len(),
        "each page gets a nonce of its own"
    );

    // Every API endpoint, as a program calls it; sign_out last, since it ends the session.
    let mut endpoints: Vec<&str> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, _)| path)
        .collect();
    endpoints.sort_by_key(|path| (*path == "/api/sign_out", *path));
    assert!(endpoints.contains(&"/api/backups"), "{endpoints:?}");
    for path in endpoints {
        let endpoint = path.trim_start_matches("/api/");
        let answer = manager.change(endpoint, &[]).await;
        assert_secured(
            &format!("POST {path} ({})", answer.status()),
            answer.headers(),
        );
    }
}

#[tokio::test]
async fn over_https_every_answer_also_tells_the_browser_to_stay_on_https() {
    let tls = TestTls::generate();
    let server = TestServer::start_tls(&tls).await;
    let client = tls.client();
    for (method, path) in [
        (reqwest::Method::GET, "/login"),
        (reqwest::Method::GET, "/healthz"),
        (reqwest::Method::GET, "/no-such-page"),
        (reqwest::Method::POST, "/api/me"),
    ] {
        let answer = client
            .request(method.clone(), format!("{}{path}", server.url))
            .send()
            .await
            .unwrap();
        assert_secured(&format!("{method} {path}"), answer.headers());
        assert_eq!(
            answer.headers()[STRICT_TRANSPORT_SECURITY],
            "max-age=31536000",
            "{method} {path}"
        );
    }
}
