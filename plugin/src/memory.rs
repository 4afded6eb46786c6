//! Keeping the allocator's footprint flat over a long session: freed memory goes back to the
//! system instead of staying in glibc's heaps.

/// The size from which glibc serves an allocation with a mapping of its own (returned to the
/// system the moment it is freed), bytes: glibc's own starting value.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD_BYTES: i32 = 128 * 1024;
/// How much free space at the top of a heap glibc keeps before giving it back, bytes: glibc's
/// own default.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD_BYTES: i32 = 128 * 1024;

/// Holds glibc's mmap and trim thresholds at their defaults for the life of the process.
///
/// glibc raises its mmap threshold each time a mapped block larger than it is freed (up to
/// 32 MB): from then on blocks of that size come from the heaps instead. Strata frees such
/// blocks all the time (the pattern search's snapshot of the history and its scratch, an
/// activation's engine, the editor's textures), so after a few activations they were carved from
/// the heaps, the small allocations that never go away landed between them, and a heap could not
/// shrink past them: the host's memory grew with every activation while what was in use stayed
/// flat. The session benchmark (twelve activations with the editor and Record, memory taken after
/// each) measured it: resident 115 -> 156 MB with what malloc had handed out 29.3 -> 31.8 MB, and
/// `malloc_trim` got none of it back; with the thresholds held, 113 -> 117 MB.
///
/// The setting is the process's (Strata shares its allocator with the host), which is why it
/// keeps glibc's own values rather than choosing new ones: hosts get the allocator as glibc
/// starts it, without the drift. Called once, on the main thread as the plugin first activates;
/// never on the audio thread.
pub fn hold_allocator_thresholds() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        static HELD: std::sync::Once = std::sync::Once::new();
        // SAFETY: mallopt only sets two of the allocator's parameters, under its own lock.
        HELD.call_once(|| unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
            libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD_BYTES);
        });
    }
}

/// Returns the free pages at the top and inside of every heap to the system (glibc's
/// `malloc_trim`; nothing elsewhere).
///
/// The editor's window and the analysis worker each run on a thread of their own, and glibc gives
/// each new thread its own heap (arena, up to eight per core): what a closed window or a stopped
/// worker freed would otherwise stay resident in its arena while the next one fills another.
/// This was the first fix for the session benchmark's growth (540 MB over eight hours, where one
/// arena stayed flat); what remained came from glibc's drifting mmap threshold, which
/// [`hold_allocator_thresholds`] stops, so that large blocks go back to the system whole and no
/// longer pin a heap. Both stay: the trim is cheap, and removing it has not been measured.
/// Called as an editor window opens and as a worker ends, on their own threads; never on the
/// audio thread (it walks the heaps under their locks).
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages to the system, and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
