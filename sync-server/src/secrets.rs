//! Enrolment codes, bearer tokens and device actor ids: how they are generated, typed by
//! people, and hashed before they touch the database. Only hashes are stored, so a copy of
//! `server.db` does not let anyone sign in.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Crockford base32: no I, L, O or U, so a code read aloud or typed from paper survives.
const CROCKFORD: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// Characters in an enrolment code (40 bits).
pub const CODE_LEN: usize = 8;

/// A fresh enrolment code, shown to people as `XXXX-XXXX`.
pub fn new_enrol_code() -> String {
    let mut rng = rand::rng();
    let chars: String = (0..CODE_LEN).map(|_| CROCKFORD[(rng.next_u32() % 32) as usize] as char).collect();
    format!("{}-{}", &chars[..4], &chars[4..])
}

/// Reads a code as a person typed it: any case, with or without the dash or spaces, and
/// with the Crockford look-alikes (I, L -> 1; O -> 0). `None` if it cannot be a code.
pub fn normalize_enrol_code(typed: &str) -> Option<String> {
    let mut out = String::with_capacity(CODE_LEN);
    for c in typed.chars() {
        let c = match c.to_ascii_uppercase() {
            '-' | ' ' => continue,
            'I' | 'L' => '1',
            'O' => '0',
            c => c,
        };
        if !CROCKFORD.contains(&(c as u8)) || !c.is_ascii() {
            return None;
        }
        out.push(c);
    }
    (out.len() == CODE_LEN).then_some(out)
}

/// A fresh bearer token: 256 random bits, hex.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A fresh automerge actor id for a device: 128 random bits, hex.
pub fn new_actor_hex() -> String {
    let mut bytes = [0u8; 16];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// A fresh recovery secret for a device: 256 random bits, hex. The device wraps a second
/// copy of its database key with it (see `docs/security.md`).
pub fn new_recovery_secret() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// SHA-256 of a secret, hex. Codes are hashed in their normalized form.
pub fn sha256_hex(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_survive_how_people_type_them() {
        let code = new_enrol_code();
        assert_eq!(code.len(), CODE_LEN + 1);
        let canonical = normalize_enrol_code(&code).unwrap();
        assert_eq!(normalize_enrol_code(&code.to_lowercase()).unwrap(), canonical);
        assert_eq!(normalize_enrol_code(&code.replace('-', "")).unwrap(), canonical);
        assert_eq!(normalize_enrol_code("ab1o-il2z").unwrap(), "AB10112Z");
        assert_eq!(normalize_enrol_code("AB12-34U9"), None, "U is not Crockford");
        assert_eq!(normalize_enrol_code("AB12-345"), None, "too short");
        assert_eq!(normalize_enrol_code("网格通网格通网格"), None);
    }

    #[test]
    fn tokens_and_actors_are_long_and_distinct() {
        assert_eq!(new_token().len(), 64);
        assert_ne!(new_token(), new_token());
        assert_eq!(new_actor_hex().len(), 32);
        assert_eq!(sha256_hex("abc").len(), 64);
    }
}
