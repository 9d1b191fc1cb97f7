//! The one error type: codes from SQL become variants, and each variant a sentence a clerk understands.

use chrono::{DateTime, Datelike, FixedOffset};
use serde::{Deserialize, Serialize};

pub type Result<T, E = LoyaltyError> = std::result::Result<T, E>;

/// Everything that can go wrong, from the database to the clerk's screen.
///
/// On the wire it is `{"code": "ALREADY_CLAIMED", ...fields}`; [`LoyaltyError::code`] gives the same code.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "code", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LoyaltyError {
    #[error("That is not a code we recognise. Scan it again or type it carefully.")]
    MalformedCode,
    #[error("This postcard code has a typo: check each character and try again.")]
    MistypedCode,
    #[error("This code is not valid for this program.")]
    InvalidCode,
    #[error("This postcard has already been claimed on {}.", day(claimed_at))]
    AlreadyClaimed { claimed_at: DateTime<FixedOffset> },
    #[error(
        "This postcard was withdrawn on {} and is no longer valid.",
        day(voided_at)
    )]
    CodeVoided { voided_at: DateTime<FixedOffset> },
    #[error("No such batch of postcards in this program.")]
    BatchNotFound,
    #[error("This batch was already withdrawn on {}.", day(voided_at))]
    BatchAlreadyVoided { voided_at: DateTime<FixedOffset> },
    #[error("No member with this pass in this program.")]
    MemberNotFound,
    #[error("Not enough points: the balance is {balance} points.")]
    InsufficientFunds { balance: i64 },
    #[error("Enter a whole number of points from 1 to 1,000,000.")]
    InvalidAmount,
    #[error("Unknown kind of transaction.")]
    InvalidType,
    #[error("The note is too long: keep it under 500 characters.")]
    InvalidDescription,
    #[error("This request was already used for a different transaction. Start it again.")]
    IdempotencyMismatch,
    #[error("This balance cannot grow any further (it is {balance} points).")]
    BalanceLimit { balance: i64 },
    #[error("This program does not exist.")]
    ProgramNotFound,
    #[error("No such transaction in this program.")]
    TransactionNotFound,
    #[error("This transaction was already voided.")]
    AlreadyVoided,
    #[error("A void cannot itself be voided.")]
    CannotVoidAVoid,
    #[error("Please sign in.")]
    NotSignedIn,
    #[error("That email and password do not match.")]
    BadCredentials,
    #[error("This page is for managers.")]
    ManagersOnly,
    #[error("This account has been switched off. Ask a manager to switch it back on.")]
    AccountSwitchedOff,
    #[error("No such staff member in this program.")]
    StaffNotFound,
    #[error("Too many attempts: wait {retry_after_secs} seconds and try again.")]
    Throttled { retry_after_secs: u64 },
    #[error("This form has expired: reload the page and try again.")]
    CsrfRejected,
    #[error("{message}")]
    InvalidInput { message: String },
    #[error("The loyalty service is unavailable right now. Try again in a moment.")]
    Unavailable,
    #[error("Could not reach the server: {detail}")]
    Network { detail: String },
    #[error("Something went wrong on our side. It has been logged; try again.")]
    Internal,
}

