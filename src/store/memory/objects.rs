//! The object database behind the in-memory store: blobs, trees and commits hashed exactly
//! as git hashes them, tree edits, reachability and diffs. It must not know about remotes,
//! branches or faults; `memory` owns those.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::super::git::validate_path;
use super::super::object::{
    Kind, MODE_FILE, MODE_TREE, TreeEntry, commit_body, object_id, tree_body,
};
use super::super::{CommitId, DirEntry, FileChange, StoreError};

/// A raw object id.
pub(super) use super::super::object::Oid;
pub(super) use super::super::object::hex;

/// The fixed timestamp written into every commit, so ids depend only on content.
pub(super) const COMMIT_TIME: &str = "1700000000 +0000";

/// One entry of a tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Entry {
    /// True for a subtree, false for a regular file.
    dir: bool,
    /// The object it names.
    id: Oid,
}

/// A stored object.
#[derive(Debug)]
pub(super) enum Obj {
    /// File content.
    Blob(Vec<u8>),
    /// Entries by name.
    Tree(BTreeMap<String, Entry>),
    /// A commit.
    Commit {
        /// Its root tree.
        tree: Oid,
        /// Parents in order.
        parents: Vec<Oid>,
        /// `Name <email>`.
        author: String,
        /// The full message.
        message: String,
    },
}

/// A content-addressed object database.
#[derive(Debug, Default)]
pub(super) struct Db {
    /// Objects by id.
    pub(super) objs: BTreeMap<Oid, Arc<Obj>>,
}

impl Db {
    /// The object `id`, if present.
    pub(super) fn get(&self, id: &Oid) -> Option<&Obj> {
        self.objs.get(id).map(|a| a.as_ref())
    }

    /// Stores an object under its git id.
    pub(super) fn put(&mut self, obj: Obj) -> Oid {
        let id = hash(&obj);
        self.objs.entry(id).or_insert_with(|| Arc::new(obj));
        id
    }

    /// Parents of a commit (empty for anything else).
    pub(super) fn parents(&self, id: &Oid) -> Vec<Oid> {
        match self.get(id) {
            Some(Obj::Commit { parents, .. }) => parents.clone(),
            _ => Vec::new(),
        }
    }

    /// The commits reachable from `starts`, including them.
    pub(super) fn ancestors(&self, starts: &[Oid]) -> BTreeSet<Oid> {
        let mut seen = BTreeSet::new();
        let mut stack = starts.to_vec();
        while let Some(c) = stack.pop() {
            if seen.insert(c) {
                stack.extend(self.parents(&c));
            }
        }
        seen
    }

    /// Resolves a commit id that must be present.
    pub(super) fn commit_oid(&self, id: &CommitId) -> Result<Oid, StoreError> {
        let oid = parse(id)?;
        match self.get(&oid) {
            Some(Obj::Commit { .. }) => Ok(oid),
            _ => Err(not_found(id)),
        }
    }

    /// The root tree of a commit.
    pub(super) fn commit_tree(&self, id: &CommitId) -> Result<Oid, StoreError> {
        match self.get(&self.commit_oid(id)?) {
            Some(Obj::Commit { tree, .. }) => Ok(*tree),
            _ => Err(not_found(id)),
        }
    }

    /// The entries of a tree (empty for anything else).
    pub(super) fn tree(&self, id: &Oid) -> Option<&BTreeMap<String, Entry>> {
        match self.get(id) {
            Some(Obj::Tree(t)) => Some(t),
            _ => None,
        }
    }

    /// The entry at `path` below the root tree `root`.
    pub(super) fn lookup(&self, root: Oid, path: &str) -> Option<Entry> {
        let mut cur = Entry {
            dir: true,
            id: root,
        };
        for part in path.split('/') {
            if !cur.dir {
                return None;
            }
            cur = self.tree(&cur.id)?.get(part)?.clone();
        }
        Some(cur)
    }

    pub(super) fn read_file(
        &self,
        commit: &CommitId,
        path: &str,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        validate_path(path)?;
        let root = self.commit_tree(commit)?;
        Ok(match self.lookup(root, path) {
            Some(Entry { dir: false, id }) => match self.get(&id) {
                Some(Obj::Blob(b)) => Some(b.clone()),
                _ => None,
            },
            _ => None,
        })
    }

