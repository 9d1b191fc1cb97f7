//! Attacks over real HTTP, driven from one table of every API endpoint: staff of one program aiming at
//! another program's data, state changes without the session's CSRF token, and garbage bodies.

use std::collections::BTreeSet;

use loyalty_core::LoyaltyError;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, COOKIE, ORIGIN};
use server::testkit::{ApiClient, Credentials, TestDb, TestServer};
use uuid::Uuid;

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Access {
    /// No session needed (sign-in).
    Anyone,
    Staff,
    Manager,
}

/// What a signed-in staff member gets when a request names another program's data.
#[derive(Debug, Clone, Copy)]
enum Theirs {
    /// Refused with this error code.
    Refused(&'static str),
    /// Answered from the caller's own program: the request has no way to name another program.
    OwnProgramOnly,
}

/// One program's data that a request can name.
struct Targets {
    /// A member pass with points and ledger rows.
    member: String,
    /// An unclaimed postcard.
    postcard: String,
    /// A postcard already claimed.
    claimed_postcard: String,
    /// A ledger entry.
    transaction_id: i64,
    /// A manager's email.
    staff_email: String,
    /// The same manager's id.
    staff_id: Uuid,
    /// A batch of postcards.
    batch_id: Uuid,
    /// The member's pass token, the key of their public pass page.
    pass_token: String,
}

type Fields = Vec<(&'static str, String)>;

/// One row of the attack table: an endpoint and a request to it.
struct Case {
    /// The path under /api/.
    endpoint: &'static str,
    /// A GET (the CSV download) rather than a server function's POST.
    get: bool,
    access: Access,
    /// Changes something, so it must carry the session's CSRF token.
    changes: bool,
    /// The request's fields, aimed at one program's data.
    fields: fn(&Targets) -> Fields,
    theirs: Theirs,
}

fn none(_: &Targets) -> Fields {
    Vec::new()
}

/// Every endpoint under /api/: server functions (`endpoint = "..."` in app/src) and the routes of
/// server/src/lib.rs. `every_api_endpoint_is_in_the_attack_table` keeps this list whole.
fn cases() -> Vec<Case> {
    use Access::*;
    use Theirs::*;
    vec![
        // Sign-in is refused cross-site by its Origin check (api.rs); no session, so no program to cross.
        Case {
            endpoint: "sign_in",
            get: false,
            access: Anyone,
            changes: false,
            fields: |t| {
                vec![
                    ("email", t.staff_email.clone()),
                    ("password", "not-their-password".into()),
                ]
            },
            theirs: Refused("BAD_CREDENTIALS"),
        },
        Case {
            endpoint: "me",
            get: false,
            access: Staff,
            changes: false,
            fields: none,
            theirs: OwnProgramOnly,
        },
        Case {
            endpoint: "member",
            get: false,
            access: Staff,
            changes: false,
            fields: |t| vec![("external_id", t.member.clone())],
            theirs: Refused("MEMBER_NOT_FOUND"),
        },
        Case {
            endpoint: "member_page",
            get: false,
            access: Staff,
            changes: false,
            fields: |t| vec![("external_id", t.member.clone())],
            theirs: Refused("MEMBER_NOT_FOUND"),
        },
        Case {
            endpoint: "scan",
            get: false,
            access: Staff,
            changes: true,
            fields: |t| vec![("code", t.postcard.clone())],
            theirs: Refused("INVALID_CODE"),
        },
        // Not ALREADY_CLAIMED, which would tell that the code exists elsewhere.
        Case {
            endpoint: "scan",
            get: false,
            access: Staff,
            changes: true,
            fields: |t| vec![("code", t.claimed_postcard.clone())],
            theirs: Refused("INVALID_CODE"),
        },
        Case {
            endpoint: "scan",
            get: false,
            access: Staff,
            changes: true,
            fields: |t| vec![("code", t.member.clone())],
            theirs: Refused("MEMBER_NOT_FOUND"),
        },
        Case {
            endpoint: "earn",
            get: false,
            access: Staff,
            changes: true,
            fields: |t| {
                vec![
                    ("external_id", t.member.clone()),
                    ("points", "5".into()),
                    ("note", "attack".into()),
                    ("idempotency_key", format!("attack-earn-{}", Uuid::new_v4())),
                ]
            },
            theirs: Refused("MEMBER_NOT_FOUND"),
        },
        Case {
            endpoint: "redeem",
            get: false,
            access: Staff,
            changes: true,
            fields: |t| {
                vec![
                    ("external_id", t.member.clone()),
                    ("points", "5".into()),
                    ("note", "attack".into()),
                    (
                        "idempotency_key",
                        format!("attack-redeem-{}", Uuid::new_v4()),
                    ),
                ]
            },
            theirs: Refused("MEMBER_NOT_FOUND"),
        },
        Case {
            endpoint: "enrol",
            get: false,
            access: Staff,
            changes: true,
            fields: none,
            theirs: OwnProgramOnly,
        },
        Case {
            endpoint: "staff",
            get: false,
            access: Manager,
            changes: false,
            fields: none,
            theirs: OwnProgramOnly,
        },
        // An account with another program's manager's email is an account of the caller's own program.
        Case {
            endpoint: "add_staff",
            get: false,
            access: Manager,
            changes: true,
            fields: |t| {
                vec![
                    ("email", t.staff_email.clone()),
                    ("name", "Attacker".into()),
                    ("password", "attacker-password-1".into()),
                    ("role", "manager".into()),
                ]
            },
            theirs: OwnProgramOnly,
        },
        // Aimed at the caller's own id, these are refused too: a manager does not change their own access.
        Case {
            endpoint: "set_staff_active",
            get: false,
            access: Manager,
            changes: true,
            fields: |t| {
                vec![
                    ("staff_id", t.staff_id.to_string()),
                    ("active", "false".into()),
                ]
            },
            theirs: Refused("STAFF_NOT_FOUND"),
        },
        Case {
            endpoint: "set_staff_password",
            get: false,
            access: Manager,
            changes: true,
            fields: |t| {
                vec![
                    ("staff_id", t.staff_id.to_string()),
                    ("password", "attacker-password-1".into()),
                ]
            },
            theirs: Refused("STAFF_NOT_FOUND"),
        },
        Case {
            endpoint: "history",
            get: false,
            access: Manager,
            changes: false,
            fields: none,
            theirs: OwnProgramOnly,
        },
        Case {
            endpoint: "history",
            get: false,
            access: Manager,
            changes: false,
            fields: |t| {
                vec![
                    ("member", t.member.clone()),
                    ("staff", t.staff_email.clone()),
                ]
            },
            theirs: OwnProgramOnly,
        },
        Case {
            endpoint: "history_summary",
            get: false,
            access: Manager,
            changes: false,
            fields: |t| {
                vec![
                    ("member", t.member.clone()),
                    ("staff", t.staff_email.clone()),
                ]
            },
            theirs: OwnProgramOnly,
        },
        Case {
            endpoint: "void",
            get: false,
            access: Manager,
            changes: true,
            fields: |t| {
                vec![
                    ("transaction_id", t.transaction_id.to_string()),
                    ("reason", "attack".into()),
                ]
            },
            theirs: Refused("TRANSACTION_NOT_FOUND"),
        },
        Case {
            endpoint: "history.csv",
            get: true,
            access: Manager,
            changes: false,
            fields: |t| vec![("member", t.member.clone())],
            theirs: OwnProgramOnly,
        },
        Case {
            endpoint: "history.csv",
            get: true,
            access: Manager,
            changes: false,
            fields: none,
            theirs: OwnProgramOnly,
        },
        // The token is the key of a member's own page: whoever holds it sees that pass, signed in or not.
        Case {
            endpoint: "pass",
            get: false,
            access: Anyone,
            changes: false,
            fields: |t| vec![("token", t.pass_token.clone())],
            theirs: OwnProgramOnly,
        },
        Case {
            endpoint: "pass_link",
            get: false,
            access: Staff,
            changes: false,
            fields: |t| vec![("external_id", t.member.clone())],
            theirs: Refused("MEMBER_NOT_FOUND"),
        },
        // Public sign-up finds its program by the page's slug, and is refused cross-site by its Origin check.
        Case {
            endpoint: "join_page",
            get: false,
            access: Anyone,
            changes: false,
            fields: |_| vec![("slug", "no-such-program".into())],
            theirs: Refused("PROGRAM_NOT_FOUND"),
        },
        Case {
            endpoint: "join",
            get: false,
            access: Anyone,
            changes: false,
            fields: |_| vec![("slug", "no-such-program".into())],
            theirs: Refused("PROGRAM_NOT_FOUND"),
        },
        Case {
            endpoint: "wallet",
            get: false,
            access: Manager,
            changes: false,
            fields: none,
            theirs: OwnProgramOnly,
        },
        Case {
            endpoint: "batches",
            get: false,
            access: Manager,
            changes: false,
            fields: none,
            theirs: OwnProgramOnly,
        },
        Case {
            endpoint: "batches_page",
            get: false,
            access: Manager,
            changes: false,
            fields: none,
            theirs: OwnProgramOnly,
        },
        Case {
            endpoint: "create_batch",
            get: false,
            access: Manager,
            changes: true,
            fields: |_| {
                vec![
                    ("name", "Attack mailing".into()),
                    ("size", "3".into()),
                    ("request_key", uuid::Uuid::new_v4().to_string()),
                ]
            },
            theirs: OwnProgramOnly,
        },
        Case {
            endpoint: "void_batch",
            get: false,
            access: Manager,
            changes: true,
            fields: |t| vec![("batch_id", t.batch_id.to_string())],
            theirs: Refused("BATCH_NOT_FOUND"),
        },
        Case {
            endpoint: "batch_postcards",
            get: false,
            access: Manager,
            changes: false,
            fields: |t| vec![("batch_id", t.batch_id.to_string())],
            theirs: Refused("BATCH_NOT_FOUND"),
        },
        Case {
            endpoint: "batch.csv",
            get: true,
            access: Manager,
            changes: false,
            fields: |t| vec![("id", t.batch_id.to_string())],
            theirs: Refused("BATCH_NOT_FOUND"),
        },
        // The program's time zone: the caller's own program, the only one a request can reach.
        Case {
            endpoint: "time_zone",
            get: false,
            access: Manager,
            changes: false,
            fields: none,
            theirs: OwnProgramOnly,
        },
        Case {
            endpoint: "set_time_zone",
            get: false,
            access: Manager,
            changes: true,
            fields: |_| vec![("time_zone", "Europe/Paris".into())],
            theirs: OwnProgramOnly,
        },
        // A staff member's own password, and only theirs: the request has no way to name anyone else, and
        // without the current password it is refused.
        Case {
            endpoint: "change_password",
            get: false,
            access: Staff,
            changes: true,
            fields: |_| {
                vec![
                    ("current", "not-the-password".into()),
                    ("new", "attacker-password-1".into()),
                ]
            },
            theirs: Refused("INVALID_INPUT"),
        },
        // Signing out ends the caller's own session only; last, as it ends the session it runs in.
        Case {
            endpoint: "sign_out",
            get: false,
            access: Staff,
            changes: true,
            fields: none,
            theirs: OwnProgramOnly,
        },
    ]
}

/// The endpoints the source defines, read from app/src and server/src/lib.rs.
fn endpoints_in_source() -> BTreeSet<String> {
    fn walk(dir: &std::path::Path, found: &mut BTreeSet<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, found);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let source = std::fs::read_to_string(&path).unwrap();
                for piece in source.split("endpoint = \"").skip(1) {
                    found.insert(piece.split('"').next().unwrap().to_owned());
                }
                // Routes of their own, named by a constant such as `CSV_PATH: &str = "/api/batch.csv"`.
                for piece in source.split("= \"/api/").skip(1) {
                    found.insert(piece.split('"').next().unwrap().to_owned());
                }
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut found = BTreeSet::new();
    walk(&root.join("../app/src"), &mut found);
    let routes = std::fs::read_to_string(root.join("src/lib.rs")).unwrap();
    for piece in routes.split(".route(\"/api/").skip(1) {
        let path = piece.split('"').next().unwrap();
        // The catch-all that hands requests to the server functions.
        if !path.starts_with('{') {
            found.insert(path.to_owned());
        }
    }
    found
}

#[test]
fn every_api_endpoint_is_in_the_attack_table() {
    let in_source = endpoints_in_source();
    assert!(
        in_source.contains("earn") && in_source.contains("history.csv"),
        "{in_source:?}"
    );
    let in_table: BTreeSet<String> = cases().iter().map(|c| c.endpoint.to_owned()).collect();
    let missing: Vec<_> = in_source.difference(&in_table).collect();
    assert!(
        missing.is_empty(),
        "endpoints with no row in attacks.rs's cases(): {missing:?}: add one (who may call it, whether it \
         changes something, and what it answers when aimed at another program's data)"
    );
    let gone: Vec<_> = in_table.difference(&in_source).collect();
    assert!(
        gone.is_empty(),
        "rows for endpoints that no longer exist: {gone:?}"
    );
}

fn case_named(endpoint: &str) -> Case {
    cases()
        .into_iter()
        .find(|c| c.endpoint == endpoint)
        .unwrap()
}

/// An HTTP client that shows redirects rather than following them.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// What a request carries as its CSRF token.
#[derive(Debug, Clone)]
enum Csrf {
    /// The session's own.
    Session,
    /// No `csrf` field at all.
    Absent,
    Given(String),
}

/// Signs `who` in with a client that shows redirects.
async fn sign_in(server: &TestServer, who: &Credentials) -> ApiClient {
    ApiClient::sign_in_using(http(), &server.url, who).await
}

/// The table's requests, as a signed-in client (or a stranger) sends them.
trait Attacker {
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
async fn fingerprint(db: &TestDb, program: Option<Uuid>) -> Vec<(String, String)> {
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
struct World {
    server: TestServer,
    rival: Uuid,
    ours: Targets,
    theirs: Targets,
    /// Text of the rival's that must never appear in an answer to our staff.
    secrets: Vec<String>,
    /// A live session of the rival's clerk.
    rival_clerk: ApiClient,
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
    Targets {
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

async fn world() -> World {
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
    fn staff(&self) -> [(&'static str, &Credentials); 2] {
        [
            ("clerk", &self.server.clerk),
            ("manager", &self.server.manager),
        ]
    }

    /// The rival's secrets in `body` that the request did not itself send.
    fn leaked(&self, body: &str, sent: &Fields) -> Vec<&String> {
        self.secrets
            .iter()
            .filter(|s| {
                body.contains(s.as_str()) && !sent.iter().any(|(_, v)| v.contains(s.as_str()))
            })
            .collect()
    }
}

fn error_of(status: StatusCode, body: &str, what: &str) -> LoyaltyError {
    let err: LoyaltyError = serde_json::from_str(body)
        .unwrap_or_else(|e| panic!("{what}: {status} {body:?} is not the domain's error: {e}"));
    assert_eq!(status.as_u16(), err.http_status(), "{what}: {body}");
    err
}

#[tokio::test]
async fn staff_of_one_program_reach_nothing_of_another_through_any_endpoint() {
    let w = world().await;
    let mut checked = 0;
    for (role, who) in w.staff() {
        for case in cases().iter().filter(|c| c.access != Access::Anyone) {
            // A fresh session each time, so signing out or a refusal cannot spoil the next request.
            let client = sign_in(&w.server, who).await;
            let before = fingerprint(&w.server.db, Some(w.rival)).await;
            let fields = (case.fields)(&w.theirs);
            let (status, body) = client.send(case, &fields, &Csrf::Session).await;
            let what = format!("our {role} → {} {fields:?}", case.endpoint);
            assert!(!status.is_server_error(), "{what}: {status} {body}");
            assert_eq!(
                w.leaked(&body, &fields),
                Vec::<&String>::new(),
                "{what}: {body}"
            );
            let expected = match (case.access, role) {
                (Access::Manager, "clerk") => Theirs::Refused("MANAGERS_ONLY"),
                _ => case.theirs,
            };
            match expected {
                Theirs::Refused(code) => {
                    assert_eq!(error_of(status, &body, &what).code(), code, "{what}");
                }
                Theirs::OwnProgramOnly => assert!(status.is_success(), "{what}: {status} {body}"),
            }
            assert_eq!(
                fingerprint(&w.server.db, Some(w.rival)).await,
                before,
                "{what} changed the rival's data"
            );
            checked += 1;
        }
    }
    assert_eq!(
        checked,
        2 * cases()
            .iter()
            .filter(|c| c.access != Access::Anyone)
            .count()
    );
    // The rival's staff still work as before.
    let (status, _) = w
        .rival_clerk
        .send(&case_named("me"), &Vec::new(), &Csrf::Session)
        .await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn a_session_cookie_relabelled_with_another_program_signs_nobody_in() {
    let w = world().await;
    let client = sign_in(&w.server, &w.server.manager).await;
    let (_, token) = client.cookie.split_once('.').unwrap();
    let relabelled = ApiClient {
        cookie: format!("loyalty_session={}.{}", w.rival, token),
        http: http(),
        url: client.url.clone(),
        csrf: client.csrf.clone(),
    };
    let before = fingerprint(&w.server.db, None).await;
    for case in cases().iter().filter(|c| c.access != Access::Anyone) {
        let fields = (case.fields)(&w.theirs);
        let (status, body) = relabelled.send(case, &fields, &Csrf::Session).await;
        let what = format!("{} {fields:?}", case.endpoint);
        assert_eq!(
            error_of(status, &body, &what),
            LoyaltyError::NotSignedIn,
            "{what}"
        );
    }
    assert_eq!(fingerprint(&w.server.db, None).await, before);
}

#[tokio::test]
async fn a_clerk_is_refused_every_manager_endpoint_even_for_their_own_programs_data() {
    let w = world().await;
    let before = fingerprint(&w.server.db, None).await;
    let manager_cases: Vec<Case> = cases()
        .into_iter()
        .filter(|c| c.access == Access::Manager)
        .collect();
    assert!(manager_cases.len() >= 5);
    for case in &manager_cases {
        let clerk = sign_in(&w.server, &w.server.clerk).await;
        let fields = (case.fields)(&w.ours);
        let (status, body) = clerk.send(case, &fields, &Csrf::Session).await;
        let what = format!("clerk → {} {fields:?}", case.endpoint);
        assert_eq!(
            error_of(status, &body, &what),
            LoyaltyError::ManagersOnly,
            "{what}"
        );
    }
    // Sign-ins write sessions; nothing else may change.
    let after = fingerprint(&w.server.db, None).await;
    let changed: Vec<&str> = before
        .iter()
        .zip(&after)
        .filter(|(b, a)| b != a)
        .map(|(b, _)| b.0.as_str())
        .collect();
    assert_eq!(changed, vec!["staff_sessions"]);
}

#[tokio::test]
async fn every_change_without_the_sessions_csrf_token_is_refused_and_writes_nothing() {
    let w = world().await;
    let changing: Vec<Case> = cases().into_iter().filter(|c| c.changes).collect();
    assert!(changing.len() >= 8);
    for case in &changing {
        let who = match case.access {
            Access::Manager => &w.server.manager,
            _ => &w.server.clerk,
        };
        let client = sign_in(&w.server, who).await;
        // A token that is valid, but for another session of the same person.
        let other = sign_in(&w.server, who).await;
        let fields = (case.fields)(&w.ours);
        let before = fingerprint(&w.server.db, None).await;
        let wrong = [
            String::new(),
            "0".repeat(32),
            other.csrf.clone(),
            w.rival_clerk.csrf.clone(),
            client.csrf.to_uppercase(),
            format!("{} ", client.csrf),
            client.csrf[..31].to_owned(),
        ];
        for token in wrong {
            let (status, body) = client
                .send(case, &fields, &Csrf::Given(token.clone()))
                .await;
            let what = format!("{} with csrf {token:?}", case.endpoint);
            assert_eq!(
                error_of(status, &body, &what),
                LoyaltyError::CsrfRejected,
                "{what}"
            );
        }
        // With no token at all the request is not even understood.
        let (status, body) = client.send(case, &fields, &Csrf::Absent).await;
        let what = format!("{} with no csrf field", case.endpoint);
        let err = error_of(status, &body, &what);
        assert!(
            matches!(
                err,
                LoyaltyError::CsrfRejected | LoyaltyError::InvalidInput { .. }
            ),
            "{what}: {err:?}"
        );
        // A cross-site form post: the browser's own form submission from another site, cookie and all. It is
        // refused, or sent back to where it came from with the error.
        let response = client
            .request(case)
            .header(ORIGIN, "https://evil.example")
            .header(ACCEPT, "text/html")
            .form(&fields)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let body = response.text().await.unwrap();
        assert!(
            status.is_client_error() || status.is_redirection(),
            "cross-site form post to {}: {status} {body}",
            case.endpoint
        );
        assert_eq!(
            fingerprint(&w.server.db, None).await,
            before,
            "{} wrote without its token",
            case.endpoint
        );
        // The refusals did not end the session.
        let (status, _) = client
            .send(&case_named("me"), &Vec::new(), &Csrf::Session)
            .await;
        assert_eq!(status, StatusCode::OK, "{}", case.endpoint);
    }
}

/// Requests per endpoint in each fuzzing test. About 20 endpoints: some 1,300 requests a test.
const HTTP_CASES: u32 = 64;

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: HTTP_CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Every field name any endpoint reads, so garbage reaches the server functions' own checks.
const FIELD_NAMES: &[&str] = &[
    "csrf",
    "email",
    "password",
    "external_id",
    "code",
    "points",
    "note",
    "idempotency_key",
    "name",
    "role",
    "from",
    "to",
    "tx_type",
    "member",
    "staff",
    "staff_id",
    "active",
    "current",
    "new",
    "time_zone",
    "cursor",
    "transaction_id",
    "reason",
    "token",
    "slug",
    "id",
    "batch_id",
    "size",
];

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(FIELD_NAMES).prop_map(str::to_owned),
        1 => "\\PC{0,12}",
        1 => "[a-z_]{1,8}\\[[a-z0-9]{0,4}\\]",
    ]
}

/// Text a field might hold: empty, unicode, control characters, numbers too large for any type, long.
fn field_text() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        "\\PC{0,40}",
        any::<String>(),
        "-?[0-9]{1,30}",
        "(CLM|PUB|MBR)-[2-9A-Z]{0,20}",
        "[0-9]{4}-[0-9]{2}-[0-9]{2}",
        prop::sample::select(vec![
            "true",
            "null",
            "NaN",
            "-0",
            "1e999",
            "EARN",
            "redeem",
            "clerk",
            "manager",
            "' or 1=1 --",
            "\u{0}",
            "%00",
            "../../etc/passwd",
            "<script>alert(1)</script>",
        ])
        .prop_map(str::to_owned),
        (1usize..70_000).prop_map(|n| "é".repeat(n / 2)),
    ]
}

/// JSON as text, so numbers can be larger than any Rust or JSON library type holds.
#[derive(Debug, Clone)]
enum Json {
    Null,
    Bool(bool),
    Number(String),
    Text(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn render(&self, out: &mut String) {
        match self {
            Json::Null => out.push_str("null"),
            Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Json::Number(n) => out.push_str(n),
            Json::Text(s) => out.push_str(&serde_json::to_string(s).unwrap()),
            Json::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.render(out);
                }
                out.push(']');
            }
            Json::Object(fields) => {
                out.push('{');
                for (i, (name, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(name).unwrap());
                    out.push(':');
                    value.render(out);
                }
                out.push('}');
            }
        }
    }
}

fn json_value() -> impl Strategy<Value = Json> {
    let number = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        "-?[1-9][0-9]{18,300}",
        "-?[0-9]\\.[0-9]{1,6}[eE][+-]?[0-9]{1,6}",
        Just("-0".to_owned()),
    ];
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        number.prop_map(Json::Number),
        field_text().prop_map(Json::Text),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Json::Array),
            prop::collection::vec((field_name(), inner), 0..6).prop_map(Json::Object),
        ]
    })
}

