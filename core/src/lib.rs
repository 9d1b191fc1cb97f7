//! The loyalty domain's shared vocabulary, used by the server, the web pages and the counter terminal alike.

pub mod code;
pub mod contact;
pub mod error;
#[cfg(feature = "tls")]
pub mod tls;
pub mod wire;

pub use code::{ScanCode, parse_scan};
pub use contact::{Contact, ContactKind};
pub use error::{LoyaltyError, Result};
