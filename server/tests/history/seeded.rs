//! A history written straight into the ledger, and what each filter of it must find, worked out apart from SQL.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use loyalty_core::wire::{DailyPoints, HistoryFilter, HistorySummary, HistoryTotals, Role, TxType};
use server::testkit::TestDb;
use uuid::Uuid;

use crate::at;

fn xorshift(seed: u64) -> impl FnMut() -> u64 {
    let mut state = 0x9E37_79B9_7F4A_7C15_u64 ^ seed.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    }
}

pub(crate) struct StaffMember {
    pub(crate) id: Uuid,
    pub(crate) email: String,
    pub(crate) name: String,
}

/// One ledger row the test wrote, as the test knows it.
#[derive(Debug, Clone)]
pub(crate) struct Known {
    pub(crate) id: i64,
    pub(crate) member: String,
    pub(crate) tx_type: TxType,
    pub(crate) points: i64,
    pub(crate) balance_after: i64,
    pub(crate) staff: Option<usize>,
    pub(crate) created_at: DateTime<Utc>,
    pub(crate) description: String,
}

pub(crate) struct Seeded {
    pub(crate) rows: Vec<Known>,
    pub(crate) members: Vec<String>,
    pub(crate) staff: Vec<StaffMember>,
}

/// Rows on six days of March 2026, at whole-day boundaries and at many shared instants, for three members
/// and two staff members (and none), written straight into the ledger in shuffled order (so id order is not
/// time order), with balances that are the sums of their ledgers.
pub(crate) async fn seeded_history(db: &TestDb) -> Seeded {
    let mut next = xorshift(17);
    let mut members = Vec::new();
    for _ in 0..3 {
        members.push(db.member(0).await);
    }
    let mut staff = Vec::new();
    for (email, name, role) in [
        ("alice@example.com", "Alice Manager", Role::Manager),
        ("bob@example.com", "Bob Clerk", Role::Clerk),
    ] {
        staff.push(StaffMember {
            id: db.staff_named(db.program_id, email, name, role).await,
            email: email.into(),
            name: name.into(),
        });
    }
    // Shared instants: many rows at exactly the same moment.
    let shared = [at(3, 10, 0, 0, 0), at(4, 15, 30, 0, 123_456)];
    let mut times = vec![
        at(2, 0, 0, 0, 0),
        at(2, 23, 59, 59, 999_999),
        at(3, 0, 0, 0, 0),
        at(1, 0, 0, 0, 0),
        at(6, 23, 59, 59, 999_999),
    ];
    for _ in 0..115 {
        times.push(match next() % 4 {
            0 => shared[(next() % 2) as usize],
            _ => at(
                (next() % 6) as u32 + 1,
                (next() % 24) as u32,
                (next() % 60) as u32,
                (next() % 60) as u32,
                (next() % 1_000_000) as u32,
            ),
        });
    }
    let notes = [
        "coffee",
        "birthday bonus, with a comma",
        "said \"thanks\"",
        "two\nlines",
        "=SUM(A1:A9)",
        "@mention",
        "",
    ];
    let mut rows: Vec<Known> = times
        .into_iter()
        .map(|created_at| Known {
            id: 0,
            member: members[(next() % 3) as usize].clone(),
            tx_type: TxType::Earn,
            points: (next() % 100 + 1) as i64,
            balance_after: 0,
            staff: match next() % 3 {
                0 => None,
                n => Some(n as usize - 1),
            },
            created_at,
            description: notes[(next() % notes.len() as u64) as usize].into(),
        })
        .collect();
    // Types and balances in time order, so no balance is ever below zero.
    rows.sort_by_key(|r| r.created_at);
    let mut balances: BTreeMap<String, i64> = BTreeMap::new();
    for row in &mut rows {
        let balance = balances.entry(row.member.clone()).or_default();
        if *balance >= row.points && next().is_multiple_of(3) {
            row.tx_type = TxType::Redeem;
            *balance -= row.points;
        } else {
            *balance += row.points;
        }
        row.balance_after = *balance;
    }
    let mut order: Vec<(u64, usize)> = (0..rows.len()).map(|i| (next(), i)).collect();
    order.sort();
    for (_, i) in order {
        let row = &mut rows[i];
        row.id = sqlx::query_scalar(
            "insert into transactions
                (program_id, member_id, points, type, description, staff_id, balance_after, created_at)
             select $1, m.id, $3, $4, nullif($5, ''), $6, $7, $8
               from passes_master m where m.program_id = $1 and m.external_id = $2
             returning id",
        )
        .bind(db.program_id)
        .bind(&row.member)
        .bind(row.points as i32)
        .bind(row.tx_type.as_sql())
        .bind(&row.description)
        .bind(row.staff.map(|s| staff[s].id))
        .bind(row.balance_after as i32)
        .bind(row.created_at)
        .fetch_one(&db.owner)
        .await
        .unwrap();
    }
    for (member, balance) in &balances {
        sqlx::query("update passes_master set points = $2 where external_id = $1")
            .bind(member)
            .bind(*balance as i32)
            .execute(&db.owner)
            .await
            .unwrap();
    }
    assert!(db.invariant_violations().await.is_empty());
    Seeded {
        rows,
        members,
        staff,
    }
}

impl Seeded {
    /// What the filter must match, newest first, worked out here rather than in SQL.
    pub(crate) fn expected(&self, filter: &HistoryFilter) -> Vec<&Known> {
        let mut rows: Vec<&Known> = self
            .rows
            .iter()
            .filter(|r| {
                filter
                    .from
                    .is_none_or(|from| r.created_at.date_naive() >= from)
            })
            .filter(|r| filter.to.is_none_or(|to| r.created_at.date_naive() <= to))
            .filter(|r| filter.tx_type.is_none_or(|t| r.tx_type == t))
            .filter(|r| filter.member.as_ref().is_none_or(|m| &r.member == m))
            .filter(|r| {
                filter
                    .staff
                    .as_ref()
                    .is_none_or(|email| r.staff.is_some_and(|s| &self.staff[s].email == email))
            })
            .collect();
        rows.sort_by_key(|r| std::cmp::Reverse((r.created_at, r.id)));
        rows
    }

    pub(crate) fn staff_name(&self, row: &Known) -> Option<String> {
        row.staff.map(|s| self.staff[s].name.clone())
    }
}

pub(crate) fn sums(rows: &[&Known]) -> HistorySummary {
    let mut totals = HistoryTotals::default();
    let mut days: BTreeMap<NaiveDate, (i64, i64)> = BTreeMap::new();
    for row in rows {
        totals.transactions += 1;
        let day = days.entry(row.created_at.date_naive()).or_default();
        match row.tx_type {
            TxType::Earn => {
                totals.earned += row.points;
                day.0 += row.points;
            }
            TxType::Redeem => {
                totals.redeemed += row.points;
                day.1 += row.points;
            }
            TxType::Expire => totals.expired += row.points,
        }
    }
    let daily = days
        .into_iter()
        .map(|(day, (earned, redeemed))| DailyPoints {
            day,
            earned,
            redeemed,
        })
        .collect();
    HistorySummary { totals, daily }
}
