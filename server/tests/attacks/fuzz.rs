//! Garbage to every endpoint: arbitrary JSON, forms and values, nested and oversized bodies. Never a 5xx,
//! every refusal in the domain's words, nothing written without a success.

use std::collections::BTreeSet;

use loyalty_core::LoyaltyError;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;

use crate::table::{Fields, case_named, cases};
use crate::world::{Attacker, Csrf, fingerprint, sign_in, world};

/// Requests per endpoint in each fuzzing test. About 20 endpoints: some 1,300 requests a test.
const HTTP_CASES: u32 = 64;

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: HTTP_CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Every field name any endpoint reads, so garbage reaches the server functions' own checks.
const FIELD_NAMES: &[&str] = &[
    "csrf",
    "email",
    "password",
    "external_id",
    "code",
    "points",
    "note",
    "idempotency_key",
    "name",
    "role",
    "from",
    "to",
    "tx_type",
    "member",
    "staff",
    "staff_id",
    "active",
    "current",
    "new",
    "time_zone",
    "cursor",
    "transaction_id",
    "reason",
    "token",
    "slug",
    "id",
    "batch_id",
    "size",
    "reward_id",
    "points_cost",
    "stock",
    "daily_limit",
    "amount",
    "currency",
    "currency_minor_units",
    "earn_points",
    "per_amount",
    "sale_points_cap",
    "welcome_points_counter",
    "welcome_points_signup",
    "multiplier_percent",
    "starts_on",
    "ends_on",
    "tue",
    "starts_at",
    "ends_at",
    "promotion_id",
    "months",
];

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(FIELD_NAMES).prop_map(str::to_owned),
        1 => "\\PC{0,12}",
        1 => "[a-z_]{1,8}\\[[a-z0-9]{0,4}\\]",
    ]
}

/// Text a field might hold: empty, unicode, control characters, numbers too large for any type, long.
fn field_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "\\PC{0,40}",
        any::<String>(),
        "-?[0-9]{1,30}",
        "(CLM|PUB|MBR)-[2-9A-Z]{0,20}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        prop::sample::select(vec![
            "true",
            "null",
            "NaN",
            "-0",
            "1e999",
            "EARN",
            "redeem",
            "clerk",
            "manager",
            "' or 1=1 --",
            "\u{0}",
            "%00",
            "../../etc/passwd",
            "<script>alert(1)</script>",
        ])
        .prop_map(str::to_owned),
        (1usize..70_000).prop_map(|n| "é".repeat(n / 2)),
    ]
}

/// JSON as text, so numbers can be larger than any Rust or JSON library type holds.
#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool(bool),
    Number(String),
    Text(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn render(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::Text(s) => out.push_str(&serde_json::to_string(s).unwrap()),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.render(out);
                }
                out.push(']');
            }
            Json::Object(fields) => {
                out.push('{');
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(name).unwrap());
                    out.push(':');
                    value.render(out);
                }
                out.push('}');
            }
        }
    }
}

fn json_value() -> impl Strategy<Value = Json> {
    let number = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        "-?[1-9][0-9]{18,300}",
        "-?[0-9]\\.[0-9]{1,6}[eE][+-]?[0-9]{1,6}",
        Just("-0".to_owned()),
    ];
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        number.prop_map(Json::Number),
        field_text().prop_map(Json::Text),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::vec((field_name(), inner), 0..6).prop_map(Json::Object),
        ]
    })
}

