//! The database key and the files that hold it in a data directory.
//!
//! The 32-byte SQLCipher key of `gridlink.db` lives in exactly one of these places:
//!
//! * `GRIDLINK_DB_KEY` (64 hex): scripts and tests; always wins when set;
//! * `db.key` (hex, mode 0600): a device without a PIN;
//! * `db.key.pin` ([`PIN_KEY_FILE`]): once a PIN is set, the key wrapped with a key derived
//!   from the PIN by Argon2id (salt and cost parameters stored beside it) under
//!   ChaCha20-Poly1305, and `db.key` is deleted: a copy of the directory does not open
//!   without the PIN (or an offline guessing run against Argon2id, see docs/security.md);
//! * on phones, the platform keystore (Android Keystore, iOS Keychain) through
//!   [`crate::Client::open_with_key`]; see docs/mobile.md.
//!
//! Beside it, `db.key.recovery` ([`RECOVERY_KEY_FILE`]) holds a second copy wrapped with the
//! server's per-device recovery secret (given once at enrolment; the device keeps only this
//! wrapped copy, never the secret), and `pin-tries.json` ([`PIN_TRIES_FILE`]) counts wrong
//! PINs in plain text, so the growing delay survives restarts. After
//! [`MAX_PIN_FAILURES`] wrong PINs in a row the PIN-wrapped copy is destroyed (crypto-erase
//! on the device); only the recovery copy, opened with the administrator's recovery key,
//! reads the store then (`gridlink recover`).
//!
//! The PIN rules are pure functions of (counter, now) ([`pin_delay_ms`], [`PinTries::wait_ms`]);
//! the file functions take `now` too.

use std::io::Write;
use std::path::{Path, PathBuf};

use argon2::{Algorithm, Argon2, Params, Version};
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use gridlink_shared::time::Millis;
use rand::RngCore;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::{DB_FILE, KEY_ENV, KEY_FILE};

/// The database key wrapped under the PIN.
pub const PIN_KEY_FILE: &str = "db.key.pin";
/// The database key wrapped under the server's recovery secret for this device.
pub const RECOVERY_KEY_FILE: &str = "db.key.recovery";
/// Wrong PINs in a row and when the last one was typed (plain JSON).
pub const PIN_TRIES_FILE: &str = "pin-tries.json";

/// Wrong PINs in a row that destroy the PIN-wrapped key.
pub const MAX_PIN_FAILURES: u32 = 10;
/// Wrong PINs allowed without any delay (typos).
pub const FREE_PIN_FAILURES: u32 = 3;
/// The longest wait between two tries.
pub const MAX_PIN_DELAY_MS: i64 = 5 * 60 * 1000;

const PIN_FORMAT: &str = "gridlink-pin-wrap/1";
const RECOVERY_FORMAT: &str = "gridlink-recovery-wrap/1";

/// Argon2id costs for new PIN wraps: 19 MiB, 2 passes, 1 lane (the OWASP minimum for
/// Argon2id), about a tenth of a second on a phone.
const ARGON2_M_KIB: u32 = 19 * 1024;
const ARGON2_T: u32 = 2;
const ARGON2_P: u32 = 1;

/// The wait before the next try after `failures` wrong PINs in a row: none for the first
/// [`FREE_PIN_FAILURES`], then 1 s doubling up to [`MAX_PIN_DELAY_MS`].
pub fn pin_delay_ms(failures: u32) -> i64 {
    if failures <= FREE_PIN_FAILURES {
        return 0;
    }
    let doublings = (failures - FREE_PIN_FAILURES - 1).min(20);
    (1000i64 << doublings).min(MAX_PIN_DELAY_MS)
}

/// The wrong-PIN counter (`pin-tries.json`).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinTries {
    /// Wrong PINs in a row.
    pub failures: u32,
    pub last_failure_at: Option<Millis>,
    /// When the PIN-wrapped key was destroyed, after [`MAX_PIN_FAILURES`].
    pub erased_at: Option<Millis>,
}

