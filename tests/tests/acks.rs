//! Compact acks end to end: a real `gridlink-server` on 127.0.0.1, a real client with its
//! encrypted store, and between them an HTTP proxy that can lose a reply, play an older server
//! (it strips the request's `compact_acks` flag, so the real server answers with full acks) or
//! play a hostile one (it damages the compact acks the real server sent). The client must get
//! every outcome right from compact acks, still read full ones, and refuse damaged ones with
//! nothing lost: refused answers leave every change in the outbox, and an honest sync later
//! finds them stored (duplicates).

use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use gridlink_client::{Client, Error, HouseholdFilter, NewVisit};
use gridlink_shared::protocol::{self, AckByte, CompactAcks, Rejection, SyncRequest, SyncResponse};
use gridlink_shared::time::{DAY_MS, now_millis};
use gridlink_shared::{HouseholdId, RejectCode, VisitOutcome};
use gridlink_tests::{Server, enrolled, quick_retries};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

type TestResult = anyhow::Result<()>;

/// What the proxy does to the next sync exchanges.
#[derive(Clone, Copy)]
enum Mode {
    /// Forward both ways unchanged.
    Pass,
    /// Forward the request, then close the connection without the reply (once; then `Pass`).
    LoseReply,
    /// Strip `compact_acks` from the request: the server answers as an older one does.
    OlderServer,
    /// Damage the compact acks of the reply.
    Hostile(fn(&mut CompactAcks)),
}

/// One sync exchange as the real server saw and answered it.
struct Seen {
    request: SyncRequest,
    response: SyncResponse,
}

struct Proxy {
    addr: SocketAddr,
    mode: Arc<Mutex<Mode>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: SocketAddr) -> anyhow::Result<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let mode = Arc::new(Mutex::new(Mode::Pass));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let http = reqwest::Client::new();
        let task = {
            let (mode, seen) = (mode.clone(), seen.clone());
            tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (mode, seen, http) = (mode.clone(), seen.clone(), http.clone());
                    tokio::spawn(async move {
                        if let Err(e) = relay(stream, upstream, &http, &mode, &seen).await {
                            eprintln!("proxy: {e}");
                        }
                    });
                }
            })
        };
        Ok(Proxy { addr, mode, seen, task })
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    /// The last sync exchange the server answered.
    fn last<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(self.seen.lock().unwrap().last().expect("a sync went through"))
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// One HTTP/1.1 request per connection (the reply says `connection: close`).
async fn relay(
    mut stream: TcpStream,
    upstream: SocketAddr,
    http: &reqwest::Client,
    mode: &Mutex<Mode>,
    seen: &Mutex<Vec<Seen>>,
) -> anyhow::Result<()> {
    let mut raw = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let head_end = loop {
        let n = stream.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "connection closed before the request head");
        raw.extend_from_slice(&buf[..n]);
        if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&raw[..head_end]).to_string();
    let mut lines = head.lines();
    let request_line = lines.next().unwrap_or_default().to_string();
    let mut parts = request_line.split_whitespace();
    let (method, path) = (parts.next().unwrap_or("GET").to_string(), parts.next().unwrap_or("/").to_string());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let header = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
    let length: usize = header("content-length").and_then(|v| v.parse().ok()).unwrap_or(0);
    let mut body = raw[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut buf).await?;
        anyhow::ensure!(n > 0, "connection closed mid-body");
        body.extend_from_slice(&buf[..n]);
    }

    let is_sync = path == "/v1/sync";
    let current = *mode.lock().unwrap();
    let mut sent_request = None;
    let mut forward = http.request(method.parse()?, format!("http://{upstream}{path}"));
    for name in ["authorization", "content-type", "accept"] {
        if let Some(value) = header(name) {
            forward = forward.header(name, value);
        }
    }
    if is_sync {
        let plain = if header("content-encoding").is_some_and(|v| v.contains("gzip")) {
            let mut plain = Vec::new();
            flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut plain)?;
            plain
        } else {
            body.clone()
        };
        let mut request: SyncRequest = protocol::decode(&plain)?;
        if matches!(current, Mode::OlderServer) {
            request.compact_acks = false;
        }
        forward = forward.body(protocol::encode(&request));
        sent_request = Some(request);
    } else {
        if let Some(value) = header("content-encoding") {
            forward = forward.header("content-encoding", value);
        }
        forward = forward.body(body);
    }
    let answer = forward.send().await?;
    let status = answer.status();
    let content_type = answer.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
    let mut reply = answer.bytes().await?.to_vec();

    if let (Some(request), true) = (sent_request, status.is_success()) {
        let mut response: SyncResponse = protocol::decode(&reply)?;
        seen.lock().unwrap().push(Seen { request, response: response.clone() });
        match current {
            Mode::LoseReply => {
                *mode.lock().unwrap() = Mode::Pass;
                return Ok(()); // the server stored the push; the phone never hears of it
            }
            Mode::Hostile(damage) => {
                damage(response.compact_acks.as_mut().expect("the real server sent compact acks"));
                reply = protocol::encode(&response);
            }
            Mode::Pass | Mode::OlderServer => {}
        }
    }
    let head = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        reply.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(&reply).await?;
    stream.flush().await?;
    Ok(())
}

