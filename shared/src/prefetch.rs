//! Faster hydration of whole documents. autosurgeon reads a struct field by field, and each
//! `get` is a seek into automerge's op set by map key: three quarters of the time spent
//! hydrating a household (profiled on the server's push path and the phone's first sync).
//! [`Prefetched`] answers those `get`s from one `map_range` / `list_range` pass per object,
//! made the first time the object is read, and hands every other call to the document.
//! What it answers is what the document answers: the winning value of each key (tests compare
//! the two on documents with concurrent edits).
//!
//! [`PrefetchedMut`] does the same for autosurgeon's reconcile, which reads every field before
//! writing it: a key written through it (any index of a written list) is read from the
//! document from then on, so a read never sees a copy older than a write.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::ops::RangeBounds;

use automerge::{AutoCommit, AutomergeError, ChangeHash, ObjId, ObjType, Prop, ScalarValue, Value};
use autosurgeon::{Doc, ReadDoc};

/// A value and its object id, as `get` returns them, and whether other values are in conflict
/// with it.
#[derive(Clone)]
struct Entry {
    value: Value<'static>,
    id: ObjId,
    conflict: bool,
}

impl Entry {
    fn got<'a>(&self) -> (Value<'a>, ObjId) {
        (self.value.clone(), self.id.clone())
    }
}

/// One object's visible contents.
enum Contents {
    Map(HashMap<String, Entry>),
    List(Vec<Entry>),
    /// Text, or a list written through [`PrefetchedMut`]: read through the document.
    Other,
}

/// One object's copy, and the keys written since it was made (read from the document).
struct Copy {
    contents: Contents,
    written: HashSet<String>,
}

/// Per-object copies, each made the first time the object is read.
#[derive(Default)]
struct Copies {
    objects: RefCell<HashMap<ObjId, Copy>>,
}

impl Copies {
    fn fetch(doc: &impl ReadDoc, obj: &ObjId) -> Contents {
        match doc.object_type(obj) {
            Some(ObjType::Map | ObjType::Table) => Contents::Map(
                doc.map_range(obj, ..)
                    .map(|item| {
                        let (id, conflict) = (item.id(), item.conflict);
                        (item.key.into_owned(), Entry { value: item.value.into_value(), id, conflict })
                    })
                    .collect(),
            ),
            Some(ObjType::List) => Contents::List(
                doc.list_range(obj, ..)
                    .map(|item| {
                        let (id, conflict) = (item.id(), item.conflict);
                        Entry { value: item.value.into_value(), id, conflict }
                    })
                    .collect(),
            ),
            Some(ObjType::Text) | None => Contents::Other,
        }
    }

    fn get<'a, D: ReadDoc>(
        &self,
        doc: &'a D,
        obj: &ObjId,
        prop: Prop,
    ) -> Result<Option<(Value<'a>, ObjId)>, AutomergeError> {
        {
            let mut objects = self.objects.borrow_mut();
            let copy = objects
                .entry(obj.clone())
                .or_insert_with(|| Copy { contents: Self::fetch(doc, obj), written: HashSet::new() });
            match (&copy.contents, &prop) {
                (Contents::Map(entries), Prop::Map(key)) if !copy.written.contains(key) => {
                    return Ok(entries.get(key.as_str()).map(Entry::got));
                }
                (Contents::List(entries), Prop::Seq(index)) => return Ok(entries.get(*index).map(Entry::got)),
                _ => {}
            }
        }
        // A key into a list, an index into a map, text, or something written since the copy:
        // whatever the document says.
        doc.get(obj, prop)
    }

    /// Whether `prop` of `obj` already holds exactly `value`, with nothing in conflict with it,
    /// as copied and not written since: writing it again changes nothing.
    fn holds(&self, obj: &ObjId, prop: &Prop, value: &ScalarValue) -> bool {
        let objects = self.objects.borrow();
        let Some(Copy { contents: Contents::Map(entries), written }) = objects.get(obj) else { return false };
        let Prop::Map(key) = prop else { return false };
        !written.contains(key)
            && entries
                .get(key.as_str())
                .is_some_and(|e| !e.conflict && matches!(&e.value, Value::Scalar(held) if held.as_ref() == value))
    }

    /// `prop` of `obj` was written (`None`: anything in it): read it from the document from
    /// now on. An object not copied yet needs nothing: its copy will be made from the document.
    fn written(&self, obj: &ObjId, prop: Option<&Prop>) {
        let mut objects = self.objects.borrow_mut();
        let Some(copy) = objects.get_mut(obj) else { return };
        match (&copy.contents, prop) {
            (Contents::Map(_), Some(Prop::Map(key))) => {
                copy.written.insert(key.clone());
            }
            // A list's indexes shift with an insert or a delete.
            _ => copy.contents = Contents::Other,
        }
    }
}

/// A read-only view of `doc` whose `get` is served from per-object copies.
pub struct Prefetched<'d, D> {
    doc: &'d D,
    copies: Copies,
}

impl<'d, D: ReadDoc> Prefetched<'d, D> {
    pub fn new(doc: &'d D) -> Self {
        Prefetched { doc, copies: Copies::default() }
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
        self.copies.get(self.doc, obj, prop.into())
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

/// A view of `doc` for autosurgeon's reconcile: reads as [`Prefetched`] does, writes go to the
/// document and mark the written object to be read from the document from then on.
pub struct PrefetchedMut<'d> {
    doc: &'d mut AutoCommit,
    copies: Copies,
}

impl<'d> PrefetchedMut<'d> {
    pub fn new(doc: &'d mut AutoCommit) -> Self {
        PrefetchedMut { doc, copies: Copies::default() }
    }
}

impl ReadDoc for PrefetchedMut<'_> {
    type Parents<'a>
        = automerge::Parents<'a>
    where
        Self: 'a;

