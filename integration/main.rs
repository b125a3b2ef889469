//! kennel's integration tests: the real binary, as root, each test with its own sandbox
//! (`harness::Sandbox`): a private directory and kennel as PID 1 of its own pid + mount
//! namespace, torn down with everything in it when the test ends. One file per area; each
//! test is named after the promise it checks (see `docs/`).

mod ctr;
mod harness;
mod podman_images;
mod podman_util;
mod skip;

mod around;
mod bench;
mod bench_report;
mod cgroups;
mod check;
mod cni;
mod cni_units;
mod containers;
mod control;
mod dispositions;
mod escape;
mod exec;
mod help;
mod images;
mod logs;
mod nested;
mod net;
mod networks;
mod nocgroups;
mod oci;
mod oci_containerd;
mod oci_podman;
mod podman;
mod readiness;
mod reaping;
mod reload;
mod restart;
mod run;
mod shutdown;
mod sockets;
mod stop;
mod supervise;
mod systemd_units;
mod userns;
mod vm;
mod vm_disk;
