//! Drawing the state: the sign-in screen or the counter, the last action's result and the status bar.

mod counter;
mod help;
mod sign_in;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Wrap};

use crate::app::{App, earns};
use crate::theme;

const SPINNER: [&str; 4] = ["◐", "◓", "◑", "◒"];

/// Draws the whole screen, and puts the terminal's cursor where the clerk types.
pub fn draw(frame: &mut Frame, app: &App) {
    let [header, body, notice, status] = frame.area().layout(&Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(5),
        Constraint::Length(2),
        Constraint::Length(1),
    ]));
    draw_header(frame, header, app);
    let cursor = match &app.session {
        None => sign_in::draw(frame, body, app),
        Some(_) => counter::draw(frame, body, app),
    };
    draw_notice(frame, notice, app);
    draw_status(frame, status, app);
    if app.counter.show_help && app.session.is_some() {
        help::draw(frame, body);
    } else if let Some(position) = cursor {
        frame.set_cursor_position(position);
    }
}

fn draw_header(frame: &mut Frame, area: Rect, app: &App) {
    let title = match &app.session {
        Some(session) => format!(" Loyalty counter · {}", session.program_name),
        None => " Loyalty counter".to_owned(),
    };
    frame.render_widget(Line::styled(title, theme::TITLE), area);
    if app.session.is_some() {
        let hint = Line::from(vec![
            Span::styled("?", theme::KEY),
            Span::styled(" keys ", theme::MUTED),
        ])
        .right_aligned();
        frame.render_widget(hint, area);
    }
}

/// The last action's result, or what the clerk is waiting for.
fn draw_notice(frame: &mut Frame, area: Rect, app: &App) {
    let (sign, text) = if let Some(waiting) = app.waiting() {
        let spinner = SPINNER[(app.ticks % SPINNER.len() as u64) as usize];
        (Span::styled(spinner, theme::KEY), Span::raw(waiting))
    } else if let Some(notice) = &app.notice {
        let (style, sign) = theme::tone(notice.tone);
        (
            Span::styled(sign, style),
            Span::styled(notice.text.as_str(), style),
        )
    } else {
        return;
    };
    let [sign_area, text_area] = area.layout(&Layout::horizontal([
        Constraint::Length(3),
        Constraint::Min(1),
    ]));
    frame.render_widget(Line::from(sign).centered(), sign_area);
    frame.render_widget(Paragraph::new(text).wrap(Wrap { trim: true }), text_area);
}

/// Server reachable or not and the earns waiting for it, who is signed in where, and the keys that always work.
fn draw_status(frame: &mut Frame, area: Rect, app: &App) {
    let waiting = app.queue.waiting();
    let server = match (app.health.reachable, waiting) {
        (Some(true), 0) => Span::styled(" ● Server online ", theme::ONLINE),
        (Some(true), n) if app.session.is_some() => {
            Span::styled(format!(" ● Sending {} waiting… ", earns(n)), theme::ONLINE)
        }
        (Some(true), n) => Span::styled(
            format!(" ● Server online: {} waiting ", earns(n)),
            theme::ONLINE,
        ),
        (Some(false), 0) => Span::styled(" ○ Server unreachable ", theme::OFFLINE),
        (Some(false), n) => {
            Span::styled(format!(" ○ Offline: {} waiting ", earns(n)), theme::OFFLINE)
        }
        (None, 0) => Span::raw(" ◌ Checking server… "),
        (None, n) => Span::raw(format!(" ◌ Checking server… {} waiting ", earns(n))),
    };
    let refused = match app.queue.backlog.refused.len() {
        0 => None,
        n => Some(Span::styled(
            format!("│ {} refused ", earns(n)),
            theme::OFFLINE,
        )),
    };
    let who = match &app.session {
        Some(session) => format!("│ {} · {} ", session.staff_name, session.program_name),
        None => "│ Not signed in ".to_owned(),
    };
    let keys = match &app.session {
        Some(_) => "│ ? keys · q quit",
        None => "│ Ctrl-C quit",
    };
    let mut spans = vec![server];
    spans.extend(refused);
    spans.extend([Span::raw(who), Span::raw(keys)]);
    let line = Line::from(spans).style(theme::STATUS_BAR);
    frame.render_widget(Paragraph::new(line).style(theme::STATUS_BAR), area);
}
