//! Typed access to Gridlink's automerge documents: create, read and update household files,
//! cases and activity records through autosurgeon, and tell from the bytes which kind a document is.

use automerge::transaction::CommitOptions;
use automerge::{ActorId, AutoCommit, Change, ChangeHash};
use autosurgeon::ReadDoc;

use crate::activity::ActivityFile;
use crate::case::CaseFile;
use crate::codes::code_enum;
use crate::household::HouseholdFile;
use crate::ids::DocId;
use crate::org::{Placement, Scope};
use crate::prefetch::{Prefetched, PrefetchedMut};
use crate::time::Millis;

/// Version of the document schema written by this build. A document with a higher version
/// was written by a newer app and is refused rather than half-understood.
pub const SCHEMA_VERSION: u64 = 1;

code_enum!(
    /// The kinds of synced document.
    DocType {
        Household => ("household", "住户档案", "Household file"),
        Case => ("case", "事件", "Case"),
        Activity => ("activity", "志愿服务记录", "Activity record"),
    }
);

/// Errors reading or writing a document.
#[derive(Debug, thiserror::Error)]
pub enum DocError {
    #[error("document bytes are corrupt: {0}")]
    Corrupt(String),
    #[error("document does not match the {expected} schema: {detail}")]
    Shape { expected: &'static str, detail: String },
    #[error("document schema {found} is newer than this app understands ({SCHEMA_VERSION}); update the app")]
    TooNew { found: u64 },
    // Boxed: automerge's error is large, and a `DocError` travels in every `Result` here.
    #[error("automerge error: {0}")]
    Automerge(Box<automerge::AutomergeError>),
    #[error("could not write document: {0}")]
    Reconcile(Box<autosurgeon::ReconcileError>),
    /// automerge panicked on these bytes: they are hostile or corrupt. See [`guarded`].
    #[error("document bytes make automerge fail ({0})")]
    Panicked(String),
}

impl From<automerge::AutomergeError> for DocError {
    fn from(error: automerge::AutomergeError) -> Self {
        DocError::Automerge(Box::new(error))
    }
}

impl From<autosurgeon::ReconcileError> for DocError {
    fn from(error: autosurgeon::ReconcileError) -> Self {
        DocError::Reconcile(Box::new(error))
    }
}

/// Runs document work that automerge might panic on (hostile or corrupt bytes) and turns a
/// panic into [`DocError::Panicked`], so one bad document fails alone instead of taking the
/// process, or a lock it holds, with it. The closure must leave nothing half-changed that the
/// caller keeps using: callers work on a copy and drop it on error.
pub fn guarded<T>(what: &str, work: impl FnOnce() -> Result<T, DocError>) -> Result<T, DocError> {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)) {
        Ok(result) => result,
        Err(panic) => Err(DocError::Panicked(format!("{what}: {}", panic_message(panic.as_ref())))),
    }
}

/// The message a caught panic carried, if it was a string.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "panic".to_string())
}

/// A typed Gridlink document.
pub trait GridDocument: autosurgeon::Reconcile + autosurgeon::Hydrate + Clone + std::fmt::Debug + PartialEq {
    const TYPE: DocType;
    fn doc_id(&self) -> DocId;
    fn placement(&self) -> Placement;
}

impl GridDocument for HouseholdFile {
    const TYPE: DocType = DocType::Household;
    fn doc_id(&self) -> DocId {
        self.id.into()
    }
    fn placement(&self) -> Placement {
        self.placement
    }
}

impl GridDocument for CaseFile {
    const TYPE: DocType = DocType::Case;
    fn doc_id(&self) -> DocId {
        self.id.into()
    }
    fn placement(&self) -> Placement {
        self.placement
    }
}

impl GridDocument for ActivityFile {
    const TYPE: DocType = DocType::Activity;
    fn doc_id(&self) -> DocId {
        self.id.into()
    }
    fn placement(&self) -> Placement {
        self.placement
    }
}

/// Any kind of document, hydrated.
#[derive(Clone, Debug, PartialEq)]
pub enum AnyDoc {
    Household(HouseholdFile),
    Case(CaseFile),
    Activity(ActivityFile),
}

impl AnyDoc {
    pub fn doc_type(&self) -> DocType {
        match self {
            AnyDoc::Household(_) => DocType::Household,
            AnyDoc::Case(_) => DocType::Case,
            AnyDoc::Activity(_) => DocType::Activity,
        }
    }

    pub fn doc_id(&self) -> DocId {
        match self {
            AnyDoc::Household(h) => h.doc_id(),
            AnyDoc::Case(c) => c.doc_id(),
            AnyDoc::Activity(a) => a.doc_id(),
        }
    }

    pub fn placement(&self) -> Placement {
        match self {
            AnyDoc::Household(h) => h.placement,
            AnyDoc::Case(c) => c.placement,
            AnyDoc::Activity(a) => a.placement,
        }
    }

