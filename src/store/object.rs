//! Git's object encoding, shared by the stores: object ids (SHA-1 over `<kind> <len>\0<body>`),
//! tree bodies in git's entry order, and commit bodies. Pure bytes; it must not read or
//! write a repository.

use sha1::{Digest, Sha1};

/// A raw object id.
pub type Oid = [u8; 20];

/// The mode of a regular file entry.
pub const MODE_FILE: u32 = 0o100644;
/// The mode of a directory entry.
pub const MODE_TREE: u32 = 0o040000;

/// The kinds of object mwsync writes, numbered as in a pack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A commit.
    Commit = 1,
    /// A tree.
    Tree = 2,
    /// File content.
    Blob = 3,
}

impl Kind {
    /// The name in an object header.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Commit => "commit",
            Kind::Tree => "tree",
            Kind::Blob => "blob",
        }
    }
}

/// The git id of an object of `kind` with `body`.
pub fn object_id(kind: Kind, body: &[u8]) -> Oid {
    let mut h = Sha1::new();
    h.update(format!("{} {}\0", kind.name(), body.len()).as_bytes());
    h.update(body);
    h.finalize().into()
}

/// One tree entry: name, mode and the object it names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeEntry {
    /// The name (no `/`).
    pub name: Vec<u8>,
    /// The mode (`MODE_FILE`, `MODE_TREE`, or whatever a tree read from git held).
    pub mode: u32,
    /// The object.
    pub id: Oid,
}

/// The body of a tree holding `entries`, in git's order: by name, a directory compared as if
/// its name ended in `/`.
pub fn tree_body(mut entries: Vec<TreeEntry>) -> Vec<u8> {
    let key = |e: &TreeEntry| {
        let mut k = e.name.clone();
        if e.mode == MODE_TREE {
            k.push(b'/');
        }
        k
    };
    entries.sort_by_cached_key(key);
    let mut body = Vec::with_capacity(entries.len() * 40);
    for e in entries {
        body.extend_from_slice(format!("{:o} ", e.mode).as_bytes());
        body.extend_from_slice(&e.name);
        body.push(0);
        body.extend_from_slice(&e.id);
    }
    body
}

/// The body of a commit; `signature` is `Name <email> <seconds> <±hhmm>`, used for both the
/// author and the committer.
pub fn commit_body(tree: &Oid, parents: &[Oid], signature: &str, message: &str) -> Vec<u8> {
    let mut s = format!("tree {}\n", hex(tree));
    for p in parents {
        s.push_str(&format!("parent {}\n", hex(p)));
    }
    s.push_str(&format!(
        "author {signature}\ncommitter {signature}\n\n{message}"
    ));
    s.into_bytes()
}

/// Lowercase hex of an id.
pub fn hex(id: &Oid) -> String {
    id.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Blob and empty-tree ids are exactly git's.
    #[test]
    fn ids_match_git() {
        assert_eq!(
            hex(&object_id(Kind::Blob, b"hello\n")),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
        assert_eq!(
            hex(&object_id(Kind::Tree, &tree_body(vec![]))),
            "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
        );
    }

    /// A directory sorts as if its name ended in `/`: `a.x` before `a/`, `a-b` before both.
    #[test]
    fn trees_use_git_order() {
        let e = |name: &str, mode| TreeEntry {
            name: name.as_bytes().to_vec(),
            mode,
            id: [0; 20],
        };
        let body = tree_body(vec![
            e("a", MODE_TREE),
            e("a.x", MODE_FILE),
            e("a-b", MODE_FILE),
        ]);
        let names: Vec<&[u8]> = body
            .split(|b| *b == 0)
            .filter_map(|chunk| {
                chunk
                    .iter()
                    .position(|b| *b == b' ')
                    .map(|i| &chunk[i + 1..])
            })
            .collect();
        assert_eq!(names, [&b"a-b"[..], b"a.x", b"a"]);
    }
}
