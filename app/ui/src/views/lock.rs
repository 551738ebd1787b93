//! The app lock: setting a 4-6 digit PIN after enrolment, unlocking after inactivity, and
//! opening a store locked with a PIN at start ([`OpenLocked`], before any [`crate::Ctx`]
//! exists). The PIN wraps the database key (see `gridlink_client::keys`): a wrong one shows
//! how long to wait before the next try, and the tenth in a row locks the data for the
//! administrator ([`LockedOut`]). A device wiped by the administrator shows [`Wiped`].

use std::path::PathBuf;

use dioxus::prelude::*;
use gridlink_client::{Client, Error, keys};
use gridlink_shared::Lang;
use gridlink_shared::time::Millis;

use crate::i18n::tr;
use crate::state::{Gate, pick, use_ctx};

/// Whether a PIN has the shape the app asks for: 4 to 6 digits.
pub fn pin_shape_ok(pin: &str) -> bool {
    (4..=6).contains(&pin.len()) && pin.chars().all(|c| c.is_ascii_digit())
}

/// Digits typed so far as dots, plus a keypad and a numeric field (for keyboards).
#[component]
fn PinPad(pin: Signal<String>, lang: Lang, on_done: EventHandler<String>) -> Element {
    // The field is uncontrolled (a controlled one drops fast keystrokes); it is remounted
    // whenever the PIN is cleared so it empties too.
    let mut cleared = use_signal(|| 0u32);
    use_effect(move || {
        if pin().is_empty() {
            cleared += 1;
        }
    });
    let t = tr(lang);
    let mut pin = pin;
    let mut press = move |digit: char| {
        if pin.peek().len() < 6 {
            pin.write().push(digit);
        }
    };
    rsx! {
        div { class: "pin-dots",
            for i in 0..6 {
                span { key: "{i}", class: if i < pin().len() { "on" } else { "" } }
            }
        }
        div { class: "field", style: "max-width:240px;margin:0 auto",
            for generation in [cleared()] {
            input {
                key: "{generation}",
                id: "pin",
                r#type: "password",
                inputmode: "numeric",
                autocomplete: "off",
                autofocus: true,
                maxlength: 6,
                style: "text-align:center;letter-spacing:8px",
                oninput: move |e| pin.set(e.value().chars().filter(|c| c.is_ascii_digit()).take(6).collect()),
                onkeydown: move |e| if e.key() == Key::Enter { on_done.call(pin()) },
            }
            }
        }
        div { class: "keypad",
            for digit in ['1', '2', '3', '4', '5', '6', '7', '8', '9'] {
                button { key: "{digit}", onclick: move |_| press(digit), "{digit}" }
            }
            button { class: "fn", onclick: move |_| pin.set(String::new()), {t.clear} }
            button { onclick: move |_| press('0'), "0" }
            button { class: "fn", id: "pin-ok", onclick: move |_| on_done.call(pin()), {t.ok} }
        }
    }
}

/// After enrolment: choose a PIN and type it again.
#[component]
pub fn SetPin() -> Element {
    let ctx = use_ctx();
    let t = tr(ctx.lang());
    let mut pin = use_signal(String::new);
    let mut first = use_signal(|| None::<String>);
    let mut error = use_signal(|| None::<String>);
    let done = {
        let ctx = ctx.clone();
        move |typed: String| {
            if !pin_shape_ok(&typed) {
                error.set(Some(t.pin_length.to_string()));
                return;
            }
            match first() {
                None => {
                    first.set(Some(typed));
                    pin.set(String::new());
                    error.set(None);
                }
                Some(earlier) if earlier == typed => match ctx.client.set_pin(&typed) {
                    Ok(()) => {
                        let mut gate = ctx.gate;
                        gate.set(Gate::Open);
                        ctx.touch();
                    }
                    Err(e) => error.set(Some(ctx.words(&e))),
                },
                Some(_) => {
                    first.set(None);
                    pin.set(String::new());
                    error.set(Some(t.pin_mismatch.to_string()));
                }
            }
        }
    };
    rsx! {
        main { class: "app-main no-tabs",
            div { class: "hero",
                div { class: "logo", "网" }
                h1 { style: "font-size:22px", if first().is_some() { {t.confirm_pin} } else { {t.set_pin_title} } }
                p { {t.set_pin_hint} }
            }
            if let Some(message) = error() {
                div { class: "form-error", role: "alert", {message} }
            }
            PinPad { pin, lang: ctx.lang(), on_done: done }
        }
    }
}

