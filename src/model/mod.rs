//! The official networks as burn modules: StyleGAN3 (T, R), StyleGAN2 and StyleGAN v1 generators
//! and the discriminators. Never imports egui; the GUI reaches the networks through `render`.

pub mod config;
pub mod discriminator;
pub mod filters;
pub mod layers;
pub mod sg1;
pub mod sg2;
pub mod sg3;

use burn::module::Module;
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::LoadError;
use crate::weights::WeightSource;
use config::{Family, GeneratorConfig};
use layers::{MappingNetwork, Trace};
pub use sg2::NoiseMode;

/// The synthesis network of either family.
#[derive(Module, Debug)]
pub enum Synthesis {
    StyleGan3(sg3::SynthesisNetwork),
    StyleGan2(sg2::SynthesisNetwork),
    StyleGan1(sg1::SynthesisNetwork),
}

/// A generator: mapping + synthesis, with its architecture.
#[derive(Module, Debug)]
pub struct Generator {
    pub mapping: MappingNetwork,
    pub synthesis: Synthesis,
    #[module(skip)]
    pub config: GeneratorConfig,
}

/// Per-call synthesis options (the official `synthesis_kwargs` and user controls).
#[derive(Clone, Debug)]
pub struct SynthesisOptions {
    /// StyleGAN2 and v1; StyleGAN3 ignores it like the official code.
    pub noise_mode: NoiseMode,
    /// StyleGAN2 and v1: multiplies every layer's learned noise strength (1 = the official net).
    pub noise_gain: f64,
    /// StyleGAN3 only: the value of `synthesis.input.transform` (the *inverse* of the user's
    /// forward transform); `None` keeps the stored buffer.
    pub transform: Option<[[f64; 3]; 3]>,
    /// Fast kernels or the reference path.
    pub kernels: crate::kernels::KernelChoice,
}

impl Default for SynthesisOptions {
    fn default() -> Self {
        Self { noise_mode: NoiseMode::Const, noise_gain: 1.0, transform: None, kernels: Default::default() }
    }
}

impl Generator {
    /// Builds the generator described by `config` from `src`.
    pub fn load(config: &GeneratorConfig, src: &mut dyn WeightSource, device: &Device) -> Result<Self, LoadError> {
        let mapping = MappingNetwork::load(src, "mapping", config.z_dim(), config.c_dim(), config.w_dim(), config.mapping(), true, device)?;
        let synthesis = match config {
            GeneratorConfig::StyleGan3(c) => Synthesis::StyleGan3(sg3::SynthesisNetwork::load(src, c, device)?),
            GeneratorConfig::StyleGan2(c) => Synthesis::StyleGan2(sg2::SynthesisNetwork::load(src, c, device)?),
            GeneratorConfig::StyleGan1(c) => Synthesis::StyleGan1(sg1::SynthesisNetwork::load(src, c, device)?),
        };
        Ok(Self { mapping, synthesis, config: config.clone() })
    }

    pub fn family(&self) -> Family {
        self.config.family()
    }

    pub fn device(&self) -> Device {
        self.mapping.fc.first().map(|fc| fc.weight.val().device()).unwrap_or_default()
    }

    /// `G.mapping(z, c, truncation_psi, truncation_cutoff)` → `[N, num_ws, w_dim]`.
    pub fn mapping(&self, z: Tensor<2>, c: Option<Tensor<2>>, psi: f64, cutoff: Option<usize>, trace: Option<&mut Trace>) -> Tensor<3> {
        let w = self.mapping.forward_w(Some(z), c, trace);
        self.mapping.broadcast_truncate(w, self.config.num_ws(), psi, cutoff)
    }