impl LoyaltyError {
    /// The stable code programs match on.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MalformedCode => "MALFORMED_CODE",
            Self::MistypedCode => "MISTYPED_CODE",
            Self::InvalidCode => "INVALID_CODE",
            Self::AlreadyClaimed { .. } => "ALREADY_CLAIMED",
            Self::CodeVoided { .. } => "CODE_VOIDED",
            Self::BatchNotFound => "BATCH_NOT_FOUND",
            Self::BatchAlreadyVoided { .. } => "BATCH_ALREADY_VOIDED",
            Self::MemberNotFound => "MEMBER_NOT_FOUND",
            Self::InsufficientFunds { .. } => "INSUFFICIENT_FUNDS",
            Self::InvalidAmount => "INVALID_AMOUNT",
            Self::InvalidType => "INVALID_TYPE",
            Self::InvalidDescription => "INVALID_DESCRIPTION",
            Self::IdempotencyMismatch => "IDEMPOTENCY_MISMATCH",
            Self::BalanceLimit { .. } => "BALANCE_LIMIT",
            Self::ProgramNotFound => "PROGRAM_NOT_FOUND",
            Self::TransactionNotFound => "TRANSACTION_NOT_FOUND",
            Self::AlreadyVoided => "ALREADY_VOIDED",
            Self::CannotVoidAVoid => "CANNOT_VOID_A_VOID",
            Self::NotSignedIn => "NOT_SIGNED_IN",
            Self::BadCredentials => "BAD_CREDENTIALS",
            Self::ManagersOnly => "MANAGERS_ONLY",
            Self::AccountSwitchedOff => "ACCOUNT_SWITCHED_OFF",
            Self::StaffNotFound => "STAFF_NOT_FOUND",
            Self::Throttled { .. } => "THROTTLED",
            Self::CsrfRejected => "CSRF_REJECTED",
            Self::InvalidInput { .. } => "INVALID_INPUT",
            Self::Unavailable => "UNAVAILABLE",
            Self::Network { .. } => "NETWORK",
            Self::Internal => "INTERNAL",
        }
    }

    /// The HTTP status an API answer carries for this error.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::NotSignedIn | Self::BadCredentials => 401,
            Self::ManagersOnly | Self::CsrfRejected | Self::AccountSwitchedOff => 403,
            Self::MemberNotFound
            | Self::StaffNotFound
            | Self::ProgramNotFound
            | Self::TransactionNotFound
            | Self::BatchNotFound => 404,
            Self::AlreadyClaimed { .. }
            | Self::IdempotencyMismatch
            | Self::AlreadyVoided
            | Self::BatchAlreadyVoided { .. } => 409,
            Self::CodeVoided { .. } => 410,
            Self::Throttled { .. } => 429,
            Self::Unavailable => 503,
            Self::Network { .. } | Self::Internal => 500,
            _ => 422,
        }
    }

    /// The moment the error names: a claim, a withdrawal.
    pub fn moment(&self) -> Option<DateTime<FixedOffset>> {
        match self {
            Self::AlreadyClaimed { claimed_at: at }
            | Self::CodeVoided { voided_at: at }
            | Self::BatchAlreadyVoided { voided_at: at } => Some(*at),
            _ => None,
        }
    }

    /// The same, to change: its offset says on which clock a clerk reads it, and the server sets it to the
    /// program's time zone.
    pub fn moment_mut(&mut self) -> Option<&mut DateTime<FixedOffset>> {
        match self {
            Self::AlreadyClaimed { claimed_at: at }
            | Self::CodeVoided { voided_at: at }
            | Self::BatchAlreadyVoided { voided_at: at } => Some(at),
            _ => None,
        }
    }

    /// Maps the `error` of a refused RPC answer to its variant. `at` is the moment the answer names: its
    /// `claimed_at` or its `voided_at`.
    pub fn from_rpc(code: &str, at: Option<DateTime<FixedOffset>>, balance: Option<i64>) -> Self {
        match (code, at) {
            ("INVALID_CODE", _) => Self::InvalidCode,
            ("ALREADY_CLAIMED", Some(claimed_at)) => Self::AlreadyClaimed { claimed_at },
            ("CODE_VOIDED", Some(voided_at)) => Self::CodeVoided { voided_at },
            ("BATCH_NOT_FOUND", _) => Self::BatchNotFound,
            ("BATCH_ALREADY_VOIDED", Some(voided_at)) => Self::BatchAlreadyVoided { voided_at },
            ("MANAGERS_ONLY", _) => Self::ManagersOnly,
            ("NOT_SIGNED_IN", _) => Self::NotSignedIn,
            ("STAFF_NOT_FOUND", _) => Self::StaffNotFound,
            ("OWN_ACCOUNT", _) => Self::InvalidInput {
                message: "You cannot change your own access here: ask another manager.".into(),
            },
            ("INVALID_TIME_ZONE", _) => Self::InvalidInput {
                message: "Choose a time zone from the list, such as Europe/Paris.".into(),
            },
            ("INVALID_BATCH_NAME", _) => Self::InvalidInput {
                message: "Name the batch in 1 to 100 characters.".into(),
            },
            ("INVALID_BATCH_SIZE", _) => Self::InvalidInput {
                message: "A batch holds from 1 to 100,000 postcards.".into(),
            },
            ("INVALID_REQUEST_KEY", _) => Self::InvalidInput {
                message: "This form is out of date: reload the page and try again.".into(),
            },
            ("MEMBER_NOT_FOUND", _) => Self::MemberNotFound,
            ("INSUFFICIENT_FUNDS", _) => Self::InsufficientFunds {
                balance: balance.unwrap_or(0),
            },
            ("INVALID_AMOUNT", _) => Self::InvalidAmount,
            ("INVALID_TYPE", _) => Self::InvalidType,
            ("INVALID_DESCRIPTION", _) => Self::InvalidDescription,
            ("IDEMPOTENCY_MISMATCH", _) => Self::IdempotencyMismatch,
            ("BALANCE_LIMIT", _) => Self::BalanceLimit {
                balance: balance.unwrap_or(0),
            },
            ("PROGRAM_NOT_FOUND", _) => Self::ProgramNotFound,
            ("TRANSACTION_NOT_FOUND", _) => Self::TransactionNotFound,
            ("ALREADY_VOIDED", _) => Self::AlreadyVoided,
            ("CANNOT_VOID_A_VOID", _) => Self::CannotVoidAVoid,
            _ => Self::Internal,
        }
    }
}

