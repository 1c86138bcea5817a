//! Write-back: applies a writer's commits on the `changes` branch to MoneyWorks, verifies
//! them, and merges them into `main`. This module is the handler and only sequences I/O:
//! read the change set, plan it (`plan`, pure), import and re-read (`import`), judge and
//! report (`status`, pure; values compared by `compare`), and commit the result. It must not
//! poll on its own schedule: the cycle polls once before each write so `main` is current.

mod compare;
mod import;
mod plan;
mod status;

use std::collections::{BTreeMap, BTreeSet};

pub use compare::{normalise, verify};
pub use import::import_body;
pub use plan::{ChangePlan, FileVersions, MAX_RECORD_FILE_BYTES, PlannedRecord, plan};
pub use status::{
    FieldReport, FileReport, FileResult, Outcome, STATUS_PATH, StatusFile, WriteReport,
};

use crate::commit_message::{RecordNote, commit_message};
use crate::config::{REPO_CONFIG_PATH, RepoConfig, RepoConfigFile};
use crate::engine::{Engine, EngineError, SeqIndex};
use crate::events::{ChangedField, Event};
use crate::moneyworks::MoneyWorks;
use crate::pull::stage::{self, Staged};
use crate::record::Record;
use crate::store::{CommitId, CommitInfo, FileChange, Store};

/// A write as read from git: its tip commit and every file it touches, in three versions.
struct ChangeSet {
    info: CommitInfo,
    files: Vec<FileVersions>,
}

impl<M: MoneyWorks, S: Store> Engine<M, S> {
    /// The `changes` commit waiting to be handled, if any: not yet in `main` and not already
    /// answered by the status on `main`.
    pub async fn pending_write(&self) -> Result<Option<CommitId>, EngineError> {
        // Writes wait for the first poll to create main.
        let Some(main) = self.known.main.clone() else {
            return Ok(None);
        };
        let changes = self.settings().changes_branch.clone();
        let on_main = main.clone();
        let Some(tip) = self
            .store_call(move |s| match s.remote_tip(&changes)? {
                Some(tip) if !s.is_ancestor(&tip, &on_main)? => Ok(Some(tip)),
                _ => Ok(None),
            })
            .await?
        else {
            return Ok(None);
        };
        let answered = self
            .read_text(&main, STATUS_PATH)
            .await?
            .and_then(|text| StatusFile::parse(&text).ok())
            .and_then(|status| status.last_write)
            .is_some_and(|last| last.commit == tip.0 && last.outcome != Outcome::Applied);
        Ok((!answered).then_some(tip))
    }

    /// Handles the write ending at `tip`. `main` must be current (poll first).
    pub async fn handle_write(&mut self, tip: &CommitId) -> Result<Outcome, EngineError> {
        let main = self
            .known
            .main
            .clone()
            .ok_or_else(|| EngineError::Corrupt {
                path: self.settings().branch.clone(),
                detail: "writes need an existing main; wait for the first poll".into(),
            })?;
        let change = self.read_change_set(&main, tip).await?;
        let plan = plan(&self.known.repo.tables, change.files);
        let now = self.read_clock().await?;
        let mut report = WriteReport::new(tip, &change.info, now);
        tracing::info!(commit = %tip, "checked write changes@{}: {} to import, {} already applied, {} refused or conflicting", tip.short(), plan.apply.len(), plan.already.len(), plan.problems.len());
        if !plan.problems.is_empty() {
            let refusal = status::refusal(tip, &plan);
            report.outcome = refusal.outcome;
            report.files = refusal.files;
            for event in refusal.events {
                self.publish(event);
            }
            let hash = self.known.repo.hash();
            self.commit_status(report, BTreeMap::new(), &[], None, &hash)
                .await?;
            return Ok(refusal.outcome);
        }
        let refused = self.import_planned(&plan).await?;
        crate::engine::pause_point("after-import");
        let got = self.reread_planned(&plan).await?;
        for (r, got) in plan.apply.iter().zip(&got) {
            let file = status::judge(r, got.as_ref(), refused.get(&r.path).map(String::as_str));
            if file.result == FileResult::Applied {
                tracing::info!(key = %r.key, "verified {} {}", r.table.name, r.key);
            }
            report.files.push(file);
        }
        let merged = self
            .stage_server_truth(got.into_iter().flatten().collect())
            .await?;
        report.files.extend(
            plan.already
                .iter()
                .map(|p| FileReport::plain(p, FileResult::AlreadyApplied)),
        );
        self.finish_write(tip, report, merged, &plan).await
    }

