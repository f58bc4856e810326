// upfirdn2d on burn-wgpu: up-sample by zero insertion, pad/crop, FIR-filter (true convolution),
// down-sample -- one output sample per invocation, polyphase (the inserted zeros are skipped).
//
// Reference twin: `kernels::reference::upfirdn2d` (zero_insert -> crop_negative -> pad -> conv2d
// with the flipped, gain-scaled taps -> keep every `down`-th sample). CPU twin of the index math:
// `upsample_line` / `upsample_cols` in `kernels::cpu`.
//
// Two optional stages make the same kernel the two halves of `filtered_lrelu`
// (`kernels::reference::filtered_lrelu`):
//   - prologue (FLAG_BIAS): `x + bias[channel]` before zero insertion (the reference's first
//     `bias_act(x, b, Linear)`); the inserted zeros and the padding stay zero, as there.
//   - epilogue (FLAG_ACT, FLAG_CLAMP): `clamp(gain * lrelu(v, slope), -clamp, clamp)` (the
//     reference's second `bias_act(x, None, LeakyRelu(slope), gain, clamp)`).
//
// The host (`kernels::wgpu`) has already flipped the taps and folded the filter gain into them,
// so `filt` is a correlation kernel:
//   separable (MODE_SEPARABLE): filt[0..tw] = x taps, filt[tw..tw+th] = y taps;
//   full      (MODE_FULL):      filt[ky * tw + kx], th x tw row-major.
// A missing filter is sent as the separable 1-tap filter [gain] x [1].
//
// Layout: x [planes, h, w] and out [planes, oh, ow], contiguous f32; plane = n * channels + c.
// Dispatch: (ceil(ow / WG_X), ceil(oh / WG_Y), planes).
//
// Every binding is read_write although only `out` is written: CubeCL sub-allocates handles from
// shared wgpu buffers, and wgpu forbids one buffer bound both read-only and read-write in a
// dispatch.

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> bias: array<f32>;
@group(0) @binding(2) var<storage, read_write> filt: array<f32>;
@group(0) @binding(3) var<storage, read_write> params: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;

// Indices into `params` (kept in sync with `Params` in src/kernels/wgpu.rs).
const P_CHANNELS: u32 = 0u;
const P_H: u32 = 1u;
const P_W: u32 = 2u;
const P_OH: u32 = 3u;
const P_OW: u32 = 4u;
const P_UP: u32 = 5u;
const P_DOWN: u32 = 6u;
const P_PX0: u32 = 7u;  // i32 bits: x padding before (negative = crop)
const P_PY0: u32 = 8u;  // i32 bits
const P_TW: u32 = 9u;
const P_TH: u32 = 10u;
const P_MODE: u32 = 11u;
const P_FLAGS: u32 = 12u;
const P_GAIN: u32 = 13u;  // f32 bits
const P_SLOPE: u32 = 14u; // f32 bits
const P_CLAMP: u32 = 15u; // f32 bits

const MODE_SEPARABLE: u32 = 0u;
const MODE_FULL: u32 = 1u;

const FLAG_BIAS: u32 = 1u;
const FLAG_ACT: u32 = 2u;
const FLAG_CLAMP: u32 = 4u;

// Euclidean remainder (WGSL's `%` takes the sign of the dividend).
fn emod(a: i32, m: i32) -> i32 {
    let r = a % m;
    return select(r, r + m, r < 0);
}

@compute @workgroup_size({{ workgroup_size_x }}, {{ workgroup_size_y }}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let ow = params[P_OW];
    let oh = params[P_OH];
    if (gid.x >= ow || gid.y >= oh) {
        return;
    }
    let plane = gid.z;
    let h = i32(params[P_H]);
    let w = i32(params[P_W]);
    let up = i32(params[P_UP]);
    let down = i32(params[P_DOWN]);
    let tw = i32(params[P_TW]);
    let th = i32(params[P_TH]);
    let flags = params[P_FLAGS];

    var b = 0.0;
    if ((flags & FLAG_BIAS) != 0u) {
        b = bias[plane % params[P_CHANNELS]];
    }

    // Tap k of output o reads the zero-inserted, padded signal at o * down + k, i.e. the
    // zero-inserted input at s + k; only s + k = j * up (0 <= j < len) is non-zero.
    let sx = i32(gid.x) * down - bitcast<i32>(params[P_PX0]);
    let sy = i32(gid.y) * down - bitcast<i32>(params[P_PY0]);
    let kx0 = emod(-sx, up);
    let ky0 = emod(-sy, up);
    let base = plane * u32(h * w);

    var acc = 0.0;
    if (params[P_MODE] == MODE_SEPARABLE) {
        for (var ky = ky0; ky < th; ky += up) {
            let jy = (sy + ky) / up; // exact: sy + ky is a multiple of up
            if (jy < 0) { continue; }
            if (jy >= h) { break; }
            let row = base + u32(jy * w);
            var racc = 0.0;
            for (var kx = kx0; kx < tw; kx += up) {
                let jx = (sx + kx) / up;
                if (jx < 0) { continue; }
                if (jx >= w) { break; }
                racc += filt[kx] * (x[row + u32(jx)] + b);
            }
            acc += filt[tw + ky] * racc;
        }
    } else {
        for (var ky = ky0; ky < th; ky += up) {
            let jy = (sy + ky) / up;
            if (jy < 0) { continue; }
            if (jy >= h) { break; }
            let row = base + u32(jy * w);
            let frow = ky * tw;
            for (var kx = kx0; kx < tw; kx += up) {
                let jx = (sx + kx) / up;
                if (jx < 0) { continue; }
                if (jx >= w) { break; }
                acc += filt[frow + kx] * (x[row + u32(jx)] + b);
            }
        }
    }

    if ((flags & FLAG_ACT) != 0u) {
        acc = select(acc, acc * bitcast<f32>(params[P_SLOPE]), acc < 0.0);
        acc = acc * bitcast<f32>(params[P_GAIN]);
    }
    if ((flags & FLAG_CLAMP) != 0u) {
        let c = bitcast<f32>(params[P_CLAMP]);
        acc = clamp(acc, -c, c);
    }
    out[plane * oh * ow + gid.y * ow + gid.x] = acc;
}
