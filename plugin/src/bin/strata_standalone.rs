//! Strata without a DAW: `strata-standalone --help` lists the audio backends (JACK, ALSA,
//! a dummy backend for testing) and options.

fn main() {
    if !nice_plug::prelude::nice_export_standalone::<strata::Strata>() {
        std::process::exit(1);
    }
}
