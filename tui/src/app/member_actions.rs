//! What the counter does for the member on screen besides earning and redeeming: their phone number or email,
//! finding a member by one, and returns of their sales and rewards.

use crossterm::event::{KeyCode, KeyEvent};
use loyalty_core::LoyaltyError;
use loyalty_core::wire::TxType;

use super::counter::{Ledger, MemberPanel, Prompt};
use super::{App, Awaiting, Command, Tone};

/// The longest phone number or email the prompts take.
const MAX_CONTACT_CHARS: usize = 254;

impl App {
    pub(super) fn ask_contact(&mut self) -> Vec<Command> {
        if self.counter.pass().is_none() {
            self.tell(
                Tone::Info,
                "Scan a pass first: a adds a phone number or email for its member.",
            );
        } else if self.offline() {
            return self.refuse_offline("giving a phone number or email");
        } else {
            self.counter.prompt = Prompt::Contact;
        }
        Vec::new()
    }

    /// A line of free text, a phone number or email: what Enter sends, once typed.
    pub(super) fn on_text_key(&mut self, key: KeyEvent) -> Option<String> {
        let input = &mut self.counter.input;
        match key.code {
            KeyCode::Char(c) if input.chars().count() < MAX_CONTACT_CHARS => input.push(c),
            KeyCode::Backspace => {
                input.pop();
            }
            KeyCode::Esc => self.cancel_prompt(),
            KeyCode::Enter => {
                let typed = std::mem::take(&mut self.counter.input);
                self.counter.prompt = Prompt::Scan;
                if typed.trim().is_empty() {
                    self.tell(Tone::Info, "Cancelled: nothing was sent.");
                    return None;
                }
                return Some(typed.trim().to_owned());
            }
            _ => {}
        }
        None
    }

    pub(super) fn on_contact_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let Some(contact) = self.on_text_key(key) else {
            return Vec::new();
        };
        let Some(external_id) = self.counter.pass().map(str::to_owned) else {
            return Vec::new();
        };
        self.awaiting = Some(Awaiting::Contact);
        vec![Command::SetContact {
            external_id,
            contact,
        }]
    }

    pub(super) fn ask_return(&mut self) -> Vec<Command> {
        let MemberPanel::Shown { ledger, .. } = &self.counter.panel else {
            if self.offline() {
                return self.refuse_offline("a return");
            }
            self.tell(
                Tone::Info,
                "Scan a pass first: u returns points of its sales and rewards.",
            );
            return Vec::new();
        };
        if self.offline() {
            return self.refuse_offline("a return");
        }
        // The newest row a return can take: an earn or a redeem, not a void, a move or a return itself.
        let newest = match ledger {
            Ledger::Loaded(entries) => entries
                .iter()
                .find(|e| {
                    e.tx_type != TxType::Expire
                        && e.voids.is_none()
                        && e.voided_by.is_none()
                        && !e.description.as_deref().is_some_and(|d| {
                            d.starts_with("Return of #") || d.starts_with("Moved ")
                        })
                })
                .map(|e| e.id),
            Ledger::Loading | Ledger::Failed(_) => None,
        };
        self.counter.prompt = Prompt::Return { newest };
        Vec::new()
    }

    pub(super) fn on_return_key(&mut self, key: KeyEvent, newest: Option<i64>) -> Vec<Command> {
        let Some(typed) = self.on_text_key(key) else {
            return Vec::new();
        };
        let numbers: Vec<Option<i64>> = typed
            .trim_start_matches('#')
            .split_whitespace()
            .map(|n| n.trim_start_matches('#').parse().ok())
            .collect();
        let (row, points) = match numbers[..] {
            [Some(points)] => (newest, points),
            [Some(row), Some(points)] => (Some(row), points),
            _ => {
                self.tell(
                    Tone::Error,
                    "Type the points to return, or the row's # and the points: 34 5.",
                );
                return Vec::new();
            }
        };
        let Some(transaction_id) = row else {
            self.tell(
                Tone::Error,
                "No sale or reward on screen to return: type its # and the points.",
            );
            return Vec::new();
        };
        self.awaiting = Some(Awaiting::Return);
        vec![Command::Reverse {
            transaction_id,
            points,
            idempotency_key: uuid::Uuid::new_v4().to_string(),
        }]
    }

    pub(super) fn on_reversed(
        &mut self,
        result: Result<loyalty_core::wire::Reversal, LoyaltyError>,
    ) -> Vec<Command> {
        if self.awaiting == Some(Awaiting::Return) {
            self.awaiting = None;
        }
        match result {
            Ok(done) => {
                self.tell(Tone::Success, done.describe());
                match self.counter.pass().map(str::to_owned) {
                    Some(external_id) => vec![Command::LoadMember { external_id }],
                    None => Vec::new(),
                }
            }
            Err(e) => {
                self.fail(e);
                Vec::new()
            }
        }
    }

    pub(super) fn on_find_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let Some(typed) = self.on_text_key(key) else {
            return Vec::new();
        };
        self.counter.panel = MemberPanel::LookingUp {
            code: typed.clone(),
        };
        self.awaiting = Some(Awaiting::Scan);
        vec![Command::Scan { code: typed }]
    }

    pub(super) fn on_contact_set(
        &mut self,
        external_id: &str,
        result: Result<loyalty_core::wire::ContactHint, LoyaltyError>,
    ) -> Vec<Command> {
        if self.awaiting == Some(Awaiting::Contact) {
            self.awaiting = None;
        }
        match result {
            Ok(hint) => {
                let kind = match hint.kind {
                    loyalty_core::ContactKind::Phone => "Phone",
                    loyalty_core::ContactKind::Email => "Email",
                };
                self.tell(
                    Tone::Success,
                    format!(
                        "{kind} {} kept for {external_id}: type it in the scan line to find them.",
                        hint.hint
                    ),
                );
            }
            Err(e) => self.fail(e),
        }
        Vec::new()
    }
}