    pub(super) fn list_files(
        &self,
        commit: &CommitId,
        dir: &str,
    ) -> Result<Vec<String>, StoreError> {
        let dir = dir.trim_end_matches('/');
        let root = self.commit_tree(commit)?;
        let (start, prefix) = if dir.is_empty() {
            (root, String::new())
        } else {
            validate_path(dir)?;
            match self.lookup(root, dir) {
                Some(Entry { dir: true, id }) => (id, format!("{dir}/")),
                _ => return Ok(Vec::new()),
            }
        };
        let mut out = Vec::new();
        let mut stack = vec![(start, prefix)];
        while let Some((t, p)) = stack.pop() {
            for (name, e) in self.tree(&t).into_iter().flatten() {
                if e.dir {
                    stack.push((e.id, format!("{p}{name}/")));
                } else {
                    out.push(format!("{p}{name}"));
                }
            }
        }
        out.sort();
        Ok(out)
    }

    pub(super) fn list_dir(
        &self,
        commit: &CommitId,
        dir: &str,
    ) -> Result<Vec<DirEntry>, StoreError> {
        let dir = dir.trim_end_matches('/');
        let root = self.commit_tree(commit)?;
        let tree = if dir.is_empty() {
            root
        } else {
            validate_path(dir)?;
            match self.lookup(root, dir) {
                Some(Entry { dir: true, id }) => id,
                _ => return Ok(Vec::new()),
            }
        };
        Ok(self
            .tree(&tree)
            .into_iter()
            .flatten()
            .map(|(name, e)| DirEntry {
                name: name.clone(),
                is_dir: e.dir,
            })
            .collect())
    }

    /// Adds to `out` every file path that differs between trees `a` and `b` below `prefix`.
    pub(super) fn diff(
        &self,
        a: Option<Oid>,
        b: Option<Oid>,
        prefix: &str,
        out: &mut BTreeSet<String>,
    ) {
        if a == b {
            return;
        }
        let empty = BTreeMap::new();
        let ta = a.and_then(|t| self.tree(&t)).unwrap_or(&empty);
        let tb = b.and_then(|t| self.tree(&t)).unwrap_or(&empty);
        let names: BTreeSet<&String> = ta.keys().chain(tb.keys()).collect();
        for name in names {
            let (ea, eb) = (ta.get(name), tb.get(name));
            if ea == eb {
                continue;
            }
            let path = format!("{prefix}{name}");
            let sub = format!("{path}/");
            let file = |e: Option<&Entry>| e.filter(|e| !e.dir).is_some();
            let dir = |e: Option<&Entry>| e.filter(|e| e.dir).map(|e| e.id);
            if file(ea) || file(eb) {
                out.insert(path);
            }
            if dir(ea).is_some() || dir(eb).is_some() {
                self.diff(dir(ea), dir(eb), &sub, out);
            }
        }
    }

    /// Writes a commit with `changes` applied to the first parent's tree.
    pub(super) fn commit(
        &mut self,
        parents: Vec<Oid>,
        changes: &BTreeMap<String, FileChange>,
        message: &str,
        author: &str,
    ) -> Result<Oid, StoreError> {
        for p in changes.keys() {
            validate_path(p)?;
        }
        let base = match parents.first() {
            Some(p) => match self.get(p) {
                Some(Obj::Commit { tree, .. }) => Some(*tree),
                _ => return Err(not_found(&cid(p))),
            },
            None => None,
        };
        let items: Vec<(Vec<&str>, &FileChange)> = changes
            .iter()
            .map(|(p, c)| (p.split('/').collect(), c))
            .collect();
        let tree = match self.apply(base, &items, "")? {
            Some(t) => t,
            None => self.put(Obj::Tree(BTreeMap::new())),
        };
        Ok(self.put(Obj::Commit {
            tree,
            parents,
            author: author.to_string(),
            message: message.to_string(),
        }))
    }

