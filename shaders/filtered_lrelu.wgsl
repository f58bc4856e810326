// filtered_lrelu on burn-wgpu, fused: bias, up-sampling FIR, leaky ReLU with gain and clamp,
// down-sampling FIR in one dispatch; the up-sampled tensor never leaves workgroup memory.
//
// Reference twin: `kernels::reference::filtered_lrelu` =
//   bias_act(x, b, Linear) -> upfirdn2d(., fu, up, 1, padding, gain = up²)
//   -> bias_act(., LeakyRelu(slope), gain, clamp) -> upfirdn2d(., fd, 1, down, 0, gain = 1).
// CPU twin with the same polyphase index math: `kernels::cpu::FilteredLrelu::plane`.
// Unfused twin: `shaders/upfirdn2d.wgsl` launched twice (`kernels::wgpu`, the fallback when a
// layer's tiles do not fit the workgroup memory below).
//
// One workgroup computes a WG_X x WG_Y tile of outputs of one plane (plane = n * channels + c):
//   1. s_in  <- the input tile the mid tile needs, plus bias (0 outside the input: padding and
//              crop are zeros, as in the reference, where bias is added before padding);
//   2. s_mid <- the mid (up-sampled) tile: polyphase separable FIR over s_in (the inserted zeros
//              are skipped), then clamp(gain * lrelu(v, slope), +-clamp);
//   3. out   <- the down-sampling FIR over s_mid at stride `down` (separable or full 2-D).
// Mid tile side MT = (WG - 1) * down + td; input tile side <= ceil((MT + tu - 2) / up) + 1. The
// host checks both fit MID_CAP / IN_CAP before choosing this kernel.
//
// Filters (`filt`), already flipped (true convolution -> correlation) with the gains folded in:
//   filt[0..tu] = up taps along x, filt[tu..2tu] = along y (a missing fu is [up²] x [1]);
//   filt[fd_off..]: separable (D_SEPARABLE) td x-taps then td y-taps, or full td x td row-major.
//
// Every binding is read_write although only `out` is written: CubeCL sub-allocates handles from
// shared wgpu buffers, and wgpu forbids one buffer bound both read-only and read-write.

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> bias: array<f32>;
@group(0) @binding(2) var<storage, read_write> filt: array<f32>;
@group(0) @binding(3) var<storage, read_write> params: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// Indices into `params` (kept in sync with `FusedParams` in src/kernels/wgpu.rs).
const P_CHANNELS: u32 = 0u;
const P_H: u32 = 1u;
const P_W: u32 = 2u;
const P_OH: u32 = 3u;
const P_OW: u32 = 4u;
const P_UP: u32 = 5u;
const P_DOWN: u32 = 6u;
const P_PX0: u32 = 7u;  // i32 bits: x padding before up-sampling filter (negative = crop)
const P_PY0: u32 = 8u;  // i32 bits
const P_TU: u32 = 9u;
const P_TD: u32 = 10u;
const P_DMODE: u32 = 11u;
const P_FLAGS: u32 = 12u;
const P_GAIN: u32 = 13u;  // f32 bits
const P_SLOPE: u32 = 14u; // f32 bits
const P_CLAMP: u32 = 15u; // f32 bits
const P_FD_OFF: u32 = 16u;

const D_SEPARABLE: u32 = 0u;
const FLAG_BIAS: u32 = 1u;
const FLAG_CLAMP: u32 = 4u;

const WG_X: u32 = {{ workgroup_size_x }}u;
const WG_Y: u32 = {{ workgroup_size_y }}u;
const WG_N: u32 = WG_X * WG_Y;

// Input tile (side <= IN_CAP) and mid tile (side <= MID_CAP), row-major with the tile's own width.
var<workgroup> s_in: array<f32, {{ in_cap_sq }}>;
var<workgroup> s_mid: array<f32, {{ mid_cap_sq }}>;

fn emod(a: i32, m: i32) -> i32 {
    let r = a % m;
    return select(r, r + m, r < 0);
}

// floor(a / m) for m > 0 (WGSL's `/` truncates toward zero).
fn fdiv(a: i32, m: i32) -> i32 {
    return (a - emod(a, m)) / m;
}

