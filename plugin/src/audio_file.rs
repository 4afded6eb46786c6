//! Reading audio files (WAV, FLAC, MP3, OGG through symphonia) as a stream of mono blocks, so a
//! three-hour file takes no more memory than a short one.

use std::path::{Path, PathBuf};

use std::borrow::Cow;

use symphonia::core::audio::{AudioBuffer, AudioBufferRef};
use symphonia::core::codecs::{Decoder, DecoderOptions, CODEC_TYPE_NULL};
use symphonia::core::errors::Error as SymphoniaError;
use symphonia::core::formats::{FormatOptions, FormatReader};
use symphonia::core::io::MediaSourceStream;
use symphonia::core::meta::MetadataOptions;
use symphonia::core::probe::Hint;

/// Everything that can go wrong reading a file, each naming it.
#[derive(Debug, thiserror::Error)]
pub enum AudioFileError {
    #[error("cannot open {path}: {reason}")]
    Open { path: PathBuf, reason: String },
    #[error("{path} is empty")]
    Empty { path: PathBuf },
    #[error("{path} is not an audio format Strata reads (WAV, FLAC, MP3, OGG): {reason}")]
    Unsupported { path: PathBuf, reason: String },
    #[error("{path} has no audio track")]
    NoTrack { path: PathBuf },
    #[error("{path} does not say its sample rate")]
    NoSampleRate { path: PathBuf },
    #[error("{path} is corrupt or truncated after {seconds:.1} s: {reason}")]
    Corrupt { path: PathBuf, seconds: f64, reason: String },
}

/// An open audio file, read block by block.
pub struct AudioFile {
    path: PathBuf,
    format: Box<dyn FormatReader>,
    decoder: Box<dyn Decoder>,
    track_id: u32,
    sample_rate: u32,
    channels: usize,
    frames_total: Option<u64>,
    frames_read: u64,
    /// Decoded samples of formats that are not f32 already, converted (allocated once, grown
    /// when a packet is longer).
    converted: Option<AudioBuffer<f32>>,
}