/// A body that claims to be JSON: mostly objects of fields (so it reaches the server functions), sometimes any
/// value, sometimes not JSON at all.
fn json_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec((field_name(), json_value()), 0..8).prop_map(|fields| {
            let mut out = String::new();
            Json::Object(fields).render(&mut out);
            out.into_bytes()
        }),
        1 => json_value().prop_map(|value| {
            let mut out = String::new();
            value.render(&mut out);
            out.into_bytes()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// A body of any kind: form fields, raw bytes, under any content type.
fn form_body() -> impl Strategy<Value = (&'static str, Vec<u8>)> {
    let content_type = prop::sample::select(vec![
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        "text/plain",
        "multipart/form-data; boundary=zz",
        "application/octet-stream",
        "",
    ]);
    let body = prop_oneof![
        3 => prop::collection::vec((field_name(), field_text()), 0..8)
            .prop_map(|pairs| serde_urlencoded::to_string(pairs).unwrap().into_bytes()),
        1 => "[a-z_%=&+\\[\\]0-9]{0,120}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..120),
    ];
    (content_type, body)
}

/// Sends `body` to every endpoint of the table, `HTTP_CASES` times each, through one server. Garbage is never
/// answered with a 5xx, every refusal is in the domain's words, and nothing is written.
fn fuzz_every_endpoint(body: impl Strategy<Value = (&'static str, Vec<u8>)>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let w = runtime.block_on(world());
    let client = runtime.block_on(sign_in(&w.server, &w.server.manager));
    let baseline = runtime.block_on(fingerprint(&w.server.db, None));
    let mut seen = BTreeSet::new();
    for case in cases() {
        if !seen.insert(case.endpoint) {
            continue;
        }
        runner()
            .run(&body, |(content_type, bytes)| {
                runtime.block_on(async {
                    let mut request = client.request(&case);
                    if !content_type.is_empty() {
                        request = request.header(CONTENT_TYPE, content_type);
                    }
                    let response = request.body(bytes).send().await.unwrap();
                    let status = response.status();
                    let text = response.text().await.unwrap();
                    prop_assert!(!status.is_server_error(), "{status} {text}");
                    if status.is_client_error() {
                        let err = serde_json::from_str::<LoyaltyError>(&text);
                        prop_assert!(err.is_ok(), "{status} {text:?}");
                        prop_assert_eq!(status.as_u16(), err.unwrap().http_status());
                    }
                    // Without the session's token nothing may change.
                    if case.changes {
                        prop_assert!(!status.is_success(), "{status} {text}");
                    }
                    prop_assert_eq!(&fingerprint(&w.server.db, None).await, &baseline);
                    Ok::<(), TestCaseError>(())
                })
            })
            .unwrap_or_else(|e| panic!("/api/{}: {e}", case.endpoint));
    }
    // Garbage did not end the session either.
    let (status, _) = runtime.block_on(client.send(&case_named("me"), &Vec::new(), &Csrf::Session));
    assert_eq!(status, StatusCode::OK);
    runtime.block_on(async move { drop(w) });
}

#[test]
fn arbitrary_json_to_every_endpoint_is_refused_without_a_5xx_and_writes_nothing() {
    fuzz_every_endpoint(json_body().prop_map(|body| ("application/json", body)));
}

#[test]
fn arbitrary_form_bodies_to_every_endpoint_are_refused_without_a_5xx_and_write_nothing() {
    fuzz_every_endpoint(form_body());
}

#[test]
fn arbitrary_values_with_the_sessions_own_token_never_get_a_5xx_or_a_write_without_a_success() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let w = runtime.block_on(world());
    let client = runtime.block_on(sign_in(&w.server, &w.server.manager));
    let values = prop::collection::vec(field_text(), 6);
    for case in cases() {
        // Signing out would end the session the rest runs in; enrolling writes whatever it is sent; a batch
        // of a random valid size is up to 100,000 codes, slow to make and to compare after every request.
        if ["sign_out", "enrol", "create_batch"].contains(&case.endpoint) {
            continue;
        }
        let names: Vec<&str> = (case.fields)(&w.ours).iter().map(|(n, _)| *n).collect();
        let baseline = std::cell::RefCell::new(runtime.block_on(fingerprint(&w.server.db, None)));
        runner()
            .run(&values, |values| {
                runtime.block_on(async {
                    // A URL holds a few kilobytes at most: a GET's values are cut short.
                    let fields: Fields = names
                        .iter()
                        .copied()
                        .zip(values)
                        .map(|(name, value)| match case.get {
                            true => (name, value.chars().take(500).collect()),
                            false => (name, value),
                        })
                        .collect();
                    let (status, text) = client.send(&case, &fields, &Csrf::Session).await;
                    prop_assert!(!status.is_server_error(), "{status} {text}");
                    let now = fingerprint(&w.server.db, None).await;
                    if status.is_success() {
                        *baseline.borrow_mut() = now;
                    } else {
                        let err = serde_json::from_str::<LoyaltyError>(&text);
                        prop_assert!(err.is_ok(), "{status} {text:?}");
                        prop_assert_eq!(&now, &*baseline.borrow(), "{} {}", status, text);
                    }
                    Ok::<(), TestCaseError>(())
                })
            })
            .unwrap_or_else(|e| panic!("/api/{}: {e}", case.endpoint));
    }
    assert_eq!(
        runtime.block_on(w.server.db.invariant_violations()),
        Vec::<String>::new()
    );
    runtime.block_on(async move { drop(w) });
}

#[tokio::test]
async fn deeply_nested_and_oversized_bodies_are_refused_by_every_endpoint() {
    let w = world().await;
    let client = sign_in(&w.server, &w.server.manager).await;
    let before = fingerprint(&w.server.db, None).await;
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let nested_field = format!("{{\"csrf\": \"{}\", \"code\": {}}}", client.csrf, nested);
    let big = "x".repeat(server::MAX_BODY_BYTES + 1);
    let bodies: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "10,000 nested arrays",
            "application/json",
            nested.clone().into_bytes(),
        ),
        (
            "a field of 10,000 nested arrays",
            "application/json",
            nested_field.into_bytes(),
        ),
        (
            "JSON over the limit",
            "application/json",
            format!("{{\"csrf\": \"{}\", \"note\": \"{big}\"}}", client.csrf).into_bytes(),
        ),
        (
            "a form over the limit",
            "application/x-www-form-urlencoded",
            format!("csrf={}&note={big}", client.csrf).into_bytes(),
        ),
        (
            "a body over the limit with no type",
            "",
            big.clone().into_bytes(),
        ),
    ];
    let mut seen = BTreeSet::new();
    for case in cases() {
        if case.get || !seen.insert(case.endpoint) {
            continue;
        }
        for (what, content_type, body) in &bodies {
            let mut request = client.request(&case);
            if !content_type.is_empty() {
                request = request.header(CONTENT_TYPE, *content_type);
            }
            let response = request.body(body.clone()).send().await.unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            assert!(
                status.is_client_error(),
                "{what} to {}: {status} {text}",
                case.endpoint
            );
        }
        // A form key nested 10,000 deep is no more than an unknown field.
        let response = client
            .request(&case)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("{}=1", "a[".repeat(10_000)))
            .send()
            .await
            .unwrap();
        assert!(
            !response.status().is_server_error()
                && !(case.changes && response.status().is_success()),
            "nested form key to {}: {}",
            case.endpoint,
            response.status()
        );
    }
    assert_eq!(fingerprint(&w.server.db, None).await, before);
}

