//! The counter terminal: scan, earn and redeem through the server's API, from a terminal.

pub mod app;
pub mod client;
pub mod event;
pub mod journal;
pub mod theme;
pub mod ui;

use std::collections::VecDeque;
use std::time::Duration;

use ratatui::DefaultTerminal;
use tokio::sync::mpsc::{self, UnboundedSender};

use crate::app::{App, Command};
use crate::client::Client;
use crate::event::{ApiEvent, Event};
use crate::journal::{Journal, Opened};

/// How long quitting waits to end the session on the server.
const SIGN_OUT_GRACE: Duration = Duration::from_secs(1);

/// Runs the counter until the clerk quits: draw, wait for the next event, update, carry out what it asks for.
/// The journal is written here, in order, before the next event is read.
pub async fn run(
    terminal: &mut DefaultTerminal,
    client: Client,
    journal: Opened,
    till: &str,
) -> anyhow::Result<()> {
    let Opened {
        journal: mut file,
        backlog,
        torn_tail,
    } = journal;
    let (events, mut inbox) = mpsc::unbounded_channel();
    event::spawn_terminal_reader(events.clone());
    event::spawn_clock(events.clone());
    let mut app = App::new(client.base_url()).with_journal(till, backlog, torn_tail);
    let mut commands = VecDeque::from(app.start());
    loop {
        while let Some(command) = commands.pop_front() {
            match command {
                Command::Quit => {
                    if app.session.is_some() {
                        // Best effort: a server that does not answer keeps the session until it expires.
                        let _ = tokio::time::timeout(SIGN_OUT_GRACE, client.sign_out()).await;
                    }
                    return Ok(());
                }
                Command::Record(record) => {
                    let result = record_in(&mut file, &record);
                    commands.extend(app.update(Event::Recorded { record, result }));
                }
                command => dispatch(&client, command, &events),
            }
        }
        terminal.draw(|frame| ui::draw(frame, &app))?;
        let Some(event) = inbox.recv().await else {
            return Ok(());
        };
        commands.extend(app.update(event));
        // A scanner types a whole code at once: take every key already waiting before drawing again.
        while let Ok(event) = inbox.try_recv() {
            commands.extend(app.update(event));
        }
    }
}

/// Appends a record to the journal, answering in the words the clerk reads.
pub fn record_in(journal: &mut Journal, record: &journal::Record) -> Result<(), String> {
    journal
        .append(record)
        .map_err(|e| format!("{}: {e}", journal.path().display()))
}

/// Sends one request on a task of its own; its answer comes back as an event.
fn dispatch(client: &Client, command: Command, events: &UnboundedSender<Event>) {
    let client = client.clone();
    let events = events.clone();
    tokio::spawn(async move {
        if let Some(answer) = execute(&client, command).await {
            // No receiver means the terminal is closing: the answer has no one left to tell.
            let _ = events.send(answer.into());
        }
    });
}

/// Carries out one command against the server and returns its answer as the event the state expects.
pub async fn execute(client: &Client, command: Command) -> Option<ApiEvent> {
    Some(match command {
        Command::SignIn { email, password } => {
            ApiEvent::SignedIn(client.sign_in(&email, &password).await)
        }
        Command::Scan { code } => {
            let result = client.scan(&code).await;
            ApiEvent::Scanned { code, result }
        }
        Command::LoadMember { external_id } => {
            let result = client.member(&external_id).await;
            ApiEvent::MemberLoaded {
                external_id,
                result,
            }
        }
        Command::Points { request, attempt } => {
            let result = client.points(&request).await;
            ApiEvent::Points {
                request,
                attempt,
                result,
            }
        }
        Command::Enrol => ApiEvent::Enrolled(client.enrol().await),
        Command::Reverse {
            transaction_id,
            points,
            idempotency_key,
        } => ApiEvent::Reversed(
            client
                .reverse(transaction_id, points, &idempotency_key)
                .await,
        ),
        Command::SetContact {
            external_id,
            contact,
        } => {
            let result = client.set_contact(&external_id, &contact).await;
            ApiEvent::ContactSet {
                external_id,
                result,
            }
        }
        Command::LoadRewards => ApiEvent::Rewards(client.rewards().await),
        Command::CheckHealth => ApiEvent::Health(client.healthy().await),
        Command::Replay(earn) => {
            let result = client.points(&earn.request()).await;
            ApiEvent::Replayed { earn, result }
        }
        // The journal is the runtime's to write, in order: see [`run`].
        Command::Record(_) | Command::Quit => return None,
    })
}
