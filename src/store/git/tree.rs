//! How a change set becomes git trees: the paths validated and nested by directory
//! ([`plan`]), then each changed directory rewritten on top of its base tree, writing only
//! the blobs and trees on changed paths. It must not commit, push or read anything but the
//! base trees.

use std::collections::BTreeMap;

use git2::Oid;

use super::pack::PackObject;
use super::{GitStore, local_err, raw};
use crate::store::object::{self, Kind};
use crate::store::{FileChange, StoreError};

impl GitStore {
    /// Applies `nodes` to tree `base` (a directory at `prefix`), adding to `out` the blobs
    /// and the trees on changed paths only. Returns `None` when the directory ends up empty,
    /// so the caller drops it.
    pub(super) fn apply_tree(
        &self,
        base: Option<Oid>,
        nodes: &BTreeMap<&str, Node<'_>>,
        prefix: &str,
        out: &mut Vec<PackObject>,
    ) -> Result<Option<object::Oid>, StoreError> {
        let mut entries: BTreeMap<Vec<u8>, (u32, object::Oid)> = BTreeMap::new();
        if let Some(base) = base {
            let tree = self
                .repo
                .find_tree(base)
                .map_err(|e| local_err("cannot read a tree", &e))?;
            for e in tree.iter() {
                let mode = u32::try_from(e.filemode()).unwrap_or(object::MODE_FILE);
                entries.insert(e.name_bytes().to_vec(), (mode, raw(&e.id())));
            }
        }
        for (name, node) in nodes {
            let path = format!("{prefix}{name}");
            let existing = entries.get(name.as_bytes()).copied();
            let is_tree = existing.is_some_and(|(mode, _)| mode == object::MODE_TREE);
            match node {
                Node::File(FileChange::Put(bytes)) => {
                    if is_tree {
                        return Err(StoreError::NotFound {
                            detail: format!("cannot write file `{path}`: it is a directory"),
                        });
                    }
                    let blob = PackObject::new(Kind::Blob, bytes.clone());
                    entries.insert(name.as_bytes().to_vec(), (object::MODE_FILE, blob.id));
                    out.push(blob);
                }
                Node::File(FileChange::Delete) => {
                    if is_tree {
                        return Err(StoreError::NotFound {
                            detail: format!("cannot delete `{path}`: it is a directory"),
                        });
                    }
                    entries.remove(name.as_bytes());
                }
                Node::Dir(children) => {
                    let sub = match existing {
                        Some((mode, id)) if mode == object::MODE_TREE => {
                            Some(Oid::from_bytes(&id).map_err(|e| local_err("bad tree id", &e))?)
                        }
                        Some(_) => {
                            return Err(StoreError::NotFound {
                                detail: format!("cannot write below `{path}`: it is a file"),
                            });
                        }
                        None => None,
                    };
                    match self.apply_tree(sub, children, &format!("{path}/"), out)? {
                        Some(id) => {
                            entries.insert(name.as_bytes().to_vec(), (object::MODE_TREE, id));
                        }
                        None => {
                            entries.remove(name.as_bytes());
                        }
                    }
                }
            }
        }
        if entries.is_empty() {
            return Ok(None);
        }
        let body = object::tree_body(
            entries
                .into_iter()
                .map(|(name, (mode, id))| object::TreeEntry { name, mode, id })
                .collect(),
        );
        let tree = PackObject::new(Kind::Tree, body);
        let id = tree.id;
        out.push(tree);
        Ok(Some(id))
    }
}

/// One level of the planned change set: a file change or a directory of further changes.
#[derive(Debug)]
pub(super) enum Node<'a> {
    /// Put or delete this file.
    File(&'a FileChange),
    /// Changes below this directory.
    Dir(BTreeMap<&'a str, Node<'a>>),
}

/// Validates every path and nests the changes by directory.
pub(super) fn plan(
    changes: &BTreeMap<String, FileChange>,
) -> Result<BTreeMap<&str, Node<'_>>, StoreError> {
    let mut root: BTreeMap<&str, Node<'_>> = BTreeMap::new();
    for (path, change) in changes {
        validate_path(path)?;
        let mut parts: Vec<&str> = path.split('/').collect();
        let file = parts
            .pop()
            .expect("split yields at least one part because it always does");
        let mut level = &mut root;
        for part in parts {
            let node = level
                .entry(part)
                .or_insert_with(|| Node::Dir(BTreeMap::new()));
            level = match node {
                Node::Dir(children) => children,
                Node::File(_) => return Err(conflict(path)),
            };
        }
        if level.contains_key(file) {
            return Err(conflict(path));
        }
        level.insert(file, Node::File(change));
    }
    Ok(root)
}

/// The error for a change set that uses one path both as a file and as a directory.
fn conflict(path: &str) -> StoreError {
    StoreError::NotFound {
        detail: format!("path `{path}` is used both as a file and as a directory"),
    }
}

/// Refuses paths git cannot hold or that would escape the tree.
pub fn validate_path(path: &str) -> Result<(), StoreError> {
    let bad = |why: &str| StoreError::NotFound {
        detail: format!("invalid path `{}`: {why}", path.escape_debug()),
    };
    if path.is_empty() {
        return Err(bad("it is empty"));
    }
    if path.starts_with('/') {
        return Err(bad("it must be relative"));
    }
    if path.contains('\0') || path.contains('\\') {
        return Err(bad("it contains NUL or a backslash"));
    }
    for part in path.split('/') {
        match part {
            "" => return Err(bad("it has an empty component")),
            "." | ".." => return Err(bad("it has a `.` or `..` component")),
            p if p.eq_ignore_ascii_case(".git") => return Err(bad("it has a `.git` component")),
            _ => {}
        }
    }
    Ok(())
}
