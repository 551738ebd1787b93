//! Defences from the security review, each on a real socket or with real concurrency:
//! silent, half-sent and idle connections are closed; at the connection cap new connections
//! wait instead of the server running out of file descriptors; graceful shutdown still
//! finishes a request in flight; a burst of concurrent wrong enrolment codes cannot overrun
//! the throttle; and `/healthz` reports a store that fails or is stuck.

mod common;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use common::Harness;
use gridlink_shared::Role;
use gridlink_shared::protocol::{EnrollRequest, EnrollResponse, ErrorCode, ErrorEnvelope};
use gridlink_sync_server::{AppState, Limits, SqliteStore};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::ServiceExt;

/// A server on 127.0.0.1 over an empty store, stopped by `stop`.
struct Server {
    addr: std::net::SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<std::io::Result<()>>,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn start(limits: Limits) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::create(dir.path()).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let state = AppState::new(store).with_limits(limits);
        let task = tokio::spawn(gridlink_sync_server::serve(listener, state, async {
            stopped.await.ok();
        }));
        Server { addr, stop: Some(stop), task, _dir: dir }
    }

    async fn connect(&self) -> TcpStream {
        TcpStream::connect(self.addr).await.unwrap()
    }

    async fn stop(mut self) {
        self.stop.take().unwrap().send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(10), self.task).await.expect("shutdown finishes").unwrap().unwrap();
    }
}

const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

/// Reads until the server closes the connection; panics if it is still open after `limit`.
/// Returns what was read and when the connection closed.
async fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (String, Instant) {
    let mut bytes = Vec::new();
    let result = tokio::time::timeout(limit, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => bytes.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert!(result.is_ok(), "the server kept the connection open for {limit:?}; read so far: {text:?}");
    (text, Instant::now())
}

/// Reads one response with a `content-length` (no chunking) off a keep-alive connection.
async fn read_response(stream: &mut TcpStream) -> String {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map(|v| v.trim().parse().unwrap())
                .unwrap_or(0);
            if bytes.len() >= end + 4 + length {
                return String::from_utf8_lossy(&bytes[..end + 4 + length]).into_owned();
            }
        }
        let n = stream.read(&mut buf).await.unwrap();
        assert!(n > 0, "connection closed mid-response: {:?}", String::from_utf8_lossy(&bytes));
        bytes.extend_from_slice(&buf[..n]);
    }
}

async fn healthz_over_a_new_connection(server: &Server) -> String {
    let mut stream = server.connect().await;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    read_until_closed(&mut stream, Duration::from_secs(5)).await.0
}

#[tokio::test]
async fn silent_and_half_sent_headers_are_cut_off_by_the_header_read_timeout() {
    let timeout = Duration::from_millis(300);
    let server = Server::start(Limits {
        header_read_timeout: timeout,
        idle_timeout: Duration::from_secs(60),
        ..Limits::default()
    })
    .await;

    let started = Instant::now();
    let mut silent = server.connect().await;
    let mut half = server.connect().await;
    half.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: slow").await.unwrap();
    let (text, closed) = read_until_closed(&mut half, Duration::from_secs(5)).await;
    assert!(closed - started >= timeout - Duration::from_millis(50), "closed too early: {:?}", closed - started);
    assert!(!text.contains("200"), "a half-sent request must not be answered: {text}");
    read_until_closed(&mut silent, Duration::from_secs(5)).await;

    // hyper runs the same clock while a keep-alive connection waits for its next request.
    let mut kept = server.connect().await;
    kept.write_all(HEALTHZ).await.unwrap();
    assert!(read_response(&mut kept).await.ends_with("\r\n\r\nok"));
    let answered = Instant::now();
    let (_, closed) = read_until_closed(&mut kept, Duration::from_secs(5)).await;
    assert!(closed - answered >= timeout - Duration::from_millis(50));

    assert!(healthz_over_a_new_connection(&server).await.ends_with("\r\n\r\nok"));
    server.stop().await;
}

#[tokio::test]
async fn keep_alive_serves_several_requests_then_an_idle_connection_is_closed() {
    let idle = Duration::from_millis(400);
    let server =
        Server::start(Limits { header_read_timeout: Duration::from_secs(30), idle_timeout: idle, ..Limits::default() })
            .await;
    let mut stream = server.connect().await;
    for _ in 0..3 {
        stream.write_all(HEALTHZ).await.unwrap();
        let response = read_response(&mut stream).await;
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("\r\n\r\nok"), "{response}");
        // Pauses shorter than the idle timeout keep the connection.
        tokio::time::sleep(idle / 4).await;
    }
    let quiet_since = Instant::now();
    let (text, closed) = read_until_closed(&mut stream, Duration::from_secs(5)).await;
    assert_eq!(text, "", "nothing more is sent on an idle connection");
    assert!(
        closed - quiet_since >= idle - idle / 4 - Duration::from_millis(50),
        "closed after {:?}",
        closed - quiet_since
    );
    server.stop().await;
}

