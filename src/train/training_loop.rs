//! The training loop (training/training_loop.py): phases per iteration with lazy
//! regularisation, Adam, G_ema, ADA, ticks with a log line and a `stats.jsonl` record, image
//! grids and snapshots; resumable without loss.
//!
//! Every random draw of iteration `k` comes from generators seeded by `(seed, k)`, the data order
//! from the official InfiniteSampler replayed to the current image count, and everything else
//! lives in the snapshot (networks, Adam state, augment p, ADA accumulators, PL mean, counters).
//! So a run resumed from any snapshot computes exactly what the uninterrupted run computed.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::module::Module;
use burn::tensor::{Device, Tensor};
use image::ImageEncoder;
use serde::{Deserialize, Serialize};

use crate::data::dataset::{DatasetOptions, ImageFolderDataset};
use crate::data::sampler::InfiniteSampler;
use crate::train::adam::{ema_beta, nan_to_num, update_ema, Adam, AdamSlot, Grads};
use crate::train::augment::{AugmentParams, AugmentPipe, SeededRng};
use crate::train::loss::{self, ImageMap, NumpyRng, PhaseOut};
use crate::train::networks::{Net, Networks};
use crate::train::options::{Derived, TrainOptions};
pub use crate::train::run_folder::{run_dirs, run_owner, snapshots, RUN_LOCK, STOP_REQUEST};
use crate::train::run_folder::{continues_run, lock_run, new_run_dir};
use crate::train::stats::Collector;
use crate::train::TrainError;
use crate::weights::safetensors::{read_raw, write_snapshot, StoredConfig};
use crate::weights::HostTensor;

impl ImageMap for AugmentParams {
    fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        AugmentParams::apply(self, x)
    }
    fn apply_linear(&self, x: Tensor<4>) -> Tensor<4> {
        AugmentParams::apply_linear(self, x)
    }
}

/// No augmentation (only for channel counts the pipe refuses, which never train).
struct Identity;

impl ImageMap for Identity {
    fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        x
    }
    fn apply_linear(&self, x: Tensor<4>) -> Tensor<4> {
        x
    }
}

/// The counters and scalars of a run (the snapshot's `training` metadata, with the options).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Progress {
    pub cur_nimg: u64,
    pub batch_idx: u64,
    pub cur_tick: u64,
    pub tick_start_nimg: u64,
    pub augment_p: f64,
    pub pl_mean: f32,
    /// Σ sign(real logits) and their count since the last ADA adjustment.
    pub ada_sum: f64,
    pub ada_count: u64,
    /// Training seconds before this process (for the log's `time`).
    pub elapsed_s: f64,
}

/// What a snapshot stores besides the tensors.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SnapshotTraining {
    pub options: TrainOptions,
    pub derived: Derived,
    pub progress: Progress,
    pub opt_g: AdamHyper,
    pub opt_d: AdamHyper,
}

/// Adam's hyperparameters and per-parameter step counts (its moments are tensors).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AdamHyper {
    pub lr: f64,
    pub betas: (f64, f64),
    pub eps: f64,
    pub steps: BTreeMap<String, u64>,
}

/// A phase of the iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PhaseKind {
    Gmain,
    Greg,
    Dmain,
    Dreg,
}

struct Phase {
    /// The official phase name (`Gboth`, `Gmain`, `Greg`, `Dmain`, `Dreg`).
    name: &'static str,
    kind: PhaseKind,
    interval: u64,
}

/// One run: its folder, data, networks, optimisers and counters.
pub struct Trainer {
    pub opts: TrainOptions,
    pub derived: Derived,
    pub run_dir: PathBuf,
    pub nets: Networks,
    pub progress: Progress,
    opt_g: Adam,
    opt_d: Adam,
    g_params: Vec<String>,
    d_frozen: Vec<String>,
    dataset: ImageFolderDataset,
    sampler: InfiniteSampler,
    device: Device,
    grid: Grid,
    stats: Collector,
    log: Option<std::fs::File>,
    /// The run folder's [`RUN_LOCK`], held while this trainer lives.
    _lock: Option<std::fs::File>,
    tick_start: Instant,
    start: Instant,
    /// Called with each log line (the CLI prints it above its progress bar).
    pub on_line: Box<dyn FnMut(&str)>,
    /// Run every phase in every iteration, whatever its interval (`bench --train` times them).
    pub force_all_phases: bool,
    /// The phases the last iteration ran: (name, interval, seconds).
    pub last_phases: Vec<(&'static str, u64, f64)>,
}

/// The fixed latents and real images of the snapshot grids.
struct Grid {
    gw: usize,
    gh: usize,
    z: Vec<f32>,
    c: Vec<f32>,
}

fn io_err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Io { path: path.into(), detail: e.to_string() }
}