impl PinTries {
    /// How long until the next try is allowed (0: now).
    pub fn wait_ms(&self, now: Millis) -> i64 {
        match self.last_failure_at {
            Some(last) => (last + pin_delay_ms(self.failures) - now).max(0),
            None => 0,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct PinWrap {
    format: String,
    kdf: String,
    m_cost_kib: u32,
    t_cost: u32,
    p_cost: u32,
    salt: String,
    nonce: String,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct RecoveryWrap {
    format: String,
    /// The device this copy belongs to (also bound into the ciphertext).
    device: String,
    server_url: String,
    nonce: String,
    ciphertext: String,
}

fn path(dir: &Path, name: &str) -> PathBuf {
    dir.join(name)
}

/// Reads a small file; `None` when it does not exist.
fn read_optional(file: &Path) -> Result<Option<Vec<u8>>> {
    match std::fs::read(file) {
        Ok(bytes) => Ok(Some(bytes)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::file("cannot read", file, e)),
    }
}

/// Writes `contents` to `file` through a temporary file and a rename, mode 0600, so a crash
/// leaves either the old file or the new one.
pub(crate) fn write_atomic(file: &Path, contents: &[u8]) -> Result<()> {
    let tmp = file.with_extension("tmp");
    let _ = std::fs::remove_file(&tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut out = options.open(&tmp).map_err(|e| Error::file("cannot create", &tmp, e))?;
    out.write_all(contents).and_then(|_| out.sync_all()).map_err(|e| Error::file("cannot write", &tmp, e))?;
    std::fs::rename(&tmp, file).map_err(|e| Error::file("cannot replace", file, e))
}

/// Overwrites a file with zeros, syncs, and removes it. Missing is fine.
fn destroy(file: &Path) -> Result<bool> {
    let len = match std::fs::metadata(file) {
        Ok(meta) => meta.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(Error::file("cannot read", file, e)),
    };
    if let Ok(mut out) = std::fs::OpenOptions::new().write(true).open(file) {
        let _ = out.write_all(&vec![0u8; len as usize]).and_then(|_| out.sync_all());
    }
    std::fs::remove_file(file).map_err(|e| Error::file("cannot remove", file, e))?;
    Ok(true)
}

fn parse_key(hex_key: &str) -> std::result::Result<[u8; 32], String> {
    let bytes = hex::decode(hex_key).map_err(|e| format!("not hex: {e}"))?;
    bytes.try_into().map_err(|b: Vec<u8>| format!("{} bytes; a key is 32 bytes (64 hex characters)", b.len()))
}

fn unhex(what: &str, text: &str) -> Result<Vec<u8>> {
    hex::decode(text).map_err(|e| Error::Corrupt(format!("{what} is not hex: {e}")))
}

// ----- the counter --------------------------------------------------------------------------

/// The wrong-PIN counter of `dir` (zero when the file does not exist).
pub fn pin_tries(dir: &Path) -> Result<PinTries> {
    let file = path(dir, PIN_TRIES_FILE);
    match read_optional(&file)? {
        None => Ok(PinTries::default()),
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(format!("{}: {e}", file.display()))),
    }
}

fn save_pin_tries(dir: &Path, tries: &PinTries) -> Result<()> {
    let json = serde_json::to_vec(tries).map_err(|e| Error::Encode(format!("PIN counter: {e}")))?;
    write_atomic(&path(dir, PIN_TRIES_FILE), &json)
}

fn clear_pin_tries(dir: &Path) -> Result<()> {
    let file = path(dir, PIN_TRIES_FILE);
    match std::fs::remove_file(&file) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::file("cannot remove", &file, e)),
        _ => Ok(()),
    }
}

// ----- the PIN wrap ---------------------------------------------------------------------------

fn derive(pin: &str, salt: &[u8], m: u32, t: u32, p: u32) -> Result<[u8; 32]> {
    let params = Params::new(m, t, p, Some(32)).map_err(|e| Error::Corrupt(format!("Argon2 parameters: {e}")))?;
    let mut out = [0u8; 32];
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(pin.as_bytes(), salt, &mut out)
        .map_err(|e| Error::Corrupt(format!("Argon2: {e}")))?;
    Ok(out)
}

fn seal(key: &[u8; 32], aad: &[u8], plain: &[u8]) -> Result<(Vec<u8>, Vec<u8>)> {
    let mut nonce = [0u8; 12];
    rand::rng().fill_bytes(&mut nonce);
    let ciphertext = ChaCha20Poly1305::new(Key::from_slice(key))
        .encrypt(Nonce::from_slice(&nonce), Payload { msg: plain, aad })
        .map_err(|_| Error::Encode("wrapped key".into()))?;
    Ok((nonce.to_vec(), ciphertext))
}

/// `None` when the tag does not verify (wrong key, or a changed file).
fn open_sealed(key: &[u8; 32], aad: &[u8], nonce: &[u8], ciphertext: &[u8]) -> Result<Option<[u8; 32]>> {
    if nonce.len() != 12 {
        return Err(Error::Corrupt(format!("nonce of {} bytes", nonce.len())));
    }
    match ChaCha20Poly1305::new(Key::from_slice(key))
        .decrypt(Nonce::from_slice(nonce), Payload { msg: ciphertext, aad })
    {
        Ok(plain) => plain.try_into().map(Some).map_err(|_| Error::Corrupt("wrapped key is not 32 bytes".into())),
        Err(_) => Ok(None),
    }
}

fn read_pin_wrap(dir: &Path) -> Result<Option<PinWrap>> {
    let file = path(dir, PIN_KEY_FILE);
    let Some(bytes) = read_optional(&file)? else { return Ok(None) };
    let wrap: PinWrap =
        serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(format!("{}: {e}", file.display())))?;
    if wrap.format != PIN_FORMAT || wrap.kdf != "argon2id" {
        return Err(Error::Corrupt(format!("{}: unknown format {} / {}", file.display(), wrap.format, wrap.kdf)));
    }
    Ok(Some(wrap))
}

/// Whether the key of `dir` is wrapped under a PIN. An unreadable or damaged wrap file is an
/// error (callers lock on it), never "no PIN".
pub fn has_pin(dir: &Path) -> Result<bool> {
    Ok(read_pin_wrap(dir)?.is_some())
}

/// Wraps `key` under `pin` into `db.key.pin`, then deletes the plain `db.key` and resets the
/// wrong-PIN counter.
pub fn set_pin(dir: &Path, key: &[u8; 32], pin: &str) -> Result<()> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let kek = derive(pin, &salt, ARGON2_M_KIB, ARGON2_T, ARGON2_P)?;
    let (nonce, ciphertext) = seal(&kek, PIN_FORMAT.as_bytes(), key)?;
    let wrap = PinWrap {
        format: PIN_FORMAT.into(),
        kdf: "argon2id".into(),
        m_cost_kib: ARGON2_M_KIB,
        t_cost: ARGON2_T,
        p_cost: ARGON2_P,
        salt: hex::encode(salt),
        nonce: hex::encode(nonce),
        ciphertext: hex::encode(ciphertext),
    };
    let json = serde_json::to_vec_pretty(&wrap).map_err(|e| Error::Encode(format!("PIN wrap: {e}")))?;
    write_atomic(&path(dir, PIN_KEY_FILE), &json)?;
    // Read it back before the plain key goes: a wrap that does not open would lock the store.
    let written = read_pin_wrap(dir)?.ok_or_else(|| Error::Corrupt(format!("{PIN_KEY_FILE} vanished")))?;
    let check = derive(pin, &unhex("PIN salt", &written.salt)?, written.m_cost_kib, written.t_cost, written.p_cost)?;
    let reopened = open_sealed(
        &check,
        PIN_FORMAT.as_bytes(),
        &unhex("PIN nonce", &written.nonce)?,
        &unhex("PIN-wrapped key", &written.ciphertext)?,
    )?;
    if reopened.as_ref() != Some(key) {
        return Err(Error::Corrupt(format!("{PIN_KEY_FILE} does not open with the new PIN; db.key is kept")));
    }
    destroy(&path(dir, KEY_FILE))?;
    clear_pin_tries(dir)
}

