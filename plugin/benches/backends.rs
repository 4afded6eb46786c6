//! CUDA against the CPU on Strata's own models: `cargo bench -p strata --bench backends`.
//!
//! Every figure is measured in this one process, the CPU provider (one thread, as Strata runs
//! it: a batch of files uses one file per core) beside the CUDA provider, on the committed
//! models:
//!
//! * each scale's encoder at batch 1, 16, 128 and 512 windows (random windows, seeded), windows
//!   per second, and how far CUDA's vectors and tokens are from the CPU's;
//! * one tower step (the streaming LSTM cell), median and 90th percentile;
//! * the whole analysis of a 10-minute piece (`strata analyze`'s path), encoders on the CPU
//!   against encoders on CUDA, and whether the two results are the same.
//!
//! Without a usable CUDA provider it says why and measures the CPU alone. ONNX Runtime's CUDA
//! build is found as everywhere else (`STRATA_ORT_DYLIB`, then `target/ort/gpu`).

use std::path::Path;
use std::time::Instant;

use strata::export::job::{self, ExportProgress};
use strata::inference::{locate_models, runtime, Backend, CudaStatus, ModelSet, Runtime, TowerState};

mod piece;
use piece::write_piece;

const BATCHES: [usize; 4] = [1, 16, 128, 512];
/// Windows encoded per measurement, at least (so batch 1 is timed over many runs).
const WINDOWS_PER_MEASUREMENT: usize = 2048;
const TOWER_STEPS: usize = 2000;
const PIECE_MINUTES: u32 = 10;

fn main() {
    if std::env::args().any(|a| a == "--list") {
        println!("backends: bench");
        return;
    }
    let rt = runtime().expect("ONNX Runtime");
    println!("{}", rt.summary());
    println!("library: {}", rt.library().display());
    let dir = locate_models().expect("models");
    let cuda = match rt.cuda() {
        CudaStatus::Usable => true,
        other => {
            println!("CUDA not measured: {other:?}");
            false
        }
    };
    let mut cpu = ModelSet::load_on(&dir, rt, Backend::Cpu, Backend::Cpu).expect("models on the CPU");
    let mut gpu = cuda.then(|| ModelSet::load_on(&dir, rt, Backend::Cuda, Backend::Cuda).expect("models on CUDA"));
    encoders(&mut cpu, gpu.as_mut());
    towers(&mut cpu, gpu.as_mut());
    whole_analysis(rt, &dir, cuda);
}

/// Encoder throughput per scale and batch, and CUDA's distance from the CPU's results.
fn encoders(cpu: &mut ModelSet, mut gpu: Option<&mut ModelSet>) {
    println!("\n| scale | batch | CPU windows/s | CUDA windows/s | CUDA / CPU | max |Δvector| | tokens equal |");
    println!("|---|---|---|---|---|---|---|");
    let d = cpu.manifest.frame_dim;
    for scale in 0..cpu.manifest.scales.len() {
        let spec = cpu.manifest.scales[scale].clone();
        for batch in BATCHES {
            let windows = seeded_windows(batch * spec.window_frames * d, (scale * 1000 + batch) as u64);
            let runs = WINDOWS_PER_MEASUREMENT.div_ceil(batch).max(3);
            let (cpu_rate, cpu_vectors, cpu_tokens) = encode_rate(cpu, scale, &windows, batch, runs);
            let gpu_cells = match gpu.as_deref_mut() {
                Some(g) => {
                    let (rate, vectors, tokens) = encode_rate(g, scale, &windows, batch, runs);
                    let delta = cpu_vectors.iter().zip(&vectors).map(|(a, b)| (a - b).abs()).fold(0.0_f32, f32::max);
                    let same = cpu_tokens.iter().zip(&tokens).filter(|(a, b)| a == b).count();
                    format!("{rate:.0} | {:.2}× | {delta:.1e} | {same}/{}", rate / cpu_rate, tokens.len())
                }
                None => "– | – | – | –".to_owned(),
            };
            println!("| {} s | {batch} | {cpu_rate:.0} | {gpu_cells} |", spec.scale_s);
        }
    }
}