/// A day as a clerk says it, on the clock `at` is given in: 3 Nov 2026.
pub fn day(at: &impl Datelike) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{} {} {}",
        at.day(),
        MONTHS[at.month0() as usize % 12],
        at.year()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    #[test]
    fn already_claimed_names_the_day() {
        let at = Utc.with_ymd_and_hms(2026, 11, 3, 15, 4, 5).unwrap();
        let err = LoyaltyError::from_rpc("ALREADY_CLAIMED", Some(at.fixed_offset()), None);
        assert_eq!(
            err.to_string(),
            "This postcard has already been claimed on 3 Nov 2026."
        );
        assert_eq!(err.code(), "ALREADY_CLAIMED");
    }

    #[test]
    fn a_withdrawn_postcard_names_the_day() {
        let at = Utc.with_ymd_and_hms(2026, 11, 3, 15, 4, 5).unwrap();
        let err = LoyaltyError::from_rpc("CODE_VOIDED", Some(at.fixed_offset()), None);
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
        let json = serde_json::to_value(&err).unwrap();
        assert_eq!(json["claimed_at"], "2026-11-03T22:04:05-05:00");
        assert_eq!(serde_json::from_value::<LoyaltyError>(json).unwrap(), err);
    }

    #[test]
    fn insufficient_funds_names_the_balance() {
        let err = LoyaltyError::from_rpc("INSUFFICIENT_FUNDS", None, Some(40));
        assert_eq!(
            err.to_string(),
            "Not enough points: the balance is 40 points."
        );
    }

    #[test]
    fn the_wire_form_carries_the_code_and_round_trips() {
        let at = Utc.with_ymd_and_hms(2026, 11, 3, 15, 4, 5).unwrap();
        for err in [
            LoyaltyError::InsufficientFunds { balance: 7 },
            LoyaltyError::AlreadyClaimed {
                claimed_at: at.fixed_offset(),
            },
            LoyaltyError::MemberNotFound,
            LoyaltyError::AccountSwitchedOff,
            LoyaltyError::StaffNotFound,
            LoyaltyError::Throttled {
                retry_after_secs: 4,
            },
        ] {
            let json = serde_json::to_value(&err).unwrap();
            assert_eq!(json["code"], err.code());
            assert_eq!(serde_json::from_value::<LoyaltyError>(json).unwrap(), err);
        }
    }
}

#[cfg(feature = "server-fn")]
mod server_fn_impl {
    use super::LoyaltyError;
    use server_fn::codec::JsonEncoding;
    use server_fn::error::{FromServerFnError, ServerFnErrorErr};

    impl FromServerFnError for LoyaltyError {
        type Encoder = JsonEncoding;

        fn from_server_fn_error(value: ServerFnErrorErr) -> Self {
            match value {
                ServerFnErrorErr::Request(detail) => Self::Network { detail },
                ServerFnErrorErr::Args(message) | ServerFnErrorErr::MissingArg(message) => {
                    Self::InvalidInput {
                        message: format!("The request was not understood: {message}"),
                    }
                }
                _ => Self::Internal,
            }
        }
    }
}
