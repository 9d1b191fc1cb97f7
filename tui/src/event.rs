//! Everything the counter terminal reacts to, arriving over one channel: keys, the clock and the server's answers.

use std::time::Duration;

use crossterm::event::{Event as TerminalEvent, KeyEvent};
use loyalty_core::LoyaltyError;
use loyalty_core::wire::{Member, MemberDetail, PointsReceipt, Reward, ScanOutcome, StaffSession};
use tokio::sync::mpsc::UnboundedSender;

use crate::client::PointsRequest;
use crate::journal::{QueuedEarn, Record};

/// How often the clock ticks: it paces the health check and the "waiting" indicator.
pub const TICK: Duration = Duration::from_millis(500);

#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Key(KeyEvent),
    /// The terminal changed size; the next draw fits the new one.
    Resize,
    Tick,
    Api(ApiEvent),
    /// The journal's answer to [`crate::app::Command::Record`]: `Ok` once the record is on disk.
    Recorded {
        record: Record,
        result: Result<(), String>,
    },
}

/// Whether an earn or redeem is sent for the first time or again after no answer came.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Attempt {
    First,
    Retry,
}

/// An answer from the server, carrying what was asked so the state can tell which question it answers.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiEvent {
    SignedIn(Result<StaffSession, LoyaltyError>),
    Scanned {
        code: String,
        result: Result<ScanOutcome, LoyaltyError>,
    },
    MemberLoaded {
        external_id: String,
        result: Result<MemberDetail, LoyaltyError>,
    },
    Points {
        request: PointsRequest,
        attempt: Attempt,
        result: Result<PointsReceipt, LoyaltyError>,
    },
    Enrolled(Result<Member, LoyaltyError>),
    Reversed(Result<loyalty_core::wire::Reversal, LoyaltyError>),
    ContactSet {
        external_id: String,
        result: Result<loyalty_core::wire::ContactHint, LoyaltyError>,
    },
    Rewards(Result<Vec<Reward>, LoyaltyError>),
    Health(bool),
    /// The answer to a queued earn sent again.
    Replayed {
        earn: QueuedEarn,
        result: Result<PointsReceipt, LoyaltyError>,
    },
}

impl ApiEvent {
    /// Whether the server answered with what was asked for.
    pub fn is_success(&self) -> bool {
        match self {
            Self::SignedIn(result) => result.is_ok(),
            Self::Scanned { result, .. } => result.is_ok(),
            Self::MemberLoaded { result, .. } => result.is_ok(),
            Self::Points { result, .. } => result.is_ok(),
            Self::Enrolled(result) => result.is_ok(),
            Self::ContactSet { result, .. } => result.is_ok(),
            Self::Reversed(result) => result.is_ok(),
            Self::Rewards(result) => result.is_ok(),
            Self::Health(up) => *up,
            Self::Replayed { result, .. } => result.is_ok(),
        }
    }
}

impl From<ApiEvent> for Event {
    fn from(event: ApiEvent) -> Self {
        Self::Api(event)
    }
}

/// Reads the terminal on a thread of its own (crossterm's read blocks) and forwards keys and resizes.
pub fn spawn_terminal_reader(events: UnboundedSender<Event>) {
    std::thread::spawn(move || {
        while let Ok(event) = crossterm::event::read() {
            let event = match event {
                TerminalEvent::Key(key) => Event::Key(key),
                TerminalEvent::Resize(..) => Event::Resize,
                _ => continue,
            };
            if events.send(event).is_err() {
                break;
            }
        }
    });
}

/// Sends a tick every [`TICK`] until the receiving end is gone.
pub fn spawn_clock(events: UnboundedSender<Event>) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        loop {
            interval.tick().await;
            if events.send(Event::Tick).is_err() {
                break;
            }
        }
    });
}
