//! Staff sign-in, sessions and roles: every server function takes the program and the staff member from the
//! session, never from the request.

use leptos::prelude::*;
use loyalty_core::LoyaltyError;
use loyalty_core::wire::StaffSession;

#[cfg(feature = "ssr")]
pub mod db;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "loyalty_session";

/// The paths of the server functions that check the session in the same statement as their change
/// ([`db::SessionKey`]), read from the functions themselves: the server's session layer leaves them alone, so
/// the busiest calls at a counter take one round trip to the database rather than two.
pub const SESSION_CHECKED_IN_STATEMENT: [&str; 3] = [
    <crate::points::Earn as server_fn::ServerFn>::PATH,
    <crate::points::Redeem as server_fn::ServerFn>::PATH,
    <crate::claim::Scan as server_fn::ServerFn>::PATH,
];

/// Request-side helpers for server functions.
#[cfg(feature = "ssr")]
pub mod server {
    use axum::http::request::Parts;
    use axum::http::{HeaderValue, StatusCode, header};
    use leptos::prelude::*;
    use loyalty_core::wire::Role;
    use loyalty_core::{LoyaltyError, Result};
    use sqlx::PgPool;

    pub use super::db::Staff;

    /// The database pool the server provides to every request.
    pub fn pool() -> Result<PgPool> {
        use_context::<PgPool>().ok_or(LoyaltyError::Internal)
    }

