//! Public enrolment: a program's sign-up page `/join/<slug>` makes a PUB- pass and leads to its pass page.
//! No sign-in and no JavaScript needed; sign-ups are throttled per client address in the database.

use leptos::prelude::*;
use loyalty_core::LoyaltyError;
use serde::{Deserialize, Serialize};

/// A new member's pass, made through a public sign-up page.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Joined {
    pub external_id: String,
    /// The path of the new member's pass page.
    pub pass_url: String,
}

#[cfg(feature = "ssr")]
pub mod db {
    use loyalty_core::{LoyaltyError, Result};
    use serde::Deserialize;
    use sqlx::PgExecutor;

    use super::Joined;
    use crate::db::{RpcAnswer, db_error};

    /// The name of the program whose sign-up page `slug` is; a program without one has no page.
    pub async fn program_for_slug(db: impl PgExecutor<'_>, slug: &str) -> Result<String> {
        sqlx::query_scalar("select name from public.programs where public_slug = $1")
            .bind(slug)
            .fetch_optional(db)
            .await
            .map_err(db_error)?
            .ok_or(LoyaltyError::ProgramNotFound)
    }

    #[derive(Deserialize)]
    struct NewPass {
        external_id: String,
        pass_token: String,
    }

    /// Signs a member up through the program's public page, with the phone number or email they give. A
    /// contact another pass already has is left off the new pass, and the answer is the same as with any other:
    /// the page must not tell a stranger whose number belongs to a member. (That number already finds the
    /// older pass at the counter.)
    pub async fn sign_up(
        pool: &sqlx::PgPool,
        key: &crate::contacts::db::ContactKey,
        slug: &str,
        client: &str,
        contact: Option<&str>,
    ) -> Result<Joined> {
        use crate::contacts::db::{given, keep_contact};
        let Some(raw) = given(contact) else {
            return enrol_publicly(pool, slug, client).await;
        };
        let (program_id, calling_code): (uuid::Uuid, String) =
            sqlx::query_as("select id, calling_code from public.programs where public_slug = $1")
                .bind(slug)
                .fetch_optional(pool)
                .await
                .map_err(db_error)?
                .ok_or(LoyaltyError::ProgramNotFound)?;
        let contact = loyalty_core::Contact::parse(raw, &calling_code)?;
        let mut tx = pool.begin().await.map_err(db_error)?;
        let joined = enrol_publicly(&mut *tx, slug, client).await?;
        match keep_contact(
            &mut *tx,
            key,
            program_id,
            &joined.external_id,
            &contact,
            None,
        )
        .await
        {
            Ok(_) | Err(LoyaltyError::ContactTaken { .. }) => {}
            Err(err) => return Err(err),
        }
        tx.commit().await.map_err(db_error)?;
        Ok(joined)
    }

    /// Signs a member up through the program's public page, within the program's limits: by default 60 an hour
    /// per client address and 2,000 an hour over all addresses.
    pub async fn enrol_publicly(
        db: impl PgExecutor<'_>,
        slug: &str,
        client: &str,
    ) -> Result<Joined> {
        let answer: serde_json::Value = sqlx::query_scalar("select public.enrol_publicly($1, $2)")
            .bind(slug)
            .bind(client)
            .fetch_one(db)
            .await
            .map_err(db_error)?;
        if answer["error"] == "THROTTLED" {
            return Err(LoyaltyError::Throttled {
                retry_after_secs: answer["retry_after_secs"].as_u64().unwrap_or(3600),
            });
        }
        let answer: RpcAnswer =
            serde_json::from_value(answer).map_err(|_| LoyaltyError::Internal)?;
        let pass: NewPass = answer.into_result()?.data()?;
        Ok(Joined {
            pass_url: crate::passes::pass_path(&pass.pass_token),
            external_id: pass.external_id,
        })
    }
}

/// The sign-up page's program name, if `slug` names an open sign-up page.
#[server(endpoint = "join_page")]
pub async fn sign_up_program(slug: String) -> Result<String, LoyaltyError> {
    use crate::request::{answer, pool};
    answer(async { db::program_for_slug(&pool()?, slug.trim()).await }.await)
}

/// Creates a member pass through a program's public sign-up page, with the phone number or email the customer
/// gives, if any; a plain form post is sent on to the pass.
#[server(endpoint = "join")]
pub async fn join(slug: String, contact: Option<String>) -> Result<Joined, LoyaltyError> {
    use crate::request::{
        answer, client_address, contact_key, pool, redirect_form_post, same_origin,
    };
    answer(
        async {
            same_origin()?;
            let joined = db::sign_up(
                &pool()?,
                &contact_key()?,
                slug.trim(),
                &client_address(),
                contact.as_deref(),
            )
            .await?;
            redirect_form_post(&joined.pass_url);
            Ok(joined)
        }
        .await,
    )
}

/// A program's public sign-up page.
#[component]
pub fn JoinPage() -> impl IntoView {
    use leptos_meta::Title;
    use leptos_router::hooks::use_params_map;

    let params = use_params_map();
    let slug = move || params.read().get("slug").unwrap_or_default();
    let join = ServerAction::<Join>::new();
    let program = Resource::new(slug, sign_up_program);
    Effect::new(move |_| {
        if let Some(Ok(joined)) = join.value().get() {
            let _ = window().location().set_href(&joined.pass_url);
        }
    });
    view! {
        <main class="pass-page join-page">
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match program.await {
                        Ok(name) => {
                            view! {
                                <Title text=format!("Join {name}") />
                                <article class="pass-card">
                                    <h1 class="pass-program">{name.clone()}</h1>
                                    <p>
                                        "Join our loyalty program: you get a member pass to keep on your phone \
                                         and show at the counter."
                                    </p>
                                    <ActionForm action=join>
                                        <input type="hidden" name="slug" value=slug() />
                                        <label for="join-contact">
                                            "Phone number or email (optional): the counter can find your pass with it if you lose it"
                                        </label>
                                        <input
                                            id="join-contact"
                                            name="contact"
                                            type="text"
                                            inputmode="email"
                                            autocomplete="email"
                                            maxlength="254"
                                        />
                                        <button type="submit" disabled=move || join.pending().get()>
                                            "Get my pass"
                                        </button>
                                    </ActionForm>
                                    <div class="result" role="status" aria-live="polite">
                                        {move || {
                                            join.value()
                                                .get()
                                                .and_then(Result::err)
                                                .map(|error| view! { <crate::notice::ErrorNotice error /> })
                                        }}
                                    </div>
                                </article>
                            }
                                .into_any()
                        }
                        Err(LoyaltyError::ProgramNotFound) => {
                            view! {
                                <Title text="Sign-up not found" />
                                <div class="pass-missing">
                                    <h1>"Sign-up page not found"</h1>
                                    <p>"This program has no public sign-up page."</p>
                                </div>
                            }
                                .into_any()
                        }
                        Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
                    }
                })}
            </Suspense>
        </main>
    }
}
