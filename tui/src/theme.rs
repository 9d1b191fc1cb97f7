//! The counter terminal's named styles, in the 16 colours every terminal has.

use ratatui::style::{Color, Modifier, Style};

use crate::app::Tone;

pub const TITLE: Style = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
pub const BORDER: Style = Style::new().fg(Color::DarkGray);
pub const FOCUS_BORDER: Style = Style::new().fg(Color::Cyan);
pub const WARNING_BORDER: Style = Style::new().fg(Color::Yellow);
pub const LABEL: Style = Style::new().fg(Color::Gray);
pub const VALUE: Style = Style::new().add_modifier(Modifier::BOLD);
pub const BALANCE: Style = Style::new().fg(Color::Green).add_modifier(Modifier::BOLD);
pub const MUTED: Style = Style::new().fg(Color::DarkGray);
pub const KEY: Style = Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD);
pub const EARN: Style = Style::new().fg(Color::Green);
pub const REDEEM: Style = Style::new().fg(Color::Magenta);
pub const STATUS_BAR: Style = Style::new().bg(Color::DarkGray).fg(Color::White);
pub const ONLINE: Style = Style::new()
    .fg(Color::LightGreen)
    .add_modifier(Modifier::BOLD);
pub const OFFLINE: Style = Style::new()
    .fg(Color::LightRed)
    .add_modifier(Modifier::BOLD);

/// How a notice of this tone looks, and the sign in front of it.
pub fn tone(tone: Tone) -> (Style, &'static str) {
    match tone {
        Tone::Info => (Style::new(), "·"),
        Tone::Success => (Style::new().fg(Color::Green), "✔"),
        Tone::Warning => (
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            "!",
        ),
        Tone::Error => (
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
            "✘",
        ),
    }
}
