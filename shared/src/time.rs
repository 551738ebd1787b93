//! Time in Gridlink: instants are UTC milliseconds; calendar days ("today", due dates) are
//! always reckoned in Asia/Shanghai, whatever the phone's own time zone says.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Asia::Shanghai;

/// Milliseconds since the Unix epoch, UTC. Stored in documents as a plain integer so every
/// replica and language reads it the same way.
pub type Millis = i64;

/// The current instant as [`Millis`]. Only the I/O edges call this; domain functions take `now`.
pub fn now_millis() -> Millis {
    Utc::now().timestamp_millis()
}

/// Converts [`Millis`] to a UTC date-time (out-of-range values clamp to the epoch).
pub fn to_datetime(ms: Millis) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The calendar day in Asia/Shanghai at instant `ms`.
pub fn local_date(ms: Millis) -> NaiveDate {
    to_datetime(ms).with_timezone(&Shanghai).date_naive()
}

/// Midnight at the start of `date` in Asia/Shanghai, as [`Millis`].
pub fn start_of_local_day(date: NaiveDate) -> Millis {
    let midnight = date.and_hms_opt(0, 0, 0).unwrap_or_default();
    Shanghai.from_local_datetime(&midnight).earliest().map(|t| t.timestamp_millis()).unwrap_or_default()
}

/// Formats an instant for people: `2026-11-28 09:30` in Asia/Shanghai.
pub fn format_local(ms: Millis) -> String {
    to_datetime(ms).with_timezone(&Shanghai).format("%Y-%m-%d %H:%M").to_string()
}

/// One hour in milliseconds.
pub const HOUR_MS: Millis = 3_600_000;
/// One day in milliseconds.
pub const DAY_MS: Millis = 24 * HOUR_MS;
/// One minute in milliseconds.
pub const MINUTE_MS: Millis = 60_000;

/// autosurgeon adapter storing an optional [`NaiveDate`] as an ISO `YYYY-MM-DD` string.
pub mod opt_date {
    use autosurgeon::{Hydrate, HydrateError, Prop, ReadDoc, Reconciler};
    use chrono::NaiveDate;

    pub fn reconcile<R: Reconciler>(date: &Option<NaiveDate>, reconciler: R) -> Result<(), R::Error> {
        autosurgeon::Reconcile::reconcile(&date.map(|d| d.to_string()), reconciler)
    }

    pub fn hydrate<D: ReadDoc>(
        doc: &D,
        obj: &automerge::ObjId,
        prop: Prop<'_>,
    ) -> Result<Option<NaiveDate>, HydrateError> {
        let raw = Option::<String>::hydrate(doc, obj, prop)?;
        raw.map(|s| s.parse().map_err(|_| HydrateError::unexpected("a YYYY-MM-DD date", s.clone()))).transpose()
    }
}

/// autosurgeon adapter storing a [`NaiveDate`] as an ISO `YYYY-MM-DD` string.
pub mod date {
    use autosurgeon::{Hydrate, HydrateError, Prop, ReadDoc, Reconciler};
    use chrono::NaiveDate;

    pub fn reconcile<R: Reconciler>(date: &NaiveDate, mut reconciler: R) -> Result<(), R::Error> {
        reconciler.str(date.to_string())
    }

    pub fn hydrate<D: ReadDoc>(doc: &D, obj: &automerge::ObjId, prop: Prop<'_>) -> Result<NaiveDate, HydrateError> {
        let raw = String::hydrate(doc, obj, prop)?;
        raw.parse().map_err(|_| HydrateError::unexpected("a YYYY-MM-DD date", raw.clone()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_day_is_shanghai_not_utc() {
        // 2026-11-27 17:30 UTC is already 01:30 on the 28th in Shanghai.
        let ms = Utc.with_ymd_and_hms(2026, 11, 27, 17, 30, 0).unwrap().timestamp_millis();
        assert_eq!(local_date(ms), NaiveDate::from_ymd_opt(2026, 11, 28).unwrap());
        let start = start_of_local_day(NaiveDate::from_ymd_opt(2026, 11, 28).unwrap());
        assert_eq!(to_datetime(start), Utc.with_ymd_and_hms(2026, 11, 27, 16, 0, 0).unwrap());
        assert_eq!(format_local(ms), "2026-11-28 01:30");
    }
}
