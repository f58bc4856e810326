//! The official ADA AugmentPipe ('bgc'), differentiable, with its random draws replayable.
//!
//! Why it exists: StyleGAN2-ADA / StyleGAN3 training shows the discriminator every image (real
//! and generated) through `training/augment.py`'s `AugmentPipe`, with an overall probability `p`
//! that ADA adjusts from the sign of the real logits ([`ada_adjust`]). This module rebuilds the
//! pipe's 'bgc' set — x-flip, 90° rotation, integer translation, isotropic scaling, arbitrary
//! rotation, anisotropic scaling, fractional translation (geometric), brightness, contrast,
//! luma flip, hue rotation, saturation (colour) — number for number.
//!
//! It works in two stages so the training loop can push a tangent through the very same map:
//! - [`AugmentPipe::draw`] makes the official random draws, in the official order and shapes,
//!   through an [`AugmentRng`] (recorded draws replay with [`Replay`], training uses
//!   [`SeededRng`]) and computes every matrix on the host in float32 as torch does;
//! - [`AugmentParams::apply`] runs the image through the resulting map with burn tensor ops on
//!   the image's device (differentiable w.r.t. the image); [`AugmentParams::apply_linear`] is the
//!   same map without the colour offset, i.e. its derivative (the map is affine in the image).
//!
//! As in the official code, a transform with multiplier 0 makes no draws, and the pad → upsample
//! → `grid_sample` → downsample path (resp. the colour product) runs as soon as any geometric
//! (resp. colour) multiplier is non-zero, even when `p = 0` makes every matrix the identity (the
//! official code tests `G_inv is I_3` by object identity). The image-space filter, additive
//! noise and cutout transforms (not part of 'bgc') are not implemented.

mod geom;
mod rng;

use std::f64::consts::PI;

use burn::tensor::{Tensor, TensorData};
use serde::{Deserialize, Serialize};

pub use rng::{AugmentRng, DrawKind, RecordedDraw, Replay, SeededRng};

/// A homogeneous 2-D matrix (row-major), float32 as in the official code.
pub type Mat3 = [[f32; 3]; 3];
/// A homogeneous 3-D (colour) matrix (row-major).
pub type Mat4 = [[f32; 4]; 4];

/// Why a pipe could not be drawn for, or applied to, a batch.
#[derive(Debug, thiserror::Error)]
pub enum AugmentError {
    #[error("the colour augmentations need RGB (3 channels) or L (1 channel) images, got {0} channels")]
    Channels(usize),
    #[error("augment parameters were drawn for images of shape {expected:?}, got {got:?}")]
    Shape { expected: [usize; 4], got: [usize; 4] },
}

/// The pipe's configuration: `AugmentPipe.__init__` of `training/augment.py` (multipliers and
/// ranges with the official defaults) plus the overall probability `p` (the official buffer).
///
/// `Default` is the official constructor (every multiplier 0) with `p = 0`, the value the
/// training loop starts ADA from (`augment_p`); the official buffer's initial 1 is always
/// overwritten by the loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AugmentPipe {
    /// Overall multiplier for the augmentation probability (float32 in the official buffer).
    pub p: f64,
    // Pixel blitting.
    pub xflip: f64,
    pub rotate90: f64,
    pub xint: f64,
    pub xint_max: f64,
    // General geometric transformations.
    pub scale: f64,
    pub rotate: f64,
    pub aniso: f64,
    pub xfrac: f64,
    pub scale_std: f64,
    pub rotate_max: f64,
    pub aniso_std: f64,
    pub xfrac_std: f64,
    // Colour transformations.
    pub brightness: f64,
    pub contrast: f64,
    pub lumaflip: f64,
    pub hue: f64,
    pub saturation: f64,
    pub brightness_std: f64,
    pub contrast_std: f64,
    pub hue_max: f64,
    pub saturation_std: f64,
}

