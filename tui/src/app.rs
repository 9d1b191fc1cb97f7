//! The counter terminal's state and how each event changes it. No terminal and no network here: `update`
//! returns the requests to send, and their answers come back later as events.

mod counter;
mod member_actions;
mod points;
mod queue;
mod sign_in;

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use loyalty_core::LoyaltyError;
use loyalty_core::wire::{Reward, StaffSession};

use crate::client::PointsRequest;
use crate::event::{ApiEvent, Attempt, Event};
use crate::journal::{Backlog, QueuedEarn, Record};

pub use counter::{Counter, Ledger, MemberPanel, Prompt};
pub use points::{PendingPoints, Unanswered, doing, lower_first, receipt_sentence};
pub use queue::{Queue, earns};
pub use sign_in::{SignInField, SignInForm};

/// Ticks between two health checks of the server while it answers.
const HEALTH_EVERY_TICKS: u64 = 6;
/// Ticks before the first check after the server stopped answering; each check that fails doubles the wait,
/// up to [`MAX_BACKOFF_TICKS`].
const FIRST_BACKOFF_TICKS: u64 = 2;
const MAX_BACKOFF_TICKS: u64 = 32;

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
    /// The program's rewards on offer, for the reward keys.
    LoadRewards,
    Points {
        request: PointsRequest,
        attempt: Attempt,
    },
    Enrol,
    /// Returns points of a ledger row.
    Reverse {
        transaction_id: i64,
        points: i64,
        idempotency_key: String,
    },
    /// Gives the member a phone number or email.
    SetContact {
        external_id: String,
        contact: String,
    },
    CheckHealth,
    /// Appends to the journal and waits until it is on disk; the answer is [`Event::Recorded`].
    Record(Record),
    /// Sends a queued earn, under its own idempotency key and with the time of its sale.
    Replay(QueuedEarn),
    Quit,
}

/// The clerk's latest request, which the screen names until its answer comes: a later request takes its place,
/// and the answer to one it replaced leaves it there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Awaiting {
    SignIn {
        email: String,
    },
    /// The code that [`Counter::panel`] is looking up.
    Scan,
    /// The earn or redeem that [`Counter::points`] holds as out.
    Points,
    Enrol,
    Contact,
    Return,
}

/// What is known of the server. Its health check runs on the clock, beside whatever the clerk asked for:
/// every three seconds while it answers, backing off from one second to sixteen while it does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Health {
    /// Whether the server answered the last request; `None` until it has been asked.
    pub reachable: Option<bool>,
    /// A check is out: the next one waits for its answer.
    checking: bool,
    /// The tick from which the next check goes.
    next_check: u64,
    backoff: u64,
}

impl Health {
    fn answered(&mut self, up: bool, now: u64) {
        self.checking = false;
        self.reachable = Some(up);
        if up {
            self.backoff = 0;
            self.next_check = now + HEALTH_EVERY_TICKS;
        } else {
            self.backoff = (self.backoff * 2).clamp(FIRST_BACKOFF_TICKS, MAX_BACKOFF_TICKS);
            self.next_check = now + self.backoff;
        }
    }

    /// A request found the server out of reach: the next check comes soon.
    fn lost(&mut self, now: u64) {
        if self.reachable != Some(false) {
            self.backoff = 0;
            self.next_check = now + FIRST_BACKOFF_TICKS;
        }
        self.reachable = Some(false);
    }
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
    /// Who is signed in: without a session, the sign-in screen has the keyboard.
    pub session: Option<StaffSession>,
    pub sign_in: SignInForm,
    /// The counter screen, kept as it was while a lost session is signed in again.
    pub counter: Counter,
    pub awaiting: Option<Awaiting>,
    pub notice: Option<Notice>,
    pub health: Health,
    pub ticks: u64,
    /// The till's name, kept with each earn queued here.
    pub till: String,
    pub queue: Queue,
    /// The program's rewards on offer, cheapest first: keys 1 to 9 redeem them.
    pub rewards: Vec<Reward>,
}

impl App {
    pub fn new(server_url: &str) -> Self {
        Self {
            server_url: server_url.to_owned(),
            session: None,
            sign_in: SignInForm::default(),
            counter: Counter::default(),
            awaiting: None,
            notice: None,
            health: Health::default(),
            ticks: 0,
            till: "counter".to_owned(),
            queue: Queue::default(),
            rewards: Vec::new(),
        }
    }

