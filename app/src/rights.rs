//! A member's rights over their data, exercised by a manager: a copy of everything the program keeps about one
//! pass (JSON), and the erasure of its phone number and email. The ledger stays, naming nobody.

use leptos::prelude::*;
use loyalty_core::LoyaltyError;
use loyalty_core::wire::{ContactHint, LedgerEntry, Member};
use serde::{Deserialize, Serialize};

/// Where a manager downloads one member's data: `?member=<pass id>`.
pub const EXPORT_PATH: &str = "/api/member_export.json";

/// Everything the program keeps about one pass.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberExport {
    pub program: String,
    pub pass: Member,
    /// When the pass was replaced, and by which pass.
    pub replaced: Option<(chrono::DateTime<chrono::Utc>, String)>,
    /// The hints kept of the member's phone number and email: the values themselves are not kept.
    pub contacts: Vec<ContactHint>,
    /// Every row of the pass's ledger, newest first.
    pub ledger: Vec<LedgerEntry>,
    pub exported_at: chrono::DateTime<chrono::Utc>,
}

#[cfg(feature = "ssr")]
pub mod db {
    use loyalty_core::{LoyaltyError, Result};
    use uuid::Uuid;

    use super::MemberExport;
    use crate::db::{CounterPool, RpcAnswer, db_error};
    use crate::session::SessionKey;

    /// One member's data, in the manager's program.
    pub async fn export(
        pool: &sqlx::PgPool,
        program_id: Uuid,
        external_id: &str,
    ) -> Result<MemberExport> {
        let detail =
            crate::members::db::member_detail(pool, program_id, external_id, i64::MAX).await?;
        let program: String = sqlx::query_scalar("select name from public.programs where id = $1")
            .bind(program_id)
            .fetch_optional(pool)
            .await
            .map_err(db_error)?
            .ok_or(LoyaltyError::ProgramNotFound)?;
        Ok(MemberExport {
            program,
            pass: detail.member,
            replaced: detail.replaced,
            contacts: detail.contacts,
            ledger: detail.ledger,
            exported_at: chrono::Utc::now(),
        })
    }

    /// Erases a member's phone number and email, as the manager of a session; how many were kept.
    pub async fn erase_contacts(
        db: &CounterPool,
        session: &SessionKey,
        csrf: &str,
        external_id: &str,
    ) -> Result<i64> {
        let mut conn = db.get().await?;
        let row = session
            .query(
                crate::in_session!("public.erase_member_contacts($1, $6, s.staff_id)"),
                csrf,
            )
            .bind(external_id)
            .fetch_optional(conn.conn())
            .await;
        let answer: sqlx::types::Json<RpcAnswer> = session.answer(conn, row).await?;
        #[derive(serde::Deserialize)]
        struct Erased {
            erased: i64,
        }
        Ok(answer.0.into_result()?.data::<Erased>()?.erased)
    }
}

/// Erases a member's phone number and email (managers); answers how many there were.
#[server(endpoint = "erase_contacts")]
pub async fn erase_contacts(csrf: String, external_id: String) -> Result<i64, LoyaltyError> {
    use crate::request::{answer, counter_pool, redirect_form_post, session_key};
    answer(
        async {
            let external_id = external_id.trim().to_ascii_uppercase();
            let erased =
                db::erase_contacts(&counter_pool()?, &session_key()?, &csrf, &external_id).await?;
            redirect_form_post(&format!("/member/{external_id}?erased=1"));
            Ok(erased)
        }
        .await,
    )
}

#[derive(Deserialize)]
#[cfg(feature = "ssr")]
pub struct ExportQuery {
    member: Option<String>,
}

/// `GET /api/member_export.json?member=<pass id>`: one member's data as a JSON download. Managers only; the
/// program is the session's.
#[cfg(feature = "ssr")]
pub async fn export_download(
    axum::extract::State(pool): axum::extract::State<sqlx::PgPool>,
    staff: Option<axum::Extension<crate::session::Staff>>,
    outcome: Option<axum::Extension<crate::request::Outcome>>,
    axum::extract::Query(query): axum::extract::Query<ExportQuery>,
) -> axum::response::Response {
    use axum::http::header;
    use axum::response::IntoResponse;
    let outcome = outcome.as_ref().map(|o| &o.0);
    let result = async {
        let me = staff
            .ok_or(LoyaltyError::NotSignedIn)
            .and_then(|axum::Extension(s)| crate::request::manager(s))?;
        let external_id = query
            .member
            .as_deref()
            .unwrap_or("")
            .trim()
            .to_ascii_uppercase();
        let export = db::export(&pool, me.program_id, &external_id).await?;
        let body = serde_json::to_vec_pretty(&export).map_err(|_| LoyaltyError::Internal)?;
        Ok::<_, LoyaltyError>((external_id, body))
    }
    .await;
    match result {
        Ok((external_id, body)) => {
            if let Some(outcome) = outcome {
                outcome.set(crate::request::Outcome::OK);
            }
            (
                [
                    (header::CONTENT_TYPE, "application/json".to_owned()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"member-{external_id}.json\""),
                    ),
                    (header::CACHE_CONTROL, "no-store".to_owned()),
                ],
                body,
            )
                .into_response()
        }
        Err(err) => crate::request::refusal(outcome, err),
    }
}

/// The member page's section for managers: the member's data to download, and their contact details to erase.
#[component]
pub fn MemberRights(
    external_id: String,
    /// Called once the contacts are erased, so the page reads the member again.
    changed: Callback<()>,
) -> impl IntoView {
    let erase = ServerAction::<EraseContacts>::new();
    Effect::new(move |_| {
        if matches!(erase.value().get(), Some(Ok(_))) {
            changed.run(());
        }
    });
    let href = format!(
        "{EXPORT_PATH}?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("member", &external_id)
            .finish()
    );
    view! {
        <details class="member-rights">
            <summary>"The member's data (managers)"</summary>
            <p>
                <a href=href download>
                    "Download everything kept about this pass (JSON)"
                </a>
            </p>
            <ActionForm action=erase>
                <crate::auth::CsrfField />
                <input type="hidden" name="external_id" value=external_id />
                <button type="submit" disabled=move || erase.pending().get()>
                    "Erase their phone number and email"
                </button>
            </ActionForm>
            <div class="result" role="status" aria-live="polite">
                {move || {
                    erase
                        .value()
                        .get()
                        .map(|result| match result {
                            Ok(erased) => {
                                view! {
                                    <p class="outcome ok">
                                        {format!(
                                            "Erased: {erased} contact detail{} (the ledger stays, naming no one).",
                                            if erased == 1 { "" } else { "s" },
                                        )}
                                    </p>
                                }
                                    .into_any()
                            }
                            Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
                        })
                }}
            </div>
        </details>
    }
}
