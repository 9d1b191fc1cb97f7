//! Earning and redeeming: one request at a time, and one that got no answer is settled before the next, by
//! sending it again under its own idempotency key or by dropping it.

use loyalty_core::LoyaltyError;
use loyalty_core::wire::{PointsReceipt, TxType};

use super::{App, Awaiting, Command, MemberPanel, Prompt, Tone};
use crate::client::PointsRequest;
use crate::event::Attempt;

/// An earn or redeem on its way, or one that got no answer: it may or may not have gone through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PendingPoints {
    /// Sent for the first time, waiting for its answer.
    Sending(PointsRequest),
    /// No answer came; the clerk sends it again or drops it.
    Unanswered(Unanswered),
    /// Sent again, waiting for its answer.
    Resending(Unanswered),
}

/// An earn or redeem that got no answer, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unanswered {
    pub request: PointsRequest,
    pub detail: String,
}

impl PendingPoints {
    /// The request waiting for its answer, if one is out.
    pub fn out(&self) -> Option<&PointsRequest> {
        match self {
            Self::Sending(request) => Some(request),
            Self::Resending(unanswered) => Some(&unanswered.request),
            Self::Unanswered(_) => None,
        }
    }

    pub fn unanswered(&self) -> Option<&Unanswered> {
        match self {
            Self::Sending(_) => None,
            Self::Unanswered(unanswered) | Self::Resending(unanswered) => Some(unanswered),
        }
    }

    /// What the clerk is waiting for while the request is out.
    pub(super) fn waiting(&self) -> Option<String> {
        match self {
            Self::Sending(request) => Some(format!(
                "{} for {}…",
                doing(request.tx_type, request.points),
                request.external_id
            )),
            Self::Resending(Unanswered { request, .. }) => Some(format!(
                "Sending again: {} for {}…",
                doing(request.tx_type, request.points).to_lowercase(),
                request.external_id
            )),
            Self::Unanswered(_) => None,
        }
    }
}

impl App {
    pub(super) fn ask_amount(&mut self, tx_type: TxType) -> Vec<Command> {
        if self.counter.member().is_none() {
            self.tell(Tone::Info, "Scan a member's pass first.");
            return Vec::new();
        }
        match self.counter.points {
            Some(PendingPoints::Sending(_) | PendingPoints::Resending(_)) => {
                self.tell(Tone::Info, "Wait for the answer to the last request.");
            }
            Some(PendingPoints::Unanswered(_)) => self.tell(
                Tone::Warning,
                "First settle the unanswered request: t sends it again (never twice), x drops it.",
            ),
            None => self.counter.prompt = Prompt::Amount(tx_type),
        }
        Vec::new()
    }

    pub(super) fn send_points(&mut self, request: PointsRequest) -> Vec<Command> {
        self.counter.points = Some(PendingPoints::Sending(request.clone()));
        self.awaiting = Some(Awaiting::Points);
        vec![Command::Points {
            request,
            attempt: Attempt::First,
        }]
    }

    /// Sends the unanswered request again, with its own idempotency key.
    pub(super) fn retry(&mut self) -> Vec<Command> {
        let Some(PendingPoints::Unanswered(unanswered)) = &self.counter.points else {
            return Vec::new();
        };
        let request = unanswered.request.clone();
        self.counter.points = Some(PendingPoints::Resending(unanswered.clone()));
        self.awaiting = Some(Awaiting::Points);
        vec![Command::Points {
            request,
            attempt: Attempt::Retry,
        }]
    }

    pub(super) fn drop_unanswered(&mut self) -> Vec<Command> {
        if let Some(PendingPoints::Unanswered(_)) = self.counter.points {
            self.counter.points = None;
            self.tell(
                Tone::Warning,
                "Dropped the unanswered request: check the member's transactions before trying again.",
            );
        }
        Vec::new()
    }

