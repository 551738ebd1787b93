//! Turning times, due states and counts into the short phrases the screens show.

use gridlink_shared::Lang;
use gridlink_shared::policy::DueState;
use gridlink_shared::time::{Millis, format_local};

use crate::i18n::tr;

/// "刚刚", "5分钟前", "3小时前", "2天前"; a date beyond a week.
pub fn ago(lang: Lang, at: Millis, now: Millis) -> String {
    let t = tr(lang);
    let minutes = (now - at).max(0) / 60_000;
    match minutes {
        0 => t.just_now.to_string(),
        m if m < 60 => (t.minutes_ago)(m),
        m if m < 24 * 60 => (t.hours_ago)(m / 60),
        m if m < 7 * 24 * 60 => (t.days_ago)(m / (24 * 60)),
        _ => date(at),
    }
}

/// `2026-11-28` in Asia/Shanghai.
pub fn date(at: Millis) -> String {
    format_local(at).chars().take(10).collect()
}

/// `11-28 09:30` in Asia/Shanghai.
pub fn short_time(at: Millis) -> String {
    format_local(at).chars().skip(5).collect()
}

/// `2026-11-28 09:30`.
pub fn date_time(at: Millis) -> String {
    format_local(at)
}

/// A countdown: `12:05` (minutes:seconds) under an hour, `3:12:05` under a day, `2天5小时`
/// beyond.
pub fn countdown(lang: Lang, remaining_ms: Millis) -> String {
    let secs = remaining_ms.abs() / 1000;
    let (d, h, m, s) = (secs / 86_400, (secs / 3600) % 24, (secs / 60) % 60, secs % 60);
    if d > 0 {
        match lang {
            Lang::Zh => format!("{d}天{h}小时"),
            Lang::En => format!("{d}d {h}h"),
        }
    } else if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m:02}:{s:02}")
    }
}

/// Why a household is on the list: "逾期3天", "今天到期", "2天后到期".
pub fn due_phrase(lang: Lang, state: &DueState) -> String {
    let t = tr(lang);
    match state {
        DueState::Overdue { days } => (t.overdue_days)(*days),
        DueState::DueToday => t.due_today.to_string(),
        DueState::DueSoon { days } | DueState::NotDue { days } => (t.due_in_days)(*days),
    }
}

/// CSS class of a due state.
pub fn due_class(state: &DueState) -> &'static str {
    match state {
        DueState::Overdue { .. } => "overdue",
        DueState::DueToday => "due",
        DueState::DueSoon { .. } | DueState::NotDue { .. } => "soon",
    }
}

/// The first character of a name, for avatars.
pub fn initial(name: &str) -> String {
    name.chars().next().map(String::from).unwrap_or_default()
}

/// The calendar year (Asia/Shanghai) of an instant, for residents' ages.
pub fn year_of(at: Millis) -> i32 {
    use chrono::Datelike;
    gridlink_shared::time::local_date(at).year()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn countdowns_and_ages_read_naturally() {
        assert_eq!(countdown(Lang::Zh, 5 * 60_000 + 7_000), "05:07");
        assert_eq!(countdown(Lang::Zh, -(3_600_000 + 61_000)), "1:01:01");
        assert_eq!(countdown(Lang::Zh, 2 * 86_400_000 + 5 * 3_600_000), "2天5小时");
        assert_eq!(ago(Lang::Zh, 0, 3 * 3_600_000), "3小时前");
        assert_eq!(ago(Lang::En, 0, 30_000), "just now");
        assert_eq!(due_phrase(Lang::Zh, &DueState::Overdue { days: 3 }), "逾期3天");
    }
}
