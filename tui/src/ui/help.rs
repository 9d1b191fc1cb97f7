//! The keys, over the counter.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

use crate::theme;

const KEYS: [(&str, &str); 18] = [
    ("Enter", "look up the code on the scan line"),
    ("s", "record a sale: its points by the program's rules"),
    ("1 to 9", "redeem that reward for the member on screen"),
    ("e", "managers: add points by hand, then a reason"),
    ("r", "managers: take points by hand, then a reason"),
    ("n", "enrol a new member (MBR-)"),
    (
        "u",
        "return points of the newest sale or reward (or # and points)",
    ),
    ("f", "find a member by their phone number or email"),
    ("a", "add a phone number or email for the member"),
    ("t / F5", "send an unanswered request again"),
    ("x", "drop an unanswered request"),
    ("d", "mark the first refused queued earn dealt with"),
    ("Esc", "clear the line, cancel, close this help"),
    ("Backspace", "delete the last character"),
    ("?", "show or hide this help"),
    ("q", "quit"),
    ("Ctrl-C", "quit at any time"),
    ("", "Letter keys act when the scan line is empty."),
];

pub fn draw(frame: &mut Frame, area: Rect) {
    let area = area.centered(
        Constraint::Max(62),
        Constraint::Length(KEYS.len() as u16 + 2),
    );
    let block = Block::bordered()
        .title(Line::styled(" Keys ", theme::TITLE))
        .title_bottom(Line::styled(" Esc or ? to close ", theme::MUTED).right_aligned())
        .border_style(theme::FOCUS_BORDER);
    let lines: Vec<Line> = KEYS
        .iter()
        .map(|(key, what)| {
            Line::from(vec![
                Span::styled(format!(" {key:<10} "), theme::KEY),
                Span::styled(*what, theme::LABEL),
            ])
        })
        .collect();
    frame.render_widget(Clear, area);
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
