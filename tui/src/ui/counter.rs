//! The counter: the scan line, the member on screen and an earn or redeem that got no answer.

use loyalty_core::error::day;
use loyalty_core::wire::{LedgerEntry, Member, Reward, TxType};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Position, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Wrap};

use crate::app::{App, Ledger, MemberPanel, PendingPoints, Prompt, Unanswered, doing};
use crate::journal::{QueuedEarn, RefusedEarn};
use crate::theme;

/// Refused earns listed at once, two lines each; the rest are counted.
const REFUSED_SHOWN: usize = 2;

/// Draws the counter and returns where the cursor goes.
pub fn draw(frame: &mut Frame, area: Rect, app: &App) -> Option<Position> {
    let unanswered_height = if app.counter.unanswered().is_some() {
        4
    } else {
        0
    };
    let refused = &app.queue.backlog.refused;
    let refused_height = match refused.len() {
        0 => 0,
        n if n > REFUSED_SHOWN => 2 * REFUSED_SHOWN as u16 + 3,
        n => 2 * n as u16 + 2,
    };
    let [input, member, refused_area, unanswered] = area.layout(&Layout::vertical([
        Constraint::Length(3),
        Constraint::Min(3),
        Constraint::Length(refused_height),
        Constraint::Length(unanswered_height),
    ]));
    let cursor = draw_input(frame, input, app);
    draw_member(frame, member, app);
    if !refused.is_empty() {
        draw_refused(frame, refused_area, refused);
    }
    if let Some(pending) = app.counter.unanswered() {
        let sending = matches!(app.counter.points, Some(PendingPoints::Resending(_)));
        draw_unanswered(frame, unanswered, pending, sending);
    }
    cursor
}

/// The one input line: a code, an amount, or a question to confirm.
fn draw_input(frame: &mut Frame, area: Rect, app: &App) -> Option<Position> {
    let member_id = app.counter.pass().unwrap_or("");
    let (title, prefix, hint) = match &app.counter.prompt {
        Prompt::Scan => (
            " Scan or type a code, then Enter ".to_owned(),
            "› ".to_owned(),
            "",
        ),
        Prompt::Amount(TxType::Earn) => (
            format!(" Earn points for {member_id} (managers) "),
            "Points and reason: ".to_owned(),
            "50 birthday gift · Enter continue · Esc cancel ",
        ),
        Prompt::Amount(TxType::Redeem | TxType::Expire) => (
            format!(" Redeem points for {member_id} (managers) "),
            "Points and reason: ".to_owned(),
            "20 entered twice · Enter continue · Esc cancel ",
        ),
        Prompt::Sale => (
            format!(" Record a sale for {member_id} "),
            "Sale amount: ".to_owned(),
            "Enter continue · Esc cancel ",
        ),
        Prompt::ConfirmPoints(request) => (
            " Confirm ".to_owned(),
            format!("{} for {}?", doing(request), request.external_id),
            if app.offline() {
                "Enter queue it until the server is back · Esc no "
            } else {
                "Enter yes · Esc no "
            },
        ),
        Prompt::ConfirmEnrol => (
            " Confirm ".to_owned(),
            "Enrol a new member (MBR-)?".to_owned(),
            "Enter yes · Esc no ",
        ),
        Prompt::Return { newest } => (
            format!(" Return for {member_id} "),
            match newest {
                Some(row) => format!("Points to return of #{row} (or # and points): "),
                None => "Row # and points to return: ".to_owned(),
            },
            "5 · 34 5 · Enter return · Esc cancel ",
        ),
        Prompt::Find => (
            " Find a member ".to_owned(),
            "Phone or email: ".to_owned(),
            "the one they gave · Enter find · Esc cancel ",
        ),
        Prompt::Contact => (
            format!(" Phone or email for {member_id} "),
            "Phone or email: ".to_owned(),
            "06 12 34 56 78 or name@example.com · Enter keep · Esc cancel ",
        ),
    };
    let block = Block::bordered()
        .title(Line::styled(title, theme::TITLE))
        .title_bottom(Line::styled(hint, theme::MUTED).right_aligned())
        .border_style(theme::FOCUS_BORDER);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let typing = matches!(
        app.counter.prompt,
        Prompt::Scan
            | Prompt::Amount(_)
            | Prompt::Sale
            | Prompt::Contact
            | Prompt::Find
            | Prompt::Return { .. }
    );
    let line = Line::from(vec![
        Span::styled(prefix.as_str(), theme::LABEL),
        Span::styled(app.counter.input.as_str(), theme::VALUE),
    ]);
    frame.render_widget(Paragraph::new(line), inner);
    if !typing {
        return None;
    }
    let typed = prefix.chars().count() + app.counter.input.chars().count();
    let x = inner.x + u16::try_from(typed).unwrap_or(u16::MAX);
    Some(Position::new(
        x.min(inner.right().saturating_sub(1)),
        inner.y,
    ))
}

