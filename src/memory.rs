//! Process-wide memory bounds, set once when the binary starts and before any thread does:
//! how many malloc arenas glibc may keep, and libgit2's caches and maps
//! ([`crate::store::git::bound_libgit2_memory`]). It must not decide anything per record.

/// Most malloc arenas glibc keeps. By default it keeps up to 8 per core, one per thread that
/// allocated while another held an arena; mwsync's async workers, blocking store threads and
/// push threads each grew their own and kept what they freed (a 200k first sync held 98 MiB
/// of anonymous memory with the default, 66 MiB with 2, in the same time).
pub const MALLOC_ARENAS: i32 = 2;

/// Bounds the process's memory as described in the module header. Call once, first thing in
/// `main`, before any thread starts.
pub fn bound_process_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets a glibc tunable; no other thread runs yet.
        let set = unsafe { libc::mallopt(libc::M_ARENA_MAX, MALLOC_ARENAS) };
        if set != 1 {
            tracing::warn!("cannot bound glibc's malloc arenas");
        }
    }
    crate::store::git::bound_libgit2_memory();
}
