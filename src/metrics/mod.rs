//! Quality measurements of a generator: the StyleGAN3 paper's equivariance metrics (the operators
//! in `equivariance`, the runs over samples in `eq_sampling`) over the band-limited resampler they
//! are built on (`resample`), and average power spectra (`spectrum`, drawn by `spectrum_plot`)
//! over the FFT helpers (`fft`). Never imports egui.

pub mod eq_sampling;
pub mod equivariance;
pub mod fft;
pub mod resample;
pub mod spectrum;
pub mod spectrum_plot;
