//! HTTPS without a reverse proxy: the real binary with `serve --tls-cert --tls-key` (a CA
//! and a server certificate for 127.0.0.1 and localhost made with rcgen) enrols and syncs a
//! client that trusts the CA, refuses one that does not, closes plain HTTP cleanly, and
//! refuses bad certificate files before it listens; in-process, a client that never finishes
//! its handshake loses its connection (and its slot under the cap) after the time limit.

mod binary;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use binary::{add_worker, init_demo, serve};
use gridlink_shared::protocol::{self, EnrollRequest, EnrollResponse, PROTOCOL_VERSION, SyncRequest, SyncResponse};
use gridlink_sync_server::{AppState, Limits, SqliteStore};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A CA, and a server certificate it signed for 127.0.0.1 and localhost, as PEM files.
struct Pki {
    ca_pem: String,
    cert: PathBuf,
    key: PathBuf,
}

fn make_pki(dir: &Path, name: &str) -> Pki {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.distinguished_name.push(DnType::CommonName, format!("{name} test CA"));
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);

    let server_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    params.distinguished_name.push(DnType::CommonName, "gridlink test server");
    let server_cert = params.signed_by(&server_key, &issuer).unwrap();

    let cert = dir.join(format!("{name}-cert.pem"));
    let key = dir.join(format!("{name}-key.pem"));
    std::fs::write(&cert, server_cert.pem()).unwrap();
    std::fs::write(&key, server_key.serialize_pem()).unwrap();
    Pki { ca_pem: ca_cert.pem(), cert, key }
}

