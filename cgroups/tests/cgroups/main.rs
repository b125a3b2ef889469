//! Tests of kennel-cgroups: a fake cgroupfs in a tempdir for both layouts (no root
//! needed), and real cgroups on this host (root; skipped otherwise).

mod fake;
mod fake_v1;
mod fake_v2;
mod real;
