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
        BackendChoice::Cpu => format!(
            "cpu (flex, {} threads, {})",
            std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
            crate::kernels::simd_description()
        ),
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
        let causes: Vec<&str> = text
            .lines()
            .map(|l| l.trim().trim_end_matches(':'))
            .filter(|l| !l.is_empty() && !l.starts_with("Caused by") && !l.starts_with("Asked at") && !l.contains("backtrace"))
            .collect();
        fail(causes.iter().rev().take(2).rev().copied().collect::<Vec<_>>().join(": "))
    })?;
    data.convert::<f32>().try_to_vec().map_err(|e| fail(format!("{e:?}")))
}

/// What the machine offers for the GUI's default backend choice.
#[derive(Clone, Debug)]
pub struct AdapterProbe {
    /// A hardware GPU adapter's name, if any.
    pub gpu: Option<String>,
    /// A software adapter (e.g. Mesa's lavapipe), if any.
    pub software: Option<String>,
}

/// Lists wgpu adapters without creating a device.
pub fn probe_adapters() -> AdapterProbe {
    let instance = wgpu::Instance::default();
    let adapters = block_on(instance.enumerate_adapters(wgpu::Backends::all()));
    let mut probe = AdapterProbe { gpu: None, software: None };
    for a in adapters {
        let info = a.get_info();
        match info.device_type {
            wgpu::DeviceType::Cpu => probe.software = probe.software.or(Some(info.name)),
            _ => probe.gpu = probe.gpu.or(Some(info.name)),
        }
    }
    probe
}

/// Runs a future that native wgpu resolves at once (adapter and device requests) to completion.
pub fn block_on<F: std::future::Future>(fut: F) -> F::Output {
    let mut fut = std::pin::pin!(fut);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}

/// The backend the explorer uses when none is asked for: wgpu on a real GPU, else the CPU
/// backend (far faster than software Vulkan), with a note saying why.
pub fn default_backend() -> (BackendChoice, String) {
    let probe = probe_adapters();
    match (probe.gpu, probe.software) {
        (Some(gpu), _) => (BackendChoice::Wgpu, format!("GPU: {gpu}")),
        (None, Some(sw)) => (BackendChoice::Cpu, format!("no GPU found (only software Vulkan: {sw}); rendering on the CPU backend")),
        (None, None) => (BackendChoice::Cpu, "no GPU adapter found; rendering on the CPU backend".to_string()),
    }
}

/// Peak resident memory of this process (VmHWM), bytes, where the OS reports it (Linux).
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}