/// A GET's handler reads no body. A body sent with one anyway is read to its end before the answer, so the
/// client, still sending it, gets the answer rather than a closed connection; one over the limit is refused.
#[tokio::test]
async fn a_body_sent_with_a_get_is_read_before_the_answer() {
    let w = world().await;
    let client = sign_in(&w.server, &w.server.manager).await;
    let within = vec![b'x'; server::MAX_BODY_BYTES];
    let over = vec![b'x'; server::MAX_BODY_BYTES + 1];
    let mut seen = BTreeSet::new();
    for case in cases() {
        if !case.get || !seen.insert(case.endpoint) {
            continue;
        }
        for round in 0..10 {
            for body in [&within, &over] {
                let response = client
                    .request(&case)
                    .body(body.clone())
                    .send()
                    .await
                    .unwrap_or_else(|e| {
                        panic!(
                            "{} bytes to {}, round {round}: {e:?}",
                            body.len(),
                            case.endpoint
                        )
                    });
                let status = response.status();
                let text = response.text().await.unwrap();
                assert!(
                    !status.is_server_error(),
                    "{}: {status} {text}",
                    case.endpoint
                );
                if body.len() > server::MAX_BODY_BYTES {
                    let err = serde_json::from_str::<LoyaltyError>(&text);
                    assert!(
                        matches!(err, Ok(LoyaltyError::InvalidInput { .. })),
                        "{}: {status} {text}",
                        case.endpoint
                    );
                }
            }
        }
    }
}
