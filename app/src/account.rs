//! Any staff member's own account: who they are signed in as, and their own password.

use leptos::prelude::*;
use loyalty_core::LoyaltyError;
use loyalty_core::error::PASSWORD_MIN_CHARS;
use loyalty_core::wire::Role;

/// Changes the signed-in staff member's own password, given the current one; their other sessions end.
#[server(endpoint = "change_password")]
pub async fn change_password(
    csrf: String,
    current: String,
    new: String,
) -> Result<(), LoyaltyError> {
    use crate::request::{
        answer, client_address, pool, redirect_form_post, session_cookie, staff_for_change,
    };
    answer(
        async {
            let staff = staff_for_change(&csrf)?;
            let cookie = session_cookie().ok_or(LoyaltyError::NotSignedIn)?;
            crate::auth::db::change_own_password(
                &pool()?,
                &staff,
                &cookie,
                &current,
                &new,
                &client_address(),
            )
            .await?;
            redirect_form_post("/account");
            Ok(())
        }
        .await,
    )
}

/// Any staff member's own account: who they are signed in as, and a new password.
#[component]
pub fn AccountPage() -> impl IntoView {
    let change = ServerAction::<ChangePassword>::new();
    let set_zone = ServerAction::<crate::program::SetTimeZone>::new();
    // Who is signed in and, for a manager, the program's time zone: one resource, read in one place.
    let me = Resource::new(
        move || set_zone.version().get(),
        |_| async {
            let me = crate::auth::me().await?;
            let zone = match me.role {
                Role::Manager => Some(crate::program::time_zone().await?),
                Role::Clerk => None,
            };
            Ok::<_, LoyaltyError>((me, zone))
        },
    );
    view! {
        <section class="account">
            <h1>"Your account"</h1>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match me.await {
                        Ok((me, zone)) => {
                            let who = format!(
                                "{} ({}), {} at {}.",
                                me.staff_name,
                                me.email,
                                me.role.as_sql(),
                                me.program_name,
                            );
                            view! {
                                <p>{who}</p>
                                {zone.map(|choice| view! { <crate::program::TimeZoneForm choice set=set_zone /> })}
                            }
                                .into_any()
                        }
                        Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
                    }
                })}
            </Suspense>
            <h2>"Change your password"</h2>
            <ActionForm action=change attr:class="card account-form">
                <crate::auth::CsrfField />
                <label for="current-password">"Current password"</label>
                <input
                    id="current-password"
                    name="current"
                    type="password"
                    autocomplete="current-password"
                    required
                />
                <label for="new-password">
                    {format!("New password (at least {PASSWORD_MIN_CHARS} characters)")}
                </label>
                <input
                    id="new-password"
                    name="new"
                    type="password"
                    minlength=PASSWORD_MIN_CHARS.to_string()
                    autocomplete="new-password"
                    required
                />
                <button type="submit" disabled=move || change.pending().get()>
                    "Change password"
                </button>
            </ActionForm>
            <div class="result" role="status" aria-live="polite">
                {move || {
                    change
                        .value()
                        .get()
                        .map(|result| match result {
                            Ok(()) => {
                                view! {
                                    <div class="outcome ok">
                                        <p class="big">
                                            "Your password has been changed. Your other sessions have been signed out."
                                        </p>
                                    </div>
                                }
                                    .into_any()
                            }
                            Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
                        })
                }}
            </div>
        </section>
    }
}
