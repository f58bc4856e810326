//! Runtime CPU-feature dispatch for the CPU kernels' hot loops.
//!
//! The binary is built for baseline x86-64 (SSE2, 4 floats per instruction) so it runs on any
//! machine; almost every x86-64 CPU in use has AVX2 (8 floats), many servers AVX-512 (16).
//! [`multiversion!`] compiles a function three times, for baseline, AVX2 and AVX-512F, and picks
//! one per call from the CPU's features (a cached atomic load). All copies run the same scalar
//! operations in the same order per element (the loops are element-wise, and without FMA
//! contraction), so the results are bit-identical; only the instruction width differs
//! (`tests/cli.rs` checks this end to end with `STYLESCOPE_SIMD=baseline`).

/// Wraps a free function (no generics, no `self`) so its body runs as AVX-512 or AVX2 code where
/// the CPU has it. Callees the body uses should be `#[inline(always)]` or multiversioned themselves.
macro_rules! multiversion {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[inline(always)]
            #[allow(clippy::too_many_arguments)]
            fn portable($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                #[allow(clippy::too_many_arguments)]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    portable($($arg),*)
                }
                if $crate::kernels::simd::avx512() {
                    // SAFETY: the CPU supports AVX-512F, the only feature `avx512` is compiled with.
                    return unsafe { avx512($($arg),*) };
                }
                #[target_feature(enable = "avx2")]
                #[allow(clippy::too_many_arguments)]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    portable($($arg),*)
                }
                if $crate::kernels::simd::avx2() {
                    // SAFETY: the CPU supports AVX2, the only feature `avx2` is compiled with.
                    return unsafe { avx2($($arg),*) };
                }
            }
            portable($($arg),*)
        }
    };
}

/// Whether the multiversioned loops run their AVX2 copy: the CPU has AVX2 and the environment
/// does not ask for the baseline (`STYLESCOPE_SIMD=baseline`, to compare the two or to rule the
/// AVX2 copy out when debugging). Decided once per process.
#[cfg(target_arch = "x86_64")]
pub fn avx2() -> bool {
    static AVX2: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVX2.get_or_init(|| std::arch::is_x86_feature_detected!("avx2") && std::env::var("STYLESCOPE_SIMD").map_or(true, |v| v != "baseline"))
}

/// Whether the multiversioned loops run their AVX-512 copy: the CPU has AVX-512F and the
/// environment asks for neither the baseline nor AVX2 (`STYLESCOPE_SIMD=avx2`: the code an
/// AVX2-only CPU runs, to measure it on this one; `kernels::tiles` follows it). Decided once per
/// process.
#[cfg(target_arch = "x86_64")]
pub fn avx512() -> bool {
    static AVX512: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVX512.get_or_init(|| avx2() && std::arch::is_x86_feature_detected!("avx512f") && std::env::var("STYLESCOPE_SIMD").map_or(true, |v| v != "avx2"))
}

/// The vector instructions the CPU kernels use on this machine, for benchmark reports: our loops
/// (AVX-512, AVX2 or baseline) and the products (our AVX-512 or AVX2+FMA tiles, else the gemm crate's
/// AVX-512, AVX2+FMA or baseline microkernels).
pub fn description() -> String {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::is_x86_feature_detected as has;
        let loops = if avx512() {
            "AVX-512"
        } else if avx2() {
            "AVX2"
        } else {
            "SSE2"
        };
        let gemm = if let Some(isa) = crate::kernels::tiles::isa() {
            match isa {
                crate::kernels::tiles::Isa::Avx512 => "AVX-512 conv/GEMM tiles",
                crate::kernels::tiles::Isa::Avx2Fma => "AVX2+FMA conv/GEMM tiles",
            }
        } else if has!("avx512f") && has!("avx512bw") && has!("avx512cd") && has!("avx512dq") && has!("avx512vl") {
            "AVX-512"
        } else if has!("avx2") && has!("fma") {
            "AVX2+FMA"
        } else {
            "SSE2"
        };
        format!("{loops} loops, {gemm} GEMM")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        format!("{} baseline SIMD", std::env::consts::ARCH)
    }
}
