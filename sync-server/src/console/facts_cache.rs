//! The supervisors' rows for the console's figure pages: [`FactsCache`], the last few scope sets' rows kept in memory keyed by
//! `(scope set, facts generation)`, so a street supervisor's dashboard does not re-read every
//! household of the street on each request. The figures themselves are computed per request
//! (they depend on `now`); only the rows are cached.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use gridlink_shared::figures::Facts;
use gridlink_shared::{Roster, Scope};

use super::errors::ConsoleError;
use super::session::ConsoleUser;

/// Scope sets whose rows are kept. A street supervisor's rows are ~100 MB at street scale,
/// so a handful, not more.
pub const CACHED_SCOPE_SETS: usize = 4;

struct Entry {
    scopes: Vec<Scope>,
    generation: u64,
    facts: Arc<Facts>,
}

/// The rows of the last [`CACHED_SCOPE_SETS`] scope sets, most recently used first.
#[derive(Default)]
pub struct FactsCache {
    entries: Mutex<VecDeque<Entry>>,
}

impl std::fmt::Debug for FactsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FactsCache").finish_non_exhaustive()
    }
}

/// The scope set as a key: order and repeats do not matter.
fn key_of(scopes: &[Scope]) -> Vec<Scope> {
    let mut key = scopes.to_vec();
    key.sort();
    key.dedup();
    key
}

impl FactsCache {
    /// The rows for `scopes` at `generation`, if kept (and marks them recently used).
    pub fn get(&self, scopes: &[Scope], generation: u64) -> Option<Arc<Facts>> {
        let key = key_of(scopes);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let at = entries.iter().position(|e| e.scopes == key && e.generation == generation)?;
        let entry = entries.remove(at)?;
        let facts = entry.facts.clone();
        entries.push_front(entry);
        Some(facts)
    }

    /// The newest rows kept for `scopes`, whatever their generation, to bring up to date.
    pub fn latest(&self, scopes: &[Scope]) -> Option<(u64, Arc<Facts>)> {
        let key = key_of(scopes);
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.iter().find(|e| e.scopes == key).map(|e| (e.generation, e.facts.clone()))
    }

    /// Keeps the rows for `scopes` at `generation`, replacing older rows of the same scope set
    /// and dropping the least recently used set beyond the bound.
    pub fn put(&self, scopes: &[Scope], generation: u64, facts: Arc<Facts>) {
        let key = key_of(scopes);
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|e| e.scopes != key);
        entries.push_front(Entry { scopes: key, generation, facts });
        entries.truncate(CACHED_SCOPE_SETS);
    }

    /// How many scope sets are kept.
    pub fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The rows within the user's scopes (from the cache when nothing changed) and the roster.
pub async fn facts_for(user: &ConsoleUser) -> Result<(Arc<Facts>, Arc<Roster>), ConsoleError> {
    let console = user.console().clone();
    let cache = console.facts_cache();
    let scopes = user.scopes.clone();
    user.console()
        .blocking(move |store| {
            let store = store.any();
            let generation = store.facts_generation()?;
            let roster = Arc::new(store.roster()?);
            if let Some(facts) = cache.get(&scopes, generation) {
                return Ok((facts, roster));
            }
            // Phones sync all day, so the rows are usually a little behind: fetch only what
            // changed since the kept copy (a few rows) instead of the whole street again.
            let facts = match cache.latest(&scopes) {
                Some((kept, facts)) if kept < generation => {
                    Arc::new(facts.with_changes(store.facts_changed_since(&scopes, kept)?))
                }
                _ => Arc::new(store.facts(&scopes)?),
            };
            // Keyed by the generation read *before* the rows: a write in between makes the
            // next request read again rather than keep stale rows under a new number.
            cache.put(&scopes, generation, facts.clone());
            Ok((facts, roster))
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use gridlink_shared::{CommunityId, StreetId};

    #[test]
    fn keeps_the_last_few_scope_sets_by_generation() {
        let cache = FactsCache::default();
        let street = Scope::Street(StreetId::from_u128(1));
        let facts = Arc::new(Facts::default());
        cache.put(&[street], 5, facts.clone());
        assert!(cache.get(&[street], 5).is_some());
        assert!(cache.get(&[street], 6).is_none(), "a new generation misses");
        for n in 0..CACHED_SCOPE_SETS as u128 {
            cache.put(&[Scope::Community(CommunityId::from_u128(10 + n))], 1, facts.clone());
        }
        assert_eq!(cache.len(), CACHED_SCOPE_SETS);
        assert!(cache.get(&[street], 5).is_none(), "the least recently used set went");
        let two = [Scope::Community(CommunityId::from_u128(11)), Scope::Community(CommunityId::from_u128(12))];
        cache.put(&two, 1, facts.clone());
        assert!(cache.get(&[two[1], two[0]], 1).is_some(), "order does not matter");
    }
}
