//! Loads the built `Strata.clap` with a real CLAP host (clack-host) and checks what a DAW relies
//! on: audio passes bit-exact at every rate and block size, the worker receives every sample
//! that was not counted as dropped, state round-trips, and bad input breaks nothing.
//!
//! The bundle is the debug build `cargo xtask test` makes, with nice-plug's
//! `assert_process_allocs`: an allocation inside `process()` aborts this test process.

use anyhow::Result;
use strata_host_tests::audio::decode;
use strata_host_tests::*;

/// Seconds of real audio per configuration. Less than the plugin's 10 s ring, so no sample may
/// be dropped however slowly the worker runs, and every sample must arrive.
const EXCERPT_S: f64 = 4.0;

fn strata() -> Result<(ClapBundle, ClapInstance)> {
    let bundle = ClapBundle::load(&bundled("Strata.clap")?)?;
    let instance = bundle.instantiate(STRATA_CLAP_ID)?;
    Ok((bundle, instance))
}

fn assert_bit_exact(input: &[Vec<f32>], output: &[Vec<f32>], what: &str) {
    assert_eq!(input.len(), output.len(), "{what}: channel count");
    for (c, (i, o)) in input.iter().zip(output).enumerate() {
        assert_eq!(i.len(), o.len(), "{what}: length of channel {c}");
        if let Some(k) = i.iter().zip(o).position(|(a, b)| a.to_bits() != b.to_bits()) {
            panic!("{what}: channel {c} differs at sample {k}: in {} out {}", i[k], o[k]);
        }
    }
}

/// Checks the report of the worker that just stopped against what was sent.
fn assert_worker_received(input: &[Vec<f32>], sample_rate: f64, what: &str) -> serde_json::Value {
    let report = last_worker_report().expect("the worker wrote its report");
    let sent = input[0].len() as u64;
    let received = report["received_samples"].as_u64().unwrap();
    let dropped = report["dropped_samples"].as_u64().unwrap();
    assert_eq!(report["sample_rate_hz"].as_f64().unwrap(), sample_rate as f32 as f64, "{what}");
    assert_eq!(received + dropped, sent, "{what}: received + dropped = sent");
    assert_eq!(dropped, 0, "{what}: the ring holds more than was sent, so nothing may drop");
    assert_eq!(
        report["received_fnv1a64"].as_str().unwrap(),
        fnv1a64(&mixdown(input, 0, input[0].len())),
        "{what}: the worker received exactly the mono mixdown that was sent, in order"
    );
    report
}

/// Block-size patterns: fixed sizes, and a varying pattern inside one run.
fn block_patterns() -> Vec<(String, Vec<usize>, usize)> {
    let mut varying = Vec::new();
    let mut x: u32 = 0x2545_f491;
    for _ in 0..97 {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        varying.push(1 + (x % 4096) as usize);
    }
    vec![
        ("1".into(), vec![1], 1),
        ("64".into(), vec![64], 64),
        ("512".into(), vec![512], 512),
        ("4096".into(), vec![4096], 4096),
        ("varying 1..4096".into(), varying, 4096),
    ]
}

#[test]
fn passes_real_audio_bit_exact_at_every_rate_and_block_size() -> Result<()> {
    let _guard = plugin_lock();
    let music = decode(&asset("machine_wars_excerpt.ogg"))?;
    let (_bundle, mut plugin) = strata()?;
    for rate in [44_100.0, 48_000.0, 96_000.0] {
        for (name, sizes, max_block) in block_patterns() {
            // Block size 1 is slow in a debug host; one second of it proves the point.
            let seconds = if max_block == 1 { 1.0 } else { EXCERPT_S };
            let input = music.excerpt(10.0, seconds);
            let what = format!("{rate} Hz, blocks {name}");
            let out = plugin.process_stream(rate, max_block, &input, &sizes)?;
            assert_bit_exact(&input, &out.output, &what);
            let report = assert_worker_received(&input, rate, &what);
            // The worker analysed what it received: the 0.2 s layer steps every 0.1 s.
            assert!(report["analysis_error"].is_null(), "{what}: {}", report["analysis_error"]);
            let layers = report["layer_frames"].as_u64().unwrap();
            // (A few steps are still in the resampler and log-mel buffers when playback stops.)
            let played_s = input[0].len() as f64 / rate;
            assert!(layers >= (played_s * 10.0 - 4.0) as u64, "{what}: only {layers} layer frames for {played_s:.2} s");
        }
    }
    Ok(())
}

