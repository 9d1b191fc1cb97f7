//! The frame around every signed-in page: the program, the navigation, who is signed in.

use leptos::prelude::*;
use leptos_router::components::{A, Outlet};
use loyalty_core::wire::Role;

use crate::auth::{SignOut, SignedIn};

#[component]
pub fn Layout() -> impl IntoView {
    let signed_in = SignedIn::new();
    provide_context(signed_in);
    let sign_out = ServerAction::<SignOut>::new();
    Effect::new(move |_| {
        if let Some(Ok(())) = sign_out.value().get() {
            let _ = window().location().set_href("/login");
        }
    });
    view! {
        <header class="topbar">
            <Suspense fallback=|| view! { <span class="program">"Loyalty"</span> }>
                {move || Suspend::new(async move {
                    match signed_in.0.await {
                        Ok(session) => {
                            let manager = session.role == Role::Manager;
                            view! {
                                <span class="program">{session.program_name.clone()}</span>
                                <nav aria-label="Main">
                                    <A href="/">"Scan"</A>
                                    <A href="/enrol">"Enrol"</A>
                                    <Show when=move || manager>
                                        <A href="/history">"History"</A>
                                        <A href="/rewards">"Rewards"</A>
                                        <A href="/program">"Program"</A>
                                        <A href="/numbers">"Numbers"</A>
                                        <A href="/staff">"Staff"</A>
                                        <A href="/batches">"Batches"</A>
                                        <A href="/wallet">"Wallet"</A>
                                        <A href="/backups">"Backups"</A>
                                    </Show>
                                </nav>
                                <a class="who" href="/account" title="Your account">
                                    {session.staff_name.clone()}
                                    <span class="role">
                                        {if manager { " · manager" } else { " · clerk" }}
                                    </span>
                                </a>
                                <ActionForm action=sign_out attr:class="sign-out">
                                    // The token is at hand: a `CsrfField` here would open a Suspense
                                    // after the await, taking a hydration id while the page below
                                    // creates its resources, and the page's ids would then differ
                                    // between server and browser.
                                    <input type="hidden" name="csrf" value=session.csrf_token.clone() />
                                    <button type="submit" class="secondary">
                                        "Sign out"
                                    </button>
                                </ActionForm>
                            }
                                .into_any()
                        }
                        Err(_) => view! { <a href="/login">"Sign in"</a> }.into_any(),
                    }
                })}
            </Suspense>
        </header>
        <main>
            <Outlet />
        </main>
    }
}

#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <main class="not-found">
            <h1>"Page not found"</h1>
            <p>
                <a href="/">"Back to scanning"</a>
            </p>
        </main>
    }
}
