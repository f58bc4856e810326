//! Videos of a generator: gen_video.py's seed interpolation (`interp`: the not-a-knot cubic
//! spline of w through keyframes laid out over a grid, wrapped so the video loops) rendered frame
//! by frame, and the files they go to (`sink`: numbered PNGs, GIF). Frames are quantised exactly
//! like gen_images.py, so a frame equals `stylescope gen` of the same w.

pub mod interp;
pub mod sink;
pub mod timeline;
pub mod worker;

use burn::tensor::{Tensor, TensorData};

use crate::model::{Generator, NoiseMode, SynthesisOptions};
use interp::CubicSpline;

/// How many times gen_video.py repeats the keyframes on each side (so the spline loops).
pub const WRAPS: usize = 2;

/// A gen_video.py interpolation video: one spline of w per grid cell.
pub struct InterpVideo {
    pub grid_w: usize,
    pub grid_h: usize,
    pub num_keyframes: usize,
    pub w_frames: usize,
    splines: Vec<CubicSpline>,
    num_ws: usize,
    w_dim: usize,
}

/// Why a video cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum VideoError {
    #[error("{0}")]
    Options(String),
    #[error(transparent)]
    Device(#[from] crate::error::DeviceError),
}

impl InterpVideo {
    /// gen_video.py's layout: seeds repeated to fill `num_keyframes · grid` slots (default: as
    /// many keyframes as the seeds fill), shuffled with `shuffle_seed`, mapped with `psi`; cell
    /// (y, x) takes keyframes `(y·grid_w + x)·K … +K`.
    pub fn new(g: &Generator, seeds: &[u32], shuffle_seed: Option<u32>, grid: (usize, usize), num_keyframes: Option<usize>, w_frames: usize, psi: f64) -> Result<Self, VideoError> {
        let (grid_w, grid_h) = grid;
        let cells = grid_w * grid_h;
        if cells == 0 || seeds.is_empty() || w_frames == 0 {
            return Err(VideoError::Options("the grid, the seeds and --w-frames must not be empty".into()));
        }
        let k = match num_keyframes {
            Some(k) => k,
            None if seeds.len() % cells != 0 => {
                return Err(VideoError::Options(format!("{} seeds do not fill a {grid_w}x{grid_h} grid evenly: give a multiple of {cells}, or --num-keyframes", seeds.len())));
            }
            None => seeds.len() / cells,
        };
        if k == 0 {
            return Err(VideoError::Options("--num-keyframes must be at least 1".into()));
        }
        let mut all: Vec<u32> = (0..k * cells).map(|i| seeds[i % seeds.len()]).collect();
        if let Some(s) = shuffle_seed {
            crate::data::sampler::shuffle(&mut crate::rng::RandomState::new(s), &mut all);
        }
        let cfg = &g.config;
        let (num_ws, w_dim) = (cfg.num_ws(), cfg.w_dim());
        let device = g.device();
        let mut ws = Vec::with_capacity(all.len());
        for &seed in &all {
            let z: Vec<f32> = crate::rng::z_from_seed(seed, cfg.z_dim()).into_iter().map(|v| v as f32).collect();
            let z = Tensor::<2>::from_data(TensorData::new(z, [1, cfg.z_dim()]), &device);
            // c=None, as gen_video.py (a conditional network gets class 0).
            let c = crate::model::one_hot(0, cfg.c_dim(), 1, &device);
            ws.push(crate::backend::read_f32(g.mapping(z, c, psi, None, None))?);
        }
        let dim = num_ws * w_dim;
        let mut splines = Vec::with_capacity(cells);
        for cell in 0..cells {
            // x = −K·wraps … K·(wraps+1) − 1, y = the cell's K keyframes tiled 2·wraps + 1 times.
            let n = k * (2 * WRAPS + 1);
            let mut values = Vec::with_capacity(n * dim);
            for j in 0..n {
                values.extend(ws[cell * k + j % k].iter().map(|&v| v as f64));
            }
            let spline = CubicSpline::new(-((k * WRAPS) as f64), &values, dim).ok_or_else(|| VideoError::Options("too few keyframes to interpolate".into()))?;
            splines.push(spline);
        }
        Ok(Self { grid_w, grid_h, num_keyframes: k, w_frames, splines, num_ws, w_dim })
    }

    pub fn num_frames(&self) -> usize {
        self.num_keyframes * self.w_frames
    }

    /// Frame `idx` as HWC uint8 (`(height, width, channels)`): each cell's image at w(idx /
    /// w_frames), const noise, laid out like `layout_grid`.
    pub fn frame(&self, g: &Generator, idx: usize) -> Result<(Vec<u8>, usize, usize, usize), VideoError> {
        let device = g.device();
        let cfg = &g.config;
        let (res, ch) = (cfg.img_resolution(), cfg.img_channels());
        let (w, h) = (self.grid_w * res, self.grid_h * res);
        let mut out = vec![0u8; w * h * ch];
        let opts = SynthesisOptions { noise_mode: NoiseMode::Const, ..Default::default() };
        let t = idx as f64 / self.w_frames as f64;
        for (cell, spline) in self.splines.iter().enumerate() {
            let wv: Vec<f32> = spline.eval(t).into_iter().map(|v| v as f32).collect();
            let ws = Tensor::<3>::from_data(TensorData::new(wv, [1, self.num_ws, self.w_dim]), &device);
            let img = crate::backend::read_f32(g.synthesis(ws, &opts, None))?;
            let tile = super::quantize_chw(&img, ch, res, res);
            let (gy, gx) = (cell / self.grid_w, cell % self.grid_w);
            for y in 0..res {
                let dst = ((gy * res + y) * w + gx * res) * ch;
                out[dst..dst + res * ch].copy_from_slice(&tile[y * res * ch..(y + 1) * res * ch]);
            }
        }
        Ok((out, h, w, ch))
    }
}
