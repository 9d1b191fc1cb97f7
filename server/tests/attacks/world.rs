//! Two programs in one database, with their staff signed in, and how a request from the table is sent and its
//! effect on the data read.

use loyalty_core::LoyaltyError;
use reqwest::StatusCode;
use reqwest::header::COOKIE;
use server::testkit::{ApiClient, Credentials, TestDb, TestServer};
use uuid::Uuid;

use crate::table::{Access, Case, Fields, Targets};

/// An HTTP client that shows redirects rather than following them.
pub(crate) fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// What a request carries as its CSRF token.
#[derive(Debug, Clone)]
pub(crate) enum Csrf {
    /// The session's own.
    Session,
    /// No `csrf` field at all.
    Absent,
    Given(String),
}

/// Signs `who` in with a client that shows redirects.
pub(crate) async fn sign_in(server: &TestServer, who: &Credentials) -> ApiClient {
    ApiClient::sign_in_using(http(), &server.url, who).await
}

/// The table's requests, as a signed-in client (or a stranger) sends them.
pub(crate) trait Attacker {
    fn request(&self, case: &Case) -> reqwest::RequestBuilder;
    async fn send(&self, case: &Case, fields: &Fields, csrf: &Csrf) -> (StatusCode, String);
}

impl Attacker for ApiClient {
    fn request(&self, case: &Case) -> reqwest::RequestBuilder {
        let url = format!("{}/api/{}", self.url, case.endpoint);
        let request = if case.get {
            self.http.get(url)
        } else {
            self.http.post(url)
        };
        // Sign-in with a session's cookie would end that session: it is called as a stranger.
        if case.access == Access::Anyone {
            request
        } else {
            request.header(COOKIE, &self.cookie)
        }
    }

    async fn send(&self, case: &Case, fields: &Fields, csrf: &Csrf) -> (StatusCode, String) {
        let mut all: Vec<(&str, String)> = Vec::new();
        match csrf {
            _ if !case.changes => {}
            Csrf::Session => all.push(("csrf", self.csrf.clone())),
            Csrf::Absent => {}
            Csrf::Given(token) => all.push(("csrf", token.clone())),
        }
        all.extend(fields.iter().cloned());
        let request = if case.get {
            let query = serde_urlencoded::to_string(&all).unwrap();
            let url = format!("{}/api/{}?{query}", self.url, case.endpoint);
            self.http.get(url).header(COOKIE, &self.cookie)
        } else {
            self.request(case).form(&all)
        };
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.text().await.unwrap())
    }
}

/// Every row of the database, or of one program, hashed table by table: what "nothing was written" compares.
/// Read from the catalog, so tables added later are covered too.
pub(crate) async fn fingerprint(db: &TestDb, program: Option<Uuid>) -> Vec<(String, String)> {
    let tables: Vec<(String, bool)> = sqlx::query_as(
        "select c.relname::text,
                exists (select 1 from pg_catalog.pg_attribute a
                         where a.attrelid = c.oid and a.attname = 'program_id' and not a.attisdropped)
           from pg_catalog.pg_class c
           join pg_catalog.pg_namespace n on n.oid = c.relnamespace
          where n.nspname = 'public' and c.relkind in ('r', 'p')
            -- Failed sign-ins and scans of unknown codes are counted on purpose; migrations are not data.
            and c.relname not in ('sign_in_failures', 'scan_misses', '_sqlx_migrations')
          order by 1",
    )
    .fetch_all(&db.owner)
    .await
    .unwrap();
    let selects: Vec<String> = tables
        .iter()
        .filter(|(table, keyed)| program.is_none() || *keyed || table == "programs")
        .map(|(table, _)| {
            // A session's last_seen_at moves on its own, once a minute of use.
            let row = if table == "staff_sessions" {
                "(x.program_id, x.token_hash, x.staff_id, x.csrf_token, x.created_at)::text"
            } else {
                "x::text"
            };
            let filter = match (program, table.as_str()) {
                (None, _) => "",
                (Some(_), "programs") => "where x.id = $1",
                (Some(_), _) => "where x.program_id = $1",
            };
            format!(
                "select '{table}'::text, md5(coalesce(string_agg({row}, '|' order by {row}), '')) \
                 from public.\"{table}\" x {filter}"
            )
        })
        .collect();
    let sql = selects.join(" union all ");
    let query = sqlx::query_as(sqlx::AssertSqlSafe(sql));
    let query = match program {
        Some(program) => query.bind(program),
        None => query,
    };
    query.fetch_all(&db.owner).await.unwrap()
}

