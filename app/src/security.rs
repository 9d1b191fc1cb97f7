//! The Content-Security-Policy of the dashboard: only its own scripts run, the inline hydration script by the
//! nonce Leptos gives each rendered page, and no other site may frame it.

use axum::http::HeaderValue;
use axum::http::header::CONTENT_SECURITY_POLICY;
use leptos::prelude::use_context;

/// The policy, allowing the inline scripts that carry `nonce` when one is given. The browser code is a module
/// from `/pkg/` that compiles WebAssembly (`'wasm-unsafe-eval'`, which allows no JavaScript `eval`).
pub fn content_security_policy(nonce: Option<&str>) -> String {
    let inline = nonce.map_or_else(String::new, |nonce| format!(" 'nonce-{nonce}'"));
    format!(
        "default-src 'self'; script-src 'self'{inline} 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; \
         frame-ancestors 'none'"
    )
}

/// Gives the page being rendered the policy with its own nonce; answers that are no page keep the server's
/// nonce-free policy.
pub fn use_page_policy() {
    let (Some(nonce), Some(response)) = (
        leptos::nonce::use_nonce(),
        use_context::<leptos_axum::ResponseOptions>(),
    ) else {
        return;
    };
    if let Ok(policy) = HeaderValue::from_str(&content_security_policy(Some(&nonce))) {
        response.insert_header(CONTENT_SECURITY_POLICY, policy);
    }
}
