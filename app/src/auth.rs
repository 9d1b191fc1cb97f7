//! Staff sign-in, sessions and roles: every server function takes the program and the staff member from the
//! session, never from the request.

use leptos::prelude::*;
use loyalty_core::LoyaltyError;
use loyalty_core::wire::StaffSession;

#[cfg(feature = "ssr")]
pub mod db;

#[cfg(feature = "ssr")]
impl From<&crate::session::Staff> for StaffSession {
    fn from(staff: &crate::session::Staff) -> Self {
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

/// Signs in with an email and password; a new session replaces any the browser had.
#[server(endpoint = "sign_in")]
pub async fn sign_in(email: String, password: String) -> Result<StaffSession, LoyaltyError> {
    use crate::request::{
        answer, client_address, pool, redirect_form_post, same_origin, session_cookie,
        set_session_cookie,
    };
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
    use crate::request::{
        answer, pool, redirect_form_post, session_cookie, set_session_cookie, staff_for_change,
    };
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
    use crate::request::{answer, current_staff};
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
                        .map(|error| view! { <crate::notice::ErrorNotice error /> })
                }}
            </div>
        </main>
    }
}
