//! kennel's pure supervision engine: a deterministic state machine driven by events and a
//! caller-supplied clock.
//!
//! The shell (the daemon) feeds [`Event`]s into a [`Supervisor`] with the current
//! [`std::time::Instant`], carries out the [`Action`]s it polls, and wakes it at
//! [`Supervisor::poll_timeout`]. The engine owns unit states, restart counters, backoff,
//! start limits, dependency ordering, client command completion and the shutdown plan;
//! it never sleeps, reads a clock or touches the OS. See [`Supervisor`] for the call order.
//!
//! Files: [`api`] (the vocabulary), `supervisor` (dispatch and settling), `lifecycle`
//! (the state × input table), `unit` (per-unit record), `backoff` (delays and start
//! limit), `graph` (dependency questions), `commands` (client commands and waiters),
//! `shutdown`, `fmt` (texts), `out` (the action queue); [`start`] decides how a unit's
//! process (a container's above all) is started: the start plan.

pub mod api;
mod backoff;
mod commands;
mod control;
mod fmt;
mod graph;
mod lifecycle;
mod out;
mod shutdown;
pub mod start;
mod supervisor;
mod unit;

pub use api::*;
pub use supervisor::{Ending, Supervisor};
