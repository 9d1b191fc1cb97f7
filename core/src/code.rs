//! Reading what a scanner or a clerk typed, before anything reaches the database.

use crate::error::LoyaltyError;

/// The characters of every code and pass id: no 0/O, 1/I/L look-alikes.
pub const ALPHABET: &[u8; 31] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// Random characters in a postcard's claim code, before its check character.
pub const CLAIM_BODY_LEN: usize = 12;

/// What a scanned code asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanCode {
    /// A postcard: `CLM-` and 12 random characters plus a check character.
    Claim(String),
    /// A member pass: `PUB-`, `MBR-` or (for a claimed postcard's pass) `CLM-` and its id.
    Member(String),
    /// A member's phone number or email, as typed: the server reads it in the program's country.
    Contact(String),
}

/// Reads a scanned or typed code: trims it, accepts any case, refuses garbage and mistyped postcards.
pub fn parse_scan(raw: &str) -> Result<ScanCode, LoyaltyError> {
    if crate::contact::looks_like_contact(raw) {
        return Ok(ScanCode::Contact(raw.trim().to_owned()));
    }
    let text = raw.trim().to_ascii_uppercase();
    let (prefix, body) = text.split_once('-').ok_or(LoyaltyError::MalformedCode)?;
    if body.len() < 4 || body.len() > 40 || !body.bytes().all(|b| ALPHABET.contains(&b)) {
        return Err(LoyaltyError::MalformedCode);
    }
    match prefix {
        "CLM" if body.len() == CLAIM_BODY_LEN + 1 => {
            if check_char(&body.as_bytes()[..CLAIM_BODY_LEN]) == body.as_bytes()[CLAIM_BODY_LEN] {
                Ok(ScanCode::Claim(text))
            } else {
                Err(LoyaltyError::MistypedCode)
            }
        }
        "CLM" | "PUB" | "MBR" => Ok(ScanCode::Member(text)),
        _ => Err(LoyaltyError::MalformedCode),
    }
}

/// The check character that makes the weighted sum of a code (weights 1, 2, 3, … over the body and the check
/// character itself) divisible by 31. Since 31 is prime and larger than the code, any single changed character
/// and any swap of two neighbours changes that sum, so every such typo is caught.
pub fn check_char(body: &[u8]) -> u8 {
    let weighted: usize = body
        .iter()
        .enumerate()
        .map(|(i, b)| (i + 1) * value(*b))
        .sum();
    let check_weight = body.len() + 1;
    // Solve weighted + check_weight * v ≡ 0 (mod 31) by trying the 31 values.
    let v = (0..31)
        .find(|v| (weighted + check_weight * v) % 31 == 0)
        .expect("31 is prime and the weight is not a multiple of it");
    ALPHABET[v]
}

fn value(b: u8) -> usize {
    ALPHABET.iter().position(|a| *a == b).unwrap_or(0)
}

/// A claim code from 12 random characters: `CLM-` + body + check character.
pub fn claim_code_from_body(body: &str) -> String {
    format!("CLM-{body}{}", check_char(body.as_bytes()) as char)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &str = "7KQ2M9XRT4PB";

    #[test]
    fn a_generated_claim_code_reads_back_in_any_case_and_with_spaces() {
        let code = claim_code_from_body(BODY);
        assert_eq!(parse_scan(&code), Ok(ScanCode::Claim(code.clone())));
        let sloppy = format!("  {}\n", code.to_ascii_lowercase());
        assert_eq!(parse_scan(&sloppy), Ok(ScanCode::Claim(code)));
    }

    #[test]
    fn member_passes_of_every_origin_are_members() {
        for id in ["PUB-ABCD2345XY", "mbr-ABCD2345XY", "CLM-ABCD2345XY"] {
            assert_eq!(
                parse_scan(id),
                Ok(ScanCode::Member(id.to_ascii_uppercase()))
            );
        }
    }

    #[test]
    fn garbage_is_refused_before_the_database() {
        for raw in [
            "",
            "   ",
            "CLM",
            "CLM-",
            "XYZ-ABCDEFGH",
            "CLM-AB",
            "CLM-ABC0EFGH",
            "CLM-ABCDEFGH; drop table",
            "PUB-ABCD EFGH",
        ] {
            assert_eq!(parse_scan(raw), Err(LoyaltyError::MalformedCode), "{raw:?}");
        }
    }

    #[test]
    fn every_single_character_typo_in_a_claim_code_is_caught() {
        let code = claim_code_from_body(BODY);
        let bytes = code.as_bytes();
        for pos in 4..bytes.len() {
            for &other in ALPHABET.iter().filter(|a| **a != bytes[pos]) {
                let mut typo = bytes.to_vec();
                typo[pos] = other;
                let typo = String::from_utf8(typo).unwrap();
                assert_eq!(parse_scan(&typo), Err(LoyaltyError::MistypedCode), "{typo}");
            }
        }
    }

    #[test]
    fn every_swap_of_neighbours_in_a_claim_code_is_caught() {
        let code = claim_code_from_body(BODY);
        let bytes = code.as_bytes();
        let mut swaps = 0;
        for pos in 4..bytes.len() - 1 {
            if bytes[pos] == bytes[pos + 1] {
                continue;
            }
            let mut typo = bytes.to_vec();
            typo.swap(pos, pos + 1);
            let typo = String::from_utf8(typo).unwrap();
            assert_eq!(parse_scan(&typo), Err(LoyaltyError::MistypedCode), "{typo}");
            swaps += 1;
        }
        assert_eq!(swaps, CLAIM_BODY_LEN);
    }
}