    /// The scopes this document is delivered to. Household files and activity records are not
    /// in building scopes: building leaders see cases, not household files or service hours.
    pub fn scopes(&self) -> Vec<Scope> {
        let p = self.placement();
        let mut scopes = vec![Scope::Street(p.street), Scope::Community(p.community), Scope::Grid(p.grid)];
        if let (AnyDoc::Case(_), Some(building)) = (self, p.building) {
            scopes.push(Scope::Building(building));
        }
        scopes
    }
}

/// Which kind a document is, from its root `doc_type` and `schema` fields.
pub fn doc_type_of(doc: &impl ReadDoc) -> Result<DocType, DocError> {
    let schema: u64 = autosurgeon::hydrate_prop(doc, automerge::ROOT, "schema")
        .map_err(|e| DocError::Shape { expected: "any", detail: e.to_string() })?;
    if schema > SCHEMA_VERSION {
        return Err(DocError::TooNew { found: schema });
    }
    autosurgeon::hydrate_prop(doc, automerge::ROOT, "doc_type")
        .map_err(|e| DocError::Shape { expected: "any", detail: e.to_string() })
}

/// Reads a typed document.
pub fn read<T: GridDocument>(doc: &impl ReadDoc) -> Result<T, DocError> {
    read_prefetched(&Prefetched::new(doc))
}

fn read_prefetched<T: GridDocument>(doc: &Prefetched<'_, impl ReadDoc>) -> Result<T, DocError> {
    let found = doc_type_of(doc)?;
    if found != T::TYPE {
        return Err(DocError::Shape { expected: T::TYPE.code(), detail: format!("it is a {found} document") });
    }
    autosurgeon::hydrate(doc).map_err(|e| DocError::Shape { expected: T::TYPE.code(), detail: e.to_string() })
}

/// Reads a document of either kind.
pub fn read_any(doc: &impl ReadDoc) -> Result<AnyDoc, DocError> {
    let doc = Prefetched::new(doc);
    Ok(match doc_type_of(&doc)? {
        DocType::Household => AnyDoc::Household(read_prefetched(&doc)?),
        DocType::Case => AnyDoc::Case(read_prefetched(&doc)?),
        DocType::Activity => AnyDoc::Activity(read_prefetched(&doc)?),
    })
}

/// Loads document bytes (a `save()` or concatenated changes).
pub fn load(bytes: &[u8]) -> Result<AutoCommit, DocError> {
    AutoCommit::load(bytes).map_err(|e| DocError::Corrupt(e.to_string()))
}

/// Parses one change's bytes.
pub fn parse_change(bytes: &[u8]) -> Result<Change, DocError> {
    Change::from_bytes(bytes.to_vec()).map_err(|e| DocError::Corrupt(e.to_string()))
}

/// Starts a new document for `value`, authored by `actor`, committed at `at`.
pub fn create<T: GridDocument>(value: &T, actor: ActorId, at: Millis) -> Result<AutoCommit, DocError> {
    let mut doc = AutoCommit::new().with_actor(actor);
    autosurgeon::reconcile(&mut PrefetchedMut::new(&mut doc), value)?;
    doc.commit_with(CommitOptions::default().with_time(at).with_message(format!("create {}", T::TYPE)));
    Ok(doc)
}

/// Writes `value` over the document and commits one change, returned with its hash.
/// Returns `None` when nothing differed.
pub fn update<T: GridDocument>(
    doc: &mut AutoCommit,
    value: &T,
    message: &str,
    at: Millis,
) -> Result<Option<ChangeHash>, DocError> {
    autosurgeon::reconcile(&mut PrefetchedMut::new(doc), value)?;
    Ok(doc.commit_with(CommitOptions::default().with_time(at).with_message(message)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::*;

    fn placement() -> Placement {
        Placement {
            street: StreetId::from_u128(1),
            community: CommunityId::from_u128(2),
            grid: GridId::from_u128(3),
            building: Some(BuildingId::from_u128(4)),
        }
    }

    #[test]
    fn household_round_trips_and_is_not_a_case() {
        let file = HouseholdFile::new(HouseholdId::new(), placement(), "滨湖小区7栋", "2", "302", "张桂兰", 1);
        let mut doc = create(&file, ActorId::random(), 1).unwrap();
        let bytes = doc.save();
        let loaded = load(&bytes).unwrap();
        assert_eq!(read::<HouseholdFile>(&loaded).unwrap(), file);
        assert!(matches!(read::<CaseFile>(&loaded), Err(DocError::Shape { .. })));
        let any = read_any(&loaded).unwrap();
        assert_eq!(any.scopes().len(), 3, "household files are not delivered to building scopes");
    }

    #[test]
    fn corrupt_bytes_and_newer_schemas_are_refused() {
        assert!(matches!(load(b"definitely not automerge"), Err(DocError::Corrupt(_))));
        let mut file = HouseholdFile::new(HouseholdId::new(), placement(), "滨湖小区7栋", "2", "302", "张桂兰", 1);
        file.schema = SCHEMA_VERSION + 1;
        let doc = create(&file, ActorId::random(), 1).unwrap();
        assert!(matches!(read_any(&doc), Err(DocError::TooNew { .. })));
    }
}
