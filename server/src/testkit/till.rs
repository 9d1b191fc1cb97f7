//! A counter signed in as a staff member: earns, redeems and scans through the very functions the server's
//! `earn`, `redeem` and `scan` call, the session checked in the same statement, on the counter's connections.

use app::db::CounterPool;
use app::points::db::PointsRequest;
use app::session::{SessionKey, Staff};
use loyalty_core::Result;
use loyalty_core::wire::{PointsReceipt, Role, ScanOutcome, TxType};
use sqlx::PgPool;
use uuid::Uuid;

use super::db::TestDb;
use super::server::Credentials;

/// A staff member's session at the counter, opened by the real sign-in. Clones share the session.
#[derive(Clone)]
pub struct Till {
    /// Who is signed in, as the session says.
    pub staff: Staff,
    /// The `Cookie` header value, `loyalty_session=…`, for a page read as this staff member.
    pub cookie: String,
    /// The session's CSRF token, which every change carries.
    pub csrf: String,
    session: SessionKey,
    pool: PgPool,
    counter: CounterPool,
}

impl Till {
    /// A new clerk of the database's program, signed in.
    pub async fn clerk(db: &TestDb) -> Self {
        Self::clerk_of(db, db.program_id).await
    }

    /// A new clerk of `program_id` (one made with [`super::new_program`], say), signed in.
    pub async fn clerk_of(db: &TestDb, program_id: Uuid) -> Self {
        let (_, clerk) = db.staff(program_id, Role::Clerk).await;
        Self::sign_in(db, &clerk).await
    }

    /// `count` new clerks of the database's program, each signed in: tills that race each other.
    pub async fn clerks(db: &TestDb, count: usize) -> Vec<Self> {
        let mut signing_in = tokio::task::JoinSet::new();
        for _ in 0..count {
            let (_, clerk) = db.staff(db.program_id, Role::Clerk).await;
            let (pool, counter) = (db.app.clone(), db.counter.clone());
            signing_in.spawn(async move { Self::open(pool, counter, &clerk).await });
        }
        signing_in.join_all().await
    }

    /// `count` new managers of the database's program, each signed in: tills that race each other with
    /// adjustments, points typed by hand.
    pub async fn managers(db: &TestDb, count: usize) -> Vec<Self> {
        let mut signing_in = tokio::task::JoinSet::new();
        for _ in 0..count {
            let (_, manager) = db.staff(db.program_id, Role::Manager).await;
            let (pool, counter) = (db.app.clone(), db.counter.clone());
            signing_in.spawn(async move { Self::open(pool, counter, &manager).await });
        }
        signing_in.join_all().await
    }

    /// `who`, a staff member of the database (a [`super::TestServer`]'s clerk, say), signed in.
    pub async fn sign_in(db: &TestDb, who: &Credentials) -> Self {
        Self::open(db.app.clone(), db.counter.clone(), who).await
    }

    async fn open(pool: PgPool, counter: CounterPool, who: &Credentials) -> Self {
        let opened = app::auth::db::sign_in(&pool, &who.email, &who.password, "test till")
            .await
            .unwrap_or_else(|e| panic!("signing {} in: {e}", who.email));
        Self {
            session: SessionKey::from_cookie(&opened.cookie_value).expect("a session cookie"),
            csrf: opened.staff.csrf_token.clone(),
            cookie: format!("{}={}", app::session::SESSION_COOKIE, opened.cookie_value),
            staff: opened.staff,
            pool,
            counter,
        }
    }

    /// An adjustment, points added or taken by hand with a reason: a manager's to make.
    pub async fn apply(&self, request: &PointsRequest<'_>) -> Result<PointsReceipt> {
        app::points::db::apply_points(&self.counter, &self.session, &self.csrf, request).await
    }

    /// Adds `points` for the member by hand (a manager's adjustment), with no idempotency key.
    pub async fn earn(&self, external_id: &str, points: i64) -> Result<PointsReceipt> {
        self.apply(&points_request(external_id, TxType::Earn, points))
            .await
    }

    /// Takes `points` of the member by hand (a manager's adjustment), with no idempotency key.
    pub async fn redeem(&self, external_id: &str, points: i64) -> Result<PointsReceipt> {
        self.apply(&points_request(external_id, TxType::Redeem, points))
            .await
    }

