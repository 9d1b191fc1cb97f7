//! Scanning: a postcard becomes a member pass, a pass opens its member.

use loyalty_core::wire::ScanOutcome;
#[cfg(feature = "ssr")]
pub mod db;

/// Resolves what a scanner or a clerk entered, as the staff member of a session: burns a postcard (the session
/// checked in the same statement), or finds the member a pass belongs to.
#[cfg(feature = "ssr")]
pub async fn resolve_scan(
    counter: &crate::db::CounterPool,
    key: &crate::contacts::db::ContactKey,
    session: &crate::session::SessionKey,
    csrf: &str,
    raw: &str,
) -> loyalty_core::Result<ScanOutcome> {
    use loyalty_core::{ScanCode, parse_scan};
    let parsed = match parse_scan(raw) {
        Ok(parsed) => parsed,
        Err(err) => {
            // Whoever is not signed in hears that first, whatever they sent.
            session.check(counter, csrf).await?;
            return Err(err);
        }
    };
    match parsed {
        ScanCode::Claim(code) => db::claim_postcard(counter, session, csrf, &code).await,
        ScanCode::Member(external_id) => {
            let member =
                crate::contacts::db::find_pass(counter, session, csrf, &external_id).await?;
            Ok(ScanOutcome::Member { member })
        }
        ScanCode::Contact(raw) => {
            let member =
                crate::contacts::db::find_by_contact(counter, session, key, csrf, &raw).await?;
            Ok(ScanOutcome::Member { member })
        }
    }
}

/// Scans a postcard or a member pass: a postcard becomes a new member, a pass opens its member.
#[leptos::server(endpoint = "scan")]
pub async fn scan(csrf: String, code: String) -> Result<ScanOutcome, loyalty_core::LoyaltyError> {
    use crate::request::{answer, contact_key, counter_pool, redirect_form_post, session_key};
    answer(
        async {
            let outcome = resolve_scan(
                &counter_pool()?,
                &contact_key()?,
                &session_key()?,
                &csrf,
                &code,
            )
            .await?;
            let member = &outcome.member().external_id;
            match &outcome {
                ScanOutcome::Claimed { .. } => {
                    redirect_form_post(&format!("/member/{member}?claimed=1"))
                }
                ScanOutcome::Member { .. } => redirect_form_post(&format!("/member/{member}")),
            }
            Ok(outcome)
        }
        .await,
    )
}

/// The clerk's home page: one input for a scanner or the keyboard, with the answer in place.
#[leptos::component]
pub fn ScanPage() -> impl leptos::IntoView {
    use leptos::prelude::*;
    use leptos_router::hooks::use_navigate;

    let scan = ServerAction::<Scan>::new();
    let input = NodeRef::<leptos::html::Input>::new();
    let navigate = use_navigate();
    let signed_in = crate::auth::SignedIn::get();
    // A code read by the camera goes through the same scan as a typed one.
    let from_camera = Callback::new(move |code: String| {
        let csrf = signed_in
            .0
            .get()
            .and_then(Result::ok)
            .map(|s| s.csrf_token)
            .unwrap_or_default();
        if let Some(el) = input.get() {
            el.set_value(&code);
        }
        scan.dispatch(Scan { csrf, code });
    });
    // After every answer the input is cleared and focused again, ready for the next scan.
    Effect::new(move |_| {
        let Some(result) = scan.value().get() else {
            return;
        };
        if let Some(el) = input.get() {
            el.set_value("");
            let _ = el.focus();
        }
        if let Ok(ScanOutcome::Member { member }) = result {
            navigate(
                &format!("/member/{}", member.external_id),
                Default::default(),
            );
        }
    });
    view! {
        <section class="scan">
            <h1>"Scan a postcard or pass"</h1>
            <ActionForm action=scan attr:class="scan-form">
                <crate::auth::CsrfField />
                <label for="scan-code">"Code, phone number or email"</label>
                <div class="scan-row">
                    <input
                        id="scan-code"
                        name="code"
                        type="text"
                        autocomplete="off"
                        autocapitalize="off"
                        spellcheck="false"
                        autofocus
                        required
                        node_ref=input
                    />
                    <button type="submit" disabled=move || scan.pending().get()>
                        "Look up"
                    </button>
                </div>
            </ActionForm>
            <crate::camera::CameraScanner on_code=from_camera />
            <div class="result" role="status" aria-live="polite">
                {move || {
                    scan.value()
                        .get()
                        .map(|result| match result {
                            Ok(ScanOutcome::Claimed { member, .. }) => {
                                let href = format!("/member/{}", member.external_id);
                                view! {
                                    <div class="outcome ok" data-outcome="claimed">
                                        <p class="big">"New member created from a postcard"</p>
                                        <p>
                                            "Their pass: " <strong class="pass-id">{member.external_id}</strong>
                                        </p>
                                        <a class="button" href=href>
                                            "Open point of sale"
                                        </a>
                                    </div>
                                }
                                    .into_any()
                            }
                            Ok(ScanOutcome::Member { member }) => {
                                view! {
                                    <div class="outcome ok" data-outcome="member">
                                        <p class="big">"Member " {member.external_id} " found"</p>
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
