//! First run: the server address and the enrolment code (typed or pasted). Scanning a QR code
//! needs the phone camera and is offered by the phone build only.

use dioxus::prelude::*;

use crate::i18n::tr;
use crate::state::{Gate, use_ctx};

#[component]
pub fn Enroll() -> Element {
    let ctx = use_ctx();
    let lang = ctx.lang();
    let t = tr(lang);
    let mut server = use_signal(String::new);
    let mut code = use_signal(String::new);
    let mut busy = use_signal(|| false);
    let mut error = use_signal(|| None::<String>);

    let submit = {
        let ctx = ctx.clone();
        move |_| {
            let ctx = ctx.clone();
            let (url, code) = (server().trim().to_string(), code().trim().to_string());
            if url.is_empty() || code.is_empty() {
                return;
            }
            busy.set(true);
            error.set(None);
            spawn(async move {
                let result = super::actions::enroll(&ctx.client, &url, &code).await;
                busy.set(false);
                match result {
                    Ok(()) => {
                        let mut gate = ctx.gate;
                        gate.set(Gate::SetPin);
                        ctx.changed();
                        ctx.request_sync();
                    }
                    Err(e) => error.set(Some(ctx.words(&e))),
                }
            });
        }
    };
    let other_lang =
        if lang == gridlink_shared::Lang::Zh { gridlink_shared::Lang::En } else { gridlink_shared::Lang::Zh };
    let switch = {
        let ctx = ctx.clone();
        move |_| ctx.set_lang(other_lang)
    };

    rsx! {
        main { class: "app-main no-tabs",
            div { style: "text-align:right",
                button { class: "btn small", id: "lang-switch", onclick: switch, {tr(other_lang).lang_name} }
            }
            div { class: "hero",
                div { class: "logo", "网" }
                h1 { {t.app_name} }
                p { {t.welcome} }
            }
            div { class: "card",
                h2 { style: "margin:0 0 12px;font-size:19px", {t.enroll_title} }
                if let Some(message) = error() {
                    div { class: "form-error", role: "alert", id: "enroll-error", {message} }
                }
                div { class: "field",
                    label { r#for: "server", {t.server_address} }
                    input {
                        id: "server",
                        r#type: "url",
                        inputmode: "url",
                        autocomplete: "off",
                        placeholder: t.server_placeholder,
                        initial_value: server(),
                        oninput: move |e| server.set(e.value()),
                    }
                }
                div { class: "field",
                    label { r#for: "code", {t.enroll_code} }
                    input {
                        id: "code",
                        autocomplete: "one-time-code",
                        placeholder: t.enroll_code_placeholder,
                        initial_value: code(),
                        oninput: move |e| code.set(e.value()),
                    }
                    div { class: "hint", {t.scan_qr} }
                }
                button {
                    class: "btn primary block big",
                    id: "enroll-button",
                    disabled: busy() || server().trim().is_empty() || code().trim().is_empty(),
                    onclick: submit,
                    if busy() { {t.enrolling} } else { {t.enroll} }
                }
            }
        }
    }
}
