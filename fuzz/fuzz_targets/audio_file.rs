//! The audio decoders through `AudioFile`, as `strata analyze` and `strata export` open a file:
//! any bytes, under any of the extensions Strata reads, must give audio or an error, never a
//! panic, a hang or unbounded memory.
#![no_main]

use libfuzzer_sys::fuzz_target;
use strata::audio_file::AudioFile;

const EXTENSIONS: [&str; 5] = ["wav", "flac", "mp3", "ogg", "bin"];
/// Stop after this many decoded samples: a header may promise hours that the bytes do not hold.
const MAX_SAMPLES: usize = 1 << 22;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, bytes)) = data.split_first() else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join(format!("input.{}", EXTENSIONS[usize::from(selector) % EXTENSIONS.len()]));
    std::fs::write(&path, bytes).expect("write input");
    let Ok(mut file) = AudioFile::open(&path) else { return };
    assert!(file.sample_rate() > 0 && file.channels() > 0, "an opened file has a rate and channels");
    let mut channels = Vec::new();
    while let Ok(true) = file.read_planar(&mut channels) {
        if channels.first().map_or(0, Vec::len) * channels.len() > MAX_SAMPLES {
            break;
        }
    }
    assert!(channels.iter().all(|c| c.len() == channels[0].len()), "channels stay the same length");
});
