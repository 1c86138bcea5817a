//! Write-back: applies a writer's commits on the `changes` branch to MoneyWorks, verifies
//! them, and merges them into `main`. This module is the handler and only sequences I/O:
//! read the change set, plan it (`plan`, pure), read every planned record live and judge it
//! (`live`, pure), import in batches and re-read (`import`), report (`status`, pure; values
//! compared by `compare`), and commit the result. It must not poll on its own schedule: the
//! cycle polls once before each write so `main` is current.

mod compare;
mod import;
mod live;
mod plan;
mod status;

use std::collections::BTreeMap;

pub use compare::{normalise, verify};
pub use import::import_body;
pub use plan::{
    ChangePlan, FileVersions, MAX_RECORD_FILE_BYTES, PlannedRecord, plan, refuse_case_twins,
};
pub use status::{
    FieldReport, FileReport, FileResult, Outcome, STATUS_PATH, StatusFile, WriteReport,
};

use crate::commit_message::{RecordNote, commit_message};
use crate::config::{REPO_CONFIG_PATH, RepoConfig, RepoConfigFile};
use crate::engine::{Engine, EngineError};
use crate::events::{ChangedField, Event};
use crate::moneyworks::MoneyWorks;
use crate::pull::stage::Staged;
use crate::record::{KeyField, Record, RecordKey, TableInfo, parse_record_path};
use crate::store::{CommitId, CommitInfo, FileChange, Store};
use import::batches;

