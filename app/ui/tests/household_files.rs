//! Household files on the phone, rendered with `VirtualDom` + `dioxus_ssr` over a real client
//! store: filing a new arrival (field errors from the shared validator, in Chinese and under
//! the English switch), residents who left, the visit date in Asia/Shanghai, and a
//! supervisor's read-only file.

mod common;

use common::{NOW, demo, render, render_at};

use gridlink_client::{Client, HouseholdFilter};
use gridlink_shared::household::DepartureKind;
use gridlink_shared::time::local_date;
use gridlink_shared::validate::Field;
use gridlink_shared::{HouseholdId, Lang, MustVisitTag, Role, Sex};
use gridlink_ui::views::households::{self, HouseholdDraft, ResidentDraft};

/// A household of the demo still living in its room.
fn lived_in(client: &Client) -> gridlink_client::HouseholdDetail {
    let rows = client.households(&HouseholdFilter::default(), NOW).unwrap();
    let row = rows.iter().find(|r| !r.moved_out).expect("a household living in the grid");
    client.household(row.id, NOW).unwrap()
}

/// The 周 family moving into an empty room of the same building.
fn zhou_family(building: gridlink_shared::BuildingId) -> HouseholdDraft {
    HouseholdDraft {
        building: Some(building),
        unit: "6".into(),
        room: "2201".into(),
        head: "周建军".into(),
        phone: "13972356610".into(),
        moved_in_on: String::new(),
        notes: String::new(),
        residents: vec![
            ResidentDraft {
                name: "周建军".into(),
                relation: "户主".into(),
                id_number: "420702198807161530".into(),
                ..Default::default()
            },
            ResidentDraft {
                name: "吴丽娟".into(),
                relation: "配偶".into(),
                sex: Some(Sex::Female),
                birth_year: "1990".into(),
                phone: "15907113456".into(),
                ..Default::default()
            },
        ],
    }
}

