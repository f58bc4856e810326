//! The training form of the window as a `stylescope train` command line: the knobs people use
//! (with train.py's defaults and the official gamma heuristic), the base to start from, and the
//! command that continues a stopped run. The window shows the same line it runs.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::backend::BackendChoice;
use crate::train::options::{AugMode, Cfg, TrainOptions};

/// What a new run starts from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Base {
    /// Fresh networks of the form's `--cfg`.
    Scratch,
    /// Fine-tuning from a network file (`--resume FILE`); its architecture sets `--cfg`,
    /// `--cbase`, `--cmax` and `--map-depth`.
    File(PathBuf),
}

/// The training form (persisted with the window's settings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TrainForm {
    pub data: PathBuf,
    pub outdir: PathBuf,
    pub base: Base,
    pub cfg: Cfg,
    pub kimg: f64,
    pub batch: usize,
    /// `None`: the official heuristic for the data's resolution and the batch.
    pub gamma: Option<f64>,
    pub mirror: bool,
    pub aug: AugMode,
    pub target: f64,
    pub p: f64,
    pub freezed: usize,
    pub tick: f64,
    pub snap: u64,
    pub backend: BackendChoice,
    pub cbase: usize,
    pub cmax: usize,
    pub map_depth: Option<usize>,
    pub glr: Option<f64>,
    pub dlr: f64,
    pub seed: u32,
    pub batch_gpu: Option<usize>,
    pub cond: bool,
}

impl Default for TrainForm {
    fn default() -> Self {
        Self {
            data: PathBuf::new(),
            outdir: PathBuf::from("training-runs"),
            base: Base::Scratch,
            cfg: Cfg::StyleGan2,
            kimg: 1000.0,
            batch: 32,
            gamma: None,
            mirror: true,
            aug: AugMode::Ada,
            target: 0.6,
            p: 0.2,
            freezed: 0,
            tick: 4.0,
            snap: 5,
            backend: BackendChoice::Cpu,
            // Small networks: what a CPU or a small GPU trains in hours, not weeks.
            cbase: 8192,
            cmax: 256,
            map_depth: None,
            glr: None,
            dlr: 0.002,
            seed: 0,
            batch_gpu: None,
            cond: false,
        }
    }
}

/// The gamma the official README recommends as a starting point: 0.0002 · resolution² / batch.
pub fn gamma_heuristic(resolution: u32, batch: usize) -> f64 {
    let g = 0.0002 * (resolution as f64).powi(2) / batch.max(1) as f64;
    // Three significant digits, as people write it.
    let scale = 10f64.powi(2 - g.log10().floor() as i32);
    (g * scale).round() / scale
}

impl TrainForm {
    /// The gamma the command will use, given the data's resolution (when known).
    pub fn effective_gamma(&self, resolution: Option<u32>) -> f64 {
        self.gamma.unwrap_or_else(|| resolution.map_or(1.0, |r| gamma_heuristic(r, self.batch)))
    }

    /// `stylescope train`'s arguments (without the program name) for a new run.
    pub fn args(&self, resolution: Option<u32>) -> Vec<String> {
        let mut a = vec![
            "train".to_string(),
            format!("--outdir={}", self.outdir.display()),
            format!("--cfg={}", self.cfg.name()),
            format!("--data={}", self.data.display()),
            "--gpus=1".into(),
            format!("--batch={}", self.batch),
            format!("--gamma={}", self.effective_gamma(resolution)),
        ];
        if let Base::File(p) = &self.base {
            a.push(format!("--resume={}", p.display()));
        }
        // Flags at their default are left out (when the defaults are known), as people write them.
        let d = TrainOptions::defaults();
        let mut opt = |name: &str, value: String, default: Option<String>| {
            if default.as_ref() != Some(&value) {
                a.push(format!("--{name}={value}"));
            }
        };
        let dv = |f: &dyn Fn(&TrainOptions) -> String| d.as_ref().map(f);
        opt("mirror", self.mirror.to_string(), dv(&|d| d.mirror.to_string()));
        opt("cond", self.cond.to_string(), dv(&|d| d.cond.to_string()));
        opt("aug", aug_name(self.aug).into(), dv(&|d| aug_name(d.aug).into()));
        if self.aug == AugMode::Ada {
            opt("target", self.target.to_string(), dv(&|d| d.target.to_string()));
        }
        if self.aug == AugMode::Fixed {
            opt("p", self.p.to_string(), dv(&|d| d.p.to_string()));
        }
        opt("freezed", self.freezed.to_string(), dv(&|d| d.freezed.to_string()));
        opt("cbase", self.cbase.to_string(), dv(&|d| d.cbase.to_string()));
        opt("cmax", self.cmax.to_string(), dv(&|d| d.cmax.to_string()));
        if let Some(m) = self.map_depth {
            opt("map-depth", m.to_string(), None);
        }
        if let Some(g) = self.glr {
            opt("glr", g.to_string(), None);
        }
        opt("dlr", self.dlr.to_string(), dv(&|d| d.dlr.to_string()));
        if let Some(b) = self.batch_gpu {
            opt("batch-gpu", b.to_string(), None);
        }
        opt("kimg", self.kimg.to_string(), dv(&|d| d.kimg.to_string()));
        opt("tick", self.tick.to_string(), dv(&|d| d.tick.to_string()));
        opt("snap", self.snap.to_string(), dv(&|d| d.snap.to_string()));
        opt("seed", self.seed.to_string(), dv(&|d| d.seed.to_string()));
        opt("backend", self.backend.name().into(), dv(&|d| d.backend.name().into()));
        // Metrics are not computed yet: say so rather than print a note every run.
        a.push("--metrics=none".into());
        a
    }

