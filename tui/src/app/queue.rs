//! Earns taken while the server cannot be reached: written to the journal before the clerk hears "queued",
//! sent in order once the server is back, each under its own idempotency key, and refusals kept for the clerk.

use chrono::Utc;
use loyalty_core::LoyaltyError;
use loyalty_core::wire::PointsReceipt;
use uuid::Uuid;

use super::{App, Command, MemberPanel, PendingPoints, Tone, Unanswered, doing, lower_first};
use crate::client::PointsRequest;
use crate::journal::{Backlog, QueuedEarn, Record};

/// The journal's backlog as the terminal works through it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Queue {
    pub backlog: Backlog,
    /// The first waiting earn, out to the server.
    pub sending: Option<Uuid>,
    /// The server turned the last one away (a throttle, a failure): sending waits for its next health check.
    held: bool,
    /// Earns the server took since the queue last emptied, and how many of them it had taken before.
    sent: usize,
    already: usize,
}

impl Queue {
    pub fn new(backlog: Backlog) -> Self {
        Self {
            backlog,
            ..Self::default()
        }
    }

    pub fn waiting(&self) -> usize {
        self.backlog.waiting.len()
    }

    /// Earns waiting for this pass, oldest first.
    pub fn waiting_for<'a>(&'a self, external_id: &'a str) -> impl Iterator<Item = &'a QueuedEarn> {
        self.backlog
            .waiting
            .iter()
            .filter(move |earn| earn.external_id == external_id)
    }
}

/// "1 earn" or "3 earns".
pub fn earns(count: usize) -> String {
    match count {
        1 => "1 earn".to_owned(),
        n => format!("{n} earns"),
    }
}

impl App {
    /// Whether the server is known to be out of reach: earns are then queued, and what needs the server is
    /// refused at once.
    pub fn offline(&self) -> bool {
        self.health.reachable == Some(false)
    }

    /// Refuses what needs the server while it cannot be reached, and checks again at once.
    pub(super) fn refuse_offline(&mut self, what: &str) -> Vec<Command> {
        self.tell(
            Tone::Warning,
            format!(
                "Offline: {what} needs the server, which cannot be reached. Earns are queued; try this again \
                 when it is back."
            ),
        );
        self.check_health_now()
    }

    /// Writes the earn to the journal; the clerk hears "queued" once it is on disk.
    pub(super) fn queue_earn(&mut self, request: PointsRequest) -> Vec<Command> {
        let (staff_email, staff_name) = match &self.session {
            Some(session) => (session.email.clone(), session.staff_name.clone()),
            None => (self.sign_in.email.trim().to_owned(), String::new()),
        };
        vec![Command::Record(Record::Queued(QueuedEarn {
            idempotency_key: request.idempotency_key,
            external_id: request.external_id,
            points: request.points,
            note: request.note,
            sale_amount: request.sale_amount,
            sold_at: request.sold_at.unwrap_or_else(Utc::now),
            staff_email,
            staff_name,
            till: self.till.clone(),
        }))]
    }

    /// The journal's answer to a record the state asked for.
    pub(super) fn on_recorded(&mut self, record: Record, result: Result<(), String>) {
        match (record, result) {
            (Record::Queued(earn), Ok(())) => {
                let what = doing(&earn.request());
                let for_pass = earn.external_id.clone();
                self.queue.backlog.apply(&Record::Queued(earn));
                self.tell(
                    Tone::Success,
                    format!(
                        "Queued: {what} for {for_pass}, sent when the server is back ({} waiting).",
                        earns(self.queue.waiting())
                    ),
                );
            }
            (Record::Queued(earn), Err(e)) => {
                self.tell(
                    Tone::Error,
                    format!(
                        "The earn could not be written to the journal ({e}), so it is not queued: t sends it when \
                         the server is back, x drops it."
                    ),
                );
                self.counter.points = Some(PendingPoints::Unanswered(Unanswered {
                    request: earn.request(),
                    detail: format!("not queued: {e}"),
                }));
            }
            (_, Err(e)) => self.tell(
                Tone::Warning,
                format!(
                    "The journal could not record this ({e}): after a restart the terminal may send or list it \
                     again, never apply it twice."
                ),
            ),
            (_, Ok(())) => {}
        }
    }

