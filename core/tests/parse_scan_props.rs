//! Properties of the code parser over arbitrary input: whatever a scanner or a keyboard sends, it never
//! panics, and what it accepts is exactly the trimmed, upper-cased text it was given.

use loyalty_core::code::{ALPHABET, CLAIM_BODY_LEN, check_char, claim_code_from_body};
use loyalty_core::{LoyaltyError, ScanCode, parse_scan};
use proptest::prelude::*;

/// Cases per property: the parser is pure, so 256 of each run in well under a second.
const CASES: u32 = 256;

fn alphabet_char() -> impl Strategy<Value = char> {
    prop::sample::select(ALPHABET.to_vec()).prop_map(char::from)
}

fn body(len: usize) -> impl Strategy<Value = String> {
    prop::collection::vec(alphabet_char(), len).prop_map(String::from_iter)
}

/// A valid postcard code, from a random body.
fn claim_code() -> impl Strategy<Value = String> {
    body(CLAIM_BODY_LEN).prop_map(|b| claim_code_from_body(&b))
}

/// Text that looks like a code more often than chance would: a prefix, a dash, a body of any length, padding.
fn code_like() -> impl Strategy<Value = String> {
    "[ \t\r\n\u{a0}\u{2003}]{0,3}(clm|CLM|Clm|pub|PUB|mbr|MBR|XYZ|CL|)-?[2-9A-Za-z01\\- ]{0,45}[ \t\r\n\u{2003}]{0,3}"
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        ".*",
        code_like(),
        prop::collection::vec(any::<u8>(), 0..80)
            .prop_map(|bytes| String::from_utf8_lossy(&bytes).into_owned()),
    ]
}

fn accepted_text(code: &ScanCode) -> &str {
    match code {
        ScanCode::Claim(text) | ScanCode::Member(text) | ScanCode::Contact(text) => text,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: CASES, ..ProptestConfig::default() })]

    #[test]
    fn any_text_is_read_without_panicking_and_accepted_only_in_its_own_normal_form(raw in any_text()) {
        match parse_scan(&raw) {
            Ok(ScanCode::Contact(text)) => {
                // Handed on as typed, to be read as a phone number or email in the program's country.
                prop_assert_eq!(&text, raw.trim());
                prop_assert!(loyalty_core::contact::looks_like_contact(&text), "{}", text);
            }
            Ok(code) => {
                let text = accepted_text(&code);
                prop_assert_eq!(text, raw.trim().to_ascii_uppercase());
                let (prefix, body) = text.split_once('-').expect("an accepted code has a dash");
                prop_assert!(["CLM", "PUB", "MBR"].contains(&prefix), "{}", text);
                prop_assert!((4..=40).contains(&body.len()), "{}", text);
                prop_assert!(body.bytes().all(|b| ALPHABET.contains(&b)), "{}", text);
                // Reading what was accepted gives the same answer again.
                prop_assert_eq!(parse_scan(text), Ok(code.clone()));
                if let ScanCode::Claim(claim) = &code {
                    prop_assert_eq!(claim_code_from_body(&claim[4..4 + CLAIM_BODY_LEN]), claim.clone());
                }
            }
            Err(err) => prop_assert!(
                matches!(err, LoyaltyError::MalformedCode | LoyaltyError::MistypedCode),
                "{:?}", err
            ),
        }
    }

    #[test]
    fn every_generated_postcard_reads_back_in_any_case_with_any_padding(
        code in claim_code(),
        lower in prop::collection::vec(any::<bool>(), 17),
        before in "[ \t\r\n]{0,4}",
        after in "[ \t\r\n]{0,4}",
    ) {
        let typed: String = code
            .chars()
            .zip(&lower)
            .map(|(c, lower)| if *lower { c.to_ascii_lowercase() } else { c })
            .collect();
        prop_assert_eq!(parse_scan(&format!("{before}{typed}{after}")), Ok(ScanCode::Claim(code)));
    }

    #[test]
    fn exactly_one_last_character_completes_a_postcard(body in body(CLAIM_BODY_LEN)) {
        let accepted: Vec<u8> = ALPHABET
            .iter()
            .copied()
            .filter(|last| {
                let code = format!("CLM-{body}{}", char::from(*last));
                match parse_scan(&code) {
                    Ok(ScanCode::Claim(_)) => true,
                    Ok(ScanCode::Member(_) | ScanCode::Contact(_)) => panic!("{code} read as a member pass"),
                    Err(err) => {
                        assert_eq!(err, LoyaltyError::MistypedCode, "{code}");
                        false
                    }
                }
            })
            .collect();
        prop_assert_eq!(accepted, vec![check_char(body.as_bytes())]);
    }

    #[test]
    fn a_single_changed_character_or_swapped_pair_in_a_postcard_is_a_typo(
        code in claim_code(),
        at in 4usize..4 + CLAIM_BODY_LEN + 1,
        other in alphabet_char(),
    ) {
        let mut changed = code.clone().into_bytes();
        changed[at] = other as u8;
        let changed = String::from_utf8(changed).unwrap();
        if changed != code {
            prop_assert_eq!(parse_scan(&changed), Err(LoyaltyError::MistypedCode));
        }
        if at < 4 + CLAIM_BODY_LEN {
            let mut swapped = code.clone().into_bytes();
            swapped.swap(at, at + 1);
            let swapped = String::from_utf8(swapped).unwrap();
            if swapped != code {
                prop_assert_eq!(parse_scan(&swapped), Err(LoyaltyError::MistypedCode));
            }
        }
    }

    #[test]
    fn member_passes_of_every_origin_and_length_are_members(
        prefix in prop::sample::select(vec!["PUB", "MBR", "CLM"]),
        body in (4usize..=40).prop_flat_map(body),
    ) {
        let id = format!("{prefix}-{body}");
        let expected = if prefix == "CLM" && body.len() == CLAIM_BODY_LEN + 1 {
            // A postcard-length CLM- id is read as a postcard: accepted only with its check character.
            if check_char(&body.as_bytes()[..CLAIM_BODY_LEN]) == body.as_bytes()[CLAIM_BODY_LEN] {
                Ok(ScanCode::Claim(id.clone()))
            } else {
                Err(LoyaltyError::MistypedCode)
            }
        } else {
            Ok(ScanCode::Member(id.clone()))
        };
        prop_assert_eq!(parse_scan(&id.to_ascii_lowercase()), expected);
    }

    #[test]
    fn a_body_with_any_character_outside_the_alphabet_is_malformed(
        prefix in prop::sample::select(vec!["PUB", "MBR", "CLM"]),
        left in body(3),
        right in body(3),
        bad in any::<char>().prop_filter("outside the alphabet", |c| {
            !c.is_ascii() || !ALPHABET.contains(&(c.to_ascii_uppercase() as u8))
        }),
    ) {
        let id = format!("{prefix}-{left}{bad}{right}");
        // Padding a code with whitespace is fine; whitespace inside it is not.
        prop_assert_eq!(parse_scan(&id), Err(LoyaltyError::MalformedCode), "{:?}", id);
    }
}