impl Default for AugmentPipe {
    fn default() -> Self {
        Self {
            p: 0.0,
            xflip: 0.0,
            rotate90: 0.0,
            xint: 0.0,
            xint_max: 0.125,
            scale: 0.0,
            rotate: 0.0,
            aniso: 0.0,
            xfrac: 0.0,
            scale_std: 0.2,
            rotate_max: 1.0,
            aniso_std: 0.2,
            xfrac_std: 0.125,
            brightness: 0.0,
            contrast: 0.0,
            lumaflip: 0.0,
            hue: 0.0,
            saturation: 0.0,
            brightness_std: 0.2,
            contrast_std: 0.5,
            hue_max: 1.0,
            saturation_std: 1.0,
        }
    }
}

/// The 'bgc' transforms, in the order the pipe applies them.
pub const BGC: [&str; 12] = [
    "xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac", "brightness", "contrast", "lumaflip", "hue", "saturation",
];

/// `x` rounded to float32: what a Python float becomes when it meets a float32 tensor.
fn f(x: f64) -> f32 {
    x as f32
}

/// Float32 transcendental functions, correctly rounded (torch calls libm's float versions).
fn sin32(x: f32) -> f32 {
    (x as f64).sin() as f32
}
fn cos32(x: f32) -> f32 {
    (x as f64).cos() as f32
}
fn exp2_32(x: f32) -> f32 {
    (x as f64).exp2() as f32
}

/// `a @ b` in float32 with torch's small-matrix summation order (k ascending, from 0).
pub(crate) fn matmul<const N: usize>(a: &[[f32; N]; N], b: &[[f32; N]; N]) -> [[f32; N]; N] {
    let mut r = [[0f32; N]; N];
    for i in 0..N {
        for j in 0..N {
            let mut acc = 0f32;
            for k in 0..N {
                acc += a[i][k] * b[k][j];
            }
            r[i][j] = acc;
        }
    }
    r
}

fn scale2d(sx: f32, sy: f32) -> Mat3 {
    [[sx, 0.0, 0.0], [0.0, sy, 0.0], [0.0, 0.0, 1.0]]
}

fn translate2d(tx: f32, ty: f32) -> Mat3 {
    [[1.0, 0.0, tx], [0.0, 1.0, ty], [0.0, 0.0, 1.0]]
}

/// `rotate2d(theta)`: `[[cos θ, sin(−θ), 0], [sin θ, cos θ, 0], [0, 0, 1]]`.
fn rotate2d(theta: f32) -> Mat3 {
    [[cos32(theta), sin32(-theta), 0.0], [sin32(theta), cos32(theta), 0.0], [0.0, 0.0, 1.0]]
}

/// `scale2d_inv(sx, sy) = scale2d(1/sx, 1/sy)`.
fn scale2d_inv(sx: f32, sy: f32) -> Mat3 {
    scale2d(1.0 / sx, 1.0 / sy)
}

const I4: Mat4 = [[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, 0.0, 0.0, 1.0]];

/// Accumulates `acc ← acc @ m` per sample; `None` is the official `I_3` object.
fn post_multiply(acc: &mut Option<Vec<Mat3>>, ms: Vec<Mat3>) {
    *acc = Some(match acc.take() {
        None => ms,
        Some(g) => g.iter().zip(&ms).map(|(g, m)| matmul(g, m)).collect(),
    });
}

/// Accumulates `acc ← m @ acc` per sample; `None` is the official `I_4` object.
fn pre_multiply(acc: &mut Option<Vec<Mat4>>, ms: Vec<Mat4>) {
    *acc = Some(match acc.take() {
        None => ms,
        Some(c) => c.iter().zip(&ms).map(|(c, m)| matmul(m, c)).collect(),
    });
}

/// `torch.where(u < threshold, value, identity)` per element.
fn gate(values: Vec<f32>, enable: &[f32], threshold: f32, identity: f32) -> Vec<f32> {
    values.iter().zip(enable).map(|(&v, &u)| if u < threshold { v } else { identity }).collect()
}

