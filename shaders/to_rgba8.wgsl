// The window's pixel conversion on burn-wgpu: one to three channels of a layer (or the network
// output) -> packed RGBA8 rows whose pitch is a multiple of 256 bytes, ready for
// `copy_buffer_to_texture` into an `Rgba8Unorm` texture, so the image never visits the CPU.
//
// Host twin: `render::pixels::to_rgba` (per channel `v * scale`, then the official
// `(v * 127.5 + 128).clamp(0, 255).to(uint8)`, a truncating cast; one channel is shown as grey;
// alpha is 255).
//
// Layout: x [n, h, w] contiguous f32 (n = 1 or 3: the shown channels); scale[n] (the view's gain,
// times 1 / max|x_c| when normalising); out [h, pitch] u32, each texel r | g << 8 | b << 16 |
// a << 24 (byte order R, G, B, A). Dispatch: (ceil(w / WG_X), ceil(h / WG_Y), 1).
//
// Every binding is read_write: CubeCL sub-allocates handles from shared wgpu buffers, and wgpu
// forbids one buffer bound both read-only and read-write in a dispatch.

@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> scale: array<f32>;
@group(0) @binding(2) var<storage, read_write> params: array<u32>;
@group(0) @binding(3) var<storage, read_write> out: array<u32>;

// Indices into `params` (kept in sync with `to_rgba8_wgpu` in src/kernels/wgpu.rs).
const P_N: u32 = 0u;
const P_H: u32 = 1u;
const P_W: u32 = 2u;
const P_PITCH: u32 = 3u; // texels per output row

fn quantize(v: f32) -> u32 {
    return u32(clamp(v * 127.5 + 128.0, 0.0, 255.0));
}

@compute @workgroup_size({{ workgroup_size_x }}, {{ workgroup_size_y }}, 1)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let n = params[P_N];
    let h = params[P_H];
    let w = params[P_W];
    if (gid.x >= w || gid.y >= h) {
        return;
    }
    let plane = h * w;
    let p = gid.y * w + gid.x;
    let r = quantize(x[p] * scale[0]);
    var g = r;
    var b = r;
    if (n == 3u) {
        g = quantize(x[plane + p] * scale[1]);
        b = quantize(x[2u * plane + p] * scale[2]);
    }
    out[gid.y * params[P_PITCH] + gid.x] = r | (g << 8u) | (b << 16u) | (255u << 24u);
}
