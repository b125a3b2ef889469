//! kennel's integration tests: the real binary, as root, each test with its own sandbox
//! (`harness::Sandbox`): a private directory and kennel as PID 1 of its own pid + mount
//! namespace, torn down with everything in it when the test ends.

mod harness;
mod supervise;