/// Two programs in one database: ours (the server's, with its clerk and manager) and a rival's.
pub(crate) struct World {
    pub(crate) server: TestServer,
    pub(crate) rival: Uuid,
    pub(crate) ours: Targets,
    pub(crate) theirs: Targets,
    /// Text of the rival's that must never appear in an answer to our staff.
    pub(crate) secrets: Vec<String>,
    /// A live session of the rival's clerk.
    pub(crate) rival_clerk: ApiClient,
}

async fn rpc(owner: &sqlx::PgPool, sql: &str, program: Uuid, arg: &str) -> serde_json::Value {
    let answer: serde_json::Value = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.to_owned()))
        .bind(program)
        .bind(arg)
        .fetch_one(owner)
        .await
        .unwrap();
    assert_eq!(answer["success"], true, "{sql}: {answer}");
    answer
}

/// A program's data: a member with a ledger, a postcard, a claimed one, a transaction.
async fn targets(
    owner: &sqlx::PgPool,
    program: Uuid,
    staff_email: &str,
    (opening, earned, note): (i64, i64, &str),
) -> Targets {
    let manager: Uuid =
        sqlx::query_scalar("select id from staff where program_id = $1 and email = $2")
            .bind(program)
            .bind(staff_email)
            .fetch_one(owner)
            .await
            .unwrap();
    let batch: serde_json::Value =
        sqlx::query_scalar("select public.create_claim_code_batch($1, 'Mailing', 3, $2)")
            .bind(program)
            .bind(manager)
            .fetch_one(owner)
            .await
            .unwrap();
    assert_eq!(batch["success"], true, "{batch}");
    let member = server::testkit::member_of(owner, program, opening).await;
    let earn = rpc(
        owner,
        &format!(
            "select public.process_membership_transaction($1, $2, {earned}, 'EARN', '{note}')"
        ),
        program,
        &member,
    )
    .await;
    let claimed_postcard = server::testkit::postcard_of(owner, program).await;
    rpc(
        owner,
        "select public.process_claim_attempt($2, $1)",
        program,
        &claimed_postcard,
    )
    .await;
    let pass_token = sqlx::query_scalar(
        "select pass_token from passes_master where program_id = $1 and external_id = $2",
    )
    .bind(program)
    .bind(&member)
    .fetch_one(owner)
    .await
    .unwrap();
    let reward = rpc(
        owner,
        &format!("select public.save_reward($1, '{manager}', null, $2, 40, 100)"),
        program,
        &format!("{note} reward"),
    )
    .await;
    let promotion = rpc(
        owner,
        &format!("select public.save_promotion($1, '{manager}', null, $2, 300)"),
        program,
        &format!("{note} promotion"),
    )
    .await;
    // The member's phone number, kept as the server keeps it: a digest under its key, and a hint.
    let contact = format!("+33 6 {:08}", opening % 100_000_000);
    let phone = loyalty_core::Contact::parse(&contact, "33").unwrap();
    let digest = server::testkit::contact_key().digest(program, &phone);
    let kept: serde_json::Value =
        sqlx::query_scalar("select public.set_member_contact($1, $2, 'phone', $3, $4)")
            .bind(program)
            .bind(&member)
            .bind(digest)
            .bind(phone.hint())
            .fetch_one(owner)
            .await
            .unwrap();
    assert_eq!(kept["success"], true, "{kept}");
    Targets {
        contact,
        promotion_id: promotion["promotion_id"].as_i64().unwrap(),
        reward_id: reward["reward_id"].as_i64().unwrap(),
        batch_id: batch["data"]["id"].as_str().unwrap().parse().unwrap(),
        pass_token,
        member,
        postcard: server::testkit::postcard_of(owner, program).await,
        claimed_postcard,
        transaction_id: earn["transaction_id"].as_i64().unwrap(),
        staff_email: staff_email.to_owned(),
        staff_id: manager,
    }
}

