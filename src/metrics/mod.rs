//! Quality measurements of a generator: the StyleGAN3 paper's equivariance metrics
//! (`equivariance`), over the band-limited resampler they are built on (`resample`). Never imports
//! egui.

pub mod eq_sampling;
pub mod equivariance;
pub mod resample;
