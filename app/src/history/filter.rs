//! The history's filter: read from a form or a query string, checked, and written back into links.

use leptos_router::params::ParamsMap;
use loyalty_core::LoyaltyError;
use loyalty_core::error::DateBound;
use loyalty_core::wire::{HistoryFilter, TxType};

pub(super) fn given(value: Option<&str>) -> Option<&str> {
    value.map(str::trim).filter(|v| !v.is_empty())
}

/// Reads the filter as the form sends it: blank fields mean "any", dates are `YYYY-MM-DD`.
pub fn parse_filter(
    from: Option<&str>,
    to: Option<&str>,
    tx_type: Option<&str>,
    member: Option<&str>,
    staff: Option<&str>,
) -> Result<HistoryFilter, LoyaltyError> {
    let date = |value: Option<&str>, bound: DateBound| {
        given(value)
            .map(|v| {
                chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d")
                    .map_err(|_| LoyaltyError::InvalidDate { bound })
            })
            .transpose()
    };
    let from = date(from, DateBound::Start)?;
    let to = date(to, DateBound::End)?;
    if let (Some(from), Some(to)) = (from, to)
        && from > to
    {
        return Err(LoyaltyError::StartAfterEnd);
    }
    let tx_type = match given(tx_type).map(str::to_ascii_uppercase).as_deref() {
        None | Some("ALL") => None,
        Some(other) => Some(TxType::from_sql(other).ok_or(LoyaltyError::InvalidTypeFilter)?),
    };
    let member = given(member).map(str::to_ascii_uppercase);
    if member.as_ref().is_some_and(|m| m.len() > 64) {
        return Err(LoyaltyError::MemberFilterTooLong);
    }
    let staff = given(staff).map(str::to_lowercase);
    if staff.as_ref().is_some_and(|s| s.len() > 254) {
        return Err(LoyaltyError::StaffFilterTooLong);
    }
    // PostgreSQL text cannot hold a NUL: refused here, before the CSV's answer has begun.
    if [&member, &staff]
        .into_iter()
        .flatten()
        .any(|v| v.contains('\0'))
    {
        return Err(LoyaltyError::UnsearchableFilter);
    }
    Ok(HistoryFilter {
        from,
        to,
        tx_type,
        member,
        staff,
    })
}

/// The page's query string, as the history server function takes it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(super) struct HistoryQuery {
    pub(super) from: Option<String>,
    pub(super) to: Option<String>,
    pub(super) tx_type: Option<String>,
    pub(super) member: Option<String>,
    pub(super) staff: Option<String>,
    pub(super) cursor: Option<String>,
}

impl HistoryQuery {
    pub(super) fn read(query: &ParamsMap) -> Self {
        let field = |name: &str| query.get(name).filter(|v| !v.trim().is_empty());
        Self {
            from: field("from"),
            to: field("to"),
            tx_type: field("type"),
            member: field("member"),
            staff: field("staff"),
            cursor: field("cursor"),
        }
    }

    /// A link to `path` with the filter and, if given, `cursor` in its query string.
    pub(super) fn link(&self, path: &str, cursor: Option<&str>) -> String {
        let mut query = form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("from", self.from.as_deref()),
            ("to", self.to.as_deref()),
            ("type", self.tx_type.as_deref()),
            ("member", self.member.as_deref()),
            ("staff", self.staff.as_deref()),
            ("cursor", cursor),
        ] {
            if let Some(value) = value {
                query.append_pair(name, value);
            }
        }
        let query = query.finish();
        if query.is_empty() {
            path.to_owned()
        } else {
            format!("{path}?{query}")
        }
    }
}
