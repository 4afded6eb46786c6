//! The benchmark baseline: a plugin built with the same framework, features and profile as
//! Strata, whose `process()` does nothing. Measuring Strata against it isolates what Strata's own
//! capture costs from what the framework's wrapper costs.

use std::num::NonZeroU32;
use std::sync::Arc;

use nice_plug::prelude::*;

#[derive(Default)]
pub struct StrataNull {
    params: Arc<NullParams>,
}

#[derive(Params, Default)]
struct NullParams {}

impl Plugin for StrataNull {
    const NAME: &'static str = "Strata Null";
    const VENDOR: &'static str = "Strata";
    const URL: &'static str = "";
    const EMAIL: &'static str = "";
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const AUDIO_IO_LAYOUTS: &'static [AudioIOLayout] = &[AudioIOLayout {
        main_input_channels: NonZeroU32::new(2),
        main_output_channels: NonZeroU32::new(2),
        ..AudioIOLayout::const_default()
    }];
    type Editor = ();
    type SysExMessage = ();
    type BackgroundTask = ();

    fn params(&self) -> Arc<dyn Params> {
        self.params.clone()
    }

    fn process(
        &mut self,
        _buffer: &mut Buffer,
        _aux: &mut AuxiliaryBuffers,
        _context: &mut impl ProcessContext<Self>,
    ) -> ProcessStatus {
        ProcessStatus::KeepAlive
    }
}

impl ClapPlugin for StrataNull {
    const CLAP_ID: &'static str = "org.strata-audio.strata-null";
    const CLAP_DESCRIPTION: Option<&'static str> = Some("Benchmark baseline that does nothing");
    const CLAP_MANUAL_URL: Option<&'static str> = None;
    const CLAP_SUPPORT_URL: Option<&'static str> = None;
    const CLAP_FEATURES: &'static [ClapFeature] = &[ClapFeature::AudioEffect, ClapFeature::Utility];
}

nice_export_clap!(StrataNull);
