//! Members: their passes, balances and ledgers.

#[cfg(feature = "ssr")]
pub mod db;