fn trusting(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn empty_sync() -> Vec<u8> {
    protocol::encode(&SyncRequest {
        protocol: PROTOCOL_VERSION,
        cursors: Default::default(),
        changes: Vec::new(),
        page_bytes: None,
        repair: Vec::new(),
        reference_version: None,
        device_time: 0,
        health: None,
        verify: Vec::new(),
        compact_acks: false,
    })
}

/// Reads until the server closes the connection (or `limit` passes); what it sent.
async fn read_until_closed(stream: &mut tokio::net::TcpStream, limit: Duration) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.checked_duration_since(Instant::now())?;
        match tokio::time::timeout(left, stream.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(got),
            Ok(Ok(n)) => got.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn https_enrols_and_syncs_a_client_that_trusts_the_ca_and_plain_http_to_the_port_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let grids = init_demo(&data);
    let (_, code) = add_worker(&data, "陈晓燕", &grids[0]);
    let pki = make_pki(dir.path(), "server");
    let server =
        serve(&data, &["--tls-cert", pki.cert.to_str().unwrap(), "--tls-key", pki.key.to_str().unwrap()]).await;
    let base = server.base.clone();
    assert!(base.starts_with("https://127.0.0.1:"), "{base}");
    let port = base.rsplit(':').next().unwrap().to_string();
    let http = trusting(&pki.ca_pem);

    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().text().await.unwrap(), "ok");
    let enrolled: EnrollResponse = http
        .post(format!("{base}/v1/enroll"))
        .json(&EnrollRequest { code, device_name: "陈晓燕的手机".into() })
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // Through the name on the certificate too.
    let response = http
        .post(format!("https://localhost:{port}/v1/sync"))
        .bearer_auth(&enrolled.token)
        .header("content-type", protocol::CONTENT_TYPE)
        .body(empty_sync())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let page: SyncResponse = protocol::decode(&response.bytes().await.unwrap()).unwrap();
    assert!(!page.items.is_empty(), "the worker's grid arrives over TLS");

    // Over TLS the console's cookies are Secure: a browser never sends them over plain HTTP.
    let login = http.get(format!("{base}/console/login")).send().await.unwrap();
    let cookies: Vec<&str> = login.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap()).collect();
    assert!(!cookies.is_empty());
    assert!(cookies.iter().all(|c| c.ends_with("; Secure") && c.contains("HttpOnly")), "{cookies:?}");

    // A client that does not trust the CA refuses the server.
    let stranger = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let error = stranger.get(format!("{base}/healthz")).send().await.unwrap_err();
    assert!(error.is_connect(), "{error:?}");
    // Nor does one that trusts another CA.
    let other = make_pki(dir.path(), "other");
    assert!(trusting(&other.ca_pem).get(format!("{base}/healthz")).send().await.is_err());

    // Plain HTTP to the TLS port: no HTTP answer, the connection is closed promptly.
    let plain = reqwest::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
    let started = Instant::now();
    assert!(plain.get(format!("http://127.0.0.1:{port}/healthz")).send().await.is_err());
    assert!(started.elapsed() < Duration::from_secs(10));
    let mut raw = tokio::net::TcpStream::connect(format!("127.0.0.1:{port}")).await.unwrap();
    raw.write_all(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await.unwrap();
    let answer = read_until_closed(&mut raw, Duration::from_secs(10)).await.expect("the server closes the connection");
    assert!(!String::from_utf8_lossy(&answer).contains("HTTP/1.1"), "{answer:?}");

    // And the server still serves HTTPS afterwards.
    assert_eq!(http.get(format!("{base}/healthz")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_handshake_loses_its_connection_and_slot() {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::create(dir.path()).unwrap();
    let pki = make_pki(dir.path(), "server");
    let tls = gridlink_sync_server::tls::load(&pki.cert, &pki.key).unwrap();
    // One connection at a time: while the stalled client holds it, nobody else is served.
    let limits = Limits { max_connections: 1, tls_handshake_timeout: Duration::from_millis(500), ..Limits::default() };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(gridlink_sync_server::serve_tls(
        listener,
        AppState::new(store).with_limits(limits),
        tls,
        async move {
            let _ = stopped.await;
        },
    ));

    // Half a TLS record header, then silence.
    let mut stalled = tokio::net::TcpStream::connect(addr).await.unwrap();
    stalled.write_all(&[0x16, 0x03, 0x01]).await.unwrap();
    let started = Instant::now();
    // Meanwhile an honest client waits for the slot, and is served once the stalled one is cut.
    let honest = tokio::spawn({
        let client = trusting(&pki.ca_pem);
        async move {
            let response = client.get(format!("https://127.0.0.1:{}/healthz", addr.port())).send().await.unwrap();
            (response.status().as_u16(), Instant::now())
        }
    });
    assert!(read_until_closed(&mut stalled, Duration::from_secs(10)).await.is_some(), "closed, not held");
    let cut_after = started.elapsed();
    assert!(cut_after >= Duration::from_millis(400), "cut only after the limit: {cut_after:?}");
    assert!(cut_after < Duration::from_secs(5), "{cut_after:?}");
    let (status, served_at) = honest.await.unwrap();
    assert_eq!(status, 200);
    assert!(served_at.duration_since(started) >= Duration::from_millis(400), "the honest client waited for the slot");

    // A client that connects and sends nothing at all is cut the same way.
    let mut silent = tokio::net::TcpStream::connect(addr).await.unwrap();
    let started = Instant::now();
    assert!(read_until_closed(&mut silent, Duration::from_secs(10)).await.is_some());
    assert!(started.elapsed() < Duration::from_secs(5));

    stop.send(()).unwrap();
    server.await.unwrap().unwrap();
}

#[test]
fn missing_unreadable_or_mismatched_certificate_files_are_refused_before_listening() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    binary::ok(&data, &["init"]);
    let pki = make_pki(dir.path(), "server");
    let other = make_pki(dir.path(), "other");
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "this is not a certificate\n").unwrap();
    let missing = dir.path().join("missing.pem");
    let path = |p: &Path| p.to_str().unwrap().to_string();
    let serve_with = |cert: &Path, key: &Path| {
        let out = binary::run(
            &data,
            &["serve", "--listen", "127.0.0.1:0", "--tls-cert", &path(cert), "--tls-key", &path(key)],
        );
        assert!(!out.status.success());
        assert!(!String::from_utf8_lossy(&out.stdout).contains("listening"), "nothing listens");
        String::from_utf8(out.stderr).unwrap()
    };

    let stderr = serve_with(&missing, &pki.key);
    assert!(stderr.contains("cannot read the TLS certificate") && stderr.contains("missing.pem"), "{stderr}");
    let stderr = serve_with(&pki.cert, &missing);
    assert!(stderr.contains("cannot read the TLS key") && stderr.contains("missing.pem"), "{stderr}");
    let stderr = serve_with(&garbage, &pki.key);
    assert!(stderr.contains("holds no PEM certificate"), "{stderr}");
    let stderr = serve_with(&pki.cert, &garbage);
    assert!(stderr.contains("holds no usable private key"), "{stderr}");
    let stderr = serve_with(&pki.cert, &pki.cert);
    assert!(stderr.contains("holds no usable private key"), "a certificate given as the key: {stderr}");
    let stderr = serve_with(&pki.cert, &other.key);
    assert!(stderr.contains("do not belong together"), "{stderr}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Root reads any file whatever its mode; only a directory is unreadable as a file then.
        let stderr = serve_with(dir.path(), &pki.key);
        assert!(stderr.contains("cannot read the TLS certificate"), "{stderr}");
        let locked = dir.path().join("locked-key.pem");
        std::fs::copy(&pki.key, &locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o000)).unwrap();
        if std::fs::read(&locked).is_err() {
            assert!(serve_with(&pki.cert, &locked).contains("cannot read the TLS key"));
        }
    }

    let out = binary::run(&data, &["serve", "--listen", "127.0.0.1:0", "--tls-cert", &path(&pki.cert)]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--tls-key"));
}