impl AugmentPipe {
    /// The 'bgc' pipe of `train.py --aug=ada` (every bgc multiplier 1, official ranges), `p = 0`.
    pub fn bgc() -> Self {
        Self {
            xflip: 1.0,
            rotate90: 1.0,
            xint: 1.0,
            scale: 1.0,
            rotate: 1.0,
            aniso: 1.0,
            xfrac: 1.0,
            brightness: 1.0,
            contrast: 1.0,
            lumaflip: 1.0,
            hue: 1.0,
            saturation: 1.0,
            ..Self::default()
        }
    }

    /// The probability multiplier of a 'bgc' transform by name ([`BGC`]), for configuration.
    pub fn multiplier_mut(&mut self, name: &str) -> Option<&mut f64> {
        Some(match name {
            "xflip" => &mut self.xflip,
            "rotate90" => &mut self.rotate90,
            "xint" => &mut self.xint,
            "scale" => &mut self.scale,
            "rotate" => &mut self.rotate,
            "aniso" => &mut self.aniso,
            "xfrac" => &mut self.xfrac,
            "brightness" => &mut self.brightness,
            "contrast" => &mut self.contrast,
            "lumaflip" => &mut self.lumaflip,
            "hue" => &mut self.hue,
            "saturation" => &mut self.saturation,
            _ => return None,
        })
    }

    /// Whether the colour product runs for images with `channels` channels.
    fn has_color(&self, channels: usize) -> bool {
        self.brightness > 0.0 || self.contrast > 0.0 || self.lumaflip > 0.0 || (channels > 1 && (self.hue > 0.0 || self.saturation > 0.0))
    }

    /// Draws the parameters for a batch of RGB images of `height × width` (see
    /// [`Self::draw_channels`]).
    pub fn draw<R: AugmentRng + ?Sized>(&self, batch: usize, height: usize, width: usize, rng: &mut R) -> AugmentParams {
        self.draw_unchecked(batch, 3, height, width, rng)
    }

    /// Draws the parameters for a batch of `[batch, channels, height, width]` images: every
    /// random draw of `AugmentPipe.forward` in its order and shape, and the matrices built from
    /// them. Hue and saturation make no draws for 1-channel images (as officially); colour
    /// transforms need 1 or 3 channels.
    pub fn draw_channels<R: AugmentRng + ?Sized>(
        &self,
        batch: usize,
        channels: usize,
        height: usize,
        width: usize,
        rng: &mut R,
    ) -> Result<AugmentParams, AugmentError> {
        if self.has_color(channels) && channels != 1 && channels != 3 {
            return Err(AugmentError::Channels(channels));
        }
        Ok(self.draw_unchecked(batch, channels, height, width, rng))
    }

