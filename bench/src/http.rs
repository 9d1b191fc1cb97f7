//! Load through the server's own API, as the counter terminal sends it: each client a signed-in clerk on one
//! keep-alive connection, its session cookie and CSRF token on every request.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use reqwest::header::{CONTENT_TYPE, COOKIE, HOST, SET_COOKIE};
use sqlx::PgPool;

use crate::report::Measured;
use crate::seed::{Case, PostcardSlice, SALE_AMOUNT, member_external_id};
use crate::server::PASSWORD;

pub struct Session {
    http: reqwest::Client,
    cookie: String,
    csrf: String,
}

impl Session {
    pub async fn sign_in(url: &str, email: &str) -> anyhow::Result<Self> {
        // One connection per client, kept alive, as a terminal at a counter holds it.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1)
            .tcp_nodelay(true)
            .build()?;
        let response = http
            .post(format!("{url}/api/sign_in"))
            .form(&[("email", email), ("password", PASSWORD)])
            .send()
            .await?;
        if !response.status().is_success() {
            bail!(
                "signing in as {email}: {} {}",
                response.status(),
                response.text().await.unwrap_or_default()
            );
        }
        let cookie = response
            .headers()
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("loyalty_session="))
            .and_then(|v| v.split(';').next())
            .context("no session cookie")?
            .to_owned();
        let session: serde_json::Value = response.json().await?;
        let csrf = session["csrf_token"]
            .as_str()
            .context("no csrf_token")?
            .to_owned();
        Ok(Self { http, cookie, csrf })
    }

    pub async fn post(
        &self,
        url: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Result<reqwest::Response> {
        self.http
            .post(url)
            .header(COOKIE, &self.cookie)
            .form(fields)
            .send()
            .await
    }

    pub async fn get(&self, url: &str) -> reqwest::Result<reqwest::Response> {
        self.http.get(url).header(COOKIE, &self.cookie).send().await
    }
}

/// One clerk per client (client i is clerk-i, as pgbench's client_id i is); sign-ins hash a password, so they
/// are made once for all runs.
pub async fn sign_in_clerks(url: &str, count: usize) -> anyhow::Result<Vec<Session>> {
    let mut sessions = Vec::with_capacity(count);
    for n in 0..count {
        sessions.push(Session::sign_in(url, &format!("clerk-{n}@bench.test")).await?);
    }
    Ok(sessions)
}

pub struct Load {
    pub case: Case,
    pub clients: usize,
    pub duration: Duration,
    pub members: u32,
}

/// A small, fast generator for picking members; each client seeds its own.
struct SplitMix(u64);

impl SplitMix {
    fn below(&mut self, range: (u32, u32)) -> u32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        range.0 + (z % u64::from(range.1 - range.0 + 1)) as u32
    }
}

