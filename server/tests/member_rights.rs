//! A member's rights, exercised by a manager: everything kept about one pass as JSON, and the erasure of its
//! phone number and email while the ledger stays.

use loyalty_core::LoyaltyError;
use reqwest::StatusCode;
use server::testkit::{ApiClient, TestServer, Till, member_of, new_program, refused};

#[tokio::test]
async fn a_manager_downloads_everything_kept_about_one_pass_and_nothing_else() {
    let server = TestServer::start().await;
    let db = &server.db;
    let member = db.member(30).await;
    let other = db.member(99).await;
    let clerk = Till::clerk(db).await;
    clerk.set_contact(&member, "06 12 34 48 21").await.unwrap();
    clerk.set_contact(&member, "ada@example.com").await.unwrap();
    clerk.sale(&member, "12", None, None).await.unwrap();

    let manager = ApiClient::sign_in(&server, &server.manager).await;
    let response = manager
        .get(&format!(
            "/api/member_export.json?member={}",
            member.to_lowercase()
        ))
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-disposition"],
        format!("attachment; filename=\"member-{member}.json\"").as_str()
    );
    let body = response.text().await.unwrap();
    let export: app::rights::MemberExport = serde_json::from_str(&body).unwrap();
    assert_eq!(export.pass.external_id, member);
    assert_eq!(export.pass.points, 42);
    let hints: Vec<&str> = export.contacts.iter().map(|c| c.hint.as_str()).collect();
    assert_eq!(hints, ["... 4821", "a...@example.com"]);
    assert_eq!(
        export.ledger.len(),
        2,
        "every row: the opening earn and the sale"
    );
    assert!(!body.contains(&other), "another member's pass is not in it");
    assert!(
        !body.contains("612344821") && !body.contains("ada@"),
        "{body}"
    );

    // Clerks may not, and another program's pass is not there.
    let clerk_http = ApiClient::sign_in(&server, &server.clerk).await;
    let (status, err) = refused(
        clerk_http
            .get(&format!("/api/member_export.json?member={member}"))
            .await,
    )
    .await;
    assert_eq!(
        (status, err),
        (StatusCode::FORBIDDEN, LoyaltyError::ManagersOnly)
    );
    let theirs = member_of(&db.owner, new_program(&db.owner, "Another Café").await, 5).await;
    let (status, err) = refused(
        manager
            .get(&format!("/api/member_export.json?member={theirs}"))
            .await,
    )
    .await;
    assert_eq!(
        (status, err),
        (StatusCode::NOT_FOUND, LoyaltyError::MemberNotFound)
    );
}

#[tokio::test]
async fn a_manager_erases_a_members_contacts_and_the_ledger_stays() {
    let server = TestServer::start().await;
    let db = &server.db;
    let member = db.member(30).await;
    let till = Till::clerk(db).await;
    till.set_contact(&member, "06 12 34 48 21").await.unwrap();
    till.set_contact(&member, "ada@example.com").await.unwrap();
    let rows_before = db.ledger_rows().await;

    let clerk = ApiClient::sign_in(&server, &server.clerk).await;
    let (status, err) = refused(
        clerk
            .change("erase_contacts", &[("external_id", &member)])
            .await,
    )
    .await;
    assert_eq!(
        (status, err),
        (StatusCode::FORBIDDEN, LoyaltyError::ManagersOnly)
    );

    let manager = ApiClient::sign_in(&server, &server.manager).await;
    let response = manager
        .change("erase_contacts", &[("external_id", &member)])
        .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<i64>().await.unwrap(), 2);
    for typed in ["06 12 34 48 21", "ada@example.com"] {
        let found = till.scan(typed).await;
        assert_eq!(found, Err(LoyaltyError::ContactNotFound), "{typed}");
    }
    let kept: i64 = sqlx::query_scalar("select count(*) from member_contacts")
        .fetch_one(&db.owner)
        .await
        .unwrap();
    assert_eq!(kept, 0);
    assert_eq!(db.ledger_rows().await, rows_before);
    assert_eq!(db.balance(&member).await, 30);
}
