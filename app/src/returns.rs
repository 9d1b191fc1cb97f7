//! Returns at the counter: all or part of an earn taken back (a purchase brought back), or of a redeem given
//! back (a reward that could not be handed over), linked to the original ledger row. The database decides who
//! may and how much: a clerk their own entries within the program's time, managers any; never more than the row.

use leptos::prelude::*;
use loyalty_core::LoyaltyError;
use loyalty_core::wire::Reversal;

#[cfg(feature = "ssr")]
pub mod db {
    use loyalty_core::Result;
    use loyalty_core::wire::Reversal;

    use crate::db::{CounterPool, RpcAnswer};
    use crate::session::SessionKey;

    /// Returns `points` of ledger row `transaction_id` as the staff member of a session.
    pub async fn reverse(
        db: &CounterPool,
        session: &SessionKey,
        csrf: &str,
        transaction_id: i64,
        points: i64,
        idempotency_key: Option<&str>,
    ) -> Result<Reversal> {
        let mut conn = db.get().await?;
        let row = session
            .query(
                crate::in_session!("public.reverse_transaction($1, $6, $7, s.staff_id, $8)"),
                csrf,
            )
            .bind(transaction_id)
            .bind(points)
            .bind(idempotency_key)
            .fetch_optional(conn.conn())
            .await;
        let answer: sqlx::types::Json<RpcAnswer> = session.answer(conn, row).await?;
        let reversal = answer
            .0
            .into_result()
            .and_then(|answer| answer.data::<Reversal>());
        db.dated(session.program_id, reversal).await
    }
}

/// Returns `points` of a ledger row. The idempotency key makes a second press apply once.
#[server(endpoint = "reverse")]
pub async fn reverse(
    csrf: String,
    transaction_id: i64,
    points: i64,
    idempotency_key: String,
) -> Result<Reversal, LoyaltyError> {
    use crate::request::{answer, counter_pool, session_key};
    answer(
        async {
            let key = Some(idempotency_key.trim()).filter(|k| !k.is_empty());
            db::reverse(
                &counter_pool()?,
                &session_key()?,
                &csrf,
                transaction_id,
                points,
                key,
            )
            .await
        }
        .await,
    )
}

/// The member page's returns form: the ledger row's number (#) and the points to return.
#[component]
pub fn ReturnForm(
    form_key: String,
    /// Called after a return went through, so the page reads the member again.
    changed: Callback<()>,
) -> impl IntoView {
    let reverse = ServerAction::<Reverse>::new();
    Effect::new(move |_| {
        if matches!(reverse.value().get(), Some(Ok(_))) {
            changed.run(());
        }
    });
    view! {
        <details class="returns">
            <summary>"Return (a purchase brought back, a reward not handed over)"</summary>
            <ActionForm action=reverse attr:class="return-form">
                <crate::auth::CsrfField />
                <input type="hidden" name="idempotency_key" value=form_key />
                <label for="return-row">"Transaction #"</label>
                <input id="return-row" name="transaction_id" type="number" min="1" required />
                <label for="return-points">"Points to return"</label>
                <input id="return-points" name="points" type="number" min="1" max="1000000" required />
                <button type="submit" disabled=move || reverse.pending().get()>
                    "Return"
                </button>
            </ActionForm>
            <div class="result" role="status" aria-live="polite">
                {move || {
                    reverse
                        .value()
                        .get()
                        .map(|result| match result {
                            Ok(done) => {
                                view! { <p class="outcome ok">{done.describe()}</p> }.into_any()
                            }
                            Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
                        })
                }}
            </div>
        </details>
    }
}
