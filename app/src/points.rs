//! The point of sale: earn and redeem.

#[cfg(feature = "ssr")]
pub mod db;