@compute @workgroup_size({{ workgroup_size_x }}, {{ workgroup_size_y }}, 1)
fn main(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(local_invocation_id) lid: vec3<u32>,
    @builtin(local_invocation_index) lidx: u32,
) {
    let plane = wid.z;
    let h = i32(params[P_H]);
    let w = i32(params[P_W]);
    let oh = params[P_OH];
    let ow = params[P_OW];
    let up = i32(params[P_UP]);
    let down = i32(params[P_DOWN]);
    let px0 = bitcast<i32>(params[P_PX0]);
    let py0 = bitcast<i32>(params[P_PY0]);
    let tu = i32(params[P_TU]);
    let td = i32(params[P_TD]);
    let flags = params[P_FLAGS];

    var b = 0.0;
    if ((flags & FLAG_BIAS) != 0u) {
        b = bias[plane % params[P_CHANNELS]];
    }

    // Tile origins: outputs (ox0, oy0), mid samples (mx0, my0) = o0 * down. Mid sample m reads
    // the zero-inserted input at m - p0 + k (k < tu), i.e. input j where j * up = m - p0 + k.
    let ox0 = i32(wid.x * WG_X);
    let oy0 = i32(wid.y * WG_Y);
    let mx0 = ox0 * down;
    let my0 = oy0 * down;
    let mt = (i32(WG_X) - 1) * down + td; // mid tile side (WG_X == WG_Y)
    let jx0 = fdiv(mx0 - px0, up);
    let jy0 = fdiv(my0 - py0, up);
    let it_w = fdiv(mx0 + mt - 1 - px0 + tu - 1, up) - jx0 + 1;
    let it_h = fdiv(my0 + mt - 1 - py0 + tu - 1, up) - jy0 + 1;

    // 1. Input tile (+ bias), zeros outside the input.
    let base = plane * u32(h * w);
    for (var i = i32(lidx); i < it_w * it_h; i += i32(WG_N)) {
        let jy = jy0 + i / it_w;
        let jx = jx0 + i % it_w;
        var v = 0.0;
        if (jy >= 0 && jy < h && jx >= 0 && jx < w) {
            v = x[base + u32(jy * w + jx)] + b;
        }
        s_in[i] = v;
    }
    workgroupBarrier();

    // 2. Mid tile: up-sampling FIR (polyphase, x inner then y, as the reference's two passes),
    //    then the activation.
    let gain = bitcast<f32>(params[P_GAIN]);
    let slope = bitcast<f32>(params[P_SLOPE]);
    let has_clamp = (flags & FLAG_CLAMP) != 0u;
    let c = bitcast<f32>(params[P_CLAMP]);
    for (var i = i32(lidx); i < mt * mt; i += i32(WG_N)) {
        let sy = my0 + i / mt - py0;
        let sx = mx0 + i % mt - px0;
        let kx0 = emod(-sx, up);
        let ky0 = emod(-sy, up);
        var acc = 0.0;
        for (var ky = ky0; ky < tu; ky += up) {
            let row = ((sy + ky) / up - jy0) * it_w - jx0; // exact division
            var racc = 0.0;
            for (var kx = kx0; kx < tu; kx += up) {
                racc += filt[kx] * s_in[row + (sx + kx) / up];
            }
            acc += filt[tu + ky] * racc;
        }
        acc = select(acc, acc * slope, acc < 0.0) * gain;
        if (has_clamp) {
            acc = clamp(acc, -c, c);
        }
        s_mid[i] = acc;
    }
    workgroupBarrier();

    // 3. Down-sampling FIR, one output per invocation.
    let ox = u32(ox0) + lid.x;
    let oy = u32(oy0) + lid.y;
    if (ox >= ow || oy >= oh) {
        return;
    }
    let fd = params[P_FD_OFF];
    let m0 = i32(lid.y) * down * mt + i32(lid.x) * down;
    var acc = 0.0;
    if (params[P_DMODE] == D_SEPARABLE) {
        for (var ky = 0; ky < td; ky++) {
            let row = m0 + ky * mt;
            var racc = 0.0;
            for (var kx = 0; kx < td; kx++) {
                racc += filt[fd + u32(kx)] * s_mid[row + kx];
            }
            acc += filt[fd + u32(td + ky)] * racc;
        }
    } else {
        for (var ky = 0; ky < td; ky++) {
            let row = m0 + ky * mt;
            let frow = fd + u32(ky * td);
            for (var kx = 0; kx < td; kx++) {
                acc += filt[frow + u32(kx)] * s_mid[row + kx];
            }
        }
    }
    out[plane * oh * ow + oy * ow + ox] = acc;
}
