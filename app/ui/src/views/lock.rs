//! The app lock: setting a 4-6 digit PIN after enrolment, and unlocking after inactivity.
//! The PIN is checked by the client core (a salted hash inside the encrypted store).

use dioxus::prelude::*;

use crate::i18n::tr;
use crate::state::{Gate, use_ctx};

/// Whether a PIN has the shape the app asks for: 4 to 6 digits.
pub fn pin_shape_ok(pin: &str) -> bool {
    (4..=6).contains(&pin.len()) && pin.chars().all(|c| c.is_ascii_digit())
}

/// Digits typed so far as dots, plus a keypad and a numeric field (for keyboards).
#[component]
fn PinPad(pin: Signal<String>, on_done: EventHandler<String>) -> Element {
    // The field is uncontrolled (a controlled one drops fast keystrokes); it is remounted
    // whenever the PIN is cleared so it empties too.
    let mut cleared = use_signal(|| 0u32);
    use_effect(move || {
        if pin().is_empty() {
            cleared += 1;
        }
    });
    let ctx = use_ctx();
    let t = tr(ctx.lang());
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
            PinPad { pin, on_done: done }
        }
    }
}

/// Locked: the PIN opens the app again. Nothing is lost while locked; sync keeps running.
#[component]
pub fn Unlock() -> Element {
    let ctx = use_ctx();
    let t = tr(ctx.lang());
    let mut pin = use_signal(String::new);
    let mut error = use_signal(|| None::<String>);
    let done = {
        let ctx = ctx.clone();
        move |typed: String| match ctx.client.verify_pin(&typed) {
            Ok(true) => {
                let mut gate = ctx.gate;
                gate.set(Gate::Open);
                ctx.touch();
            }
            Ok(false) => {
                pin.set(String::new());
                error.set(Some(t.wrong_pin.to_string()));
            }
            Err(e) => error.set(Some(ctx.words(&e))),
        }
    };
    let name = ctx.identity().map(|i| i.name).unwrap_or_default();
    rsx! {
        main { class: "app-main no-tabs",
            div { class: "hero",
                div { class: "logo", "网" }
                h1 { style: "font-size:22px", {t.unlock_title} }
                p { {name} }
            }
            if let Some(message) = error() {
                div { class: "form-error", role: "alert", {message} }
            }
            PinPad { pin, on_done: done }
        }
    }
}
