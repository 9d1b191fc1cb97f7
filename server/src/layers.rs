//! What every request passes through: its session, JSON bodies for the API, and the security headers of its
//! answer.

use app::request::{Outcome, refusal};
use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use loyalty_core::LoyaltyError;
use sqlx::PgPool;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::MAX_BODY_BYTES;

/// The paths of the server functions that check the session in the same statement as their change
/// ([`app::session::SessionKey`]), read from the functions themselves: the server's session layer leaves them alone, so
/// the busiest calls at a counter take one round trip to the database rather than two.
const SESSION_CHECKED_IN_STATEMENT: [&str; 4] = [
    <app::points::Earn as leptos::server_fn::ServerFn>::PATH,
    <app::points::EarnSale as leptos::server_fn::ServerFn>::PATH,
    <app::points::Redeem as leptos::server_fn::ServerFn>::PATH,
    <app::claim::Scan as leptos::server_fn::ServerFn>::PATH,
];

/// Looks the session up once per request and puts the signed-in staff member into the request for the
/// server functions and pages. Pages need a session: without one they lead to sign-in. The browser code, the
/// styles and the health and metrics endpoints hold no member's data: they skip the look-up, and the browser
/// may cache them. The posts in [`SESSION_CHECKED_IN_STATEMENT`] check the session themselves.
pub async fn session(State(pool): State<PgPool>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path.starts_with("/pkg/") || matches!(path, "/healthz" | "/metrics" | "/favicon.ico") {
        return next.run(req).await;
    }
    // The busiest posts check the session in the statement that makes their change.
    let checked_in_statement =
        req.method() == Method::POST && SESSION_CHECKED_IN_STATEMENT.contains(&path);
    let cookie = app::request::session_cookie_in(req.headers()).filter(|_| !checked_in_statement);
    let staff = match cookie {
        Some(cookie) => match app::session::signed_in(&pool, &cookie).await {
            Ok(staff) => Some(staff),
            // A browser asking for a page is shown the sentence; a program gets the JSON error.
            Err(LoyaltyError::Unavailable) if wants_page(&req) => {
                return crate::observe::unavailable_page();
            }
            Err(LoyaltyError::Unavailable) => {
                return refusal(req.extensions().get(), LoyaltyError::Unavailable);
            }
            Err(_) => None,
        },
        None => None,
    };
    let path = req.uri().path();
    let is_page = req.method() == Method::GET
        && !path.starts_with("/api/")
        // Members' own pass pages, public sign-up pages and the wallets' own requests need no staff session.
        && !(path.starts_with("/pass/") || path.starts_with("/join/") || path.starts_with("/wallet/"));
    match (&staff, is_page, path == "/login") {
        (None, true, false) => return Redirect::to("/login").into_response(),
        (Some(_), true, true) => return Redirect::to("/").into_response(),
        _ => {}
    }
    if let Some(staff) = staff {
        req.extensions_mut().insert(staff);
    }
    let mut response = next.run(req).await;
    // Signed-in pages and API answers hold a member's data: no shared cache may keep them.
    response
        .headers_mut()
        .entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    response
}

fn wants_page(req: &Request) -> bool {
    req.method() == Method::GET && !req.uri().path().starts_with("/api/")
}

/// How far past [`MAX_BODY_BYTES`] a refused body is still read.
const READ_PAST_LIMIT: usize = 1024 * 1024;

/// Every API post's body is read here, within [`MAX_BODY_BYTES`], before a server function sees it: a larger
/// one, or one that is not text, is refused in the domain's words (the server functions would answer either
/// with a 500). A flat JSON object becomes the same form fields as a form post.
///
/// Any other request's body is read to its end too (and dropped when it is too large), before anything answers:
/// a handler that answers without reading a body, as every GET does, would otherwise close the connection on a
/// client still sending it, and the client would lose the answer.
pub async fn api_body(req: Request, next: Next) -> Response {
    if req.method() != Method::POST || !req.uri().path().starts_with("/api/") {
        return read_whole_body(req, next).await;
    }
    let is_json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let outcome = req.extensions().get::<Outcome>().cloned();
    let (mut parts, body) = req.into_parts();
    let refuse = |field: Option<String>, message: &str| {
        refusal(
            outcome.as_ref(),
            LoyaltyError::InvalidInput {
                field,
                message: message.into(),
            },
        )
    };
    let too_large = || refuse(None, TOO_LARGE);
    let bytes = match read_body(body, outcome.as_ref()).await {
        Ok(bytes) => bytes,
        Err(refused) => return refused,
    };
    let body = if is_json {
        let form = match json_object_to_form(&bytes) {
            Ok(form) => form,
            Err((field, message)) => return refuse(field, &message),
        };
        // The form is read under the same limit, and percent-encoding makes text up to three times longer.
        if form.len() > MAX_BODY_BYTES {
            return too_large();
        }
        parts.headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded"),
        );
        parts.headers.remove(header::CONTENT_LENGTH);
        Body::from(form)
    } else if std::str::from_utf8(&bytes).is_err() {
        return refuse(None, "The request body is not text.");
    } else {
        Body::from(bytes)
    };
    let mut response = next.run(Request::from_parts(parts, body)).await;
    // Every server function records its outcome as it answers: one that recorded none never ran, because its
    // arguments could not be read, which its framework answers with a 500 carrying our INVALID_INPUT.
    if let Some(outcome) = outcome.as_ref().filter(|o| o.get().is_none())
        && is_server_fn_error(&response)
    {
        let unreadable = LoyaltyError::InvalidInput {
            field: None,
            message: String::new(),
        };
        outcome.set(unreadable.code());
        if let Ok(status) = StatusCode::from_u16(unreadable.http_status()) {
            *response.status_mut() = status;
        }
    }
    response
}