/// Windows per second over `runs` encodes of `windows` (after one warm-up), and the last result.
fn encode_rate(models: &mut ModelSet, scale: usize, windows: &[f32], batch: usize, runs: usize) -> (f64, Vec<f32>, Vec<u8>) {
    let (mut vectors, mut tokens) = (Vec::new(), Vec::new());
    models.encode(scale, windows, &mut vectors, &mut tokens).expect("encode");
    let start = Instant::now();
    for _ in 0..runs {
        vectors.clear();
        tokens.clear();
        models.encode(scale, windows, &mut vectors, &mut tokens).expect("encode");
    }
    ((batch * runs) as f64 / start.elapsed().as_secs_f64(), vectors, tokens)
}

/// One tower step's latency on each provider (level 1, the first with a level below it; every
/// level has the same shape).
fn towers(cpu: &mut ModelSet, gpu: Option<&mut ModelSet>) {
    println!("\n| tower step | p50 µs | p90 µs |");
    println!("|---|---|---|");
    let (p50, p90) = step_latency(cpu);
    println!("| CPU | {p50:.1} | {p90:.1} |");
    if let Some(g) = gpu {
        let (g50, g90) = step_latency(g);
        println!("| CUDA | {g50:.1} | {g90:.1} |");
        println!("CUDA / CPU step time: {:.1}×", g50 / p50);
    }
}

fn step_latency(models: &mut ModelSet) -> (f64, f64) {
    let (vd, bd, hd) = (models.manifest.vector_dim, models.manifest.tower.below_dim, models.manifest.tower.hidden);
    let feature = seeded_windows(vd, 1);
    let below = seeded_windows(bd, 2);
    let mut state = TowerState::zeros(hd);
    let mut prediction = vec![0.0; vd];
    let mut micros = Vec::with_capacity(TOWER_STEPS);
    for i in 0..TOWER_STEPS + 50 {
        let start = Instant::now();
        models.tower_step(1.min(models.manifest.scales.len() - 1), &feature, &below, &mut state, &mut prediction).expect("tower step");
        if i >= 50 {
            micros.push(start.elapsed().as_secs_f64() * 1e6);
        }
    }
    micros.sort_by(f64::total_cmp);
    (micros[micros.len() / 2], micros[micros.len() * 9 / 10])
}

/// `strata analyze` on a 10-minute piece with the encoders on each provider.
fn whole_analysis(rt: &Runtime, dir: &Path, cuda: bool) {
    let folder = std::env::temp_dir().join(format!("strata-backends-bench-{}", std::process::id()));
    std::fs::create_dir_all(&folder).expect("temp folder");
    let wav = folder.join("piece.wav");
    write_piece(&wav, PIECE_MINUTES, false);
    let seconds = f64::from(PIECE_MINUTES * 60);
    println!("\n| whole analysis, {PIECE_MINUTES} min | seconds | × real time |");
    println!("|---|---|---|");
    let run = |backend: Backend| {
        let models = ModelSet::load_on(dir, rt, backend, Backend::Cpu).expect("models");
        let start = Instant::now();
        let result = job::analyse_file(&wav, models, "bench", None, 4.0, &ExportProgress::new()).expect("analysis");
        let s = start.elapsed().as_secs_f64();
        println!("| encoders on {backend} | {s:.2} | {:.0}× |", seconds / s);
        (s, result.analysis)
    };
    let (cpu_s, cpu_result) = run(Backend::Cpu);
    if cuda {
        let (gpu_s, gpu_result) = run(Backend::Cuda);
        let periods = |a: &strata::layers::Analysis| a.patterns.iter().map(|p| format!("{:.3}", p.period_s)).collect::<Vec<_>>();
        let changes = |a: &strata::layers::Analysis| {
            a.patterns.iter().flat_map(|p| p.changes.iter().map(|c| format!("{:.3}", c.start_s))).collect::<Vec<_>>()
        };
        println!(
            "CUDA / CPU time: {:.2}×; same periods: {}; same changes: {}; same lanes: {}",
            gpu_s / cpu_s,
            periods(&cpu_result) == periods(&gpu_result),
            changes(&cpu_result) == changes(&gpu_result),
            cpu_result.layers == gpu_result.layers
        );
    }
    let _ = std::fs::remove_dir_all(folder);
}

/// Values in −1..1 from a small linear congruential generator (reproducible, no dependency).
fn seeded_windows(n: usize, seed: u64) -> Vec<f32> {
    let mut x = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((x >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}
