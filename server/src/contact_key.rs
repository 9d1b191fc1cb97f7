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

fn make(path: &Path) -> anyhow::Result<()> {
    if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(folder)?;
    }
    // 64 hex digits of two random (version 4) UUIDs: 244 random bits.
    let mut secret = String::with_capacity(2 * CONTACT_KEY_MIN_BYTES);
    for _ in 0..2 {
        secret.push_str(&uuid::Uuid::new_v4().simple().to_string());
    }
    // create_new: two servers starting at once cannot each write a key of their own over the other's.
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        Err(err) => return Err(err.into()),
    };
    file.write_all(secret.as_bytes())?;
    file.sync_all()?;
    Ok(())
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
