//! The secret of members' contacts' digests: a file beside the server's other secrets, never in the database,
//! so a copy of the database (or of its backups) is not a contact list. Made on first start when unset; lost,
//! the contacts kept can no longer be found (their hints stay), so it is backed up apart from the database.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use app::contacts::db::{CONTACT_KEY_MIN_BYTES, ContactKey};

/// Reads the key in `path`; where `create` and no file is there yet, makes one first (random, mode 600).
pub fn load(path: &Path, create: bool) -> anyhow::Result<ContactKey> {
    if create && !path.exists() {
        make(path).with_context(|| format!("making the contact key {}", path.display()))?;
    }
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading the contact key {}", path.display()))?;
    ContactKey::new(text.trim().as_bytes())
        .map_err(|problem| anyhow::anyhow!("{}: {problem}", path.display()))
}

/// The key a server of `db` uses: `file`, or contact.key in `data_dir` (made on first start); refused unless it
/// is the key the database's contacts are kept under.
pub async fn for_database(
    db: &sqlx::PgPool,
    file: Option<&Path>,
    data_dir: &Path,
) -> anyhow::Result<ContactKey> {
    let (path, key) = match file {
        Some(file) => (file.to_owned(), load(file, false)?),
        None => {
            let path = data_dir.join("contact.key");
            let key = load(&path, true)?;
            (path, key)
        }
    };
    if !key.is_the_databases(db).await? {
        anyhow::bail!(
            "{} is not the contact key this database's phone numbers and emails are kept under: start every \
             server of a database with the same key file (--contact-key-file), restored from its own backup if lost",
            path.display()
        );
    }
    Ok(key)
}

fn make(path: &Path) -> anyhow::Result<()> {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)?;
    }
    // 64 hex digits of two random (version 4) UUIDs: 244 random bits.
    let mut secret = String::with_capacity(2 * CONTACT_KEY_MIN_BYTES);
    for _ in 0..2 {
        secret.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    // Written whole under a name of its own, then linked in place: a server starting at the same moment reads
    // either no key or the whole one, and a key already there is never overwritten.
    let draft = path.with_extension(format!("draft-{}", uuid::Uuid::new_v4().simple()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&draft)?;
    file.write_all(secret.as_bytes())?;
    file.sync_all()?;
    let linked = std::fs::hard_link(&draft, path);
    std::fs::remove_file(&draft)?;
    match linked {
        Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists => Err(err.into()),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_is_made_once_and_read_back_the_same() {
        let folder = std::env::temp_dir().join(format!("contact-key-{}", uuid::Uuid::new_v4()));
        let path = folder.join("contact.key");
        assert!(load(&path, false).is_err(), "no file, nothing made");
        let contact = loyalty_core::Contact::parse("06 12 34 56 78", "33").unwrap();
        let program = uuid::Uuid::new_v4();
        let first = load(&path, true).unwrap().digest(program, &contact);
        let again = load(&path, true).unwrap().digest(program, &contact);
        assert_eq!(first, again);
        let mode = std::fs::metadata(&path).unwrap().permissions();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
            0o600
        );
        std::fs::write(&path, "too short").unwrap();
        let err = load(&path, true).unwrap_err().to_string();
        assert!(err.contains("at least 32"), "{err}");
        std::fs::remove_dir_all(folder).unwrap();
    }
}