    /// `G.synthesis(ws, ...)` → `[N, img_channels, res, res]` (unclipped, nominal [-1, 1]).
    pub fn synthesis(&self, ws: Tensor<3>, opts: &SynthesisOptions, trace: Option<&mut Trace>) -> Tensor<4> {
        match &self.synthesis {
            Synthesis::StyleGan3(s) => {
                let transform = opts.transform.map(|m| {
                    let data: Vec<f32> = m.iter().flatten().map(|v| *v as f32).collect();
                    Tensor::<2>::from_data(TensorData::new(data, [3, 3]), &ws.device())
                });
                s.forward(ws, transform, opts.kernels, trace)
            }
            Synthesis::StyleGan2(s) => s.forward(ws, opts.noise_mode, opts.noise_gain, opts.kernels, trace),
            Synthesis::StyleGan1(s) => s.forward(ws, opts.noise_mode, opts.noise_gain, opts.kernels, trace),
        }
    }

    /// Every trainable parameter under its official state_dict name.
    pub fn named_params(&self) -> layers::NamedParams<'_> {
        let mut out = Vec::new();
        self.mapping.named_params("mapping", &mut out);
        match &self.synthesis {
            Synthesis::StyleGan3(s) => s.named_params(&mut out),
            Synthesis::StyleGan2(s) => s.named_params(&mut out),
            // Inference only: StyleGAN v1 is not trained here, its synthesis holds plain tensors.
            Synthesis::StyleGan1(_) => {}
        }
        out
    }

    /// The mean `w` (`mapping.w_avg`), `[w_dim]`.
    pub fn w_avg(&self) -> Option<Tensor<1>> {
        self.mapping.w_avg.clone()
    }

    /// Names of every recorded layer output, in forward order (for the inspector).
    pub fn layer_names(&self) -> Vec<String> {
        match &self.synthesis {
            Synthesis::StyleGan3(s) => {
                let mut v = vec!["input".to_string()];
                v.extend(s.layers.iter().map(|l| l.spec.name.clone()));
                v.push("output".into());
                v
            }
            Synthesis::StyleGan2(s) => {
                let mut v = Vec::new();
                for b in &s.blocks {
                    if b.conv0.is_some() {
                        v.push(format!("{}.conv0", b.spec.name));
                    }
                    v.push(format!("{}.conv1", b.spec.name));
                    v.push(format!("{}.torgb", b.spec.name));
                    v.push(format!("{}:0", b.spec.name));
                    v.push(format!("{}:1", b.spec.name));
                }
                v.push("output".into());
                v
            }
            Synthesis::StyleGan1(s) => s.layer_names(),
        }
    }
}

/// One-hot class labels `[n, c_dim]` (`None` when unconditional).
pub fn one_hot(class: usize, c_dim: usize, n: usize, device: &Device) -> Option<Tensor<2>> {
    if c_dim == 0 {
        return None;
    }
    let mut v = vec![0f32; n * c_dim];
    for row in 0..n {
        v[row * c_dim + class.min(c_dim - 1)] = 1.0;
    }
    Some(Tensor::from_data(TensorData::new(v, [n, c_dim]), device))
}

/// `make_transform(translate, angle)` of gen_images.py: the forward matrix.
pub fn make_transform(translate: (f64, f64), angle_deg: f64) -> [[f64; 3]; 3] {
    let a = angle_deg / 360.0 * 2.0 * std::f64::consts::PI;
    let (s, c) = a.sin_cos();
    [[c, s, translate.0], [-s, c, translate.1], [0.0, 0.0, 1.0]]
}

/// Inverse of a 3x3 matrix (f64, like numpy's); `None` when singular.
pub fn invert3(m: [[f64; 3]; 3]) -> Option<[[f64; 3]; 3]> {
    let det = m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
        + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]);
    if det.abs() < 1e-300 {
        return None;
    }
    let mut inv = [[0.0; 3]; 3];
    for (i, row) in inv.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            let (r0, r1) = ((j + 1) % 3, (j + 2) % 3);
            let (c0, c1) = ((i + 1) % 3, (i + 2) % 3);
            *v = (m[r0][c0] * m[r1][c1] - m[r0][c1] * m[r1][c0]) / det;
        }
    }
    Some(inv)
}
