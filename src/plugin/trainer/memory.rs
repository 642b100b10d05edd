//! Giving freed memory back to the system after the trainer's large, short-lived
//! allocations (clips, mapped dictionaries, the threads of a previous activation).
//!
//! glibc's allocator gives each thread that allocates an arena of its own and keeps what is
//! freed in it for reuse, so a plugin that starts its worker threads at every activation and
//! frees clips of megabytes from them shows a resident set that creeps up over hours of
//! work (measured in the soak test, BENCHMARKS.md "Soak of the plugin": the memory the
//! plugin holds stays flat while the resident set grew by tens of MB per simulated hour).
//! `malloc_trim(0)` returns the free pages of every arena (glibc 2.8 and later, see
//! `man 3 malloc_trim`). It is a process-wide call that only releases memory nobody holds,
//! and it is never made on the audio thread.

/// Returns free allocator memory to the system (glibc on Linux; nothing elsewhere).
/// Call off the audio thread, after dropping something large.
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; any pad is valid.
    unsafe {
        libc::malloc_trim(0);
    }
}
