//! The history's per-day chart: bars, with the same figures as a table.

use leptos::prelude::*;
use loyalty_core::wire::DailyPoints;

/// Points earned and redeemed per day as bars, with the same numbers as a table for screen readers and for
/// anyone who wants the figures.
#[component]
pub(super) fn DailyChart(daily: Vec<DailyPoints>) -> impl IntoView {
    const BAR: f64 = 6.0;
    const SLOT: f64 = 16.0;
    const HEIGHT: f64 = 100.0;
    const MIN_WIDTH: f64 = 320.0;
    if daily.is_empty() {
        return None;
    }
    let highest = daily
        .iter()
        .map(|d| d.earned.max(d.redeemed))
        .max()
        .unwrap_or(0)
        .max(1) as f64;
    let height = |points: i64| points as f64 / highest * HEIGHT;
    // A few days are drawn at their natural width rather than stretched across the whole chart.
    let width = (SLOT * daily.len() as f64).max(MIN_WIDTH);
    let first = daily.first().map(|d| d.day).unwrap_or_default();
    let last = daily.last().map(|d| d.day).unwrap_or_default();
    let label = format!(
        "Points earned and redeemed per day, {first} to {last}; the figures are in the table below."
    );
    let bars = daily
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let x = i as f64 * SLOT + (SLOT - 2.0 * BAR) / 2.0;
            let (earned, redeemed) = (height(d.earned), height(d.redeemed));
            view! {
                <g>
                    <rect
                        class="history-bar-earned"
                        fill="#17663a"
                        x=format!("{x:.1}")
                        y=format!("{:.1}", HEIGHT - earned)
                        width=format!("{BAR:.1}")
                        height=format!("{earned:.1}")
                    />
                    <rect
                        class="history-bar-redeemed"
                        fill="#7a3e00"
                        x=format!("{:.1}", x + BAR)
                        y=format!("{:.1}", HEIGHT - redeemed)
                        width=format!("{BAR:.1}")
                        height=format!("{redeemed:.1}")
                    />
                </g>
            }
        })
        .collect_view();
    let rows = daily
        .into_iter()
        .map(|d| {
            view! {
                <tr>
                    <th scope="row">{d.day.to_string()}</th>
                    <td class="num">{d.earned}</td>
                    <td class="num">{d.redeemed}</td>
                </tr>
            }
        })
        .collect_view();
    Some(view! {
        <figure class="history-chart">
            <svg
                viewBox=format!("0 0 {width:.0} {HEIGHT:.0}")
                preserveAspectRatio="none"
                role="img"
                aria-label=label
            >
                {bars}
            </svg>
            <figcaption class="history-legend">
                <span class="history-bar-earned">"Earned"</span>
                " and "
                <span class="history-bar-redeemed">"redeemed"</span>
                {format!(" points per day, {first} to {last}")}
            </figcaption>
            <details class="history-chart-data">
                <summary>"Points per day as a table"</summary>
                <table>
                    <thead>
                        <tr>
                            <th scope="col">"Day"</th>
                            <th scope="col" class="num">"Earned"</th>
                            <th scope="col" class="num">"Redeemed"</th>
                        </tr>
                    </thead>
                    <tbody>{rows}</tbody>
                </table>
            </details>
        </figure>
    })
}
