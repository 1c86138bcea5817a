//! The doctor's report: each check's verdict, what was found and the remedy, and the text
//! `mwsync doctor` prints with its closing count. It must not run any check.

/// How a check ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Fine.
    Pass,
    /// Needs fixing before mwsync can run well.
    Fail,
    /// mwsync runs, but something may be a mistake (a `changes` branch nobody pushed yet,
    /// or a typo in its name).
    Warn,
    /// Not run, because an earlier check failed.
    Skip,
}

/// One check's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// What was checked.
    pub name: String,
    /// How it ended.
    pub verdict: Verdict,
    /// What was found.
    pub detail: String,
    /// What to do, for a failure.
    pub remedy: Option<String>,
}

/// Every check, in the order run.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// The checks.
    pub checks: Vec<Check>,
}

impl Report {
    fn add(&mut self, name: String, verdict: Verdict, detail: String, remedy: Option<String>) {
        self.checks.push(Check {
            name,
            verdict,
            detail,
            remedy,
        });
    }

    pub(super) fn pass(&mut self, name: impl Into<String>, detail: impl Into<String>) {
        self.add(name.into(), Verdict::Pass, detail.into(), None);
    }

    pub(super) fn fail(
        &mut self,
        name: impl Into<String>,
        detail: impl Into<String>,
        remedy: impl Into<String>,
    ) {
        self.add(
            name.into(),
            Verdict::Fail,
            detail.into(),
            Some(remedy.into()),
        );
    }

    pub(super) fn warn(
        &mut self,
        name: impl Into<String>,
        detail: impl Into<String>,
        remedy: impl Into<String>,
    ) {
        self.add(
            name.into(),
            Verdict::Warn,
            detail.into(),
            Some(remedy.into()),
        );
    }

    pub(super) fn skip(&mut self, name: &str, why: &str) {
        self.add(name.into(), Verdict::Skip, why.into(), None);
    }

    /// True when no check failed or was skipped (warnings pass).
    pub fn passed(&self) -> bool {
        self.checks
            .iter()
            .all(|c| matches!(c.verdict, Verdict::Pass | Verdict::Warn))
    }

    /// The check named `name`, if run.
    pub fn check(&self, name: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.name == name)
    }

    /// One line per check (`PASS`, `WARN`, `FAIL` or `SKIP`, the name, what was found), each
    /// failure or warning followed by its remedy, and a closing count.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for c in &self.checks {
            let word = match c.verdict {
                Verdict::Pass => "PASS",
                Verdict::Fail => "FAIL",
                Verdict::Warn => "WARN",
                Verdict::Skip => "SKIP",
            };
            out.push_str(&format!("{word}  {}: {}\n", c.name, c.detail));
            if let Some(r) = &c.remedy {
                out.push_str(&format!("      remedy: {r}\n"));
            }
        }
        let count = |v: Verdict| self.checks.iter().filter(|c| c.verdict == v).count();
        let failed = count(Verdict::Fail) + count(Verdict::Skip);
        let warned = count(Verdict::Warn);
        out.push_str(&if failed == 0 && warned == 0 {
            format!("all {} checks passed\n", self.checks.len())
        } else if failed == 0 {
            format!(
                "all {} checks passed, {warned} with a warning\n",
                self.checks.len()
            )
        } else {
            format!(
                "{failed} of {} checks failed or could not run\n",
                self.checks.len()
            )
        });
        out
    }
}
