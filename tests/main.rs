//! The one integration test binary: modules mirror `src/` and talk to the simulator.

mod e2e;
mod gateway;
mod golden;
mod interop;
mod simulation;
mod store;
mod support;
