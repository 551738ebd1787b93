//! Every error status carries the JSON envelope: auth failures, enrolment code failures,
//! unknown routes, wrong methods and media types, malformed, truncated, oversized and
//! badly compressed bodies.

mod common;

use std::io::Write;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::Harness;
use gridlink_shared::Role;
use gridlink_shared::protocol::{self, EnrollRequest, ErrorCode, ErrorEnvelope, SyncResponse};
use gridlink_sync_server::Limits;

fn envelope_of(body: &[u8]) -> ErrorEnvelope {
    serde_json::from_slice(body).unwrap_or_else(|_| panic!("not an error envelope: {}", String::from_utf8_lossy(body)))
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

fn gunzip(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out).unwrap();
    out
}

async fn enroll_with(h: &Harness, code: &str) -> (StatusCode, Vec<u8>) {
    let body = serde_json::to_vec(&EnrollRequest { code: code.into(), device_name: "王芳的手机".into() }).unwrap();
    let request =
        Request::post("/v1/enroll").header(header::CONTENT_TYPE, "application/json").body(Body::from(body)).unwrap();
    let (status, _, body) = h.call(request).await;
    (status, body)
}

#[tokio::test]
async fn auth_failures_use_the_envelope() {
    let h = Harness::new();
    let (status, _, body) = h.call(Request::get("/v1/me").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    insta::assert_snapshot!(String::from_utf8(body).unwrap(), @r#"{"error":{"code":"unauthorized","message":"Missing Authorization: Bearer token"}}"#);

    let request =
        Request::get("/v1/me").header(header::AUTHORIZATION, "Basic dXNlcjpwYXNz").body(Body::empty()).unwrap();
    let (status, _, body) = h.call(request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    insta::assert_snapshot!(String::from_utf8(body).unwrap(), @r#"{"error":{"code":"unauthorized","message":"Authorization must be 'Bearer <token>'"}}"#);

    let (status, envelope) = h.sync_error(&"0".repeat(64), Vec::new()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(envelope.error.code, ErrorCode::Unauthorized);

    let worker = h.staff(Role::GridWorker);
    let phone = h.enroll(&worker).await;
    let request = Request::get("/v1/me")
        .header(header::AUTHORIZATION, format!("bearer {}", phone.token))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = h.call(request).await;
    assert_eq!(status, StatusCode::OK);
    let me: gridlink_shared::protocol::MeResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(me.principal.user, worker.id);
    assert_eq!(me.actor, phone.enrolled.actor);

    h.admin.revoke_device(phone.enrolled.device, gridlink_shared::time::now_millis()).unwrap();
    let request = Request::get("/v1/me")
        .header(header::AUTHORIZATION, format!("Bearer {}", phone.token))
        .body(Body::empty())
        .unwrap();
    let (status, _, body) = h.call(request).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    insta::assert_snapshot!(String::from_utf8(body).unwrap(), @r#"{"error":{"code":"device-revoked","message":"This device was revoked; ask your admin for a new code"}}"#);
}

#[tokio::test]
async fn enrolment_codes_are_one_time_expire_and_tolerate_how_people_type_them() {
    let h = Harness::new();
    let worker = h.staff(Role::GridWorker);
    let now = gridlink_shared::time::now_millis();

    let code = h.admin.new_code(worker.id, now, 72).unwrap();
    let typed = code.replace('-', "").to_lowercase();
    let (status, body) = enroll_with(&h, &typed).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let enrolled: gridlink_shared::protocol::EnrollResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(enrolled.principal.user, worker.id);
    assert_eq!(enrolled.actor.len(), 32);
    assert!(enrolled.token.len() >= 32);

    let (status, body) = enroll_with(&h, &code).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    insta::assert_snapshot!(String::from_utf8(body).unwrap(), @r#"{"error":{"code":"code-used","message":"Enrolment code was already used; ask for a new one"}}"#);

    let stale = h.admin.new_code(worker.id, now, 1).unwrap();
    let hash = gridlink_sync_server::secrets::sha256_hex(
        &gridlink_sync_server::secrets::normalize_enrol_code(&stale).unwrap(),
    );
    h.admin
        .read(|c| {
            Ok(c.execute(
                "UPDATE enrol_codes SET expires_at = ?1 WHERE code_hash = ?2",
                rusqlite::params![now - 1, hash],
            )?)
        })
        .unwrap();
    let (status, body) = enroll_with(&h, &stale).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(envelope_of(&body).error.code, ErrorCode::CodeExpired);

    for unknown in ["ZZZZ-ZZZZ", "not a code", ""] {
        let (status, body) = enroll_with(&h, unknown).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(envelope_of(&body).error.code, ErrorCode::CodeInvalid, "{unknown}");
    }

    // The tokens of the only successful enrolment are stored hashed.
    let stored: String =
        h.admin.read(|c| Ok(c.query_row("SELECT token_hash FROM devices", [], |r| r.get(0))?)).unwrap();
    assert_ne!(stored, enrolled.token);
    assert_eq!(stored, gridlink_sync_server::secrets::sha256_hex(&enrolled.token));
}

#[tokio::test]
async fn routing_method_and_media_type_errors_use_the_envelope() {
    let h = Harness::new();
    let (status, _, body) = h.call(Request::get("/v2/everything").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    insta::assert_snapshot!(String::from_utf8(body).unwrap(), @r#"{"error":{"code":"not-found","message":"No such endpoint"}}"#);

    let (status, _, body) = h.call(Request::delete("/v1/sync").body(Body::empty()).unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    insta::assert_snapshot!(String::from_utf8(body).unwrap(), @r#"{"error":{"code":"bad-request","message":"Method not allowed on this path"}}"#);

    let (status, _, body) = h.call(Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!((status, body.as_slice()), (StatusCode::OK, b"ok".as_slice()));

    let phone = h.enroll(&h.staff(Role::GridWorker)).await;
    let request = Request::post("/v1/sync")
        .header(header::AUTHORIZATION, format!("Bearer {}", phone.token))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{}"))
        .unwrap();
    let (status, _, body) = h.call(request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(envelope_of(&body).error.code, ErrorCode::UnsupportedMediaType);

    let request = Request::post("/v1/enroll").body(Body::from("{}")).unwrap();
    let (status, _, body) = h.call(request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(envelope_of(&body).error.code, ErrorCode::UnsupportedMediaType);

    let request = Request::post("/v1/enroll")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from("{\"code\":"))
        .unwrap();
    let (status, _, body) = h.call(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(envelope_of(&body).error.code, ErrorCode::BadRequest);

    let request = Request::post("/v1/enroll")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(r#"{"code":"ABCD-EFGH","device_name":"   "}"#))
        .unwrap();
    let (status, _, body) = h.call(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(envelope_of(&body).error.message.contains("device_name"));
}

#[tokio::test]
async fn malformed_truncated_and_oversized_sync_bodies_are_refused_without_side_effects() {
    let h = Harness::with_limits(Limits { body_bytes: 64 * 1024, ..Limits::default() });
    let worker = h.staff(Role::GridWorker);
    let mut phone = h.enroll(&worker).await;
    h.sync_all(&mut phone).await;
    let id = *phone
        .docs
        .keys()
        .find(|id| h.demo.households.iter().any(|x| gridlink_shared::DocId::from(x.id) == **id))
        .unwrap();
    let push = phone.edit::<gridlink_shared::HouseholdFile>(id, |x| x.notes = "需要助餐服务".into());
    let good = protocol::encode(&phone.request(vec![push]));
    let changes_before: i64 =
        h.admin.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM changes", [], |r| r.get(0))?)).unwrap();

    for (what, body) in [
        ("garbage", b"\xff\x00garbage".to_vec()),
        ("empty", Vec::new()),
        ("truncated", good[..good.len() / 2].to_vec()),
        ("json instead of cbor", b"{\"protocol\":1}".to_vec()),
        ("wrong shape", protocol::encode(&serde_json::json!({"protocol": 1, "cursors": 5}))),
    ] {
        let (status, envelope) = h.sync_error(&phone.token, body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}");
        assert_eq!(envelope.error.code, ErrorCode::BadRequest, "{what}");
    }

    let (status, envelope) = h.sync_error(&phone.token, vec![0u8; 100 * 1024]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(envelope.error.code, ErrorCode::PayloadTooLarge);

    // A small gzip body that inflates past the limit is refused too.
    let bomb = gzip(&vec![0u8; 1024 * 1024]);
    assert!(bomb.len() < 64 * 1024);
    let request = Request::post("/v1/sync")
        .header(header::AUTHORIZATION, format!("Bearer {}", phone.token))
        .header(header::CONTENT_TYPE, protocol::CONTENT_TYPE)
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(bomb))
        .unwrap();
    let (status, _, body) = h.call(request).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(envelope_of(&body).error.code, ErrorCode::PayloadTooLarge);

    // Broken gzip.
    let request = Request::post("/v1/sync")
        .header(header::AUTHORIZATION, format!("Bearer {}", phone.token))
        .header(header::CONTENT_TYPE, protocol::CONTENT_TYPE)
        .header(header::CONTENT_ENCODING, "gzip")
        .body(Body::from(good[..40].to_vec()))
        .unwrap();
    let (status, _, body) = h.call(request).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(envelope_of(&body).error.code, ErrorCode::BadRequest);

    // An encoding the server does not speak.
    let request = Request::post("/v1/sync")
        .header(header::AUTHORIZATION, format!("Bearer {}", phone.token))
        .header(header::CONTENT_TYPE, protocol::CONTENT_TYPE)
        .header(header::CONTENT_ENCODING, "zstd")
        .body(Body::from(good.clone()))
        .unwrap();
    let (status, _, body) = h.call(request).await;
    assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(envelope_of(&body).error.code, ErrorCode::UnsupportedMediaType);

    let changes_after: i64 =
        h.admin.read(|c| Ok(c.query_row("SELECT COUNT(*) FROM changes", [], |r| r.get(0))?)).unwrap();
    assert_eq!(changes_after, changes_before, "no refused body stored anything");

    // The same request gzip-compressed both ways goes through.
    let request = Request::post("/v1/sync")
        .header(header::AUTHORIZATION, format!("Bearer {}", phone.token))
        .header(header::CONTENT_TYPE, protocol::CONTENT_TYPE)
        .header(header::CONTENT_ENCODING, "gzip")
        .header(header::ACCEPT_ENCODING, "gzip")
        .body(Body::from(gzip(&good)))
        .unwrap();
    let (status, headers, body) = h.call(request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_ENCODING], "gzip");
    assert_eq!(headers[header::CONTENT_TYPE], protocol::CONTENT_TYPE);
    let response: SyncResponse = protocol::decode(&gunzip(&body)).unwrap();
    assert_eq!(response.acks[0].status, gridlink_shared::protocol::AckStatus::Accepted);
}

#[tokio::test]
async fn guessing_enrolment_codes_is_throttled_after_a_few_wrong_ones() {
    let h = Harness::with_limits(Limits { enroll_failures_per_minute: 3, ..Limits::default() });
    let worker = h.staff(Role::GridWorker);
    let real = h.admin.new_code(worker.id, gridlink_shared::time::now_millis(), 72).unwrap();
    for guess in ["AAAA-AAAA", "BBBB-BBBB", "CCCC-CCCC"] {
        let (status, body) = enroll_with(&h, guess).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(envelope_of(&body).error.code, ErrorCode::CodeInvalid);
    }
    // The budget is spent: even the right code waits, so a guesser learns nothing.
    let (status, body) = enroll_with(&h, &real).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let envelope = envelope_of(&body);
    assert_eq!(envelope.error.code, ErrorCode::TooManyRequests);
    assert!(envelope.error.message.contains("try again"));
    // The code itself was not used up by the throttled attempt.
    let unused: i64 = h
        .admin
        .read(|conn| Ok(conn.query_row("SELECT COUNT(*) FROM enrol_codes WHERE used_at IS NULL", [], |r| r.get(0))?))
        .unwrap();
    assert!(unused >= 1);
}