pub async fn run(
    url: &str,
    sessions: &[Session],
    load: &Load,
    postcards: Option<&PostcardSlice>,
    reward_ids: &[i64],
    owner: &PgPool,
) -> anyhow::Result<Measured> {
    // Row n of bench.postcards is a postcard of program (n - 1) mod programs, and client i a clerk of
    // program i mod programs: each client scans its own program's codes, and redeems its own program's reward.
    let programs = reward_ids.len().max(1);
    let mut codes: Vec<Vec<String>> = vec![Vec::new(); programs];
    if let Some(slice) = postcards {
        let rows: Vec<(i64, String)> = sqlx::query_as(
            "select n, code from bench.postcards where n > $1 and n <= $2 order by n",
        )
        .bind(slice.base)
        .bind(slice.base + slice.len)
        .fetch_all(owner)
        .await?;
        for (n, code) in rows {
            codes[(n - 1) as usize % programs].push(code);
        }
    }
    let codes = Arc::new(codes);
    let next_code: Arc<Vec<AtomicUsize>> =
        Arc::new((0..programs).map(|_| AtomicUsize::new(0)).collect());
    let endpoint_path = match load.case {
        Case::Claim => "/api/scan".to_owned(),
        case => format!("/api/{}", case.endpoint()),
    };
    let range = load.case.member_range(load.members);
    let started = Instant::now();
    let deadline = started + load.duration;

    let address = url
        .strip_prefix("http://")
        .context("the server's URL is http://host:port")?
        .to_owned();
    let mut tasks = tokio::task::JoinSet::new();
    for (index, session) in sessions.iter().enumerate().take(load.clients) {
        let (cookie, csrf) = (session.cookie.clone(), session.csrf.clone());
        let (address, path) = (address.clone(), endpoint_path.clone());
        let codes = codes.clone();
        let next_code = next_code.clone();
        let case = load.case;
        let reward_id = reward_ids
            .get(index % programs)
            .copied()
            .unwrap_or_default();
        tasks.spawn(async move {
            let mut measured = Measured::new();
            let mut line = match Line::open(&address).await {
                Ok(line) => line,
                Err(err) => {
                    measured.error(format!("connecting: {err}"));
                    return measured;
                }
            };
            let mut random = SplitMix(index as u64 + 1);
            while Instant::now() < deadline {
                // Every field is made of letters, digits, dashes and dots: nothing to percent-encode.
                let body = match case {
                    Case::Claim => {
                        let program = index % codes.len();
                        let Some(code) =
                            codes[program].get(next_code[program].fetch_add(1, Ordering::Relaxed))
                        else {
                            measured.note("the run's postcards ran out");
                            break;
                        };
                        format!("csrf={csrf}&code={code}")
                    }
                    Case::SaleMany => format!(
                        "csrf={csrf}&external_id={}&amount={SALE_AMOUNT}&idempotency_key={}",
                        member_external_id(random.below(range)),
                        uuid::Uuid::new_v4()
                    ),
                    Case::RewardMany => format!(
                        "csrf={csrf}&external_id={}&reward_id={reward_id}&idempotency_key={}",
                        member_external_id(random.below(range)),
                        uuid::Uuid::new_v4()
                    ),
                    // Points typed by hand: a manager's adjustment, with its reason.
                    _ => format!(
                        "csrf={csrf}&external_id={}&points=1&note=bench&idempotency_key={}",
                        member_external_id(random.below(range)),
                        uuid::Uuid::new_v4()
                    ),
                };
                let sent = Instant::now();
                match line.post(&address, &path, &cookie, body).await {
                    Ok(()) => measured.record(sent.elapsed()),
                    Err(err) => {
                        measured.error(err);
                        // A refused request leaves the connection usable; a broken one is opened again.
                        if line.is_closed() {
                            match Line::open(&address).await {
                                Ok(fresh) => line = fresh,
                                Err(err) => {
                                    measured.error(format!("reconnecting: {err}"));
                                    break;
                                }
                            }
                        }
                    }
                }
            }
            measured
        });
    }
    let mut total = Measured::new();
    while let Some(measured) = tasks.join_next().await {
        total.merge(measured?);
    }
    total.elapsed = started.elapsed();
    Ok(total)
}

/// One client's keep-alive HTTP/1.1 connection to the server.
struct Line {
    sender: hyper::client::conn::http1::SendRequest<Full<Bytes>>,
}

impl Line {
    async fn open(address: &str) -> anyhow::Result<Self> {
        let stream = tokio::net::TcpStream::connect(address).await?;
        stream.set_nodelay(true)?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
        tokio::spawn(connection);
        Ok(Self { sender })
    }

    fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// Posts a form and reads the whole answer: `Err` with the status and body for anything but a success.
    async fn post(
        &mut self,
        host: &str,
        path: &str,
        cookie: &str,
        form: String,
    ) -> Result<(), String> {
        let request = hyper::Request::post(path)
            .header(HOST, host)
            .header(COOKIE, cookie)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(form)))
            .map_err(|e| e.to_string())?;
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("{status} {}", String::from_utf8_lossy(&body)))
        }
    }
}
