//! The UI's own preferences (only the language for now), kept in a small file beside the
//! encrypted store. Nothing here is secret or synced.

use std::path::Path;

use gridlink_shared::Lang;

const LANG_FILE: &str = "ui-lang";

/// The saved language, Chinese when none was saved or the file is unreadable.
pub fn load_lang(dir: &Path) -> Lang {
    match std::fs::read_to_string(dir.join(LANG_FILE)) {
        Ok(text) if text.trim() == "en" => Lang::En,
        _ => Lang::Zh,
    }
}

/// Saves the language; a failure only costs the choice at the next start, so it is logged.
pub fn save_lang(dir: &Path, lang: Lang) {
    let code = match lang {
        Lang::Zh => "zh",
        Lang::En => "en",
    };
    if let Err(error) = std::fs::write(dir.join(LANG_FILE), code) {
        tracing::warn!(%error, "cannot save the language choice");
    }
}
