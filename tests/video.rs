//! `stylescope video` (gen_video.py): frame counts, keyframes byte-identical to `stylescope gen`
//! of their seed, the grid layout and numpy's seed shuffle, GIF frames and delays, an MP4 decoded
//! back (frame count, size, timestamps, PSNR against the PNG frames), and one-line errors for
//! formats and layouts it cannot make.

mod common;

use std::path::Path;

use common::*;

fn gen_png(tmp: &Path, net: &Path, seed: u32) -> image::RgbImage {
    let dir = tmp.join(format!("gen{seed}"));
    run_out(bin().args(["gen", "--network"]).arg(net).args(["--seeds", &seed.to_string(), "--outdir"]).arg(&dir));
    image::open(dir.join(format!("seed{seed:04}.png"))).unwrap().to_rgb8()
}

fn frame(dir: &Path, k: usize) -> image::RgbImage {
    image::open(dir.join(format!("frame{k:06}.png"))).unwrap().to_rgb8()
}

#[test]
fn keyframes_equal_gen_and_the_grid_follows_gen_video() {
    let tmp = ScratchDir::new("video");
    let net = fixtures().join("sg2_64.pkl");
    let out = tmp.join("frames");
    run_out(bin().args(["video", "--network"]).arg(&net).args(["--seeds", "3-6", "--w-frames", "5", "--output"]).arg(&out));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 4 * 5);
    for (k, seed) in [3u32, 4, 5, 6].iter().enumerate() {
        assert_eq!(frame(&out, k * 5), gen_png(&tmp, &net, *seed), "keyframe {k} is seed {seed}");
    }
    assert_ne!(frame(&out, 1), frame(&out, 0), "frames between keyframes move");

    // A 2x1 grid of 8 seeds shuffled with seed 5: numpy gives [17 12 14 11 10 15 16 13] for
    // 10..17, so the left cell starts at 17 and the right one at 10 (keyframes 4 per cell).
    let grid = tmp.join("grid");
    run_out(bin().args(["video", "--network"]).arg(&net).args(["--seeds", "10-17", "--grid", "2x1", "--shuffle-seed", "5", "--w-frames", "2", "--output"]).arg(&grid));
    let f0 = frame(&grid, 0);
    assert_eq!((f0.width(), f0.height()), (128, 64));
    let left = image::imageops::crop_imm(&f0, 0, 0, 64, 64).to_image();
    let right = image::imageops::crop_imm(&f0, 64, 0, 64, 64).to_image();
    assert_eq!(left, gen_png(&tmp, &net, 17));
    assert_eq!(right, gen_png(&tmp, &net, 10));
}

#[test]
fn gif_has_every_frame_with_its_delay_and_errors_are_clear() {
    let tmp = ScratchDir::new("video-gif");
    let net = fixtures().join("sg3t_64.pkl");
    for (fps, delay) in [("60", 2u16), ("25", 4)] {
        let out = tmp.join(format!("v{fps}.gif"));
        run_out(bin().args(["video", "--network"]).arg(&net).args(["--seeds", "0-3", "--w-frames", "3", "--fps", fps, "--output"]).arg(&out));
        let mut opts = gif::DecodeOptions::new();
        opts.set_color_output(gif::ColorOutput::RGBA);
        let mut dec = opts.read_info(std::fs::File::open(&out).unwrap()).unwrap();
        assert_eq!((dec.width(), dec.height()), (64, 64));
        let mut n = 0;
        while let Some(f) = dec.read_next_frame().unwrap() {
            assert_eq!(f.delay, delay);
            n += 1;
        }
        assert_eq!(n, 12);
        assert!(!tmp.join(format!(".v{fps}.gif.partial")).exists());
    }
    run_err(bin().args(["video", "--network"]).arg(&net).args(["--seeds", "0-3", "--output"]).arg(tmp.join("a.avi")), "unknown video format '.avi'");
    run_err(bin().args(["video", "--network"]).arg(&net).args(["--seeds", "0-2", "--grid", "2x1", "--output"]).arg(tmp.join("b.gif")), "do not fill a 2x1 grid");
    run_err(bin().args(["video", "--network"]).arg(&net).args(["--seeds", "0-3", "--grid", "2by1", "--output"]).arg(tmp.join("c.gif")), "expected WxH");
}

