//! Postcard batches: made in one call, counted, exported, printed and withdrawn; and guessing codes at the
//! counter is throttled while real postcards always go through.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use app::batches::BatchSummary;
use app::batches::db as batches;
use loyalty_core::LoyaltyError;
use loyalty_core::wire::{Role, ScanOutcome};
use reqwest::StatusCode;
use server::testkit::{ApiClient, TestDb, TestServer, Till, refused};
use tokio::sync::Barrier;
use uuid::Uuid;

/// A manager of `program_id`, who is never signed in: the batch functions take their id.
async fn manager_of(db: &TestDb, program_id: Uuid) -> Uuid {
    db.staff(program_id, Role::Manager).await.0
}

async fn batch_of(db: &TestDb, program_id: Uuid, manager: Uuid, size: i64) -> BatchSummary {
    batches::create_batch(&db.app, program_id, manager, "Test mailing", size, None)
        .await
        .unwrap()
}

async fn codes_of(db: &TestDb, batch: &BatchSummary) -> Vec<String> {
    sqlx::query_scalar("select code from claim_codes where batch_id = $1 order by code")
        .bind(batch.id)
        .fetch_all(&db.owner)
        .await
        .unwrap()
}

fn today() -> String {
    chrono::Utc::now().format("%-d %b %Y").to_string()
}

/// A code that parses as a postcard but was never issued.
fn unissued(n: usize) -> String {
    let alphabet = loyalty_core::code::ALPHABET;
    let body: String = (0..12)
        .map(|i| alphabet[(n * 7 + i * 13 + n / 31) % 31] as char)
        .collect();
    loyalty_core::code::claim_code_from_body(&body)
}

#[tokio::test]
async fn a_batch_of_100000_codes_is_made_in_one_call() {
    let db = TestDb::new().await;
    let manager = manager_of(&db, db.program_id).await;
    let started = std::time::Instant::now();
    let batch = batch_of(&db, db.program_id, manager, 100_000).await;
    eprintln!("a batch of 100,000 codes took {:?}", started.elapsed());

    assert_eq!(
        (batch.size, batch.claimed, batch.unclaimed, batch.voided),
        (100_000, 0, 100_000, 0)
    );
    let codes = codes_of(&db, &batch).await;
    assert_eq!(codes.len(), 100_000);
    let unique: HashSet<&String> = codes.iter().collect();
    assert_eq!(unique.len(), 100_000);
    for code in &codes {
        assert_eq!(
            loyalty_core::parse_scan(code),
            Ok(loyalty_core::ScanCode::Claim(code.clone())),
            "{code}"
        );
    }
    // now() is the transaction's start: one timestamp for the batch and every code means one transaction.
    let (stamps, stamp_is_batch): (i64, bool) = sqlx::query_as(
        "select count(distinct c.created_at), bool_and(c.created_at = b.created_at)
           from claim_codes c join claim_code_batches b on b.program_id = c.program_id and b.id = c.batch_id
          where b.id = $1",
    )
    .bind(batch.id)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!((stamps, stamp_is_batch), (1, true));
}

#[tokio::test]
async fn sizes_and_names_are_checked_and_clerks_are_refused_by_the_database() {
    let db = TestDb::new().await;
    let manager = manager_of(&db, db.program_id).await;
    let (clerk, _) = db.staff(db.program_id, Role::Clerk).await;
    for (name, size) in [
        ("ok", 0),
        ("ok", 100_001),
        ("ok", -5),
        ("  ", 10),
        (&"x".repeat(101)[..], 10),
    ] {
        let err = batches::create_batch(&db.app, db.program_id, manager, name, size, None)
            .await
            .unwrap_err();
        assert!(
            matches!(err, LoyaltyError::InvalidInput { .. }),
            "{name:?} {size}: {err:?}"
        );
    }
    assert_eq!(
        batches::create_batch(&db.app, db.program_id, clerk, "Mine", 10, None).await,
        Err(LoyaltyError::ManagersOnly)
    );
    let codes: i64 = sqlx::query_scalar("select count(*) from claim_codes")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(codes, 0, "a refused batch writes nothing");
}

