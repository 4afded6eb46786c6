//! The host's side of an X11 display: a connection and a top-level window to embed a plugin's
//! editor in, as a Linux DAW does; an Xvfb server to run it on, and XTest clicks. Used by
//! `strata-gui-host`, the editor test and the long session.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use x11_dl::{xlib, xtest};

/// Where the editor draws its buttons, in window pixels. The take row is the editor's first row
/// and its widgets have fixed widths (egui's bundled fonts, scale 1 on Xvfb), so these do not
/// depend on anything the plugin shows below.
pub const RECORD_BUTTON: (i32, i32) = (70, 18);
pub const EXPORT_BUTTON: (i32, i32) = (451, 18);

/// A connection to the default display (`DISPLAY`), closed on drop.
pub struct HostDisplay {
    pub xlib: xlib::Xlib,
    pub display: *mut xlib::Display,
}

impl HostDisplay {
    pub fn open() -> Result<HostDisplay> {
        let xlib = xlib::Xlib::open().context("loading libX11")?;
        // SAFETY: a plain Xlib call; the display is closed once, on drop.
        let display = unsafe { (xlib.XOpenDisplay)(std::ptr::null()) };
        if display.is_null() {
            bail!("cannot open the X display (is DISPLAY set?)");
        }
        Ok(HostDisplay { xlib, display })
    }

    /// A mapped `width` x `height` top-level window at the screen's origin (without a window
    /// manager nothing moves it, so window and screen coordinates are the same). It lives until
    /// the display is closed.
    pub fn host_window(&self, width: u32, height: u32) -> u64 {
        // SAFETY: the display is open.
        unsafe {
            let screen = (self.xlib.XDefaultScreen)(self.display);
            let root = (self.xlib.XRootWindow)(self.display, screen);
            let w = (self.xlib.XCreateSimpleWindow)(self.display, root, 0, 0, width, height, 0, 0, 0x202020);
            (self.xlib.XMapWindow)(self.display, w);
            (self.xlib.XFlush)(self.display);
            w
        }
    }
}

impl Drop for HostDisplay {
    fn drop(&mut self) {
        // SAFETY: opened in `open`, closed once.
        unsafe { (self.xlib.XCloseDisplay)(self.display) };
    }
}

/// An Xvfb server on a display of its own, stopped on drop.
pub struct Xvfb {
    child: Child,
    pub display: String,
}