#[test]
fn mono_layout_passes_audio_and_captures_it() -> Result<()> {
    let _guard = plugin_lock();
    let music = decode(&asset("machine_wars_excerpt.ogg"))?;
    let (_bundle, mut plugin) = strata()?;
    plugin.select_channels(1)?;
    let input = vec![music.excerpt(3.0, EXCERPT_S).swap_remove(0)];
    let out = plugin.process_stream(48_000.0, 512, &input, &[512, 17, 300])?;
    assert_bit_exact(&input, &out.output, "mono");
    assert_worker_received(&input, 48_000.0, "mono");
    Ok(())
}

#[test]
fn many_activations_and_rate_changes_leave_no_worker_behind() -> Result<()> {
    let _guard = plugin_lock();
    let music = decode(&asset("machine_wars_excerpt.ogg"))?;
    let input = music.excerpt(0.0, 0.2);
    // Every test here holds the plugin lock, so no other instance lives in this process; a
    // worker joined by the previous test may still be listed for a moment.
    assert_eq!(worker_threads_settled(), 0, "a worker thread outlived an earlier test");
    {
        let (_bundle, mut plugin) = strata()?;
        // Rates the worker has never seen, standard and odd.
        let rates = [44_100.0, 22_050.0, 192_000.0, 37_800.0, 48_000.0, 11_025.0, 88_200.0];
        for (i, rate) in rates.iter().cycle().take(40).enumerate() {
            let out = plugin.process_stream(*rate, 256, &input, &[256])?;
            assert_bit_exact(&input, &out.output, &format!("cycle {i} at {rate} Hz"));
            let report = assert_worker_received(&input, *rate, &format!("cycle {i}"));
            assert_eq!(report["activation"].as_u64().unwrap(), i as u64 + 1);
            assert_eq!(worker_threads_settled(), 0, "after cycle {i} a worker thread is left");
        }
    }
    assert_eq!(worker_threads_settled(), 0, "after the instance was dropped a worker thread is left");
    Ok(())
}

