//! Members' phone numbers and emails: given at the counter, kept only as a keyed digest and a masked hint, and
//! used to find a member who has no pass with them.

use loyalty_core::LoyaltyError;
use loyalty_core::wire::ContactHint;

#[cfg(feature = "ssr")]
pub mod db;

/// Gives a member a phone number or an email (whichever `contact` is), replacing the one of that kind they had.
#[leptos::server(endpoint = "set_contact")]
pub async fn set_contact(
    csrf: String,
    external_id: String,
    contact: String,
) -> Result<ContactHint, LoyaltyError> {
    use crate::request::{answer, contact_key, counter_pool, redirect_form_post, session_key};
    answer(
        async {
            let external_id = external_id.trim().to_ascii_uppercase();
            let hint = db::set_contact(
                &counter_pool()?,
                &session_key()?,
                &contact_key()?,
                &csrf,
                &external_id,
                &contact,
            )
            .await?;
            redirect_form_post(&format!("/member/{external_id}"));
            Ok(hint)
        }
        .await,
    )
}

/// Takes a member's phone number or email away.
#[leptos::server(endpoint = "remove_contact")]
pub async fn remove_contact(
    csrf: String,
    external_id: String,
    kind: loyalty_core::ContactKind,
) -> Result<loyalty_core::ContactKind, LoyaltyError> {
    use crate::request::{answer, counter_pool, redirect_form_post, session_key};
    answer(
        async {
            let external_id = external_id.trim().to_ascii_uppercase();
            db::remove_contact(&counter_pool()?, &session_key()?, &csrf, &external_id, kind)
                .await?;
            redirect_form_post(&format!("/member/{external_id}"));
            Ok(kind)
        }
        .await,
    )
}

/// The member page's contact details: the hints kept, and a form to give or change one.
#[leptos::component]
pub fn ContactDetails(
    external_id: String,
    contacts: Vec<ContactHint>,
    /// Called when a contact was saved or removed, so the page reads the member again.
    changed: leptos::prelude::Callback<()>,
) -> impl leptos::IntoView {
    use leptos::prelude::*;

    let set = ServerAction::<SetContact>::new();
    let remove = ServerAction::<RemoveContact>::new();
    Effect::new(move |_| {
        if matches!(set.value().get(), Some(Ok(_))) || matches!(remove.value().get(), Some(Ok(_))) {
            changed.run(());
        }
    });
    // Shown on the closed section too, so the clerk sees at a glance what the member gave.
    let summary = if contacts.is_empty() {
        "Phone and email".to_owned()
    } else {
        let hints: Vec<&str> = contacts.iter().map(|c| c.hint.as_str()).collect();
        format!("Phone and email: {}", hints.join(" · "))
    };
    let listed = if contacts.is_empty() {
        view! { <p class="empty">"No phone number or email yet."</p> }.into_any()
    } else {
        let external_id = external_id.clone();
        view! {
            <ul class="contacts">
                {contacts
                    .into_iter()
                    .map(|contact| {
                        let label = match contact.kind {
                            loyalty_core::ContactKind::Phone => "Phone",
                            loyalty_core::ContactKind::Email => "Email",
                        };
                        let kind = contact.kind.as_sql();
                        let id = external_id.clone();
                        view! {
                            <li data-contact=kind>
                                {label} ": " <span class="hint">{contact.hint}</span>
                                <ActionForm action=remove attr:class="inline">
                                    <crate::auth::CsrfField />
                                    <input type="hidden" name="external_id" value=id />
                                    <input type="hidden" name="kind" value=kind />
                                    <button type="submit" class="link">
                                        "Remove"
                                    </button>
                                </ActionForm>
                            </li>
                        }
                    })
                    .collect_view()}
            </ul>
        }
        .into_any()
    };
    view! {
        <details class="contact-details">
            <summary>{summary}</summary>
            <p class="help">
                "Lets the counter find this member without their pass. Only the last digits of a phone and the first letter of an email are kept to show."
            </p>
            {listed}
            <ActionForm action=set attr:class="contact-form">
                <crate::auth::CsrfField />
                <input type="hidden" name="external_id" value=external_id />
                <label for="contact">"Phone number or email"</label>
                <input
                    id="contact"
                    name="contact"
                    type="text"
                    inputmode="email"
                    autocomplete="off"
                    required
                    maxlength="254"
                />
                <button type="submit" disabled=move || set.pending().get()>
                    "Save"
                </button>
            </ActionForm>
            <div class="result" role="status" aria-live="polite">
                {move || {
                    set.value()
                        .get()
                        .and_then(Result::err)
                        .or_else(|| remove.value().get().and_then(Result::err))
                        .map(|error| view! { <crate::notice::ErrorNotice error /> })
                }}
            </div>
        </details>
    }
}
