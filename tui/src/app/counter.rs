//! The counter screen: the one input line and its prompts, and the member on screen with their last
//! transactions.

use crossterm::event::{KeyCode, KeyEvent};
use loyalty_core::wire::{LedgerEntry, Member, MemberDetail, ScanOutcome, TxType};
use loyalty_core::{LoyaltyError, ScanCode, parse_scan};

use super::{App, Awaiting, Command, PendingPoints, Tone, Unanswered};
use crate::client::PointsRequest;

/// The largest amount the server accepts, checked here too so a typo never leaves the counter.
const MAX_POINTS: i64 = 1_000_000;
/// The longest line of points and a reason: seven digits, a space and the 500 characters a reason may have.
const MAX_POINTS_LINE: usize = 508;
/// The longest sale amount the line takes: ten digits, a separator and three decimals.
const MAX_SALE_CHARS: usize = 14;

fn is_amount_char(c: char) -> bool {
    c.is_ascii_digit() || c == '.' || c == ','
}

/// Whether `text` reads as a sale amount: digits, then at most one separator and one to three decimals. The
/// server checks it against the program's currency.
fn is_sale_amount(text: &str) -> bool {
    let (whole, fraction) = match text.split_once(['.', ',']) {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit());
    digits(whole) && fraction.is_none_or(|f| digits(f) && f.len() <= 3)
}

/// What the one input line is for right now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Prompt {
    /// A code, from the scanner or typed, then Enter.
    #[default]
    Scan,
    /// How many points to earn or redeem for the member on screen.
    Amount(TxType),
    /// The amount of a sale, in the program's currency ("12.50"): the server counts its points.
    Sale,
    /// The amount is typed; Enter sends it.
    ConfirmPoints(PointsRequest),
    ConfirmEnrol,
    /// A phone number or email for the member on screen, so the counter can find them without their pass.
    Contact,
    /// A phone number or email to find a member by: the scan line's letter keys would take an email's letters.
    Find,
    /// Points to return of a ledger row: of `newest` (the newest sale or reward on screen) when only points are
    /// typed, or of the row typed before them ("34 5").
    Return {
        newest: Option<i64>,
    },
}

/// The member's recent transactions as far as they are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ledger {
    Loading,
    Loaded(Vec<LedgerEntry>),
    Failed(String),
}