fn draw_member(frame: &mut Frame, area: Rect, app: &App) {
    let block = Block::bordered()
        .title(Line::styled(" Member ", theme::TITLE))
        .border_style(theme::BORDER);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let panel = match &app.counter.panel {
        MemberPanel::Shown {
            member,
            ledger,
            expiry,
        } => Paragraph::new(member_lines(
            member,
            ledger,
            *expiry,
            &app.rewards,
            inner.height,
        )),
        MemberPanel::Offline {
            external_id,
            postcard,
        } => Paragraph::new(offline_lines(app, external_id, *postcard)).wrap(Wrap { trim: false }),
        MemberPanel::Empty | MemberPanel::LookingUp { .. } => {
            Paragraph::new(idle_lines(app)).wrap(Wrap { trim: false })
        }
    };
    frame.render_widget(panel, inner);
}

fn idle_lines(app: &App) -> Vec<Line<'static>> {
    if app.waiting().is_some() {
        return vec![Line::styled(" Waiting for the server…", theme::MUTED)];
    }
    let key = |k: &'static str, what: &'static str| {
        Line::from(vec![
            Span::styled(format!("   {k:<3}"), theme::KEY),
            Span::styled(what, theme::LABEL),
        ])
    };
    vec![
        Line::raw(" Scan a postcard or a member's pass, or type its code and press Enter."),
        Line::default(),
        key("n", "enrol a new member"),
        key("?", "all keys"),
    ]
}

fn member_lines(
    member: &Member,
    ledger: &Ledger,
    expiry: Option<(i64, chrono::NaiveDate)>,
    rewards: &[Reward],
    height: u16,
) -> Vec<Line<'static>> {
    let mut lines = vec![
        Line::from(vec![
            Span::styled(" Pass     ", theme::LABEL),
            Span::styled(member.external_id.clone(), theme::VALUE),
            Span::styled(
                format!(
                    "  {} on {}",
                    member.origin.describe(),
                    day(&member.created_at)
                ),
                theme::MUTED,
            ),
        ]),
        Line::from(vec![
            Span::styled(" Balance  ", theme::LABEL),
            Span::styled(format!("{} points", member.points), theme::BALANCE),
            Span::styled(
                expiry
                    .map(|(points, on)| format!("  {points} expire on {}", day(&on)))
                    .unwrap_or_default(),
                theme::MUTED,
            ),
        ]),
        Line::from(vec![
            Span::styled(" Keys     ", theme::LABEL),
            Span::styled("s", theme::KEY),
            Span::styled(" sale  ", theme::LABEL),
            Span::styled("e", theme::KEY),
            Span::styled(" earn  ", theme::LABEL),
            Span::styled("r", theme::KEY),
            Span::styled(" redeem  ", theme::LABEL),
            Span::styled("?", theme::KEY),
            Span::styled(" more", theme::LABEL),
        ]),
    ];
    if !rewards.is_empty() {
        lines.push(rewards_line(rewards));
    }
    lines.push(Line::styled(" Last transactions", theme::TITLE));
    match ledger {
        Ledger::Loading => lines.push(Line::styled(
            " Loading the last transactions…",
            theme::MUTED,
        )),
        Ledger::Failed(why) => lines.push(Line::styled(
            format!(" Could not load the last transactions: {why}"),
            theme::MUTED,
        )),
        Ledger::Loaded(entries) if entries.is_empty() => {
            lines.push(Line::styled(" No transactions yet.", theme::MUTED));
        }
        Ledger::Loaded(entries) => {
            lines.push(Line::styled(
                format!(
                    " {:<17} {:<7} {:>8} {:>8}  {}",
                    "When", "Type", "Points", "Balance", "By · note"
                ),
                theme::LABEL,
            ));
            let room = usize::from(height).saturating_sub(lines.len());
            lines.extend(entries.iter().take(room).map(ledger_line));
        }
    }
    lines
}