/// The number of worker threads once none is left, or after two seconds.
///
/// `JoinHandle::join` returns when the kernel clears the thread's id futex, which happens while
/// the thread exits but before the kernel removes it from `/proc/self/task`: on a loaded machine
/// a joined worker can still be listed for a moment. A worker that was never stopped stays listed.
fn worker_threads_settled() -> usize {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
    loop {
        let now = worker_threads();
        if now == 0 || std::time::Instant::now() > deadline {
            return now;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Threads of this process named like Strata's workers (Linux).
fn worker_threads() -> usize {
    std::fs::read_dir("/proc/self/task")
        .map(|tasks| {
            tasks
                .filter_map(|t| t.ok())
                .filter(|t| {
                    std::fs::read_to_string(t.path().join("comm"))
                        .map(|name| name.starts_with("strata-worker"))
                        .unwrap_or(false)
                })
                .count()
        })
        .unwrap_or(0)
}

/// nice-plug's CLAP state: a little-endian u64 length, then that many bytes of JSON.
fn state_json(state: &[u8]) -> String {
    let (len, json) = state.split_at(8);
    let len = u64::from_le_bytes(len.try_into().unwrap()) as usize;
    assert_eq!(len, json.len(), "the length prefix matches the payload");
    String::from_utf8(json.to_vec()).unwrap()
}

fn state_bytes(json: &str) -> Vec<u8> {
    let mut bytes = (json.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(json.as_bytes());
    bytes
}

#[test]
fn state_save_and_restore_round_trips() -> Result<()> {
    let _guard = plugin_lock();
    let (bundle, mut first) = strata()?;
    let saved = first.save_state()?;
    let text = state_json(&saved);
    assert!(text.contains("editor_size"), "the view settings are saved: {text}");

    // A changed state, restored into a fresh instance, comes back out unchanged.
    let changed = text.replace("[900,520]", "[1234,777]");
    assert_ne!(changed, text, "the default size appears in the state: {text}");
    let mut second = bundle.instantiate(STRATA_CLAP_ID)?;
    second.load_state(&state_bytes(&changed))?;
    let resaved = state_json(&second.save_state()?);
    assert_eq!(resaved, changed);

    // And restoring the original gives the original.
    second.load_state(&saved)?;
    assert_eq!(second.save_state()?, saved);

    // A corrupt state is refused, and the instance keeps working with what it had.
    assert!(second.load_state(&state_bytes("{ not json")).is_err());
    assert_eq!(second.save_state()?, saved);
    let input = vec![vec![0.5_f32; 1000], vec![-0.5_f32; 1000]];
    let out = second.process_stream(48_000.0, 128, &input, &[128])?;
    assert_bit_exact(&input, &out.output, "after a corrupt state");
    Ok(())
}

/// The saved state as a fuzzer would hand it back: the real state with bytes flipped, cut short,
/// lengths that lie, values of the wrong type or out of range, and raw noise. Each load is
/// accepted or refused, never a crash; the instance then still saves a state that loads again,
/// and passes audio bit-exact.
#[test]
fn mutated_states_are_refused_or_accepted_and_break_nothing() -> Result<()> {
    let _guard = plugin_lock();
    let (_bundle, mut plugin) = strata()?;
    let saved = plugin.save_state()?;
    let text = state_json(&saved);
    let mut cases: Vec<Vec<u8>> = vec![
        Vec::new(),
        saved[..4].to_vec(),
        saved[..saved.len() / 2].to_vec(),
        state_bytes(""),
        state_bytes("null"),
        state_bytes("[]"),
        state_bytes(&text.replace("[900,520]", "[0,4294967295]")),
        state_bytes(&text.replace("[900,520]", "\"wide\"")),
        state_bytes(&text.replace("60.0", "1e308")),
        state_bytes(&text.replace("60.0", "-5")),
        state_bytes(&text.replace("false", "17")),
        state_bytes(&text.replace("[]", "[1e308,-1,null]")),
        {
            let mut lying = saved.clone();
            lying[..8].copy_from_slice(&u64::MAX.to_le_bytes());
            lying
        },
    ];
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..400 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let mut bytes = saved.clone();
        match i % 3 {
            0 => {
                // Flip a few bytes of the JSON.
                for k in 0..1 + (x % 4) as usize {
                    let at = 8 + ((x >> (8 * k)) as usize) % (bytes.len() - 8);
                    bytes[at] ^= (x >> (3 + k)) as u8 | 1;
                }
            }
            1 => bytes.truncate(8 + (x as usize) % (bytes.len() - 8)),
            _ => bytes = (0..(x % 300) as usize).map(|k| (x.rotate_left(k as u32) >> 11) as u8).collect(),
        }
        cases.push(bytes);
    }
    let (mut accepted, mut refused) = (0, 0);
    for case in &cases {
        match plugin.load_state(case) {
            Ok(()) => accepted += 1,
            Err(_) => refused += 1,
        }
        let now = plugin.save_state()?;
        plugin.load_state(&now)?;
    }
    println!("{accepted} mutated states accepted, {refused} refused");
    assert!(refused > 0 && accepted > 0, "both kinds were tried");
    let input = vec![vec![0.25_f32; 2000], vec![-0.25_f32; 2000]];
    let out = plugin.process_stream(44_100.0, 256, &input, &[256, 17])?;
    assert_bit_exact(&input, &out.output, "after mutated states");
    Ok(())
}

#[test]
fn bad_input_passes_bit_exact_and_is_reported() -> Result<()> {
    let _guard = plugin_lock();
    let (_bundle, mut plugin) = strata()?;
    let rate = 48_000.0;
    let n = 48_000;
    let mut left = Vec::with_capacity(n);
    let mut right = Vec::with_capacity(n);
    let mut x: u32 = 12345;
    for i in 0..n {
        x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let noise = (x >> 8) as f32 / (1 << 23) as f32 * 2.0 - 1.0; // full-scale white noise
        let (l, r) = match i / 8000 {
            0 => (f32::NAN, 0.0),
            1 => (f32::INFINITY, f32::NEG_INFINITY),
            2 => (f32::MIN_POSITIVE / 3.0, -f32::MIN_POSITIVE / 7.0), // denormals
            3 => (1.0, 1.0),                                           // DC at full scale
            4 => (noise, -noise),
            _ => (noise, noise),
        };
        left.push(l);
        right.push(r);
    }
    // A quiet NaN with a payload and a signalling NaN pattern must pass untouched, bit for bit.
    left[5] = f32::from_bits(0x7fc1_2345);
    right[6] = f32::from_bits(0x7fa0_0001);
    let input = vec![left, right];
    let out = plugin.process_stream(rate, 1024, &input, &[1024, 1, 333])?;
    assert_bit_exact(&input, &out.output, "NaN/Inf/denormal/DC/noise");
    let report = last_worker_report()?;
    assert_eq!(report["received_samples"].as_u64().unwrap(), n as u64);
    // Mixdown of a NaN or an infinity is non-finite; +inf + -inf is NaN.
    let expected_non_finite = mixdown(&input, 0, n).iter().filter(|s| !s.is_finite()).count() as u64;
    assert_eq!(report["non_finite_samples"].as_u64().unwrap(), expected_non_finite);
    assert!(expected_non_finite >= 16_000);
    Ok(())
}

#[test]
fn minutes_of_silence_pass_and_are_counted() -> Result<()> {
    let _guard = plugin_lock();
    let (_bundle, mut plugin) = strata()?;
    let rate = 44_100.0;
    let input = vec![vec![0.0_f32; 44_100 * 180]; 2]; // three minutes
    let out = plugin.process_stream(rate, 4096, &input, &[4096])?;
    assert_bit_exact(&input, &out.output, "silence");
    let report = last_worker_report()?;
    let received = report["received_samples"].as_u64().unwrap();
    let dropped = report["dropped_samples"].as_u64().unwrap();
    // Faster than real time, the worker may fall behind; what it misses must be counted.
    assert_eq!(received + dropped, input[0].len() as u64);
    Ok(())
}

#[test]
fn zero_length_and_oversized_blocks_do_not_break_it() -> Result<()> {
    let _guard = plugin_lock();
    let (_bundle, mut plugin) = strata()?;
    // Hosts send empty blocks, and some exceed the maximum they announced.
    plugin.process_raw_frame_counts(48_000.0, 256, &[0, 256, 0, 1, 1024, 8192, 0, 3])?;
    let report = last_worker_report()?;
    let total = [0_u64, 256, 0, 1, 1024, 8192, 0, 3].iter().sum::<u64>();
    assert_eq!(
        report["received_samples"].as_u64().unwrap() + report["dropped_samples"].as_u64().unwrap(),
        total
    );
    Ok(())
}

#[test]
fn the_bundle_lists_strata_with_its_fixed_id() -> Result<()> {
    let _guard = plugin_lock();
    let bundle = ClapBundle::load(&bundled("Strata.clap")?)?;
    assert_eq!(bundle.plugin_ids(), vec![STRATA_CLAP_ID.to_owned()]);
    Ok(())
}

/// Song-timeline mode, from the host's side: a host looping bars 1-8 (12 s at 160 BPM) twice
/// sends its song position with every block, and the worker places every layer step in the
/// song: all within the loop, the second pass on the first. (The editor then keeps one pass;
/// `plugin/tests/editor.rs` checks that with the same placement.)
#[test]
fn a_looping_transport_places_every_layer_step_inside_the_loop() -> Result<()> {
    const TEMPO: f64 = 160.0;
    const LOOP_S: f64 = 8.0 * 4.0 * 60.0 / TEMPO;
    let _guard = plugin_lock();
    let music = decode(&asset("machine_wars_excerpt.ogg"))?;
    let (_bundle, mut plugin) = strata()?;
    let rate = 48_000.0;
    let input = music.excerpt(0.0, 2.0 * LOOP_S);
    let mut running = plugin.start(rate, 512)?;
    let start = std::time::Instant::now();
    let mut pos = 0;
    while pos < input[0].len() {
        let n = 512.min(input[0].len() - pos);
        running.set_transport(Some((TEMPO, true, (pos as f64 / rate) % LOOP_S)));
        for (c, channel) in input.iter().enumerate() {
            running.input[c][..n].copy_from_slice(&channel[pos..pos + n]);
        }
        running.process(n)?;
        pos += n;
        // Eight times real time: fast, and well within what the worker keeps up with.
        let due = std::time::Duration::from_secs_f64(pos as f64 / rate / 8.0);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    plugin.stop(running);
    let report = assert_worker_received(&input, rate, "looping transport");
    assert_eq!(report["dropped_samples"].as_u64(), Some(0));
    for (level, tally) in report["levels"].as_array().unwrap().iter().enumerate() {
        let frames = tally["frames"].as_u64().unwrap();
        assert_eq!(tally["song_frames"].as_u64().unwrap(), frames, "level {level}: every step is in the song");
        if frames > 0 {
            let range = tally["song_range_s"].as_array().unwrap();
            let (first, last) = (range[0].as_f64().unwrap(), range[1].as_f64().unwrap());
            assert!(first >= 0.0 && last <= LOOP_S + 1e-6, "level {level}: song positions {first}..{last} s lie in the loop");
        }
    }
    // The finest level steps every 0.1 s through both passes: its steps cover the loop twice,
    // not the 24 s the stream lasted.
    let fine = &report["levels"][0];
    assert!(fine["frames"].as_u64().unwrap() as f64 > 1.5 * LOOP_S * 10.0, "{fine}");
    Ok(())
}