impl Xvfb {
    pub fn start() -> Result<Xvfb> {
        for n in 60..100 {
            if display_in_use(n) {
                continue;
            }
            // A killed server's socket stays too; waiting for it below must see the new one.
            let socket = PathBuf::from(format!("/tmp/.X11-unix/X{n}"));
            let _ = std::fs::remove_file(&socket);
            let mut child = Command::new("Xvfb")
                .args([format!(":{n}"), "-screen".into(), "0".into(), "1100x700x24".into(), "-nolisten".into(), "tcp".into()])
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .context("starting Xvfb (Debian package xvfb; .ci/deps installs it)")?;
            let start = Instant::now();
            while !socket.exists() && start.elapsed() < Duration::from_secs(10) {
                std::thread::sleep(Duration::from_millis(50));
            }
            // Still running: another test starting a server at the same moment may have taken
            // this display first, and then ours has exited.
            if socket.exists() && matches!(child.try_wait(), Ok(None)) {
                return Ok(Xvfb { child, display: format!(":{n}") });
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        bail!("no free X display between :60 and :99");
    }
}

/// Whether display `:n` belongs to a running X server. A lock file whose server is gone (killed,
/// as `Xvfb`'s drop does, which leaves the file behind) does not count: Xvfb replaces such a
/// lock itself.
fn display_in_use(n: u32) -> bool {
    let Ok(lock) = std::fs::read_to_string(format!("/tmp/.X{n}-lock")) else { return false };
    match lock.trim().parse::<u32>() {
        Ok(pid) => Path::new(&format!("/proc/{pid}")).exists(),
        // A lock being written, or not Xvfb's: leave that display alone.
        Err(_) => true,
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The host's display, and the pointer: clicks by XTest, and a look at what is on screen.
pub struct Display {
    pub host: HostDisplay,
    xtest: xtest::Xf86vmode,
}

impl Display {
    pub fn open() -> Result<Display> {
        let host = HostDisplay::open()?;
        let xtest = xtest::Xf86vmode::open().context("loading libXtst (Debian package libxtst6)")?;
        Ok(Display { host, xtest })
    }

    /// Whether the editor has drawn its take row: the record dot's red is on screen.
    pub fn record_dot_drawn(&self) -> bool {
        let (x, d) = (&self.host.xlib, self.host.display);
        // SAFETY: the display is open; the image is read within its bounds and destroyed once.
        unsafe {
            let root = (x.XRootWindow)(d, (x.XDefaultScreen)(d));
            let (x0, y0, w, h) = (2, 4, 24, 28);
            let image = (x.XGetImage)(d, root, x0, y0, w, h, !0, xlib::ZPixmap);
            if image.is_null() {
                return false;
            }
            let mut red = false;
            for y in 0..h as i32 {
                for xx in 0..w as i32 {
                    let p = (x.XGetPixel)(image, xx, y);
                    let (r, g, b) = ((p >> 16) & 0xFF, (p >> 8) & 0xFF, p & 0xFF);
                    red |= r > 0xB0 && g < 0x70 && b < 0x70;
                }
            }
            (x.XDestroyImage)(image);
            red
        }
    }

    /// Writes the whole screen to `path` as a PNG; returns how many distinct colours it holds
    /// (a window that drew nothing is one or two).
    pub fn screenshot(&self, path: &Path) -> Result<usize> {
        let (x, d) = (&self.host.xlib, self.host.display);
        // SAFETY: the display is open; the image is read within its bounds and destroyed once.
        let (width, height, rgb) = unsafe {
            let screen = (x.XDefaultScreen)(d);
            let root = (x.XRootWindow)(d, screen);
            let (w, h) = ((x.XDisplayWidth)(d, screen) as u32, (x.XDisplayHeight)(d, screen) as u32);
            let image = (x.XGetImage)(d, root, 0, 0, w, h, !0, xlib::ZPixmap);
            anyhow::ensure!(!image.is_null(), "XGetImage of the screen failed");
            let mut rgb = Vec::with_capacity((w * h * 3) as usize);
            for y in 0..h as i32 {
                for xx in 0..w as i32 {
                    let p = (x.XGetPixel)(image, xx, y);
                    rgb.extend([(p >> 16) as u8, (p >> 8) as u8, p as u8]);
                }
            }
            (x.XDestroyImage)(image);
            (w, h, rgb)
        };
        let colours: std::collections::HashSet<&[u8]> = rgb.chunks(3).collect();
        let mut encoder = png::Encoder::new(std::io::BufWriter::new(std::fs::File::create(path)?), width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.write_header()?.write_image_data(&rgb)?;
        Ok(colours.len())
    }

    /// A left click at window (= screen: no window manager moves it) coordinates.
    pub fn click(&self, (px, py): (i32, i32)) {
        let (x, d) = (&self.host.xlib, self.host.display);
        // SAFETY: the display is open.
        unsafe {
            (self.xtest.XTestFakeMotionEvent)(d, -1, px, py, 0);
            (x.XFlush)(d);
            std::thread::sleep(Duration::from_millis(100));
            (self.xtest.XTestFakeButtonEvent)(d, 1, 1, 0);
            (x.XFlush)(d);
            std::thread::sleep(Duration::from_millis(80));
            (self.xtest.XTestFakeButtonEvent)(d, 1, 0, 0);
            (x.XFlush)(d);
        }
    }
}
