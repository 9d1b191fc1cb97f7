//! The counter terminal's state and how each event changes it. No terminal and no network here: `update`
//! returns the requests to send, and their answers come back later as events.

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use loyalty_core::wire::{LedgerEntry, Member, MemberDetail, PointsReceipt, ScanOutcome, TxType};
use loyalty_core::{LoyaltyError, ScanCode, parse_scan};

use crate::client::PointsRequest;
use crate::event::{ApiEvent, Attempt, Event};

/// Ticks between two health checks of the server.
const HEALTH_EVERY_TICKS: u64 = 6;
/// The largest amount the server accepts, checked here too so a typo never leaves the counter.
const MAX_POINTS: i64 = 1_000_000;

/// Something for the runtime to do on the state's behalf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    SignIn {
        email: String,
        password: String,
    },
    Scan {
        code: String,
    },
    LoadMember {
        external_id: String,
    },
    Points {
        request: PointsRequest,
        attempt: Attempt,
    },
    Enrol,
    CheckHealth,
    Quit,
}

/// What the one input line is for right now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Prompt {
    /// A code, from the scanner or typed, then Enter.
    Scan,
    /// How many points to earn or redeem for the member on screen.
    Amount(TxType),
    /// The amount is typed; Enter sends it.
    ConfirmPoints(PointsRequest),
    ConfirmEnrol,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SignInField {
    #[default]
    Email,
    Password,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SignInForm {
    pub email: String,
    pub password: String,
    pub focus: SignInField,
}

impl SignInForm {
    fn field_mut(&mut self) -> &mut String {
        match self.focus {
            SignInField::Email => &mut self.email,
            SignInField::Password => &mut self.password,
        }
    }
}

/// The member's recent transactions as far as they are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ledger {
    Loading,
    Loaded(Vec<LedgerEntry>),
    Failed(String),
}

/// An earn or redeem that got no answer: it may or may not have gone through.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unanswered {
    pub request: PointsRequest,
    pub detail: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tone {
    Info,
    Success,
    Warning,
    Error,
}

/// The result of the clerk's last action, as one sentence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    pub tone: Tone,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct App {
    pub server_url: String,
    pub session: Option<loyalty_core::wire::StaffSession>,
    pub sign_in: SignInForm,
    pub signing_in: bool,
    pub input: String,
    pub prompt: Prompt,
    /// The code of the latest scan sent: an answer to an earlier one must not take its place on screen.
    pub scanning: Option<String>,
    pub member: Option<Member>,
    pub ledger: Ledger,
    pub unanswered: Option<Unanswered>,
    pub points_in_flight: Option<PointsRequest>,
    /// What the clerk is waiting for, while a request is out.
    pub waiting: Option<String>,
    pub notice: Option<Notice>,
    /// Whether the server answered its last health check; `None` until it has been asked.
    pub reachable: Option<bool>,
    pub show_help: bool,
    pub ticks: u64,
    health_in_flight: bool,
}

impl App {
    pub fn new(server_url: &str) -> Self {
        Self {
            server_url: server_url.to_owned(),
            session: None,
            sign_in: SignInForm::default(),
            signing_in: false,
            input: String::new(),
            prompt: Prompt::Scan,
            scanning: None,
            member: None,
            ledger: Ledger::Loading,
            unanswered: None,
            points_in_flight: None,
            waiting: None,
            notice: None,
            reachable: None,
            show_help: false,
            ticks: 0,
            health_in_flight: false,
        }
    }

    /// What to do as soon as the terminal is up.
    pub fn start(&mut self) -> Vec<Command> {
        self.health_in_flight = true;
        vec![Command::CheckHealth]
    }

    pub fn update(&mut self, event: Event) -> Vec<Command> {
        match event {
            Event::Key(key) => self.on_key(key),
            Event::Resize => Vec::new(),
            Event::Tick => self.on_tick(),
            Event::Api(answer) => self.on_answer(answer),
        }
    }

    fn on_tick(&mut self) -> Vec<Command> {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks.is_multiple_of(HEALTH_EVERY_TICKS) && !self.health_in_flight {
            self.health_in_flight = true;
            return vec![Command::CheckHealth];
        }
        Vec::new()
    }