    /// The terminal at `till`, with what its journal held open at start. `torn_tail` says a crash cut off the
    /// journal's last line.
    pub fn with_journal(mut self, till: &str, backlog: Backlog, torn_tail: bool) -> Self {
        self.till = till.to_owned();
        if torn_tail {
            self.tell(
                Tone::Warning,
                "The journal's last line was cut off when the terminal stopped while writing it: that earn was \
                 never confirmed as queued, and is left out.",
            );
        } else if !backlog.waiting.is_empty() {
            self.tell(
                Tone::Info,
                format!(
                    "{} waiting from before: sent once someone is signed in and the server answers.",
                    earns(backlog.waiting.len())
                ),
            );
        }
        self.queue = Queue::new(backlog);
        self
    }

    /// What to do as soon as the terminal is up.
    pub fn start(&mut self) -> Vec<Command> {
        self.check_health_now()
    }

    pub fn update(&mut self, event: Event) -> Vec<Command> {
        let mut commands = match event {
            Event::Key(key) => self.on_key(key),
            Event::Resize => Vec::new(),
            Event::Tick => self.on_tick(),
            Event::Api(answer) => self.on_answer(answer),
            Event::Recorded { record, result } => {
                self.on_recorded(record, result);
                Vec::new()
            }
        };
        commands.extend(self.continue_sending());
        commands
    }

    /// What the clerk is waiting for, in words, while a request is out.
    pub fn waiting(&self) -> Option<String> {
        match self.awaiting.as_ref()? {
            Awaiting::SignIn { email } => Some(format!("Signing in as {email}…")),
            Awaiting::Scan => match &self.counter.panel {
                MemberPanel::LookingUp { code } => Some(format!("Looking up {code}…")),
                MemberPanel::Empty | MemberPanel::Shown { .. } | MemberPanel::Offline { .. } => {
                    None
                }
            },
            Awaiting::Points => self.counter.points.as_ref()?.waiting(),
            Awaiting::Enrol => Some("Enrolling a new member…".to_owned()),
            Awaiting::Contact => Some("Keeping the phone number or email…".to_owned()),
            Awaiting::Return => Some("Returning the points…".to_owned()),
        }
    }

    pub fn signing_in(&self) -> bool {
        matches!(self.awaiting, Some(Awaiting::SignIn { .. }))
    }

    fn on_tick(&mut self) -> Vec<Command> {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks >= self.health.next_check {
            return self.check_health_now();
        }
        Vec::new()
    }

    /// A health check, unless one is out already.
    fn check_health_now(&mut self) -> Vec<Command> {
        if self.health.checking {
            return Vec::new();
        }
        self.health.checking = true;
        vec![Command::CheckHealth]
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

    fn on_answer(&mut self, answer: ApiEvent) -> Vec<Command> {
        if answer.is_success() {
            self.health.reachable = Some(true);
        }
        match answer {
            ApiEvent::Health(up) => {
                self.health.answered(up, self.ticks);
                if up {
                    self.release_queue();
                }
                Vec::new()
            }
            ApiEvent::SignedIn(result) => self.on_signed_in(result),
            ApiEvent::Rewards(result) => {
                match result {
                    Ok(rewards) => self.rewards = rewards,
                    // The keys keep the catalog last read; a lost session is noticed by the next request.
                    Err(e) if e.unreachable() => self.health.lost(self.ticks),
                    Err(_) => {}
                }
                Vec::new()
            }
            ApiEvent::Scanned { code, result } => self.on_scanned(code, result),
            ApiEvent::MemberLoaded {
                external_id,
                result,
            } => {
                self.on_member_loaded(&external_id, result);
                Vec::new()
            }
            ApiEvent::Points {
                request,
                attempt,
                result,
            } => self.on_points_answer(request, attempt, result),
            ApiEvent::Enrolled(result) => self.on_enrolled(result),
            ApiEvent::Reversed(result) => self.on_reversed(result),
            ApiEvent::ContactSet {
                external_id,
                result,
            } => self.on_contact_set(&external_id, result),
            ApiEvent::Replayed { earn, result } => self.on_replayed(earn, result),
        }
    }

    /// Shows a refusal in the server's own words; a lost session goes back to signing in.
    fn fail(&mut self, e: LoyaltyError) {
        match e {
            LoyaltyError::NotSignedIn => {
                self.session = None;
                self.sign_in.focus = SignInField::Password;
                self.counter.show_help = false;
            }
            _ if e.unreachable() => self.health.lost(self.ticks),
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
