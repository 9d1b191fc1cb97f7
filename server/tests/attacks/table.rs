//! The attack table: every endpoint under /api/, who may call it, whether it changes something, and what it
//! answers when aimed at another program's data. A test keeps it whole.

use std::collections::BTreeSet;

use uuid::Uuid;

/// Who may call an endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// No session needed (sign-in).
    Anyone,
    Staff,
    Manager,
}

impl Case {
    /// What a clerk hears from one of a manager's endpoints: points typed by hand are refused in words of their
    /// own, since a clerk has other ways to give and take points.
    pub(crate) fn clerk_refusal(&self) -> &'static str {
        match self.endpoint {
            "earn" | "redeem" => "ADJUSTMENT_FOR_MANAGERS",
            _ => "MANAGERS_ONLY",
        }
    }
}

/// What a signed-in staff member gets when a request names another program's data.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Theirs {
    /// Refused with this error code.
    Refused(&'static str),
    /// Answered from the caller's own program: the request has no way to name another program.
    OwnProgramOnly,
}

/// One program's data that a request can name.
pub(crate) struct Targets {
    /// A member pass with points and ledger rows.
    pub(crate) member: String,
    /// That member's phone number, as a clerk types it.
    pub(crate) contact: String,
    /// An unclaimed postcard.
    pub(crate) postcard: String,
    /// A postcard already claimed.
    pub(crate) claimed_postcard: String,
    /// A ledger entry.
    pub(crate) transaction_id: i64,
    /// A manager's email.
    pub(crate) staff_email: String,
    /// The same manager's id.
    pub(crate) staff_id: Uuid,
    /// A batch of postcards.
    pub(crate) batch_id: Uuid,
    /// The member's pass token, the key of their public pass page.
    pub(crate) pass_token: String,
    /// A reward of the catalog, in stock.
    pub(crate) reward_id: i64,
    /// A promotion running.
    pub(crate) promotion_id: i64,
}

