//! Every refusal a database function can give has its own variant of the one error type: the codes are read
//! from the live schema (schema/structure.sql), so a new refusal in SQL without its variant fails here.

use loyalty_core::LoyaltyError;
use strum::VariantNames;

/// The codes after each of `markers` in `sql`: `'error', 'CODE'` and `v_refusal := 'CODE'`.
fn refusal_codes(sql: &str) -> Vec<&str> {
    let markers = ["'error', '", "v_refusal := '"];
    let mut codes: Vec<&str> = markers
        .iter()
        .flat_map(|marker| sql.split(marker).skip(1))
        .filter_map(|rest| rest.split_once('\'').map(|(code, _)| code))
        .collect();
    codes.sort_unstable();
    codes.dedup();
    codes
}

#[test]
fn every_refusal_in_the_schema_has_its_variant() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../schema/structure.sql");
    let sql = std::fs::read_to_string(path).expect("the schema dump");
    let codes = refusal_codes(&sql);
    assert!(
        codes.len() >= 25,
        "the schema's refusals were not found: {codes:?}"
    );
    let missing: Vec<&&str> = codes
        .iter()
        .filter(|code| !LoyaltyError::VARIANTS.contains(code))
        .collect();
    assert_eq!(missing, Vec::<&&str>::new(), "refusals without a variant");
    for code in codes {
        assert_ne!(
            LoyaltyError::from_code(code, refusal_fields()).map(|e| e.code()),
            None,
            "{code} reads back as its variant"
        );
    }
}

/// The fields a refusal may carry, all present, so every variant can be made from them.
fn refusal_fields() -> serde_json::Map<String, serde_json::Value> {
    serde_json::json!({
        "claimed_at": "2026-11-03T15:04:05+00:00",
        "voided_at": "2026-11-03T15:04:05+00:00",
        "balance": 3,
        "retry_after_secs": 2,
        "limit_days": 7,
        "last_day": "2026-11-30",
        "reward": "Coffee",
        "limit": 1,
        "currency": "EUR",
        "amount": "0.50 EUR",
        "rate": "1 point per 1.00 EUR",
        "kind": "phone",
        "minutes": 30,
        "remaining": 3,
        "replaced_at": "2026-12-07T09:00:00+00:00",
    })
    .as_object()
    .cloned()
    .unwrap_or_default()
}