/// A write as read from git: its tip commit and every file it touches, in both versions, or
/// why the write as a whole is refused.
struct ChangeSet {
    info: CommitInfo,
    files: Result<Vec<FileVersions>, String>,
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
        let now = self.read_clock().await?;
        let mut report = WriteReport::new(tip, &change.info, now);
        let files = match change.files {
            Ok(files) => files,
            Err(reason) => return self.refuse_write(tip, report, reason).await,
        };
        let mut plan = plan(&self.known.repo.tables, files);
        let main_codes = self.main_codes(&main, &plan).await?;
        refuse_case_twins(&mut plan, &main_codes);
        let page = self.known.repo.file.page_size as usize;
        let mut batches = batches(std::mem::take(&mut plan.apply), page);
        let mut truth = Vec::new();
        if plan.problems.is_empty() {
            truth = self.live_precondition(&mut batches, &mut plan).await?;
        }
        tracing::info!(commit = %tip, "checked write changes@{}: {} to import, {} already applied, {} refused or conflicting", tip.short(), batches.iter().map(|b| b.records.len()).sum::<usize>(), plan.already.len(), plan.problems.len());
        if !plan.problems.is_empty() {
            plan.apply = batches.into_iter().flat_map(|b| b.records).collect();
            return self.refuse_files(tip, report, &plan, truth).await;
        }
        let imported = self.import_batches(batches).await?;
        report.files = imported.files;
        truth.extend(imported.truth);
        let merged = self.stage_server_truth(truth).await?;
        report.files.extend(
            plan.already
                .iter()
                .map(|p| FileReport::plain(p, FileResult::AlreadyApplied)),
        );
        self.finish_write(tip, report, merged, plan.config, imported.count)
            .await
    }

    /// Refuses the write for the problems of its files, before anything is sent. `main`
    /// takes the live copies the precondition read, so a writer rebases on the truth.
    async fn refuse_files(
        &mut self,
        tip: &CommitId,
        mut report: WriteReport,
        plan: &ChangePlan,
        truth: Vec<Record>,
    ) -> Result<Outcome, EngineError> {
        let refusal = status::refusal(tip, plan);
        report.outcome = refusal.outcome;
        report.files = refusal.files;
        for event in refusal.events {
            self.publish(event);
        }
        let merged = self.stage_server_truth(truth).await?;
        let hash = self.known.repo.hash();
        self.commit_status(report, merged.files, &merged.notes, None, &hash)
            .await?;
        Ok(refusal.outcome)
    }

    /// Refuses the write as a whole, with one reason, before anything is read or sent.
    async fn refuse_write(
        &mut self,
        tip: &CommitId,
        mut report: WriteReport,
        reason: String,
    ) -> Result<Outcome, EngineError> {
        report.outcome = Outcome::Rejected;
        report.reason = reason.clone();
        self.publish(Event::WriteRejected {
            commit: tip.to_string(),
            reasons: vec![reason],
        });
        let hash = self.known.repo.hash();
        self.commit_status(report, BTreeMap::new(), &[], None, &hash)
            .await?;
        Ok(Outcome::Rejected)
    }

    /// The codes on `main` of every code-keyed table the plan creates records in.
    async fn main_codes(
        &self,
        main: &CommitId,
        plan: &ChangePlan,
    ) -> Result<BTreeMap<&'static str, Vec<String>>, EngineError> {
        let tables: BTreeMap<&'static str, &'static TableInfo> = plan
            .apply
            .iter()
            .filter(|r| r.is_create() && matches!(r.table.key, KeyField::Code(_)))
            .map(|r| (r.table.name, r.table))
            .collect();
        let mut out = BTreeMap::new();
        for (name, table) in tables {
            let on_main = main.clone();
            let files = self
                .store_call(move |s| s.list_files(&on_main, table.element))
                .await?;
            let codes = files
                .iter()
                .filter_map(|p| match parse_record_path(p) {
                    Ok((_, RecordKey::Code(c))) => Some(c),
                    _ => None,
                })
                .collect();
            out.insert(name, codes);
        }
        Ok(out)
    }

    /// The tip's commit info and, for every path changed between the merge base and the tip,
    /// its bytes at the base and at the tip. A tip with no common history with `main`, or
    /// one that changes more files than `max_write_files`, is refused as a whole before any
    /// file is read.
    async fn read_change_set(
        &self,
        main: &CommitId,
        tip: &CommitId,
    ) -> Result<ChangeSet, EngineError> {
        let (on_main, at) = (main.clone(), tip.clone());
        let (info, base, paths) = self
            .store_call(move |s| {
                let info = s.commit_info(&at)?;
                let base = s.merge_base(&on_main, &at)?;
                let paths = s.changed_paths(base.as_ref(), &at)?;
                Ok((info, base, paths))
            })
            .await?;
        let records = paths.iter().filter(|p| !p.starts_with(".mwsync/")).count();
        self.publish(Event::WriteDetected {
            commit: tip.to_string(),
            author: info.author.clone(),
            records,
        });
        let Some(base) = base else {
            let branch = &self.settings().branch;
            let reason = format!(
                "the changes branch has no common history with {branch}, so mwsync cannot tell what you changed. \
                 Start a branch from {branch} (git switch --create my-edit origin/{branch}), make your edits there and push it to changes"
            );
            return Ok(ChangeSet {
                info,
                files: Err(reason),
            });
        };
        let limit = self.known.repo.file.max_write_files as usize;
        if paths.len() > limit {
            let reason = format!(
                "the write changes {} files, more than max_write_files = {limit} in .mwsync/config.toml allows; \
                 split it into writes of at most {limit} files, or raise max_write_files through changes first",
                paths.len()
            );
            return Ok(ChangeSet {
                info,
                files: Err(reason),
            });
        }
        let at = tip.clone();
        let files = self
            .store_call(move |s| {
                paths
                    .into_iter()
                    .map(|path| {
                        Ok(FileVersions {
                            base: s.read_file(&base, &path)?,
                            desired: s.read_file(&at, &path)?,
                            path,
                        })
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
        Ok(ChangeSet {
            info,
            files: Ok(files),
        })
    }

    /// What `main` takes from a write: the records as MoneyWorks holds them (read live or
    /// after the import), staged against `main` like a pull's page (records already equal
    /// are left out; a code changed in MoneyWorks moves its file).
    async fn stage_server_truth(&mut self, records: Vec<Record>) -> Result<Staged, EngineError> {
        let mut merged = Staged::default();
        let page = self.stage_records(records, &merged).await?;
        self.apply_staged(page, &mut merged);
        // The newest-modified marker moves with pulls, not with write-backs.
        merged.times.clear();
        Ok(merged)
    }

    /// Commits the outcome: a merge of the changes tip carrying what MoneyWorks holds (and a
    /// writer's new repo config) when every file applied; otherwise `main` takes the
    /// server's truth and the status says what did not stick (`failed`) or what MoneyWorks
    /// changed meanwhile (`lost_race`).
    async fn finish_write(
        &mut self,
        tip: &CommitId,
        mut report: WriteReport,
        merged: Staged,
        config: Option<Vec<u8>>,
        imported: usize,
    ) -> Result<Outcome, EngineError> {
        let reasons = |results: &[FileResult]| -> Vec<String> {
            report
                .files
                .iter()
                .filter(|f| results.contains(&f.result))
                .map(|f| format!("{}: {}", f.path, f.reason))
                .collect()
        };
        let failures = reasons(&[FileResult::Failed]);
        let races = reasons(&[FileResult::LostRace, FileResult::Conflict]);
        let mut changes = merged.files;
        if !failures.is_empty() || !races.is_empty() {
            let (outcome, event) = if failures.is_empty() {
                let event = Event::WriteLostRace {
                    commit: tip.to_string(),
                    reasons: races,
                };
                (Outcome::LostRace, event)
            } else {
                let event = Event::WriteFailed {
                    commit: tip.to_string(),
                    reasons: failures,
                };
                (Outcome::Failed, event)
            };
            report.outcome = outcome;
            let hash = self.known.repo.hash();
            self.commit_status(report, changes, &merged.notes, None, &hash)
                .await?;
            self.publish(event);
            return Ok(outcome);
        }
        if let Some(config) = &config {
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
        let new_repo = config.as_deref().map(new_repo_config).transpose()?;
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
            imported,
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
            quarantined: self.known.quarantine.entries(),
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
