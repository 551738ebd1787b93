//! The server on a real socket (127.0.0.1, port 0) with a real HTTP client: gzip both ways,
//! a stalled upload cut off by the request timeout, graceful shutdown.

mod common;

use std::time::Duration;

use common::{DEMO_NOW, DEMO_SEED, Device};
use gridlink_shared::demo::{self, DemoSize};
use gridlink_shared::protocol::{
    self, AckStatus, EnrollRequest, EnrollResponse, ErrorCode, ErrorEnvelope, SyncResponse,
};
use gridlink_shared::{HouseholdFile, Role};
use gridlink_sync_server::{AppState, Limits, SqliteStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn a_phone_enrols_and_syncs_over_real_http_with_gzip_and_the_server_shuts_down_gracefully() {
    let dir = tempfile::tempdir().unwrap();
    let admin = SqliteStore::create(dir.path()).unwrap();
    admin.load_demo(DemoSize::Small, DEMO_SEED, DEMO_NOW).unwrap();
    let data = demo::generate(DemoSize::Small, DEMO_SEED, DEMO_NOW);
    let worker = data.staff_with_role(Role::GridWorker).next().unwrap().clone();

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let limits = Limits { request_timeout: Duration::from_millis(500), ..Limits::default() };
    let state = AppState::new(SqliteStore::open(dir.path()).unwrap()).with_limits(limits);
    let server = tokio::spawn(gridlink_sync_server::serve(listener, state, async {
        stopped.await.ok();
    }));

    let http = reqwest::Client::new();
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().text().await.unwrap(), "ok");
    let code = admin.new_code(worker.id, gridlink_shared::time::now_millis(), 72).unwrap();
    let enrolled: EnrollResponse = http
        .post(format!("{base}/v1/enroll"))
        .json(&EnrollRequest { code, device_name: "张伟的手机".into() })
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut phone = Device::new(enrolled);

    let sync = |body: Vec<u8>, token: String| {
        let http = http.clone();
        let url = format!("{base}/v1/sync");
        async move {
            let response = http
                .post(url)
                .bearer_auth(token)
                .header("content-type", protocol::CONTENT_TYPE)
                .body(body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            // reqwest asked for gzip and inflated the reply; the header is gone once it has.
            protocol::decode::<SyncResponse>(&response.bytes().await.unwrap()).unwrap()
        }
    };
    loop {
        let request = phone.request(Vec::new());
        let response = sync(protocol::encode(&request), phone.token.clone()).await;
        protocol::check_page(&request.cursors, &response).unwrap();
        phone.apply(&response);
        if !response.more {
            break;
        }
    }
    assert!(!phone.docs.is_empty());

    // The compressed size on the wire, read without reqwest's automatic inflation.
    let raw = reqwest::Client::builder().no_gzip().build().unwrap();
    let first_sync = protocol::encode(&Device::new(phone.enrolled.clone()).request(Vec::new()));
    let response = raw
        .post(format!("{base}/v1/sync"))
        .bearer_auth(&phone.token)
        .header("content-type", protocol::CONTENT_TYPE)
        .header("accept-encoding", "gzip")
        .body(first_sync)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["content-encoding"], "gzip");

    let id = *phone
        .docs
        .keys()
        .find(|id| data.households.iter().any(|x| gridlink_shared::DocId::from(x.id) == **id))
        .unwrap();
    let push = phone.edit::<HouseholdFile>(id, |x| x.notes = "已联系社区医生上门".into());
    let response = sync(protocol::encode(&phone.request(vec![push])), phone.token.clone()).await;
    assert_eq!(response.acks[0].status, AckStatus::Accepted);

    // A client that announces a body and stalls is cut off by the timeout, with the envelope.
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://")).await.unwrap();
    let head = format!(
        "POST /v1/sync HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/cbor\r\nContent-Length: 1000\r\n\r\n",
        phone.token
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(&[0xa1; 10]).await.unwrap();
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    while !reply.windows(4).any(|w| w == b"\r\n\r\n") || !reply.ends_with(b"}}") {
        let n = stream.read(&mut buf).await.unwrap();
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&reply);
    assert!(text.starts_with("HTTP/1.1 408"), "{text}");
    let body = &text[text.find("\r\n\r\n").unwrap() + 4..];
    let envelope: ErrorEnvelope = serde_json::from_str(body).unwrap();
    assert_eq!(envelope.error.code, ErrorCode::Timeout);

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
    assert!(http.get(format!("{base}/healthz")).send().await.is_err(), "the listener is closed after shutdown");
}