impl Trainer {
    /// Sets up a run: a new run folder (fresh or fine-tuning from `--resume FILE`), or the newest
    /// run of `--outdir` continued from its last snapshot (`--resume latest`).
    pub fn new(opts: TrainOptions) -> Result<Self, TrainError> {
        opts.validate().map_err(TrainError::Options)?;
        let continuing = continues_run(opts.resume.as_deref());
        let (run_dir, resumed) = if let Some(which) = continuing {
            let dir = match which {
                "latest" => run_dirs(&opts.outdir)
                    .into_iter()
                    .rev()
                    .find(|(_, d)| !snapshots(d).is_empty())
                    .map(|(_, d)| d)
                    .ok_or_else(|| TrainError::Options(format!("--resume latest: no run with a snapshot in {}", opts.outdir.display())))?,
                folder => PathBuf::from(folder),
            };
            let snap = snapshots(&dir).pop().ok_or_else(|| TrainError::Options(format!("{}: no snapshot", dir.display())))?;
            let (tensors, meta) = read_raw(&snap)?;
            let meta = meta.ok_or_else(|| TrainError::Mismatch { path: snap.clone(), detail: "not a StyleScope training snapshot".into() })?;
            let training: SnapshotTraining = serde_json::from_value(meta.training).map_err(|e| TrainError::Mismatch { path: snap.clone(), detail: format!("unreadable training state: {e}") })?;
            (dir, Some((snap, tensors, meta.networks, training)))
        } else {
            (PathBuf::new(), None)
        };

        // Options: a continued run keeps its own, except how long and where it runs.
        let opts = match &resumed {
            Some((_, _, _, t)) => TrainOptions { kimg: opts.kimg, tick: opts.tick, snap: opts.snap, backend: opts.backend, workers: opts.workers, data: opts.data.clone(), outdir: opts.outdir.clone(), resume: t.options.resume.clone(), ..t.options.clone() },
            None => opts,
        };
        let dataset = ImageFolderDataset::open(&opts.data, &DatasetOptions { resolution: None, use_labels: opts.cond, max_size: None, xflip: opts.mirror, random_seed: 0 })?;
        let resolution = dataset.resolution() as usize;
        if !resolution.is_power_of_two() || resolution < 4 {
            return Err(TrainError::Options(format!("{}: images are {resolution}x{resolution}; training needs a power-of-two resolution (use `stylescope dataset --resolution`)", opts.data.display())));
        }
        // Every image decodes before anything trains (a corrupt file would otherwise stop the
        // run when the sampler first reaches it).
        for raw in 0..dataset.raw_len() {
            dataset.raw_image(raw).map_err(|e| TrainError::Options(format!("{e} (remove it, or build the dataset with `stylescope dataset`, which skips unreadable files)")))?;
        }
        if opts.aug != crate::train::options::AugMode::Noaug {
            let ch = dataset.num_channels() as usize;
            AugmentPipe::bgc().draw_channels(1, ch, 8, 8, &mut SeededRng::new(0)).map_err(|e| TrainError::Options(format!("{}: {e} (train it with --aug noaug)", opts.data.display())))?;
        }
        if opts.cond && !dataset.has_labels() {
            return Err(TrainError::Options(format!("--cond=True requires labels specified in {}/dataset.json", opts.data.display())));
        }
        // A base network to fine-tune: a file, or a URL fetched into the cache (train.py takes both).
        let fine_tune = match opts.resume.as_deref().filter(|r| continues_run(Some(r)).is_none()) {
            Some(r) => Some(crate::source::local_path(r, &mut crate::download::terminal_progress())?),
            None => None,
        };
        let derived = opts.derive(resolution, dataset.num_channels() as usize, dataset.label_dim(), fine_tune.is_some());
        let mut nets = Networks::fresh(opts.cfg, &derived.g_kwargs, &derived.d_kwargs, opts.seed)?;
        let g_params = nets.param_names()?.0;
        let d_frozen = nets.frozen_d_params(opts.freezed);
        let mut opt_g = Adam::lazy(derived.g_lr, (0.0, 0.99), 1e-8, derived.g_reg_interval);
        let mut opt_d = Adam::lazy(derived.d_lr, (0.0, 0.99), 1e-8, Some(derived.d_reg_interval));
        let mut progress = Progress { cur_nimg: 0, batch_idx: 0, cur_tick: 0, tick_start_nimg: 0, augment_p: derived.augment_p, pl_mean: 0.0, ada_sum: 0.0, ada_count: 0, elapsed_s: 0.0 };

        let run_dir = match resumed {
            Some((snap, tensors, _networks, training)) => {
                for (prefix, net) in [("G", &mut nets.g), ("D", &mut nets.d), ("G_ema", &mut nets.g_ema)] {
                    take_prefixed(&tensors, prefix, &mut net.state, &snap)?;
                }
                opt_g = restore_adam(&tensors, "opt_G", &training.opt_g);
                opt_d = restore_adam(&tensors, "opt_D", &training.opt_d);
                progress = training.progress;
                run_dir
            }
            None => {
                if let Some(path) = &fine_tune {
                    nets = Networks::resume_from(nets, path)?;
                }
                if opts.dry_run {
                    PathBuf::new()
                } else {
                    new_run_dir(&opts)?
                }
            }
        };
        let device = opts.backend.device().autodiff();
        let mut sampler = InfiniteSampler::new(dataset.len(), opts.seed);
        // Replay the data order up to where the run stands.
        for _ in 0..progress.cur_nimg {
            sampler.next();
        }
        let grid = Grid::new(&dataset, &nets, opts.seed);
        let (log, lock) = if opts.dry_run {
            (None, None)
        } else {
            let lock = lock_run(&run_dir)?;
            let path = run_dir.join("log.txt");
            (Some(std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|e| io_err(&path, e))?), Some(lock))
        };
        Ok(Self {
            opts,
            derived,
            run_dir,
            nets,
            progress,
            opt_g,
            opt_d,
            g_params,
            d_frozen,
            dataset,
            sampler,
            device,
            grid,
            stats: Collector::default(),
            log,
            _lock: lock,
            tick_start: Instant::now(),
            start: Instant::now(),
            on_line: Box::new(|line| eprintln!("{line}")),
            force_all_phases: false,
            last_phases: Vec::new(),
        })
    }

    /// Whether someone asked this run to stop (a [`STOP_REQUEST`] file in its folder); the
    /// request is consumed.
    pub fn take_stop_request(&self) -> bool {
        std::fs::remove_file(self.run_dir.join(STOP_REQUEST)).is_ok()
    }

    /// Writes a line to the log file and the console.
    pub fn line(&mut self, text: &str) {
        if let Some(f) = &mut self.log {
            let _ = writeln!(f, "{text}");
        }
        (self.on_line)(text);
    }

    /// The phases of this configuration (gain = interval).
    fn phases(&self) -> Vec<Phase> {
        let mut out = Vec::new();
        match self.derived.g_reg_interval {
            Some(i) if self.derived.loss.pl_weight > 0.0 => {
                out.push(Phase { name: "Gmain", kind: PhaseKind::Gmain, interval: 1 });
                out.push(Phase { name: "Greg", kind: PhaseKind::Greg, interval: i as u64 });
            }
            Some(_) => out.push(Phase { name: "Gmain", kind: PhaseKind::Gmain, interval: 1 }),
            None => out.push(Phase { name: "Gboth", kind: PhaseKind::Gmain, interval: 1 }),
        }
        out.push(Phase { name: "Dmain", kind: PhaseKind::Dmain, interval: 1 });
        if self.derived.loss.r1_gamma > 0.0 {
            out.push(Phase { name: "Dreg", kind: PhaseKind::Dreg, interval: self.derived.d_reg_interval as u64 });
        }
        out
    }

    /// Whether the run has reached `--kimg`.
    pub fn done(&self) -> bool {
        self.progress.cur_nimg as f64 >= self.opts.kimg * 1000.0
    }

    /// Starts (or continues) the run: the reals and initial fakes grids and tick 0 for a new run.
    pub fn start(&mut self) -> Result<(), TrainError> {
        self.tick_start = Instant::now();
        self.start = Instant::now();
        if self.progress.cur_nimg == 0 && self.progress.cur_tick == 0 {
            self.write_reals_grid()?;
            self.write_fakes_grid("fakes_init.png")?;
            self.tick(false)?;
        }
        Ok(())
    }

    /// One iteration, then a tick when one is due (`--tick` kimg, or the end). With `stop` set,
    /// no iteration runs: the tick and snapshot of where the run stands are written instead.
    pub fn step(&mut self, stop: bool) -> Result<(), TrainError> {
        if stop {
            return self.tick(true);
        }
        self.iteration()?;
        let done = self.done();
        if done || self.progress.cur_nimg as f64 >= self.progress.tick_start_nimg as f64 + self.opts.tick * 1000.0 {
            self.tick(done)?;
        }
        Ok(())
    }

    /// Runs to `--kimg`.
    pub fn run(&mut self) -> Result<(), TrainError> {
        self.start()?;
        while !self.done() {
            self.step(false)?;
        }
        Ok(())
    }

    /// The latest tick's mean losses, for a progress line.
    pub fn last_losses(&self) -> String {
        let m = |k: &str| self.stats.mean(k).map_or("-".to_string(), |v| format!("{v:.3}"));
        format!("G {}  D {}  R1 {}  p {:.3}", m("Loss/G/loss"), m("Loss/D/loss"), m("Loss/r1_penalty"), self.progress.augment_p)
    }

    /// One iteration: every phase due at this batch index, the EMA update, ADA.
    pub fn iteration(&mut self) -> Result<(), TrainError> {
        let batch = self.opts.batch;
        let batch_gpu = self.derived.batch_gpu;
        let rounds = batch / batch_gpu;
        let seed = self.opts.seed as u64 * 1_000_003 + self.progress.batch_idx;
        let mut rng = NumpyRng(crate::rng::RandomState::new((seed ^ (seed >> 32)) as u32));
        let mut aug_rng = SeededRng::new((seed.wrapping_mul(2_654_435_761) >> 7) as u32);
        let (res, ch) = (self.dataset.resolution() as usize, self.dataset.num_channels() as usize);
        let c_dim = self.dataset.label_dim();

        // Reals: the next `batch` items of the sampler, uint8 → [-1, 1].
        let mut reals = Vec::with_capacity(batch * ch * res * res);
        let mut real_c = Vec::with_capacity(batch * c_dim);
        for _ in 0..batch {
            let i = self.sampler.next().unwrap_or(0);
            let (img, label) = self.dataset.item(i)?;
            reals.extend(img.iter().map(|&v| v as f32 / 127.5 - 1.0));
            real_c.extend(label);
        }
        let phases = self.phases();
        self.last_phases.clear();
        let z_dim = self.nets.g_cfg.z_dim();
        let all_z = rng.randn_f32(phases.len() * batch * z_dim);
        let mut all_c = Vec::with_capacity(phases.len() * batch * c_dim);
        for _ in 0..phases.len() * batch {
            let i = rng.0.randint(self.dataset.len().max(1) as u32) as usize;
            all_c.extend(self.dataset.label(i)?);
        }

        let sigma = self.derived.loss.blur_sigma(self.progress.cur_nimg);
        let pipe = (self.opts.aug != crate::train::options::AugMode::Noaug).then(|| AugmentPipe { p: self.progress.augment_p, ..AugmentPipe::bgc() });
        for (pi, phase) in phases.iter().enumerate() {
            if self.progress.batch_idx % phase.interval != 0 && !self.force_all_phases {
                continue;
            }
            let started = Instant::now();
            let gain = phase.interval as f64;
            let mut grads: Grads = BTreeMap::new();
            let is_g = matches!(phase.kind, PhaseKind::Gmain | PhaseKind::Greg);
            // D's phases need no gradient through G (on the CPU it runs on the inference kernels).
            let g_device = if is_g { self.device.clone() } else { loss::g_device_without_grad(&self.device) };
            let mut g = self.nets.generator(&self.nets.g, &g_device)?;
            if !is_g && g_device.is_autodiff() {
                g = g.no_grad();
            }
            let d = self.nets.discriminator(&self.device)?;
            let d = if is_g { d.no_grad() } else { d };
            for r in 0..rounds {
                let zs = &all_z[(pi * batch + r * batch_gpu) * z_dim..(pi * batch + (r + 1) * batch_gpu) * z_dim];
                let cs = &all_c[(pi * batch + r * batch_gpu) * c_dim..(pi * batch + (r + 1) * batch_gpu) * c_dim];
                let z = loss::tensor(zs, [batch_gpu, z_dim], &self.device);
                let c = loss::labels(cs, batch_gpu, &self.device);
                let x = loss::tensor(&reals[r * batch_gpu * ch * res * res..(r + 1) * batch_gpu * ch * res * res], [batch_gpu, ch, res, res], &self.device);
                let xc = loss::labels(&real_c[r * batch_gpu * c_dim..(r + 1) * batch_gpu * c_dim], batch_gpu, &self.device);
                let mut draw = |[n, c, h, w]: [usize; 4]| -> Box<dyn ImageMap> {
                    let pipe = pipe.clone().unwrap_or_default();
                    // Channel counts the pipe cannot take are refused in `Trainer::new`.
                    match pipe.draw_channels(n, c, h, w, &mut aug_rng) {
                        Ok(params) => Box::new(params),
                        Err(_) => Box::new(Identity),
                    }
                };
                let mut augment: loss::Augmenter<'_> = if pipe.is_some() { Some(&mut draw) } else { None };
                let out: PhaseOut = match phase.kind {
                    PhaseKind::Gmain => loss::gmain(&mut g, &d, z, c, &self.derived.loss, sigma, gain, &mut augment, &mut rng)?,
                    PhaseKind::Greg => {
                        let (out, pl_mean) = loss::greg(&mut g, z, c, &self.derived.loss, self.progress.pl_mean, gain, &mut rng, false)?;
                        self.progress.pl_mean = pl_mean;
                        out
                    }
                    PhaseKind::Dmain => loss::dmain(&mut g, &d, z, c, x, xc, &self.derived.loss, sigma, gain, &mut augment, &mut rng)?,
                    PhaseKind::Dreg => loss::dreg(&d, x, xc, self.derived.loss.r1_gamma, sigma, gain, &mut augment)?,
                };
                self.record_stats(phase.kind, &out);
                for (k, v) in out.grads {
                    match grads.get_mut(&k) {
                        Some(acc) => acc.iter_mut().zip(&v).for_each(|(a, b)| *a += b),
                        None => {
                            grads.insert(k, v);
                        }
                    }
                }
            }
            grads.values_mut().for_each(|g| nan_to_num(g));
            if is_g {
                self.opt_g.step(&mut self.nets.g.state, &grads);
            } else {
                for name in &self.d_frozen {
                    grads.remove(name);
                }
                self.opt_d.step(&mut self.nets.d.state, &grads);
            }
            if phase.kind == PhaseKind::Dmain {
                // The G buffers its update_emas moved.
                store_buffers(&g, &mut self.nets.g)?;
            }
            // Seconds per run of the phase (stats.jsonl: where the time goes).
            let seconds = started.elapsed().as_secs_f64();
            self.stats.add(&format!("Timing/{}", phase.name), &[seconds as f32]);
            self.last_phases.push((phase.name, phase.interval, seconds));
        }

        // G_ema, then the counters, then ADA.
        let beta = ema_beta(batch, self.derived.ema_kimg, self.derived.ema_rampup, self.progress.cur_nimg);
        update_ema(&mut self.nets.g_ema.state, &self.nets.g.state, &self.g_params, beta);
        self.progress.cur_nimg += batch as u64;
        self.progress.batch_idx += 1;
        if let Some(target) = self.derived.ada_target {
            if self.progress.batch_idx % 4 == 0 && self.progress.ada_count > 0 {
                let mean = self.progress.ada_sum / self.progress.ada_count as f64;
                self.progress.augment_p = crate::train::augment::ada_adjust(self.progress.augment_p, mean, target, batch, 4, self.derived.ada_kimg);
                self.progress.ada_sum = 0.0;
                self.progress.ada_count = 0;
            }
        }
        Ok(())
    }

    fn record_stats(&mut self, kind: PhaseKind, out: &PhaseOut) {
        let v = |k: &str| out.values.get(k).cloned().unwrap_or_default();
        match kind {
            PhaseKind::Gmain => {
                self.stats.add("Loss/scores/fake", &v("gen_logits"));
                self.stats.add("Loss/signs/fake", &v("gen_logits").iter().map(|x| x.signum()).collect::<Vec<_>>());
                self.stats.add("Loss/G/loss", &v("loss_Gmain"));
            }
            PhaseKind::Greg => {
                self.stats.add("Loss/pl_penalty", &v("pl_penalty"));
                self.stats.add("Loss/G/reg", &v("loss_Gpl"));
            }
            PhaseKind::Dmain => {
                self.stats.add("Loss/scores/fake", &v("gen_logits"));
                self.stats.add("Loss/signs/fake", &v("gen_logits").iter().map(|x| x.signum()).collect::<Vec<_>>());
                let loss: Vec<f32> = v("loss_Dgen").iter().zip(v("loss_Dreal")).map(|(a, b)| a + b).collect();
                self.stats.add("Loss/D/loss", &loss);
            }
            PhaseKind::Dreg => {
                self.stats.add("Loss/r1_penalty", &v("r1_penalty"));
                self.stats.add("Loss/D/reg", &v("loss_Dr1"));
            }
        }
        if matches!(kind, PhaseKind::Dmain | PhaseKind::Dreg) {
            let real = v("real_logits");
            let signs: Vec<f32> = real.iter().map(|x| if *x > 0.0 { 1.0 } else if *x < 0.0 { -1.0 } else { 0.0 }).collect();
            self.progress.ada_sum += signs.iter().map(|&s| s as f64).sum::<f64>();
            self.progress.ada_count += signs.len() as u64;
            self.stats.add("Loss/scores/real", &real);
            self.stats.add("Loss/signs/real", &signs);
        }
    }

    /// A tick: the log line, a `stats.jsonl` record and, every `--snap` ticks (and at the end),
    /// the fakes grid and a snapshot.
    fn tick(&mut self, last: bool) -> Result<(), TrainError> {
        let now = Instant::now();
        let tick_s = now.duration_since(self.tick_start).as_secs_f64();
        let total_s = self.progress.elapsed_s + now.duration_since(self.start).as_secs_f64();
        let kimg = self.progress.cur_nimg as f64 / 1000.0;
        let tick_kimg = (self.progress.cur_nimg - self.progress.tick_start_nimg) as f64 / 1000.0;
        let sec_per_kimg = if tick_kimg > 0.0 { tick_s / tick_kimg } else { 0.0 };
        let mem = crate::backend::peak_rss_bytes().map_or(0.0, |b| b as f64 / (1u64 << 30) as f64);
        let line = format!(
            "tick {:<5} kimg {:<8.1} time {:<12} sec/tick {:<7.1} sec/kimg {:<7.2} cpumem {:<6.2} augment {:.3}",
            self.progress.cur_tick,
            kimg,
            format_time(total_s),
            tick_s,
            sec_per_kimg,
            mem,
            self.progress.augment_p
        );
        self.line(&line);
        self.stats.add("Progress/tick", &[self.progress.cur_tick as f32]);
        self.stats.add("Progress/kimg", &[kimg as f32]);
        self.stats.add("Progress/augment", &[self.progress.augment_p as f32]);
        self.stats.add("Timing/total_sec", &[total_s as f32]);
        self.stats.add("Timing/sec_per_tick", &[tick_s as f32]);
        self.stats.add("Timing/sec_per_kimg", &[sec_per_kimg as f32]);
        self.stats.add("Resources/peak_cpu_mem_gb", &[mem as f32]);
        if !self.opts.dry_run {
            let record = self.stats.take_json();
            let path = self.run_dir.join("stats.jsonl");
            let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path).map_err(|e| io_err(&path, e))?;
            writeln!(f, "{record}").map_err(|e| io_err(&path, e))?;
        }
        let snap_due = last || self.progress.cur_tick % self.opts.snap == 0;
        self.progress.cur_tick += 1;
        self.progress.tick_start_nimg = self.progress.cur_nimg;
        self.progress.elapsed_s = total_s;
        self.start = now;
        if snap_due && !self.opts.dry_run {
            let k = self.progress.cur_nimg / 1000;
            self.write_fakes_grid(&format!("fakes{k:06}.png"))?;
            self.write_snapshot()?;
        }
        self.tick_start = Instant::now();
        Ok(())
    }

    /// The snapshot of the whole training state, written atomically.
    pub fn write_snapshot(&self) -> Result<PathBuf, TrainError> {
        let path = self.run_dir.join(format!("network-snapshot-{:06}.safetensors", self.progress.cur_nimg / 1000));
        let mut tensors: BTreeMap<String, HostTensor> = BTreeMap::new();
        let mut networks = BTreeMap::new();
        for (key, net) in [("G", &self.nets.g), ("D", &self.nets.d), ("G_ema", &self.nets.g_ema)] {
            for (name, t) in &net.state {
                tensors.insert(format!("{key}/{name}"), t.clone());
            }
            let class_name = if key == "D" { "Discriminator" } else { "Generator" };
            networks.insert(key.to_string(), StoredConfig { format: "stylescope-network-v1".into(), network: key.into(), class_name: class_name.into(), init_kwargs: net.init_kwargs.clone(), description: None });
        }
        let mut hyper = |prefix: &str, opt: &Adam| {
            let mut steps = BTreeMap::new();
            for (name, slot) in &opt.state {
                tensors.insert(format!("{prefix}/exp_avg/{name}"), HostTensor { shape: vec![slot.exp_avg.len()], data: slot.exp_avg.clone() });
                tensors.insert(format!("{prefix}/exp_avg_sq/{name}"), HostTensor { shape: vec![slot.exp_avg_sq.len()], data: slot.exp_avg_sq.clone() });
                steps.insert(name.clone(), slot.step);
            }
            AdamHyper { lr: opt.lr, betas: opt.betas, eps: opt.eps, steps }
        };
        let opt_g = hyper("opt_G", &self.opt_g);
        let opt_d = hyper("opt_D", &self.opt_d);
        let training = SnapshotTraining { options: self.opts.clone(), derived: self.derived.clone(), progress: self.progress.clone(), opt_g, opt_d };
        let json = serde_json::to_value(&training).map_err(|e| io_err(&path, e))?;
        write_snapshot(&path, &tensors, networks, json)?;
        Ok(path)
    }

    fn write_reals_grid(&self) -> Result<(), TrainError> {
        let (res, ch) = (self.dataset.resolution() as usize, self.dataset.num_channels() as usize);
        let n = self.grid.gw * self.grid.gh;
        let mut order: Vec<usize> = (0..self.dataset.len()).collect();
        crate::data::sampler::shuffle(&mut crate::rng::RandomState::new(self.opts.seed), &mut order);
        let mut images = Vec::with_capacity(n * ch * res * res);
        for i in 0..n {
            let img = self.dataset.image(order[i % order.len().max(1)])?;
            images.extend(img.iter().map(|&v| v as f32 / 127.5 - 1.0));
        }
        save_grid(&self.run_dir.join("reals.png"), &images, self.grid.gw, self.grid.gh, ch, res)
    }

    /// G_ema's images for the fixed grid latents (noise const), as the official loop saves them.
    fn write_fakes_grid(&self, name: &str) -> Result<(), TrainError> {
        let device = self.opts.backend.device();
        let g = self.nets.generator(&self.nets.g_ema, &device)?;
        let (z_dim, c_dim) = (self.nets.g_cfg.z_dim(), self.dataset.label_dim());
        let n = self.grid.gw * self.grid.gh;
        // Images are independent of their batch; larger chunks only go faster.
        let chunk = 64;
        let mut images = Vec::new();
        for start in (0..n).step_by(chunk) {
            let len = chunk.min(n - start);
            let z = loss::tensor(&self.grid.z[start * z_dim..(start + len) * z_dim], [len, z_dim], &device);
            let c = loss::labels(&self.grid.c[start * c_dim..(start + len) * c_dim], len, &device);
            let img = g.synthesis(g.mapping(z, c, 1.0, None, None), &crate::model::SynthesisOptions::default(), None);
            images.extend(crate::backend::read_f32(img)?);
        }
        let res = self.nets.g_cfg.img_resolution();
        save_grid(&self.run_dir.join(name), &images, self.grid.gw, self.grid.gh, self.nets.g_cfg.img_channels(), res)
    }
}

