//! Managers add clerks and managers to their program, switch an account off when someone leaves (which ends
//! their sessions at once) and back on, and set a new password for someone who forgot theirs.

use leptos::prelude::*;
use loyalty_core::LoyaltyError;
use loyalty_core::error::PASSWORD_MIN_CHARS;
use loyalty_core::wire::Role;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A staff account as the staff page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffMember {
    pub id: Uuid,
    pub name: String,
    pub email: String,
    pub role: Role,
    /// Switched on: can sign in.
    pub active: bool,
    /// The signed-in manager themself, whose own access this page does not change.
    pub you: bool,
}

#[cfg(feature = "ssr")]
async fn staff_rows(
    db: &sqlx::PgPool,
    manager: &crate::session::Staff,
    only: Option<Uuid>,
) -> Result<Vec<StaffMember>, LoyaltyError> {
    let rows: Vec<(Uuid, String, String, String, bool)> = sqlx::query_as(
        "select id, display_name, email, role, active from public.staff
          where program_id = $1 and ($2::uuid is null or id = $2)
          order by active desc, display_name, email",
    )
    .bind(manager.program_id)
    .bind(only)
    .fetch_all(db)
    .await
    .map_err(crate::db::db_error)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, name, email, role, active)| {
            Some(StaffMember {
                id,
                name,
                email,
                role: Role::from_sql(&role)?,
                active,
                you: id == manager.id,
            })
        })
        .collect())
}

/// The staff of the signed-in manager's program: switched-on accounts first.
#[server(endpoint = "staff")]
pub async fn list_staff() -> Result<Vec<StaffMember>, LoyaltyError> {
    use crate::request::{answer, current_staff, manager, pool};
    answer(
        async {
            let staff = manager(current_staff()?)?;
            staff_rows(&pool()?, &staff, None).await
        }
        .await,
    )
}

/// Switches another staff member's account of the manager's program off (ending every session it has) or on.
#[server(endpoint = "set_staff_active")]
pub async fn set_staff_active(
    csrf: String,
    staff_id: Uuid,
    active: bool,
) -> Result<StaffMember, LoyaltyError> {
    use crate::auth::db::AccessChange;
    use crate::request::{answer, manager, staff_for_change};
    answer(
        async {
            let staff = manager(staff_for_change(&csrf)?)?;
            change_access(&staff, staff_id, AccessChange::Active(active)).await
        }
        .await,
    )
}

/// Sets a new password for another staff member of the manager's program, ending every session they have.
#[server(endpoint = "set_staff_password")]
pub async fn set_staff_password(
    csrf: String,
    staff_id: Uuid,
    password: String,
) -> Result<StaffMember, LoyaltyError> {
    use crate::auth::db::AccessChange;
    use crate::request::{answer, manager, staff_for_change};
    answer(
        async {
            let staff = manager(staff_for_change(&csrf)?)?;
            change_access(&staff, staff_id, AccessChange::Password(&password)).await
        }
        .await,
    )
}

#[cfg(feature = "ssr")]
async fn change_access(
    by: &crate::session::Staff,
    staff_id: Uuid,
    change: crate::auth::db::AccessChange<'_>,
) -> Result<StaffMember, LoyaltyError> {
    use crate::request::{pool, redirect_form_post};
    let db = pool()?;
    crate::auth::db::set_staff_access(&db, by.program_id, by.id, staff_id, change).await?;
    redirect_form_post("/staff");
    staff_rows(&db, by, Some(staff_id))
        .await?
        .pop()
        .ok_or(LoyaltyError::StaffNotFound)
}

/// Adds a clerk or a manager to the signed-in manager's program.
#[server(endpoint = "add_staff")]
pub async fn add_staff(
    csrf: String,
    email: String,
    name: String,
    password: String,
    role: String,
) -> Result<StaffMember, LoyaltyError> {
    use crate::request::{answer, manager, pool, redirect_form_post, staff_for_change};
    answer(
        async {
            let staff = manager(staff_for_change(&csrf)?)?;
            let role = Role::from_sql(&role).ok_or(LoyaltyError::InvalidRole)?;
            let id = crate::auth::db::create_staff(
                &pool()?,
                staff.program_id,
                &email,
                &name,
                role,
                &password,
            )
            .await?;
            redirect_form_post("/staff");
            Ok(StaffMember {
                id,
                name: name.trim().to_owned(),
                email: crate::auth::db::normalise_email(&email),
                role,
                active: true,
                you: false,
            })
        }
        .await,
    )
}

/// What the last change on the staff page did, in words.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    Added,
    Access,
    Password,
}

