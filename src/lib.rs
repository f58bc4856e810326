//! StyleScope: StyleGAN3, StyleGAN2 and StyleGAN v1 networks on burn (CPU or any GPU through wgpu), loaded
//! natively and safely from the official snapshots, matching the official code number for number.
//!
//! Layout (see ARCHITECTURE.md): `weights` reads files, `model` holds the networks, `kernels` the
//! custom ops, `export` writes results, `cli` the commands; the GUI lives in `gui` and talks to the
//! networks only through `render`.

pub mod backend;
pub mod cli;
pub mod data;
pub mod download;
pub mod error;
pub mod export;
pub mod gui;
pub mod kernels;
pub mod metrics;
pub mod model;
pub mod render;
pub mod runs;
pub mod rng;
pub mod source;
pub mod train;
pub mod weights;
