//! The shown image computed where the generator ran, when that is the window's own wgpu device:
//! channel selection, normalisation and gain as burn tensor ops, the uint8 conversion in
//! `shaders/to_rgba8.wgsl`, and the result left in a GPU buffer the window copies into its
//! texture. Only the statistics (six floats) come back to the host; the floats and pixels are
//! read back on demand (capture, copy as command) through [`HostCopy`].

use std::fmt;
use std::sync::{Arc, OnceLock};

use burn::tensor::Tensor;

use crate::backend::read_f32;
use crate::kernels::wgpu::{to_rgba8_wgpu, PackedRgba8};
use crate::render::pixels::{LayerView, Stats};

type Fetch<T> = Arc<dyn Fn() -> Result<Vec<T>, String> + Send + Sync>;

/// Frame data on the host, or still on the GPU and read back (once) when first asked for.
#[derive(Clone)]
pub struct HostCopy<T> {
    value: Arc<OnceLock<Result<Arc<Vec<T>>, String>>>,
    fetch: Option<Fetch<T>>,
}

impl<T> HostCopy<T> {
    /// Data already on the host.
    pub fn ready(v: Vec<T>) -> Self {
        let value = OnceLock::new();
        let _ = value.set(Ok(Arc::new(v)));
        Self { value: Arc::new(value), fetch: None }
    }

    /// Data read by `fetch` on first use.
    pub fn on_device(fetch: impl Fn() -> Result<Vec<T>, String> + Send + Sync + 'static) -> Self {
        Self { value: Arc::new(OnceLock::new()), fetch: Some(Arc::new(fetch)) }
    }

    /// The data (reading it back from the GPU the first time, if it is still there).
    pub fn get(&self) -> Result<Arc<Vec<T>>, String> {
        self.value
            .get_or_init(|| match &self.fetch {
                Some(f) => f().map(Arc::new),
                None => Err("frame data missing".into()),
            })
            .clone()
    }

    /// Whether the data is on the host already (no read-back needed).
    pub fn is_on_host(&self) -> bool {
        self.value.get().is_some()
    }
}

impl<T> fmt::Debug for HostCopy<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.is_on_host() { "HostCopy(on host)" } else { "HostCopy(on GPU)" })
    }
}

/// The shown image on the GPU and its statistics.
pub struct OnGpu {
    pub image: PackedRgba8,
    pub stats_all: Stats,
    pub stats_shown: Stats,
}

/// mean, unbiased std and max |x| of `t` as a `[3]` tensor (reduced on the device).
fn stats_tensor(t: Tensor<1>) -> Tensor<1> {
    let n = t.dims()[0];
    let mean = t.clone().mean();
    let ss = (t.clone() - mean.clone()).square().sum();
    let std = ss.div_scalar(n.saturating_sub(1).max(1) as f64).sqrt();
    let std = if n > 1 { std } else { std.mul_scalar(0.0) };
    Tensor::cat(vec![mean, std, t.abs().max()], 0)
}

fn stats(v: &[f32]) -> Stats {
    Stats { mean: v[0], std: v[1], max_abs: v[2] }
}

/// `tensor [1, C, H, W]` shown with `view` as packed RGBA8 on the GPU, or `None` when the device
/// cannot (not wgpu). Channels `base..base + n` as in [`crate::render::pixels::to_rgba`].
pub fn shown_on_gpu(tensor: &Tensor<4>, base: usize, n: usize, view: &LayerView) -> Result<Option<OnGpu>, String> {
    let [_, c, h, w] = tensor.dims();
    let all: Tensor<2> = tensor.clone().narrow(0, 0, 1).reshape([c, h * w]);
    let shown = all.clone().narrow(0, base, n);
    let gain = 10f64.powf(view.gain_db / 20.0);
    let scale: Tensor<1> = if view.normalize {
        // 1 / clamp(max|x_c|, 1e-8, 1e8) per channel, as the host twin.
        let m: Tensor<1> = shown.clone().abs().max_dim(1).reshape([n]);
        m.clamp(1e-8, 1e8).recip().mul_scalar(gain)
    } else {
        Tensor::full([n], gain, &tensor.device())
    };
    let Some(image) = to_rgba8_wgpu(shown.clone().reshape([n, h, w]), scale) else { return Ok(None) };
    let s = read_f32(Tensor::cat(vec![stats_tensor(all.reshape([c * h * w])), stats_tensor(shown.reshape([n * h * w]))], 0)).map_err(|e| e.to_string())?;
    Ok(Some(OnGpu { image, stats_all: stats(&s[..3]), stats_shown: stats(&s[3..]) }))
}