pub(crate) type Fields = Vec<(&'static str, String)>;

/// One row of the attack table: an endpoint and a request to it.
pub(crate) struct Case {
    /// The path under /api/.
    pub(crate) endpoint: &'static str,
    /// A GET (the CSV download) rather than a server function's POST.
    pub(crate) get: bool,
    pub(crate) access: Access,
    /// Changes something, so it must carry the session's CSRF token.
    pub(crate) changes: bool,
    /// The request's fields, aimed at one program's data.
    pub(crate) fields: fn(&Targets) -> Fields,
    pub(crate) theirs: Theirs,
}

fn none(_: &Targets) -> Fields {
    Vec::new()
}

/// Every endpoint under /api/: server functions (`endpoint = "..."` in app/src) and the routes of
/// server/src/lib.rs. `every_api_endpoint_is_in_the_attack_table` keeps this list whole.
pub(crate) fn cases() -> Vec<Case> {
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
        // Their member's phone number finds nobody here.
        Case {
            endpoint: "scan",
            get: false,
            access: Staff,
            changes: true,
            fields: |t| vec![("code", t.contact.clone())],
            theirs: Refused("CONTACT_NOT_FOUND"),
        },
        Case {
            endpoint: "set_contact",
            get: false,
            access: Staff,
            changes: true,
            fields: |t| {
                vec![
                    ("external_id", t.member.clone()),
                    ("contact", "attacker@example.com".into()),
                ]
            },
            theirs: Refused("MEMBER_NOT_FOUND"),
        },
        Case {
            endpoint: "member_export.json",
            get: true,
            access: Manager,
            changes: false,
            fields: |t| vec![("member", t.member.clone())],
            theirs: Refused("MEMBER_NOT_FOUND"),
        },
        Case {
            endpoint: "erase_contacts",
            get: false,
            access: Manager,
            changes: true,
            fields: |t| vec![("external_id", t.member.clone())],
            theirs: Refused("MEMBER_NOT_FOUND"),
        },
        Case {
            endpoint: "reverse",
            get: false,
            access: Staff,
            changes: true,
            fields: |t| {
                vec![
                    ("transaction_id", t.transaction_id.to_string()),
                    ("points", "1".into()),
                    (
                        "idempotency_key",
                        format!("attack-return-{}", Uuid::new_v4()),
                    ),
                ]
            },
            theirs: Refused("TRANSACTION_NOT_FOUND"),
        },
        Case {
            endpoint: "set_counter_settings",
            get: false,
            access: Manager,
            changes: true,
            fields: |_| {
                vec![
                    ("calling_code", "44".into()),
                    ("return_minutes", "30".into()),
                ]
            },
            theirs: OwnProgramOnly,
        },
        Case {
            endpoint: "replace_pass",
            get: false,
            access: Staff,
            changes: true,
            fields: |t| vec![("external_id", t.member.clone())],
            theirs: Refused("MEMBER_NOT_FOUND"),
        },
        Case {
            endpoint: "remove_contact",
            get: false,
            access: Staff,
            changes: true,
            fields: |t| vec![("external_id", t.member.clone()), ("kind", "phone".into())],
            theirs: Refused("MEMBER_NOT_FOUND"),
        },
        Case {
            endpoint: "earn",
            get: false,
            access: Manager,
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
            access: Manager,
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
        // The server's backups, not a program's: any manager reads them, no clerk does.
        Case {
            endpoint: "backups",
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
        // A member's Apple Wallet pass: looked up in the caller's program before it is signed.
        Case {
            endpoint: "wallet.pkpass",
            get: true,
            access: Staff,
            changes: false,
            fields: |t| vec![("member", t.member.clone())],
            theirs: Refused("MEMBER_NOT_FOUND"),
        },
        Case {
            endpoint: "batch.csv",
            get: true,
            access: Manager,
            changes: false,
            fields: |t| vec![("id", t.batch_id.to_string())],
            theirs: Refused("BATCH_NOT_FOUND"),
        },
        // The rewards catalog: read by any staff member of the program, kept by its managers; a reward or member
        // of another program is not there.
        Case {
            endpoint: "rewards",
            get: false,
            access: Staff,
            changes: false,
            fields: none,
            theirs: OwnProgramOnly,
        },
        Case {
            endpoint: "save_reward",
            get: false,
            access: Manager,
            changes: true,
            fields: |t| {
                vec![
                    ("reward_id", t.reward_id.to_string()),
                    ("name", "Attack".into()),
                    ("points_cost", "1".into()),
                    ("stock", "1000".into()),
                ]
            },
            theirs: Refused("REWARD_NOT_FOUND"),
        },
        Case {
            endpoint: "retire_reward",
            get: false,
            access: Manager,
            changes: true,
            fields: |t| vec![("reward_id", t.reward_id.to_string())],
            theirs: Refused("REWARD_NOT_FOUND"),
        },
        Case {
            endpoint: "redeem_reward",
            get: false,
            access: Staff,
            changes: true,
            fields: |t| {
                vec![
                    ("external_id", t.member.clone()),
                    ("reward_id", t.reward_id.to_string()),
                    (
                        "idempotency_key",
                        format!("attack-reward-{}", Uuid::new_v4()),
                    ),
                ]
            },
            theirs: Refused("REWARD_NOT_FOUND"),
        },
        // A sale's points, counted by the program's rules: another program's member is not there.
        Case {
            endpoint: "earn_sale",
            get: false,
            access: Staff,
            changes: true,
            fields: |t| {
                vec![
                    ("external_id", t.member.clone()),
                    ("amount", "12.50".into()),
                    ("idempotency_key", format!("attack-sale-{}", Uuid::new_v4())),
                ]
            },
            theirs: Refused("MEMBER_NOT_FOUND"),
        },
        // The program's rules and promotions: the caller's own program, the only one a request can name, but a
        // promotion named by id.
        Case {
            endpoint: "program_rules",
            get: false,
            access: Staff,
            changes: false,
            fields: none,
            theirs: OwnProgramOnly,
        },
        Case {
            endpoint: "set_program_rules",
            get: false,
            access: Manager,
            changes: true,
            fields: |_| {
                vec![
                    ("currency", "EUR".into()),
                    ("currency_minor_units", "2".into()),
                    ("earn_points", "1".into()),
                    ("per_amount", "1.00".into()),
                    ("welcome_points_counter", "0".into()),
                    ("welcome_points_signup", "0".into()),
                ]
            },
            theirs: OwnProgramOnly,
        },
        Case {
            endpoint: "promotions",
            get: false,
            access: Manager,
            changes: false,
            fields: none,
            theirs: OwnProgramOnly,
        },
        Case {
            endpoint: "save_promotion",
            get: false,
            access: Manager,
            changes: true,
            fields: |_| {
                vec![
                    ("name", "Attack".into()),
                    ("multiplier_percent", "1000".into()),
                ]
            },
            theirs: OwnProgramOnly,
        },
        Case {
            endpoint: "retire_promotion",
            get: false,
            access: Manager,
            changes: true,
            fields: |t| vec![("promotion_id", t.promotion_id.to_string())],
            theirs: Refused("PROMOTION_NOT_FOUND"),
        },
        // The programme's numbers: the caller's own program.
        Case {
            endpoint: "numbers",
            get: false,
            access: Manager,
            changes: false,
            fields: none,
            theirs: OwnProgramOnly,
        },
        Case {
            endpoint: "numbers.csv",
            get: true,
            access: Manager,
            changes: false,
            fields: none,
            theirs: OwnProgramOnly,
        },
        // Points expiry: the caller's own program.
        Case {
            endpoint: "set_points_expiry",
            get: false,
            access: Manager,
            changes: true,
            fields: |_| vec![("months", "".into())],
            theirs: OwnProgramOnly,
        },
        Case {
            endpoint: "run_expiry",
            get: false,
            access: Manager,
            changes: true,
            fields: none,
            theirs: OwnProgramOnly,
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
            theirs: Refused("WRONG_CURRENT_PASSWORD"),
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
        "endpoints with no row in tests/attacks/table.rs's cases(): {missing:?}: add one (who may call it, whether it \
         changes something, and what it answers when aimed at another program's data)"
    );
    let gone: Vec<_> = in_table.difference(&in_source).collect();
    assert!(
        gone.is_empty(),
        "rows for endpoints that no longer exist: {gone:?}"
    );
}

pub(crate) fn case_named(endpoint: &str) -> Case {
    cases()
        .into_iter()
        .find(|c| c.endpoint == endpoint)
        .unwrap()
}