#[tokio::test]
async fn the_list_counts_claimed_and_unclaimed_codes_per_batch() {
    let db = TestDb::new().await;
    let manager = manager_of(&db, db.program_id).await;
    let first = batch_of(&db, db.program_id, manager, 10).await;
    let second = batch_of(&db, db.program_id, manager, 5).await;
    let till = Till::clerk(&db).await;
    for code in codes_of(&db, &first).await.iter().take(3) {
        till.claim(code).await;
    }
    till.claim(&codes_of(&db, &second).await[0]).await;
    let list = batches::list_batches(&db.app, db.program_id, 50)
        .await
        .unwrap();
    let counts: Vec<(Uuid, i64, i64, i64)> = list
        .iter()
        .map(|b| (b.id, b.claimed, b.unclaimed, b.voided))
        .collect();
    // Newest first.
    assert_eq!(counts, vec![(second.id, 1, 4, 0), (first.id, 3, 7, 0)]);
    assert!(list.iter().all(|b| b.created_by == "Test manager"));
}

#[tokio::test]
async fn voiding_withdraws_unclaimed_codes_and_keeps_claimed_ones() {
    let db = TestDb::new().await;
    let manager = manager_of(&db, db.program_id).await;
    let batch = batch_of(&db, db.program_id, manager, 10).await;
    let codes = codes_of(&db, &batch).await;
    let till = Till::clerk(&db).await;
    for code in &codes[..4] {
        till.claim(code).await;
    }

    let voided = batches::void_batch(&db.app, db.program_id, manager, batch.id)
        .await
        .unwrap();
    assert_eq!((voided.claimed, voided.unclaimed, voided.voided), (4, 0, 6));
    let voided_at = voided.voided_at.expect("the batch says when it was voided");
    assert_eq!(voided.voided_by.as_deref(), Some("Test manager"));

    let err = till.scan(&codes[9]).await.unwrap_err();
    assert_eq!(
        err,
        LoyaltyError::CodeVoided {
            voided_at: voided_at.fixed_offset()
        }
    );
    assert_eq!(
        err.to_string(),
        format!(
            "This postcard was withdrawn on {} and is no longer valid.",
            today()
        )
    );
    assert_eq!(err.code(), "CODE_VOIDED");
    assert!(matches!(
        till.scan(&codes[0]).await,
        Err(LoyaltyError::AlreadyClaimed { .. })
    ));
    let (claimed, withdrawn, passes): (i64, i64, i64) = sqlx::query_as(
        "select count(*) filter (where claimed_at is not null and pass_id is not null),
                count(*) filter (where voided_at = $2),
                (select count(*) from passes_master)
           from claim_codes where batch_id = $1",
    )
    .bind(batch.id)
    .bind(voided_at)
    .fetch_one(&db.owner)
    .await
    .unwrap();
    assert_eq!((claimed, withdrawn, passes), (4, 6, 4));

    assert_eq!(
        batches::void_batch(&db.app, db.program_id, manager, batch.id).await,
        Err(LoyaltyError::BatchAlreadyVoided {
            voided_at: voided_at.fixed_offset()
        })
    );
    let listed = batches::list_batches(&db.app, db.program_id, 50)
        .await
        .unwrap();
    assert_eq!(listed, vec![voided]);
}