    /// Applies changes (paths split into components, relative to this directory) to tree
    /// `base`; `None` when the directory ends up empty.
    pub(super) fn apply(
        &mut self,
        base: Option<Oid>,
        items: &[(Vec<&str>, &FileChange)],
        prefix: &str,
    ) -> Result<Option<Oid>, StoreError> {
        let mut entries = base
            .and_then(|b| self.tree(&b).cloned())
            .unwrap_or_default();
        let mut i = 0;
        while i < items.len() {
            let name = items[i].0[0];
            let mut j = i;
            while j < items.len() && items[j].0[0] == name {
                j += 1;
            }
            let group = &items[i..j];
            let path = format!("{prefix}{name}");
            let existing = entries.get(name).cloned();
            let files: Vec<&FileChange> = group
                .iter()
                .filter(|(p, _)| p.len() == 1)
                .map(|(_, c)| *c)
                .collect();
            if !files.is_empty() {
                if group.len() > 1 {
                    return Err(StoreError::NotFound {
                        detail: format!("path `{path}` is used both as a file and as a directory"),
                    });
                }
                match (files[0], &existing) {
                    (_, Some(Entry { dir: true, .. })) => {
                        return Err(StoreError::NotFound {
                            detail: format!("cannot change `{path}`: it is a directory"),
                        });
                    }
                    (FileChange::Put(bytes), _) => {
                        let id = self.put(Obj::Blob(bytes.clone()));
                        entries.insert(name.to_string(), Entry { dir: false, id });
                    }
                    (FileChange::Delete, _) => {
                        entries.remove(name);
                    }
                }
            } else {
                let sub_base = match existing {
                    Some(Entry { dir: true, id }) => Some(id),
                    Some(_) => {
                        return Err(StoreError::NotFound {
                            detail: format!("cannot write below `{path}`: it is a file"),
                        });
                    }
                    None => None,
                };
                let rest: Vec<(Vec<&str>, &FileChange)> =
                    group.iter().map(|(p, c)| (p[1..].to_vec(), *c)).collect();
                match self.apply(sub_base, &rest, &format!("{path}/"))? {
                    Some(id) => {
                        entries.insert(name.to_string(), Entry { dir: true, id });
                    }
                    None => {
                        entries.remove(name);
                    }
                }
            }
            i = j;
        }
        if entries.is_empty() {
            return Ok(None);
        }
        Ok(Some(self.put(Obj::Tree(entries))))
    }
}

/// The ids an object points at.
pub(super) fn children(obj: &Obj) -> Vec<Oid> {
    match obj {
        Obj::Blob(_) => Vec::new(),
        Obj::Tree(t) => t.values().map(|e| e.id).collect(),
        Obj::Commit { tree, parents, .. } => {
            let mut v = vec![*tree];
            v.extend(parents);
            v
        }
    }
}

/// The git object id of `obj`, encoded as git encodes it (see `store::object`).
pub(super) fn hash(obj: &Obj) -> Oid {
    match obj {
        Obj::Blob(b) => object_id(Kind::Blob, b),
        Obj::Tree(entries) => object_id(
            Kind::Tree,
            &tree_body(
                entries
                    .iter()
                    .map(|(n, e)| TreeEntry {
                        name: n.as_bytes().to_vec(),
                        mode: if e.dir { MODE_TREE } else { MODE_FILE },
                        id: e.id,
                    })
                    .collect(),
            ),
        ),
        Obj::Commit {
            tree,
            parents,
            author,
            message,
        } => object_id(
            Kind::Commit,
            &commit_body(tree, parents, &format!("{author} {COMMIT_TIME}"), message),
        ),
    }
}

/// An id as a `CommitId`.
pub(super) fn cid(id: &Oid) -> CommitId {
    CommitId(hex(id))
}

/// Parses a 40-digit hex id.
pub(super) fn parse(id: &CommitId) -> Result<Oid, StoreError> {
    let s = id.0.as_bytes();
    let bad = || StoreError::NotFound {
        detail: format!("`{}` is not a 40-digit commit id", id.0.escape_debug()),
    };
    if s.len() != 40 {
        return Err(bad());
    }
    let mut out = [0u8; 20];
    for (i, pair) in s.chunks(2).enumerate() {
        let txt = std::str::from_utf8(pair).map_err(|_| bad())?;
        out[i] = u8::from_str_radix(txt, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// The error for a commit the cache does not hold.
pub(super) fn not_found(id: &CommitId) -> StoreError {
    StoreError::NotFound {
        detail: format!("commit {id} is not in the local cache"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Malformed ids are refused.
    #[test]
    fn bad_ids_are_refused() {
        for s in ["", "zz", &"g".repeat(40), &"a".repeat(39)] {
            assert!(parse(&CommitId(s.to_string())).is_err(), "{s}");
        }
    }
}
