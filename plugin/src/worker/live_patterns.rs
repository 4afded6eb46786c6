//! The live worker's pattern layers, searched for on a thread of their own.
//!
//! A search over the ten-minute history takes about a second. Run on the worker thread, it kept
//! the worker from draining the capture ring for that long; at an offline bounce's pace (8x real
//! time and more) the ring filled and analysis frames were dropped. So the worker hands a
//! snapshot of the search's inputs ([`Engine::pattern_snapshot`]) to a searcher thread and goes on
//! draining; the layers found come back over a channel and reach the editor a moment later.

use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::{StatusPublisher, PATTERN_REFRESH_S};
use crate::engine::{Engine, PatternSnapshot};
use crate::layers::Pattern;

/// The largest share of one core the searcher may take: on a slow machine, or in a host that
/// plays faster than real time, the layers are then refreshed less often instead of the search
/// competing with the host and the worker for the CPU.
pub const PATTERN_REFRESH_SHARE: f64 = 0.25;

/// The worker's copy of the newest pattern layers, and the searcher thread that finds them again
/// every [`PATTERN_REFRESH_S`] of audio.
pub struct LivePatterns {
    /// Shared with the editor as they are: a refresh hands over the same `Arc`, no copy.
    pub found: Arc<Vec<Pattern>>,
    /// Seconds of audio the engine had analysed when the last search was asked for.
    asked_at_s: f64,
    /// Whether a search is running (at most one is).
    searching: bool,
    /// Not before this instant may the next search start (the share budget).
    next_allowed: Option<Instant>,
    searcher: Option<Searcher>,
    /// Audio the engine never saw, added to every time found.
    offset_s: f64,
    /// The searcher could not be started (no thread): search on the worker thread instead.
    inline: bool,
}

/// The searcher thread and its two channels.
struct Searcher {
    jobs: SyncSender<PatternSnapshot>,
    results: Receiver<(Vec<Pattern>, Duration)>,
    thread: JoinHandle<()>,
}

impl LivePatterns {
    /// No layers yet; the searcher thread starts with the first search. `offset_s`: seconds of
    /// audio before the engine's first sample.
    pub fn new(offset_s: f64) -> Self {
        Self {
            found: Arc::new(Vec::new()),
            asked_at_s: 0.0,
            searching: false,
            next_allowed: None,
            searcher: None,
            offset_s,
            inline: false,
        }
    }

    /// Sets the audio before the engine's first sample (known once the engine starts).
    pub fn set_offset_s(&mut self, offset_s: f64) {
        self.offset_s = offset_s;
    }

    /// Hands new layers to the editor if a search has finished, and starts the next search if
    /// enough new audio has arrived and the share budget allows. Never waits for a search.
    pub fn poll(&mut self, engine: &Engine, name: &str, publisher: &StatusPublisher) {
        self.collect(publisher);
        let due = engine.duration_s() - self.asked_at_s >= PATTERN_REFRESH_S
            && !self.searching
            && self.next_allowed.is_none_or(|t| Instant::now() >= t);
        if !due {
            return;
        }
        self.asked_at_s = engine.duration_s();
        let snapshot = engine.pattern_snapshot();
        if !self.inline && self.searcher.is_none() {
            self.searcher = Searcher::spawn(name);
            self.inline = self.searcher.is_none();
        }
        let snapshot = match &self.searcher {
            Some(s) => match s.jobs.send(snapshot) {
                Ok(()) => {
                    self.searching = true;
                    return;
                }
                Err(mpsc::SendError(snapshot)) => snapshot,
            },
            None => snapshot,
        };
        // No searcher: the search runs here, as it did before there was one.
        let started = Instant::now();
        let found = snapshot.patterns();
        self.accept(found, started.elapsed(), publisher);
    }

    /// Ends the searcher, keeping the result of a search still running (the worker's report
    /// and the editor's last picture should hold the newest layers).
    pub fn stop(&mut self, publisher: &StatusPublisher) {
        let Some(Searcher { jobs, results, thread }) = self.searcher.take() else { return };
        // The searcher ends when its queue closes, after the search it is running.
        drop(jobs);
        let _ = thread.join();
        if let Ok((found, took)) = results.try_recv() {
            self.accept(found, took, publisher);
        }
    }

    /// Takes a finished search's layers, if there are any.
    fn collect(&mut self, publisher: &StatusPublisher) {
        let Some(searcher) = &self.searcher else { return };
        match searcher.results.try_recv() {
            Ok((found, took)) => self.accept(found, took, publisher),
            Err(TryRecvError::Empty) => {}
            // The searcher is gone (it panicked): search on the worker thread from now on.
            Err(TryRecvError::Disconnected) => {
                self.searcher = None;
                self.searching = false;
                self.inline = true;
            }
        }
    }

    fn accept(&mut self, mut found: Vec<Pattern>, took: Duration, publisher: &StatusPublisher) {
        for p in &mut found {
            p.shift_times(self.offset_s);
        }
        self.found = Arc::new(found);
        publisher.set_patterns(self.found.clone());
        self.searching = false;
        self.next_allowed = Some(Instant::now() + took.mul_f64(1.0 / PATTERN_REFRESH_SHARE - 1.0));
    }
}

impl Searcher {
    /// A thread named after the worker's, waiting for snapshots; `None` if it cannot be started.
    fn spawn(name: &str) -> Option<Searcher> {
        let (jobs, job_queue) = mpsc::sync_channel::<PatternSnapshot>(1);
        let (result_sender, results) = mpsc::sync_channel(1);
        let thread = std::thread::Builder::new()
            .name(format!("{name}-patterns"))
            .spawn(move || {
                // Ends when the worker drops its sender.
                while let Ok(snapshot) = job_queue.recv() {
                    let started = Instant::now();
                    let found = snapshot.patterns();
                    if result_sender.send((found, started.elapsed())).is_err() {
                        break;
                    }
                }
            })
            .ok()?;
        Some(Searcher { jobs, results, thread })
    }
}
