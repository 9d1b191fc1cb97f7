//! The keyed digests of contacts, and the database functions that keep and find them.

use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use loyalty_core::wire::{ContactHint, Member, PassOrigin};
use loyalty_core::{Contact, ContactKind, LoyaltyError, Result};
use serde::Deserialize;
use sha2::Sha256;
use sqlx::PgExecutor;
use uuid::Uuid;

use crate::db::{CounterPool, RpcAnswer, db_error};
use crate::session::SessionKey;

/// The server's secret for contacts' digests. It lives with the server's other secrets, never in the database:
/// without it, a copy of the database cannot tell whose number a digest is.
#[derive(Clone)]
pub struct ContactKey(Arc<[u8]>);

/// The fewest bytes a key has.
pub const CONTACT_KEY_MIN_BYTES: usize = 32;

impl ContactKey {
    pub fn new(secret: &[u8]) -> std::result::Result<Self, String> {
        if secret.len() < CONTACT_KEY_MIN_BYTES {
            return Err(format!(
                "the contact key has {} bytes: it needs at least {CONTACT_KEY_MIN_BYTES}",
                secret.len()
            ));
        }
        Ok(Self(secret.into()))
    }

    fn mac(&self) -> Hmac<Sha256> {
        <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes any key length")
    }

    /// The digest of a contact in a program: the same number in two programs gives two unrelated digests.
    pub fn digest(&self, program_id: Uuid, contact: &Contact) -> Vec<u8> {
        let mut mac = self.mac();
        mac.update(program_id.as_bytes());
        mac.update(contact.kind.as_sql().as_bytes());
        mac.update(b"\0");
        mac.update(contact.value.as_bytes());
        mac.finalize().into_bytes().to_vec()
    }
}

impl ContactKey {
    /// Whether this is the key the database's contacts are kept under. The first key a database meets becomes
    /// its key, and so does another while no contact is kept (nothing is lost by it). Compared by a digest of a
    /// fixed text, which tells nothing of any contact.
    pub async fn is_the_databases(&self, db: &sqlx::PgPool) -> Result<bool> {
        let mut mac = self.mac();
        mac.update(b"the loyalty program's contact key");
        let ours = mac.finalize().into_bytes().to_vec();
        sqlx::query(
            "insert into public.contact_key_check (digest) values ($1) on conflict do nothing",
        )
        .bind(&ours)
        .execute(db)
        .await
        .map_err(db_error)?;
        sqlx::query(
            "update public.contact_key_check set digest = $1, set_at = now()
              where digest <> $1 and not exists (select 1 from public.member_contacts)",
        )
        .bind(&ours)
        .execute(db)
        .await
        .map_err(db_error)?;
        let theirs: Vec<u8> = sqlx::query_scalar("select digest from public.contact_key_check")
            .fetch_one(db)
            .await
            .map_err(db_error)?;
        Ok(theirs == ours)
    }
}

impl std::fmt::Debug for ContactKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ContactKey(..)")
    }
}

/// Reads what a clerk typed as a contact, in the program's country.
pub async fn read_contact(db: impl PgExecutor<'_>, program_id: Uuid, raw: &str) -> Result<Contact> {
    let calling_code: String =
        sqlx::query_scalar("select calling_code from public.programs where id = $1")
            .bind(program_id)
            .fetch_optional(db)
            .await
            .map_err(db_error)?
            .ok_or(LoyaltyError::ProgramNotFound)?;
    Contact::parse(raw, &calling_code)
}

#[derive(Deserialize)]
struct FoundPass {
    external_id: String,
    points: i64,
    created_at: chrono::DateTime<chrono::Utc>,
}

fn found(answer: RpcAnswer) -> Result<Member> {
    let pass: FoundPass = answer.into_result()?.data()?;
    Ok(Member {
        origin: PassOrigin::of(&pass.external_id),
        external_id: pass.external_id,
        points: pass.points,
        created_at: pass.created_at,
    })
}

/// A member pass scanned by the staff member of a session: a pass that does not exist counts as a miss.
pub async fn find_pass(
    db: &CounterPool,
    session: &SessionKey,
    csrf: &str,
    external_id: &str,
) -> Result<Member> {
    let mut conn = db.get().await?;
    let row = session
        .query(
            crate::in_session!("public.find_member_pass($1, $6, s.staff_id)"),
            csrf,
        )
        .bind(external_id)
        .fetch_optional(conn.conn())
        .await;
    let answer: sqlx::types::Json<RpcAnswer> = session.answer(conn, row).await?;
    db.dated(session.program_id, found(answer.0)).await
}

