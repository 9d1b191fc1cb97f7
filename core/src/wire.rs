//! What the API sends and receives: shared by the server, the web pages and the counter terminal.

use chrono::{DateTime, NaiveDateTime, Timelike, Utc};
use serde::{Deserialize, Serialize};

/// How a pass came to be, read from its external id's prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PassOrigin {
    /// `PUB-`: public sign-up.
    Public,
    /// `CLM-`: a claimed postcard.
    Postcard,
    /// `MBR-`: enrolled at the counter.
    Counter,
}

impl PassOrigin {
    pub fn of(external_id: &str) -> Self {
        match external_id.get(..4) {
            Some("PUB-") => Self::Public,
            Some("CLM-") => Self::Postcard,
            _ => Self::Counter,
        }
    }

    pub fn describe(self) -> &'static str {
        match self {
            Self::Public => "signed up online",
            Self::Postcard => "claimed a postcard",
            Self::Counter => "enrolled at the counter",
        }
    }
}

/// A member pass and its balance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    pub external_id: String,
    pub points: i64,
    pub origin: PassOrigin,
    pub created_at: DateTime<Utc>,
}

/// What scanning a code led to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ScanOutcome {
    /// A postcard was burned and became this new member pass.
    Claimed { code: String, member: Member },
    /// An existing member's pass.
    Member { member: Member },
}

impl ScanOutcome {
    pub fn member(&self) -> &Member {
        match self {
            Self::Claimed { member, .. } | Self::Member { member } => member,
        }
    }
}

/// Earn or redeem; or points past their date, taken off by an expiry run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TxType {
    Earn,
    Redeem,
    Expire,
}

impl TxType {
    /// Whether the row adds to the balance (an earn) or takes from it.
    pub fn adds(self) -> bool {
        self == Self::Earn
    }

    /// The type as a clerk reads it in a ledger.
    pub fn label(self) -> &'static str {
        match self {
            Self::Earn => "Earn",
            Self::Redeem => "Redeem",
            Self::Expire => "Expired",
        }
    }

    /// The type as the database spells it.
    pub fn as_sql(self) -> &'static str {
        match self {
            Self::Earn => "EARN",
            Self::Redeem => "REDEEM",
            Self::Expire => "EXPIRE",
        }
    }

    pub fn from_sql(s: &str) -> Option<Self> {
        match s {
            "EARN" => Some(Self::Earn),
            "REDEEM" => Some(Self::Redeem),
            "EXPIRE" => Some(Self::Expire),
            _ => None,
        }
    }
}

/// The answer to an earn or a redeem that went through.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PointsReceipt {
    pub external_id: String,
    pub tx_type: TxType,
    pub points: i64,
    pub new_balance: i64,
    pub transaction_id: i64,
    pub created_at: DateTime<Utc>,
    /// True when this answer is the replay of an earlier call with the same idempotency key.
    pub replayed: bool,
    /// The reward redeemed, for a reward's redeem.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reward: Option<String>,
    /// How a sale's points were counted: "12.50 EUR -> 12 points, 1 point per 1.00 EUR, x2 Tuesday afternoons".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

/// A reward of the program's catalog: what a member's points buy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reward {
    pub id: i64,
    pub name: String,
    pub points_cost: i64,
    /// How many are left; `None` for no limit.
    pub stock: Option<i64>,
    /// How many one member may have on one day; `None` for no limit.
    pub daily_limit: Option<i64>,
}

/// One row of a member's ledger or of the program's history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub id: i64,
    pub external_id: String,
    pub tx_type: TxType,
    pub points: i64,
    pub balance_after: i64,
    pub description: Option<String>,
    pub staff_name: Option<String>,
    pub created_at: DateTime<Utc>,
    /// The same moment on the program's clock (its time zone), as its staff read it.
    pub local_at: NaiveDateTime,
    /// The transaction this entry undoes, when it is a void.
    pub voids: Option<i64>,
    /// The void that undid this entry, if any.
    pub voided_by: Option<i64>,
    /// When the sale happened, where the till said so (an earn taken offline and sent later).
    #[serde(default)]
    pub sold_at: Option<DateTime<Utc>>,
    /// The same moment on the program's clock.
    #[serde(default)]
    pub local_sold_at: Option<NaiveDateTime>,
}