    /// Takes `--cfg`, `--cbase`, `--cmax` and `--map-depth` from a base network, so its
    /// tensors fit the run's architecture.
    pub fn adopt_base(&mut self, base: &crate::train::networks::BaseInfo) {
        self.cfg = base.cfg;
        self.cbase = base.cbase;
        self.cmax = base.cmax;
        let default_depth = if base.cfg == Cfg::StyleGan2 { 8 } else { 2 };
        self.map_depth = (base.map_depth != default_depth).then_some(base.map_depth);
    }
}

/// The arguments that continue the run in `run_dir` exactly (`--resume RUN-FOLDER`), with its
/// own options; `kimg` (when given) extends or shortens it.
pub fn resume_args(run_dir: &Path, options: &TrainOptions, kimg: Option<f64>, backend: Option<BackendChoice>) -> Vec<String> {
    let outdir = run_dir.parent().unwrap_or(Path::new("."));
    vec![
        "train".to_string(),
        format!("--outdir={}", outdir.display()),
        format!("--cfg={}", options.cfg.name()),
        format!("--data={}", options.data.display()),
        format!("--gpus={}", options.gpus),
        format!("--batch={}", options.batch),
        format!("--gamma={}", options.gamma),
        format!("--resume={}", run_dir.display()),
        format!("--kimg={}", kimg.unwrap_or(options.kimg)),
        format!("--tick={}", options.tick),
        format!("--snap={}", options.snap),
        format!("--backend={}", backend.unwrap_or(options.backend).name()),
        "--metrics=none".into(),
    ]
}

fn aug_name(a: AugMode) -> &'static str {
    match a {
        AugMode::Ada => "ada",
        AugMode::Noaug => "noaug",
        AugMode::Fixed => "fixed",
    }
}

/// A command line as a user would paste it (arguments with spaces quoted).
pub fn shell_line(program: &str, args: &[String]) -> String {
    let quote = |s: &str| if s.chars().any(|c| c.is_whitespace() || "'\"$`\\".contains(c)) { format!("'{}'", s.replace('\'', "'\\''")) } else { s.to_string() };
    std::iter::once(quote(program)).chain(args.iter().map(|a| quote(a))).collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        cmd: Cmd,
    }
    #[derive(clap::Subcommand)]
    enum Cmd {
        Train(TrainOptions),
    }

    fn parse(args: &[String]) -> TrainOptions {
        let Cmd::Train(o) = Cli::try_parse_from(std::iter::once("stylescope".to_string()).chain(args.iter().cloned())).unwrap().cmd;
        o
    }

    #[test]
    fn the_form_becomes_the_options_it_shows() {
        let mut form = TrainForm { data: "/d/my data.zip".into(), outdir: "/runs".into(), freezed: 3, aug: AugMode::Fixed, p: 0.3, ..Default::default() };
        let o = parse(&form.args(Some(64)));
        assert_eq!((o.cfg, o.batch, o.freezed, o.aug, o.p, o.mirror, o.cbase, o.cmax, o.snap), (Cfg::StyleGan2, 32, 3, AugMode::Fixed, 0.3, true, 8192, 256, 5));
        assert_eq!(o.gamma, 0.0256, "0.0002 * 64² / 32");
        assert_eq!(o.data, PathBuf::from("/d/my data.zip"));
        form.gamma = Some(8.2);
        form.base = Base::File("/m/net.pkl".into());
        let o = parse(&form.args(Some(64)));
        assert_eq!((o.gamma, o.resume.as_deref()), (8.2, Some("/m/net.pkl")));
        assert!(shell_line("stylescope", &form.args(None)).contains("'--data=/d/my data.zip'"));
    }

    #[test]
    fn gamma_heuristic_is_the_official_one() {
        assert_eq!(gamma_heuristic(1024, 32), 6.55);
        assert_eq!(gamma_heuristic(256, 64), 0.205);
        assert_eq!(gamma_heuristic(32, 32), 0.0064);
    }
}
