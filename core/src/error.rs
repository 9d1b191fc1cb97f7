//! The one error type: codes from SQL become variants, and each variant a sentence a clerk understands.
//!
//! The variants are the one list of codes: each variant's name, in SCREAMING_SNAKE_CASE, is at once its
//! [`LoyaltyError::code`], its `code` on the wire and the `error` a database function answers with, and its
//! fields are the ones that answer carries.

use chrono::{DateTime, Datelike, FixedOffset};
use serde::{Deserialize, Serialize};

pub type Result<T, E = LoyaltyError> = std::result::Result<T, E>;

/// The fewest characters a staff password may have.
pub const PASSWORD_MIN_CHARS: usize = 10;
/// The longest reason a void may give.
pub const VOID_REASON_MAX_CHARS: usize = 400;

/// Everything that can go wrong, from the database to the clerk's screen.
///
/// On the wire it is `{"code": "ALREADY_CLAIMED", ...fields}`; [`LoyaltyError::code`] gives the same code.
#[derive(
    Debug,
    Clone,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    thiserror::Error,
    strum::IntoStaticStr,
    strum::VariantNames,
)]
#[serde(tag = "code", rename_all = "SCREAMING_SNAKE_CASE")]
#[strum(serialize_all = "SCREAMING_SNAKE_CASE")]
pub enum LoyaltyError {
    // Scanning and claiming postcards.
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
    #[error(
        "This postcard's offer ended on {}: it can no longer be claimed.",
        day(last_day)
    )]
    CodeExpired { last_day: chrono::NaiveDate },

    // Batches of postcards.
    #[error("No such batch of postcards in this program.")]
    BatchNotFound,
    #[error("This batch was already withdrawn on {}.", day(voided_at))]
    BatchAlreadyVoided { voided_at: DateTime<FixedOffset> },
    #[error("Name the batch in 1 to 100 characters.")]
    InvalidBatchName,
    #[error("A batch holds from 1 to 100,000 postcards.")]
    InvalidBatchSize,
    #[error("This form is out of date: reload the page and try again.")]
    InvalidRequestKey,

    // Earning and redeeming.
    #[error("No member with this pass in this program.")]
    MemberNotFound,
    #[error(
        "Enter a phone number (+33 6 12 34 56 78, or as dialled in the country) or an email address."
    )]
    InvalidContact,
    #[error("This {} is already on another member's pass.", kind.label())]
    ContactTaken { kind: crate::ContactKind },
    #[error("No member of this program has this phone number or email.")]
    ContactNotFound,
    #[error(
        "Only a sale, a reward or points given or taken at the counter can be returned: not a void, an expiry, a move to a new pass, a manager's adjustment or a return itself."
    )]
    CannotReverse,
    #[error(
        "You can return your own entries within {minutes} minutes: ask a manager to return this one."
    )]
    ReversalNotAllowed { minutes: i64 },
    #[error("Only {remaining} points of this entry are left to return.")]
    ReversalTooLarge { remaining: i64 },
    #[error("This pass was replaced on {} and no longer works.", day(replaced_at))]
    PassReplaced { replaced_at: DateTime<FixedOffset> },
    #[error("Not enough points: the balance is {balance} points.")]
    InsufficientFunds { balance: i64 },
    #[error("Enter a whole number of points from 1 to 1,000,000.")]
    InvalidAmount,
    #[error("Unknown kind of transaction.")]
    InvalidType,
    #[error("The note is too long: keep it under 500 characters.")]
    InvalidDescription,
    #[error(
        "Points typed by hand are a manager's adjustment: record the sale, or redeem a reward, instead."
    )]
    AdjustmentForManagers,
    #[error("Say why the balance is adjusted: a reason of 3 to 500 characters.")]
    ReasonRequired,
    #[error("This request's idempotency key must be 1 to 200 characters long.")]
    InvalidIdempotencyKey,
    #[error("This request was already used for a different transaction. Start it again.")]
    IdempotencyMismatch,
    #[error("This balance cannot grow any further (it is {balance} points).")]
    BalanceLimit { balance: i64 },
    #[error("The time of the sale could not be read: give it as 2026-11-27T14:05:00Z.")]
    InvalidSaleTime,
    #[error("The time of the sale is in the future: check the till's clock.")]
    SaleInTheFuture,
    #[error("This sale is more than {limit_days} days old: too late to earn points for it.")]
    SaleTooOld { limit_days: i64 },

    // Sales and the program's rules.
    #[error("Enter the sale's amount in {currency}, like 12.50.")]
    InvalidSaleAmount { currency: String },
    #[error("A sale of {amount} earns no points ({rate}).")]
    NoPointsForSale { amount: String, rate: String },
    #[error(
        "Give the currency as its three-letter code (EUR, GBP, JPY) and its digits after the point (0 to 3)."
    )]
    InvalidCurrency,
    #[error("The earning rate is 1 to 1,000 points per amount of at least one minor unit.")]
    InvalidEarnRate,
    #[error("The cap per sale is 1 to 1,000,000 points, or empty for none.")]
    InvalidSaleCap,
    #[error("Welcome points are a whole number from 0 to 100,000.")]
    InvalidWelcomePoints,
    #[error("Name the promotion in 1 to 100 characters.")]
    InvalidPromotionName,
    #[error("A promotion multiplies points by more than 1 and at most 10 (101% to 1000%).")]
    InvalidMultiplier,
    #[error("Choose the days of the week the promotion runs on.")]
    InvalidWeekdays,
    #[error("A promotion's hours start before they end, like 14:00 to 17:00.")]
    InvalidPromotionHours,
    #[error("No such promotion in this program.")]
    PromotionNotFound,
    #[error("Points expire after 1 to 120 months, or never (empty).")]
    InvalidExpiry,
    #[error(
        "Give the country calling code as 1 to 3 digits, like 33 for France or 1 for the United States."
    )]
    InvalidCallingCode,
    #[error("A clerk's time to return their own entries is 1 to 10,080 minutes (a week).")]
    InvalidReturnMinutes,

    // The rewards catalog.
    #[error("No such reward in this program's catalog.")]
    RewardNotFound,
    #[error("This reward has been taken out of the catalog.")]
    RewardRetired,
    #[error("{reward} is out of stock.")]
    OutOfStock { reward: String },
    #[error("This member has already had {reward} {} today.", times(*limit))]
    RewardLimitReached { reward: String, limit: i64 },
    #[error("Name the reward in 1 to 100 characters.")]
    InvalidRewardName,
    #[error("A reward costs a whole number of points from 1 to 1,000,000.")]
    InvalidRewardCost,
    #[error("The stock is a whole number from 0 to 1,000,000, or empty for no limit.")]
    InvalidRewardStock,
    #[error("The limit per member per day is a whole number from 1 to 100, or empty for none.")]
    InvalidRewardLimit,

    // The program, its history and voids.
    #[error("This program does not exist.")]
    ProgramNotFound,
    #[error("Choose a time zone from the list, such as Europe/Paris.")]
    InvalidTimeZone,
    #[error("No such transaction in this program.")]
    TransactionNotFound,
    #[error("This transaction was already voided.")]
    AlreadyVoided,
    #[error("A void cannot itself be voided.")]
    CannotVoidAVoid,
    #[error("Give a reason for the void, up to {VOID_REASON_MAX_CHARS} characters.")]
    InvalidVoidReason,
    #[error("Enter the {bound} date as year-month-day, like 2026-11-27.")]
    InvalidDate { bound: DateBound },
    // Passes in the phone's wallet.
    #[error("This wallet pass could not be authenticated.")]
    WalletUnauthorized,
    #[error("The phone's wallet sent a device or push token that is not valid.")]
    InvalidWalletDevice,
    #[error("Unknown wallet channel: the server's wallet settings name webhook, apple or google.")]
    InvalidWalletChannel,
    #[error("This kind of wallet pass is not set up for this program.")]
    WalletNotSetUp,

    #[error("The start date is after the end date.")]
    StartAfterEnd,
    #[error("Choose earn, redeem, expired or all types.")]
    InvalidTypeFilter,
    #[error("That is not a member pass id: it is too long.")]
    MemberFilterTooLong,
    #[error("That is not a staff email address: it is too long.")]
    StaffFilterTooLong,
    #[error("The filter holds characters that cannot be searched for.")]
    UnsearchableFilter,
    #[error("This link to older transactions is broken: start again from the newest.")]
    BrokenCursor,

    // Staff, sign-in and sessions.
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
    #[error("You cannot change your own access here: ask another manager.")]
    OwnAccount,
    #[error("Say what to change: switch the account on or off, or give a new password.")]
    NothingToChange,
    #[error("Enter a valid email address.")]
    InvalidEmail,
    #[error("Enter a name of up to 100 characters.")]
    InvalidStaffName,
    #[error("Choose clerk or manager.")]
    InvalidRole,
    #[error("Choose a password of at least {PASSWORD_MIN_CHARS} characters.")]
    PasswordTooShort,
    #[error("{email} already has an account in this program.")]
    EmailTaken { email: String },
    #[error("That is not your current password.")]
    WrongCurrentPassword,

    // Requests.
    #[error("Too many attempts: wait {retry_after_secs} seconds and try again.")]
    Throttled { retry_after_secs: u64 },
    #[error("This form has expired: reload the page and try again.")]
    CsrfRejected,
    #[error("The text holds characters that cannot be saved: remove them and try again.")]
    UnsavableText,
    /// A request the server cannot read; `field` names the field at fault, where one is.
    #[error("{message}")]
    InvalidInput {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        field: Option<String>,
        message: String,
    },
    #[error("The loyalty service is unavailable right now. Try again in a moment.")]
    Unavailable,
    #[error("Could not reach the server: {detail}")]
    Network { detail: String },
    #[error("Something went wrong on our side. It has been logged; try again.")]
    Internal,
}

