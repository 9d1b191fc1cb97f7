//! Batches over HTTP: for the program's managers only, exported as CSV and printed as QR codes.

use app::batches::BatchSummary;
use app::batches::db as batches;
use loyalty_core::LoyaltyError;
use loyalty_core::wire::Role;
use reqwest::StatusCode;
use server::testkit::{ApiClient, TestServer, Till, refused};

use crate::{codes_of, made_over_http, today};

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