#[tokio::test]
async fn a_code_is_claimed_or_withdrawn_never_both_when_claims_race_the_void() {
    const CODES: usize = 120;
    const VOID_AFTER: usize = CODES / 4;
    let db = TestDb::with_pool_size(40).await;
    let manager = manager_of(&db, db.program_id).await;
    let batch = batch_of(&db, db.program_id, manager, CODES as i64).await;
    let codes = codes_of(&db, &batch).await;
    // A clerk a postcard: one clerk's scans would queue behind one another, and a clerk who missed once would
    // be throttled once the program is over its ceiling of misses.
    let tills = Till::clerks(&db, CODES).await;
    let barrier = Arc::new(Barrier::new(CODES + 1));
    let answered = Arc::new(AtomicUsize::new(0));
    let claims: Vec<_> = codes
        .iter()
        .enumerate()
        .map(|(n, code)| {
            let (till, code) = (tills[n].clone(), code.clone());
            let (barrier, answered) = (barrier.clone(), answered.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                let answer = till.scan(&code).await;
                answered.fetch_add(1, Ordering::SeqCst);
                answer
            })
        })
        .collect();
    // The void goes in once some claims are through, while the rest are still queued or running.
    let void = {
        let (pool, program_id, barrier, answered) = (
            db.app.clone(),
            db.program_id,
            barrier.clone(),
            answered.clone(),
        );
        tokio::spawn(async move {
            barrier.wait().await;
            while answered.load(Ordering::SeqCst) < VOID_AFTER {
                tokio::task::yield_now().await;
            }
            batches::void_batch(&pool, program_id, manager, batch.id).await
        })
    };
    let mut claimed = HashSet::new();
    let mut refused = 0;
    for (code, task) in codes.iter().zip(claims) {
        match task.await.unwrap() {
            Ok(ScanOutcome::Claimed { code: burned, .. }) => {
                assert_eq!(&burned, code);
                claimed.insert(burned);
            }
            Err(LoyaltyError::CodeVoided { .. }) => refused += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let voided = void.await.unwrap().unwrap();
    eprintln!("{} claimed, {refused} found withdrawn", claimed.len());
    assert_eq!(claimed.len() + refused, CODES);
    assert!(
        claimed.len() >= VOID_AFTER,
        "the claims answered before the void stay claimed"
    );
    assert_eq!(voided.claimed, claimed.len() as i64);
    assert_eq!(voided.voided + voided.claimed, CODES as i64);
    let rows: Vec<(String, bool, bool, bool)> = sqlx::query_as(
        "select code, claimed_at is not null, pass_id is not null, voided_at is not null
           from claim_codes where batch_id = $1",
    )
    .bind(batch.id)
    .fetch_all(&db.owner)
    .await
    .unwrap();
    for (code, is_claimed, has_pass, is_voided) in rows {
        assert_eq!(is_claimed, claimed.contains(&code), "{code}");
        assert_eq!(has_pass, is_claimed, "{code}");
        assert_ne!(
            is_claimed, is_voided,
            "{code} must be exactly one of claimed and withdrawn"
        );
    }
    // Scanned again at the same tills, the race's misses forgotten first: the throttle has tests of its own.
    sqlx::query("delete from scan_misses")
        .execute(&db.owner)
        .await
        .unwrap();
    for (n, code) in codes.iter().enumerate() {
        if !claimed.contains(code) {
            assert!(matches!(
                tills[n].scan(code).await,
                Err(LoyaltyError::CodeVoided { .. })
            ));
        }
    }
}

#[tokio::test]
async fn another_programs_manager_cannot_void_list_or_print_a_batch() {
    let db = TestDb::new().await;
    let manager = manager_of(&db, db.program_id).await;
    let batch = batch_of(&db, db.program_id, manager, 5).await;
    let other = server::testkit::new_program(&db.owner, "Other program").await;
    let their_manager = manager_of(&db, other).await;

    assert_eq!(
        batches::void_batch(&db.app, other, their_manager, batch.id).await,
        Err(LoyaltyError::BatchNotFound)
    );
    // Naming our program with their manager is refused by the database too.
    assert_eq!(
        batches::void_batch(&db.app, db.program_id, their_manager, batch.id).await,
        Err(LoyaltyError::ManagersOnly)
    );
    assert_eq!(batches::list_batches(&db.app, other, 50).await, Ok(vec![]));
    assert_eq!(
        batches::find_batch(&db.app, other, batch.id).await,
        Err(LoyaltyError::BatchNotFound)
    );
    assert_eq!(
        batches::printable_postcards(&db.app, other, batch.id, None, 100)
            .await
            .unwrap(),
        vec![]
    );
    let still = batches::find_batch(&db.app, db.program_id, batch.id)
        .await
        .unwrap();
    assert_eq!((still.unclaimed, still.voided_at), (5, None));
}

async fn made_over_http(manager: &ApiClient, name: &str, size: &str) -> BatchSummary {
    let response = manager
        .change("create_batch", &[("name", name), ("size", size)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

#[tokio::test]
async fn clerks_are_refused_every_batch_call_over_http() {
    let server = TestServer::start().await;
    let manager = ApiClient::sign_in(&server, &server.manager).await;
    let batch = made_over_http(&manager, "Spring", "3").await;
    let clerk = ApiClient::sign_in(&server, &server.clerk).await;
    let id = batch.id.to_string();
    for response in [
        clerk
            .change("create_batch", &[("name", "Mine"), ("size", "10")])
            .await,
        clerk.post("batches", &[]).await,
        clerk.change("void_batch", &[("batch_id", &id)]).await,
        clerk.post("batch_postcards", &[("batch_id", &id)]).await,
        clerk.get(&format!("/api/batch.csv?id={id}")).await,
    ] {
        assert_eq!(
            refused(response).await,
            (StatusCode::FORBIDDEN, LoyaltyError::ManagersOnly)
        );
    }
    let list: Vec<BatchSummary> = manager.post("batches", &[]).await.json().await.unwrap();
    assert_eq!(list, vec![batch]);
}

#[tokio::test]
async fn another_programs_manager_is_told_the_batch_is_not_found_over_http() {
    let server = TestServer::start().await;
    let manager = ApiClient::sign_in(&server, &server.manager).await;
    let batch = made_over_http(&manager, "Spring", "3").await;
    let other = server::testkit::new_program(&server.db.owner, "Other program").await;
    let (_, theirs) = server.db.staff(other, Role::Manager).await;
    let intruder = ApiClient::sign_in(&server, &theirs).await;
    let id = batch.id.to_string();
    let list: Vec<BatchSummary> = intruder.post("batches", &[]).await.json().await.unwrap();
    assert_eq!(list, vec![]);
    for response in [
        intruder.change("void_batch", &[("batch_id", &id)]).await,
        intruder.post("batch_postcards", &[("batch_id", &id)]).await,
        intruder.get(&format!("/api/batch.csv?id={id}")).await,
    ] {
        assert_eq!(
            refused(response).await,
            (StatusCode::NOT_FOUND, LoyaltyError::BatchNotFound)
        );
    }
    let page = intruder
        .get(&format!("/batches/{id}/print"))
        .await
        .text()
        .await
        .unwrap();
    assert!(!page.contains("<svg"), "{page}");
    assert!(page.contains("BATCH_NOT_FOUND"), "{page}");
}

#[tokio::test]
async fn the_csv_lists_every_code_of_the_batch_as_the_database_has_it() {
    let server = TestServer::start().await;
    let manager = ApiClient::sign_in(&server, &server.manager).await;
    // A name a spreadsheet would run as a formula is written inert.
    let batch = made_over_http(&manager, "=Spring, \"north\"", "50").await;
    let codes = codes_of(&server.db, &batch).await;
    let till = Till::sign_in(&server.db, &server.clerk).await;
    for code in &codes[..3] {
        till.claim(code).await;
    }
    let response = manager
        .change("void_batch", &[("batch_id", &batch.id.to_string())])
        .await;
    assert_eq!(response.status(), StatusCode::OK);

    let response = manager
        .get(&format!("/api/batch.csv?id={}", batch.id))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/csv")
    );
    let body = response.text().await.unwrap();
    let mut reader = csv::Reader::from_reader(body.as_bytes());
    assert_eq!(
        reader.headers().unwrap(),
        &csv::StringRecord::from(vec!["code", "batch", "claimed_at", "withdrawn_at"])
    );
    let exported: Vec<(String, String, String, String)> = reader
        .records()
        .map(|r| {
            let r = r.unwrap();
            (r[0].into(), r[1].into(), r[2].into(), r[3].into())
        })
        .collect();
    let stamp = |at: Option<chrono::DateTime<chrono::Utc>>| {
        at.map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Micros, true))
            .unwrap_or_default()
    };
    type Stamp = Option<chrono::DateTime<chrono::Utc>>;
    let stored: Vec<(String, Stamp, Stamp)> = sqlx::query_as(
        "select code, claimed_at, voided_at from claim_codes where batch_id = $1 order by code",
    )
    .bind(batch.id)
    .fetch_all(&server.db.owner)
    .await
    .unwrap();
    let expected: Vec<(String, String, String, String)> = stored
        .into_iter()
        .map(|(code, claimed, voided)| {
            (
                code,
                "'=Spring, \"north\"".to_owned(),
                stamp(claimed),
                stamp(voided),
            )
        })
        .collect();
    assert_eq!(exported, expected);
    assert_eq!(exported.iter().filter(|r| !r.2.is_empty()).count(), 3);
    assert_eq!(exported.iter().filter(|r| !r.3.is_empty()).count(), 47);

    // The batches page says what became of the batch, and links to its export and its postcards.
    let page = manager.get("/batches").await.text().await.unwrap();
    let row = page
        .split(&format!("<tr data-batch=\"{}\">", batch.id))
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_else(|| panic!("no row for the batch in {page}"));
    assert!(
        row.contains(&format!(
            "47 unclaimed withdrawn on {} by Test Manager",
            today()
        )),
        "{row}"
    );
    assert!(
        row.contains(&format!("/api/batch.csv?id={}", batch.id)),
        "{row}"
    );
    assert!(
        row.contains(&format!("/batches/{}/print", batch.id)),
        "{row}"
    );
}

#[tokio::test]
async fn the_print_page_has_a_qr_code_for_every_postcard_still_to_claim() {
    let server = TestServer::start().await;
    let manager = ApiClient::sign_in(&server, &server.manager).await;
    let batch = made_over_http(&manager, "Spring", "12").await;
    let codes = codes_of(&server.db, &batch).await;
    Till::sign_in(&server.db, &server.clerk)
        .await
        .claim(&codes[0])
        .await;

    let response = manager.get(&format!("/batches/{}/print", batch.id)).await;
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    let cards: Vec<&str> = page.split("<article data-code=\"").skip(1).collect();
    assert_eq!(cards.len(), 11, "the claimed postcard is not printed again");
    for (card, code) in cards.iter().zip(&codes[1..]) {
        assert!(card.starts_with(&format!("{code}\"")), "{card}");
        let card = card.split("</article>").next().unwrap();
        assert_eq!(card.matches("<svg").count(), 1, "{card}");
        assert!(card.contains("<path"), "{card}");
        assert!(card.contains(code.as_str()));
    }

    // The API gives the same postcards, and the QR code holds the code itself.
    let sheet: app::batches::PostcardSheet = manager
        .post("batch_postcards", &[("batch_id", &batch.id.to_string())])
        .await
        .json()
        .await
        .unwrap();
    let printed: Vec<&str> = sheet.postcards.iter().map(|p| p.code.as_str()).collect();
    assert_eq!(
        printed,
        codes[1..].iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(sheet.next_after, None);
    // A 17-character code is a version 1 QR code (21 modules) inside a quiet zone of 4: its top-left finder
    // pattern starts with a run of 7 dark modules at (4, 4).
    let svg = &sheet.postcards[0].qr_svg;
    assert_eq!(svg, &batches::qr_svg(&sheet.postcards[0].code).unwrap());
    assert!(svg.contains("viewBox=\"0 0 29 29\""), "{svg}");
    assert!(svg.contains(" d=\"M4 4h7v1h-7z"), "{svg}");
}

#[tokio::test]
async fn misses_are_throttled_with_growing_waits() {
    let db = TestDb::new().await;
    let clerk = Till::clerk(&db).await;
    let real = db.postcard().await;
    for n in 0..5 {
        assert_eq!(
            clerk.scan(&unissued(n)).await,
            Err(LoyaltyError::InvalidCode)
        );
    }
    let first_wait = match clerk.scan(&unissued(5)).await {
        Err(LoyaltyError::Throttled { retry_after_secs }) => retry_after_secs,
        other => panic!("expected THROTTLED, got {other:?}"),
    };
    assert!((1..=4).contains(&first_wait), "{first_wait}");
    let err = clerk.scan(&real).await.unwrap_err();
    assert!(matches!(err, LoyaltyError::Throttled { .. }), "{err:?}");
    assert!(err.to_string().starts_with("Too many attempts: wait "));
    // A throttled attempt neither counts nor burns anything.
    let misses = || async {
        sqlx::query_scalar::<_, i64>("select count(*) from scan_misses")
            .fetch_one(&db.owner)
            .await
            .unwrap()
    };
    assert_eq!(misses().await, 5);

    // The wait has passed: the next miss is answered, and the wait after it is longer.
    let mut waits = vec![first_wait];
    for n in 6..9 {
        let waited = *waits.last().unwrap();
        sqlx::query("update scan_misses set at = at - make_interval(secs => $1)")
            .bind(waited as f64 + 1.0)
            .execute(&db.owner)
            .await
            .unwrap();
        assert_eq!(
            clerk.scan(&unissued(n)).await,
            Err(LoyaltyError::InvalidCode)
        );
        match clerk.scan(&unissued(n + 10)).await {
            Err(LoyaltyError::Throttled { retry_after_secs }) => waits.push(retry_after_secs),
            other => panic!("expected THROTTLED, got {other:?}"),
        }
    }
    eprintln!("waits after 5, 6, 7 and 8 misses: {waits:?} seconds");
    assert!(waits.windows(2).all(|w| w[1] > w[0]), "{waits:?}");
    assert_eq!(misses().await, 8);
    let unclaimed: bool =
        sqlx::query_scalar("select claimed_at is null from claim_codes where code = $1")
            .bind(&real)
            .fetch_one(&db.owner)
            .await
            .unwrap();
    assert!(unclaimed);
}

#[tokio::test]
async fn a_burst_of_concurrent_guesses_gets_only_the_free_misses() {
    const GUESSES: usize = 60;
    let db = TestDb::with_pool_size(30).await;
    let clerk = Till::clerk(&db).await;
    let barrier = Arc::new(Barrier::new(GUESSES));
    let tasks: Vec<_> = (0..GUESSES)
        .map(|n| {
            let (clerk, barrier) = (clerk.clone(), barrier.clone());
            tokio::spawn(async move {
                barrier.wait().await;
                clerk.scan(&unissued(n)).await
            })
        })
        .collect();
    let (mut invalid, mut throttled) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            Err(LoyaltyError::InvalidCode) => invalid += 1,
            Err(LoyaltyError::Throttled { .. }) => throttled += 1,
            other => panic!("unexpected answer {other:?}"),
        }
    }
    assert_eq!((invalid, throttled), (5, GUESSES - 5));
}