/// Unwraps the key of `dir` with `pin`, applying the wrong-PIN rule: a try before the wait
/// is over is refused ([`Error::PinWait`]) without counting; a wrong PIN counts and says how
/// long to wait ([`Error::WrongPin`]); the [`MAX_PIN_FAILURES`]th destroys `db.key.pin`
/// ([`Error::PinLockedOut`]). The right PIN resets the counter.
pub fn unlock_with_pin(dir: &Path, pin: &str, now: Millis) -> Result<[u8; 32]> {
    let mut tries = pin_tries(dir)?;
    let Some(wrap) = read_pin_wrap(dir)? else {
        return Err(if tries.erased_at.is_some() {
            Error::PinLockedOut
        } else {
            Error::Input("no PIN is set on this device".into())
        });
    };
    let wait_ms = tries.wait_ms(now);
    if wait_ms > 0 {
        return Err(Error::PinWait { wait_ms });
    }
    let salt = unhex("PIN salt", &wrap.salt)?;
    let kek = derive(pin, &salt, wrap.m_cost_kib, wrap.t_cost, wrap.p_cost)?;
    let nonce = unhex("PIN nonce", &wrap.nonce)?;
    let ciphertext = unhex("PIN-wrapped key", &wrap.ciphertext)?;
    if let Some(key) = open_sealed(&kek, PIN_FORMAT.as_bytes(), &nonce, &ciphertext)? {
        if tries.failures > 0 {
            clear_pin_tries(dir)?;
        }
        return Ok(key);
    }
    tries.failures += 1;
    tries.last_failure_at = Some(now);
    if tries.failures >= MAX_PIN_FAILURES {
        // Count first: if destroying fails half-way, the next try still sees the lock-out.
        tries.erased_at = Some(now);
        save_pin_tries(dir, &tries)?;
        destroy(&path(dir, PIN_KEY_FILE))?;
        tracing::warn!(dir = %dir.display(), "{MAX_PIN_FAILURES} wrong PINs: the PIN-wrapped key was destroyed");
        return Err(Error::PinLockedOut);
    }
    save_pin_tries(dir, &tries)?;
    Err(Error::WrongPin { left: MAX_PIN_FAILURES - tries.failures, wait_ms: pin_delay_ms(tries.failures) })
}

