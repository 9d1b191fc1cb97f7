//! What a server function knows of its request: the database pools, the signed-in staff member and their CSRF
//! token, the client's address and origin, the session cookie, how a plain form post is answered, and the
//! outcome the server's metrics and logs read.

use std::sync::{Arc, OnceLock};

use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use leptos::prelude::*;
use loyalty_core::wire::Role;
use loyalty_core::{LoyaltyError, Result};
use sqlx::PgPool;
use subtle::ConstantTimeEq;

use crate::db::CounterPool;
use crate::session::{MAX_HOURS, SESSION_COOKIE, SessionKey, Staff};

/// The database pool the server provides to every request.
pub fn pool() -> Result<PgPool> {
    use_context::<PgPool>().ok_or(LoyaltyError::Internal)
}

/// The connections the counter's changes run on, which the server provides to every request.
pub fn counter_pool() -> Result<CounterPool> {
    use_context::<CounterPool>().ok_or(LoyaltyError::Internal)
}

/// The server's key for contacts' digests, which the server provides to every request.
pub fn contact_key() -> Result<crate::contacts::db::ContactKey> {
    use_context::<crate::contacts::db::ContactKey>().ok_or(LoyaltyError::Internal)
}

fn parts() -> Result<Parts> {
    use_context::<Parts>().ok_or(LoyaltyError::Internal)
}

/// The signed-in staff member, looked up once per request by the server's session layer.
pub fn current_staff() -> Result<Staff> {
    parts()?
        .extensions
        .get::<Staff>()
        .cloned()
        .ok_or(LoyaltyError::NotSignedIn)
}

/// The request's session cookie, unchecked: for a change that checks it in its own statement.
pub fn session_key() -> Result<SessionKey> {
    session_cookie()
        .as_deref()
        .and_then(SessionKey::from_cookie)
        .ok_or(LoyaltyError::NotSignedIn)
}

/// The signed-in staff member, for a request that changes something: its CSRF token must match the session's.
pub fn staff_for_change(csrf: &str) -> Result<Staff> {
    check_csrf(current_staff()?, csrf)
}

/// The CSRF check of every post the session layer looked up, in constant time. The counter's posts compare the
/// tokens in their own statement instead ([`SessionKey::check`] and `in_session!`).
fn check_csrf(staff: Staff, csrf: &str) -> Result<Staff> {
    if bool::from(csrf.as_bytes().ct_eq(staff.csrf_token.as_bytes())) {
        Ok(staff)
    } else {
        Err(LoyaltyError::CsrfRejected)
    }
}

/// The staff member, if they are a manager.
pub fn manager(staff: Staff) -> Result<Staff> {
    match staff.role {
        Role::Manager => Ok(staff),
        Role::Clerk => Err(LoyaltyError::ManagersOnly),
    }
}

/// True for a plain HTML form post (no JavaScript), which expects a redirect rather than JSON.
pub fn is_form_post() -> bool {
    parts().is_ok_and(|p| {
        p.headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/html"))
    })
}

/// Sends a plain form post on to `path`; a JavaScript caller gets the JSON answer and navigates itself.
pub fn redirect_form_post(path: &str) {
    if is_form_post() {
        leptos_axum::redirect(path);
    }
}

/// How an API call ended: `ok`, or the code of the error it was refused with. The server puts one into every
/// request and reads it for its metrics and logs; whoever answers the call sets it, once.
#[derive(Debug, Clone, Default)]
pub struct Outcome(Arc<OnceLock<&'static str>>);

impl Outcome {
    pub const OK: &'static str = "ok";

    /// Records the outcome, also in the request's log line; the first one recorded stands.
    pub fn set(&self, code: &'static str) {
        if self.0.set(code).is_ok() {
            tracing::Span::current().record("outcome", code);
        }
    }

    pub fn get(&self) -> Option<&'static str> {
        self.0.get().copied()
    }
}

