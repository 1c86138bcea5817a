//! How the upload gateway's answers become errors: transport failures, unreadable answers and
//! refusals, each classified by docs/gateway.md's recovery classes with the token scrubbed,
//! and the `missing` lists of its answers. It must not send anything.

use super::{Gateway, MAX_ROUNDS, SavedUpload};
use crate::store::{CommitId, StoreError};

impl Gateway {
    /// The error for objects `upload` still misses of `new` after [`MAX_ROUNDS`] asks, naming
    /// the first 20 of them and where they are missing.
    pub(super) fn incomplete(
        &self,
        upload: &SavedUpload,
        new: &CommitId,
        missing: &[String],
        count: usize,
    ) -> StoreError {
        StoreError::Incomplete {
            gateway: self.scrub(&self.cfg.api),
            upload: upload.id.clone(),
            commit: new.0.clone(),
            rounds: MAX_ROUNDS,
            count,
            missing: missing.iter().take(20).cloned().collect(),
        }
    }

    /// Removes the token from `text`.
    pub(super) fn scrub(&self, text: &str) -> String {
        if self.cfg.token.is_empty() {
            return text.to_string();
        }
        text.replace(self.cfg.token.as_str(), "***")
    }

    pub(super) fn transport(&self, what: &str, e: &reqwest::Error) -> StoreError {
        StoreError::Transport {
            detail: self.scrub(&format!(
                "the upload gateway at {} did not answer to {what}: {e}",
                self.cfg.api
            )),
        }
    }

    pub(super) fn protocol(&self, what: &str, problem: &str) -> StoreError {
        StoreError::Transport {
            detail: format!(
                "the upload gateway at {} gave an unreadable answer to {what}: {problem}",
                self.cfg.api
            ),
        }
    }

    pub(super) fn parse(&self, what: &str, text: &str) -> Result<serde_json::Value, StoreError> {
        serde_json::from_str(text).map_err(|e| self.protocol(what, &format!("not JSON ({e})")))
    }

    /// An answer that is not the one the call wants, classified by docs/gateway.md's
    /// recovery classes.
    pub(super) fn refusal(&self, what: &str, status: u16, text: &str) -> StoreError {
        let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        let code = v["error"].as_str().or(v["status"].as_str()).unwrap_or("");
        let message: String = v["message"]
            .as_str()
            .unwrap_or(text)
            .chars()
            .take(500)
            .collect();
        let detail = self.scrub(&format!(
            "the upload gateway at {} answered {what} with {status} {code}: {}",
            self.cfg.api,
            message.trim()
        ));
        match status {
            401 => StoreError::Auth {
                detail: format!(
                    "{detail} (the gateway's token goes in MWSYNC_GIT_API_KEY or its file)"
                ),
            },
            404 if code == "no-such-repository" => StoreError::NotFound { detail },
            423 | 503 => StoreError::Transport { detail },
            502 if code != "push-refused" => StoreError::Transport { detail },
            // A refused pack, a hook behind the gateway, or an answer outside its protocol.
            _ => StoreError::Refused {
                branch: self
                    .upload
                    .as_ref()
                    .map_or_else(|| "the sync branch".to_string(), |u| u.saved.branch.clone()),
                reason: detail,
            },
        }
    }
}

/// The `missing` list and `missingCount` of an answer.
pub(super) fn missing_ids(v: &serde_json::Value) -> (Vec<String>, usize) {
    let missing: Vec<String> = v["missing"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let count = v["missingCount"]
        .as_u64()
        .and_then(|n| usize::try_from(n).ok())
        .unwrap_or(missing.len());
    (missing, count)
}
