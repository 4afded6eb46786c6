//! A minimal VST3 host, enough to load a built `.vst3` bundle, run its audio processor and read
//! back what it wrote: the module entry points, the factory, `IComponent` and `IAudioProcessor`,
//! 32-bit float processing with one stereo (or mono) bus in and out.
//!
//! It builds for Linux and for Windows (where it loads the Windows bundle under Wine), over the
//! `vst3` crate's bindings, the ones nice-plug itself is built on. No parameters, events,
//! controller or editor: Strata has none of the first three, and its editor is tested through CLAP.

use std::ffi::{c_void, CStr};
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context, Result};
use vst3::Steinberg::Vst::{
    AudioBusBuffers, AudioBusBuffers__type0, IAudioProcessor, IAudioProcessorTrait, IComponent, IComponentTrait,
    MediaTypes_, BusDirections_, ProcessData, ProcessModes_, ProcessSetup, SpeakerArr, SymbolicSampleSizes_,
};
use vst3::Steinberg::{kResultOk, IPluginBaseTrait, IPluginFactory, IPluginFactoryTrait, PClassInfo};
use vst3::{ComPtr, Interface};

/// The folder inside `Contents/` that holds this platform's binary, and the binary's extension.
#[cfg(windows)]
const ARCH_FOLDER_AND_EXTENSION: (&str, &str) = ("x86_64-win", "vst3");
#[cfg(not(windows))]
const ARCH_FOLDER_AND_EXTENSION: (&str, &str) = ("x86_64-linux", "so");

/// The VST3 class category of audio processors (`kVstAudioEffectClass`).
const AUDIO_EFFECT_CLASS: &str = "Audio Module Class";

/// The binary inside a bundle for the platform this host runs on
/// (`Strata.vst3/Contents/x86_64-win/Strata.vst3`, `.../x86_64-linux/Strata.so`).
pub fn bundle_binary(bundle: &Path) -> Result<PathBuf> {
    let (arch, extension) = ARCH_FOLDER_AND_EXTENSION;
    let stem = bundle.file_stem().context("the bundle path has no name")?;
    let binary = bundle.join("Contents").join(arch).join(stem).with_extension(extension);
    anyhow::ensure!(binary.is_file(), "{} has no {arch} binary ({} is missing)", bundle.display(), binary.display());
    Ok(binary)
}

/// A loaded VST3 module: the library and its factory. Calls the module's exit function when
/// dropped (after every instance is gone: the instances borrow the module).
pub struct Vst3Module {
    factory: ComPtr<IPluginFactory>,
    library: libloading::Library,
}

impl Vst3Module {
    /// Loads the bundle's binary and calls its entry function (`ModuleEntry` on Linux, `InitDll`
    /// on Windows), then `GetPluginFactory`.
    pub fn load(bundle: &Path) -> Result<Self> {
        let binary = bundle_binary(bundle)?;
        // SAFETY: loading a plugin runs its initialisers; that is what this host is for.
        let library = unsafe { libloading::Library::new(&binary) }.with_context(|| format!("loading {}", binary.display()))?;
        // SAFETY: the symbols have the signatures the VST3 SDK gives them (public.sdk's
        // main entry headers); the library outlives every call.
        unsafe {
            #[cfg(windows)]
            if let Ok(init) = library.get::<unsafe extern "system" fn() -> bool>(b"InitDll") {
                anyhow::ensure!(init(), "InitDll failed");
            }
            #[cfg(not(windows))]
            {
                let entry = library.get::<unsafe extern "system" fn(*mut c_void) -> bool>(b"ModuleEntry")?;
                anyhow::ensure!(entry(std::ptr::null_mut()), "ModuleEntry failed");
            }
            let get_factory = library
                .get::<unsafe extern "system" fn() -> *mut IPluginFactory>(b"GetPluginFactory")
                .context("the module exports no GetPluginFactory")?;
            let factory = ComPtr::from_raw(get_factory()).ok_or_else(|| anyhow!("GetPluginFactory returned null"))?;
            Ok(Self { factory, library })
        }
    }

    /// The module's audio processor classes.
    pub fn audio_classes(&self) -> Vec<PClassInfo> {
        let mut classes = Vec::new();
        // SAFETY: `info` is plain data the factory fills in for an index it counted.
        unsafe {
            for index in 0..self.factory.countClasses() {
                let mut info: PClassInfo = std::mem::zeroed();
                if self.factory.getClassInfo(index, &mut info) != kResultOk {
                    continue;
                }
                if CStr::from_ptr(info.category.as_ptr()).to_string_lossy() == AUDIO_EFFECT_CLASS {
                    classes.push(info);
                }
            }
        }
        classes
    }

    /// Creates and initialises the module's first audio processor.
    pub fn instantiate(&self) -> Result<Vst3Instance<'_>> {
        let info = self.audio_classes().into_iter().next().context("the module has no audio processor class")?;
        // SAFETY: createInstance hands back an owned reference to an IComponent, or null.
        unsafe {
            let mut object: *mut c_void = std::ptr::null_mut();
            let iid = IComponent::IID;
            let result = self.factory.createInstance(info.cid.as_ptr(), iid.as_ptr().cast(), &mut object);
            anyhow::ensure!(result == kResultOk, "createInstance failed ({result})");
            let component = ComPtr::from_raw(object as *mut IComponent).context("createInstance returned null")?;
            anyhow::ensure!(component.initialize(std::ptr::null_mut()) == kResultOk, "IComponent::initialize failed");
            let processor = component.cast::<IAudioProcessor>().context("the component is not an IAudioProcessor")?;
            Ok(Vst3Instance { component, processor, _module: std::marker::PhantomData })
        }
    }
}

