//! Plays an audio file through a built Strata bundle, as a host would, and prints what the
//! plugin's worker received.
//!
//! `strata-play FILE [--plugin BUNDLE] [--rate HZ] [--block N] [--speed X] [--editor]`: `BUNDLE`
//! is a `.clap` (loaded through clack-host) or a `.vst3` (through the VST3 host in
//! `strata_host_tests::vst3`), by default the `Strata.clap` that `cargo xtask` built. The last
//! line printed is the worker's report as one line of JSON (`worker: {...}`), which the Windows
//! tests read back under Wine. `--editor` (Windows, CLAP) opens the plugin's editor in a window
//! of the host's for the whole playback and prints `editor: open` when it is; on Linux,
//! `strata-gui-host` does that.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use strata_host_tests::audio::decode;
use strata_host_tests::vst3::Vst3Module;
use strata_host_tests::*;

/// How much faster than real time the file is played, unless `--speed` says otherwise.
const SPEED: f64 = 20.0;

const USAGE: &str = "usage: strata-play FILE [--plugin BUNDLE.clap|BUNDLE.vst3] [--rate HZ] [--block N] [--speed X] [--editor]";

fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut file, mut plugin, mut rate, mut block) = (None, None, None, 512_usize);
    let (mut speed, mut editor, mut editor_after_s) = (SPEED, false, 0.0_f64);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--speed" => speed = args.next().context("--speed needs a number")?.parse()?,
            "--editor" => editor = true,
            "--editor-after" => editor_after_s = args.next().context("--editor-after needs seconds")?.parse()?,
            "--block" => block = args.next().context("--block needs a number")?.parse()?,
            "--rate" => rate = Some(args.next().context("--rate needs a number")?.parse::<f64>()?),
            "--plugin" => plugin = Some(PathBuf::from(args.next().context("--plugin needs a bundle")?)),
            _ if file.is_none() => file = Some(arg),
            _ => bail!("unexpected argument {arg:?}; {USAGE}"),
        }
    }
    let file = file.context(USAGE)?;
    anyhow::ensure!(block > 0, "--block must be at least 1");
    anyhow::ensure!(speed > 0.0, "--speed must be above 0");
    let audio = decode(std::path::Path::new(&file))?;
    let rate = rate.unwrap_or(f64::from(audio.sample_rate));
    let plugin = match plugin {
        Some(p) => p,
        None => bundled("Strata.clap")?,
    };
    println!("{file}: {} channels, {} Hz, {:.1} s", audio.channels.len(), audio.sample_rate, audio.frames() as f64 / f64::from(audio.sample_rate));
    println!("plugin: {}", plugin.display());
    if !(1..=2).contains(&audio.channels.len()) {
        bail!("{}-channel files are not supported by this player (Strata's layouts are mono and stereo)", audio.channels.len());
    }
    // The report file must be chosen before the plugin's code runs.
    worker_report_file();

    let start = std::time::Instant::now();
    let (calls, exact) = if plugin.extension().is_some_and(|e| e == "vst3") {
        anyhow::ensure!(!editor, "--editor: the VST3 host here has no editor support");
        let module = Vst3Module::load(&plugin)?;
        let mut instance = module.instantiate()?;
        let mut running = instance.start(audio.channels.len(), rate, block)?;
        play_paced(&audio.channels, rate, block, speed, |pos, n| {
            feed(&audio.channels, pos, n, &mut running.input);
            running.process(n)?;
            Ok(output_is_input(&audio.channels, pos, n, &running.output))
        })?
    } else {
        let bundle = ClapBundle::load(&plugin)?;
        let mut instance = bundle.instantiate(STRATA_CLAP_ID)?;
        if audio.channels.len() == 1 {
            instance.select_channels(1)?;
        }
        let mut running = instance.start(rate, block)?;
        let mut window = None;
        let editor_at = (editor_after_s * rate) as usize;
        let played = play_paced(&audio.channels, rate, block, speed, |pos, n| {
            feed(&audio.channels, pos, n, &mut running.input);
            running.process(n)?;
            if editor && window.is_none() && pos >= editor_at {
                window = Some(host_window::open_editor(&mut instance)?);
            }
            if window.is_some() {
                host_window::pump_messages();
            }
            Ok(output_is_input(&audio.channels, pos, n, &running.output))
        })?;
        if let Some(window) = window {
            instance.close_gui()?;
            host_window::close(window);
        }
        instance.stop(running);
        played
    };
    let elapsed = start.elapsed();
    let report = last_worker_report()?;
    println!("{calls} process calls of {block} frames in {:.2} s ({speed}x real time); output bit-exact: {exact}", elapsed.as_secs_f64());
    println!("worker: {}", serde_json::to_string(&report)?);
    if !exact {
        bail!("the plugin changed the audio");
    }
    Ok(())
}

