//! The behaviour every `Store` must show, written once over `impl Store` and run against
//! each implementation. `a` and `b` are two clients of the same, initially empty remote.

use mwsync::error::{Classify, ErrorClass};
use mwsync::store::{CommitId, Store, StoreError};

use super::new_commit;

/// Commit, push, fetch, compare-and-swap, history queries and tree reads, end to end.
pub fn round_trip<S: Store>(a: &mut S, b: &mut S) {
    a.fetch().expect("fetching an empty remote works");
    assert_eq!(a.remote_tip("main").expect("tip"), None);

    let c1 = a
        .commit(new_commit(
            &[],
            &[
                ("Name/ab/x.xml", Some("<x/>\n")),
                ("Name/ab/y.xml", Some("<y/>\n")),
                ("Name/cd/z.xml", Some("<z/>\n")),
                ("Name.xml", Some("file next to a dir\n")),
                (".mwsync/state.toml", Some("marker = 1\n")),
            ],
            "first\n",
        ))
        .expect("first commit");
    assert_eq!(
        a.read_file(&c1, "Name/ab/x.xml").expect("read"),
        Some(b"<x/>\n".to_vec())
    );
    assert_eq!(a.read_file(&c1, "Name/ab/none.xml").expect("read"), None);
    assert_eq!(a.read_file(&c1, "Name/ab").expect("a dir is no file"), None);
    assert_eq!(
        a.list_files(&c1, "").expect("list"),
        [
            ".mwsync/state.toml",
            "Name.xml",
            "Name/ab/x.xml",
            "Name/ab/y.xml",
            "Name/cd/z.xml"
        ]
    );
    assert_eq!(
        a.list_files(&c1, "Name/ab").expect("list"),
        ["Name/ab/x.xml", "Name/ab/y.xml"]
    );
    assert_eq!(
        a.list_files(&c1, "Name/ab/").expect("list"),
        a.list_files(&c1, "Name/ab").expect("list")
    );
    assert!(a.list_files(&c1, "Nope").expect("list").is_empty());
    assert!(a.list_files(&c1, "Name.xml").expect("list").is_empty());
    // A local commit does not touch the remote.
    assert_eq!(a.remote_tip("main").expect("tip"), None);

    a.push("main", None, &c1)
        .expect("push to a missing branch with expected none");
    assert_eq!(a.remote_tip("main").expect("tip"), Some(c1.clone()));

    b.fetch().expect("fetch");
    assert_eq!(b.remote_tip("main").expect("tip"), Some(c1.clone()));
    assert_eq!(
        b.read_file(&c1, "Name/cd/z.xml").expect("read"),
        Some(b"<z/>\n".to_vec())
    );

    // b edits one file and deletes the only file of a directory: the directory goes.
    let c2 = b
        .commit(new_commit(
            &[&c1],
            &[
                ("Name/ab/x.xml", Some("<x>2</x>\n")),
                ("Name/cd/z.xml", None),
            ],
            "second\n",
        ))
        .expect("second commit");
    assert_eq!(
        b.list_files(&c2, "").expect("list"),
        [
            ".mwsync/state.toml",
            "Name.xml",
            "Name/ab/x.xml",
            "Name/ab/y.xml"
        ]
    );
    assert!(b.list_files(&c2, "Name/cd").expect("list").is_empty());
    b.push("main", Some(&c1), &c2)
        .expect("compare-and-swap from c1");

    // a still believes main is at c1: its push loses and learns where main really is.
    let c3 = a
        .commit(new_commit(
            &[&c1],
            &[("Name/ab/y.xml", Some("<y>3</y>\n"))],
            "third\n",
        ))
        .expect("third commit");
    let err = a
        .push("main", Some(&c1), &c3)
        .expect_err("the remote moved");
    assert_eq!(
        err,
        StoreError::BranchMoved {
            branch: "main".into(),
            expected: c1.0.clone(),
            actual: c2.0.clone()
        }
    );
    assert_eq!(err.class(), ErrorClass::Conflict);
    a.fetch().expect("fetch");
    assert_eq!(a.remote_tip("main").expect("tip"), Some(c2.clone()));
    // Pushing what the remote already holds is a success, not a conflict.
    a.push("main", Some(&c1), &c2)
        .expect("remote already at the new tip");

    assert_eq!(
        a.changed_paths(Some(&c1), &c2).expect("diff"),
        ["Name/ab/x.xml", "Name/cd/z.xml"]
    );
    assert_eq!(
        a.changed_paths(None, &c1).expect("diff"),
        a.list_files(&c1, "").expect("list")
    );
    assert!(a.changed_paths(Some(&c2), &c2).expect("diff").is_empty());

    assert_eq!(a.merge_base(&c2, &c3).expect("base"), Some(c1.clone()));
    assert_eq!(a.merge_base(&c1, &c2).expect("base"), Some(c1.clone()));
    assert!(a.is_ancestor(&c1, &c2).expect("anc"));
    assert!(a.is_ancestor(&c2, &c2).expect("anc"));
    assert!(!a.is_ancestor(&c2, &c1).expect("anc"));
    assert!(!a.is_ancestor(&c2, &c3).expect("anc"));

    let info = a.commit_info(&c2).expect("info");
    assert_eq!(info.id, c2);
    assert_eq!(info.parents, std::slice::from_ref(&c1));
    assert_eq!(info.author, "mwsync <mwsync@localhost>");
    assert_eq!(info.message, "second\n");

    // A merge commit starts from its first parent's tree.
    let m = a
        .commit(new_commit(
            &[&c2, &c3],
            &[("Name/ab/y.xml", Some("<y>3</y>\n"))],
            "merge\n",
        ))
        .expect("merge");
    assert_eq!(
        a.commit_info(&m).expect("info").parents,
        [c2.clone(), c3.clone()]
    );
    assert_eq!(
        a.read_file(&m, "Name/ab/x.xml").expect("read"),
        Some(b"<x>2</x>\n".to_vec())
    );
    let between = a.commits_between(Some(&c1), &m).expect("between");
    assert_eq!(between.len(), 3);
    assert_eq!(between.last(), Some(&m));
    assert!(between.contains(&c2) && between.contains(&c3));
    assert_eq!(
        a.commits_between(None, &c2).expect("between"),
        [c1.clone(), c2.clone()]
    );
    assert!(
        a.commits_between(Some(&c2), &c2)
            .expect("between")
            .is_empty()
    );

    // A second branch is independent of the first.
    a.push("changes", None, &c3).expect("new branch");
    let err = b.push("changes", None, &c2).expect_err("exists now");
    assert!(
        matches!(&err, StoreError::BranchMoved { actual, expected, .. } if *actual == c3.0 && expected == "none"),
        "{err}"
    );
    b.fetch().expect("fetch");
    assert_eq!(b.remote_tip("changes").expect("tip"), Some(c3.clone()));
    assert_eq!(b.remote_tip("main").expect("tip"), Some(c2));
}

