//! The staff dashboard and, behind the `ssr` feature, the loyalty domain service over PostgreSQL.

pub mod account;
pub mod auth;
pub mod backups;
pub mod batches;
mod camera;
pub mod claim;
pub mod contacts;
#[cfg(feature = "ssr")]
pub mod db;
pub mod enrolment;
pub mod history;
mod layout;
pub mod members;
mod notice;
pub mod numbers;
pub mod passes;
pub mod points;
pub mod program;
#[cfg(feature = "ssr")]
pub mod request;
pub mod returns;
pub mod rewards;
pub mod rights;
pub mod rules;
#[cfg(feature = "ssr")]
pub mod security;
#[cfg(feature = "ssr")]
pub mod session;
pub mod staff;

use leptos::prelude::*;
use leptos_meta::{MetaTags, Stylesheet, Title, provide_meta_context};
use leptos_router::components::{ParentRoute, Route, Router, Routes};
use leptos_router::{SsrMode, path};

pub use loyalty_core::{LoyaltyError, Result};

/// The file name the compiled browser code and styles are served under, in `/pkg/`.
pub const OUTPUT_NAME: &str = "loyalty";

/// The HTML document every page is rendered into.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    #[cfg(feature = "ssr")]
    security::use_page_policy();
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8" />
                <meta name="viewport" content="width=device-width, initial-scale=1" />
                <HydrationScripts options />
                <MetaTags />
            </head>
            <body>
                <App />
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    view! {
        <Stylesheet id="loyalty" href="/pkg/loyalty.css" />
        <Title text="Loyalty" />
        // Pages render whole on the server (async mode) so that forms, with their CSRF and idempotency fields,
        // work as plain HTML before or without the browser code.
        <Router>
            <Routes fallback=layout::NotFound>
                <Route path=path!("/login") view=auth::SignInPage ssr=SsrMode::Async />
                <Route path=path!("/pass/:token") view=passes::PassPage ssr=SsrMode::Async />
                <Route path=path!("/join/:slug") view=enrolment::JoinPage ssr=SsrMode::Async />
                <ParentRoute path=path!("") view=layout::Layout ssr=SsrMode::Async>
                    <Route path=path!("") view=claim::ScanPage ssr=SsrMode::Async />
                    <Route path=path!("member/:id") view=members::MemberPage ssr=SsrMode::Async />
                    <Route path=path!("enrol") view=members::EnrolPage ssr=SsrMode::Async />
                    <Route path=path!("staff") view=staff::StaffPage ssr=SsrMode::Async />
                    <Route path=path!("account") view=account::AccountPage ssr=SsrMode::Async />
                    <Route path=path!("history") view=history::HistoryPage ssr=SsrMode::Async />
                    <Route path=path!("batches") view=batches::BatchesPage ssr=SsrMode::Async />
                    <Route path=path!("batches/:id/print") view=batches::PrintPage ssr=SsrMode::Async />
                    <Route path=path!("wallet") view=passes::WalletPage ssr=SsrMode::Async />
                    <Route path=path!("backups") view=backups::BackupsPage ssr=SsrMode::Async />
                    <Route path=path!("rewards") view=rewards::RewardsPage ssr=SsrMode::Async />
                    <Route path=path!("program") view=rules::ProgramPage ssr=SsrMode::Async />
                    <Route path=path!("numbers") view=numbers::NumbersPage ssr=SsrMode::Async />
                </ParentRoute>
            </Routes>
        </Router>
    }
}