#[component]
pub fn StaffPage() -> impl IntoView {
    let add = ServerAction::<AddStaff>::new();
    let set_active = ServerAction::<SetStaffActive>::new();
    let set_password = ServerAction::<SetStaffPassword>::new();
    let staff = Resource::new(
        move || {
            (
                add.version().get(),
                set_active.version().get(),
                set_password.version().get(),
            )
        },
        |_| list_staff(),
    );
    // The newest of the three answers is the one to show.
    let last = RwSignal::new(None::<(Done, Result<StaffMember, LoyaltyError>)>);
    Effect::new(move || {
        if let Some(result) = add.value().get() {
            last.set(Some((Done::Added, result)));
        }
    });
    Effect::new(move || {
        if let Some(result) = set_active.value().get() {
            last.set(Some((Done::Access, result)));
        }
    });
    Effect::new(move || {
        if let Some(result) = set_password.value().get() {
            last.set(Some((Done::Password, result)));
        }
    });
    view! {
        <section class="staff">
            <h1>"Staff"</h1>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match staff.await {
                        Ok(list) => {
                            view! {
                                <div class="staff-table-frame">
                                    <table class="staff-list">
                                        <thead>
                                            <tr>
                                                <th scope="col">"Name"</th>
                                                <th scope="col">"Email"</th>
                                                <th scope="col">"Role"</th>
                                                <th scope="col">"Access"</th>
                                            </tr>
                                        </thead>
                                        <tbody>
                                            {list
                                                .into_iter()
                                                .map(|s| view! { <StaffRow s set_active set_password /> })
                                                .collect_view()}
                                        </tbody>
                                    </table>
                                </div>
                                <h2>"Add a staff member"</h2>
                                <ActionForm action=add attr:class="card">
                                    <crate::auth::CsrfField />
                                    <label for="staff-name">"Name"</label>
                                    <input id="staff-name" name="name" required maxlength="100" />
                                    <label for="staff-email">"Email"</label>
                                    <input id="staff-email" name="email" type="email" required />
                                    <label for="staff-password">
                                        {format!("Password (at least {PASSWORD_MIN_CHARS} characters)")}
                                    </label>
                                    <input
                                        id="staff-password"
                                        name="password"
                                        type="password"
                                        minlength=PASSWORD_MIN_CHARS.to_string()
                                        autocomplete="new-password"
                                        required
                                    />
                                    <label for="staff-role">"Role"</label>
                                    <select id="staff-role" name="role">
                                        <option value="clerk" selected>"Clerk"</option>
                                        <option value="manager">"Manager"</option>
                                    </select>
                                    <button type="submit">"Add"</button>
                                </ActionForm>
                            }
                                .into_any()
                        }
                        Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
                    }
                })}
            </Suspense>
            <div class="result" role="status" aria-live="polite">
                {move || {
                    last.get()
                        .map(|(done, result)| match result {
                            Ok(member) => {
                                let said = match (done, member.active) {
                                    (Done::Added, _) => {
                                        format!("Added {} ({}).", member.name, member.email)
                                    }
                                    (Done::Access, false) => {
                                        format!(
                                            "Switched off {}: they are signed out everywhere and cannot sign in.",
                                            member.name,
                                        )
                                    }
                                    (Done::Access, true) => {
                                        format!("Switched on {}: they can sign in again.", member.name)
                                    }
                                    (Done::Password, _) => {
                                        format!(
                                            "New password set for {}: they are signed out everywhere.",
                                            member.name,
                                        )
                                    }
                                };
                                view! {
                                    <div class="outcome ok">
                                        <p class="big">{said}</p>
                                    </div>
                                }
                                    .into_any()
                            }
                            Err(error) => view! { <crate::notice::ErrorNotice error /> }.into_any(),
                        })
                }}
            </div>
        </section>
    }
}

/// One account: its access, and, for anyone but the manager themself, the forms that change it.
#[component]
fn StaffRow(
    s: StaffMember,
    set_active: ServerAction<SetStaffActive>,
    set_password: ServerAction<SetStaffPassword>,
) -> impl IntoView {
    let status = if s.active { "Active" } else { "Switched off" };
    let name = s.name.clone();
    let actions = (!s.you).then(|| {
        let (button, label) = if s.active {
            ("Switch off", format!("Switch off {name}"))
        } else {
            ("Switch on", format!("Switch on {name}"))
        };
        let password_id = format!("password-{}", s.id);
        view! {
            <ActionForm action=set_active attr:class="inline">
                <crate::auth::CsrfField />
                <input type="hidden" name="staff_id" value=s.id.to_string() />
                <input type="hidden" name="active" value=(!s.active).to_string() />
                <button type="submit" class=if s.active { "danger" } else { "" } aria-label=label>
                    {button}
                </button>
            </ActionForm>
            <details class="staff-password">
                <summary>"New password…"</summary>
                <ActionForm action=set_password>
                    <crate::auth::CsrfField />
                    <input type="hidden" name="staff_id" value=s.id.to_string() />
                    <label for=password_id.clone()>
                        {format!("New password for {name} (at least {PASSWORD_MIN_CHARS} characters)")}
                    </label>
                    <input
                        id=password_id
                        name="password"
                        type="password"
                        minlength=PASSWORD_MIN_CHARS.to_string()
                        autocomplete="new-password"
                        required
                    />
                    <button type="submit">"Set password"</button>
                </ActionForm>
            </details>
        }
    });
    view! {
        <tr data-staff=s.email.clone() class:switched-off=!s.active>
            <td>{s.name.clone()} {s.you.then_some(" (you)")}</td>
            <td>{s.email.clone()}</td>
            <td>{s.role.as_sql()}</td>
            <td class="staff-access">
                <span class="staff-status">{status}</span>
                {actions}
            </td>
        </tr>
    }
}