#[tokio::test]
async fn a_clerk_scanning_real_postcards_is_never_throttled_while_others_guess() {
    let db = TestDb::new().await;
    let guesser = Till::clerk(&db).await;
    let clerk = Till::clerk(&db).await;
    let manager = manager_of(&db, db.program_id).await;
    let batch = batch_of(&db, db.program_id, manager, 40).await;
    // The program is over its ceiling of misses from other staff members.
    for _ in 0..12 {
        let (other, _) = db.staff(db.program_id, Role::Clerk).await;
        sqlx::query(
            "insert into scan_misses (program_id, staff_id, at)
             select $1, $2, clock_timestamp() from generate_series(1, 5)",
        )
        .bind(db.program_id)
        .bind(other)
        .execute(&db.owner)
        .await
        .unwrap();
    }
    let mut guesses = Vec::new();
    for (n, code) in codes_of(&db, &batch).await.iter().enumerate() {
        guesses.push(guesser.scan(&unissued(n)).await);
        let scanned = clerk.scan(code).await;
        assert!(
            matches!(scanned, Ok(ScanOutcome::Claimed { .. })),
            "real postcard {n}: {scanned:?}"
        );
    }
    // The guesser's first miss is answered; after it the program's ceiling holds them.
    assert_eq!(guesses[0], Err(LoyaltyError::InvalidCode));
    assert!(
        guesses[1..]
            .iter()
            .all(|g| matches!(g, Err(LoyaltyError::Throttled { .. }))),
        "{guesses:?}"
    );
    // A clerk who mistyped once while the program is over its ceiling waits too.
    assert_eq!(
        clerk.scan(&unissued(99)).await,
        Err(LoyaltyError::InvalidCode)
    );
    assert!(matches!(
        clerk.scan(&db.postcard().await).await,
        Err(LoyaltyError::Throttled { .. })
    ));
}

