//! Choosing where the networks run: burn's CPU backend (flex) or its wgpu backend (any GPU, or
//! Mesa's software Vulkan). The rest of the code only sees a `burn::tensor::Device`.

use burn::tensor::{Device, DeviceKind};

/// `--backend cpu|wgpu`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
pub enum BackendChoice {
    /// burn's CPU backend (flex), multi-threaded.
    #[default]
    Cpu,
    /// burn's wgpu backend: Vulkan, Metal, DX12 or GL, whatever the machine has.
    Wgpu,
}

impl BackendChoice {
    pub fn name(self) -> &'static str {
        match self {
            Self::Cpu => "cpu",
            Self::Wgpu => "wgpu",
        }
    }

    /// The burn device for this backend.
    pub fn device(self) -> Device {
        match self {
            Self::Cpu => Device::flex(),
            Self::Wgpu => Device::wgpu(DeviceKind::DefaultDevice),
        }
    }
}

/// A human description of the device: backend and adapter name.
pub fn describe(choice: BackendChoice, device: &Device) -> String {
    match choice {
        BackendChoice::Cpu => format!("cpu (flex, {} threads)", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)),
        BackendChoice::Wgpu => match device.identity() {
            Some(id) => format!("wgpu ({})", id.name),
            None => "wgpu".to_string(),
        },
    }
}

/// Reads a tensor back to the host as f32, turning device failures (out of memory, lost device)
/// into an error instead of a panic.
pub fn read_f32<const D: usize>(t: burn::tensor::Tensor<D>) -> Result<Vec<f32>, crate::error::DeviceError> {
    let backend = if t.device() == Device::flex() { "cpu" } else { "GPU" };
    let fail = |detail: String| crate::error::DeviceError { backend: backend.to_string(), detail };
    let data = t.try_into_data().map_err(|e| {
        // The error text is a chain of causes; the last lines name the root cause.
        let text = e.to_string();
        let causes: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with("Caused by")).collect();
        fail(causes.iter().rev().take(2).rev().copied().collect::<Vec<_>>().join(": "))
    })?;
    data.convert::<f32>().try_to_vec().map_err(|e| fail(format!("{e:?}")))
}