/// Which end of a date filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DateBound {
    Start,
    End,
}

impl std::fmt::Display for DateBound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Start => "start",
            Self::End => "end",
        })
    }
}

impl LoyaltyError {
    /// The stable code programs match on: the variant's name in SCREAMING_SNAKE_CASE, as on the wire.
    pub fn code(&self) -> &'static str {
        self.into()
    }

    /// The error a `code` names, with the fields its answer carries (`balance`, `claimed_at`...): how a
    /// database function's refusal, or a code carried in a link, becomes its variant. `None` for a code that
    /// names no variant, or without the fields its variant needs.
    pub fn from_code(
        code: &str,
        mut fields: serde_json::Map<String, serde_json::Value>,
    ) -> Option<Self> {
        fields.insert("code".into(), serde_json::Value::String(code.into()));
        serde_json::from_value(serde_json::Value::Object(fields)).ok()
    }

    /// The HTTP status an answer carrying this error has: decided here, for every answer.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::NotSignedIn | Self::BadCredentials | Self::WalletUnauthorized => 401,
            Self::ManagersOnly
            | Self::ReversalNotAllowed { .. }
            | Self::AdjustmentForManagers
            | Self::CsrfRejected
            | Self::AccountSwitchedOff => 403,
            Self::MemberNotFound
            | Self::ContactNotFound
            | Self::StaffNotFound
            | Self::ProgramNotFound
            | Self::TransactionNotFound
            | Self::BatchNotFound
            | Self::RewardNotFound
            | Self::PromotionNotFound
            | Self::WalletNotSetUp => 404,
            Self::AlreadyClaimed { .. }
            | Self::ContactTaken { .. }
            | Self::ReversalTooLarge { .. }
            | Self::IdempotencyMismatch
            | Self::AlreadyVoided
            | Self::BatchAlreadyVoided { .. } => 409,
            Self::CodeVoided { .. }
            | Self::CodeExpired { .. }
            | Self::RewardRetired
            | Self::PassReplaced { .. } => 410,
            Self::OutOfStock { .. } | Self::RewardLimitReached { .. } => 409,
            Self::Throttled { .. } => 429,
            Self::Unavailable => 503,
            Self::Network { .. } | Self::Internal => 500,
            _ => 422,
        }
    }

    /// The server could not be reached, or answered that it cannot serve now: a change sent may or may not have
    /// been made, and it waits for the server to be back.
    pub fn unreachable(&self) -> bool {
        matches!(self, Self::Network { .. } | Self::Unavailable)
    }

    /// Whether a change that got this answer may have been made all the same: sent again with its idempotency
    /// key, it is made once.
    pub fn may_have_gone_through(&self) -> bool {
        self.unreachable() || *self == Self::Internal
    }

    /// The moment the error names: a claim, a withdrawal.
    pub fn moment(&self) -> Option<DateTime<FixedOffset>> {
        match self {
            Self::AlreadyClaimed { claimed_at: at }
            | Self::CodeVoided { voided_at: at }
            | Self::BatchAlreadyVoided { voided_at: at }
            | Self::PassReplaced { replaced_at: at } => Some(*at),
            _ => None,
        }
    }

    /// The same, to change: its offset says on which clock a clerk reads it, and the server sets it to the
    /// program's time zone.
    pub fn moment_mut(&mut self) -> Option<&mut DateTime<FixedOffset>> {
        match self {
            Self::AlreadyClaimed { claimed_at: at }
            | Self::CodeVoided { voided_at: at }
            | Self::BatchAlreadyVoided { voided_at: at }
            | Self::PassReplaced { replaced_at: at } => Some(at),
            _ => None,
        }
    }
}

