//! The one integration test binary: modules mirror `src/` and talk to the simulator.

mod simulation;
mod store;
mod support;
