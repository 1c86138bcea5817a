//! Moves the record files of `main` from layout 1 (`{table}/{ddd}/{ddd}/{key}.xml`, two shard
//! levels of up to 1,000 entries) to the current layout (`docs/paths.md`), one old shard
//! directory at a time in checkpoints, before anything else reads `main`; the commit that
//! moves the last file records the new layout in the state. It owns recognising layout-1
//! paths and the move commits; it must not talk to MoneyWorks or change a file's bytes.

use std::collections::BTreeMap;

use crate::commit_message::{RecordNote, commit_message};
use crate::engine::{Engine, EngineError};
use crate::events::RecordAction;
use crate::moneyworks::MoneyWorks;
use crate::record::{RecordKey, TABLES, TableInfo, layout1_key, record_path};
use crate::state::CURRENT_LAYOUT;
use crate::store::{CommitId, FileChange, Store, StoreError};

/// One file to move: table, key, layout-1 path and bytes.
type Move = (&'static TableInfo, RecordKey, String, Vec<u8>);

/// Every layout-1 shard directory on `main` (`name/462/991`), in path order.
fn layout1_dirs<S: Store>(s: &S, main: &CommitId) -> Result<Vec<String>, StoreError> {
    let mut out = Vec::new();
    for table in TABLES {
        for d1 in s.list_dir(main, table.element)? {
            if !(d1.is_dir && d1.name.len() == 3) {
                continue;
            }
            let dir1 = format!("{}/{}", table.element, d1.name);
            for d2 in s.list_dir(main, &dir1)? {
                if d2.is_dir && d2.name.len() == 3 {
                    out.push(format!("{dir1}/{}", d2.name));
                }
            }
        }
    }
    Ok(out)
}

/// The files of layout-1 shard directory `dir` on `main` that layout 1 filed there.
fn layout1_files<S: Store>(s: &S, main: &CommitId, dir: &str) -> Result<Vec<Move>, StoreError> {
    let mut parts = dir.split('/');
    let (Some(t), Some(d1), Some(d2)) = (parts.next(), parts.next(), parts.next()) else {
        return Ok(Vec::new());
    };
    let Some(table) = TABLES.iter().find(|x| x.element == t) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    for e in s.list_dir(main, dir)? {
        if e.is_dir {
            continue;
        }
        let Some(key) = layout1_key(table, d1, d2, &e.name) else {
            continue;
        };
        let path = format!("{dir}/{}", e.name);
        if let Some(bytes) = s.read_file(main, &path)? {
            out.push((table, key, path, bytes));
        }
    }
    Ok(out)
}

impl<M: MoneyWorks, S: Store> Engine<M, S> {
    /// Moves every layout-1 record file on `main` to its current path, unchanged, in
    /// checkpoints of `checkpoint_records` files; the last one also records
    /// [`CURRENT_LAYOUT`] in the state. Does nothing when `main` already has it. A restart
    /// part way finds the files not yet moved where they were and goes on.
    pub(crate) async fn migrate_layout(&mut self) -> Result<(), EngineError> {
        if self.known.state.layout >= CURRENT_LAYOUT {
            return Ok(());
        }
        let Some(main) = self.known.main.clone() else {
            self.known.state.layout = CURRENT_LAYOUT;
            return Ok(());
        };
        let dirs = self.store_call(move |s| layout1_dirs(s, &main)).await?;
        tracing::info!(
            "main has records in layout 1 (two levels of up to 1,000 entries); moving them to layout {CURRENT_LAYOUT} (docs/paths.md) in {} shard directories",
            dirs.len()
        );
        let chunk = (self.known.repo.file.checkpoint_records as usize).max(1);
        let mut changes = BTreeMap::new();
        let mut notes = Vec::new();
        let mut moved = 0usize;
        let total = dirs.len();
        for (done, dir) in dirs.into_iter().enumerate() {
            self.check_cancelled()?;
            let main = self.known.main.clone().expect("main exists while moving");
            let files = self
                .store_call(move |s| layout1_files(s, &main, &dir))
                .await?;
            for (table, key, old, bytes) in files {
                let new = record_path(table, &key);
                changes.insert(old.clone(), FileChange::Delete);
                changes.insert(new, FileChange::Put(bytes));
                notes.push(RecordNote {
                    table: table.name,
                    key: key.to_string(),
                    action: RecordAction::Moved,
                    fields: Vec::new(),
                    created_fields: 0,
                    moved_from: Some(old),
                });
            }
            if notes.len() >= chunk {
                moved += notes.len();
                self.commit_moves(std::mem::take(&mut changes), std::mem::take(&mut notes))
                    .await?;
                tracing::info!(
                    "moved {moved} record files to layout {CURRENT_LAYOUT} so far ({} of {total} shard directories)",
                    done + 1
                );
            }
        }
        moved += notes.len();
        self.known.state.layout = CURRENT_LAYOUT;
        self.commit_moves(changes, notes).await?;
        self.land().await?;
        // Code-keyed tables' sequence-number index names shards of the old layout.
        self.known.seq_index.clear();
        tracing::info!("moved {moved} record files to layout {CURRENT_LAYOUT}");
        Ok(())
    }

    /// Commits one checkpoint of moves (its push runs while the next are read).
    async fn commit_moves(
        &mut self,
        changes: BTreeMap<String, FileChange>,
        notes: Vec<RecordNote>,
    ) -> Result<(), EngineError> {
        let extra = format!(
            "Moved to layout {CURRENT_LAYOUT} of the record paths (docs/paths.md); no field changed."
        );
        let message = commit_message(
            "Move",
            &notes,
            &self.known.state,
            &self.known.repo.hash(),
            &extra,
        );
        self.commit_checkpoint(changes, message).await?;
        Ok(())
    }
}
