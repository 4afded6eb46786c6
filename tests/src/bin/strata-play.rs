//! Plays an audio file through the built Strata CLAP bundle, as a host would, and prints what
//! the plugin's worker received. `strata-play FILE [--rate HZ] [--block N]`.

use anyhow::{bail, Context, Result};
use strata_host_tests::audio::decode;
use strata_host_tests::*;

/// How much faster than real time the file is played.
const SPEED: f64 = 20.0;

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let mut file = None;
    let mut block = 512_usize;
    let mut rate = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--block" => block = args.next().context("--block needs a number")?.parse()?,
            "--rate" => rate = Some(args.next().context("--rate needs a number")?.parse::<f64>()?),
            _ if file.is_none() => file = Some(arg),
            _ => bail!("unexpected argument {arg:?}; usage: strata-play FILE [--rate HZ] [--block N]"),
        }
    }
    let file = file.context("usage: strata-play FILE [--rate HZ] [--block N]")?;
    let audio = decode(std::path::Path::new(&file))?;
    let rate = rate.unwrap_or(f64::from(audio.sample_rate));
    let clap = bundled("Strata.clap")?;
    println!("{file}: {} channels, {} Hz, {:.1} s", audio.channels.len(), audio.sample_rate, audio.frames() as f64 / f64::from(audio.sample_rate));
    println!("plugin: {}", clap.display());

    let bundle = ClapBundle::load(&clap)?;
    let mut plugin = bundle.instantiate(STRATA_CLAP_ID)?;
    let input: Vec<Vec<f32>> = match audio.channels.len() {
        1 => {
            plugin.select_channels(1)?;
            audio.channels.clone()
        }
        2 => audio.channels.clone(),
        n => bail!("{n}-channel files are not supported by this player (Strata's layouts are mono and stereo)"),
    };
    // Paced at SPEED times real time, like a DAW's faster-than-real-time export.
    let start = std::time::Instant::now();
    let mut running = plugin.start(rate, block)?;
    let total = input[0].len();
    let mut exact = true;
    let mut calls = 0;
    let mut pos = 0;
    while pos < total {
        let n = block.min(total - pos);
        for (c, ch) in input.iter().enumerate() {
            running.input[c][..n].copy_from_slice(&ch[pos..pos + n]);
        }
        running.process(n)?;
        exact &= input.iter().enumerate().all(|(c, ch)| running.output[c][..n] == ch[pos..pos + n]);
        pos += n;
        calls += 1;
        let due = std::time::Duration::from_secs_f64(pos as f64 / rate / SPEED);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    plugin.stop(running);
    let elapsed = start.elapsed();
    let report = last_worker_report()?;
    println!("{calls} process calls of {block} frames in {:.2} s ({SPEED}x real time); output bit-exact: {exact}", elapsed.as_secs_f64());
    println!("worker: {}", serde_json::to_string_pretty(&report)?);
    if !exact {
        bail!("the plugin changed the audio");
    }
    Ok(())
}
