//! Managers add clerks and managers to their program.

use leptos::prelude::*;
use loyalty_core::LoyaltyError;
use loyalty_core::wire::Role;
use serde::{Deserialize, Serialize};

/// A staff account as the staff page lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StaffMember {
    pub name: String,
    pub email: String,
    pub role: Role,
}

/// The staff of the signed-in manager's program.
#[server(endpoint = "staff")]
pub async fn list_staff() -> Result<Vec<StaffMember>, LoyaltyError> {
    use crate::auth::server::*;
    answer(
        async {
            let staff = manager(current_staff()?)?;
            let rows: Vec<(String, String, String)> = sqlx::query_as(
                "select display_name, email, role from public.staff where program_id = $1 order by display_name",
            )
            .bind(staff.program_id)
            .fetch_all(&pool()?)
            .await
            .map_err(crate::db::db_error)?;
            Ok(rows
                .into_iter()
                .filter_map(|(name, email, role)| Some(StaffMember { name, email, role: Role::from_sql(&role)? }))
                .collect())
        }
        .await,
    )
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
    use crate::auth::server::*;
    answer(
        async {
            let staff = manager(staff_for_change(&csrf)?)?;
            let role = Role::from_sql(&role).ok_or(LoyaltyError::InvalidInput {
                message: "Choose clerk or manager.".into(),
            })?;
            crate::auth::db::create_staff(
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
                name: name.trim().to_owned(),
                email: crate::auth::db::normalise_email(&email),
                role,
            })
        }
        .await,
    )
}

#[component]
pub fn StaffPage() -> impl IntoView {
    let add = ServerAction::<AddStaff>::new();
    let staff = Resource::new(move || add.version().get(), |_| list_staff());
    view! {
        <section class="staff">
            <h1>"Staff"</h1>
            <Suspense fallback=|| view! { <p class="loading">"Loading…"</p> }>
                {move || Suspend::new(async move {
                    match staff.await {
                        Ok(list) => {
                            view! {
                                <table class="staff-list">
                                    <thead>
                                        <tr>
                                            <th scope="col">"Name"</th>
                                            <th scope="col">"Email"</th>
                                            <th scope="col">"Role"</th>
                                        </tr>
                                    </thead>
                                    <tbody>
                                        {list
                                            .into_iter()
                                            .map(|s| {
                                                view! {
                                                    <tr>
                                                        <td>{s.name}</td>
                                                        <td>{s.email}</td>
                                                        <td>{s.role.as_sql()}</td>
                                                    </tr>
                                                }
                                            })
                                            .collect_view()}
                                    </tbody>
                                </table>
                                <h2>"Add a staff member"</h2>
                                <ActionForm action=add attr:class="card">
                                    <crate::auth::CsrfField />
                                    <label for="staff-name">"Name"</label>
                                    <input id="staff-name" name="name" required maxlength="100" />
                                    <label for="staff-email">"Email"</label>
                                    <input id="staff-email" name="email" type="email" required />
                                    <label for="staff-password">"Password (at least 10 characters)"</label>
                                    <input
                                        id="staff-password"
                                        name="password"
                                        type="password"
                                        minlength="10"
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
                        Err(error) => view! { <crate::layout::ErrorNotice error /> }.into_any(),
                    }
                })}
            </Suspense>
            <div class="result" role="status" aria-live="polite">
                {move || {
                    add.value()
                        .get()
                        .map(|result| match result {
                            Ok(added) => {
                                view! {
                                    <div class="outcome ok">
                                        <p class="big">"Added " {added.name} " (" {added.email} ")"</p>
                                    </div>
                                }
                                    .into_any()
                            }
                            Err(error) => view! { <crate::layout::ErrorNotice error /> }.into_any(),
                        })
                }}
            </div>
        </section>
    }
}