// ----- the recovery wrap ------------------------------------------------------------------------

fn recovery_aad(device: &str) -> Vec<u8> {
    format!("{RECOVERY_FORMAT}:{device}").into_bytes()
}

fn parse_secret(secret_hex: &str) -> Result<[u8; 32]> {
    parse_key(secret_hex.trim()).map_err(|e| Error::Input(format!("recovery key: {e}")))
}

/// Writes `db.key.recovery`: `key` wrapped with the server's recovery secret for `device`.
/// The secret itself is not kept.
pub fn write_recovery(dir: &Path, key: &[u8; 32], secret_hex: &str, device: &str, server_url: &str) -> Result<()> {
    let secret = parse_key(secret_hex.trim()).map_err(|e| Error::Protocol(format!("recovery secret: {e}")))?;
    let (nonce, ciphertext) = seal(&secret, &recovery_aad(device), key)?;
    let wrap = RecoveryWrap {
        format: RECOVERY_FORMAT.into(),
        device: device.into(),
        server_url: server_url.into(),
        nonce: hex::encode(nonce),
        ciphertext: hex::encode(ciphertext),
    };
    let json = serde_json::to_vec_pretty(&wrap).map_err(|e| Error::Encode(format!("recovery wrap: {e}")))?;
    write_atomic(&path(dir, RECOVERY_KEY_FILE), &json)
}

