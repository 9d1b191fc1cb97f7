//! Staff accounts, passwords and server-side sessions.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use chrono::{DateTime, Utc};
use loyalty_core::error::PASSWORD_MIN_CHARS;
use loyalty_core::wire::Role;
use loyalty_core::{LoyaltyError, Result};
use sqlx::PgPool;
use uuid::Uuid;

use crate::db::{RpcAnswer, db_error};
use crate::session::{Staff, parse_cookie, token_hash};

/// Failed sign-ins within this window count towards the throttle.
const THROTTLE_WINDOW_MINUTES: i64 = 15;
/// Failed sign-ins allowed within the window, per email and per client address.
const THROTTLE_FAILURES: i64 = 5;

/// argon2id with OWASP's parameters: 19 MiB, 2 iterations, parallelism 1.
fn hasher() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_password(password: &str) -> String {
    let salt =
        SaltString::encode_b64(Uuid::new_v4().as_bytes()).expect("16 bytes make a valid salt");
    hasher()
        .hash_password(password.as_bytes(), &salt)
        .expect("argon2 hashing with valid parameters")
        .to_string()
}

fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        hasher()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// Hashing is deliberately slow: it runs off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| LoyaltyError::Internal)
}

pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

/// Creates a staff account in a program.
pub async fn create_staff(
    db: &PgPool,
    program_id: Uuid,
    email: &str,
    name: &str,
    role: Role,
    password: &str,
) -> Result<Uuid> {
    let email = normalise_email(email);
    if !email.contains('@') || email.len() < 3 || email.len() > 254 {
        return Err(LoyaltyError::InvalidEmail);
    }
    let name = name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(LoyaltyError::InvalidStaffName);
    }
    check_password(password)?;
    let password = password.to_owned();
    let hash = blocking(move || hash_password(&password)).await?;
    sqlx::query_scalar(
        "insert into public.staff (program_id, email, display_name, role, password_hash)
         values ($1, $2, $3, $4, $5)
         on conflict (program_id, email) do nothing
         returning id",
    )
    .bind(program_id)
    .bind(&email)
    .bind(&name)
    .bind(role.as_sql())
    .bind(&hash)
    .fetch_optional(db)
    .await
    .map_err(db_error)?
    .ok_or(LoyaltyError::EmailTaken { email })
}

/// What a manager changes of another staff member's access.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccessChange<'a> {
    /// Switch the account on or off; off ends every session it has.
    Active(bool),
    /// A new password; it ends every session the account has.
    Password(&'a str),
}

/// Changes the access of staff member `staff_id` as manager `actor_id`, both of `program_id`, in one database
/// call that serialises with sign-ins and with other managers' changes (see `set_staff_access`). Answers
/// whether the account is now active.
pub async fn set_staff_access(
    db: &PgPool,
    program_id: Uuid,
    actor_id: Uuid,
    staff_id: Uuid,
    change: AccessChange<'_>,
) -> Result<bool> {
    let (active, hash) = match change {
        AccessChange::Active(active) => (Some(active), None),
        AccessChange::Password(password) => {
            check_password(password)?;
            let password = password.to_owned();
            (
                None,
                Some(blocking(move || hash_password(&password)).await?),
            )
        }
    };
    let answer: sqlx::types::Json<RpcAnswer> =
        sqlx::query_scalar("select public.set_staff_access($1, $2, $3, $4, $5)")
            .bind(program_id)
            .bind(actor_id)
            .bind(staff_id)
            .bind(active)
            .bind(hash)
            .fetch_one(db)
            .await
            .map_err(db_error)?;
    #[derive(serde::Deserialize)]
    struct Access {
        active: bool,
    }
    Ok(answer.0.into_result()?.data::<Access>()?.active)
}

fn check_password(password: &str) -> Result<()> {
    if password.chars().count() < PASSWORD_MIN_CHARS {
        return Err(LoyaltyError::PasswordTooShort);
    }
    Ok(())
}

/// A new session's cookie value and the staff member it signs in.
pub struct NewSession {
    pub cookie_value: String,
    pub staff: Staff,
}

/// Checks an email and password and opens a session. Repeated failures for one email or from one client are
/// throttled, and a throttled attempt is refused before its password is checked.
pub async fn sign_in(db: &PgPool, email: &str, password: &str, client: &str) -> Result<NewSession> {
    let email = normalise_email(email);
    throttle(db, &email, client).await?;
    let candidates: Vec<(Uuid, Uuid, String, bool)> = sqlx::query_as(
        "select program_id, id, password_hash, active from public.staff where email = $1",
    )
    .bind(&email)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    let password_owned = password.to_owned();
    let matched = blocking(move || {
        if candidates.is_empty() {
            // The same work as a real check, so timing does not tell which emails have accounts.
            let _ = verify_password(&hash_password("not a password"), &password_owned);
            return None;
        }
        candidates
            .into_iter()
            .find(|(_, _, hash, _)| verify_password(hash, &password_owned))
    })
    .await?;
    let Some((program_id, staff_id, password_hash, active)) = matched else {
        sqlx::query("insert into public.sign_in_failures (email, client) values ($1, $2)")
            .bind(&email)
            .bind(client)
            .execute(db)
            .await
            .map_err(db_error)?;
        return Err(LoyaltyError::BadCredentials);
    };
    sqlx::query("delete from public.sign_in_failures where email = $1")
        .bind(&email)
        .execute(db)
        .await
        .map_err(db_error)?;

    // The right password of a switched-off account: it says so, as only its owner can have typed it.
    if !active {
        return Err(LoyaltyError::AccountSwitchedOff);
    }
    let token = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
    let csrf_token = Uuid::new_v4().simple().to_string();
    // Opened only if the account is still active with the password just checked: a manager may have switched
    // it off or set a new password since it was read.
    let opened: bool = sqlx::query_scalar("select public.open_staff_session($1, $2, $3, $4, $5)")
        .bind(program_id)
        .bind(staff_id)
        .bind(&password_hash)
        .bind(token_hash(&token))
        .bind(&csrf_token)
        .fetch_one(db)
        .await
        .map_err(db_error)?;
    let cookie_value = format!("{program_id}.{token}");
    // A switch-off or a new password may also end the session between its opening and this read.
    let staff = match opened {
        true => match crate::session::signed_in(db, &cookie_value).await {
            Err(LoyaltyError::NotSignedIn) => None,
            read => Some(read?),
        },
        false => None,
    };
    match staff {
        Some(staff) => Ok(NewSession {
            cookie_value,
            staff,
        }),
        None => Err(changed_since_checked(db, program_id, staff_id).await?),
    }
}