/// A `MakeWriter` that keeps the log in memory.
#[derive(Clone, Default)]
struct Log(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Log {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn at_the_connection_cap_new_connections_wait_for_a_free_slot_and_the_server_stays_up() {
    // Current-thread runtime: the server's tasks log through this thread's subscriber.
    let log = Log::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::WARN)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let header_timeout = Duration::from_secs(3);
    let server = Server::start(Limits {
        max_connections: 8,
        header_read_timeout: header_timeout,
        idle_timeout: Duration::from_secs(60),
        ..Limits::default()
    })
    .await;
    let mut silent = Vec::new();
    for _ in 0..8 {
        silent.push(server.connect().await);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    // The ninth connects (the kernel's backlog takes it) but is not served while 8 are open.
    let mut ninth = server.connect().await;
    ninth.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let mut byte = [0u8; 1];
    let early = tokio::time::timeout(Duration::from_millis(500), ninth.read(&mut byte)).await;
    assert!(early.is_err(), "the ninth connection was served beyond the cap of 8");

    // One silent client leaves: its slot goes to the ninth, well before any header timeout.
    let freed = Instant::now();
    drop(silent.pop());
    let (text, _) = read_until_closed(&mut ninth, Duration::from_secs(10)).await;
    assert!(text.starts_with("HTTP/1.1 200") && text.ends_with("\r\n\r\nok"), "{text}");
    assert!(freed.elapsed() < header_timeout, "served only after {:?}", freed.elapsed());

    // The rest time out, and the server keeps answering.
    for stream in &mut silent {
        read_until_closed(stream, Duration::from_secs(10)).await;
    }
    for _ in 0..20 {
        assert!(healthz_over_a_new_connection(&server).await.ends_with("\r\n\r\nok"));
    }
    server.stop().await;

    let log = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = log.lines().filter(|l| l.contains("connection limit reached")).collect();
    // Hit twice (8 silent, then 7 silent + the ninth), warned once.
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("WARN") && warnings[0].contains("(8 open)"), "{log}");
}

#[tokio::test]
async fn graceful_shutdown_finishes_the_request_in_flight_and_closes_idle_connections() {
    let server = Server::start(Limits::default()).await;
    let mut idle = server.connect().await;
    idle.write_all(HEALTHZ).await.unwrap();
    assert!(read_response(&mut idle).await.ends_with("\r\n\r\nok"));

    // A request whose body is half sent when the shutdown begins.
    let body =
        serde_json::to_vec(&EnrollRequest { code: "AAAA-AAAA".into(), device_name: "李娜的手机".into() }).unwrap();
    let mut in_flight = server.connect().await;
    let head = format!(
        "POST /v1/enroll HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    in_flight.write_all(head.as_bytes()).await.unwrap();
    in_flight.write_all(&body[..10]).await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;

    let Server { addr, stop, task, _dir } = server;
    stop.unwrap().send(()).unwrap();
    // The idle connection is closed at once; the server waits for the other.
    read_until_closed(&mut idle, Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(!task.is_finished(), "the server stopped with a request in flight");
    assert!(TcpStream::connect(addr).await.is_err(), "no new connections during shutdown");

    in_flight.write_all(&body[10..]).await.unwrap();
    let (text, _) = read_until_closed(&mut in_flight, Duration::from_secs(5)).await;
    assert!(text.starts_with("HTTP/1.1 401"), "{text}");
    let envelope: ErrorEnvelope = serde_json::from_str(&text[text.find("\r\n\r\n").unwrap() + 4..]).unwrap();
    assert_eq!(envelope.error.code, ErrorCode::CodeInvalid);
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("shutdown finishes").unwrap().unwrap();
}

async fn enroll(app: &axum::Router, code: &str) -> (StatusCode, Vec<u8>) {
    let body = serde_json::to_vec(&EnrollRequest { code: code.into(), device_name: "赵磊的手机".into() }).unwrap();
    let request =
        Request::post("/v1/enroll").header(header::CONTENT_TYPE, "application/json").body(Body::from(body)).unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    (status, axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec())
}

fn error_code(body: &[u8]) -> ErrorCode {
    serde_json::from_slice::<ErrorEnvelope>(body).unwrap().error.code
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_concurrent_wrong_codes_gets_no_more_guesses_than_the_throttle_allows() {
    const LIMIT: usize = 20;
    let window = Duration::from_secs(5);
    let h =
        Harness::with_limits(Limits { enroll_failures_per_minute: LIMIT, enroll_window: window, ..Limits::default() });
    let worker = h.staff(Role::GridWorker);
    let real = h.admin.new_code(worker.id, gridlink_shared::time::now_millis(), 72).unwrap();

    let started = Instant::now();
    let guesses: Vec<_> = (0..200)
        .map(|i| {
            let app = h.app.clone();
            tokio::spawn(async move { enroll(&app, ["AAAA-AAAA", "BBBB-BBBB", "CCCC-CCCC"][i % 3]).await })
        })
        .collect();
    let (mut wrong, mut throttled) = (0, 0);
    for guess in guesses {
        let (status, body) = guess.await.unwrap();
        match error_code(&body) {
            ErrorCode::CodeInvalid => wrong += 1,
            ErrorCode::TooManyRequests => {
                assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
                throttled += 1;
            }
            other => panic!("unexpected answer {status} {other:?}"),
        }
    }
    assert!(started.elapsed() < window, "the burst took longer than the window; the count would mean nothing");
    assert!(wrong <= LIMIT, "{wrong} wrong codes were checked; the limit is {LIMIT}");
    assert_eq!(wrong + throttled, 200);
    assert!(wrong > 0);

    // The right code waits for the window like everyone else, then works.
    let (status, _) = enroll(&h.app, &real).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    tokio::time::sleep(window + Duration::from_millis(100)).await;
    let (status, body) = enroll(&h.app, &real).await;
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    let enrolled: EnrollResponse = serde_json::from_slice(&body).unwrap();
    assert_eq!(enrolled.principal.user, worker.id);

    // A successful enrolment does not use up the budget: the full allowance of wrong codes
    // is still there, and not one more.
    for _ in 0..LIMIT {
        assert_eq!(error_code(&enroll(&h.app, "DDDD-DDDD").await.1), ErrorCode::CodeInvalid);
    }
    assert_eq!(error_code(&enroll(&h.app, "DDDD-DDDD").await.1), ErrorCode::TooManyRequests);
}

/// A training day: a whole office enrols at once. Attempts being checked hold the budget
/// only until they are decided, so honest enrolments queue behind each other instead of
/// getting 429s, however many more there are than the wrong-code budget.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_honest_enrolments_larger_than_the_budget_all_succeed() {
    const LIMIT: usize = 3;
    let h = Harness::with_limits(Limits { enroll_failures_per_minute: LIMIT, ..Limits::default() });
    let now = gridlink_shared::time::now_millis();
    let workers = h.grid_workers();
    let codes: Vec<String> =
        (0..24).map(|i| h.admin.new_code(workers[i % workers.len()].id, now, 72).unwrap()).collect();
    let burst: Vec<_> = codes
        .into_iter()
        .map(|code| {
            let app = h.app.clone();
            tokio::spawn(async move { enroll(&app, &code).await })
        })
        .collect();
    for attempt in burst {
        let (status, body) = attempt.await.unwrap();
        assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    }
    // The budget of wrong codes is untouched by the burst, and still holds.
    for _ in 0..LIMIT {
        assert_eq!(error_code(&enroll(&h.app, "DDDD-DDDD").await.1), ErrorCode::CodeInvalid);
    }
    assert_eq!(error_code(&enroll(&h.app, "DDDD-DDDD").await.1), ErrorCode::TooManyRequests);
}

async fn healthz(app: &axum::Router) -> (StatusCode, Vec<u8>) {
    let response = app.clone().oneshot(Request::get("/healthz").body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    (status, axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap().to_vec())
}

fn assert_unavailable((status, body): (StatusCode, Vec<u8>)) {
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{}", String::from_utf8_lossy(&body));
    let envelope: ErrorEnvelope = serde_json::from_slice(&body).unwrap();
    assert_eq!(envelope.error.code, ErrorCode::Internal);
    assert!(!envelope.error.message.contains("meta"), "internals never reach the client");
}

#[tokio::test]
async fn healthz_answers_503_while_the_store_is_stuck_and_ok_again_once_it_answers() {
    let budget = Duration::from_millis(300);
    let h = Harness::with_limits(Limits { health_timeout: budget, ..Limits::default() });
    assert_eq!(healthz(&h.app).await, (StatusCode::OK, b"ok".to_vec()));

    // Another process holds the write lock, so an enrolment waits inside the store (up to
    // SQLite's busy timeout) and holds it; the health check cannot get in.
    let locker = rusqlite::Connection::open(h.dir.path().join(gridlink_sync_server::store::DB_FILE)).unwrap();
    locker.execute_batch("BEGIN IMMEDIATE").unwrap();
    let app = h.app.clone();
    let stuck = tokio::spawn(async move { enroll(&app, "AAAA-AAAA").await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let probes: Vec<_> = (0..5)
        .map(|_| {
            let app = h.app.clone();
            tokio::spawn(async move { healthz(&app).await })
        })
        .collect();
    for probe in probes {
        assert_unavailable(probe.await.unwrap());
    }
    assert!(started.elapsed() < budget * 3, "answered only after {:?}", started.elapsed());
    assert!(!stuck.is_finished());

    locker.execute_batch("ROLLBACK").unwrap();
    let (status, body) = stuck.await.unwrap();
    assert_eq!((status, error_code(&body)), (StatusCode::UNAUTHORIZED, ErrorCode::CodeInvalid));
    assert_eq!(healthz(&h.app).await, (StatusCode::OK, b"ok".to_vec()));
}

#[tokio::test]
async fn healthz_answers_503_with_the_envelope_when_the_store_fails() {
    let h = Harness::new();
    // A database that lost its tables (wrong file, botched restore): every read fails.
    let conn = rusqlite::Connection::open(h.dir.path().join(gridlink_sync_server::store::DB_FILE)).unwrap();
    conn.execute_batch("DROP TABLE meta").unwrap();
    assert_unavailable(healthz(&h.app).await);
}