/// Whether `dir` holds a recovery copy of its key.
pub fn has_recovery(dir: &Path) -> bool {
    path(dir, RECOVERY_KEY_FILE).exists()
}

/// Unwraps the key of `dir` with the administrator's recovery key (64 hex, as printed by
/// `gridlink-server device recovery-key`).
pub fn unlock_with_recovery(dir: &Path, secret_hex: &str) -> Result<[u8; 32]> {
    let secret = parse_secret(secret_hex)?;
    let file = path(dir, RECOVERY_KEY_FILE);
    let bytes = read_optional(&file)?.ok_or_else(|| {
        Error::Input(format!(
            "{} does not exist: this device was enrolled without a recovery key, so its data cannot be recovered",
            file.display()
        ))
    })?;
    let wrap: RecoveryWrap =
        serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt(format!("{}: {e}", file.display())))?;
    if wrap.format != RECOVERY_FORMAT {
        return Err(Error::Corrupt(format!("{}: unknown format {}", file.display(), wrap.format)));
    }
    let nonce = unhex("recovery nonce", &wrap.nonce)?;
    let ciphertext = unhex("recovery-wrapped key", &wrap.ciphertext)?;
    open_sealed(&secret, &recovery_aad(&wrap.device), &nonce, &ciphertext)?.ok_or_else(|| {
        Error::Input(format!("this recovery key does not open {} (it belongs to another device?)", file.display()))
    })
}

// ----- resolving and erasing ------------------------------------------------------------------

/// The database key for opening `dir` without a PIN: `GRIDLINK_DB_KEY` if set, else
/// `dir/db.key`; a PIN-locked directory is [`Error::PinRequired`] (or [`Error::PinLockedOut`]
/// once its PIN key was destroyed). A new directory gets a fresh random key in `db.key`.
pub fn resolve_key(dir: &Path) -> Result<[u8; 32]> {
    if let Ok(hex_key) = std::env::var(KEY_ENV) {
        return parse_key(hex_key.trim()).map_err(|e| Error::BadKey(format!("{KEY_ENV}: {e}")));
    }
    let key_path = path(dir, KEY_FILE);
    if let Some(text) = read_optional(&key_path)? {
        let text = String::from_utf8_lossy(&text);
        return parse_key(text.trim()).map_err(|e| Error::BadKey(format!("{}: {e}", key_path.display())));
    }
    if has_pin(dir)? {
        return Err(Error::PinRequired);
    }
    if pin_tries(dir)?.erased_at.is_some() {
        return Err(Error::PinLockedOut);
    }
    if path(dir, DB_FILE).exists() {
        return Err(Error::BadKey(format!(
            "{} exists but its key file {} is missing and {KEY_ENV} is not set; \
             without the key the local copy cannot be read",
            path(dir, DB_FILE).display(),
            key_path.display()
        )));
    }
    std::fs::create_dir_all(dir).map_err(|e| Error::file("cannot create", dir, e))?;
    let mut key = [0u8; 32];
    rand::rng().fill_bytes(&mut key);
    crate::store::write_private_file(&key_path, hex::encode(key).as_bytes())?;
    Ok(key)
}

/// Every file of the store in `dir`: the database with its WAL and shared-memory files, the
/// plain key, both wrapped keys and the PIN counter.
pub fn store_files(dir: &Path) -> Vec<PathBuf> {
    let db = DB_FILE.to_string();
    [db.clone(), format!("{db}-wal"), format!("{db}-shm"), format!("{db}-journal")]
        .into_iter()
        .chain([KEY_FILE, PIN_KEY_FILE, RECOVERY_KEY_FILE, PIN_TRIES_FILE].map(String::from))
        .map(|name| path(dir, &name))
        .collect()
}