impl Grid {
    fn new(dataset: &ImageFolderDataset, nets: &Networks, seed: u32) -> Self {
        let res = dataset.resolution() as usize;
        let gw = (7680 / res).clamp(7, 32);
        let gh = (4320 / res).clamp(4, 32);
        let mut rng = crate::rng::RandomState::new(seed);
        let z = rng.randn(gw * gh * nets.g_cfg.z_dim()).into_iter().map(|v| v as f32).collect();
        let mut c = Vec::new();
        if dataset.label_dim() > 0 {
            for i in 0..gw * gh {
                c.extend(dataset.label(i % dataset.len().max(1)).unwrap_or_else(|_| vec![0.0; dataset.label_dim()]));
            }
        }
        Self { gw, gh, z, c }
    }
}

/// `save_image_grid`: [-1, 1] → uint8 with rint and clip, `gw × gh` tiles, PNG.
fn save_grid(path: &Path, images: &[f32], gw: usize, gh: usize, ch: usize, res: usize) -> Result<(), TrainError> {
    let (w, h) = (gw * res, gh * res);
    let mut out = vec![0u8; w * h * ch];
    for gy in 0..gh {
        for gx in 0..gw {
            let i = gy * gw + gx;
            let img = &images[i * ch * res * res..(i + 1) * ch * res * res];
            for y in 0..res {
                for x in 0..res {
                    for c in 0..ch {
                        let v = (img[(c * res + y) * res + x] as f64 + 1.0) * 127.5;
                        out[((gy * res + y) * w + gx * res + x) * ch + c] = v.round_ties_even().clamp(0.0, 255.0) as u8;
                    }
                }
            }
        }
    }
    let color = if ch == 1 { image::ExtendedColorType::L8 } else { image::ExtendedColorType::Rgb8 };
    let mut bytes = Vec::new();
    image::codecs::png::PngEncoder::new(&mut bytes).write_image(&out, w as u32, h as u32, color).map_err(|e| io_err(path, e))?;
    crate::weights::safetensors::write_atomic(path, &bytes)?;
    Ok(())
}


