//! The paged list screens over a REAL client store (the small demo's whole community: 300
//! households): the first page, the total the filter matches, and "加载更多" clicked through
//! the VirtualDom (dioxus-html's serialized click event, as a renderer would deliver it) until
//! every household is shown once; then the same screen in English, and the case list's count.

use std::any::Any;
use std::rc::Rc;

use dioxus::dioxus_core::{AttributeValue, ElementId, Mutation, Mutations};
use dioxus::prelude::*;
use dioxus_html::{PlatformEventData, SerializedHtmlEventConverter, SerializedMouseData, set_event_converter};
use gridlink_client::fixtures::{DEMO_NOW, DEMO_SEED, documents_for};
use gridlink_client::{CaseFilter, Client, HouseholdFilter, PAGE_ROWS, Page};
use gridlink_shared::demo::{DemoSize, generate};
use gridlink_shared::{Lang, Role, Scope};
use gridlink_ui::{App, AppConfig, AppProps};

fn community_supervisor(dir: &std::path::Path) -> Client {
    let data = generate(DemoSize::Small, DEMO_SEED, DEMO_NOW);
    let staff = data
        .staff_with_role(Role::Supervisor)
        .find(|s| s.scopes.iter().any(|x| matches!(x, Scope::Community(_))))
        .expect("a community supervisor")
        .clone();
    let principal = staff.principal();
    let docs = documents_for(&data, &principal);
    Client::open_with_documents(dir, principal, data.roster.clone(), docs).unwrap()
}

fn app(client: &Client, path: &str, lang: Lang) -> (VirtualDom, Mutations) {
    let config = AppConfig {
        client: client.clone(),
        background: false,
        now: Some(DEMO_NOW),
        lang: Some(lang),
        unlocked: true,
        initial_path: Some(path.to_string()),
    };
    let mut vdom = VirtualDom::new_with_props(App, AppProps { config });
    let mut edits = Mutations::default();
    vdom.rebuild(&mut edits);
    (vdom, edits)
}

/// The element the renderer was told carries `id="load-more"`, if these edits created one.
fn load_more_button(edits: &Mutations) -> Option<ElementId> {
    edits.edits.iter().find_map(|edit| match edit {
        Mutation::SetAttribute { name: "id", value: AttributeValue::Text(value), id, .. } if value == "load-more" => {
            Some(*id)
        }
        _ => None,
    })
}

/// Clicks `button` and renders what changed; returns the button's element afterwards.
fn click(vdom: &mut VirtualDom, button: ElementId) -> ElementId {
    set_event_converter(Box::new(SerializedHtmlEventConverter));
    let data: Rc<dyn Any> = Rc::new(PlatformEventData::new(Box::new(SerializedMouseData::default())));
    vdom.runtime().handle_event("click", Event::new(data, true), button);
    let mut edits = Mutations::default();
    vdom.render_immediate(&mut edits);
    load_more_button(&edits).unwrap_or(button)
}

fn shown_rows(html: &str) -> usize {
    html.matches("household-row").count()
}

#[test]
fn the_household_list_shows_a_page_and_the_total_and_loads_more_on_tap() {
    let dir = tempfile::tempdir().unwrap();
    let client = community_supervisor(dir.path());
    let all = client.households(&HouseholdFilter::default(), DEMO_NOW).unwrap();
    assert!(all.len() > 2 * PAGE_ROWS && all.len() <= 3 * PAGE_ROWS, "the community has {} households", all.len());

    let (mut vdom, edits) = app(&client, "/households", Lang::Zh);
    let html = dioxus_ssr::render(&vdom);
    assert_eq!(shown_rows(&html), PAGE_ROWS);
    assert!(html.contains(&format!("共 {} 户，显示 1–100", all.len())), "{html}");
    assert!(html.contains("加载更多"));
    // The first page is the head of the list, in order.
    for row in &all[..PAGE_ROWS] {
        assert!(html.contains(&format!("/households/{}", row.id)));
    }
    assert!(!html.contains(&format!("/households/{}", all[PAGE_ROWS].id)));

    let mut button = load_more_button(&edits).expect("a load-more button");
    button = click(&mut vdom, button);
    let html = dioxus_ssr::render(&vdom);
    assert_eq!(shown_rows(&html), 2 * PAGE_ROWS);
    assert!(html.contains(&format!("共 {} 户，显示 1–200", all.len())));

    click(&mut vdom, button);
    let html = dioxus_ssr::render(&vdom);
    assert_eq!(shown_rows(&html), all.len(), "every household once");
    for row in &all {
        assert_eq!(html.matches(&format!("/households/{}\"", row.id)).count(), 1, "{} shown once", row.head);
    }
    assert!(html.contains(&format!("共 {n} 户，显示 1–{n}", n = all.len())));
    assert!(!html.contains("加载更多"), "nothing more to load");

    // The same screen in English.
    let (vdom, _) = app(&client, "/households", Lang::En);
    let html = dioxus_ssr::render(&vdom);
    assert!(html.contains(&format!("{} households, showing 1–100", all.len())), "{html}");
    assert!(html.contains("Load more"));
}

#[test]
fn counts_are_written_with_thousands_separators() {
    use gridlink_ui::i18n::{grouped, tr};
    assert_eq!([grouped(0), grouped(999), grouped(1_000), grouped(25_000)], ["0", "999", "1,000", "25,000"]);
    assert_eq!((tr(Lang::Zh).households_shown)(200, 25_000), "共 25,000 户，显示 1–200");
    assert_eq!((tr(Lang::En).cases_shown)(100, 15_260), "15,260 cases, showing 1–100");
}

#[test]
fn the_case_list_says_how_many_cases_match() {
    let dir = tempfile::tempdir().unwrap();
    let client = community_supervisor(dir.path());
    // A supervisor's list opens on the resolved cases waiting for verification.
    let waiting = client.cases_page(CaseFilter::Resolved, Page::default(), DEMO_NOW).unwrap();
    assert!(waiting.total > 0, "the demo has resolved cases");
    let (vdom, _) = app(&client, "/cases", Lang::Zh);
    let html = dioxus_ssr::render(&vdom);
    assert!(html.contains(&format!("共 {} 件，显示 1–{}", waiting.total, waiting.rows.len())), "{html}");
    for row in &waiting.rows {
        assert!(html.contains(&format!("/cases/{}", row.id)));
    }
    assert_eq!(html.contains("加载更多"), waiting.has_more());
}
