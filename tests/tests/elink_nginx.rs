//! The residents' e-link of a district: two `gridlink-server serve --database URL
//! --trusted-proxy 127.0.0.1` processes on one PostgreSQL database (a throwaway cluster) behind
//! nginx (round robin, `X-Forwarded-For $proxy_add_x_forwarded_for`, as `docs/deploy.md`
//! section 7 configures it), all on loopback. Residents connect from different loopback
//! addresses (all of 127/8 is local): each has a per-address count of its own, whatever it
//! writes into `X-Forwarded-For` itself, and a double tap that nginx hands to both processes
//! files one case.
//!
//! No timing: every wait is for a process to start.

use gridlink_tests::district::{Backend, Nginx, NginxOptions, ServeProcess};
use std::net::IpAddr;

/// The status lookups one server process allows per client address per window (the e-link's
/// default limit).
const LOOKUPS: usize = 30;

struct Resident {
    client: reqwest::Client,
}

impl Resident {
    /// A browser on loopback address `127.0.0.N`.
    fn at(n: u8) -> Resident {
        let client = reqwest::Client::builder().local_address(IpAddr::from([127, 0, 0, n])).build().unwrap();
        Resident { client }
    }

    /// A status lookup with a wrong pair, sending `forged` as its own `X-Forwarded-For`.
    async fn lookup(&self, link: &str, forged: Option<&str>) -> u16 {
        let mut request =
            self.client.post(format!("{link}/status")).form(&[("reference", "ABCD-EFGH"), ("phone", "13807316688")]);
        if let Some(value) = forged {
            request = request.header("x-forwarded-for", value);
        }
        request.send().await.unwrap().status().as_u16()
    }

    async fn nonce(&self, link: &str) -> String {
        let page = self.client.get(link).send().await.unwrap().text().await.unwrap();
        let start = page.find(r#"name="nonce" value=""#).expect("the form has a nonce") + 20;
        page[start..start + 32].to_string()
    }

    /// Files a request with `nonce`; the reference on the receipt.
    async fn file(&self, link: &str, nonce: &str) -> String {
        let fields = [
            ("category", "elderly-care"),
            ("description", "母亲八十六岁独居，想申请助餐上门。"),
            ("room", "1单元602"),
            ("name", "陈志强"),
            ("phone", "13574185230"),
            ("nonce", nonce),
        ];
        let response = self.client.post(link).form(&fields).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let page = response.text().await.unwrap();
        let start = page.find(r#"id="reference">"#).unwrap_or_else(|| panic!("no receipt: {page}")) + 15;
        page[start..start + 9].to_string()
    }
}

#[test]
fn behind_nginx_each_resident_has_a_limit_of_their_own_and_a_double_tap_is_one_case() {
    let backend = Backend::postgres(Some("small")).unwrap();
    let mut store_args = backend.store_args();
    store_args.extend(["--trusted-proxy".to_string(), "127.0.0.1".to_string()]);
    let servers: Vec<ServeProcess> = (0..2).map(|_| ServeProcess::start(&store_args).unwrap()).collect();
    let nginx = Nginx::start(&servers.iter().map(|s| s.addr).collect::<Vec<_>>(), &NginxOptions::default()).unwrap();
    let roster: serde_json::Value = serde_json::from_str(&backend.admin(&["roster", "--json"]).unwrap()).unwrap();
    let building = roster["streets"][0]["communities"][0]["grids"][0]["buildings"][0]["id"].as_str().unwrap();
    let link = backend.admin(&["building", "link", "--building", building, "--base-url", &nginx.url()]).unwrap();
    let link = link.trim().to_string();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    runtime.block_on(async {
        let (first, neighbour) = (Resident::at(2), Resident::at(3));
        // Round robin: each process counts its own share, 2 × 30 in all. Writing a new
        // address into the header each time changes nothing: nginx appends the real one.
        let mut statuses = Vec::new();
        for i in 0..2 * LOOKUPS + 4 {
            statuses.push(first.lookup(&link, Some(&format!("36.112.8.{}", i % 250))).await);
        }
        assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 2 * LOOKUPS, "{statuses:?}");
        assert!(statuses[2 * LOOKUPS..].iter().all(|s| *s == 429), "{statuses:?}");
        // Behind the same nginx, the neighbour is not held up, even when forging the first
        // resident's address.
        assert_eq!(neighbour.lookup(&link, None).await, 200);
        assert_eq!(neighbour.lookup(&link, Some("127.0.0.2")).await, 200);
        assert_eq!(first.lookup(&link, Some("garbage, 36.112.8.9")).await, 429);

        // A double tap: the same form twice, so nginx hands the posts to both processes.
        let nonce = neighbour.nonce(&link).await;
        let once = neighbour.file(&link, &nonce).await;
        let twice = neighbour.file(&link, &nonce).await;
        assert_eq!(once, twice, "one case, one reference");
    });
    let pg = gridlink_sync_server::store::PgStore::open(backend.database_url().unwrap()).unwrap();
    let filed: i64 = pg
        .read(|c| Ok(c.query_one("SELECT COUNT(*) FROM elink_requests WHERE nonce NOT LIKE 'demo:%'", &[])?.get(0)))
        .unwrap();
    assert_eq!(filed, 1);
    // Both processes served: nginx spread the posts.
    let log = nginx.access_log();
    for server in &servers {
        assert!(log.contains(&server.addr.to_string()), "{} served nothing: {log}", server.addr);
    }
}