#[tokio::test]
async fn throttling_in_one_program_does_not_reach_another() {
    let db = TestDb::new().await;
    let clerk = Till::clerk(&db).await;
    let other = server::testkit::new_program(&db.owner, "Other program").await;
    let their_clerk = Till::clerk_of(&db, other).await;
    for n in 0..5 {
        assert_eq!(
            clerk.scan(&unissued(n)).await,
            Err(LoyaltyError::InvalidCode)
        );
    }
    assert!(matches!(
        clerk.scan(&unissued(5)).await,
        Err(LoyaltyError::Throttled { .. })
    ));
    assert_eq!(
        their_clerk.scan(&unissued(5)).await,
        Err(LoyaltyError::InvalidCode)
    );
    let theirs = server::testkit::postcard_of(&db.owner, other).await;
    assert!(matches!(
        their_clerk.scan(&theirs).await,
        Ok(ScanOutcome::Claimed { .. })
    ));
}

#[tokio::test]
async fn the_scan_api_answers_429_after_the_free_misses_and_withdrawn_codes_count() {
    let server = TestServer::start().await;
    let manager = ApiClient::sign_in(&server, &server.manager).await;
    let batch = made_over_http(&manager, "Spring", "4").await;
    let codes = codes_of(&server.db, &batch).await;
    manager
        .change("void_batch", &[("batch_id", &batch.id.to_string())])
        .await;
    let clerk = ApiClient::sign_in(&server, &server.clerk).await;
    for code in &codes {
        let (status, err) = refused(clerk.change("scan", &[("code", code)]).await).await;
        assert_eq!(status, StatusCode::GONE);
        assert!(matches!(err, LoyaltyError::CodeVoided { .. }), "{err:?}");
    }
    let (status, err) = refused(clerk.change("scan", &[("code", &unissued(1))]).await).await;
    assert_eq!(
        (status, err),
        (StatusCode::UNPROCESSABLE_ENTITY, LoyaltyError::InvalidCode)
    );
    let (status, err) = refused(clerk.change("scan", &[("code", &unissued(2))]).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(matches!(err, LoyaltyError::Throttled { .. }), "{err:?}");
    // Typos are caught before the database and never count (avoiding them costs a guesser nothing), so even
    // a throttled clerk is told at once.
    let mut typo = unissued(3).into_bytes();
    typo[6] = if typo[6] == b'A' { b'B' } else { b'A' };
    let (_, err) = refused(
        clerk
            .change("scan", &[("code", &String::from_utf8(typo).unwrap())])
            .await,
    )
    .await;
    assert_eq!(err, LoyaltyError::MistypedCode);
    let misses: i64 = sqlx::query_scalar("select count(*) from scan_misses")
        .fetch_one(&server.db.owner)
        .await
        .unwrap();
    assert_eq!(misses, 5);
}

/// Batches and codes in the program, and the codes whose batch holds fewer or more than its size.
async fn batches_and_codes(db: &TestDb, program_id: Uuid) -> (i64, i64, i64) {
    sqlx::query_as(
        "select (select count(*) from claim_code_batches where program_id = $1),
                (select count(*) from claim_codes where program_id = $1),
                (select count(*) from claim_code_batches b
                  where b.program_id = $1
                    and b.size <> (select count(*) from claim_codes c
                                    where c.program_id = b.program_id and c.batch_id = b.id))",
    )
    .bind(program_id)
    .fetch_one(&db.owner)
    .await
    .unwrap()
}

#[tokio::test]
async fn an_order_sent_many_times_at_once_with_one_key_makes_one_batch() {
    const TASKS: usize = 12;
    let db = TestDb::with_pool_size(TASKS as u32).await;
    let manager = manager_of(&db, db.program_id).await;
    let barrier = Arc::new(Barrier::new(TASKS));
    let mut tasks = Vec::new();
    for _ in 0..TASKS {
        let (app, program_id, barrier) = (db.app.clone(), db.program_id, barrier.clone());
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            batches::create_batch(&app, program_id, manager, "Autumn", 500, Some("form-1")).await
        }));
    }
    let mut made = HashSet::new();
    for task in tasks {
        made.insert(task.await.unwrap().unwrap().id);
    }
    assert_eq!(made.len(), 1, "every call answered with the same batch");
    assert_eq!(batches_and_codes(&db, db.program_id).await, (1, 500, 0));

    // The same key later, for the same order: the same batch again. For another order: refused.
    let again = batches::create_batch(
        &db.app,
        db.program_id,
        manager,
        " Autumn ",
        500,
        Some("form-1"),
    )
    .await
    .unwrap();
    assert!(made.contains(&again.id));
    for (name, size) in [("Winter", 500), ("Autumn", 499)] {
        assert_eq!(
            batches::create_batch(&db.app, db.program_id, manager, name, size, Some("form-1"))
                .await,
            Err(LoyaltyError::IdempotencyMismatch)
        );
    }
    assert_eq!(batches_and_codes(&db, db.program_id).await, (1, 500, 0));

    // A key is the program's own; no key orders a batch every time.
    let other = server::testkit::new_program(&db.owner, "Other program").await;
    let theirs = manager_of(&db, other).await;
    let their_batch = batches::create_batch(&db.app, other, theirs, "Autumn", 5, Some("form-1"))
        .await
        .unwrap();
    assert!(!made.contains(&their_batch.id));
    for _ in 0..2 {
        batches::create_batch(&db.app, db.program_id, manager, "Autumn", 5, None)
            .await
            .unwrap();
    }
    assert_eq!(batches_and_codes(&db, db.program_id).await, (3, 510, 0));
    assert_eq!(batches_and_codes(&db, other).await, (1, 5, 0));
    let too_long = batches::create_batch(
        &db.app,
        db.program_id,
        manager,
        "Autumn",
        5,
        Some(&"k".repeat(201)),
    )
    .await
    .unwrap_err();
    assert!(matches!(too_long, LoyaltyError::InvalidInput { .. }));
    assert_eq!(
        too_long.to_string(),
        "This form is out of date: reload the page and try again."
    );
    let reused = batches::create_batch(
        &db.app,
        db.program_id,
        manager,
        "Winter",
        500,
        Some("form-1"),
    )
    .await
    .unwrap_err();
    assert_eq!(
        reused.to_string(),
        "This request was already used for a different transaction. Start it again."
    );
}

