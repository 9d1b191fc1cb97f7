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
            Self::Sending(request) => {
                Some(format!("{} for {}…", doing(request), request.external_id))
            }
            Self::Resending(Unanswered { request, .. }) => Some(format!(
                "Sending again: {} for {}…",
                lower_first(&doing(request)),
                request.external_id
            )),
            Self::Unanswered(_) => None,
        }
    }
}

impl App {
    pub(super) fn ask_amount(&mut self, tx_type: TxType) -> Vec<Command> {
        let offline = (tx_type == TxType::Redeem).then_some("a redeem");
        match self.ready_for_points(offline) {
            Ok(()) => self.counter.prompt = Prompt::Amount(tx_type),
            Err(commands) => return commands,
        }
        Vec::new()
    }

    /// Asks for the amount of a sale, whose points the server counts.
    pub(super) fn ask_sale(&mut self) -> Vec<Command> {
        match self.ready_for_points(None) {
            Ok(()) => self.counter.prompt = Prompt::Sale,
            Err(commands) => return commands,
        }
        Vec::new()
    }

    /// Reward `number` of the catalog (1 is the cheapest), to confirm.
    pub(super) fn pick_reward(&mut self, number: usize) -> Vec<Command> {
        if let Err(commands) = self.ready_for_points(Some("a reward")) {
            return commands;
        }
        let Some(external_id) = self.counter.pass().map(str::to_owned) else {
            return Vec::new();
        };
        match number.checked_sub(1).and_then(|at| self.rewards.get(at)) {
            Some(reward) => {
                self.counter.prompt =
                    Prompt::ConfirmPoints(PointsRequest::reward(&external_id, reward));
                Vec::new()
            }
            None => {
                let offered = match self.rewards.len() {
                    0 => "The program offers no rewards yet.".to_owned(),
                    1 => "The program offers one reward: press 1.".to_owned(),
                    n => format!("The program offers {n} rewards: press 1 to {}.", n.min(9)),
                };
                self.tell(
                    Tone::Info,
                    format!("There is no reward {number}. {offered}"),
                );
                vec![Command::LoadRewards]
            }
        }
    }

    /// Whether a new earn or redeem may be asked for now; if not, the clerk has been told why. `offline` names
    /// what cannot be done while the server cannot be reached.
    fn ready_for_points(&mut self, offline: Option<&str>) -> Result<(), Vec<Command>> {
        if self.counter.pass().is_none() {
            self.tell(Tone::Info, "Scan a member's pass first.");
            return Err(Vec::new());
        }
        if let Some(what) = offline.filter(|_| self.offline()) {
            return Err(self.refuse_offline(what));
        }
        match self.counter.points {
            Some(PendingPoints::Sending(_) | PendingPoints::Resending(_)) => {
                self.tell(Tone::Info, "Wait for the answer to the last request.");
                Err(Vec::new())
            }
            Some(PendingPoints::Unanswered(_)) => {
                self.tell(
                    Tone::Warning,
                    "First settle the unanswered request: t sends it again (never twice), x drops it.",
                );
                Err(Vec::new())
            }
            None => Ok(()),
        }
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
        // A reward's stock changes with every redeem, and a refusal may mean the catalog changed.
        let reload_rewards = request.reward.is_some().then_some(Command::LoadRewards);
        match result {
            Ok(receipt) => {
                if settles(&self.counter.points) {
                    self.counter.points = None;
                }
                self.tell(Tone::Success, receipt_sentence(&receipt, attempt));
                let mut commands: Vec<Command> = reload_rewards.into_iter().collect();
                if let MemberPanel::Shown { member, .. } = &mut self.counter.panel
                    && member.external_id == receipt.external_id
                {
                    member.points = receipt.new_balance;
                    commands.push(Command::LoadMember {
                        external_id: receipt.external_id,
                    });
                }
                commands
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
                        doing(&request),
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
                reload_rewards.into_iter().collect()
            }
        }
    }
}

/// "Earn 50 points", "Redeem 20 points (entered twice)", "Record a sale of 12.50" or "Redeem Coffee (100
/// points)".
pub fn doing(request: &PointsRequest) -> String {
    let points = request.points;
    match (&request.sale_amount, &request.reward, request.tx_type) {
        (Some(amount), _, _) => format!("Record a sale of {amount}"),
        (None, Some(reward), _) => format!("Redeem {} ({points} points)", reward.name),
        (None, None, tx_type) => {
            let verb = match tx_type {
                TxType::Earn => "Earn",
                TxType::Redeem => "Redeem",
                TxType::Expire => "Expire",
            };
            match &request.note {
                Some(reason) => format!("{verb} {points} points ({reason})"),
                None => format!("{verb} {points} points"),
            }
        }
    }
}

/// The sentence with its first letter in lower case, to go on after another.
pub fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
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
    let how = match (&receipt.reward, &receipt.rule) {
        (Some(reward), _) => format!(" ({reward})"),
        (None, Some(rule)) => format!(" ({rule})"),
        (None, None) => String::new(),
    };
    let what = format!(
        "{} points {} for {}{how}",
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
