//! Driving the counter's state against a real server, as the terminal's loop does: shared by the API tests and
//! the replay tests.

// Each test file uses its own part of this module.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tui::app::{App, Command};
use tui::client::Client;
use tui::event::Event;
use tui::journal::Journal;

/// Sits between the client and the server, keeping a copy of everything the client sends. While `drop_answers`
/// is set, each request still reaches the server and is carried out, but the connection is closed as the answer
/// starts to come back: the clerk never hears it.
pub struct Proxy {
    pub url: String,
    pub drop_answers: Arc<AtomicBool>,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Proxy {
    pub async fn start(upstream: SocketAddr) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let drop_answers = Arc::new(AtomicBool::new(false));
        let sent = Arc::new(Mutex::new(Vec::new()));
        let (flag, copy) = (drop_answers.clone(), sent.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = TcpStream::connect(upstream).await.unwrap();
                tokio::spawn(relay(client, upstream, flag.clone(), copy.clone()));
            }
        });
        Self {
            url,
            drop_answers,
            sent,
        }
    }

    /// What the client sent since the last call, as text.
    pub fn take_sent(&self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut *self.sent.lock().unwrap())).into_owned()
    }
}

async fn relay(
    client: TcpStream,
    upstream: TcpStream,
    drop_answers: Arc<AtomicBool>,
    sent: Arc<Mutex<Vec<u8>>>,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut upstream_read, mut upstream_write) = upstream.into_split();
    let requests = tokio::spawn(async move {
        let mut buf = vec![0u8; 16 * 1024];
        // Copied before it is passed on, so it is kept by the time the server can answer it.
        while let Ok(n @ 1..) = client_read.read(&mut buf).await {
            sent.lock().unwrap().extend_from_slice(&buf[..n]);
            if upstream_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    let mut buf = vec![0u8; 16 * 1024];
    // Checked per answer, not per connection: the client reuses its pooled connections.
    while let Ok(n @ 1..) = upstream_read.read(&mut buf).await {
        if drop_answers.load(Ordering::SeqCst) || client_write.write_all(&buf[..n]).await.is_err() {
            break;
        }
    }
    requests.abort();
}

/// Runs the state's commands against the server until no more come, writing the journal (when there is one)
/// as the terminal does.
pub async fn settle_with(
    app: &mut App,
    client: &Client,
    mut journal: Option<&mut Journal>,
    commands: Vec<Command>,
) {
    let mut queue = commands;
    while !queue.is_empty() {
        match queue.remove(0) {
            Command::Record(record) => {
                let journal = journal
                    .as_deref_mut()
                    .unwrap_or_else(|| panic!("no journal for {record:?}"));
                let result = tui::record_in(journal, &record);
                queue.extend(app.update(Event::Recorded { record, result }));
            }
            command => {
                if let Some(answer) = tui::execute(client, command).await {
                    queue.extend(app.update(Event::Api(answer)));
                }
            }
        }
    }
}

pub fn type_text(app: &mut App, text: &str) -> Vec<Command> {
    text.chars()
        .flat_map(|c| {
            app.update(Event::Key(KeyEvent::new(
                KeyCode::Char(c),
                KeyModifiers::NONE,
            )))
        })
        .collect()
}

pub fn press(app: &mut App, code: KeyCode) -> Vec<Command> {
    app.update(Event::Key(KeyEvent::new(code, KeyModifiers::NONE)))
}

pub fn notice(app: &App) -> String {
    app.notice
        .as_ref()
        .map(|n| n.text.clone())
        .unwrap_or_default()
}
