//! glibc's allocator as Strata leaves it for the host (`strata::memory`). A file of its own: the
//! allocator's counters are the process's, and no other test may allocate while they are read.

#![cfg(all(target_os = "linux", target_env = "gnu"))]

use std::hint::black_box;

/// Blocks glibc has mapped on their own (not carved from a heap).
fn mapped_blocks() -> usize {
    // SAFETY: mallinfo2 only reads the allocator's statistics.
    unsafe { libc::mallinfo2() }.hblks
}

/// Freeing a large mapped block raises glibc's mmap threshold to that block's size unless the
/// threshold is held; after that, blocks below it come from the heaps, where the long-lived
/// allocations beside them keep a heap from shrinking (the session benchmark's growing memory).
/// With the thresholds held, a 512 KiB block is still mapped on its own after a 4 MiB one was
/// freed. (Without `hold_allocator_thresholds`, this fails: the 512 KiB block comes from a heap.)
#[test]
fn a_freed_large_block_does_not_move_the_mmap_threshold() {
    strata::memory::hold_allocator_thresholds();
    drop(black_box(vec![1_u8; 4 << 20]));
    let before = mapped_blocks();
    let block = black_box(vec![1_u8; 512 << 10]);
    let during = mapped_blocks();
    drop(block);
    assert_eq!(during, before + 1, "a 512 KiB block came from a heap: the mmap threshold moved");
    assert_eq!(mapped_blocks(), before, "the 512 KiB block's mapping was not returned as it was freed");
}
