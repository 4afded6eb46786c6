//! The host's side of an X11 display: a connection and a top-level window to embed a plugin's
//! editor in, as a Linux DAW does. Used by `strata-gui-host` and the editor test.

use anyhow::{bail, Context, Result};
use x11_dl::xlib;

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
