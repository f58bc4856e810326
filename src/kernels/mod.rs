//! The official custom ops (`upfirdn2d`, `bias_act`, `filtered_lrelu`, `conv2d_resample`).
//! `reference` is the pure burn-tensor implementation every faster kernel is judged against.

pub mod reference;
pub mod cpu;
pub mod wgpu;

use burn::tensor::Device;

/// Which implementation of the custom ops to use.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum KernelChoice {
    /// The fastest path for the device (the CPU kernels on burn's plain CPU backend).
    #[default]
    Auto,
    /// Always the pure-tensor reference.
    Reference,
}

/// Whether the fast CPU kernels apply: burn's CPU backend without autodiff (they are forward only).
pub fn use_fast_cpu(device: &Device, choice: KernelChoice) -> bool {
    choice == KernelChoice::Auto && !device.is_autodiff() && *device == Device::flex()
}