impl LedgerEntry {
    /// The time of the sale on the program's clock, where it is not the minute the entry was recorded in.
    pub fn sold_apart(&self) -> Option<NaiveDateTime> {
        let minute = |at: NaiveDateTime| (at.date(), at.hour(), at.minute());
        self.local_sold_at
            .filter(|sold| minute(*sold) != minute(self.local_at))
    }
}

/// A member with their most recent ledger rows, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberDetail {
    pub member: Member,
    pub ledger: Vec<LedgerEntry>,
    /// The next points to expire and the day they do, on the program's clock, where the program's points expire.
    #[serde(default)]
    pub next_expiry: Option<(i64, chrono::NaiveDate)>,
    /// The hints of the member's phone number and email, where they gave them.
    #[serde(default)]
    pub contacts: Vec<ContactHint>,
    /// When the pass was replaced by a new one, and that pass's id: it no longer works.
    #[serde(default)]
    pub replaced: Option<(DateTime<Utc>, String)>,
}

/// What the program keeps of a member's phone number or email to show: `... 4821`, `a...@example.com`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactHint {
    pub kind: crate::ContactKind,
    pub hint: String,
}

/// What a staff member may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    Clerk,
    Manager,
}

impl Role {
    pub fn as_sql(self) -> &'static str {
        match self {
            Self::Clerk => "clerk",
            Self::Manager => "manager",
        }
    }

    pub fn from_sql(s: &str) -> Option<Self> {
        match s {
            "clerk" => Some(Self::Clerk),
            "manager" => Some(Self::Manager),
            _ => None,
        }
    }
}

/// The signed-in staff member, as the API tells it. `csrf_token` goes with every state-changing request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffSession {
    pub staff_name: String,
    pub email: String,
    pub role: Role,
    pub program_name: String,
    /// The program's time zone (`Europe/Paris`, say): the clock of its days and of the times staff read.
    pub time_zone: String,
    pub csrf_token: String,
}

/// The manager's history filter. Every field is optional; dates are whole days of the program's, inclusive.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryFilter {
    pub from: Option<chrono::NaiveDate>,
    pub to: Option<chrono::NaiveDate>,
    pub tx_type: Option<TxType>,
    /// A member's external id.
    pub member: Option<String>,
    /// A staff member's email.
    pub staff: Option<String>,
}

/// Sums over everything the filter matches, not just one page.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryTotals {
    pub transactions: i64,
    pub earned: i64,
    pub redeemed: i64,
    /// Points taken off by expiry runs.
    #[serde(default)]
    pub expired: i64,
}

/// Points earned and redeemed on one day, for the chart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyPoints {
    pub day: chrono::NaiveDate,
    pub earned: i64,
    pub redeemed: i64,
}

/// One page of history, newest first. `next_cursor` fetches the next (older) page. The sums come apart, in
/// [`HistorySummary`], so a page costs the same however many rows the filter matches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryPage {
    pub entries: Vec<LedgerEntry>,
    pub next_cursor: Option<String>,
    /// The program's time zone, the clock of the entries' `local_at` and of the filter's days.
    pub time_zone: String,
}

/// The sums over everything a history filter matches, and the same per day of the program's (oldest first) for
/// the chart.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistorySummary {
    pub totals: HistoryTotals,
    pub daily: Vec<DailyPoints>,
}

/// A return at the counter: points of an earn taken back (a purchase brought back), or of a redeem given back
/// (a reward not handed over).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reversal {
    /// The ledger row returned.
    pub original_id: i64,
    /// The ledger row that returned the points; none when an earn's points were all spent already.
    pub transaction_id: Option<i64>,
    /// The points asked to be returned.
    pub requested: i64,
    /// The points that moved: fewer than asked where an earn's points were spent already.
    pub points: i64,
    /// The points of an earn already spent, which the balance could not give back.
    pub shortfall: i64,
    pub new_balance: i64,
    /// What is left of the original row to return.
    pub remaining: i64,
    pub replayed: bool,
}

impl Reversal {
    /// What the return did, as the clerk reads it.
    pub fn describe(&self) -> String {
        let mut text = format!(
            "Returned {} of {} points of #{}: the balance is now {}.",
            self.points, self.requested, self.original_id, self.new_balance
        );
        if self.shortfall > 0 {
            text.push_str(&format!(
                " {} points were already spent and could not be taken back.",
                self.shortfall
            ));
        }
        text
    }
}