/// Every class of bad input is refused with a classified error and changes nothing.
pub fn bad_input<S: Store>(s: &mut S) {
    let c = s
        .commit(new_commit(&[], &[("a/b.xml", Some("x"))], "base\n"))
        .expect("base commit");
    for path in ["", "/abs", "a//b", "a/../b", "./a", ".git/config", "a\\b"] {
        let e = s
            .commit(new_commit(&[&c], &[(path, Some("x"))], "bad\n"))
            .expect_err(path);
        assert_eq!(e.class(), ErrorClass::Invalid, "{path}: {e}");
        assert!(s.read_file(&c, path).is_err(), "read {path:?}");
    }
    // A path used as both file and directory, against the base or within the set.
    for items in [
        vec![("a", Some("x"))],
        vec![("a/b.xml/c", Some("x"))],
        vec![("q", Some("x")), ("q/r", Some("y"))],
        vec![("a", None)],
    ] {
        let e = s
            .commit(new_commit(&[&c], &items, "bad\n"))
            .expect_err("conflict");
        assert_eq!(e.class(), ErrorClass::Invalid, "{items:?}: {e}");
    }
    let unknown = CommitId("0123456789012345678901234567890123456789".into());
    let garbage = CommitId("not an id".into());
    for id in [&unknown, &garbage] {
        assert!(matches!(
            s.read_file(id, "a/b.xml"),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.list_files(id, ""),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.commit_info(id),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.is_ancestor(id, &c),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.merge_base(&c, id),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.changed_paths(Some(id), &c),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.commits_between(None, id),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.commit(new_commit(&[id], &[("x", Some("y"))], "m")),
            Err(StoreError::NotFound { .. })
        ));
        assert!(matches!(
            s.push("main", None, id),
            Err(StoreError::NotFound { .. })
        ));
    }
    for branch in ["", "a b", "a..b", "-x"] {
        let e = s.push(branch, None, &c).expect_err(branch);
        assert_eq!(e.class(), ErrorClass::Invalid, "{branch:?}: {e}");
    }
    // Deleting a file that is not there is harmless; an empty change set keeps the tree.
    let same = s
        .commit(new_commit(&[&c], &[("a/none.xml", None)], "noop\n"))
        .expect("delete of an absent file");
    assert!(s.changed_paths(Some(&c), &same).expect("diff").is_empty());
    // Deleting the last file leaves an empty tree.
    let empty = s
        .commit(new_commit(&[&c], &[("a/b.xml", None)], "empty\n"))
        .expect("delete all");
    assert!(s.list_files(&empty, "").expect("list").is_empty());
}
