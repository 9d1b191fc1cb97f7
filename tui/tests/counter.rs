//! The counter terminal without a server: key and answer events into state, and state onto an 80x24 screen.

#[path = "counter/support.rs"]
mod support;

#[path = "counter/catalog.rs"]
mod catalog;
#[path = "counter/offline.rs"]
mod offline;
#[path = "counter/overtaken.rs"]
mod overtaken;
#[path = "counter/screens.rs"]
mod screens;
#[path = "counter/update.rs"]
mod update;