/// Erases the store of `dir`: the key files are overwritten and removed first (that alone
/// makes the database unreadable), then the database files. Returns the files removed.
pub fn erase(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let files = store_files(dir);
    let (keys, db): (Vec<_>, Vec<_>) =
        files.into_iter().partition(|f| f.file_name().is_some_and(|n| n.to_string_lossy().starts_with("db.key")));
    for file in keys.into_iter().chain(db) {
        if destroy(&file)? {
            removed.push(file);
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_is_free_for_three_then_doubles_from_one_second_to_five_minutes() {
        let delays: Vec<i64> = (0..=14).map(pin_delay_ms).collect();
        assert_eq!(&delays[..4], &[0, 0, 0, 0]);
        assert_eq!(&delays[4..10], &[1000, 2000, 4000, 8000, 16000, 32000]);
        assert_eq!(delays[12], 256_000);
        assert_eq!(delays[13], MAX_PIN_DELAY_MS);
    }

    #[test]
    fn a_wrapped_key_opens_with_its_pin_only_and_ten_wrong_pins_destroy_it() {
        let dir = tempfile::tempdir().unwrap();
        let key = [7u8; 32];
        std::fs::write(dir.path().join(KEY_FILE), hex::encode(key)).unwrap();
        set_pin(dir.path(), &key, "2468").unwrap();
        assert!(!dir.path().join(KEY_FILE).exists(), "the plain key is gone");
        assert!(has_pin(dir.path()).unwrap());
        let mut now = 1_000_000;
        assert_eq!(unlock_with_pin(dir.path(), "2468", now).unwrap(), key);
        for n in 1..MAX_PIN_FAILURES {
            match unlock_with_pin(dir.path(), "1111", now) {
                Err(Error::WrongPin { left, wait_ms }) => {
                    assert_eq!((left, wait_ms), (MAX_PIN_FAILURES - n, pin_delay_ms(n)));
                }
                other => panic!("try {n}: {other:?}"),
            }
            if pin_delay_ms(n) > 0 {
                // Too early: refused without counting, even with the right PIN.
                assert!(matches!(unlock_with_pin(dir.path(), "2468", now + 1), Err(Error::PinWait { .. })));
                assert_eq!(pin_tries(dir.path()).unwrap().failures, n);
            }
            now += pin_delay_ms(n);
        }
        assert!(matches!(unlock_with_pin(dir.path(), "1111", now), Err(Error::PinLockedOut)));
        assert!(!dir.path().join(PIN_KEY_FILE).exists());
        assert!(matches!(unlock_with_pin(dir.path(), "2468", now + MAX_PIN_DELAY_MS), Err(Error::PinLockedOut)));
        assert!(matches!(resolve_key(dir.path()), Err(Error::PinLockedOut)));
    }

    #[test]
    fn the_right_pin_resets_the_counter() {
        let dir = tempfile::tempdir().unwrap();
        set_pin(dir.path(), &[1u8; 32], "1357").unwrap();
        for _ in 0..3 {
            assert!(unlock_with_pin(dir.path(), "0000", 5).is_err());
        }
        assert_eq!(unlock_with_pin(dir.path(), "1357", 5).unwrap(), [1u8; 32]);
        assert_eq!(pin_tries(dir.path()).unwrap(), PinTries::default());
    }

    #[test]
    fn the_recovery_copy_opens_with_the_secret_of_its_device_only() {
        let dir = tempfile::tempdir().unwrap();
        let secret = hex::encode([9u8; 32]);
        write_recovery(dir.path(), &[3u8; 32], &secret, "dev-1", "https://grid.example").unwrap();
        assert_eq!(unlock_with_recovery(dir.path(), &secret).unwrap(), [3u8; 32]);
        assert!(matches!(unlock_with_recovery(dir.path(), &hex::encode([8u8; 32])), Err(Error::Input(_))));
        assert!(matches!(unlock_with_recovery(dir.path(), "xyz"), Err(Error::Input(_))));
    }
}