/// A pass taken offline: no balance, the earns queued for it.
fn offline_lines(app: &App, external_id: &str, postcard: bool) -> Vec<Line<'static>> {
    let mut lines = vec![
        Line::from(vec![
            Span::styled(" Pass     ", theme::LABEL),
            Span::styled(external_id.to_owned(), theme::VALUE),
            Span::styled(
                "  not looked up: the server cannot be reached",
                theme::MUTED,
            ),
        ]),
        Line::from(vec![
            Span::styled(" Balance  ", theme::LABEL),
            Span::styled("known again when the server is back", theme::MUTED),
        ]),
        Line::from(vec![
            Span::styled(" Keys     ", theme::LABEL),
            Span::styled("s", theme::KEY),
            Span::styled(" sale (queued)  ", theme::LABEL),
            Span::styled("e", theme::KEY),
            Span::styled(" earn (queued)  ", theme::LABEL),
            Span::styled("?", theme::KEY),
            Span::styled(" more", theme::LABEL),
        ]),
    ];
    if postcard {
        lines.push(Line::styled(
            " A new postcard is claimed only when the server is back.",
            theme::MUTED,
        ));
    }
    let queued: Vec<&QueuedEarn> = app.queue.waiting_for(external_id).collect();
    if !queued.is_empty() {
        lines.push(Line::styled(" Queued for this pass", theme::TITLE));
        lines.extend(queued.into_iter().map(|earn| {
            Line::from(vec![
                Span::styled(format!(" {:<17} ", taken_at(earn)), theme::LABEL),
                Span::styled(
                    match &earn.sale_amount {
                        Some(amount) => format!("{:<7} {:>8}", "Sale", amount),
                        None => format!("{:<7} {:>8}", "Earn", format!("+{}", earn.points)),
                    },
                    theme::EARN,
                ),
                Span::styled(format!("  {}", earn.staff_name), theme::MUTED),
            ])
        }));
    }
    lines
}

/// When a queued earn was taken, on the till's clock.
fn taken_at(earn: &QueuedEarn) -> String {
    earn.sold_at
        .with_timezone(&chrono::Local)
        .format("%-d %b %Y %H:%M")
        .to_string()
}

/// Queued earns the server refused, until the clerk has dealt with them.
fn draw_refused(frame: &mut Frame, area: Rect, refused: &[RefusedEarn]) {
    let block = Block::bordered()
        .title(Line::styled(" Refused when sent ", theme::TITLE))
        .title_bottom(Line::styled(" d dealt with the first ", theme::MUTED).right_aligned())
        .border_style(theme::WARNING_BORDER);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let mut lines: Vec<Line> = refused
        .iter()
        .take(REFUSED_SHOWN)
        .flat_map(|refused| {
            let earn = &refused.earn;
            [
                Line::from(vec![
                    Span::styled(
                        format!(" {} for {}", doing(&earn.request()), earn.external_id),
                        theme::VALUE,
                    ),
                    Span::styled(
                        format!(", taken {} by {}", taken_at(earn), earn.staff_name),
                        theme::MUTED,
                    ),
                ]),
                Line::raw(format!("   {}", refused.error)),
            ]
        })
        .collect();
    if refused.len() > REFUSED_SHOWN {
        lines.push(Line::styled(
            format!(" …and {} more", refused.len() - REFUSED_SHOWN),
            theme::MUTED,
        ));
    }
    frame.render_widget(Paragraph::new(lines).wrap(Wrap { trim: false }), inner);
}