    fn draw_unchecked<R: AugmentRng + ?Sized>(&self, batch: usize, channels: usize, height: usize, width: usize, rng: &mut R) -> AugmentParams {
        let b = batch;
        let p = f(self.p);
        let threshold = |multiplier: f64| f(multiplier) * p;
        let (w, h) = (width as f32, height as f32);

        // Geometric parameters: G_inv @ pixel_out = pixel_in.
        let mut g: Option<Vec<Mat3>> = None;
        if self.xflip > 0.0 {
            let v = rng.rand(&[b]);
            let u = rng.rand(&[b]);
            let i = gate(v.iter().map(|v| (v * 2.0).floor()).collect(), &u, threshold(self.xflip), 0.0);
            post_multiply(&mut g, i.iter().map(|i| scale2d_inv(1.0 - 2.0 * i, 1.0)).collect());
        }
        if self.rotate90 > 0.0 {
            let v = rng.rand(&[b]);
            let u = rng.rand(&[b]);
            let i = gate(v.iter().map(|v| (v * 4.0).floor()).collect(), &u, threshold(self.rotate90), 0.0);
            // rotate2d_inv(-π/2·i) = rotate2d(-(-π/2·i)).
            post_multiply(&mut g, i.iter().map(|i| rotate2d(-(f(-PI / 2.0) * i))).collect());
        }
        if self.xint > 0.0 {
            let v = rng.rand(&[b, 2]);
            let u = rng.rand(&[b, 1]);
            let t: Vec<f32> = v.iter().map(|v| (v * 2.0 - 1.0) * f(self.xint_max)).collect();
            let ms = (0..b)
                .map(|k| {
                    let on = u[k] < threshold(self.xint);
                    let (tx, ty) = if on { (t[2 * k], t[2 * k + 1]) } else { (0.0, 0.0) };
                    translate2d(-(tx * w).round_ties_even(), -(ty * h).round_ties_even())
                })
                .collect();
            post_multiply(&mut g, ms);
        }
        if self.scale > 0.0 {
            let v = rng.randn(&[b]);
            let u = rng.rand(&[b]);
            let s = gate(v.iter().map(|v| exp2_32(v * f(self.scale_std))).collect(), &u, threshold(self.scale), 1.0);
            post_multiply(&mut g, s.iter().map(|&s| scale2d_inv(s, s)).collect());
        }
        // P(pre OR post) = p.
        let p_rot = 1.0 - (1.0 - threshold(self.rotate)).clamp(0.0, 1.0).sqrt();
        let rotation = |rng: &mut R, g: &mut Option<Vec<Mat3>>| {
            let v = rng.rand(&[b]);
            let u = rng.rand(&[b]);
            let theta = gate(v.iter().map(|v| (v * 2.0 - 1.0) * f(PI) * f(self.rotate_max)).collect(), &u, p_rot, 0.0);
            // rotate2d_inv(-θ) = rotate2d(θ).
            post_multiply(g, theta.iter().map(|&t| rotate2d(t)).collect());
        };
        if self.rotate > 0.0 {
            rotation(&mut *rng, &mut g); // Before anisotropic scaling.
        }
        if self.aniso > 0.0 {
            let v = rng.randn(&[b]);
            let u = rng.rand(&[b]);
            let s = gate(v.iter().map(|v| exp2_32(v * f(self.aniso_std))).collect(), &u, threshold(self.aniso), 1.0);
            post_multiply(&mut g, s.iter().map(|&s| scale2d_inv(s, 1.0 / s)).collect());
        }
        if self.rotate > 0.0 {
            rotation(&mut *rng, &mut g); // After anisotropic scaling.
        }
        if self.xfrac > 0.0 {
            let v = rng.randn(&[b, 2]);
            let u = rng.rand(&[b, 1]);
            let t: Vec<f32> = v.iter().map(|v| v * f(self.xfrac_std)).collect();
            let ms = (0..b)
                .map(|k| {
                    let on = u[k] < threshold(self.xfrac);
                    let (tx, ty) = if on { (t[2 * k], t[2 * k + 1]) } else { (0.0, 0.0) };
                    translate2d(-(tx * w), -(ty * h))
                })
                .collect();
            post_multiply(&mut g, ms);
        }
        let geometry = g.map(|g| geom::Geometry::new(g, height, width));

        // Colour parameters: C @ color_in = color_out.
        let mut c: Option<Vec<Mat4>> = None;
        if self.brightness > 0.0 {
            let v = rng.randn(&[b]);
            let u = rng.rand(&[b]);
            let bb = gate(v.iter().map(|v| v * f(self.brightness_std)).collect(), &u, threshold(self.brightness), 0.0);
            pre_multiply(&mut c, bb.iter().map(|&t| translate3d(t, t, t)).collect());
        }
        if self.contrast > 0.0 {
            let v = rng.randn(&[b]);
            let u = rng.rand(&[b]);
            let s = gate(v.iter().map(|v| exp2_32(v * f(self.contrast_std))).collect(), &u, threshold(self.contrast), 1.0);
            pre_multiply(&mut c, s.iter().map(|&s| scale3d(s, s, s)).collect());
        }
        // Luma axis v = (1, 1, 1, 0)/√3 and v·vᵀ, in float32.
        let l = f(1.0 / 3f64.sqrt());
        let lum = [l, l, l, 0.0];
        let mut vv = [[0f32; 4]; 4];
        for (i, row) in vv.iter_mut().enumerate() {
            for (j, e) in row.iter_mut().enumerate() {
                *e = lum[i] * lum[j];
            }
        }
        if self.lumaflip > 0.0 {
            let v = rng.rand(&[b, 1, 1]);
            let u = rng.rand(&[b, 1, 1]);
            let i = gate(v.iter().map(|v| (v * 2.0).floor()).collect(), &u, threshold(self.lumaflip), 0.0);
            // Householder reflection I − 2·v·vᵀ·i.
            let ms = i.iter().map(|&i| elementwise(|r, k| I4[r][k] - 2.0 * vv[r][k] * i)).collect();
            pre_multiply(&mut c, ms);
        }
        if self.hue > 0.0 && channels > 1 {
            let v = rng.rand(&[b]);
            let u = rng.rand(&[b]);
            let theta = gate(v.iter().map(|v| (v * 2.0 - 1.0) * f(PI) * f(self.hue_max)).collect(), &u, threshold(self.hue), 0.0);
            pre_multiply(&mut c, theta.iter().map(|&t| rotate3d(lum, t)).collect());
        }
        if self.saturation > 0.0 && channels > 1 {
            let v = rng.randn(&[b, 1, 1]);
            let u = rng.rand(&[b, 1, 1]);
            let s = gate(v.iter().map(|v| exp2_32(v * f(self.saturation_std))).collect(), &u, threshold(self.saturation), 1.0);
            let ms = s.iter().map(|&s| elementwise(|r, k| vv[r][k] + (I4[r][k] - vv[r][k]) * s)).collect();
            pre_multiply(&mut c, ms);
        }

        AugmentParams { shape: [batch, channels, height, width], geometry, color: c }
    }
}

