//! The sign-in screen: the server, an email and a password.

use ratatui::Frame;
use ratatui::layout::{Constraint, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use crate::app::{App, SignInField};
use crate::theme;

const LABEL_WIDTH: u16 = 11;

/// Draws the form and returns where the cursor goes.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) -> Option<Position> {
    let area = area.centered(Constraint::Max(64), Constraint::Length(9));
    let block = Block::bordered()
        .title(Line::styled(" Sign in ", theme::TITLE))
        .border_style(theme::FOCUS_BORDER);
    let inner = block.inner(area);
    frame.render_widget(block, area);

    let form = &app.sign_in;
    let masked = "•".repeat(form.password.chars().count());
    let field = |label: &'static str, value: &str, focused: bool| {
        let marker = if focused { "›" } else { " " };
        Line::from(vec![
            Span::styled(format!("{marker} {label:<8} "), theme::LABEL),
            Span::styled(value.to_owned(), theme::VALUE),
        ])
    };
    let lines = vec![
        Line::from(vec![
            Span::styled(format!("  {:<8} ", "Server"), theme::LABEL),
            Span::raw(app.server_url.as_str()),
        ]),
        Line::default(),
        field("Email", &form.email, form.focus == SignInField::Email),
        field("Password", &masked, form.focus == SignInField::Password),
        Line::default(),
        Line::from(vec![
            Span::styled("  Enter", theme::KEY),
            Span::styled(" next / sign in  ", theme::MUTED),
            Span::styled("Tab", theme::KEY),
            Span::styled(" switch field  ", theme::MUTED),
            Span::styled("Ctrl-C", theme::KEY),
            Span::styled(" quit", theme::MUTED),
        ]),
    ];
    frame.render_widget(Paragraph::new(lines), inner);

    if app.signing_in() {
        return None;
    }
    let (row, typed) = match form.focus {
        SignInField::Email => (2, form.email.chars().count()),
        SignInField::Password => (3, form.password.chars().count()),
    };
    let x = inner.x + LABEL_WIDTH + u16::try_from(typed).unwrap_or(u16::MAX);
    Some(Position::new(
        x.min(inner.right().saturating_sub(1)),
        inner.y + row,
    ))
}
