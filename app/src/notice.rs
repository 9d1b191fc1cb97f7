//! How a refusal is shown on a page: the domain's sentence, with its code for programs and tests.

use leptos::prelude::*;
use loyalty_core::LoyaltyError;

/// An error, said as the domain says it, in the page's live region.
#[component]
pub fn ErrorNotice(error: LoyaltyError) -> impl IntoView {
    view! {
        <div class="outcome error" data-code=error.code()>
            <p class="big">{error.to_string()}</p>
        </div>
    }
}
