//! The browser entry point: hydrates the pages the server rendered.

#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(app::App);
    // Lets browser tests wait until the page's own code handles clicks.
    let _ = js_sys::Reflect::set(&js_sys::global(), &"__loyaltyHydrated".into(), &true.into());
}