    fn on_key(&mut self, key: KeyEvent) -> Vec<Command> {
        if key.kind != KeyEventKind::Press {
            return Vec::new();
        }
        if key.modifiers.contains(KeyModifiers::CONTROL) {
            return match key.code {
                KeyCode::Char('c') => vec![Command::Quit],
                _ => Vec::new(),
            };
        }
        if self.session.is_none() {
            return self.on_sign_in_key(key);
        }
        self.on_counter_key(key)
    }

    fn on_sign_in_key(&mut self, key: KeyEvent) -> Vec<Command> {
        let form = &mut self.sign_in;
        match key.code {
            KeyCode::Tab | KeyCode::BackTab | KeyCode::Down | KeyCode::Up => {
                form.focus = match form.focus {
                    SignInField::Email => SignInField::Password,
                    SignInField::Password => SignInField::Email,
                };
            }
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::ALT) => {
                form.field_mut().push(c)
            }
            KeyCode::Backspace => {
                form.field_mut().pop();
            }
            KeyCode::Enter if form.focus == SignInField::Email => {
                form.focus = SignInField::Password;
            }
            KeyCode::Enter if !self.signing_in => {
                let email = form.email.trim().to_owned();
                if email.is_empty() || form.password.is_empty() {
                    self.tell(Tone::Error, "Enter your email and your password.");
                    return Vec::new();
                }
                self.signing_in = true;
                self.waiting = Some(format!("Signing in as {email}…"));
                return vec![Command::SignIn {
                    email,
                    password: form.password.clone(),
                }];
            }
            _ => {}
        }
        Vec::new()
    }

    fn on_counter_key(&mut self, key: KeyEvent) -> Vec<Command> {
        if let KeyCode::Char('?') = key.code {
            self.show_help = !self.show_help;
            return Vec::new();
        }
        if self.show_help && matches!(key.code, KeyCode::Esc) {
            self.show_help = false;
            return Vec::new();
        }
        self.show_help = false;
        if key.code == KeyCode::F(5) {
            return self.retry();
        }
        match self.prompt.clone() {
            Prompt::Scan => self.on_scan_key(key),
            Prompt::Amount(tx_type) => self.on_amount_key(key, tx_type),
            Prompt::ConfirmPoints(request) => {
                self.on_confirm_key(key, |app| app.send_points(request))
            }
            Prompt::ConfirmEnrol => self.on_confirm_key(key, Self::send_enrol),
        }
    }

    fn on_scan_key(&mut self, key: KeyEvent) -> Vec<Command> {
        match key.code {
            KeyCode::Char(c) if self.input.is_empty() => match c {
                'q' if self.points_in_flight.is_some() || self.unanswered.is_some() => {
                    self.tell(
                        Tone::Warning,
                        "An earn or redeem is still unanswered: t sends it again, x drops it, then q quits.",
                    );
                    Vec::new()
                }
                'q' => vec![Command::Quit],
                'e' => self.ask_amount(TxType::Earn),
                'r' => self.ask_amount(TxType::Redeem),
                'n' => {
                    self.prompt = Prompt::ConfirmEnrol;
                    Vec::new()
                }
                't' => self.retry(),
                'x' => self.drop_unanswered(),
                _ => {
                    self.input.push(c);
                    Vec::new()
                }
            },
            KeyCode::Char(c) => {
                self.input.push(c);
                Vec::new()
            }
            KeyCode::Backspace => {
                self.input.pop();
                Vec::new()
            }
            KeyCode::Esc => {
                self.input.clear();
                Vec::new()
            }
            KeyCode::Enter => self.scan(),
            _ => Vec::new(),
        }
    }

    fn on_amount_key(&mut self, key: KeyEvent, tx_type: TxType) -> Vec<Command> {
        match key.code {
            KeyCode::Char(c) if c.is_ascii_digit() && self.input.len() < 7 => self.input.push(c),
            KeyCode::Char(c) if c.is_ascii_digit() => {}
            KeyCode::Char(c) => {
                // Anything but a digit is the start of a scan: the scan line always has the keyboard.
                self.cancel_prompt();
                self.input.push(c);
            }
            KeyCode::Backspace => {
                self.input.pop();
            }
            KeyCode::Esc => self.cancel_prompt(),
            KeyCode::Enter => {
                let Some(member) = &self.member else {
                    self.cancel_prompt();
                    return Vec::new();
                };
                match self.input.parse::<i64>() {
                    Ok(points) if (1..=MAX_POINTS).contains(&points) => {
                        let request = PointsRequest::new(tx_type, &member.external_id, points);
                        self.input.clear();
                        self.prompt = Prompt::ConfirmPoints(request);
                    }
                    _ => {
                        self.input.clear();
                        self.tell(Tone::Error, LoyaltyError::InvalidAmount.to_string());
                    }
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
                self.prompt = Prompt::Scan;
                confirm(self)
            }
            KeyCode::Esc => {
                self.cancel_prompt();
                Vec::new()
            }
            KeyCode::Char(c) => {
                self.cancel_prompt();
                self.input.push(c);
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    fn cancel_prompt(&mut self) {
        if self.prompt != Prompt::Scan {
            self.tell(Tone::Info, "Cancelled: nothing was sent.");
        }
        self.prompt = Prompt::Scan;
        self.input.clear();
    }

    fn scan(&mut self) -> Vec<Command> {
        let typed = std::mem::take(&mut self.input);
        if typed.trim().is_empty() {
            return Vec::new();
        }
        // A new customer: the previous one's pass must never stay on screen while this one is looked up.
        self.member = None;
        self.ledger = Ledger::Loading;
        match parse_scan(&typed) {
            Ok(ScanCode::Claim(code) | ScanCode::Member(code)) => {
                self.waiting = Some(format!("Looking up {code}…"));
                self.scanning = Some(code.clone());
                vec![Command::Scan { code }]
            }
            Err(e) => {
                self.tell(Tone::Error, e.to_string());
                Vec::new()
            }
        }
    }

    fn ask_amount(&mut self, tx_type: TxType) -> Vec<Command> {
        if self.member.is_none() {
            self.tell(Tone::Info, "Scan a member's pass first.");
        } else if self.points_in_flight.is_some() {
            self.tell(Tone::Info, "Wait for the answer to the last request.");
        } else if self.unanswered.is_some() {
            self.tell(
                Tone::Warning,
                "First settle the unanswered request: t sends it again (never twice), x drops it.",
            );
        } else {
            self.prompt = Prompt::Amount(tx_type);
        }
        Vec::new()
    }

    fn send_points(&mut self, request: PointsRequest) -> Vec<Command> {
        self.waiting = Some(format!(
            "{} for {}…",
            doing(request.tx_type, request.points),
            request.external_id
        ));
        self.points_in_flight = Some(request.clone());
        vec![Command::Points {
            request,
            attempt: Attempt::First,
        }]
    }

    fn send_enrol(&mut self) -> Vec<Command> {
        self.member = None;
        self.ledger = Ledger::Loading;
        self.waiting = Some("Enrolling a new member…".to_owned());
        vec![Command::Enrol]
    }

    /// Sends the unanswered request again, with its own idempotency key.
    fn retry(&mut self) -> Vec<Command> {
        let Some(unanswered) = &self.unanswered else {
            return Vec::new();
        };
        if self.points_in_flight.is_some() {
            return Vec::new();
        }
        let request = unanswered.request.clone();
        self.waiting = Some(format!(
            "Sending again: {} for {}…",
            doing(request.tx_type, request.points).to_lowercase(),
            request.external_id
        ));
        self.points_in_flight = Some(request.clone());
        vec![Command::Points {
            request,
            attempt: Attempt::Retry,
        }]
    }

    fn drop_unanswered(&mut self) -> Vec<Command> {
        if self.points_in_flight.is_none() && self.unanswered.take().is_some() {
            self.tell(
                Tone::Warning,
                "Dropped the unanswered request: check the member's transactions before trying again.",
            );
        }
        Vec::new()
    }

    fn on_answer(&mut self, answer: ApiEvent) -> Vec<Command> {
        if answer.is_success() {
            self.reachable = Some(true);
        }
        match answer {
            ApiEvent::Health(up) => {
                self.health_in_flight = false;
                self.reachable = Some(up);
                Vec::new()
            }
            ApiEvent::SignedIn(result) => {
                self.signing_in = false;
                self.waiting = None;
                self.sign_in.password.clear();
                match result {
                    Ok(session) => {
                        self.tell(
                            Tone::Success,
                            format!(
                                "Signed in as {} at {}.",
                                session.staff_name, session.program_name
                            ),
                        );
                        self.session = Some(session);
                        self.reachable = Some(true);
                        self.prompt = Prompt::Scan;
                        self.input.clear();
                    }
                    Err(e) => {
                        self.sign_in.focus = SignInField::Password;
                        self.fail(e);
                    }
                }
                Vec::new()
            }
            ApiEvent::Scanned { code, result } => {
                if self.scanning.as_ref() != Some(&code) {
                    if let Ok(ScanOutcome::Claimed { member, .. }) = result {
                        // Overtaken by a later scan, but the postcard is burned: its new pass must not go unseen.
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
                self.scanning = None;
                self.waiting = None;
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
                    Err(e) => {
                        self.fail(e);
                        Vec::new()
                    }
                }
            }
            ApiEvent::MemberLoaded {
                external_id,
                result,
            } => {
                if self.member.as_ref().map(|m| &m.external_id) != Some(&external_id) {
                    return Vec::new();
                }
                match result {
                    Ok(MemberDetail { member, ledger }) => {
                        self.member = Some(member);
                        self.ledger = Ledger::Loaded(ledger);
                    }
                    Err(LoyaltyError::NotSignedIn) => self.fail(LoyaltyError::NotSignedIn),
                    Err(e) => {
                        if let LoyaltyError::Network { .. } = e {
                            self.reachable = Some(false);
                        }
                        self.ledger = Ledger::Failed(e.to_string());
                    }
                }
                Vec::new()
            }
            ApiEvent::Points {
                request,
                attempt,
                result,
            } => self.on_points_answer(request, attempt, result),
            ApiEvent::Enrolled(result) => {
                self.waiting = None;
                match result {
                    Ok(member) => {
                        self.tell(
                            Tone::Success,
                            format!(
                                "New member {} enrolled: hand over their pass.",
                                member.external_id
                            ),
                        );
                        self.show_member(member)
                    }
                    Err(e) => {
                        self.fail(e);
                        Vec::new()
                    }
                }
            }
        }
    }

    fn on_points_answer(
        &mut self,
        request: PointsRequest,
        attempt: Attempt,
        result: Result<PointsReceipt, LoyaltyError>,
    ) -> Vec<Command> {
        if self.points_in_flight.as_ref() == Some(&request) {
            self.points_in_flight = None;
            self.waiting = None;
        }
        let settles = |u: &Unanswered| u.request.idempotency_key == request.idempotency_key;
        match result {
            Ok(receipt) => {
                if self.unanswered.as_ref().is_some_and(settles) {
                    self.unanswered = None;
                }
                self.tell(Tone::Success, receipt_sentence(&receipt, attempt));
                match &mut self.member {
                    Some(member) if member.external_id == receipt.external_id => {
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
                    self.reachable = Some(false);
                }
                self.tell(
                    Tone::Warning,
                    format!(
                        "No answer to \"{}\": it may or may not have gone through.",
                        doing(request.tx_type, request.points),
                    ),
                );
                self.unanswered = Some(Unanswered { request, detail });
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
                if !turned_away && self.unanswered.as_ref().is_some_and(settles) {
                    self.unanswered = None;
                }
                self.fail(e);
                Vec::new()
            }
        }
    }

    fn show_member(&mut self, member: Member) -> Vec<Command> {
        let external_id = member.external_id.clone();
        self.member = Some(member);
        self.ledger = Ledger::Loading;
        self.prompt = Prompt::Scan;
        vec![Command::LoadMember { external_id }]
    }

    /// Shows a refusal in the server's own words; a lost session goes back to signing in.
    fn fail(&mut self, e: LoyaltyError) {
        match e {
            LoyaltyError::NotSignedIn => {
                self.session = None;
                self.sign_in.focus = SignInField::Password;
                self.show_help = false;
            }
            LoyaltyError::Network { .. } => self.reachable = Some(false),
            _ => {}
        }
        self.tell(Tone::Error, e.to_string());
    }

    fn tell(&mut self, tone: Tone, text: impl Into<String>) {
        self.notice = Some(Notice {
            tone,
            text: text.into(),
        });
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
