//! Attacks over real HTTP, driven from one table of every API endpoint: staff of one program aiming at
//! another program's data, state changes without the session's CSRF token, and garbage bodies.

mod fuzz;
mod reach;
mod table;
mod world;
