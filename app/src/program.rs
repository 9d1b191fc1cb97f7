//! The program's own settings, for its managers: its time zone, the clock of its days and of every time its
//! staff and members read.

use leptos::prelude::*;
use loyalty_core::LoyaltyError;
use serde::{Deserialize, Serialize};

/// The program's time zone and the names to choose from, for its managers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeZoneChoice {
    pub time_zone: String,
    pub zones: Vec<String>,
}

/// The program's time zone, and every zone name the database knows by a place (Europe/Paris, ...) and UTC.
#[server(endpoint = "time_zone")]
pub async fn time_zone() -> Result<TimeZoneChoice, LoyaltyError> {
    use crate::request::{answer, current_staff, manager, pool};
    answer(
        async {
            let staff = manager(current_staff()?)?;
            let zones: Vec<String> = sqlx::query_scalar(
                "select z.name from pg_catalog.pg_timezone_names z
                  where z.name ~ '^[A-Z][A-Za-z]+/' and z.name !~ '^(Etc|SystemV|posix|right)/'
                  union select 'UTC' order by 1",
            )
            .fetch_all(&pool()?)
            .await
            .map_err(crate::db::db_error)?;
            Ok(TimeZoneChoice {
                time_zone: staff.time_zone,
                zones,
            })
        }
        .await,
    )
}

/// Sets the program's time zone: the clock of its days and of every time its staff and members read.
#[server(endpoint = "set_time_zone")]
pub async fn set_time_zone(csrf: String, time_zone: String) -> Result<String, LoyaltyError> {
    use crate::request::{answer, manager, pool, redirect_form_post, staff_for_change};
    answer(
        async {
            let staff = manager(staff_for_change(&csrf)?)?;
            let answer: sqlx::types::Json<crate::db::RpcAnswer> =
                sqlx::query_scalar("select public.set_program_time_zone($1, $2, $3)")
                    .bind(staff.program_id)
                    .bind(staff.id)
                    .bind(time_zone.trim())
                    .fetch_one(&pool()?)
                    .await
                    .map_err(crate::db::db_error)?;
            answer.0.into_result()?;
            redirect_form_post("/account");
            Ok(time_zone.trim().to_owned())
        }
        .await,
    )
}

/// A manager's choice of the program's time zone.
#[component]
pub fn TimeZoneForm(choice: TimeZoneChoice, set: ServerAction<SetTimeZone>) -> impl IntoView {
    let TimeZoneChoice { time_zone, zones } = choice;
    view! {
        <h2>"Your program's time zone"</h2>
        <ActionForm action=set attr:class="card account-form">
            <crate::auth::CsrfField />
            <label for="time-zone">"Days and times are on this clock"</label>
            <input
                id="time-zone"
                name="time_zone"
                list="time-zones"
                value=time_zone
                required
                autocomplete="off"
            />
            <datalist id="time-zones">
                {zones.into_iter().map(|zone| view! { <option value=zone></option> }).collect_view()}
            </datalist>
            <button type="submit">"Save time zone"</button>
        </ActionForm>
        <div class="result" role="status" aria-live="polite">
            {move || {
                set.value()
                    .get()
                    .map(|result| match result {
                        Ok(zone) => {
                            view! {
                                <div class="outcome ok">
                                    <p class="big">{format!("Days and times are now on {zone} time.")}</p>
                                </div>
                            }
                                .into_any()
                        }
                        Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
                    })
            }}
        </div>
    }
}
