//! The demo program a fresh embedded database starts with, so a newcomer has something to scan.

use loyalty_core::wire::Role;
use sqlx::PgPool;
use uuid::Uuid;

/// What the demo seed made, to print for the newcomer.
#[derive(Debug)]
pub struct DemoSeed {
    pub program_id: Uuid,
    /// (email, password, role) of each demo account.
    pub staff: Vec<(&'static str, &'static str, Role)>,
    pub members: Vec<String>,
    pub claim_codes: Vec<String>,
}

pub const DEMO_PROGRAM: &str = "Demo Coffee Club";
/// The demo program's public sign-up page is /join/<this>.
pub const DEMO_SIGN_UP_SLUG: &str = "demo-coffee-club";

/// The demo accounts: for trying the dashboard on a fresh machine, never for a real program.
pub const DEMO_STAFF: [(&str, &str, &str, Role); 2] = [
    (
        "manager@demo.test",
        "Demo Manager",
        "demo-manager-password",
        Role::Manager,
    ),
    (
        "clerk@demo.test",
        "Demo Clerk",
        "demo-clerk-password",
        Role::Clerk,
    ),
];

/// Seeds the demo program once: does nothing when any program exists. Runs as the database owner.
pub async fn seed_demo(owner: &PgPool) -> anyhow::Result<Option<DemoSeed>> {
    let mut tx = owner.begin().await?;
    // One seeder at a time, and only into an empty database.
    sqlx::query("lock table public.programs in exclusive mode")
        .execute(&mut *tx)
        .await?;
    let any: bool = sqlx::query_scalar("select exists (select 1 from public.programs)")
        .fetch_one(&mut *tx)
        .await?;
    if any {
        return Ok(None);
    }
    let program_id: Uuid = sqlx::query_scalar(
        "insert into public.programs (name, public_slug) values ($1, $2) returning id",
    )
    .bind(DEMO_PROGRAM)
    .bind(DEMO_SIGN_UP_SLUG)
    .fetch_one(&mut *tx)
    .await?;
    let claim_codes: Vec<String> = sqlx::query_scalar(
        "insert into public.claim_codes (program_id, code)
         select $1, public.new_claim_code() from generate_series(1, 20)
         returning code",
    )
    .bind(program_id)
    .fetch_all(&mut *tx)
    .await?;
    for (email, name, password, role) in DEMO_STAFF {
        let hash =
            tokio::task::spawn_blocking(move || app::auth::db::hash_password(password)).await?;
        sqlx::query(
            "insert into public.staff (program_id, email, display_name, role, password_hash) values ($1, $2, $3, $4, $5)",
        )
        .bind(program_id)
        .bind(email)
        .bind(name)
        .bind(role.as_sql())
        .bind(hash)
        .execute(&mut *tx)
        .await?;
    }
    let mut members = Vec::new();
    for points in [250_i64, 40, 0] {
        let external_id: String = sqlx::query_scalar(
            "select public.create_member_pass($1, 'MBR') -> 'data' ->> 'external_id'",
        )
        .bind(program_id)
        .fetch_one(&mut *tx)
        .await?;
        if points > 0 {
            sqlx::query("select public.process_membership_transaction($1, $2, $3, 'EARN', 'Welcome points')")
                .bind(program_id)
                .bind(&external_id)
                .bind(points)
                .execute(&mut *tx)
                .await?;
        }
        members.push(external_id);
    }
    tx.commit().await?;
    Ok(Some(DemoSeed {
        program_id,
        staff: DEMO_STAFF
            .iter()
            .map(|(email, _, password, role)| (*email, *password, *role))
            .collect(),
        members,
        claim_codes,
    }))
}

/// Whether the demo accounts are there, so the server can say how to sign in.
pub async fn demo_staff_exists(owner: &PgPool) -> anyhow::Result<bool> {
    Ok(
        sqlx::query_scalar("select exists (select 1 from public.staff where email = $1)")
            .bind(DEMO_STAFF[1].0)
            .fetch_one(owner)
            .await?,
    )
}