/// What the member panel shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum MemberPanel {
    #[default]
    Empty,
    /// The latest scan sent: an answer to an earlier one must not take its place.
    LookingUp { code: String },
    Shown {
        member: Member,
        ledger: Ledger,
        /// The next points to expire and their day, once the ledger is loaded.
        expiry: Option<(i64, chrono::NaiveDate)>,
    },
    /// A pass scanned or typed while the server cannot be reached: not looked up, but earns for it are queued.
    Offline {
        external_id: String,
        /// A postcard's code: a pass if the postcard was claimed before, else it is claimed once the server is
        /// back, and an earn queued for it now is refused then.
        postcard: bool,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Counter {
    /// What is typed on the input line.
    pub input: String,
    pub prompt: Prompt,
    pub panel: MemberPanel,
    /// The earn or redeem not settled yet: out, or without an answer.
    pub points: Option<PendingPoints>,
    pub show_help: bool,
}

impl Counter {
    /// The member on screen.
    pub fn member(&self) -> Option<&Member> {
        match &self.panel {
            MemberPanel::Shown { member, .. } => Some(member),
            MemberPanel::Empty | MemberPanel::LookingUp { .. } | MemberPanel::Offline { .. } => {
                None
            }
        }
    }

    /// The pass on screen, looked up or taken offline.
    pub fn pass(&self) -> Option<&str> {
        match &self.panel {
            MemberPanel::Shown { member, .. } => Some(&member.external_id),
            MemberPanel::Offline { external_id, .. } => Some(external_id),
            MemberPanel::Empty | MemberPanel::LookingUp { .. } => None,
        }
    }

    /// The earn or redeem that got no answer, while it is not settled.
    pub fn unanswered(&self) -> Option<&Unanswered> {
        self.points.as_ref().and_then(PendingPoints::unanswered)
    }

    /// Back to an empty scan line.
    pub(super) fn clear_line(&mut self) {
        self.prompt = Prompt::Scan;
        self.input.clear();
    }
}

impl App {
    pub(super) fn on_counter_key(&mut self, key: KeyEvent) -> Vec<Command> {
        if let KeyCode::Char('?') = key.code {
            self.counter.show_help = !self.counter.show_help;
            return Vec::new();
        }
        if self.counter.show_help && matches!(key.code, KeyCode::Esc) {
            self.counter.show_help = false;
            return Vec::new();
        }
        self.counter.show_help = false;
        if key.code == KeyCode::F(5) {
            return self.retry();
        }
        match self.counter.prompt.clone() {
            Prompt::Scan => self.on_scan_key(key),
            Prompt::Amount(tx_type) => self.on_amount_key(key, tx_type),
            Prompt::Sale => self.on_sale_key(key),
            Prompt::ConfirmPoints(request) => {
                self.on_confirm_key(key, |app| app.send_points(request))
            }
            Prompt::ConfirmEnrol => self.on_confirm_key(key, Self::send_enrol),
            Prompt::Contact => self.on_contact_key(key),
            Prompt::Find => self.on_find_key(key),
            Prompt::Return { newest } => self.on_return_key(key, newest),
        }
    }

    fn on_scan_key(&mut self, key: KeyEvent) -> Vec<Command> {
        match key.code {
            KeyCode::Char(c) if self.counter.input.is_empty() => match c {
                'q' if self.counter.points.is_some() => {
                    self.tell(
                        Tone::Warning,
                        "An earn or redeem is still unanswered: t sends it again, x drops it, then q quits.",
                    );
                    Vec::new()
                }
                'q' => vec![Command::Quit],
                'e' => self.ask_amount(TxType::Earn),
                'r' => self.ask_amount(TxType::Redeem),
                's' => self.ask_sale(),
                'a' => self.ask_contact(),
                'u' => self.ask_return(),
                'f' if self.offline() => {
                    self.refuse_offline("finding a member by phone number or email")
                }
                'f' => {
                    self.counter.prompt = Prompt::Find;
                    Vec::new()
                }
                '1'..='9' => self.pick_reward(c as usize - '0' as usize),
                'n' if self.offline() => self.refuse_offline("enrolling a member"),
                'n' => {
                    self.counter.prompt = Prompt::ConfirmEnrol;
                    Vec::new()
                }
                't' => self.retry(),
                'x' => self.drop_unanswered(),
                'd' => self.dismiss_refused(),
                _ => {
                    self.counter.input.push(c);
                    Vec::new()
                }
            },
            KeyCode::Char(c) => {
                self.counter.input.push(c);
                Vec::new()
            }
            KeyCode::Backspace => {
                self.counter.input.pop();
                Vec::new()
            }
            KeyCode::Esc => {
                self.counter.input.clear();
                Vec::new()
            }
            KeyCode::Enter => self.scan(),
            _ => Vec::new(),
        }
    }

    /// Points typed by hand, then, after a space, the reason a manager gives for them: "50 coffee machine broken".
    fn on_amount_key(&mut self, key: KeyEvent, tx_type: TxType) -> Vec<Command> {
        let input = &mut self.counter.input;
        let reasoning = input.contains(' ');
        match key.code {
            KeyCode::Char(c) if reasoning && input.chars().count() < MAX_POINTS_LINE => {
                input.push(c)
            }
            KeyCode::Char(_) if reasoning => {}
            KeyCode::Char(c) if c.is_ascii_digit() && input.len() < 7 => input.push(c),
            KeyCode::Char(c) if c.is_ascii_digit() => {}
            KeyCode::Char(' ') if !input.is_empty() => input.push(' '),
            KeyCode::Char(c) => {
                // Anything but a digit is the start of a scan: the scan line always has the keyboard.
                self.cancel_prompt();
                self.counter.input.push(c);
            }
            KeyCode::Backspace => {
                input.pop();
            }
            KeyCode::Esc => self.cancel_prompt(),
            KeyCode::Enter => {
                let Some(external_id) = self.counter.pass().map(str::to_owned) else {
                    self.cancel_prompt();
                    return Vec::new();
                };
                let typed = std::mem::take(&mut self.counter.input);
                let (amount, reason) = typed.split_once(' ').unwrap_or((&typed, ""));
                match amount.parse::<i64>() {
                    Ok(points) if (1..=MAX_POINTS).contains(&points) => {
                        let mut request = PointsRequest::new(tx_type, &external_id, points);
                        request.note = Some(reason.trim().to_owned()).filter(|r| !r.is_empty());
                        self.counter.prompt = Prompt::ConfirmPoints(request);
                    }
                    _ => self.tell(Tone::Error, LoyaltyError::InvalidAmount.to_string()),
                }
            }
            _ => {}
        }
        Vec::new()
    }

    fn on_sale_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let input = &mut self.counter.input;
        match key.code {
            KeyCode::Char(c) if is_amount_char(c) && input.len() < MAX_SALE_CHARS => input.push(c),
            KeyCode::Char(c) if is_amount_char(c) => {}
            KeyCode::Char(c) => {
                // As with points: anything else starts a scan.
                self.cancel_prompt();
                self.counter.input.push(c);
            }
            KeyCode::Backspace => {
                input.pop();
            }
            KeyCode::Esc => self.cancel_prompt(),
            KeyCode::Enter => {
                let Some(external_id) = self.counter.pass().map(str::to_owned) else {
                    self.cancel_prompt();
                    return Vec::new();
                };
                let amount = std::mem::take(&mut self.counter.input);
                if is_sale_amount(&amount) {
                    self.counter.prompt =
                        Prompt::ConfirmPoints(PointsRequest::sale(&external_id, &amount));
                } else {
                    self.tell(Tone::Error, "Enter the sale's amount, like 12.50.");
                }
            }
            _ => {}
        }
        Vec::new()
    }

    fn on_confirm_key(
        &mut self,
        key: KeyEvent,
        confirm: impl FnOnce(&mut Self) -> Vec<Command>,
    ) -> Vec<Command> {
        match key.code {
            KeyCode::Enter => {
                self.counter.prompt = Prompt::Scan;
                confirm(self)
            }
            KeyCode::Esc => {
                self.cancel_prompt();
                Vec::new()
            }
            KeyCode::Char(c) => {
                self.cancel_prompt();
                self.counter.input.push(c);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    pub(super) fn cancel_prompt(&mut self) {
        if self.counter.prompt != Prompt::Scan {
            self.tell(Tone::Info, "Cancelled: nothing was sent.");
        }
        self.counter.clear_line();
    }

    fn scan(&mut self) -> Vec<Command> {
        let typed = std::mem::take(&mut self.counter.input);
        if typed.trim().is_empty() {
            return Vec::new();
        }
        // A new customer: the previous one's pass must never stay on screen while this one is looked up.
        if let MemberPanel::Shown { .. } | MemberPanel::Offline { .. } = self.counter.panel {
            self.counter.panel = MemberPanel::Empty;
        }
        match parse_scan(&typed) {
            Ok(scanned) if self.offline() => {
                let mut commands = self.open_offline(scanned);
                commands.extend(self.check_health_now());
                commands
            }
            Ok(ScanCode::Claim(code) | ScanCode::Member(code) | ScanCode::Contact(code)) => {
                self.counter.panel = MemberPanel::LookingUp { code: code.clone() };
                self.awaiting = Some(Awaiting::Scan);
                vec![Command::Scan { code }]
            }
            Err(e) => {
                self.tell(Tone::Error, e.to_string());
                Vec::new()
            }
        }
    }

    fn send_enrol(&mut self) -> Vec<Command> {
        self.counter.panel = MemberPanel::Empty;
        self.awaiting = Some(Awaiting::Enrol);
        vec![Command::Enrol]
    }

    pub(super) fn on_scanned(
        &mut self,
        code: String,
        result: Result<ScanOutcome, LoyaltyError>,
    ) -> Vec<Command> {
        if !matches!(&self.counter.panel, MemberPanel::LookingUp { code: latest } if *latest == code)
        {
            if let Ok(ScanOutcome::Claimed { member, .. }) = result {
                // Overtaken by a later request, but the postcard is burned: its new pass must not go unseen.
                self.tell(
                    Tone::Info,
                    format!(
                        "Postcard {code} claimed earlier: new member {}.",
                        member.external_id
                    ),
                );
            }
            return Vec::new();
        }
        if self.awaiting == Some(Awaiting::Scan) {
            self.awaiting = None;
        }
        match result {
            Ok(outcome) => {
                let member = outcome.member().clone();
                match &outcome {
                    ScanOutcome::Claimed { .. } => self.tell(
                        Tone::Success,
                        format!(
                            "Postcard {code} claimed: new member {}.",
                            member.external_id
                        ),
                    ),
                    ScanOutcome::Member { .. } => self.tell(
                        Tone::Info,
                        format!("Member {}: {} points.", member.external_id, member.points),
                    ),
                }
                self.show_member(member)
            }
            Err(e) if e.unreachable() => {
                self.fail(e);
                let scanned = parse_scan(&code).unwrap_or(ScanCode::Member(code));
                self.open_offline(scanned)
            }
            Err(e) => {
                self.counter.panel = MemberPanel::Empty;
                self.fail(e);
                Vec::new()
            }
        }
    }

    /// Shows a pass without looking it up, for earns queued until the server is back.
    fn open_offline(&mut self, scanned: ScanCode) -> Vec<Command> {
        let (external_id, postcard) = match scanned {
            ScanCode::Claim(code) => (code, true),
            ScanCode::Member(code) => (code, false),
            ScanCode::Contact(_) => {
                self.tell(
                    Tone::Warning,
                    "Offline: members cannot be found by phone or email now. Scan their pass instead.",
                );
                self.counter.panel = MemberPanel::Empty;
                self.counter.prompt = Prompt::Scan;
                return Vec::new();
            }
        };
        let mut text = format!(
            "Offline: {external_id} cannot be looked up now. e takes an earn, sent when the server is back."
        );
        if postcard {
            text.push_str(
                " A new postcard is claimed only then: scan it again when the server is back.",
            );
        }
        self.tell(Tone::Warning, text);
        self.counter.panel = MemberPanel::Offline {
            external_id,
            postcard,
        };
        self.counter.prompt = Prompt::Scan;
        Vec::new()
    }

    pub(super) fn on_member_loaded(
        &mut self,
        external_id: &str,
        result: Result<MemberDetail, LoyaltyError>,
    ) {
        let MemberPanel::Shown {
            member,
            ledger,
            expiry,
        } = &mut self.counter.panel
        else {
            return;
        };
        if member.external_id != external_id {
            return;
        }
        match result {
            Ok(detail) => {
                *member = detail.member;
                *ledger = Ledger::Loaded(detail.ledger);
                *expiry = detail.next_expiry;
            }
            Err(LoyaltyError::NotSignedIn) => self.fail(LoyaltyError::NotSignedIn),
            Err(e) => {
                *ledger = Ledger::Failed(e.to_string());
                if e.unreachable() {
                    self.health.lost(self.ticks);
                }
            }
        }
    }

    pub(super) fn on_enrolled(&mut self, result: Result<Member, LoyaltyError>) -> Vec<Command> {
        if self.awaiting == Some(Awaiting::Enrol) {
            self.awaiting = None;
        }
        match result {
            Ok(member) => {
                self.tell(
                    Tone::Success,
                    format!(
                        "New member {} enrolled: hand over their pass.",
                        member.external_id
                    ),
                );
                if let MemberPanel::LookingUp { .. } = self.counter.panel {
                    // A scan sent since takes the panel; the notice names the new pass.
                    return Vec::new();
                }
                self.show_member(member)
            }
            Err(e) => {
                self.fail(e);
                Vec::new()
            }
        }
    }

    fn show_member(&mut self, member: Member) -> Vec<Command> {
        let external_id = member.external_id.clone();
        self.counter.panel = MemberPanel::Shown {
            member,
            ledger: Ledger::Loading,
            expiry: None,
        };
        self.counter.prompt = Prompt::Scan;
        vec![Command::LoadMember { external_id }]
    }
}