/// Why a sign-in whose password was right opened no session: the account was switched off, or given a new
/// password, since the password was checked.
async fn changed_since_checked(
    db: &PgPool,
    program_id: Uuid,
    staff_id: Uuid,
) -> Result<LoyaltyError> {
    let active: Option<bool> =
        sqlx::query_scalar("select active from public.staff where program_id = $1 and id = $2")
            .bind(program_id)
            .bind(staff_id)
            .fetch_optional(db)
            .await
            .map_err(db_error)?;
    Ok(match active {
        Some(false) => LoyaltyError::AccountSwitchedOff,
        _ => LoyaltyError::BadCredentials,
    })
}

async fn throttle(db: &PgPool, email: &str, client: &str) -> Result<()> {
    // The moment the throttle lifts: when the oldest failure that keeps it shut leaves the window.
    let until: Option<DateTime<Utc>> = sqlx::query_scalar(
        "select max(lifts) from (
            select at + make_interval(mins => $3::int) as lifts
              from (select at, row_number() over (order by at desc) as n
                      from public.sign_in_failures
                     where email = $1 and at > now() - make_interval(mins => $3::int)) e
             where n = $4
            union all
            select at + make_interval(mins => $3::int)
              from (select at, row_number() over (order by at desc) as n
                      from public.sign_in_failures
                     where client = $2 and at > now() - make_interval(mins => $3::int)) c
             where n = $4 * 4
         ) throttles",
    )
    .bind(email)
    .bind(client)
    .bind(THROTTLE_WINDOW_MINUTES as i32)
    .bind(THROTTLE_FAILURES)
    .fetch_one(db)
    .await
    .map_err(db_error)?;
    match until {
        Some(until) if until > Utc::now() => Err(LoyaltyError::Throttled {
            retry_after_secs: (until - Utc::now()).num_seconds().max(1) as u64,
        }),
        _ => Ok(()),
    }
}

/// Ends a session: its cookie no longer signs anyone in, wherever it was copied to.
pub async fn sign_out(db: &PgPool, cookie_value: &str) -> Result<()> {
    if let Some((program_id, token)) = parse_cookie(cookie_value) {
        sqlx::query("delete from public.staff_sessions where program_id = $1 and token_hash = $2")
            .bind(program_id)
            .bind(token_hash(token))
            .execute(db)
            .await
            .map_err(db_error)?;
    }
    Ok(())
}

/// Changes the signed-in staff member's own password, given their current one. Wrong current passwords count
/// towards the sign-in throttle, so a session left open is no way to guess it. Every other session of the
/// account ends; the one that asked (`cookie_value`) stays open.
pub async fn change_own_password(
    db: &PgPool,
    staff: &Staff,
    cookie_value: &str,
    current: &str,
    new: &str,
    client: &str,
) -> Result<()> {
    let (_, token) = parse_cookie(cookie_value).ok_or(LoyaltyError::NotSignedIn)?;
    let keep = token_hash(token);
    throttle(db, &staff.email, client).await?;
    check_password(new)?;
    let old_hash: String = sqlx::query_scalar(
        "select password_hash from public.staff where program_id = $1 and id = $2 and active",
    )
    .bind(staff.program_id)
    .bind(staff.id)
    .fetch_optional(db)
    .await
    .map_err(db_error)?
    .ok_or(LoyaltyError::NotSignedIn)?;
    let (checked, current, new) = (old_hash.clone(), current.to_owned(), new.to_owned());
    let new_hash =
        blocking(move || verify_password(&checked, &current).then(|| hash_password(&new))).await?;
    let Some(new_hash) = new_hash else {
        sqlx::query("insert into public.sign_in_failures (email, client) values ($1, $2)")
            .bind(&staff.email)
            .bind(client)
            .execute(db)
            .await
            .map_err(db_error)?;
        return Err(LoyaltyError::WrongCurrentPassword);
    };
    let mut tx = db.begin().await.map_err(db_error)?;
    // Only over the hash just checked: a manager's new password or switch-off in the meantime wins.
    let changed = sqlx::query(
        "update public.staff set password_hash = $3
          where program_id = $1 and id = $2 and active and password_hash = $4",
    )
    .bind(staff.program_id)
    .bind(staff.id)
    .bind(&new_hash)
    .bind(&old_hash)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?
    .rows_affected();
    if changed != 1 {
        return Err(LoyaltyError::NotSignedIn);
    }
    // A statement of its own, so that it sees a session a sign-in with the old password committed while the
    // update above waited for that sign-in's row lock.
    sqlx::query(
        "delete from public.staff_sessions where program_id = $1 and staff_id = $2 and token_hash <> $3",
    )
    .bind(staff.program_id)
    .bind(staff.id)
    .bind(&keep)
    .execute(&mut *tx)
    .await
    .map_err(db_error)?;
    tx.commit().await.map_err(db_error)?;
    Ok(())
}