fn elementwise(e: impl Fn(usize, usize) -> f32) -> Mat4 {
    let mut m = [[0f32; 4]; 4];
    for (r, row) in m.iter_mut().enumerate() {
        for (k, x) in row.iter_mut().enumerate() {
            *x = e(r, k);
        }
    }
    m
}

fn translate3d(tx: f32, ty: f32, tz: f32) -> Mat4 {
    [[1.0, 0.0, 0.0, tx], [0.0, 1.0, 0.0, ty], [0.0, 0.0, 1.0, tz], [0.0, 0.0, 0.0, 1.0]]
}

fn scale3d(sx: f32, sy: f32, sz: f32) -> Mat4 {
    [[sx, 0.0, 0.0, 0.0], [0.0, sy, 0.0, 0.0], [0.0, 0.0, sz, 0.0], [0.0, 0.0, 0.0, 1.0]]
}

/// `rotate3d(v, θ)`: Rodrigues rotation about the unit axis `v`, each entry in float32 in the
/// official operation order (`vx·vy·cc − vz·s`, ...).
fn rotate3d(v: [f32; 4], theta: f32) -> Mat4 {
    let (s, c) = (sin32(theta), cos32(theta));
    let cc = 1.0 - c;
    let [vx, vy, vz, _] = v;
    [
        [vx * vx * cc + c, vx * vy * cc - vz * s, vx * vz * cc + vy * s, 0.0],
        [vy * vx * cc + vz * s, vy * vy * cc + c, vy * vz * cc - vx * s, 0.0],
        [vz * vx * cc - vy * s, vz * vy * cc + vx * s, vz * vz * cc + c, 0.0],
        [0.0, 0.0, 0.0, 1.0],
    ]
}

/// One batch's drawn augmentation: the geometric matrices (with the padding and sampling grid
/// derived from them) and the colour matrices, for images of one shape. Applying it is affine in
/// the image; see [`Self::apply`] and [`Self::apply_linear`].
#[derive(Clone, Debug)]
pub struct AugmentParams {
    shape: [usize; 4],
    geometry: Option<geom::Geometry>,
    color: Option<Vec<Mat4>>,
}

impl AugmentParams {
    /// `[batch, channels, height, width]` of the images these parameters are for.
    pub fn shape(&self) -> [usize; 4] {
        self.shape
    }

    /// Per-sample `G_inv` after all geometric parameters, before padding (pixel units, origin at
    /// the image centre; maps an output pixel to the input pixel). `None` when no geometric
    /// transform is enabled (the geometric path does not run).
    pub fn g_inv(&self) -> Option<&[Mat3]> {
        self.geometry.as_ref().map(|g| g.g_inv.as_slice())
    }

