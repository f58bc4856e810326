//! The visualizer's "Untransform" view: resample a StyleGAN3 output back through its input
//! transform so a translated or rotated image lines up with the untransformed one. The resampler
//! is the equivariance metric's (`metrics::resample`), re-exported here for the render thread.

pub use crate::metrics::resample::{apply_affine, bandlimit_filter};
