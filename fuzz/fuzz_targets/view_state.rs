//! The plugin's saved state, as the host hands it back from a project: nice-plug gives each
//! persisted field its JSON string, and Strata's view settings must come out of any string as
//! settings it can open a window with (or the defaults), never a panic.
#![no_main]

use std::collections::BTreeMap;

use libfuzzer_sys::fuzz_target;
use nice_plug::prelude::Params;
use strata::params::{StrataParams, MIN_EDITOR_SIZE, SPAN_RANGE_S};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let params = StrataParams::default();
    let mut fields = BTreeMap::new();
    fields.insert("view".to_owned(), text.to_owned());
    params.deserialize_fields(&fields);
    let view = params.view();
    let (w, h) = view.clamped_editor_size();
    assert!(w >= MIN_EDITOR_SIZE.0 && h >= MIN_EDITOR_SIZE.1 && w <= 8192 && h <= 8192);
    let span = view.clamped_span_s();
    assert!(span.is_finite() && (SPAN_RANGE_S.0..=SPAN_RANGE_S.1).contains(&span), "span {span}");
    // What was loaded saves again.
    let saved = params.serialize_fields();
    assert!(saved.contains_key("view"));
});