/// A body that claims to be JSON: mostly objects of fields (so it reaches the server functions), sometimes any
/// value, sometimes not JSON at all.
fn json_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        4 => prop::collection::vec((field_name(), json_value()), 0..8).prop_map(|fields| {
            let mut out = String::new();
            Json::Object(fields).render(&mut out);
            out.into_bytes()
        }),
        1 => json_value().prop_map(|value| {
            let mut out = String::new();
            value.render(&mut out);
            out.into_bytes()
        }),
        1 => prop::collection::vec(any::<u8>(), 0..64),
    ]
}

/// A body of any kind: form fields, raw bytes, under any content type.
fn form_body() -> impl Strategy<Value = (&'static str, Vec<u8>)> {
    let content_type = prop::sample::select(vec![
        "application/x-www-form-urlencoded",
        "application/x-www-form-urlencoded; charset=utf-8",
        "text/plain",
        "multipart/form-data; boundary=zz",
        "application/octet-stream",
        "",
    ]);
    let body = prop_oneof![
        3 => prop::collection::vec((field_name(), field_text()), 0..8)
            .prop_map(|pairs| serde_urlencoded::to_string(pairs).unwrap().into_bytes()),
        1 => "[a-z_%=&+\\[\\]0-9]{0,120}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..120),
    ];
    (content_type, body)
}