    /// The next waiting earn to send, when the server is back and someone is signed in.
    pub(super) fn continue_sending(&mut self) -> Option<Command> {
        if self.session.is_none()
            || self.health.reachable != Some(true)
            || self.queue.sending.is_some()
            || self.queue.held
        {
            return None;
        }
        let earn = self.queue.backlog.waiting.first()?.clone();
        self.queue.sending = Some(earn.idempotency_key);
        Some(Command::Replay(earn))
    }

    /// The health check answered that the server is up: a held queue may go on.
    pub(super) fn release_queue(&mut self) {
        self.queue.held = false;
    }

    pub(super) fn on_replayed(
        &mut self,
        earn: QueuedEarn,
        result: Result<PointsReceipt, LoyaltyError>,
    ) -> Vec<Command> {
        if self.queue.sending == Some(earn.idempotency_key) {
            self.queue.sending = None;
        }
        let key = earn.idempotency_key;
        match result {
            Ok(receipt) => {
                let record = Record::Applied {
                    idempotency_key: key,
                    transaction_id: receipt.transaction_id,
                    new_balance: receipt.new_balance,
                    replayed: receipt.replayed,
                };
                self.queue.backlog.apply(&record);
                self.queue.sent += 1;
                if receipt.replayed {
                    self.queue.already += 1;
                }
                let mut commands = vec![Command::Record(record)];
                if self.queue.waiting() == 0 {
                    self.tell_all_sent();
                }
                if let MemberPanel::Shown { member, .. } = &self.counter.panel
                    && member.external_id == earn.external_id
                {
                    commands.push(Command::LoadMember {
                        external_id: earn.external_id,
                    });
                }
                commands
            }
            Err(e) if e.may_have_gone_through() => {
                if e.unreachable() {
                    self.health.lost(self.ticks);
                } else {
                    self.queue.held = true;
                }
                Vec::new()
            }
            Err(e) if turned_away(&e) => {
                self.queue.held = true;
                if e == LoyaltyError::NotSignedIn {
                    self.fail(e);
                } else {
                    self.tell(
                        Tone::Warning,
                        format!("Sending the queued earns waits: {e}"),
                    );
                }
                Vec::new()
            }
            Err(error) => {
                self.tell(
                    Tone::Warning,
                    format!(
                        "The server refused a queued earn, {} for {}: {error} It is listed: d once dealt with.",
                        lower_first(&doing(&earn.request())),
                        earn.external_id,
                    ),
                );
                let record = Record::Refused {
                    idempotency_key: key,
                    error,
                };
                self.queue.backlog.apply(&record);
                if self.queue.waiting() == 0 && self.queue.sent > 0 {
                    self.tell_all_sent();
                }
                vec![Command::Record(record)]
            }
        }
    }

    /// The clerk dealt with the first refused earn: the journal forgets it.
    pub(super) fn dismiss_refused(&mut self) -> Vec<Command> {
        let Some(first) = self.queue.backlog.refused.first() else {
            return Vec::new();
        };
        let record = Record::Dismissed {
            idempotency_key: first.earn.idempotency_key,
        };
        let text = format!(
            "Dealt with: {} for {}.",
            lower_first(&doing(&first.earn.request())),
            first.earn.external_id
        );
        self.queue.backlog.apply(&record);
        self.tell(Tone::Info, text);
        vec![Command::Record(record)]
    }

    fn tell_all_sent(&mut self) {
        let sent = std::mem::take(&mut self.queue.sent);
        let already = std::mem::take(&mut self.queue.already);
        let refused = self.queue.backlog.refused.len();
        let mut text = format!("The server is back: the queue is sent ({}).", earns(sent));
        if already > 0 {
            text.push_str(&format!(
                " {} had gone through before the outage: not applied again.",
                earns(already)
            ));
        }
        if refused > 0 {
            text.push_str(&format!(" {} refused: listed below.", earns(refused)));
        }
        self.tell(Tone::Success, text);
    }
}

/// A refusal at the door (session, form, throttle), which says nothing about the earn itself.
pub(super) fn turned_away(e: &LoyaltyError) -> bool {
    matches!(
        e,
        LoyaltyError::NotSignedIn
            | LoyaltyError::CsrfRejected
            | LoyaltyError::Throttled { .. }
            | LoyaltyError::ManagersOnly
    )
}