/// The answer a server function's framework gives when the function fails or never runs.
fn is_server_fn_error(response: &Response) -> bool {
    response.status() == StatusCode::INTERNAL_SERVER_ERROR
        && response
            .headers()
            .contains_key(leptos::server_fn::error::SERVER_FN_ERROR_HEADER)
}

/// The fields of a flat JSON object as a form; or the field at fault, if any, and what is wrong.
fn json_object_to_form(bytes: &[u8]) -> Result<String, (Option<String>, String)> {
    let value: serde_json::Value = serde_json::from_slice(bytes)
        .map_err(|_| (None, "The request body is not valid JSON.".to_owned()))?;
    let serde_json::Value::Object(fields) = value else {
        return Err((
            None,
            "The request body must be a JSON object of fields.".into(),
        ));
    };
    let mut pairs = Vec::with_capacity(fields.len());
    for (name, value) in fields {
        let text = match value {
            serde_json::Value::Null => continue,
            serde_json::Value::String(s) => s,
            serde_json::Value::Number(n) => n.to_string(),
            serde_json::Value::Bool(b) => b.to_string(),
            _ => {
                let message =
                    format!("The field {name:?} must be a string, a number or a boolean.");
                return Err((Some(name), message));
            }
        };
        pairs.push((name, text));
    }
    serde_urlencoded::to_string(pairs)
        .map_err(|_| (None, "The request could not be read.".to_owned()))
}

/// The policy for answers that are not a rendered page (a page sets its own, with the nonce of its inline
/// scripts): nothing inline runs, and no other site frames the dashboard.
pub fn content_security_policy() -> SetResponseHeaderLayer<HeaderValue> {
    let policy = app::security::content_security_policy(None);
    SetResponseHeaderLayer::if_not_present(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_str(&policy).expect("the policy is a valid header value"),
    )
}

/// A browser takes every answer for the type it says it is, never for a script or a page it guessed.
pub fn no_sniffing() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    )
}

/// Addresses hold member ids (`/member/MBR-...`): they go with a link only to the dashboard itself, whose form
/// posts are answered by a redirect back to the page that sent them.
pub fn referrer_policy() -> SetResponseHeaderLayer<HeaderValue> {
    SetResponseHeaderLayer::overriding(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    )
}

/// Reached over HTTPS, the browser is told to come back over HTTPS only, for a year.
pub fn strict_transport_security(
    https: bool,
) -> SetResponseHeaderLayer<impl FnMut(&Response) -> Option<HeaderValue> + Clone> {
    let value = https.then(|| HeaderValue::from_static("max-age=31536000"));
    SetResponseHeaderLayer::if_not_present(
        header::STRICT_TRANSPORT_SECURITY,
        move |_: &Response| value.clone(),
    )
}

const TOO_LARGE: &str = "The request is too large.";

/// Reads a body to its end within [`MAX_BODY_BYTES`], or the refusal to answer. A body somewhat over the limit is
/// still read to its end, so the refusal reaches a client that is still sending and the connection can carry its
/// next request; a far larger one is cut off and the connection closed.
async fn read_body(body: Body, outcome: Option<&Outcome>) -> Result<axum::body::Bytes, Response> {
    // Cut off far past the limit: the connection cannot carry another request.
    let cut_off = match to_bytes(body, MAX_BODY_BYTES + READ_PAST_LIMIT).await {
        Ok(bytes) if bytes.len() <= MAX_BODY_BYTES => return Ok(bytes),
        Ok(_) => false,
        Err(_) => true,
    };
    let too_large = LoyaltyError::InvalidInput {
        field: None,
        message: TOO_LARGE.into(),
    };
    let mut response = refusal(outcome, too_large);
    if cut_off {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    Err(response)
}

/// Reads a request's whole body before the request goes on, so whatever answers it, early or late, answers a
/// client that has finished sending.
async fn read_whole_body(req: Request, next: Next) -> Response {
    let (parts, body) = req.into_parts();
    let outcome = parts.extensions.get::<Outcome>().cloned();
    match read_body(body, outcome.as_ref()).await {
        Ok(bytes) => {
            next.run(Request::from_parts(parts, Body::from(bytes)))
                .await
        }
        Err(refused) => refused,
    }
}