impl AudioFile {
    pub fn open(path: &Path) -> Result<Self, AudioFileError> {
        let file = std::fs::File::open(path).map_err(|e| AudioFileError::Open {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        if file.metadata().map(|m| m.len() == 0).unwrap_or(false) {
            return Err(AudioFileError::Empty { path: path.to_owned() });
        }
        let stream = MediaSourceStream::new(Box::new(file), Default::default());
        let mut hint = Hint::new();
        if let Some(ext) = path.extension().and_then(|e| e.to_str()) {
            hint.with_extension(ext);
        }
        let probed = decoder_call(|| {
            symphonia::default::get_probe().format(&hint, stream, &FormatOptions::default(), &MetadataOptions::default())
        })
        .map_err(|reason| AudioFileError::Corrupt { path: path.to_owned(), seconds: 0.0, reason })?
        .map_err(|e| AudioFileError::Unsupported {
            path: path.to_owned(),
            reason: e.to_string(),
        })?;
        let format = probed.format;
        let track = format
            .tracks()
            .iter()
            .find(|t| t.codec_params.codec != CODEC_TYPE_NULL)
            .ok_or_else(|| AudioFileError::NoTrack { path: path.to_owned() })?;
        let sample_rate = track
            .codec_params
            .sample_rate
            .filter(|&r| r > 0)
            .ok_or_else(|| AudioFileError::NoSampleRate { path: path.to_owned() })?;
        let channels = track.codec_params.channels.map_or(1, |c| c.count()).max(1);
        let frames_total = track.codec_params.n_frames;
        let track_id = track.id;
        let params = track.codec_params.clone();
        let decoder = decoder_call(|| symphonia::default::get_codecs().make(&params, &DecoderOptions::default()))
            .map_err(|reason| AudioFileError::Corrupt { path: path.to_owned(), seconds: 0.0, reason })?
            .map_err(|e| AudioFileError::Unsupported {
                path: path.to_owned(),
                reason: e.to_string(),
            })?;
        Ok(Self {
            path: path.to_owned(),
            format,
            decoder,
            track_id,
            sample_rate,
            channels,
            frames_total,
            frames_read: 0,
            converted: None,
        })
    }

    pub fn sample_rate(&self) -> u32 {
        self.sample_rate
    }

    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Length in seconds, if the container says.
    pub fn duration_s(&self) -> Option<f64> {
        self.frames_total.map(|n| n as f64 / f64::from(self.sample_rate))
    }

    /// Seconds decoded so far.
    pub fn position_s(&self) -> f64 {
        self.frames_read as f64 / f64::from(self.sample_rate)
    }

    /// Decodes the next packet into `mono` (cleared first; the channel average). `Ok(false)` at
    /// the end of the file.
    pub fn read_mono(&mut self, mono: &mut Vec<f32>) -> Result<bool, AudioFileError> {
        mono.clear();
        self.next_planes(|planes| {
            let gain = 1.0 / planes.len() as f32;
            match planes {
                [only] => mono.extend_from_slice(only),
                [left, right] => mono.extend(left.iter().zip(*right).map(|(l, r)| (l + r) * gain)),
                [first, rest @ ..] => {
                    mono.extend_from_slice(first);
                    for plane in rest {
                        for (m, s) in mono.iter_mut().zip(*plane) {
                            *m += s;
                        }
                    }
                    mono.iter_mut().for_each(|m| *m *= gain);
                }
                [] => {}
            }
        })
    }

    /// Decodes the next packet and appends it to `channels` (one `Vec` per channel, made to
    /// match the file's channel count). `Ok(false)` at the end of the file.
    pub fn read_planar(&mut self, channels: &mut Vec<Vec<f32>>) -> Result<bool, AudioFileError> {
        self.next_planes(|planes| {
            channels.resize_with(planes.len(), Vec::new);
            for (channel, plane) in channels.iter_mut().zip(planes) {
                channel.extend_from_slice(plane);
            }
        })
    }

    /// Decodes the next non-empty packet of this track and hands its samples to `take`, one
    /// slice per channel, all the same length. `Ok(false)` at the end of the file.
    ///
    /// The samples are read where the decoder left them when they are f32 already (a float
    /// WAV, MP3, OGG), and converted once otherwise: no copy interleaves them only for the
    /// caller to take them apart again.
    fn next_planes(&mut self, take: impl FnOnce(&[&[f32]])) -> Result<bool, AudioFileError> {
        loop {
            let format = &mut self.format;
            let packet = match decoder_call(|| format.next_packet()).map_err(|reason| self.corrupt(reason))? {
                Ok(p) => p,
                Err(SymphoniaError::IoError(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                    // A file that ends early is truncated only if the container promised more.
                    if let Some(total) = self.frames_total {
                        if self.frames_read + 1024 < total {
                            return Err(self.corrupt(format!(
                                "it ends {:.1} s early",
                                (total - self.frames_read) as f64 / f64::from(self.sample_rate)
                            )));
                        }
                    }
                    return Ok(false);
                }
                Err(SymphoniaError::ResetRequired) => return Ok(false),
                Err(e) => return Err(self.corrupt(e.to_string())),
            };
            if packet.track_id() != self.track_id {
                continue;
            }
            let decoder = &mut self.decoder;
            let seconds = self.frames_read as f64 / f64::from(self.sample_rate);
            let path = &self.path;
            let gave_up = |reason| AudioFileError::Corrupt { path: path.clone(), seconds, reason };
            let decoded = match decoder_call(|| decoder.decode(&packet)).map_err(gave_up)? {
                Ok(d) => d,
                Err(SymphoniaError::DecodeError(e)) => return Err(gave_up(e.to_owned())),
                Err(e) => return Err(gave_up(e.to_string())),
            };
            let frames = decoded.frames();
            if frames == 0 {
                continue;
            }
            self.frames_read += frames as u64;
            let planes = match decoded {
                AudioBufferRef::F32(Cow::Borrowed(buffer)) => buffer.planes(),
                other => {
                    let spec = *other.spec();
                    let capacity = other.capacity() as u64;
                    let converted = match &mut self.converted {
                        Some(c) if c.capacity() >= other.capacity() && *c.spec() == spec => c,
                        slot => slot.insert(AudioBuffer::new(capacity, spec)),
                    };
                    other.convert(converted);
                    converted.planes()
                }
            };
            take(planes.planes());
            return Ok(true);
        }
    }

    fn corrupt(&self, reason: String) -> AudioFileError {
        AudioFileError::Corrupt {
            path: self.path.clone(),
            seconds: self.position_s(),
            reason,
        }
    }
}

thread_local! {
    /// Set while this thread is inside the decoders, so [`quiet_decoder_panics`] knows a panic
    /// there is one [`decoder_call`] turns into an error.
    static IN_DECODER: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Calls into symphonia. Some malformed files make it panic rather than return an error (a WAV
/// header with a sample rate of 0 panics in `TimeBase::new`, found by `fuzz/`'s `audio_file`
/// harness): the panic is caught and becomes the error's reason, so one bad file in a batch is
/// one line and not the end of the batch, and nothing is printed for it.
fn decoder_call<T>(call: impl FnOnce() -> T) -> Result<T, String> {
    quiet_decoder_panics();
    IN_DECODER.with(|f| f.set(true));
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(call));
    IN_DECODER.with(|f| f.set(false));
    result.map_err(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "the decoder failed".to_owned());
        format!("the decoder gave up on it ({what})")
    })
}

/// Installs (once) a panic hook that stays silent for panics inside [`decoder_call`] and hands
/// every other panic to the hook that was there before.
fn quiet_decoder_panics() {
    static INSTALLED: std::sync::Once = std::sync::Once::new();
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if !IN_DECODER.with(std::cell::Cell::get) {
                previous(info);
            }
        }));
    });
}
