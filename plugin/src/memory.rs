//! Handing memory that is free, but still held by the allocator, back to the system.

/// Returns the free pages of every heap to the system (glibc's `malloc_trim`; nothing elsewhere).
///
/// The editor's window and the analysis worker each run on a thread of their own, and glibc gives
/// each new thread its own heap (arena, up to eight per core). What a closed window or a stopped
/// worker freed stays resident in its arena while the next one fills another, so a host's memory
/// rose by about 20 MB each time the editor was opened and closed, until every arena held that
/// much: 20 MB to 540 MB over the eight-hour session benchmark, where one arena
/// (`MALLOC_ARENA_MAX=1`) stayed flat. Called as an editor window opens and as a worker ends,
/// on their own threads; never on the audio thread (it walks the heaps under their locks).
pub fn release_freed_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free pages to the system, and is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}