    fn get_heads(&self) -> Vec<ChangeHash> {
        ReadDoc::get_heads(&*self.doc)
    }

    fn get<P: Into<Prop>>(&self, obj: &ObjId, prop: P) -> Result<Option<(Value<'_>, ObjId)>, AutomergeError> {
        self.copies.get(&*self.doc, obj, prop.into())
    }

    fn object_type<O: AsRef<ObjId>>(&self, obj: O) -> Option<ObjType> {
        ReadDoc::object_type(&*self.doc, obj)
    }

    fn map_range<'a, O, R>(&'a self, obj: O, range: R) -> automerge::iter::MapRange<'a>
    where
        R: RangeBounds<String> + 'a,
        O: AsRef<ObjId>,
        R: RangeBounds<String>,
    {
        ReadDoc::map_range(&*self.doc, obj, range)
    }

    fn list_range<O: AsRef<ObjId>, R: RangeBounds<usize>>(&self, obj: O, range: R) -> automerge::iter::ListRange<'_> {
        ReadDoc::list_range(&*self.doc, obj, range)
    }

    fn length<O: AsRef<ObjId>>(&self, obj: O) -> usize {
        ReadDoc::length(&*self.doc, obj)
    }

    fn text<O: AsRef<ObjId>>(&self, obj: O) -> Result<String, AutomergeError> {
        ReadDoc::text(&*self.doc, obj)
    }

    fn parents<O: AsRef<ObjId>>(&self, obj: O) -> Result<Self::Parents<'_>, AutomergeError> {
        ReadDoc::parents(&*self.doc, obj)
    }

    fn is_empty(&self) -> bool {
        ReadDoc::is_empty(&*self.doc)
    }
}

impl Doc for PrefetchedMut<'_> {
    fn put<O: AsRef<ObjId>, P: Into<Prop>, V: Into<ScalarValue>>(
        &mut self,
        obj: O,
        prop: P,
        value: V,
    ) -> Result<(), AutomergeError> {
        let (prop, value) = (prop.into(), value.into());
        // autosurgeon puts every scalar field it reconciles; most are unchanged.
        if self.copies.holds(obj.as_ref(), &prop, &value) {
            return Ok(());
        }
        self.copies.written(obj.as_ref(), Some(&prop));
        Doc::put(self.doc, obj, prop, value)
    }

    fn put_object<O: AsRef<ObjId>, P: Into<Prop>>(
        &mut self,
        obj: O,
        prop: P,
        value: ObjType,
    ) -> Result<ObjId, AutomergeError> {
        let prop = prop.into();
        self.copies.written(obj.as_ref(), Some(&prop));
        Doc::put_object(self.doc, obj, prop, value)
    }

    fn insert<O: AsRef<ObjId>, V: Into<ScalarValue>>(
        &mut self,
        obj: O,
        index: usize,
        value: V,
    ) -> Result<(), AutomergeError> {
        self.copies.written(obj.as_ref(), None);
        Doc::insert(self.doc, obj, index, value)
    }

    fn insert_object<O: AsRef<ObjId>>(
        &mut self,
        obj: O,
        index: usize,
        value: ObjType,
    ) -> Result<ObjId, AutomergeError> {
        self.copies.written(obj.as_ref(), None);
        Doc::insert_object(self.doc, obj, index, value)
    }

    fn increment<O: AsRef<ObjId>, P: Into<Prop>>(&mut self, obj: O, prop: P, value: i64) -> Result<(), AutomergeError> {
        let prop = prop.into();
        self.copies.written(obj.as_ref(), Some(&prop));
        Doc::increment(self.doc, obj, prop, value)
    }

    fn delete<O: AsRef<ObjId>, P: Into<Prop>>(&mut self, obj: O, prop: P) -> Result<(), AutomergeError> {
        let prop = prop.into();
        self.copies.written(obj.as_ref(), Some(&prop));
        Doc::delete(self.doc, obj, prop)
    }

    fn splice_text<O: AsRef<ObjId>>(
        &mut self,
        obj: O,
        pos: usize,
        del: isize,
        text: &str,
    ) -> Result<(), AutomergeError> {
        self.copies.written(obj.as_ref(), None);
        Doc::splice_text(self.doc, obj, pos, del, text)
    }

    fn update_text<O: AsRef<ObjId>>(&mut self, obj: O, text: &str) -> Result<(), AutomergeError> {
        self.copies.written(obj.as_ref(), None);
        Doc::update_text(self.doc, obj, text)
    }

    fn batch_create<O: AsRef<ObjId>, P: Into<Prop>>(
        &mut self,
        obj: O,
        prop: P,
        value: automerge::hydrate::Value,
        insert: bool,
    ) -> Result<(), AutomergeError> {
        // New objects have new ids, never copied: only `obj` itself changed.
        let prop = prop.into();
        self.copies.written(obj.as_ref(), (!insert).then_some(&prop));
        Doc::batch_create(self.doc, obj, prop, value, insert)
    }

    fn init_root_from_hydrate(&mut self, value: &automerge::hydrate::Map) -> Result<(), AutomergeError> {
        self.copies.written(&automerge::ROOT, None);
        Doc::init_root_from_hydrate(self.doc, value)
    }
}
