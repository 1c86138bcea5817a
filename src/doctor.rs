//! `mwsync doctor` (stub while the checks are written).

/// Default free space the cache check asks for, in megabytes.
pub const DEFAULT_MIN_FREE_MB: u64 = 1024;

/// Options.
pub struct DoctorOptions {
    /// Minimum free space.
    pub min_free_mb: u64,
}

/// Report.
pub struct Report;

impl Report {
    /// Text.
    pub fn text(&self) -> String {
        String::new()
    }
    /// Passed.
    pub fn passed(&self) -> bool {
        true
    }
}

/// Runs.
pub async fn run(
    _cfg: Result<crate::config::DaemonConfig, crate::config::ConfigError>,
    _o: &DoctorOptions,
) -> Report {
    Report
}