/// Fills `state` from `tensors[prefix/name]`.
fn take_prefixed(tensors: &BTreeMap<String, HostTensor>, prefix: &str, state: &mut crate::train::adam::StateDict, path: &Path) -> Result<(), TrainError> {
    for (name, t) in state.iter_mut() {
        let s = tensors.get(&format!("{prefix}/{name}")).ok_or_else(|| TrainError::Mismatch { path: path.into(), detail: format!("snapshot lacks '{prefix}/{name}'") })?;
        if s.data.len() != t.data.len() {
            return Err(TrainError::Mismatch { path: path.into(), detail: format!("'{prefix}/{name}' has {} values, the run needs {}", s.data.len(), t.data.len()) });
        }
        t.data.clone_from(&s.data);
    }
    Ok(())
}

fn restore_adam(tensors: &BTreeMap<String, HostTensor>, prefix: &str, hyper: &AdamHyper) -> Adam {
    let mut adam = Adam::new(hyper.lr, hyper.betas, hyper.eps);
    for (name, &step) in &hyper.steps {
        let m = tensors.get(&format!("{prefix}/exp_avg/{name}")).map(|t| t.data.clone()).unwrap_or_default();
        let v = tensors.get(&format!("{prefix}/exp_avg_sq/{name}")).map(|t| t.data.clone()).unwrap_or_default();
        adam.state.insert(name.clone(), AdamSlot { exp_avg: m, exp_avg_sq: v, step });
    }
    adam
}

/// Copies G's buffers (`mapping.w_avg`, StyleGAN3's `magnitude_ema`) from the module into the
/// host state after a phase that updated them.
fn store_buffers(g: &crate::model::Generator, net: &mut Net) -> Result<(), TrainError> {
    if let Some(w) = g.w_avg() {
        if let Some(t) = net.state.get_mut("mapping.w_avg") {
            t.data = crate::backend::read_f32(w)?;
        }
    }
    if let crate::model::Synthesis::StyleGan3(s) = &g.synthesis {
        for l in &s.layers {
            if let Some(t) = net.state.get_mut(&format!("synthesis.{}.magnitude_ema", l.spec.name)) {
                t.data = crate::backend::read_f32(l.magnitude_ema.clone())?;
            }
        }
    }
    Ok(())
}

/// `dnnlib.util.format_time`.
pub fn format_time(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s < 60 {
        format!("{s}s")
    } else if s < 3600 {
        format!("{}m {:02}s", s / 60, s % 60)
    } else if s < 86400 {
        format!("{}h {:02}m {:02}s", s / 3600, (s / 60) % 60, s % 60)
    } else {
        format!("{}d {:02}h {:02}m", s / 86400, (s / 3600) % 24, (s / 60) % 60)
    }
}