    /// Reflect-padding margins `(left, right, top, bottom)`, one for the batch.
    pub fn pad(&self) -> Option<[usize; 4]> {
        self.geometry.as_ref().map(|g| g.pad)
    }

    /// Per-sample final matrix after the padding/upsampling/normalisation adjustments; its first
    /// two rows are the `affine_grid` theta.
    pub fn g_inv_grid(&self) -> Option<&[Mat3]> {
        self.geometry.as_ref().map(|g| g.g_inv_grid.as_slice())
    }

    /// Per-sample colour matrix `C` (`output = C[:3, :3] @ rgb + C[:3, 3]`); `None` when no
    /// colour transform is enabled.
    pub fn c(&self) -> Option<&[Mat4]> {
        self.color.as_deref()
    }

    fn check(&self, x: &Tensor<4>) -> Result<(), AugmentError> {
        let got = x.dims();
        if got != self.shape {
            return Err(AugmentError::Shape { expected: self.shape, got });
        }
        Ok(())
    }

    /// The augmented images: geometric part, then colour. Differentiable w.r.t. `x` under burn's
    /// autodiff, on `x`'s device.
    ///
    /// # Panics
    /// If `x` does not have the shape the parameters were drawn for (see [`Self::try_apply`]).
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        match self.try_apply(x) {
            Ok(y) => y,
            Err(e) => panic!("{e}"),
        }
    }

    /// [`Self::apply`], with a shape mismatch as an error.
    pub fn try_apply(&self, x: Tensor<4>) -> Result<Tensor<4>, AugmentError> {
        self.check(&x)?;
        Ok(self.apply_color(self.apply_geometric(x), true))
    }

    /// The linear part of [`Self::apply`] (without the colour offset `C[:3, 3]`): its derivative
    /// w.r.t. the image, for pushing tangents (`apply(x + v) − apply(x) = apply_linear(v)`).
    ///
    /// # Panics
    /// If `v` does not have the shape the parameters were drawn for.
    pub fn apply_linear(&self, v: Tensor<4>) -> Tensor<4> {
        if let Err(e) = self.check(&v) {
            panic!("{e}");
        }
        self.apply_color(self.apply_geometric(v), false)
    }

    /// Only the geometric part (pad, upsample, `grid_sample`, downsample, crop); the identity
    /// when no geometric transform is enabled.
    pub fn apply_geometric(&self, x: Tensor<4>) -> Tensor<4> {
        match &self.geometry {
            Some(g) => geom::execute(x, g),
            None => x,
        }
    }

    /// Only the colour part, with or without the offset column; the identity when no colour
    /// transform is enabled.
    pub fn apply_color(&self, x: Tensor<4>, with_offset: bool) -> Tensor<4> {
        let Some(cs) = &self.color else { return x };
        let [b, ch, h, w] = x.dims();
        let device = x.device();
        if ch == 3 {
            let m: Vec<f32> = cs.iter().flat_map(|c| (0..3).flat_map(move |r| [c[r][0], c[r][1], c[r][2]])).collect();
            let m: Tensor<3> = Tensor::from_data(TensorData::new(m, [b, 3, 3]), &device);
            let y = m.matmul(x.reshape([b, 3, h * w]));
            let y = if with_offset {
                let t: Vec<f32> = cs.iter().flat_map(|c| [c[0][3], c[1][3], c[2][3]]).collect();
                y + Tensor::<3>::from_data(TensorData::new(t, [b, 3, 1]), &device)
            } else {
                y
            };
            y.reshape([b, 3, h, w])
        } else {
            // L images: C ← mean over the three colour rows; y = x·ΣC[:3] + C[3].
            let rows: Vec<[f32; 4]> = cs.iter().map(|c| std::array::from_fn(|k| (c[0][k] + c[1][k] + c[2][k]) / 3.0)).collect();
            let gain: Vec<f32> = rows.iter().map(|r| r[0] + r[1] + r[2]).collect();
            let y = x * Tensor::<4>::from_data(TensorData::new(gain, [b, 1, 1, 1]), &device);
            if with_offset {
                let t: Vec<f32> = rows.iter().map(|r| r[3]).collect();
                y + Tensor::<4>::from_data(TensorData::new(t, [b, 1, 1, 1]), &device)
            } else {
                y
            }
        }
    }
}

