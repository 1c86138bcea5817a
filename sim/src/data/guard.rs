//! Keeps generated and anonymized data out of git: the default output directory under
//! `fixtures-local/`, and the check that refuses an output directory git would track. It owns
//! that decision only; it must not write any data.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::DataError;

/// The default output directory `fixtures-local/{leaf}` at the top of the git work tree the
/// current directory is in, or below the current directory when it is in none.
pub fn default_out(leaf: &str) -> PathBuf {
    let cwd = std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."));
    let top = git(&cwd, &["rev-parse", "--show-toplevel"])
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim_end()))
        .unwrap_or(cwd);
    top.join("fixtures-local").join(leaf)
}

/// Refuses `out` when it lies inside a git work tree and git does not ignore it, so that
/// test data can never be committed by accident. Paths outside any repository are allowed.
pub fn check_out_dir(out: &Path) -> Result<(), DataError> {
    let refuse = |reason: String| DataError::Refused {
        path: out.to_path_buf(),
        reason,
    };
    let target = resolve(out)?;
    let base = target
        .ancestors()
        .find(|a| a.is_dir())
        .ok_or_else(|| refuse("no part of the path exists".into()))?
        .to_path_buf();
    let inside = match git(&base, &["rev-parse", "--is-inside-work-tree"]) {
        Ok(o) => o.status.success() && String::from_utf8_lossy(&o.stdout).trim() == "true",
        Err(_) => {
            if base.ancestors().any(|a| a.join(".git").exists()) {
                return Err(refuse(
                    "it is inside a git repository and git could not be run to check that the \
                     path is ignored"
                        .into(),
                ));
            }
            false
        }
    };
    if let Ok(o) = git(&base, &["rev-parse", "--is-inside-git-dir"])
        && String::from_utf8_lossy(&o.stdout).trim() == "true"
    {
        return Err(refuse("it is inside a .git directory".into()));
    }
    if !inside {
        return Ok(());
    }
    let top = git(&base, &["rev-parse", "--show-toplevel"])
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim_end()))
        .ok_or_else(|| refuse("git could not name the work tree's top directory".into()))?;
    if target == top {
        return Err(refuse(format!(
            "it is the top of the git work tree {}",
            top.display()
        )));
    }
    let out = Command::new("git")
        .arg("-C")
        .arg(&top)
        .args(["check-ignore", "-q", "--"])
        .arg(&target)
        .output()
        .map_err(|e| DataError::Git {
            reason: format!("could not run git check-ignore: {e}"),
        })?;
    match out.status.code() {
        Some(0) => Ok(()),
        Some(1) => Err(refuse(format!(
            "it is inside the git work tree {} and git does not ignore it, so the data could \
             be committed; write under fixtures-local/ (ignored) or outside the repository",
            top.display()
        ))),
        _ => Err(DataError::Git {
            reason: format!(
                "git check-ignore failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        }),
    }
}

/// The absolute form of `path` with its longest existing prefix resolved (symlinks and `..`),
/// the rest appended as written, so paths that do not exist yet can be compared.
pub fn resolve(path: &Path) -> Result<PathBuf, DataError> {
    let abs = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| DataError::io(Path::new("."), e))?
            .join(path)
    };
    let mut base = abs.clone();
    let mut rest: Vec<std::ffi::OsString> = Vec::new();
    while !base.is_dir() {
        match base.file_name() {
            Some(name) => rest.push(name.to_os_string()),
            None => break,
        }
        if !base.pop() {
            break;
        }
    }
    let mut target = base.canonicalize().map_err(|e| DataError::io(&base, e))?;
    for part in rest.iter().rev() {
        target.push(part);
    }
    Ok(target)
}

fn git(dir: &Path, args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("git").arg("-C").arg(dir).args(args).output()
}
