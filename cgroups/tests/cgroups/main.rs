//! Tests of kennel-cgroups: a fake cgroupfs in a tempdir for both layouts (no root
//! needed), and real cgroups on this host (root; skipped out loud otherwise, a failure under CI).

mod fake;
mod fake_v1;
mod fake_v2;
mod real;
/// Skipping out loud, as every test crate of the workspace does (integration/skip.rs).
#[path = "../../../integration/skip.rs"]
mod skip;