fn visit(household: HouseholdId, notes: &str, at: i64) -> NewVisit {
    NewVisit {
        household,
        outcome: VisitOutcome::Met,
        notes: notes.to_string(),
        needs_found: vec![],
        follow_up: None,
        residents_present: vec![],
        at,
    }
}

/// A grid worker's phone enrolled through the proxy, first sync done, quick retries.
async fn phone(server: &Server, proxy: &Proxy, dir: &std::path::Path, index: usize) -> anyhow::Result<Client> {
    let (worker, _) = server.user_with_role("grid-worker", index)?;
    let client = enrolled(server, &proxy.url(), dir, &worker, "acks-phone").await?;
    client.set_retry_policy(quick_retries(2));
    Ok(client)
}

fn households(client: &Client) -> anyhow::Result<Vec<HouseholdId>> {
    Ok(client.households(&HouseholdFilter::default(), now_millis())?.into_iter().map(|h| h.id).collect())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_gets_accepted_duplicate_and_rejected_right_from_compact_acks() -> TestResult {
    let server = Server::start_demo()?;
    let proxy = Proxy::start(server.addr).await?;
    let dir = tempfile::tempdir()?;
    let phone = phone(&server, &proxy, dir.path(), 0).await?;
    assert!(proxy.last(|s| s.request.compact_acks), "the phone asks for compact acks");
    let homes = households(&phone)?;
    let now = now_millis();

    // A reply lost after the server stored both visits: the retry finds them duplicates.
    phone.record_visit(visit(homes[0], "入户走访张桂兰，老人独居，精神尚可", now), now)?;
    phone.record_visit(visit(homes[1], "刘建军家门口堆放杂物，已提醒清理消防通道", now), now)?;
    proxy.set(Mode::LoseReply);
    let report = phone.sync().await?;
    assert_eq!((report.pushed, report.accepted, report.duplicates, report.rejected), (2, 0, 2, 0), "{report:?}");
    assert!(report.retries >= 1);
    assert_eq!(phone.status()?.unsent, 0);
    assert_eq!(proxy.last(|s| s.response.compact_acks.clone().unwrap().status), [AckByte::Duplicate as u8; 2]);

    // One visit from a phone whose clock runs two years ahead: refused, kept aside with its
    // reason; the honest one beside it goes in.
    let ahead = now + 730 * DAY_MS;
    phone.record_visit(visit(homes[2], "孙秀英反映楼道灯不亮，已报物业", now), now)?;
    phone.record_visit(visit(homes[3], "王德福家走访，手机时间错误", ahead), ahead)?;
    let report = phone.sync().await?;
    assert_eq!((report.pushed, report.accepted, report.duplicates, report.rejected), (2, 1, 0, 1), "{report:?}");
    let compact = proxy.last(|s| s.response.compact_acks.clone().unwrap());
    assert_eq!(compact.status, [AckByte::Accepted as u8, AckByte::Rejected as u8]);
    assert!(proxy.last(|s| s.response.acks.is_empty()));
    let status = phone.status()?;
    assert_eq!((status.unsent, status.rejected), (0, 1));
    let kept = phone.rejected_changes()?;
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].doc, homes[3].into());
    assert_eq!(kept[0].code, RejectCode::BadTime);
    assert_eq!(kept[0].message, compact.rejected[0].message, "the server's reason, kept with the change");
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_phone_reads_full_acks_from_an_older_server() -> TestResult {
    let server = Server::start_demo()?;
    let proxy = Proxy::start(server.addr).await?;
    let dir = tempfile::tempdir()?;
    let phone = phone(&server, &proxy, dir.path(), 1).await?;
    proxy.set(Mode::OlderServer);
    let homes = households(&phone)?;
    let now = now_millis();
    let ahead = now + 730 * DAY_MS;
    phone.record_visit(visit(homes[0], "走访陈玉兰，已登记高龄补贴申请", now), now)?;
    phone.record_visit(visit(homes[1], "赵志刚家中无人，留联系卡", ahead), ahead)?;
    let report = phone.sync().await?;
    assert_eq!((report.pushed, report.accepted, report.rejected), (2, 1, 1), "{report:?}");
    proxy.last(|s| {
        assert!(!s.request.compact_acks, "the server saw no flag");
        assert_eq!(s.response.acks.len(), 2, "and answered with full acks");
        assert!(s.response.compact_acks.is_none());
    });
    let status = phone.status()?;
    assert_eq!((status.unsent, status.rejected), (0, 1));
    assert_eq!(phone.rejected_changes()?[0].code, RejectCode::BadTime);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_compact_acks_are_refused_and_nothing_is_lost() -> TestResult {
    let server = Server::start_demo()?;
    let proxy = Proxy::start(server.addr).await?;
    let dir = tempfile::tempdir()?;
    let phone = phone(&server, &proxy, dir.path(), 2).await?;
    let homes = households(&phone)?;
    let now = now_millis();
    phone.record_visit(visit(homes[0], "走访周丽华，孩子入学问题已转社区教育专干", now), now)?;
    phone.record_visit(visit(homes[1], "吴国强家燃气管老化，已联系燃气公司", now), now)?;

    fn reason(index: u32) -> Rejection {
        Rejection { index, code: RejectCode::OutOfScope, message: "不在您的网格".into() }
    }
    type Damage = fn(&mut CompactAcks);
    let damages: [(&str, Damage); 6] = [
        ("sent 3 acks for 2 pushed", |a| a.status.push(AckByte::Accepted as u8)),
        ("sent 1 acks for 2 pushed", |a| {
            a.status.pop();
        }),
        ("unknown status byte 7", |a| a.status[0] = 7),
        ("only 2 were pushed", |a| {
            a.status[0] = AckByte::Rejected as u8;
            a.rejected = vec![reason(0), reason(5)];
        }),
        ("rejected more than once", |a| {
            a.status[0] = AckByte::Rejected as u8;
            a.rejected = vec![reason(0), reason(0)];
        }),
        ("without a reason", |a| a.status[1] = AckByte::Rejected as u8),
    ];
    for (expected, damage) in damages {
        proxy.set(Mode::Hostile(damage));
        match phone.sync().await {
            Err(Error::Protocol(message)) => assert!(message.contains(expected), "{expected}: {message}"),
            other => panic!("{expected}: a damaged answer must be refused, got {other:?}"),
        }
        let status = phone.status()?;
        assert_eq!((status.unsent, status.rejected), (2, 0), "{expected}: both visits still wait in the outbox");
    }

    // The server stored them on the first try; an honest answer says so and empties the outbox.
    proxy.set(Mode::Pass);
    let report = phone.sync().await?;
    assert_eq!((report.pushed, report.duplicates, report.rejected), (2, 2, 0), "{report:?}");
    let status = phone.status()?;
    assert_eq!((status.unsent, status.rejected), (0, 0));
    Ok(())
}