/// The boxes of an MP4 a test needs: walks nested boxes and returns each `(type, payload)`.
fn boxes(data: &[u8]) -> Vec<(String, Vec<u8>)> {
    const CONTAINERS: [&str; 6] = ["moov", "trak", "mdia", "minf", "stbl", "stsd"];
    let mut out = Vec::new();
    let mut i = 0;
    while i + 8 <= data.len() {
        let size = u32::from_be_bytes(data[i..i + 4].try_into().unwrap()) as usize;
        let kind = String::from_utf8_lossy(&data[i + 4..i + 8]).into_owned();
        assert!(size >= 8 && i + size <= data.len(), "bad box {kind} at {i}");
        let payload = &data[i + 8..i + size];
        if CONTAINERS.contains(&kind.as_str()) {
            // stsd: version/flags + entry count before its entries; avc1: 78 bytes of fields.
            let inner = if kind == "stsd" { &payload[8..] } else { payload };
            out.extend(boxes(inner));
        } else if kind == "avc1" {
            out.extend(boxes(&payload[78..]));
        }
        out.push((kind, payload.to_vec()));
        i += size;
    }
    out
}

fn be32(b: &[u8], at: usize) -> usize {
    u32::from_be_bytes(b[at..at + 4].try_into().unwrap()) as usize
}

/// Decodes every frame of an MP4 written by `stylescope video` with openh264 → RGB frames,
/// (width, height), the media timescale and the sample durations.
fn decode_mp4(path: &Path) -> (Vec<Vec<u8>>, (usize, usize), usize, Vec<usize>) {
    let data = std::fs::read(path).unwrap();
    let all = boxes(&data);
    let get = |k: &str| all.iter().find(|(t, _)| t == k).unwrap_or_else(|| panic!("no {k} box")).1.clone();
    let stsz = get("stsz");
    let count = be32(&stsz, 8);
    let sizes: Vec<usize> = if be32(&stsz, 4) != 0 { vec![be32(&stsz, 4); count] } else { (0..count).map(|i| be32(&stsz, 12 + 4 * i)).collect() };
    let stco = get("stco");
    let chunks = be32(&stco, 4);
    let offsets: Vec<usize> = (0..chunks).map(|i| be32(&stco, 8 + 4 * i)).collect();
    let stsc = get("stsc");
    let runs: Vec<(usize, usize)> = (0..be32(&stsc, 4)).map(|i| (be32(&stsc, 8 + 12 * i), be32(&stsc, 12 + 12 * i))).collect();
    // Sample positions from the chunk table.
    let mut positions = Vec::new();
    let mut sample = 0;
    for (c, &off) in offsets.iter().enumerate() {
        let per = runs.iter().rev().find(|(first, _)| *first <= c + 1).unwrap().1;
        let mut at = off;
        for _ in 0..per {
            if sample < count {
                positions.push(at);
                at += sizes[sample];
                sample += 1;
            }
        }
    }
    assert_eq!(positions.len(), count);
    // avcC: SPS and PPS, each with a 2-byte length.
    let avcc = get("avcC");
    let sps_len = u16::from_be_bytes([avcc[6], avcc[7]]) as usize;
    let sps = avcc[8..8 + sps_len].to_vec();
    let pps_at = 8 + sps_len + 1;
    let pps_len = u16::from_be_bytes([avcc[pps_at], avcc[pps_at + 1]]) as usize;
    let pps = avcc[pps_at + 2..pps_at + 2 + pps_len].to_vec();
    let mdhd = get("mdhd");
    let timescale = be32(&mdhd, 12);
    let stts = get("stts");
    let mut deltas = Vec::new();
    for i in 0..be32(&stts, 4) {
        deltas.extend(std::iter::repeat_n(be32(&stts, 12 + 8 * i), be32(&stts, 8 + 8 * i)));
    }
    let mut dec = openh264::decoder::Decoder::new().unwrap();
    let mut frames = Vec::new();
    let mut dims = (0, 0);
    for (i, (&pos, &size)) in positions.iter().zip(&sizes).enumerate() {
        let mut annexb = Vec::new();
        if i == 0 {
            for nal in [&sps, &pps] {
                annexb.extend([0, 0, 0, 1]);
                annexb.extend(nal.iter());
            }
        }
        let mut j = pos;
        while j < pos + size {
            let n = be32(&data, j);
            annexb.extend([0, 0, 0, 1]);
            annexb.extend(&data[j + 4..j + 4 + n]);
            j += 4 + n;
        }
        if let Some(yuv) = dec.decode(&annexb).unwrap() {
            use openh264::formats::YUVSource;
            dims = yuv.dimensions();
            let mut rgb = vec![0u8; dims.0 * dims.1 * 3];
            yuv.write_rgb8(&mut rgb);
            frames.push(rgb);
        }
    }
    (frames, dims, timescale, deltas)
}

