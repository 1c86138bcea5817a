//! The one integration test binary: modules mirror `src/` and talk to the simulator.

mod browser;
mod demo;
mod doctor;
mod e2e;
mod gateway;
mod gateway_e2e;
mod golden;
mod interop;
mod landing;
mod layout_move;
mod paths;
mod simulation;
mod status;
mod store;
mod support;