#[test]
fn the_new_household_form_shows_a_room_already_lived_in_at_its_field_in_chinese_and_english() {
    let (_dir, client) = demo(Role::GridWorker);
    let taken = lived_in(&client);
    let path = format!("/households/new?building={}&unit={}&room={}", taken.building_id, taken.unit, taken.room);

    let zh = render(&client, &path, Lang::Zh);
    assert!(zh.contains("新迁入登记") && zh.contains("迁入日期"), "{zh}");
    let message = format!("本楼{}单元{}室已有在住住户档案", taken.unit, taken.room);
    assert!(zh.contains(&message), "expected {message:?} under the room field:\n{zh}");
    assert!(zh.contains(r#"role="alert""#));

    let en = render(&client, &path, Lang::En);
    assert!(en.contains("already has a household living in"), "{en}");

    // A free room of the same building: no error at all on the untouched form.
    let free = render(&client, &format!("/households/new?building={}&unit=6&room=2201", taken.building_id), Lang::Zh);
    assert!(!free.contains("已有在住住户档案") && !free.contains(r#"role="alert""#), "{free}");
}

#[test]
fn malformed_id_numbers_and_phones_are_named_at_their_fields_and_nothing_is_filed() {
    let (_dir, client) = demo(Role::GridWorker);
    let building = lived_in(&client).building_id;
    let mut draft = zhou_family(building);
    draft.residents[0].id_number = "420702198807161531".into();
    draft.residents[1].phone = "159071134".into();
    draft.phone = "call 5".into();

    let problems = households::draft_problems(&client, &draft, true);
    let at: Vec<(Option<usize>, Field)> = problems.iter().map(|(i, e)| (*i, e.field)).collect();
    assert_eq!(at, vec![(None, Field::Phone), (Some(0), Field::ResidentIdNumber), (Some(1), Field::ResidentPhone)]);
    assert!(problems[1].1.zh.contains("身份证号校验位不符"), "{}", problems[1].1.zh);
    assert!(problems[2].1.zh.contains("手机号应为11位"), "{}", problems[2].1.zh);

    let unsent = client.status().unwrap().unsent;
    assert!(households::file_draft(&client, &draft, NOW).is_err());
    assert_eq!(client.status().unwrap().unsent, unsent, "nothing filed");
}

#[test]
fn a_filed_new_arrival_opens_with_its_tag_first_visit_deadline_and_residents() {
    let (_dir, client) = demo(Role::GridWorker);
    let building = lived_in(&client).building_id;
    let id = households::file_draft(&client, &zhou_family(building), NOW).unwrap();

    let detail = client.household(id, NOW).unwrap();
    assert!(detail.tags.iter().any(|t| t.tag == MustVisitTag::NewArrival && t.since == local_date(NOW)));
    let head = detail.residents.iter().find(|r| r.name == "周建军").unwrap();
    assert_eq!((head.birth_year, head.sex), (1988, Sex::Male), "birth year and sex read from the ID number");

    let html = render(&client, &format!("/households/{id}"), Lang::Zh);
    for text in ["周建军", "吴丽娟", "新迁入", "6单元2201室"] {
        assert!(html.contains(text), "expected {text:?}:\n{html}");
    }
}

#[test]
fn a_resident_who_moved_out_or_died_stays_listed_and_marked() {
    let (_dir, client) = demo(Role::GridWorker);
    let building = lived_in(&client).building_id;
    let id = households::file_draft(&client, &zhou_family(building), NOW).unwrap();
    let wife = client.household(id, NOW).unwrap().residents.into_iter().find(|r| r.name == "吴丽娟").unwrap().id;
    let on = local_date(NOW) - chrono::Duration::days(3);
    client.set_departure(id, wife, Some((DepartureKind::Deceased, on)), "", NOW).unwrap();

    let html = render(&client, &format!("/households/{id}"), Lang::Zh);
    assert!(html.contains("吴丽娟"), "still listed");
    assert!(html.contains(&format!("已故 · {on}")), "{html}");
    let edit = render(&client, &format!("/households/{id}/residents/{wife}"), Lang::Zh);
    assert!(edit.contains("编辑家庭成员") && edit.contains("撤销此记录"), "{edit}");
}

#[test]
fn the_visit_date_is_the_shanghai_date_and_the_save_button_is_not_pinned_over_it() {
    let (_dir, client) = demo(Role::GridWorker);
    let id: HouseholdId = lived_in(&client).id;
    // 2026-11-29 20:00 UTC is 04:00 on 11-30 in Asia/Shanghai.
    let at = chrono::DateTime::parse_from_rfc3339("2026-11-29T20:00:00Z").unwrap().timestamp_millis();
    let html = render_at(&client, &format!("/households/{id}/visit"), Lang::Zh, at);
    assert!(html.contains("走访日期"), "{html}");
    assert!(html.contains(r#"value="2026-11-30""#), "{html}");
    assert!(!html.contains(r#"value="2026-11-29""#));
    assert!(!html.contains(r#"class="sticky-bottom""#), "the save button sits after the last field");

    assert_eq!(households::visit_time("", at).unwrap(), at);
    assert_eq!(households::visit_time("2026-11-30", at).unwrap(), at);
    assert!(households::visit_time("2026-12-01", at).is_err(), "not a day still to come");
    let earlier = households::visit_time("2026-11-28", at).unwrap();
    assert_eq!(local_date(earlier).to_string(), "2026-11-28");
}

#[test]
fn a_supervisor_opening_a_household_sees_no_record_visit_or_edit_buttons() {
    let (_dir, supervisor) = demo(Role::Supervisor);
    let (_worker_dir, worker) = demo(Role::GridWorker);
    // A household of the worker's grid, which the supervisor's area covers too.
    let id = lived_in(&worker).id;
    let html = render(&supervisor, &format!("/households/{id}"), Lang::Zh);
    assert!(html.contains("督导查看：此档案只读"), "{html}");
    for button in [r#"id="record-visit""#, r#"id="edit-household""#, "记录走访", "+ 空巢老人"] {
        assert!(!html.contains(button), "a supervisor must not see {button:?}");
    }
    assert!(!html.contains(&format!("/households/{id}/residents/")), "no resident edit links");
    let list = render(&supervisor, "/households", Lang::Zh);
    assert!(!list.contains("新迁入登记"), "no new-arrival button for a supervisor");
    let visit = render(&supervisor, &format!("/households/{id}/visit"), Lang::Zh);
    assert!(!visit.contains("save-visit"), "the visit form itself is closed to a supervisor");

    // The grid worker sees them on the same file.
    let html = render(&worker, &format!("/households/{id}"), Lang::Zh);
    assert!(html.contains(r#"id="record-visit""#) && html.contains(r#"id="edit-household""#), "{html}");
    assert!(render(&worker, "/households", Lang::Zh).contains("新迁入登记"));
}

#[test]
fn a_move_in_day_still_to_come_is_refused_at_its_field() {
    let (_dir, client) = demo(Role::GridWorker);
    let building = lived_in(&client).building_id;
    let tomorrow = local_date(NOW) + chrono::Duration::days(1);
    let draft = HouseholdDraft { moved_in_on: tomorrow.to_string(), ..zhou_family(building) };
    let problems = households::file_draft(&client, &draft, NOW).unwrap_err();
    assert_eq!(problems[0].1.field, Field::MovedInOn);
    assert_eq!(problems[0].1.zh, "迁入日期不能晚于今天");
}
