//! What a document adds to the console's query rows and the supervisors' facts, derived once
//! for both backends: [`derive`] is a pure function from a document to the rows to write (the
//! household or case list row, and the facts rows), with every column already in its stored
//! text or number form. Each backend only runs its own SQL with them (`push::write_doc` and
//! `facts::write` on SQLite, `postgres/facts.rs` on PostgreSQL), so the two can never derive
//! different rows from one document.

use gridlink_shared::figures::{CaseFacts, HouseholdFacts};
use gridlink_shared::time::Millis;
use gridlink_shared::{AnyDoc, PolicyConfig};

use super::StoreError;

/// Every row one document is stored with beyond its bytes and scopes.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum DocRows {
    Household {
        row: HouseholdRow,
        facts: HouseholdFactsRow,
        visits: Vec<VisitFactsRow>,
    },
    Case {
        row: CaseRow,
        facts: CaseFactsRow,
    },
    /// Activity records have no console rows and count in none of the supervisors' figures:
    /// the phones total them.
    None,
}

/// A `household_rows` row (the console's household list).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HouseholdRow {
    pub id: String,
    pub grid: String,
    pub building: Option<String>,
    pub address: String,
    pub head: String,
    pub phone: String,
    pub status: &'static str,
    /// JSON array of tag codes.
    pub tags: String,
    /// JSON array of need codes.
    pub needs: String,
    pub residents: i64,
    pub visits: i64,
    pub last_visit_at: Option<Millis>,
}

/// A `case_rows` row (the console's case list).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CaseRow {
    pub id: String,
    pub grid: String,
    pub building: Option<String>,
    pub household: Option<String>,
    pub kind: String,
    pub title: String,
    pub status: &'static str,
    pub reporter: String,
    pub responsible: String,
    pub responsible_name: String,
    pub reported_at: Millis,
}

/// Where a facts row lies: the keys every facts table is searched by.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Keys {
    pub street: String,
    pub community: String,
    pub grid: String,
}

/// A `household_facts` row; `facts` is the JSON of [`HouseholdFacts`].
#[derive(Debug, Clone, PartialEq)]
pub(super) struct HouseholdFactsRow {
    pub id: String,
    pub keys: Keys,
    pub facts: String,
}

/// A `visit_facts` row; `facts` is the JSON of a [`gridlink_shared::figures::VisitFacts`].
#[derive(Debug, Clone, PartialEq)]
pub(super) struct VisitFactsRow {
    pub id: String,
    pub household: String,
    pub keys: Keys,
    pub at: Millis,
    pub facts: String,
}

/// A `case_facts` row; `facts` is the JSON of [`CaseFacts`].
#[derive(Debug, Clone, PartialEq)]
pub(super) struct CaseFactsRow {
    pub id: String,
    pub keys: Keys,
    pub reported_at: Millis,
    pub facts: String,
}

/// Text as a list row stores it: the validator refuses control characters in what people type,
/// but a row must be storable whatever a document holds (PostgreSQL text cannot hold a NUL, and
/// a document stored before that rule may have one), so a NUL becomes U+FFFD.
fn stored_text(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

/// The rows `any` is stored with.
pub(super) fn derive(any: &AnyDoc) -> Result<DocRows, StoreError> {
    let id = any.doc_id().to_string();
    let p = any.placement();
    let keys = Keys { street: p.street.to_string(), community: p.community.to_string(), grid: p.grid.to_string() };
    Ok(match any {
        AnyDoc::Household(h) => {
            let tags: Vec<&str> = h.tags.keys().map(|t| t.code()).collect();
            let needs: Vec<&str> = h.needs.keys().map(|n| n.code()).collect();
            let row = HouseholdRow {
                id: id.clone(),
                grid: keys.grid.clone(),
                building: p.building.map(|b| b.to_string()),
                address: stored_text(&h.address()),
                head: stored_text(&h.head),
                phone: stored_text(&h.phone),
                status: h.status.code(),
                tags: serde_json::to_string(&tags)?,
                needs: serde_json::to_string(&needs)?,
                residents: h.residents.len() as i64,
                visits: h.visits.len() as i64,
                last_visit_at: h.visits.values().map(|v| v.at).max(),
            };
            let (household, visit_facts) = HouseholdFacts::from_file(h);
            let visits = visit_facts
                .iter()
                .map(|visit| {
                    Ok(VisitFactsRow {
                        id: visit.id.to_string(),
                        household: id.clone(),
                        keys: keys.clone(),
                        at: visit.at,
                        facts: serde_json::to_string(visit)?,
                    })
                })
                .collect::<Result<_, StoreError>>()?;
            let facts = HouseholdFactsRow { id, keys, facts: serde_json::to_string(&household)? };
            DocRows::Household { row, facts, visits }
        }
        AnyDoc::Case(c) => {
            let (responsible, responsible_name) = c.responsible();
            let row = CaseRow {
                id: id.clone(),
                grid: keys.grid.clone(),
                building: p.building.map(|b| b.to_string()),
                household: c.household.map(|h| h.to_string()),
                kind: c.kind.to_string(),
                title: stored_text(&c.title),
                status: c.status().code(),
                reporter: c.reporter.to_string(),
                responsible: responsible.to_string(),
                responsible_name: stored_text(&responsible_name),
                reported_at: c.reported_at,
            };
            let case_facts = CaseFacts::from_case(c, &PolicyConfig::default());
            let facts = CaseFactsRow {
                id,
                keys,
                reported_at: case_facts.reported_at,
                facts: serde_json::to_string(&case_facts)?,
            };
            DocRows::Case { row, facts }
        }
        AnyDoc::Activity(_) => DocRows::None,
    })
}

/// The facts rows of one table within `scopes`, parsed: `fetch(column, id)` returns the (row
/// id, facts JSON) pairs whose placement `column` (street, community or grid) is `id`, in
/// the backend's SQL. A row covered by several scopes counts once; building scopes hold no
/// facts rows and are skipped; the result is in id order (byte order on both backends).
pub(super) fn facts_within<T: serde::de::DeserializeOwned>(
    scopes: &[gridlink_shared::Scope],
    mut fetch: impl FnMut(&'static str, String) -> Result<Vec<(String, String)>, StoreError>,
) -> Result<Vec<T>, StoreError> {
    use gridlink_shared::Scope;
    let mut seen = std::collections::HashSet::new();
    let mut out: Vec<(String, T)> = Vec::new();
    for scope in scopes {
        let (column, id) = match scope {
            Scope::Street(id) => ("street", id.to_string()),
            Scope::Community(id) => ("community", id.to_string()),
            Scope::Grid(id) => ("grid", id.to_string()),
            Scope::Building(_) => continue,
        };
        for (row_id, json) in fetch(column, id)? {
            if seen.insert(row_id.clone()) {
                out.push((row_id, serde_json::from_str(&json)?));
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(out.into_iter().map(|(_, row)| row).collect())
}