pub(crate) async fn world() -> World {
    use loyalty_core::wire::Role;
    let server = TestServer::start().await;
    let owner = server.db.owner.clone();
    let rival = server::testkit::new_program(&owner, "Rival Program Zq").await;
    let rival_clerk = Credentials {
        email: "clerk@rival.example".into(),
        password: "rival-clerk-password".into(),
    };
    for (who, name, role) in [
        (&rival_clerk, "Rival Clerk Qx", Role::Clerk),
        (
            &Credentials {
                email: "manager@rival.example".into(),
                password: "rival-manager-password".into(),
            },
            "Rival Manager Wv",
            Role::Manager,
        ),
    ] {
        app::auth::db::create_staff(&owner, rival, &who.email, name, role, &who.password)
            .await
            .unwrap();
    }
    let theirs = targets(
        &owner,
        rival,
        "manager@rival.example",
        (987_654, 999_999, "rival-secret-note-7Q"),
    )
    .await;
    let ours = targets(
        &owner,
        server.db.program_id,
        &server.manager.email,
        (100, 20, "our note"),
    )
    .await;
    let claimed_pass: String = sqlx::query_scalar(
        "select m.external_id from claim_codes c
           join passes_master m on m.program_id = c.program_id and m.id = c.pass_id
          where c.program_id = $1 and c.code = $2",
    )
    .bind(rival)
    .bind(&theirs.claimed_postcard)
    .fetch_one(&owner)
    .await
    .unwrap();
    let batch_codes: Vec<String> =
        sqlx::query_scalar("select code from claim_codes where program_id = $1 and batch_id = $2")
            .bind(rival)
            .bind(theirs.batch_id)
            .fetch_all(&owner)
            .await
            .unwrap();
    assert_eq!(batch_codes.len(), 3);
    let mut secrets = vec![
        "Rival Program Zq".to_owned(),
        "Rival Clerk Qx".to_owned(),
        "Rival Manager Wv".to_owned(),
        "clerk@rival.example".to_owned(),
        "manager@rival.example".to_owned(),
        "rival-secret-note-7Q".to_owned(),
        "rival-secret-note-7Q reward".to_owned(),
        "rival-secret-note-7Q promotion".to_owned(),
        // The rival member's balance, 987,654 + 999,999.
        "1987653".to_owned(),
        theirs.member.clone(),
        theirs.postcard.clone(),
        theirs.claimed_postcard.clone(),
        theirs.pass_token.clone(),
        claimed_pass,
    ];
    secrets.extend(batch_codes);
    let rival_clerk = sign_in(&server, &rival_clerk).await;
    World {
        server,
        rival,
        ours,
        theirs,
        secrets,
        rival_clerk,
    }
}

impl World {
    pub(crate) fn staff(&self) -> [(&'static str, &Credentials); 2] {
        [
            ("clerk", &self.server.clerk),
            ("manager", &self.server.manager),
        ]
    }

    /// The rival's secrets in `body` that the request did not itself send.
    pub(crate) fn leaked(&self, body: &str, sent: &Fields) -> Vec<&String> {
        self.secrets
            .iter()
            .filter(|s| {
                body.contains(s.as_str()) && !sent.iter().any(|(_, v)| v.contains(s.as_str()))
            })
            .collect()
    }
}

pub(crate) fn error_of(status: StatusCode, body: &str, what: &str) -> LoyaltyError {
    let err: LoyaltyError = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{what}: {status} {body:?} is not the domain's error: {e}"));
    assert_eq!(status.as_u16(), err.http_status(), "{what}: {body}");
    err
}
