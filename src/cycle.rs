//! One daemon cycle: a poll, then every write waiting on `changes` (each after a fresh poll,
//! so `main` is current), then the fingerprint scans that are due and a full sync the repo
//! config requests. A table that fails is reported and the rest of the cycle goes on. It
//! owns that order, the cycle's rollback and starting a cycle again after mwsync adopted its
//! own push from before a restart; it must not sleep or schedule (that is `daemon`).

use crate::engine::{Engine, EngineError};
use crate::events::{ActivityKind, Event};
use crate::moneyworks::MoneyWorks;
use crate::pull::PollReport;
use crate::store::Store;

/// Most writes handled in one cycle, so a writer pushing without pause cannot starve scans.
pub const MAX_WRITES_PER_CYCLE: usize = 16;

/// How many times a cycle starts again after adopting mwsync's own late push.
const MAX_ADOPTIONS_PER_CYCLE: usize = 3;

impl<M: MoneyWorks, S: Store> Engine<M, S> {
    /// One daemon cycle. A failed cycle rolls back what it staged. When `main` turns out
    /// to be at mwsync's own push from before a restart, that push is adopted and the cycle
    /// starts again on top of it.
    pub async fn cycle(&mut self) -> Result<PollReport, EngineError> {
        let mut adopted = 0;
        loop {
            let mut result = self.cycle_inner().await;
            if result.is_ok() {
                if let Err(e) = self.land().await {
                    result = Err(e);
                }
            } else {
                self.land_after_failure().await;
            }
            if result.is_err() {
                self.known.rollback();
            }
            match result {
                Err(EngineError::Adopted { .. }) if adopted < MAX_ADOPTIONS_PER_CYCLE => {
                    adopted += 1;
                }
                other => return other,
            }
        }
    }

    async fn cycle_inner(&mut self) -> Result<PollReport, EngineError> {
        let mut report = self.poll().await?;
        // Writes come before scans: a writer's config change (say, a higher
        // max_delete_percent after a mass-delete stop) must be able to take effect.
        let mut handled = 0;
        while let Some(tip) = self.pending_write().await? {
            self.check_cancelled()?;
            self.publish(Event::Activity {
                kind: ActivityKind::WritingBack,
                table: None,
            });
            self.handle_write(&tip).await?;
            handled += 1;
            report.add(&self.poll().await?);
            if handled >= MAX_WRITES_PER_CYCLE {
                break;
            }
        }
        self.check_cancelled()?;
        if let Some(clock) = self.known.last_clock {
            for failed in self.fingerprint_scan_due(clock.time).await? {
                report.note_table_error(failed);
            }
        }
        self.check_cancelled()?;
        self.full_sync_if_requested().await?;
        Ok(report)
    }
}