/// How many times, as a clerk says it: once, twice, 3 times.
fn times(n: i64) -> String {
    match n {
        1 => "once".into(),
        2 => "twice".into(),
        n => format!("{n} times"),
    }
}

/// A day as a clerk says it, on the clock `at` is given in: 3 Nov 2026.
pub fn day(at: &impl Datelike) -> String {
    chrono::NaiveDate::from_num_days_from_ce_opt(at.num_days_from_ce())
        .map(|date| date.format("%-d %b %Y").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;

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
                ServerFnErrorErr::Args(problem) | ServerFnErrorErr::MissingArg(problem) => {
                    Self::InvalidInput {
                        field: field_named(&problem),
                        message: format!("The request was not understood: {problem}"),
                    }
                }
                _ => Self::Internal,
            }
        }
    }

    /// The field a decoder's complaint names, as in "missing field `points`".
    fn field_named(problem: &str) -> Option<String> {
        let (_, rest) = problem.split_once('`')?;
        let (field, _) = rest.split_once('`')?;
        Some(field.to_owned())
    }

    #[cfg(test)]
    #[test]
    fn an_unreadable_request_names_its_field() {
        let err = LoyaltyError::from_server_fn_error(ServerFnErrorErr::Args(
            "missing field `points`".into(),
        ));
        assert!(
            matches!(&err, LoyaltyError::InvalidInput { field: Some(f), .. } if f == "points"),
            "{err:?}"
        );
        assert_eq!(err.code(), "INVALID_INPUT");
        assert_eq!(err.http_status(), 422);
    }
}