/// What a clerk typed, read as a contact in the program's country, and the connection it was read on, for the
/// statement that uses it. Typed wrong, the session is checked first: whoever is not signed in hears that,
/// whatever they sent.
async fn typed_contact(
    db: &CounterPool,
    session: &SessionKey,
    csrf: &str,
    raw: &str,
) -> Result<(crate::db::CounterConnection, Contact)> {
    let mut conn = db.get().await?;
    match read_contact(conn.conn(), session.program_id, raw).await {
        Ok(contact) => Ok((conn, contact)),
        Err(err) => {
            drop(conn);
            session.check(db, csrf).await?;
            Err(err)
        }
    }
}

/// A member found by a phone number or email, by the staff member of a session: none found counts as a miss.
pub async fn find_by_contact(
    db: &CounterPool,
    session: &SessionKey,
    key: &ContactKey,
    csrf: &str,
    raw: &str,
) -> Result<Member> {
    let (mut conn, contact) = typed_contact(db, session, csrf, raw).await?;
    let row = session
        .query(
            crate::in_session!("public.find_member_by_contact($1, $6, $7, s.staff_id)"),
            csrf,
        )
        .bind(contact.kind.as_sql())
        .bind(key.digest(session.program_id, &contact))
        .fetch_optional(conn.conn())
        .await;
    let answer: sqlx::types::Json<RpcAnswer> = session.answer(conn, row).await?;
    found(answer.0)
}

/// Gives a member a contact, as the staff member of a session.
pub async fn set_contact(
    db: &CounterPool,
    session: &SessionKey,
    key: &ContactKey,
    csrf: &str,
    external_id: &str,
    raw: &str,
) -> Result<ContactHint> {
    let (mut conn, contact) = typed_contact(db, session, csrf, raw).await?;
    let hint = contact.hint();
    let row = session
        .query(
            crate::in_session!("public.set_member_contact($1, $6, $7, $8, $9, s.staff_id)"),
            csrf,
        )
        .bind(external_id)
        .bind(contact.kind.as_sql())
        .bind(key.digest(session.program_id, &contact))
        .bind(&hint)
        .fetch_optional(conn.conn())
        .await;
    let answer: sqlx::types::Json<RpcAnswer> = session.answer(conn, row).await?;
    answer.0.into_result()?;
    Ok(ContactHint {
        kind: contact.kind,
        hint,
    })
}

/// Gives a member a contact within a transaction of the caller's: at enrolment, where the pass and its contact
/// are made together. `staff_id` is whoever gives it at the counter; none for a public sign-up.
pub async fn keep_contact(
    db: impl PgExecutor<'_>,
    key: &ContactKey,
    program_id: Uuid,
    external_id: &str,
    contact: &Contact,
    staff_id: Option<Uuid>,
) -> Result<ContactHint> {
    let hint = contact.hint();
    let answer: sqlx::types::Json<RpcAnswer> =
        sqlx::query_scalar("select public.set_member_contact($1, $2, $3, $4, $5, $6)")
            .bind(program_id)
            .bind(external_id)
            .bind(contact.kind.as_sql())
            .bind(key.digest(program_id, contact))
            .bind(&hint)
            .bind(staff_id)
            .fetch_one(db)
            .await
            .map_err(db_error)?;
    answer.0.into_result()?;
    Ok(ContactHint {
        kind: contact.kind,
        hint,
    })
}

/// What a form's optional contact field holds: nothing when left empty.
pub fn given(contact: Option<&str>) -> Option<&str> {
    contact.map(str::trim).filter(|c| !c.is_empty())
}

/// Takes a member's contact of one kind away, as the staff member of a session.
pub async fn remove_contact(
    db: &CounterPool,
    session: &SessionKey,
    csrf: &str,
    external_id: &str,
    kind: ContactKind,
) -> Result<()> {
    let mut conn = db.get().await?;
    let row = session
        .query(
            crate::in_session!("public.remove_member_contact($1, $6, $7)"),
            csrf,
        )
        .bind(external_id)
        .bind(kind.as_sql())
        .fetch_optional(conn.conn())
        .await;
    let answer: sqlx::types::Json<RpcAnswer> = session.answer(conn, row).await?;
    answer.0.into_result().map(drop)
}

/// The hints of a member's contacts, phone first.
pub async fn hints(
    db: impl PgExecutor<'_>,
    program_id: Uuid,
    external_id: &str,
) -> Result<Vec<ContactHint>> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "select c.kind, c.hint
           from public.member_contacts c
           join public.passes_master m on m.program_id = c.program_id and m.id = c.pass_id
          where c.program_id = $1 and m.external_id = $2
          order by c.kind desc",
    )
    .bind(program_id)
    .bind(external_id)
    .fetch_all(db)
    .await
    .map_err(db_error)?;
    Ok(rows
        .into_iter()
        .filter_map(|(kind, hint)| {
            Some(ContactHint {
                kind: ContactKind::from_sql(&kind)?,
                hint,
            })
        })
        .collect())
}
