//! Deterministic tests of the supervision engine: a fake clock and a fake shell drive a
//! `Supervisor` and the tests assert the exact actions it emits.

mod harness;

mod around;
mod commands;
mod conditions;
mod forking;
mod health;
mod ready;
mod reload;
mod restart;
mod shutdown;
mod start;
mod stop;
