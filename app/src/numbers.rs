//! The programme's numbers for managers: the points outstanding (what the program owes its members), the
//! points about to expire, and what was earned, redeemed, expired and adjusted month by month, and rewards
//! redeemed.

use leptos::prelude::*;
use loyalty_core::LoyaltyError;
use serde::{Deserialize, Serialize};

/// Where managers read the numbers; the months as CSV are at [`NUMBERS_CSV_PATH`].
pub const NUMBERS_PATH: &str = "/numbers";
pub const NUMBERS_CSV_PATH: &str = "/api/numbers.csv";

/// One month of the ledger, on the program's clock.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthPoints {
    /// "2026-12".
    pub month: String,
    pub earned: i64,
    pub redeemed: i64,
    pub expired: i64,
    /// Points managers added by hand, less those they took: an adjustment counts here and not as earned or
    /// redeemed.
    pub adjusted: i64,
}

/// The program's numbers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgramNumbers {
    /// Points held by members: the program's liability.
    pub outstanding: i64,
    /// Points that expire within the next 30, 60 and 90 days, where points expire.
    pub expiring: Option<[i64; 3]>,
    /// Newest month first.
    pub months: Vec<MonthPoints>,
    /// Each reward and how many times it was redeemed (voided redeems not counted), most first.
    pub rewards: Vec<(String, i64)>,
}

/// The program's numbers, for its managers.
#[server(endpoint = "numbers")]
pub async fn load_numbers() -> Result<ProgramNumbers, LoyaltyError> {
    use crate::request::{answer, current_staff, manager, pool};
    answer(
        async {
            let staff = manager(current_staff()?)?;
            db::numbers(&pool()?, staff.program_id).await
        }
        .await,
    )
}

#[cfg(feature = "ssr")]
pub mod db {
    use loyalty_core::Result;
    use uuid::Uuid;

    use super::{MonthPoints, ProgramNumbers};
    use crate::db::{PgPool, db_error};

    /// The months' CSV columns.
    pub const CSV_HEADER: [&str; 5] = ["month", "earned", "redeemed", "expired", "adjusted"];

    pub async fn numbers(db: &PgPool, program_id: Uuid) -> Result<ProgramNumbers> {
        let (outstanding, expires): (i64, bool) = sqlx::query_as(
            // The sum names the program by the parameter, not the outer row, so a distributed cluster routes it
            // to the program's shard.
            "select coalesce((select sum(m.points) from public.passes_master m where m.program_id = $1), 0)::bigint,
                    p.points_expire_months is not null
               from public.programs p where p.id = $1",
        )
        .bind(program_id)
        .fetch_one(db)
        .await
        .map_err(db_error)?;
        let expiring = if expires {
            let windows: (i64, i64, i64) = sqlx::query_as(
                "select coalesce(sum(d30 - d0), 0)::bigint, coalesce(sum(d60 - d0), 0)::bigint,
                        coalesce(sum(d90 - d0), 0)::bigint
                   from (select (select e.due from public.member_expiry($1, m.id) e) as d0,
                                (select e.due from public.member_expiry($1, m.id, now() + interval '30 days') e) as d30,
                                (select e.due from public.member_expiry($1, m.id, now() + interval '60 days') e) as d60,
                                (select e.due from public.member_expiry($1, m.id, now() + interval '90 days') e) as d90
                           from public.passes_master m where m.program_id = $1 and m.points > 0) s",
            )
            .bind(program_id)
            .fetch_one(db)
            .await
            .map_err(db_error)?;
            Some([windows.0, windows.1, windows.2])
        } else {
            None
        };
        Ok(ProgramNumbers {
            outstanding,
            expiring,
            months: months(db, program_id).await?,
            rewards: sqlx::query_as(
                "select r.name, count(d.transaction_id)::bigint
                   from public.rewards r
                   left join public.ledger_details d on d.program_id = r.program_id and d.reward_id = r.id
                    and not exists (select 1 from public.transactions v
                                     where v.program_id = d.program_id and v.voids_id = d.transaction_id)
                  where r.program_id = $1
                  group by r.id, r.name
                  order by 2 desc, r.name",
            )
            .bind(program_id)
            .fetch_all(db)
            .await
            .map_err(db_error)?,
        })
    }

    /// The ledger month by month on the program's clock, newest first. A void or a return counts against the type
    /// it undoes.
    pub async fn months(db: &PgPool, program_id: Uuid) -> Result<Vec<MonthPoints>> {
        let rows: Vec<(String, i64, i64, i64, i64)> = sqlx::query_as(
            "select to_char(public.program_time(t.program_id, t.created_at), 'YYYY-MM') as month,
                    coalesce(sum(case when a.transaction_id is not null then null
                                      when r.id is not null or t.voids_id is not null then
                                          case when t.type = 'REDEEM' then -t.points end
                                      when t.type = 'EARN' then t.points end), 0)::bigint,
                    coalesce(sum(case when a.transaction_id is not null then null
                                      when r.id is not null or t.voids_id is not null then
                                          case when t.type = 'EARN' then -t.points end
                                      when t.type = 'REDEEM' then t.points end), 0)::bigint,
                    coalesce(sum(t.points) filter (where t.type = 'EXPIRE'), 0)::bigint,
                    coalesce(sum(case when a.adjustment is not true then null
                                      when t.type = 'EARN' then t.points
                                      when t.type = 'REDEEM' then -t.points end), 0)::bigint
               from public.transactions t
               -- A join rather than a correlated subquery, which Citus cannot run beside the program's clock.
               -- Adjustments count apart; balances moved from a lost pass to its new one count nowhere.
               left join public.ledger_details a
                      on a.program_id = t.program_id and a.transaction_id = coalesce(t.voids_id, t.id)
                     and (a.adjustment or a.moved)
               -- A return counts against the type it undoes, as a void does.
               left join public.reversals r on r.program_id = t.program_id and r.transaction_id = t.id
              where t.program_id = $1
              group by 1
              order by 1 desc",
        )
        .bind(program_id)
        .fetch_all(db)
        .await
        .map_err(db_error)?;
        Ok(rows
            .into_iter()
            .map(|(month, earned, redeemed, expired, adjusted)| MonthPoints {
                month,
                earned,
                redeemed,
                expired,
                adjusted,
            })
            .collect())
    }
}