    pub(super) fn on_points_answer(
        &mut self,
        request: PointsRequest,
        attempt: Attempt,
        result: Result<PointsReceipt, LoyaltyError>,
    ) -> Vec<Command> {
        if self.counter.points.as_ref().and_then(PendingPoints::out) == Some(&request) {
            // Answered: what was sent again stays unanswered until the result below settles it.
            self.counter.points = match self.counter.points.take() {
                Some(PendingPoints::Resending(unanswered)) => {
                    Some(PendingPoints::Unanswered(unanswered))
                }
                _ => None,
            };
            if self.awaiting == Some(Awaiting::Points) {
                self.awaiting = None;
            }
        }
        let settles = |points: &Option<PendingPoints>| {
            matches!(points, Some(PendingPoints::Unanswered(u))
                if u.request.idempotency_key == request.idempotency_key)
        };
        match result {
            Ok(receipt) => {
                if settles(&self.counter.points) {
                    self.counter.points = None;
                }
                self.tell(Tone::Success, receipt_sentence(&receipt, attempt));
                match &mut self.counter.panel {
                    MemberPanel::Shown { member, .. }
                        if member.external_id == receipt.external_id =>
                    {
                        member.points = receipt.new_balance;
                        vec![Command::LoadMember {
                            external_id: receipt.external_id,
                        }]
                    }
                    _ => Vec::new(),
                }
            }
            Err(e) if may_have_gone_through(&e) => {
                let detail = match &e {
                    LoyaltyError::Network { detail } => detail.clone(),
                    other => other.to_string(),
                };
                if let LoyaltyError::Network { .. } = e {
                    self.health.reachable = Some(false);
                }
                self.tell(
                    Tone::Warning,
                    format!(
                        "No answer to \"{}\": it may or may not have gone through.",
                        doing(request.tx_type, request.points),
                    ),
                );
                self.counter.points =
                    Some(PendingPoints::Unanswered(Unanswered { request, detail }));
                Vec::new()
            }
            Err(e) => {
                // A refusal at the door (session, form, throttle) says nothing about an earlier attempt.
                let turned_away = matches!(
                    e,
                    LoyaltyError::NotSignedIn
                        | LoyaltyError::CsrfRejected
                        | LoyaltyError::Throttled { .. }
                        | LoyaltyError::ManagersOnly
                );
                if !turned_away && settles(&self.counter.points) {
                    self.counter.points = None;
                }
                self.fail(e);
                Vec::new()
            }
        }
    }
}

/// Failures after which the server may have applied the request without the answer reaching us.
fn may_have_gone_through(e: &LoyaltyError) -> bool {
    matches!(
        e,
        LoyaltyError::Network { .. } | LoyaltyError::Unavailable | LoyaltyError::Internal
    )
}

/// "Earn 50 points" or "Redeem 20 points".
pub fn doing(tx_type: TxType, points: i64) -> String {
    match tx_type {
        TxType::Earn => format!("Earn {points} points"),
        TxType::Redeem => format!("Redeem {points} points"),
    }
}

fn done(tx_type: TxType) -> &'static str {
    match tx_type {
        TxType::Earn => "earned",
        TxType::Redeem => "redeemed",
    }
}

/// What a receipt means to the clerk, saying for a retry whether the first attempt had gone through.
pub fn receipt_sentence(receipt: &PointsReceipt, attempt: Attempt) -> String {
    let what = format!(
        "{} points {} for {}",
        receipt.points,
        done(receipt.tx_type),
        receipt.external_id
    );
    match (attempt, receipt.replayed) {
        (Attempt::First, false) => format!("{what}: new balance {} points.", receipt.new_balance),
        (Attempt::First, true) => format!(
            "Already done: {what}, once. Balance {} points.",
            receipt.new_balance
        ),
        (Attempt::Retry, true) => format!(
            "The first attempt had gone through: {what}, once. Balance {} points.",
            receipt.new_balance
        ),
        (Attempt::Retry, false) => format!(
            "The first attempt had not gone through; now {what}: new balance {} points.",
            receipt.new_balance
        ),
    }
}