/// Sends `body` to every endpoint of the table, `HTTP_CASES` times each, through one server. Garbage is never
/// answered with a 5xx, every refusal is in the domain's words, and nothing is written.
fn fuzz_every_endpoint(body: impl Strategy<Value = (&'static str, Vec<u8>)>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let w = runtime.block_on(world());
    let client = runtime.block_on(sign_in(&w.server, &w.server.manager));
    let baseline = runtime.block_on(fingerprint(&w.server.db, None));
    let mut seen = BTreeSet::new();
    for case in cases() {
        if !seen.insert(case.endpoint) {
            continue;
        }
        runner()
            .run(&body, |(content_type, bytes)| {
                runtime.block_on(async {
                    let mut request = client.request(&case);
                    if !content_type.is_empty() {
                        request = request.header(CONTENT_TYPE, content_type);
                    }
                    let response = request.body(bytes).send().await.unwrap();
                    let status = response.status();
                    let text = response.text().await.unwrap();
                    prop_assert!(!status.is_server_error(), "{status} {text}");
                    if status.is_client_error() {
                        let err = serde_json::from_str::<LoyaltyError>(&text);
                        prop_assert!(err.is_ok(), "{status} {text:?}");
                        prop_assert_eq!(status.as_u16(), err.unwrap().http_status());
                    }
                    // Without the session's token nothing may change.
                    if case.changes {
                        prop_assert!(!status.is_success(), "{status} {text}");
                    }
                    prop_assert_eq!(&fingerprint(&w.server.db, None).await, &baseline);
                    Ok::<(), TestCaseError>(())
                })
            })
            .unwrap_or_else(|e| panic!("/api/{}: {e}", case.endpoint));
    }
    // Garbage did not end the session either.
    let (status, _) = runtime.block_on(client.send(&case_named("me"), &Vec::new(), &Csrf::Session));
    assert_eq!(status, StatusCode::OK);
    runtime.block_on(async move { drop(w) });
}

#[test]
fn arbitrary_json_to_every_endpoint_is_refused_without_a_5xx_and_writes_nothing() {
    fuzz_every_endpoint(json_body().prop_map(|body| ("application/json", body)));
}

#[test]
fn arbitrary_form_bodies_to_every_endpoint_are_refused_without_a_5xx_and_write_nothing() {
    fuzz_every_endpoint(form_body());
}

#[test]
fn arbitrary_values_with_the_sessions_own_token_never_get_a_5xx_or_a_write_without_a_success() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let w = runtime.block_on(world());
    let client = runtime.block_on(sign_in(&w.server, &w.server.manager));
    let values = prop::collection::vec(field_text(), 6);
    for case in cases() {
        // Signing out would end the session the rest runs in; enrolling writes whatever it is sent; a batch
        // of a random valid size is up to 100,000 codes, slow to make and to compare after every request.
        if ["sign_out", "enrol", "create_batch"].contains(&case.endpoint) {
            continue;
        }
        let names: Vec<&str> = (case.fields)(&w.ours).iter().map(|(n, _)| *n).collect();
        let baseline = std::cell::RefCell::new(runtime.block_on(fingerprint(&w.server.db, None)));
        runner()
            .run(&values, |values| {
                runtime.block_on(async {
                    // A URL holds a few kilobytes at most: a GET's values are cut short.
                    let fields: Fields = names
                        .iter()
                        .copied()
                        .zip(values)
                        .map(|(name, value)| match case.get {
                            true => (name, value.chars().take(500).collect()),
                            false => (name, value),
                        })
                        .collect();
                    let (status, text) = client.send(&case, &fields, &Csrf::Session).await;
                    prop_assert!(!status.is_server_error(), "{status} {text}");
                    let now = fingerprint(&w.server.db, None).await;
                    if status.is_success() {
                        *baseline.borrow_mut() = now;
                    } else {
                        let err = serde_json::from_str::<LoyaltyError>(&text);
                        prop_assert!(err.is_ok(), "{status} {text:?}");
                        prop_assert_eq!(&now, &*baseline.borrow(), "{} {}", status, text);
                    }
                    Ok::<(), TestCaseError>(())
                })
            })
            .unwrap_or_else(|e| panic!("/api/{}: {e}", case.endpoint));
    }
    assert_eq!(
        runtime.block_on(w.server.db.invariant_violations()),
        Vec::<String>::new()
    );
    runtime.block_on(async move { drop(w) });
}