    /// Earns the points of a sale of `amount` ("12.50"), as the point of sale sends it.
    pub async fn sale(
        &self,
        external_id: &str,
        amount: &str,
        idempotency_key: Option<&str>,
        sold_at: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<PointsReceipt> {
        let sale = app::points::db::Sale {
            external_id,
            amount,
            idempotency_key,
            sold_at,
        };
        app::points::db::earn_from_sale(&self.counter, &self.session, &self.csrf, &sale).await
    }

    /// A manager of the database's program, signed in.
    pub async fn manager(db: &TestDb) -> Self {
        let (_, manager) = db.staff(db.program_id, Role::Manager).await;
        Self::sign_in(db, &manager).await
    }

    /// Adds a reward to the catalog (as a manager must): its id.
    pub async fn add_reward(
        &self,
        name: &str,
        points_cost: i64,
        stock: Option<i64>,
        daily_limit: Option<i64>,
    ) -> Result<i64> {
        let change = app::rewards::db::RewardChange {
            reward_id: None,
            name,
            points_cost,
            stock,
            daily_limit,
        };
        app::rewards::db::save_reward(&self.pool, &self.staff, &change).await
    }

    /// Redeems a reward of the catalog for the member.
    pub async fn redeem_reward(
        &self,
        external_id: &str,
        reward_id: i64,
        idempotency_key: Option<&str>,
    ) -> Result<PointsReceipt> {
        app::rewards::db::redeem_reward(
            &self.counter,
            &self.session,
            &self.csrf,
            external_id,
            reward_id,
            idempotency_key,
        )
        .await
    }

    /// Scans what a scanner read or a clerk typed: a postcard is burned, a member pass is looked up.
    pub async fn scan(&self, code: &str) -> Result<ScanOutcome> {
        app::claim::resolve_scan(
            &self.counter,
            &super::contact_key(),
            &self.session,
            &self.csrf,
            code,
        )
        .await
    }

    /// Gives a member a phone number or an email, as typed at the counter.
    pub async fn set_contact(
        &self,
        external_id: &str,
        contact: &str,
    ) -> Result<loyalty_core::wire::ContactHint> {
        app::contacts::db::set_contact(
            &self.counter,
            &self.session,
            &super::contact_key(),
            &self.csrf,
            external_id,
            contact,
        )
        .await
    }

    /// Returns `points` of ledger row `transaction_id`, under `idempotency_key` if given.
    pub async fn reverse(
        &self,
        transaction_id: i64,
        points: i64,
        idempotency_key: Option<&str>,
    ) -> Result<loyalty_core::wire::Reversal> {
        app::returns::db::reverse(
            &self.counter,
            &self.session,
            &self.csrf,
            transaction_id,
            points,
            idempotency_key,
        )
        .await
    }

    /// Replaces a lost pass with a new one; the new pass.
    pub async fn replace_pass(&self, external_id: &str) -> Result<loyalty_core::wire::Member> {
        app::members::db::replace_pass(&self.counter, &self.session, &self.csrf, external_id).await
    }

    /// Takes a member's phone number or email away.
    pub async fn remove_contact(
        &self,
        external_id: &str,
        kind: loyalty_core::ContactKind,
    ) -> Result<()> {
        app::contacts::db::remove_contact(
            &self.counter,
            &self.session,
            &self.csrf,
            external_id,
            kind,
        )
        .await
    }

    /// Scans a postcard that must become a member: the new pass's external id.
    pub async fn claim(&self, postcard: &str) -> String {
        match self.scan(postcard).await {
            Ok(ScanOutcome::Claimed { member, .. }) => member.external_id,
            other => panic!("claiming {postcard}: {other:?}"),
        }
    }
}

/// The reason [`points_request`] gives.
pub const REASON: &str = "counted by hand";

/// An adjustment of `points` with its reason ([`REASON`]), no idempotency key and no time of sale.
pub fn points_request(external_id: &str, tx_type: TxType, points: i64) -> PointsRequest<'_> {
    PointsRequest {
        external_id,
        tx_type,
        points,
        note: Some(REASON),
        idempotency_key: None,
        sold_at: None,
    }
}