    /// The connections the counter's changes run on, which the server provides to every request.
    pub fn counter_pool() -> Result<crate::db::CounterPool> {
        use_context::<crate::db::CounterPool>().ok_or(LoyaltyError::Internal)
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
    pub fn session_key() -> Result<super::db::SessionKey> {
        session_cookie()
            .as_deref()
            .and_then(super::db::SessionKey::from_cookie)
            .ok_or(LoyaltyError::NotSignedIn)
    }

    /// [`staff_for_change`] for a post the session layer left alone ([`super::SESSION_CHECKED_IN_STATEMENT`]),
    /// when it needs the staff member before its statement: looks the session up itself.
    pub async fn looked_up_staff_for_change(csrf: &str) -> Result<Staff> {
        let cookie = session_cookie().ok_or(LoyaltyError::NotSignedIn)?;
        let staff = super::db::session(&pool()?, &cookie).await?;
        check_csrf(staff, csrf)
    }

    /// The signed-in staff member, for a request that changes something: its CSRF token must match the session's.
    pub fn staff_for_change(csrf: &str) -> Result<Staff> {
        check_csrf(current_staff()?, csrf)
    }

    fn check_csrf(staff: Staff, csrf: &str) -> Result<Staff> {
        if constant_time_eq(csrf.as_bytes(), staff.csrf_token.as_bytes()) {
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

    fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
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

    /// Gives an API answer its HTTP status. A plain form post keeps its redirect back to the form, which shows
    /// the error.
    pub fn answer<T>(result: Result<T>) -> Result<T> {
        if let Err(err) = &result
            && !is_form_post()
            && let Some(options) = use_context::<leptos_axum::ResponseOptions>()
        {
            options.set_status(
                StatusCode::from_u16(err.http_status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            );
        }
        result
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

    pub fn session_cookie() -> Option<String> {
        session_cookie_in(&parts().ok()?.headers)
    }

    /// The session cookie's value among a request's headers.
    pub fn session_cookie_in(headers: &axum::http::HeaderMap) -> Option<String> {
        headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find(|(name, _)| *name == super::SESSION_COOKIE)
            .map(|(_, value)| value.to_owned())
    }

    /// Whether the session cookie is marked `Secure`, sent by the browser over HTTPS only: so when the server
    /// serves HTTPS itself or is told it stands behind an HTTPS proxy. Provided by the server to every request.
    #[derive(Debug, Clone, Copy, Default)]
    pub struct SecureCookies(pub bool);

    /// Sets (or, with `None`, clears) the session cookie: HttpOnly, SameSite=Strict, and Secure where
    /// [`SecureCookies`] says so.
    pub fn set_session_cookie(value: Option<&str>) {
        let (value, max_age) = match value {
            Some(value) => (value, super::db::MAX_HOURS * 3600),
            None => ("", 0),
        };
        let secure = if use_context::<SecureCookies>().unwrap_or_default().0 {
            "; Secure"
        } else {
            ""
        };
        let cookie = format!(
            "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
            super::SESSION_COOKIE,
        );
        if let (Some(options), Ok(value)) = (
            use_context::<leptos_axum::ResponseOptions>(),
            HeaderValue::from_str(&cookie),
        ) {
            options.append_header(header::SET_COOKIE, value);
        }
    }

    impl From<&Staff> for loyalty_core::wire::StaffSession {
        fn from(staff: &Staff) -> Self {
            Self {
                staff_name: staff.name.clone(),
                email: staff.email.clone(),
                role: staff.role,
                program_name: staff.program_name.clone(),
                time_zone: staff.time_zone.clone(),
                csrf_token: staff.csrf_token.clone(),
            }
        }
    }
}

/// Signs in with an email and password; a new session replaces any the browser had.
#[server(endpoint = "sign_in")]
pub async fn sign_in(email: String, password: String) -> Result<StaffSession, LoyaltyError> {
    use server::*;
    answer(
        async {
            same_origin()?;
            let pool = pool()?;
            let session = db::sign_in(&pool, &email, &password, &client_address()).await?;
            // The browser's previous session ends with a sign-in that succeeds, not with a mistyped password.
            if let Some(old) = session_cookie() {
                db::sign_out(&pool, &old).await?;
            }
            set_session_cookie(Some(&session.cookie_value));
            redirect_form_post("/");
            Ok(StaffSession::from(&session.staff))
        }
        .await,
    )
}

/// Ends the session, here and wherever its cookie was copied.
#[server(endpoint = "sign_out")]
pub async fn sign_out(csrf: String) -> Result<(), LoyaltyError> {
    use server::*;
    answer(
        async {
            staff_for_change(&csrf)?;
            if let Some(cookie) = session_cookie() {
                db::sign_out(&pool()?, &cookie).await?;
            }
            set_session_cookie(None);
            redirect_form_post("/login");
            Ok(())
        }
        .await,
    )
}

/// Who is signed in, with the CSRF token their forms carry.
#[server(endpoint = "me")]
pub async fn me() -> Result<StaffSession, LoyaltyError> {
    use server::*;
    answer(current_staff().map(|staff| StaffSession::from(&staff)))
}

/// The signed-in staff member, loaded once by the page layout and shared with every page through context.
#[derive(Clone, Copy)]
pub struct SignedIn(pub Resource<Result<StaffSession, LoyaltyError>>);

impl SignedIn {
    pub fn new() -> Self {
        Self(Resource::new(|| (), |_| me()))
    }

    /// The layout's `SignedIn`: pages are always rendered inside the layout.
    pub fn get() -> Self {
        expect_context::<SignedIn>()
    }
}

impl Default for SignedIn {
    fn default() -> Self {
        Self::new()
    }
}

/// The hidden CSRF field every state-changing form carries.
#[component]
pub fn CsrfField() -> impl IntoView {
    let me = SignedIn::get();
    view! {
        <Suspense>
            {move || Suspend::new(async move {
                let token = me.0.await.map(|s| s.csrf_token).unwrap_or_default();
                view! { <input type="hidden" name="csrf" value=token /> }
            })}
        </Suspense>
    }
}

/// The sign-in page. Works as a plain form without JavaScript.
#[component]
pub fn SignInPage() -> impl IntoView {
    let sign_in = ServerAction::<SignIn>::new();
    Effect::new(move |_| {
        if let Some(Ok(_)) = sign_in.value().get() {
            let _ = window().location().set_href("/");
        }
    });
    view! {
        <main class="sign-in">
            <h1>"Sign in"</h1>
            <ActionForm action=sign_in attr:class="card">
                <label for="email">"Email"</label>
                <input id="email" name="email" type="email" autocomplete="username" required autofocus />
                <label for="password">"Password"</label>
                <input
                    id="password"
                    name="password"
                    type="password"
                    autocomplete="current-password"
                    required
                />
                <button type="submit" disabled=move || sign_in.pending().get()>
                    "Sign in"
                </button>
            </ActionForm>
            <div class="result" role="status" aria-live="polite">
                {move || {
                    sign_in
                        .value()
                        .get()
                        .and_then(Result::err)
                        .map(|error| view! { <crate::layout::ErrorNotice error /> })
                }}
            </div>
        </main>
    }
}