#[tokio::test]
async fn deeply_nested_and_oversized_bodies_are_refused_by_every_endpoint() {
    let w = world().await;
    let client = sign_in(&w.server, &w.server.manager).await;
    let before = fingerprint(&w.server.db, None).await;
    let nested = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let nested_field = format!("{{\"csrf\": \"{}\", \"code\": {}}}", client.csrf, nested);
    let big = "x".repeat(server::MAX_BODY_BYTES + 1);
    let bodies: Vec<(&str, &str, Vec<u8>)> = vec![
        (
            "10,000 nested arrays",
            "application/json",
            nested.clone().into_bytes(),
        ),
        (
            "a field of 10,000 nested arrays",
            "application/json",
            nested_field.into_bytes(),
        ),
        (
            "JSON over the limit",
            "application/json",
            format!("{{\"csrf\": \"{}\", \"note\": \"{big}\"}}", client.csrf).into_bytes(),
        ),
        (
            "a form over the limit",
            "application/x-www-form-urlencoded",
            format!("csrf={}&note={big}", client.csrf).into_bytes(),
        ),
        (
            "a body over the limit with no type",
            "",
            big.clone().into_bytes(),
        ),
    ];
    let mut seen = BTreeSet::new();
    for case in cases() {
        if case.get || !seen.insert(case.endpoint) {
            continue;
        }
        for (what, content_type, body) in &bodies {
            let mut request = client.request(&case);
            if !content_type.is_empty() {
                request = request.header(CONTENT_TYPE, *content_type);
            }
            let response = request.body(body.clone()).send().await.unwrap();
            let status = response.status();
            let text = response.text().await.unwrap();
            assert!(
                status.is_client_error(),
                "{what} to {}: {status} {text}",
                case.endpoint
            );
        }
        // A form key nested 10,000 deep is no more than an unknown field.
        let response = client
            .request(&case)
            .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(format!("{}=1", "a[".repeat(10_000)))
            .send()
            .await
            .unwrap();
        assert!(
            !response.status().is_server_error()
                && !(case.changes && response.status().is_success()),
            "nested form key to {}: {}",
            case.endpoint,
            response.status()
        );
    }
    assert_eq!(fingerprint(&w.server.db, None).await, before);
}

