//! Faster hydration of whole documents. autosurgeon reads a struct field by field, and each
//! `get` is a seek into automerge's op set by map key: three quarters of the time spent
//! hydrating a household (profiled on the server's push path and the phone's first sync).
//! [`Prefetched`] answers those `get`s from one `map_range` / `list_range` pass per object,
//! made the first time the object is read, and hands every other call to the document.
//! What it answers is what the document answers: the winning value of each key (tests compare
//! the two on documents with concurrent edits).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::RangeBounds;
use std::rc::Rc;

use automerge::{AutomergeError, ChangeHash, ObjId, ObjType, Prop, Value};
use autosurgeon::ReadDoc;

/// A value and its object id, as `get` returns them.
type Entry = (Value<'static>, ObjId);

/// One object's visible contents.
enum Contents {
    Map(HashMap<String, Entry>),
    List(Vec<Entry>),
    /// Text: read through the document.
    Other,
}

/// A read-only view of `doc` whose `get` is served from per-object copies.
pub struct Prefetched<'d, D> {
    doc: &'d D,
    objects: RefCell<HashMap<ObjId, Rc<Contents>>>,
}

impl<'d, D: ReadDoc> Prefetched<'d, D> {
    pub fn new(doc: &'d D) -> Self {
        Prefetched { doc, objects: RefCell::default() }
    }

    fn contents(&self, obj: &ObjId) -> Rc<Contents> {
        if let Some(found) = self.objects.borrow().get(obj) {
            return found.clone();
        }
        let contents = Rc::new(match self.doc.object_type(obj) {
            Some(ObjType::Map | ObjType::Table) => Contents::Map(
                self.doc
                    .map_range(obj, ..)
                    .map(|item| {
                        let id = item.id();
                        (item.key.into_owned(), (item.value.into_value(), id))
                    })
                    .collect(),
            ),
            Some(ObjType::List) => Contents::List(
                self.doc
                    .list_range(obj, ..)
                    .map(|item| {
                        let id = item.id();
                        (item.value.into_value(), id)
                    })
                    .collect(),
            ),
            Some(ObjType::Text) | None => Contents::Other,
        });
        self.objects.borrow_mut().insert(obj.clone(), contents.clone());
        contents
    }
}

impl<D: ReadDoc> ReadDoc for Prefetched<'_, D> {
    type Parents<'a>
        = D::Parents<'a>
    where
        Self: 'a;

    fn get_heads(&self) -> Vec<ChangeHash> {
        self.doc.get_heads()
    }

    fn get<P: Into<Prop>>(&self, obj: &ObjId, prop: P) -> Result<Option<(Value<'_>, ObjId)>, AutomergeError> {
        let prop = prop.into();
        match (&*self.contents(obj), &prop) {
            (Contents::Map(entries), Prop::Map(key)) => Ok(entries.get(key.as_str()).cloned()),
            (Contents::List(entries), Prop::Seq(index)) => Ok(entries.get(*index).cloned()),
            // A key into a list, an index into a map, or text: whatever the document says.
            _ => self.doc.get(obj, prop),
        }
    }

    fn object_type<O: AsRef<ObjId>>(&self, obj: O) -> Option<ObjType> {
        self.doc.object_type(obj)
    }

    fn map_range<'a, O, R>(&'a self, obj: O, range: R) -> automerge::iter::MapRange<'a>
    where
        R: RangeBounds<String> + 'a,
        O: AsRef<ObjId>,
        R: RangeBounds<String>,
    {
        self.doc.map_range(obj, range)
    }

    fn list_range<O: AsRef<ObjId>, R: RangeBounds<usize>>(&self, obj: O, range: R) -> automerge::iter::ListRange<'_> {
        self.doc.list_range(obj, range)
    }

    fn length<O: AsRef<ObjId>>(&self, obj: O) -> usize {
        self.doc.length(obj)
    }

    fn text<O: AsRef<ObjId>>(&self, obj: O) -> Result<String, AutomergeError> {
        self.doc.text(obj)
    }

    fn parents<O: AsRef<ObjId>>(&self, obj: O) -> Result<Self::Parents<'_>, AutomergeError> {
        self.doc.parents(obj)
    }

    fn is_empty(&self) -> bool {
        self.doc.is_empty()
    }
}
