//! Every variant's code, wire form and sentence.
use super::*;
use chrono::{TimeZone, Utc};
use serde_json::json;
use strum::VariantNames;

fn from_code(code: &str, fields: serde_json::Value) -> Option<LoyaltyError> {
    let serde_json::Value::Object(fields) = fields else {
        panic!("fields are an object")
    };
    LoyaltyError::from_code(code, fields)
}

/// One of each variant.
fn every_variant() -> Vec<LoyaltyError> {
    use LoyaltyError::*;
    let at = Utc
        .with_ymd_and_hms(2026, 11, 3, 15, 4, 5)
        .unwrap()
        .fixed_offset();
    vec![
        MalformedCode,
        MistypedCode,
        InvalidCode,
        AlreadyClaimed { claimed_at: at },
        CodeVoided { voided_at: at },
        CodeExpired {
            last_day: chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap(),
        },
        BatchNotFound,
        BatchAlreadyVoided { voided_at: at },
        InvalidBatchName,
        InvalidBatchSize,
        InvalidRequestKey,
        MemberNotFound,
        InvalidContact,
        ContactTaken {
            kind: crate::ContactKind::Phone,
        },
        ContactNotFound,
        PassReplaced { replaced_at: at },
        CannotReverse,
        ReversalNotAllowed { minutes: 30 },
        ReversalTooLarge { remaining: 3 },
        InsufficientFunds { balance: 7 },
        InvalidAmount,
        InvalidType,
        InvalidDescription,
        AdjustmentForManagers,
        ReasonRequired,
        InvalidIdempotencyKey,
        IdempotencyMismatch,
        BalanceLimit { balance: 9 },
        InvalidSaleTime,
        SaleInTheFuture,
        SaleTooOld { limit_days: 7 },
        InvalidSaleAmount {
            currency: "EUR".into(),
        },
        NoPointsForSale {
            amount: "0.50 EUR".into(),
            rate: "1 point per 1.00 EUR".into(),
        },
        InvalidCurrency,
        InvalidEarnRate,
        InvalidSaleCap,
        InvalidWelcomePoints,
        InvalidPromotionName,
        InvalidMultiplier,
        InvalidWeekdays,
        InvalidPromotionHours,
        PromotionNotFound,
        InvalidExpiry,
        InvalidCallingCode,
        InvalidReturnMinutes,
        RewardNotFound,
        RewardRetired,
        OutOfStock {
            reward: "Coffee".into(),
        },
        RewardLimitReached {
            reward: "Coffee".into(),
            limit: 2,
        },
        InvalidRewardName,
        InvalidRewardCost,
        InvalidRewardStock,
        InvalidRewardLimit,
        ProgramNotFound,
        InvalidTimeZone,
        TransactionNotFound,
        AlreadyVoided,
        CannotVoidAVoid,
        InvalidVoidReason,
        WalletUnauthorized,
        InvalidWalletDevice,
        InvalidWalletChannel,
        WalletNotSetUp,
        InvalidDate {
            bound: DateBound::End,
        },
        StartAfterEnd,
        InvalidTypeFilter,
        MemberFilterTooLong,
        StaffFilterTooLong,
        UnsearchableFilter,
        BrokenCursor,
        NotSignedIn,
        BadCredentials,
        ManagersOnly,
        AccountSwitchedOff,
        StaffNotFound,
        OwnAccount,
        NothingToChange,
        InvalidEmail,
        InvalidStaffName,
        InvalidRole,
        PasswordTooShort,
        EmailTaken {
            email: "ada@example.com".into(),
        },
        WrongCurrentPassword,
        Throttled {
            retry_after_secs: 4,
        },
        CsrfRejected,
        UnsavableText,
        InvalidInput {
            field: Some("points".into()),
            message: "The request was not understood.".into(),
        },
        Unavailable,
        Network {
            detail: "refused".into(),
        },
        Internal,
    ]
}

#[test]
fn every_variant_has_one_code_on_the_wire_in_code_and_from_the_database() {
    let examples = every_variant();
    let codes: Vec<&str> = examples.iter().map(LoyaltyError::code).collect();
    assert_eq!(
        codes.len(),
        LoyaltyError::VARIANTS.len(),
        "every_variant() lists each variant once"
    );
    for name in LoyaltyError::VARIANTS {
        assert!(codes.contains(name), "{name} has an example");
    }
    for err in examples {
        let json = serde_json::to_value(&err).unwrap();
        assert_eq!(json["code"], err.code());
        assert_eq!(
            serde_json::from_value::<LoyaltyError>(json.clone()).unwrap(),
            err
        );
        // A refusal with the same code and fields reads back as the same variant.
        let serde_json::Value::Object(mut fields) = json else {
            panic!("an object")
        };
        fields.remove("code");
        assert_eq!(
            LoyaltyError::from_code(err.code(), fields),
            Some(err.clone())
        );
        assert!(!err.to_string().is_empty());
    }
}