#[tokio::test]
async fn public_endpoints_answer_a_stranger_as_the_table_says() {
    let w = world().await;
    // A client with no session: its cookie names nobody.
    let stranger = ApiClient {
        http: http(),
        url: w.server.url.clone(),
        cookie: "loyalty_session=none".into(),
        csrf: String::new(),
    };
    for case in cases().iter().filter(|c| c.access == Access::Anyone) {
        let fields = (case.fields)(&w.theirs);
        let (status, body) = stranger.send(case, &fields, &Csrf::Absent).await;
        let what = format!("stranger → {} {fields:?}", case.endpoint);
        match case.theirs {
            Theirs::Refused(code) => assert_eq!(error_of(status, &body, &what).code(), code),
            Theirs::OwnProgramOnly => assert!(status.is_success(), "{what}: {status} {body}"),
        }
    }
}

#[tokio::test]
async fn a_cross_site_public_sign_up_is_refused_and_makes_no_pass() {
    let w = world().await;
    sqlx::query("update programs set public_slug = 'our-shop' where id = $1")
        .bind(w.server.db.program_id)
        .execute(&w.server.db.owner)
        .await
        .unwrap();
    let before = fingerprint(&w.server.db, None).await;
    let response = http()
        .post(format!("{}/api/join", w.server.url))
        .header(ORIGIN, "https://evil.example")
        .form(&[("slug", "our-shop")])
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body = response.text().await.unwrap();
    assert_eq!(
        error_of(status, &body, "cross-site join"),
        LoyaltyError::CsrfRejected
    );
    assert_eq!(fingerprint(&w.server.db, None).await, before);
    // The same sign-up from the shop's own page goes through.
    let response = http()
        .post(format!("{}/api/join", w.server.url))
        .header(ORIGIN, w.server.url.clone())
        .form(&[("slug", "our-shop")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
}