/// `GET /api/numbers.csv`: the ledger month by month, for a spreadsheet. Managers only; the program is the
/// session's.
#[cfg(feature = "ssr")]
pub async fn csv_download(
    axum::extract::State(pool): axum::extract::State<sqlx::PgPool>,
    staff: Option<axum::Extension<crate::session::Staff>>,
    outcome: Option<axum::Extension<crate::request::Outcome>>,
) -> axum::response::Response {
    use crate::request::{csv_attachment, manager};
    let outcome = outcome.as_ref().map(|o| &o.0);
    let me = match staff
        .ok_or(LoyaltyError::NotSignedIn)
        .and_then(|axum::Extension(s)| manager(s))
    {
        Ok(me) => me,
        Err(err) => return crate::request::refusal(outcome, err),
    };
    let written = db::months(&pool, me.program_id)
        .await
        .and_then(|months| months_csv(&months).map_err(|_| LoyaltyError::Internal));
    let download = written.map(|bytes| {
        let flushed: Result<Vec<u8>, std::io::Error> = Ok(bytes);
        (
            "numbers.csv".to_owned(),
            futures::stream::once(async move { flushed }),
        )
    });
    csv_attachment(outcome, download)
}

#[cfg(feature = "ssr")]
fn months_csv(months: &[MonthPoints]) -> Result<Vec<u8>, Box<dyn std::error::Error>> {
    let mut out = csv::Writer::from_writer(Vec::new());
    out.write_record(db::CSV_HEADER)?;
    for m in months {
        out.write_record([
            m.month.clone(),
            m.earned.to_string(),
            m.redeemed.to_string(),
            m.expired.to_string(),
            m.adjusted.to_string(),
        ])?;
    }
    Ok(out.into_inner()?)
}

/// The managers' Numbers page.
#[component]
pub fn NumbersPage() -> impl IntoView {
    let numbers = Resource::new(|| (), |_| load_numbers());
    view! {
        <section class="numbers">
            <h1>"Numbers"</h1>
            <Suspense fallback=|| view! { <p class="loading">"Adding up…"</p> }>
                {move || Suspend::new(async move {
                    match numbers.await {
                        Ok(numbers) => view! { <NumbersView numbers /> }.into_any(),
                        Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
                    }
                })}
            </Suspense>
        </section>
    }
}

#[component]
fn NumbersView(numbers: ProgramNumbers) -> impl IntoView {
    let ProgramNumbers {
        outstanding,
        expiring,
        months,
        rewards,
    } = numbers;
    view! {
        <dl class="history-totals">
            <div>
                <dt>"Points outstanding"</dt>
                <dd data-outstanding=outstanding>{outstanding}</dd>
            </div>
            {expiring
                .map(|[d30, d60, d90]| {
                    view! {
                        <div>
                            <dt>"Expiring in 30 days"</dt>
                            <dd>{d30}</dd>
                        </div>
                        <div>
                            <dt>"in 60 days"</dt>
                            <dd>{d60}</dd>
                        </div>
                        <div>
                            <dt>"in 90 days"</dt>
                            <dd>{d90}</dd>
                        </div>
                    }
                })}
        </dl>
        <h2>"Month by month"</h2>
        <p class="history-download">
            <a href=NUMBERS_CSV_PATH rel="external" download="numbers.csv">
                "Download CSV"
            </a>
        </p>
        <table class="numbers-months">
            <thead>
                <tr>
                    <th scope="col">"Month"</th>
                    <th scope="col" class="num">"Earned"</th>
                    <th scope="col" class="num">"Redeemed"</th>
                    <th scope="col" class="num">"Expired"</th>
                    <th scope="col" class="num">"Adjusted"</th>
                </tr>
            </thead>
            <tbody>
                {months
                    .into_iter()
                    .map(|m| {
                        view! {
                            <tr>
                                <th scope="row">{m.month}</th>
                                <td class="num">{m.earned}</td>
                                <td class="num">{m.redeemed}</td>
                                <td class="num">{m.expired}</td>
                                <td class="num">{m.adjusted}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
        <h2>"Rewards redeemed"</h2>
        <table class="numbers-rewards">
            <thead>
                <tr>
                    <th scope="col">"Reward"</th>
                    <th scope="col" class="num">"Redeemed"</th>
                </tr>
            </thead>
            <tbody>
                {rewards
                    .into_iter()
                    .map(|(name, count)| {
                        view! {
                            <tr>
                                <td>{name}</td>
                                <td class="num">{count}</td>
                            </tr>
                        }
                    })
                    .collect_view()}
            </tbody>
        </table>
    }
}