/// Ends a server function: records its outcome for the server and gives a refusal its HTTP status
/// ([`LoyaltyError::http_status`]). A plain form post keeps its redirect back to the form, which shows the error.
pub fn answer<T>(result: Result<T>) -> Result<T> {
    if let Some(outcome) = parts()
        .ok()
        .and_then(|p| p.extensions.get::<Outcome>().cloned())
    {
        outcome.set(
            result
                .as_ref()
                .map_or_else(LoyaltyError::code, |_| Outcome::OK),
        );
    }
    if let Err(err) = &result
        && !is_form_post()
        && let Some(options) = use_context::<leptos_axum::ResponseOptions>()
    {
        options.set_status(status_of(err));
    }
    result
}

/// An answer refusing a request outside a server function (a layer of the server, a download): the error as
/// JSON with its HTTP status, its code recorded as the outcome.
pub fn refusal(outcome: Option<&Outcome>, err: LoyaltyError) -> axum::response::Response {
    use axum::response::IntoResponse;
    if let Some(outcome) = outcome {
        outcome.set(err.code());
    }
    (status_of(&err), axum::Json(err)).into_response()
}

/// A CSV download's answer: `body` as an attachment named `filename`, which no cache keeps, or the refusal.
pub fn csv_attachment<S>(
    outcome: Option<&Outcome>,
    download: Result<(String, S)>,
) -> axum::response::Response
where
    S: futures::Stream<Item = std::io::Result<Vec<u8>>> + Send + 'static,
{
    use axum::response::IntoResponse;
    match download {
        Ok((filename, body)) => {
            if let Some(outcome) = outcome {
                outcome.set(Outcome::OK);
            }
            let disposition = format!("attachment; filename=\"{filename}\"");
            (
                [
                    (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
                    (header::CONTENT_DISPOSITION, disposition),
                    (header::CACHE_CONTROL, "no-store".to_owned()),
                ],
                axum::body::Body::from_stream(body),
            )
                .into_response()
        }
        Err(err) => refusal(outcome, err),
    }
}

fn status_of(err: &LoyaltyError) -> StatusCode {
    StatusCode::from_u16(err.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

/// The client's address, for throttling.
pub fn client_address() -> String {
    parts()
        .ok()
        .and_then(|p| {
            p.extensions
                .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
                .map(|c| c.0.ip().to_string())
        })
        .unwrap_or_else(|| "unknown".into())
}

/// A browser's cross-site post carries a foreign Origin: refuse it. Programs send no Origin.
pub fn same_origin() -> Result<()> {
    let parts = parts()?;
    let Some(origin) = parts
        .headers
        .get(header::ORIGIN)
        .and_then(|o| o.to_str().ok())
    else {
        return Ok(());
    };
    let host = parts
        .headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
    if origin_host == host {
        Ok(())
    } else {
        Err(LoyaltyError::CsrfRejected)
    }
}

/// The request's session cookie.
pub fn session_cookie() -> Option<String> {
    session_cookie_in(&parts().ok()?.headers)
}

/// The session cookie's value among a request's headers.
pub fn session_cookie_in(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(cookie::Cookie::split_parse)
        .filter_map(std::result::Result::ok)
        .find(|c| c.name() == SESSION_COOKIE)
        .map(|c| c.value().to_owned())
}

/// Whether the session cookie is marked `Secure`, sent by the browser over HTTPS only: so when the server
/// serves HTTPS itself or is told it stands behind an HTTPS proxy. Provided by the server to every request.
#[derive(Debug, Clone, Copy, Default)]
pub struct SecureCookies(pub bool);

/// Sets (or, with `None`, clears) the session cookie: HttpOnly, SameSite=Strict, and Secure where
/// [`SecureCookies`] says so.
pub fn set_session_cookie(value: Option<&str>) {
    let (value, max_age) = match value {
        Some(value) => (value, MAX_HOURS * 3600),
        None => ("", 0),
    };
    let cookie = cookie::Cookie::build((SESSION_COOKIE, value))
        .path("/")
        .http_only(true)
        .same_site(cookie::SameSite::Strict)
        .max_age(cookie::time::Duration::seconds(max_age))
        .secure(use_context::<SecureCookies>().unwrap_or_default().0)
        .build();
    if let (Some(options), Ok(value)) = (
        use_context::<leptos_axum::ResponseOptions>(),
        HeaderValue::from_str(&cookie.to_string()),
    ) {
        options.append_header(header::SET_COOKIE, value);
    }
}
