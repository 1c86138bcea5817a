//! The cucumber runner: every `features/*.feature` scenario, end to end against the
//! in-process fake MoneyWorks over real HTTP and an in-memory or real git repository. After
//! each scenario the shared invariants are checked; a violation fails the run.

mod steps;
mod support;

use cucumber::World as _;
use steps::SyncWorld;

#[tokio::main]
async fn main() {
    let features = concat!(env!("CARGO_MANIFEST_DIR"), "/features");
    SyncWorld::cucumber()
        .max_concurrent_scenarios(2)
        .fail_on_skipped()
        .after(|_feature, _rule, scenario, finished, world| {
            Box::pin(async move {
                let passed = matches!(finished, cucumber::event::ScenarioFinished::StepPassed);
                let Some(world) = world else { return };
                if !passed || world.skip_invariants {
                    return;
                }
                if world.binary.is_some() {
                    if let Err(e) = steps::process::check_process_invariants(world).await {
                        panic!("invariant broken after scenario `{}`: {e}", scenario.name);
                    }
                    return;
                }
                if let Some(h) = world.harness.as_mut()
                    && let Err(e) = h.check_invariants().await
                {
                    panic!("invariant broken after scenario `{}`: {e}", scenario.name);
                }
            })
        })
        .run_and_exit(features)
        .await;
}