impl Drop for Vst3Module {
    fn drop(&mut self) {
        // SAFETY: as in `load`; every instance has been dropped (they borrow the module).
        unsafe {
            #[cfg(windows)]
            if let Ok(exit) = self.library.get::<unsafe extern "system" fn() -> bool>(b"ExitDll") {
                exit();
            }
            #[cfg(not(windows))]
            if let Ok(exit) = self.library.get::<unsafe extern "system" fn() -> bool>(b"ModuleExit") {
                exit();
            }
        }
    }
}

/// One initialised plugin instance.
pub struct Vst3Instance<'module> {
    component: ComPtr<IComponent>,
    processor: ComPtr<IAudioProcessor>,
    _module: std::marker::PhantomData<&'module Vst3Module>,
}

impl<'module> Vst3Instance<'module> {
    /// Sets `channels` (1 or 2) in and out, prepares for `max_block` frames at `sample_rate`,
    /// and activates the instance. Returns buffers to process with.
    pub fn start(&mut self, channels: usize, sample_rate: f64, max_block: usize) -> Result<Vst3Running<'_, 'module>> {
        let arrangement = match channels {
            1 => SpeakerArr::kMono,
            2 => SpeakerArr::kStereo,
            n => bail!("{n} channels: this host runs mono or stereo"),
        };
        // SAFETY: plain calls on a live instance with values and pointers valid for the call.
        unsafe {
            let (mut input, mut output) = (arrangement, arrangement);
            let result = self.processor.setBusArrangements(&mut input, 1, &mut output, 1);
            anyhow::ensure!(result == kResultOk, "setBusArrangements({channels} channels) failed ({result})");
            for direction in [BusDirections_::kInput, BusDirections_::kOutput] {
                self.component.activateBus(MediaTypes_::kAudio as i32, direction as i32, 0, 1);
            }
            let mut setup = ProcessSetup {
                processMode: ProcessModes_::kRealtime as i32,
                symbolicSampleSize: SymbolicSampleSizes_::kSample32 as i32,
                maxSamplesPerBlock: i32::try_from(max_block)?,
                sampleRate: sample_rate,
            };
            anyhow::ensure!(self.processor.setupProcessing(&mut setup) == kResultOk, "setupProcessing failed");
            anyhow::ensure!(self.component.setActive(1) == kResultOk, "setActive(true) failed");
            // Some plugins refuse setProcessing (it is optional in the SDK); nice-plug accepts it.
            self.processor.setProcessing(1);
        }
        Ok(Vst3Running {
            instance: self,
            input: vec![vec![0.0; max_block]; channels],
            output: vec![vec![0.0; max_block]; channels],
        })
    }
}

impl Drop for Vst3Instance<'_> {
    fn drop(&mut self) {
        // SAFETY: the instance is inactive (Vst3Running deactivates it) and is terminated once.
        unsafe {
            self.component.terminate();
        }
    }
}

/// An active instance with its buffers: fill `input`, call [`Vst3Running::process`], read `output`.
pub struct Vst3Running<'a, 'module> {
    instance: &'a mut Vst3Instance<'module>,
    pub input: Vec<Vec<f32>>,
    pub output: Vec<Vec<f32>>,
}

impl Vst3Running<'_, '_> {
    /// Processes the first `frames` frames of `input` into `output`.
    pub fn process(&mut self, frames: usize) -> Result<()> {
        anyhow::ensure!(frames <= self.input[0].len(), "{frames} frames is more than the prepared block");
        let mut inputs: Vec<*mut f32> = self.input.iter_mut().map(|c| c.as_mut_ptr()).collect();
        let mut outputs: Vec<*mut f32> = self.output.iter_mut().map(|c| c.as_mut_ptr()).collect();
        let mut input_bus = AudioBusBuffers {
            numChannels: inputs.len() as i32,
            silenceFlags: 0,
            __field0: AudioBusBuffers__type0 { channelBuffers32: inputs.as_mut_ptr() },
        };
        let mut output_bus = AudioBusBuffers {
            numChannels: outputs.len() as i32,
            silenceFlags: 0,
            __field0: AudioBusBuffers__type0 { channelBuffers32: outputs.as_mut_ptr() },
        };
        let mut data = ProcessData {
            processMode: ProcessModes_::kRealtime as i32,
            symbolicSampleSize: SymbolicSampleSizes_::kSample32 as i32,
            numSamples: i32::try_from(frames)?,
            numInputs: 1,
            numOutputs: 1,
            inputs: &mut input_bus,
            outputs: &mut output_bus,
            inputParameterChanges: std::ptr::null_mut(),
            outputParameterChanges: std::ptr::null_mut(),
            inputEvents: std::ptr::null_mut(),
            outputEvents: std::ptr::null_mut(),
            processContext: std::ptr::null_mut(),
        };
        // SAFETY: every pointer in `data` lives until the call returns.
        let result = unsafe { self.instance.processor.process(&mut data) };
        anyhow::ensure!(result == kResultOk, "process({frames} frames) failed ({result})");
        Ok(())
    }
}

impl Drop for Vst3Running<'_, '_> {
    fn drop(&mut self) {
        // SAFETY: plain calls on a live, active instance.
        unsafe {
            self.instance.processor.setProcessing(0);
            self.instance.component.setActive(0);
        }
    }
}
