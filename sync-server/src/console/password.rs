//! Console passwords: the rules a new one must meet, and Argon2id hashing. Hashes are stored as
//! PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), which carry their parameters, so
//! passwords set under today's parameters still verify after stronger ones are chosen.

use std::sync::OnceLock;

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::RngCore;

/// Fewest characters of a new password.
pub const MIN_PASSWORD_CHARS: usize = 8;

/// Most bytes of a login or password the console reads. Checked before anything is hashed,
/// so no request can make the server hash a megabyte.
pub const MAX_SECRET_BYTES: usize = 200;

/// Why a new password is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PasswordRule {
    #[error("the password is empty")]
    Empty,
    #[error("the password must have at least {MIN_PASSWORD_CHARS} characters")]
    TooShort,
    #[error("the password must be at most {MAX_SECRET_BYTES} bytes")]
    TooLong,
}

/// Checks a new password against the rules (length only: the lockout makes online guessing
/// slow, and people on the intranet type these by hand).
pub fn check_new_password(password: &str) -> Result<(), PasswordRule> {
    if password.is_empty() {
        Err(PasswordRule::Empty)
    } else if password.chars().count() < MIN_PASSWORD_CHARS {
        Err(PasswordRule::TooShort)
    } else if password.len() > MAX_SECRET_BYTES {
        Err(PasswordRule::TooLong)
    } else {
        Ok(())
    }
}

/// Argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane: OWASP's recommendation).
fn hasher() -> Argon2<'static> {
    Argon2::default()
}

/// Hashes a password with a fresh random salt; the PHC string to store.
pub fn hash(password: &str) -> Result<String, argon2::password_hash::Error> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt)?;
    Ok(hasher().hash_password(password.as_bytes(), &salt)?.to_string())
}

/// Whether `password` matches the stored PHC string. An unreadable stored hash is logged and
/// matches nothing.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => hasher().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(error) => {
            tracing::error!(%error, "a stored console password hash is unreadable; set the password again");
            false
        }
    }
}

/// Spends the time of one verification against a hash nobody knows the password of, so a
/// login naming no account (or an account without a password) answers as slowly as a wrong
/// password for a real one.
pub fn verify_dummy(password: &str) {
    static DUMMY: OnceLock<String> = OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash(&crate::secrets::new_token()).unwrap_or_default());
    let _ = verify(password, dummy);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_passwords_need_eight_characters_and_at_most_200_bytes() {
        assert_eq!(check_new_password(""), Err(PasswordRule::Empty));
        assert_eq!(check_new_password("1234567"), Err(PasswordRule::TooShort));
        assert_eq!(check_new_password("凤凰街道网格"), Err(PasswordRule::TooShort), "characters, not bytes");
        assert_eq!(check_new_password("凤凰街道网格督导"), Ok(()));
        assert_eq!(check_new_password(&"a".repeat(201)), Err(PasswordRule::TooLong));
    }

    #[test]
    fn hashes_are_argon2id_salted_and_verify_only_the_right_password() {
        let first = hash("凤凰街道督导2026").unwrap();
        assert!(first.starts_with("$argon2id$"), "{first}");
        assert_ne!(first, hash("凤凰街道督导2026").unwrap(), "a fresh salt each time");
        assert!(verify("凤凰街道督导2026", &first));
        assert!(!verify("凤凰街道督导2025", &first));
        assert!(!verify("凤凰街道督导2026", "not a hash"));
    }
}
