//! The staff dashboard and, behind the `ssr` feature, the loyalty domain service over PostgreSQL.

pub mod auth;
pub mod claim;
#[cfg(feature = "ssr")]
pub mod db;
pub mod members;
pub mod points;

pub use loyalty_core::{LoyaltyError, Result};
