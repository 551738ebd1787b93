//! The residents' grid e-link (社区网格e通): what the server's public form and the demo data
//! share, so both write a resident's request the same way (the server's side is
//! `sync-server/src/store/elink.rs`).
//!
//! * Each grid's *e-link account*: a staff member named [`ELINK_ACCOUNT_NAME`] with the
//!   volunteer role whose only scope is the grid. The server creates it on first use, or finds
//!   the one a demo roster brings ([`elink_account`] is exactly that row).
//! * The help case a request becomes: [`case_title`] and [`case_description`].
//! * The resident's reference number: [`random_reference`], [`normalize_reference`].

use rand::Rng;

use crate::codes::{Role, ServiceCategory};
use crate::ids::{GridId, UserId};
use crate::org::{Scope, Staff};

/// The name of each grid's e-link account and of its device.
pub const ELINK_ACCOUNT_NAME: &str = "社区网格e通";

/// Letters of a reference number: no 0/O, 1/I/L, so it reads back over the phone.
pub const REFERENCE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";

/// Characters of a reference number (31^8, about 8.5 * 10^11, with the phone number as a
/// second factor and the lookup rate limit in front).
pub const REFERENCE_CHARS: usize = 8;

/// The e-link account of `grid` with id `id`: a volunteer (it may report a case and comment,
/// nothing more) whose only scope is the grid, no phone and no pledge. The server looks an
/// account up by name, role and scopes, so a roster row built here is the one it uses.
pub fn elink_account(id: UserId, grid: GridId) -> Staff {
    Staff {
        id,
        name: ELINK_ACCOUNT_NAME.to_string(),
        role: Role::Volunteer,
        phone: String::new(),
        scopes: vec![Scope::Grid(grid)],
        pledge: String::new(),
    }
}

/// Whether `staff` is a grid's e-link account rather than a person.
pub fn is_elink_account(staff: &Staff) -> bool {
    staff.role == Role::Volunteer && staff.name == ELINK_ACCOUNT_NAME
}

/// The title of the help case a request becomes: `网格e通求助·CATEGORY·ROOM`.
pub fn case_title(category: ServiceCategory, room: &str) -> String {
    format!("网格e通求助·{}·{room}", category.zh())
}

/// The description of the help case a request becomes: the resident's text, then name, room
/// and phone, so the worker can call back.
pub fn case_description(text: &str, name: &str, room: &str, phone: &str) -> String {
    format!("{text}\n\n居民：{name}　房号：{room}　电话：{phone}（经社区网格e通提交）")
}

/// A reference number drawn from `rng`, in canonical form (8 characters, no dash).
pub fn random_reference<R: Rng + ?Sized>(rng: &mut R) -> String {
    (0..REFERENCE_CHARS).map(|_| REFERENCE_ALPHABET[rng.random_range(0..REFERENCE_ALPHABET.len())] as char).collect()
}

/// A typed reference number in canonical form (upper case, no spaces or dashes), or `None`
/// when it cannot be one.
pub fn normalize_reference(typed: &str) -> Option<String> {
    let canonical: String =
        typed.chars().filter(|c| !matches!(c, ' ' | '-')).take(REFERENCE_CHARS + 1).collect::<String>().to_uppercase();
    (canonical.len() == REFERENCE_CHARS && canonical.bytes().all(|b| REFERENCE_ALPHABET.contains(&b)))
        .then_some(canonical)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn a_drawn_reference_normalizes_to_itself_typed_any_way() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        for _ in 0..100 {
            let reference = random_reference(&mut rng);
            assert_eq!(normalize_reference(&reference).as_deref(), Some(reference.as_str()));
            let typed = format!("{}-{}", &reference[..4], &reference[4..]).to_lowercase();
            assert_eq!(normalize_reference(&typed).as_deref(), Some(reference.as_str()));
        }
        assert_eq!(normalize_reference("ABCD-EFG0"), None, "no zero");
        assert_eq!(normalize_reference("ABCDEFGHJ"), None, "nine characters");
    }
}