/// One ADA step of `training_loop.py`: `adjust = sign(mean_sign_real − target) ·
/// (batch·interval) / (ada_kimg·1000)`, `p ← max(p + adjust, 0)`.
///
/// `p` lives in a float32 buffer officially, so the sum is rounded to float32 (as
/// `augment_pipe.p + adjust` is). A NaN mean (no real logits seen) leaves `p` unchanged, where
/// the official code would turn `p` into NaN.
pub fn ada_adjust(p: f64, mean_sign_real: f64, target: f64, batch: usize, interval: usize, ada_kimg: f64) -> f64 {
    let diff = mean_sign_real - target;
    if diff.is_nan() {
        return p;
    }
    let sign = if diff > 0.0 {
        1.0
    } else if diff < 0.0 {
        -1.0
    } else {
        0.0
    };
    let adjust = sign * (batch * interval) as f64 / (ada_kimg * 1000.0);
    (f(p) + f(adjust)).max(0.0) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ada_adjust_follows_the_training_loop() {
        // batch 32, interval 4, ada_kimg 500: steps of 128/500000 = 2.56e-4.
        let step = (32.0 * 4.0) / 500_000.0;
        let up = ada_adjust(0.0, 0.8, 0.6, 32, 4, 500.0);
        assert!((up - step).abs() < 1e-9, "{up}");
        let down = ada_adjust(0.5, 0.2, 0.6, 32, 4, 500.0);
        assert!((down - (0.5 - step)).abs() < 1e-7, "{down}");
        assert_eq!(ada_adjust(0.0, -1.0, 0.6, 32, 4, 500.0), 0.0, "clamped at 0");
        assert_eq!(ada_adjust(0.25, 0.6, 0.6, 32, 4, 500.0), 0.25, "sign(0) = 0");
        assert_eq!(ada_adjust(0.25, f64::NAN, 0.6, 32, 4, 500.0), 0.25);
        // The result is a float32 value, as the official buffer.
        let q = ada_adjust(0.1, 1.0, 0.6, 4, 4, 100.0);
        assert_eq!(q, (0.1f32 + (16.0f64 / 100_000.0) as f32) as f64);
    }

    #[test]
    fn seeded_rng_ranges() {
        let mut r = SeededRng::new(1);
        let u = r.rand(&[1000]);
        assert!(u.iter().all(|&v| (0.0..1.0).contains(&v)));
        let n = r.randn(&[1000]);
        let mean = n.iter().map(|&v| v as f64).sum::<f64>() / 1000.0;
        assert!(mean.abs() < 0.15, "{mean}");
    }

    #[test]
    fn p0_makes_identity_matrices_but_all_draws() {
        let mut r = SeededRng::new(3);
        let params = AugmentPipe::bgc().draw(2, 8, 8, &mut r);
        for g in params.g_inv().into_iter().flatten() {
            assert_eq!(*g, [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);
        }
        assert!(params.g_inv().is_some() && params.c().is_some());
        for c in params.c().into_iter().flatten() {
            assert_eq!(*c, I4);
        }
        assert_eq!(params.pad(), Some([6, 6, 6, 6]));
    }

    #[test]
    fn serde_round_trip() {
        let mut pipe = AugmentPipe::bgc();
        pipe.p = 0.3;
        let s = serde_json::to_string(&pipe).expect("serialise");
        let back: AugmentPipe = serde_json::from_str(&s).expect("deserialise");
        assert_eq!(back, pipe);
        let partial: AugmentPipe = serde_json::from_str(r#"{"p": 0.5, "xflip": 1}"#).expect("defaults");
        assert_eq!(partial.xint_max, 0.125);
    }
}
