//! Earning and redeeming: one request at a time, and one that got no answer is settled before the next, by
//! sending it again under its own idempotency key or by dropping it.

use loyalty_core::LoyaltyError;
use loyalty_core::wire::{PointsReceipt, TxType};

use super::queue::turned_away;
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
        if self.counter.pass().is_none() {
            self.tell(Tone::Info, "Scan a member's pass first.");
            return Vec::new();
        }
        if tx_type == TxType::Redeem && self.offline() {
            return self.refuse_offline("a redeem");
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
        if self.offline() {
            return match request.tx_type {
                TxType::Earn => self.queue_earn(request),
                TxType::Redeem | TxType::Expire => self.refuse_offline("a redeem"),
            };
        }
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
        let was_out = self.counter.points.as_ref().and_then(PendingPoints::out) == Some(&request);
        if was_out {
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
            Err(e) if e.unreachable() && request.tx_type == TxType::Earn && was_out => {
                // The server cannot be reached: the earn waits in the journal under its own key, and is applied
                // once whether or not this attempt had reached it.
                if settles(&self.counter.points) {
                    self.counter.points = None;
                }
                self.health.lost(self.ticks);
                self.queue_earn(request)
            }
            Err(e) if e.may_have_gone_through() => {
                let detail = match &e {
                    LoyaltyError::Network { detail } => detail.clone(),
                    other => other.to_string(),
                };
                if e.unreachable() {
                    self.health.lost(self.ticks);
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
                if !turned_away(&e) && settles(&self.counter.points) {
                    self.counter.points = None;
                }
                self.fail(e);
                Vec::new()
            }
        }
    }
}

/// "Earn 50 points" or "Redeem 20 points".
pub fn doing(tx_type: TxType, points: i64) -> String {
    match tx_type {
        TxType::Earn => format!("Earn {points} points"),
        TxType::Redeem => format!("Redeem {points} points"),
        TxType::Expire => format!("Expire {points} points"),
    }
}

fn done(tx_type: TxType) -> &'static str {
    match tx_type {
        TxType::Earn => "earned",
        TxType::Redeem => "redeemed",
        TxType::Expire => "expired",
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