/// The rewards on offer and the key of each: "1 Coffee 100 · 2 Cake 250", the first nine.
fn rewards_line(rewards: &[Reward]) -> Line<'static> {
    let mut spans = vec![Span::styled(" Rewards  ", theme::LABEL)];
    for (key, reward) in (1..=9).zip(rewards) {
        if key > 1 {
            spans.push(Span::styled(" · ", theme::MUTED));
        }
        spans.push(Span::styled(key.to_string(), theme::KEY));
        spans.push(Span::styled(
            format!(" {} {}", reward.name, reward.points_cost),
            theme::LABEL,
        ));
        if reward.stock == Some(0) {
            spans.push(Span::styled(" (none left)", theme::MUTED));
        }
    }
    Line::from(spans)
}

fn ledger_line(entry: &LedgerEntry) -> Line<'static> {
    let (kind, sign, style) = match (entry.tx_type, entry.voids) {
        (_, Some(_)) => (
            "Void",
            if entry.tx_type == TxType::Earn {
                '+'
            } else {
                '-'
            },
            theme::MUTED,
        ),
        (TxType::Earn, None) => ("Earn", '+', theme::EARN),
        (TxType::Redeem, None) => ("Redeem", '-', theme::REDEEM),
        (TxType::Expire, None) => ("Expired", '-', theme::MUTED),
    };
    // On the program's clock, as on the dashboard.
    let when = entry.local_at.format("%-d %b %Y %H:%M").to_string();
    let mut by: Vec<String> = entry.staff_name.iter().cloned().collect();
    by.extend(entry.description.iter().cloned());
    if entry.voided_by.is_some() {
        by.push("voided".to_owned());
    }
    if let Some(sold) = entry.sold_apart() {
        by.push(format!("sold {}", sold.format("%-d %b %H:%M")));
    }
    Line::from(vec![
        Span::styled(format!(" {when:<17} "), theme::LABEL),
        Span::styled(
            format!("{kind:<7} {:>8}", format!("{sign}{}", entry.points)),
            style,
        ),
        Span::raw(format!(" {:>8}  ", entry.balance_after)),
        Span::styled(by.join(" · "), theme::MUTED),
    ])
}

/// An earn or redeem whose answer never came, and the one key that settles it.
fn draw_unanswered(frame: &mut Frame, area: Rect, pending: &Unanswered, sending: bool) {
    let block = Block::bordered()
        .title(Line::styled(" Not answered ", theme::TITLE))
        .border_style(theme::WARNING_BORDER);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let request = &pending.request;
    let first = Line::from(vec![
        Span::styled(
            format!(" {} for {}: ", doing(request), request.external_id),
            theme::VALUE,
        ),
        Span::raw(format!("{}.", pending.detail)),
    ]);
    let second = if sending {
        Line::styled(" Sending it again…", theme::MUTED)
    } else {
        Line::from(vec![
            Span::raw(" Not known if it went through. "),
            Span::styled("t", theme::KEY),
            Span::raw(" send it again (never applied twice)  "),
            Span::styled("x", theme::KEY),
            Span::raw(" drop"),
        ])
    };
    frame.render_widget(
        Paragraph::new(vec![first, second]).wrap(Wrap { trim: false }),
        inner,
    );
}