#[test]
fn a_refusal_of_the_database_reads_as_its_variant() {
    assert_eq!(
        from_code("INSUFFICIENT_FUNDS", json!({"balance": 40})),
        Some(LoyaltyError::InsufficientFunds { balance: 40 })
    );
    assert_eq!(
        from_code("OWN_ACCOUNT", json!({"success": false})),
        Some(LoyaltyError::OwnAccount)
    );
    let claimed = from_code(
        "ALREADY_CLAIMED",
        json!({"claimed_at": "2026-11-03T15:04:05.123456+00:00"}),
    )
    .unwrap();
    assert_eq!(claimed.code(), "ALREADY_CLAIMED");
    assert_eq!(
        claimed.to_string(),
        "This postcard has already been claimed on 3 Nov 2026."
    );
    assert_eq!(from_code("NO_SUCH_CODE", json!({})), None);
    assert_eq!(
        from_code("INSUFFICIENT_FUNDS", json!({})),
        None,
        "without the balance it names"
    );
}

#[test]
fn already_claimed_names_the_day() {
    let at = Utc.with_ymd_and_hms(2026, 11, 3, 15, 4, 5).unwrap();
    let err = LoyaltyError::AlreadyClaimed {
        claimed_at: at.fixed_offset(),
    };
    assert_eq!(
        err.to_string(),
        "This postcard has already been claimed on 3 Nov 2026."
    );
    assert_eq!(err.code(), "ALREADY_CLAIMED");
}

#[test]
fn a_withdrawn_postcard_names_the_day() {
    let at = Utc.with_ymd_and_hms(2026, 11, 3, 15, 4, 5).unwrap();
    let err = LoyaltyError::CodeVoided {
        voided_at: at.fixed_offset(),
    };
    assert_eq!(
        err.to_string(),
        "This postcard was withdrawn on 3 Nov 2026 and is no longer valid."
    );
    assert_eq!(err.code(), "CODE_VOIDED");
}

#[test]
fn the_day_is_the_one_on_the_programs_clock() {
    // 03:04 UTC on 4 Nov is still 3 Nov in New York (UTC-5 then).
    let at = Utc.with_ymd_and_hms(2026, 11, 4, 3, 4, 5).unwrap();
    let new_york = FixedOffset::west_opt(5 * 3600).unwrap();
    let err = LoyaltyError::AlreadyClaimed {
        claimed_at: at.with_timezone(&new_york),
    };
    assert_eq!(
        err.to_string(),
        "This postcard has already been claimed on 3 Nov 2026."
    );
    assert_eq!(day(&at), "4 Nov 2026", "the same moment on UTC's clock");
    assert_eq!(day(&at.date_naive()), "4 Nov 2026", "a date alone");
    let json = serde_json::to_value(&err).unwrap();
    assert_eq!(json["claimed_at"], "2026-11-03T22:04:05-05:00");
    assert_eq!(serde_json::from_value::<LoyaltyError>(json).unwrap(), err);
}

#[test]
fn sentences_name_their_numbers() {
    assert_eq!(
        LoyaltyError::InsufficientFunds { balance: 40 }.to_string(),
        "Not enough points: the balance is 40 points."
    );
    assert_eq!(
        LoyaltyError::PasswordTooShort.to_string(),
        "Choose a password of at least 10 characters."
    );
    assert_eq!(
        LoyaltyError::InvalidVoidReason.to_string(),
        "Give a reason for the void, up to 400 characters."
    );
    assert_eq!(
        LoyaltyError::InvalidDate {
            bound: DateBound::Start
        }
        .to_string(),
        "Enter the start date as year-month-day, like 2026-11-27."
    );
    assert_eq!(
        LoyaltyError::RewardLimitReached {
            reward: "Coffee".into(),
            limit: 1
        }
        .to_string(),
        "This member has already had Coffee once today."
    );
    assert_eq!(
        LoyaltyError::ContactTaken {
            kind: crate::ContactKind::Email
        }
        .to_string(),
        "This email is already on another member's pass."
    );
    let at = Utc
        .with_ymd_and_hms(2026, 12, 7, 9, 0, 0)
        .unwrap()
        .fixed_offset();
    assert_eq!(
        LoyaltyError::PassReplaced { replaced_at: at }.to_string(),
        "This pass was replaced on 7 Dec 2026 and no longer works."
    );
    assert_eq!(
        LoyaltyError::ReversalTooLarge { remaining: 7 }.to_string(),
        "Only 7 points of this entry are left to return."
    );
    assert_eq!(
        LoyaltyError::ContactNotFound.to_string(),
        "No member of this program has this phone number or email."
    );
    assert_eq!(
        LoyaltyError::InvalidContact.to_string(),
        "Enter a phone number (+33 6 12 34 56 78, or as dialled in the country) or an email address."
    );
    assert!(
        LoyaltyError::CannotReverse
            .to_string()
            .starts_with("Only a sale, a reward")
    );
    assert!(
        LoyaltyError::InvalidCallingCode
            .to_string()
            .contains("like 33 for France")
    );
    assert_eq!(
        LoyaltyError::InvalidReturnMinutes.to_string(),
        "A clerk's time to return their own entries is 1 to 10,080 minutes (a week)."
    );
}