/// What the lock screen says before anything is typed: a wait still running from earlier
/// wrong PINs (the counter survives restarts), or why the PIN state cannot be read.
pub fn lock_notice(client_dir: &std::path::Path, now: Millis) -> Option<Error> {
    match keys::pin_tries(client_dir) {
        Ok(tries) if tries.wait_ms(now) > 0 => Some(Error::PinWait { wait_ms: tries.wait_ms(now) }),
        Ok(_) => None,
        Err(error) => Some(error),
    }
}

/// Locked: the PIN opens the app again. Nothing is lost while locked; sync keeps running.
/// The app also lands here when whether a PIN is set cannot be read (fail closed); the
/// reason shows and no PIN opens it until the store is readable again.
#[component]
pub fn Unlock() -> Element {
    let ctx = use_ctx();
    let t = tr(ctx.lang());
    let lang = ctx.lang();
    let mut pin = use_signal(String::new);
    let mut error = use_signal(|| None::<String>);
    let done = {
        let ctx = ctx.clone();
        move |typed: String| {
            // Fail closed: without a readable PIN state, no PIN opens the app.
            let outcome = match ctx.client.has_pin() {
                Ok(true) => ctx.client.verify_pin(&typed, gridlink_shared::time::now_millis()),
                Ok(false) => Ok(()),
                Err(e) => Err(e),
            };
            match outcome {
                Ok(()) => {
                    let mut gate = ctx.gate;
                    gate.set(Gate::Open);
                    ctx.touch();
                }
                Err(Error::PinLockedOut) => {
                    let mut gate = ctx.gate;
                    gate.set(Gate::LockedOut);
                }
                Err(e) => {
                    pin.set(String::new());
                    error.set(Some(ctx.words(&e)));
                }
            }
        }
    };
    let notice = match ctx.client.has_pin() {
        Err(e) => Some(e),
        Ok(_) => lock_notice(ctx.client.dir(), ctx.now_untracked()),
    };
    let name = ctx.identity().map(|i| i.name).unwrap_or_default();
    let message = error().or_else(|| notice.map(|e| pick(lang, &e.plain())));
    rsx! {
        main { class: "app-main no-tabs",
            div { class: "hero",
                div { class: "logo", "网" }
                h1 { style: "font-size:22px", {t.unlock_title} }
                p { {name} }
            }
            if let Some(message) = message {
                div { class: "form-error", role: "alert", {message} }
            }
            PinPad { pin, lang, on_done: done }
        }
    }
}

/// A full-screen message with no way past it (locked out, wiped, cannot open).
#[component]
pub fn Notice(title: String, body: String, id: String) -> Element {
    rsx! {
        main { class: "app-main no-tabs", id,
            div { class: "hero",
                div { class: "logo", "网" }
                h1 { style: "font-size:22px", {title} }
            }
            div { class: "form-error", role: "alert", {body} }
        }
    }
}

/// Ten wrong PINs in a row: the data is locked for the administrator.
#[component]
pub fn LockedOut(lang: Lang) -> Element {
    rsx! {
        Notice {
            id: "locked-out",
            title: tr(lang).locked_out_title.to_string(),
            body: pick(lang, &Error::PinLockedOut.plain()),
        }
    }
}

/// The administrator wiped this device; its store and keys are gone.
#[component]
pub fn Wiped(lang: Lang) -> Element {
    rsx! {
        Notice { id: "wiped", title: tr(lang).wiped_title.to_string(), body: pick(lang, &Error::Wiped.plain()) }
    }
}

/// At start, for a store locked with a PIN: the PIN opens the store itself (the key is
/// unwrapped with it), then `on_open` gets the client. Wrong PINs show the wait; the tenth
/// shows [`LockedOut`].
#[component]
pub fn OpenLocked(dir: PathBuf, lang: Lang, now: Millis, on_open: EventHandler<Client>) -> Element {
    let t = tr(lang);
    let mut pin = use_signal(String::new);
    let mut error = use_signal(|| None::<String>);
    let mut locked_out = use_signal(|| false);
    let done = {
        let dir = dir.clone();
        move |typed: String| match Client::open_with_pin(&dir, &typed, gridlink_shared::time::now_millis()) {
            Ok(client) => on_open.call(client),
            Err(Error::PinLockedOut) => locked_out.set(true),
            Err(e) => {
                pin.set(String::new());
                error.set(Some(pick(lang, &e.plain())));
            }
        }
    };
    if locked_out() {
        return rsx! { LockedOut { lang } };
    }
    let message = error().or_else(|| lock_notice(&dir, now).map(|e| pick(lang, &e.plain())));
    rsx! {
        main { class: "app-main no-tabs", id: "open-locked",
            div { class: "hero",
                div { class: "logo", "网" }
                h1 { style: "font-size:22px", {t.unlock_title} }
            }
            if let Some(message) = message {
                div { class: "form-error", role: "alert", {message} }
            }
            PinPad { pin, lang, on_done: done }
        }
    }
}