#[tokio::test]
async fn the_batches_page_gives_each_order_form_its_own_key_and_a_form_sent_twice_makes_one_batch()
{
    use app::batches::BatchesPageData;
    let server = TestServer::start().await;
    let manager = ApiClient::sign_in(&server, &server.manager).await;
    let page: BatchesPageData = manager
        .post("batches_page", &[])
        .await
        .json()
        .await
        .unwrap();
    let next: BatchesPageData = manager
        .post("batches_page", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(page.form_key, next.form_key);
    assert_eq!(page.batches, vec![]);

    let order = [
        ("name", "Spring"),
        ("size", "4"),
        ("request_key", page.form_key.as_str()),
    ];
    let first: BatchSummary = manager
        .change("create_batch", &order)
        .await
        .json()
        .await
        .unwrap();
    let second: BatchSummary = manager
        .change("create_batch", &order)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(first, second);
    let page: BatchesPageData = manager
        .post("batches_page", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page.batches, vec![first.clone()]);

    // The same form changed and sent again is refused; the next form orders the next batch.
    assert_eq!(
        refused(
            manager
                .change(
                    "create_batch",
                    &[
                        ("name", "Spring"),
                        ("size", "5"),
                        ("request_key", order[2].1)
                    ],
                )
                .await
        )
        .await,
        (StatusCode::CONFLICT, LoyaltyError::IdempotencyMismatch)
    );
    let later: BatchSummary = manager
        .change(
            "create_batch",
            &[
                ("name", "Spring"),
                ("size", "5"),
                ("request_key", next.form_key.as_str()),
            ],
        )
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(later.id, first.id);
    let page: BatchesPageData = manager
        .post("batches_page", &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page.batches, vec![later, first]);
}