#[test]
fn mp4_decodes_back_to_the_frames() {
    let tmp = ScratchDir::new("video-mp4");
    let net = fixtures().join("sg3t_64.pkl");
    let args = ["--seeds", "0-3", "--w-frames", "4"];
    let mp4 = tmp.join("v.mp4");
    let pngs = tmp.join("frames");
    run_out(bin().args(["video", "--network"]).arg(&net).args(args).arg("--output").arg(&mp4));
    run_out(bin().args(["video", "--network"]).arg(&net).args(args).arg("--output").arg(&pngs));
    assert!(!tmp.join(".v.mp4.partial").exists());
    // Odd sizes: yuv420 needs even ones; the frame is padded by its last row and column.
    let odd = tmp.join("odd.mp4");
    run_out(bin().args(["video", "--network"]).arg(&net).args(["--seeds", "0-3", "--w-frames", "1", "--size", "99x51", "--output"]).arg(&odd));
    let (odd_frames, odd_dims, _, _) = decode_mp4(&odd);
    assert_eq!((odd_frames.len(), odd_dims), (4, (100, 52)));
    let (frames, dims, timescale, deltas) = decode_mp4(&mp4);
    assert_eq!(frames.len(), 16);
    assert_eq!(dims, (64, 64));
    assert_eq!(deltas.len(), 16);
    assert!(deltas.iter().all(|&d| (d as f64 / timescale as f64 - 1.0 / 60.0).abs() < 1e-3), "{deltas:?} at {timescale}");
    for (k, rgb) in frames.iter().enumerate() {
        let want = frame(&pngs, k);
        let mse: f64 = rgb.iter().zip(want.as_raw()).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum::<f64>() / rgb.len() as f64;
        let psnr = 10.0 * (255.0f64 * 255.0 / mse.max(1e-12)).log10();
        assert!(psnr >= 40.0, "frame {k}: {psnr:.1} dB");
    }
}

/// A keyframe timeline: keyframes on whole seeds are byte-identical to `stylescope gen` with the
/// same psi, translation and rotation; a slerp segment moves through z; a bad field names its line.
#[test]
fn timeline_keyframes_equal_gen() {
    let tmp = ScratchDir::new("video-timeline");
    let net = fixtures().join("sg3t_64.pkl");
    let tl = tmp.join("t.json");
    std::fs::write(
        &tl,
        r#"{"keyframes": [
            {"latent": {"x": 3, "psi": 0.7, "translate": [0.25, 0.0]}, "duration": 0.2, "easing": "cubic"},
            {"latent": {"x": 5, "psi": 1.0, "rotate_turns": 0.125}, "duration": 0.2, "easing": "slerp"},
            {"latent": {"x": 9, "psi": 1.0}}
        ]}"#,
    )
    .unwrap();
    let out = tmp.join("frames");
    run_out(bin().args(["video", "--network"]).arg(&net).arg("--timeline").arg(&tl).args(["--fps", "10", "--output"]).arg(&out));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 5, "0.4 s at 10 fps and the last keyframe");
    let gen_with = |seed: &str, extra: &[&str], name: &str| {
        let dir = tmp.join(name);
        run_out(bin().args(["gen", "--network"]).arg(&net).args(["--seeds", seed]).args(extra).arg("--outdir").arg(&dir));
        image::open(dir.join(format!("seed{:04}.png", seed.parse::<u32>().unwrap()))).unwrap().to_rgb8()
    };
    assert_eq!(frame(&out, 0), gen_with("3", &["--trunc", "0.7", "--translate", "0.25,0"], "a"));
    assert_eq!(frame(&out, 2), gen_with("5", &["--rotate", "45"], "b"));
    assert_eq!(frame(&out, 4), gen_with("9", &[], "c"));
    assert_ne!(frame(&out, 3), frame(&out, 2));
    std::fs::write(&tl, "{\"keyframes\": [\n  {\"latent\": {\"x\": 1}, \"easing\": \"bounce\"}\n]}").unwrap();
    run_err(bin().args(["video", "--network"]).arg(&net).arg("--timeline").arg(&tl).arg("--output").arg(tmp.join("x.gif")), "t.json: line 2");
    // A StyleGAN2 network cannot rotate; an unwritable output is named; nothing is left behind.
    std::fs::write(&tl, r#"{"keyframes": [{"latent": {"x": 1}}, {"latent": {"x": 2, "rotate_turns": 0.1}}]}"#).unwrap();
    run_err(bin().args(["video", "--network"]).arg(fixtures().join("sg2_64.pkl")).arg("--timeline").arg(&tl).arg("--output").arg(tmp.join("y.mp4")), "keyframe 1 translates or rotates, but a StyleGAN2");
    run_err(bin().args(["video", "--network"]).arg(&net).args(["--seeds", "0-3", "--output", "/nonexistent-dir/v.mp4"]), "/nonexistent-dir/");
    assert!(!tmp.join("y.mp4").exists() && !tmp.join(".y.mp4.partial").exists());
}