/// Calls `process(position, frames)` for each block of `channels` in turn, paced at `speed`
/// times real time like a DAW's faster-than-real-time export. Returns the number of calls and
/// whether every call said its output was the input.
fn play_paced(
    channels: &[Vec<f32>],
    rate: f64,
    block: usize,
    speed: f64,
    mut process: impl FnMut(usize, usize) -> Result<bool>,
) -> Result<(usize, bool)> {
    let start = std::time::Instant::now();
    let total = channels[0].len();
    let (mut pos, mut calls, mut exact) = (0, 0, true);
    while pos < total {
        let n = block.min(total - pos);
        exact &= process(pos, n)?;
        pos += n;
        calls += 1;
        let due = std::time::Duration::from_secs_f64(pos as f64 / rate / speed);
        if let Some(wait) = due.checked_sub(start.elapsed()) {
            std::thread::sleep(wait);
        }
    }
    Ok((calls, exact))
}

/// Copies frames `pos..pos + n` of `channels` into the host's input buffers.
fn feed(channels: &[Vec<f32>], pos: usize, n: usize, input: &mut [Vec<f32>]) {
    for (buffer, channel) in input.iter_mut().zip(channels) {
        buffer[..n].copy_from_slice(&channel[pos..pos + n]);
    }
}

/// Whether the host's output buffers hold exactly frames `pos..pos + n` of `channels`.
fn output_is_input(channels: &[Vec<f32>], pos: usize, n: usize, output: &[Vec<f32>]) -> bool {
    output.iter().zip(channels).all(|(buffer, channel)| buffer[..n] == channel[pos..pos + n])
}

/// The host's window for the editor on Windows: a plain top-level window, its messages pumped
/// between blocks on this (the host's main) thread, as a DAW's message loop would.
#[cfg(windows)]
mod host_window {
    use anyhow::{bail, Result};
    use strata_host_tests::ClapInstance;
    use windows_sys::Win32::Foundation::HWND;
    use windows_sys::Win32::System::LibraryLoader::GetModuleHandleW;
    use windows_sys::Win32::UI::WindowsAndMessaging::{
        CreateWindowExW, DestroyWindow, DispatchMessageW, PeekMessageW, TranslateMessage, MSG, PM_REMOVE,
        WS_OVERLAPPEDWINDOW, WS_VISIBLE,
    };

    /// The window's client size in pixels: the editor's default fits.
    const SIZE: (i32, i32) = (1000, 640);

    pub struct HostWindow(HWND);

    /// Opens a window and the plugin's editor inside it; prints `editor: open`.
    pub fn open_editor(instance: &mut ClapInstance) -> Result<HostWindow> {
        let class: Vec<u16> = "STATIC\0".encode_utf16().collect();
        let title: Vec<u16> = "Strata test host\0".encode_utf16().collect();
        // SAFETY: a system window class, NUL-terminated names, no parent or menu.
        let hwnd = unsafe {
            CreateWindowExW(
                0,
                class.as_ptr(),
                title.as_ptr(),
                WS_OVERLAPPEDWINDOW | WS_VISIBLE,
                0,
                0,
                SIZE.0,
                SIZE.1,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                GetModuleHandleW(std::ptr::null()),
                std::ptr::null(),
            )
        };
        if hwnd.is_null() {
            bail!("CreateWindowExW failed: {}", std::io::Error::last_os_error());
        }
        // SAFETY: the window lives until `close`, after the editor is destroyed.
        unsafe { instance.open_gui_in_win32(hwnd)? };
        pump_messages();
        println!("editor: open");
        Ok(HostWindow(hwnd))
    }

    /// Dispatches every message waiting for this thread's windows.
    pub fn pump_messages() {
        // SAFETY: `msg` is plain data the call fills in.
        unsafe {
            let mut msg: MSG = std::mem::zeroed();
            while PeekMessageW(&mut msg, std::ptr::null_mut(), 0, 0, PM_REMOVE) != 0 {
                TranslateMessage(&msg);
                DispatchMessageW(&msg);
            }
        }
    }

    pub fn close(window: HostWindow) {
        // SAFETY: our own window, destroyed once, after the editor inside it.
        unsafe { DestroyWindow(window.0) };
    }
}

#[cfg(not(windows))]
mod host_window {
    use anyhow::{bail, Result};
    use strata_host_tests::ClapInstance;

    pub struct HostWindow;

    pub fn open_editor(_: &mut ClapInstance) -> Result<HostWindow> {
        bail!("--editor opens a Win32 window; on Linux use strata-gui-host")
    }

    pub fn pump_messages() {}

    pub fn close(_: HostWindow) {}
}