    /// The tip's commit info and, for every path changed between the merge base and the tip,
    /// its bytes at the base, at the tip and on `main`.
    async fn read_change_set(
        &self,
        main: &CommitId,
        tip: &CommitId,
    ) -> Result<ChangeSet, EngineError> {
        let commit = tip.to_string();
        let (main, tip) = (main.clone(), tip.clone());
        let (info, files) = self
            .store_call(move |store| {
                let info = store.commit_info(&tip)?;
                let base = store.merge_base(&main, &tip)?;
                let paths = store.changed_paths(base.as_ref(), &tip)?;
                let read = |c: Option<&CommitId>, path: &str| match c {
                    Some(c) => store.read_file(c, path),
                    None => Ok(None),
                };
                let files = paths
                    .iter()
                    .map(|path| {
                        Ok(FileVersions {
                            path: path.clone(),
                            base: read(base.as_ref(), path)?,
                            desired: read(Some(&tip), path)?,
                            current: read(Some(&main), path)?,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                Ok((info, files))
            })
            .await?;
        let records = files
            .iter()
            .filter(|f| !f.path.starts_with(".mwsync/"))
            .count();
        self.publish(Event::WriteDetected {
            commit,
            author: info.author.clone(),
            records,
        });
        Ok(ChangeSet { info, files })
    }

    /// What `main` takes after the import: the re-read records as MoneyWorks holds them,
    /// staged against `main` (records already equal are left out).
    async fn stage_server_truth(&mut self, records: Vec<Record>) -> Result<Staged, EngineError> {
        let paths: BTreeSet<String> = records.iter().filter_map(|r| r.path().ok()).collect();
        let current = self.read_main_files(paths).await?;
        // No code moves here: a write cannot change a key, and the re-read is by key.
        let mut page = stage::stage(records, &current, &SeqIndex::default())?;
        // The newest-modified marker moves with pulls, not with write-backs.
        page.times.clear();
        let mut merged = Staged::default();
        self.apply_staged(page, &mut merged);
        Ok(merged)
    }

    /// Commits the outcome: a merge of the changes tip carrying what MoneyWorks holds (and a
    /// writer's new repo config) when every file applied, otherwise `main` takes the
    /// server's truth and the status says what did not stick.
    async fn finish_write(
        &mut self,
        tip: &CommitId,
        mut report: WriteReport,
        merged: Staged,
        plan: &ChangePlan,
    ) -> Result<Outcome, EngineError> {
        let failures: Vec<String> = report
            .files
            .iter()
            .filter(|f| f.result == FileResult::Failed)
            .map(|f| format!("{}: {}", f.path, f.reason))
            .collect();
        let mut changes = merged.files;
        if !failures.is_empty() {
            report.outcome = Outcome::Failed;
            let hash = self.known.repo.hash();
            self.commit_status(report, changes, &merged.notes, None, &hash)
                .await?;
            self.publish(Event::WriteFailed {
                commit: tip.to_string(),
                reasons: failures,
            });
            return Ok(Outcome::Failed);
        }
        if let Some(config) = &plan.config {
            changes.insert(
                REPO_CONFIG_PATH.to_string(),
                FileChange::Put(config.clone()),
            );
            report
                .files
                .push(FileReport::plain(REPO_CONFIG_PATH, FileResult::Applied));
        }
        // The merge carries the new config, so its trailer names the new config's hash;
        // mwsync switches to it only once the push succeeded.
        let new_repo = plan.config.as_deref().map(new_repo_config).transpose()?;
        let hash = new_repo
            .as_ref()
            .map_or_else(|| self.known.repo.hash(), RepoConfig::hash);
        let merged_as = self
            .commit_status(report, changes, &merged.notes, Some(tip.clone()), &hash)
            .await?;
        if let Some(repo) = new_repo {
            self.known.repo = repo;
        }
        self.publish(Event::WriteApplied {
            commit: tip.to_string(),
            merged_as: merged_as.to_string(),
            imported: plan.apply.len(),
        });
        Ok(Outcome::Applied)
    }

    /// Commits the status report (and any record changes) on `main`; a merge when `merge`
    /// names the changes tip.
    async fn commit_status(
        &mut self,
        report: WriteReport,
        mut changes: BTreeMap<String, FileChange>,
        notes: &[RecordNote],
        merge: Option<CommitId>,
        config_hash: &str,
    ) -> Result<CommitId, EngineError> {
        let outcome = report.outcome;
        let extra = status::commit_note(&report.commit, outcome);
        let status = StatusFile {
            last_write: Some(report),
        };
        changes.insert(
            STATUS_PATH.to_string(),
            FileChange::Put(status.to_toml().into_bytes()),
        );
        let verb = status::commit_verb(outcome);
        let message = commit_message(verb, notes, &self.known.state, config_hash, &extra);
        let new = self.commit_main(changes, message, merge).await?;
        for note in notes {
            self.publish(Event::RecordChanged {
                table: note.table.to_string(),
                key: note.key.clone(),
                action: note.action,
                fields: note.fields.iter().map(ChangedField::from).collect(),
                commit: new.to_string(),
            });
        }
        Ok(new)
    }
}

/// The writer's repo config, validated again (it was when planned).
fn new_repo_config(bytes: &[u8]) -> Result<RepoConfig, EngineError> {
    let text = String::from_utf8_lossy(bytes);
    Ok(RepoConfigFile::parse(&text, REPO_CONFIG_PATH)?.validate()?)
}
