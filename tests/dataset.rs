//! `stylescope dataset` end to end (the built binary, as a user types it) and the training-side
//! library: the loader, labels, mirroring, the sampler and the dataset summary.

mod common;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{bin, run_err, run_out, ScratchDir};
use image::{GrayAlphaImage, GrayImage, Rgb, RgbImage, Rgba, RgbaImage};
use stylescope::data::pixels::Pixels;
use stylescope::data::resize::{self, Transform};
use stylescope::data::summary::LabelSummary;
use stylescope::data::{summarize, DatasetOptions, ImageFolderDataset, InfiniteSampler};

fn dataset(source: &Path, dest: &Path, extra: &[&str]) -> Command {
    let mut c = bin();
    c.args(["dataset", "--source", source.to_str().unwrap(), "--dest", dest.to_str().unwrap()]).args(extra);
    c
}

fn rgb(w: u32, h: u32, seed: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| Rgb([(x * 4 + seed * 40) as u8, (y * 4) as u8, ((x + y) * 2 + seed) as u8]))
}

fn gray(w: u32, h: u32, seed: u32) -> GrayImage {
    GrayImage::from_fn(w, h, |x, y| image::Luma([((x * 3 + y * 5 + seed * 17) % 256) as u8]))
}

fn mkdirs(p: &Path) -> PathBuf {
    std::fs::create_dir_all(p).unwrap();
    p.to_path_buf()
}

/// The mixed source: sorted as dataset_tool.py does, its image files are
/// a_rgb.png (0), b.jpg (1), e_corrupt.png (2, unreadable), sub/c.webp (3), sub/deeper/d_rgba.png (4);
/// notes.txt is not an image.
fn mixed_source(root: &Path) -> PathBuf {
    let src = mkdirs(&root.join("src"));
    mkdirs(&src.join("sub/deeper"));
    rgb(64, 64, 0).save(src.join("a_rgb.png")).unwrap();
    rgb(64, 64, 1).save(src.join("b.jpg")).unwrap();
    rgb(64, 64, 2).save(src.join("sub/c.webp")).unwrap();
    let rgba = RgbaImage::from_fn(64, 64, |x, y| Rgba([200, (y * 4) as u8, 10, [0, 128, 255][((x + y) % 3) as usize]]));
    rgba.save(src.join("sub/deeper/d_rgba.png")).unwrap();
    std::fs::write(src.join("e_corrupt.png"), b"\x89PNG\r\n\x1a\nthis is not really a png").unwrap();
    std::fs::write(src.join("notes.txt"), b"some notes").unwrap();
    let labels = r#"{"labels": [["a_rgb.png", 0], ["b.jpg", 2], ["sub/c.webp", 1], ["sub/deeper/d_rgba.png", 3], ["e_corrupt.png", 1]]}"#;
    std::fs::write(src.join("dataset.json"), labels).unwrap();
    src
}

fn zip_entries(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut z = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut out = Vec::new();
    for i in 0..z.len() {
        let mut f = z.by_index(i).unwrap();
        assert_eq!(f.compression(), zip::CompressionMethod::Stored, "dataset_tool.py writes ZIP_STORED");
        let mut bytes = Vec::new();
        f.read_to_end(&mut bytes).unwrap();
        out.push((f.name().to_string(), bytes));
    }
    out.sort();
    out
}

fn dir_entries(root: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(dir: &Path, prefix: &str, out: &mut Vec<(String, Vec<u8>)>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = format!("{prefix}{}", e.file_name().to_string_lossy());
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), &format!("{name}/"), out);
            } else {
                out.push((name, std::fs::read(e.path()).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(root, "", &mut out);
    out.sort();
    out
}

fn decode(bytes: &[u8]) -> image::DynamicImage {
    image::load_from_memory(bytes).unwrap()
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

/// What the mixed source must convert to (names, pixels, labels), checked on zip or folder output.
fn check_mixed_output(entries: &[(String, Vec<u8>)], src: &Path) {
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    // The unreadable file keeps its number (the index is the position among the source's image files).
    assert_eq!(names, ["00000/img00000000.png", "00000/img00000001.png", "00000/img00000003.png", "00000/img00000004.png", "dataset.json"]);
    let get = |n: &str| &entries.iter().find(|(k, _)| k == n).unwrap().1;
    let a = decode(get("00000/img00000000.png"));
    assert_eq!(a.color(), image::ColorType::Rgb8);
    assert_eq!(a.to_rgb8(), rgb(64, 64, 0));
    assert_eq!(decode(get("00000/img00000001.png")).to_rgb8(), image::open(src.join("b.jpg")).unwrap().to_rgb8());
    assert_eq!(decode(get("00000/img00000003.png")).to_rgb8(), rgb(64, 64, 2), "lossless WebP");
    let d = decode(get("00000/img00000004.png"));
    assert_eq!(d.color(), image::ColorType::Rgb8, "RGBA becomes RGB");
    let d = d.to_rgb8();
    assert_eq!(d.get_pixel(0, 0).0, [255, 255, 255], "alpha 0 → white");
    assert_eq!(d.get_pixel(2, 0).0, [200, 0, 10], "alpha 255 → the colour");
    // alpha 128 over white: (c·128 + 255·127) / 255, rounded
    assert_eq!(d.get_pixel(1, 0).0, [227, 127, 132]);
    let meta = json(get("dataset.json"));
    assert_eq!(
        meta,
        serde_json::json!({"labels": [["00000/img00000000.png", 0], ["00000/img00000001.png", 2], ["00000/img00000003.png", 1], ["00000/img00000004.png", 3]]})
    );
    // Byte for byte what json.dumps writes.
    assert!(String::from_utf8_lossy(get("dataset.json")).starts_with(r#"{"labels": [["00000/img00000000.png", 0], "#));
}

#[test]
fn mixed_folder_to_zip_and_folder() {
    let t = ScratchDir::new("dataset-mixed");
    let src = mixed_source(&t);
    let out_zip = t.join("out/ds.zip");
    let (stdout, stderr) = run_out(&mut dataset(&src, &out_zip, &[]));
    assert!(stderr.contains("warning") && stderr.contains("e_corrupt.png"), "{stderr}");
    assert!(stderr.contains("notes.txt"), "{stderr}");
    assert!(!stderr.contains("dataset.json"), "{stderr}");
    assert!(stdout.contains("Wrote 4 images") && stdout.contains("Skipped 2 files"), "{stdout}");
    assert!(!t.join("out/ds.zip.tmp").exists());
    check_mixed_output(&zip_entries(&out_zip), &src);

    let out_dir = t.join("out/ds");
    run_out(&mut dataset(&src, &out_dir, &[]));
    let dir = dir_entries(&out_dir);
    check_mixed_output(&dir, &src);
    assert_eq!(dir, zip_entries(&out_zip), "folder and zip hold the same bytes");
    // A non-empty destination folder is refused, as dataset_tool.py does.
    run_err(&mut dataset(&src, &out_dir, &[]), "must be empty");
}

#[test]
fn zip_source_like_folder_source() {
    let t = ScratchDir::new("dataset-zipsrc");
    let src = mixed_source(&t);
    let src_zip = t.join("src.zip");
    {
        let mut z = zip::ZipWriter::new(std::fs::File::create(&src_zip).unwrap());
        let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        z.add_directory("sub/", opts).unwrap();
        for (name, bytes) in dir_entries(&src) {
            z.start_file(name, opts).unwrap();
            z.write_all(&bytes).unwrap();
        }
        z.finish().unwrap();
    }
    let out = t.join("out.zip");
    let (stdout, stderr) = run_out(&mut dataset(&src_zip, &out, &[]));
    assert!(stderr.contains("src.zip/e_corrupt.png"), "{stderr}");
    assert!(stdout.contains("Skipped 2 files"), "{stdout}");
    check_mixed_output(&zip_entries(&out), &src);
}

#[test]
fn grayscale_stays_one_channel() {
    let t = ScratchDir::new("dataset-gray");
    let src = mkdirs(&t.join("gray"));
    gray(32, 32, 0).save(src.join("g0.png")).unwrap();
    gray(32, 32, 1).save(src.join("g1.jpg")).unwrap();
    GrayAlphaImage::from_fn(32, 32, |x, _| image::LumaA([0, if x == 0 { 0 } else { 255 }])).save(src.join("g2.png")).unwrap();
    let out = t.join("gray.zip");
    let (stdout, _) = run_out(&mut dataset(&src, &out, &[]));
    assert!(stdout.contains("grayscale") && stdout.contains("no labels"), "{stdout}");
    let e = zip_entries(&out);
    let img = decode(&e[0].1);
    assert_eq!(img.color(), image::ColorType::L8);
    assert_eq!(img.to_luma8(), gray(32, 32, 0));
    let la = decode(&e[2].1).to_luma8();
    assert_eq!((la.get_pixel(0, 0).0, la.get_pixel(1, 0).0), ([255], [0]), "grayscale+alpha onto white");
    assert_eq!(json(&e[3].1), serde_json::json!({"labels": null}));
    // Grayscale and colour cannot be mixed (the official check on channels).
    rgb(32, 32, 0).save(src.join("h_rgb.png")).unwrap();
    run_err(&mut dataset(&src, &t.join("mixed.zip"), &[]), "h_rgb.png");
    assert!(!t.join("mixed.zip").exists() && !t.join("mixed.zip.tmp").exists(), "nothing left behind on failure");
    // --rgb converts such a source: every image RGB, grayscale replicated.
    run_out(&mut dataset(&src, &t.join("rgb.zip"), &["--rgb"]));
    let e = zip_entries(&t.join("rgb.zip"));
    let first = decode(&e[0].1);
    assert_eq!(first.color(), image::ColorType::Rgb8);
    assert!(first.to_rgb8().pixels().zip(gray(32, 32, 0).pixels()).all(|(c, g)| c.0 == [g.0[0]; 3]));
    assert_eq!(decode(&e[3].1).to_rgb8(), rgb(32, 32, 0));
}

#[test]
fn resolution_and_transforms() {
    let t = ScratchDir::new("dataset-xform");
    let src = mkdirs(&t.join("src"));
    let imgs = [("narrow.png", rgb(40, 64, 3)), ("tall.png", rgb(64, 96, 4)), ("wide.png", rgb(96, 64, 5))];
    for (n, im) in &imgs {
        im.save(src.join(n)).unwrap();
    }
    let pixels = |im: &RgbImage| Pixels::new(im.width(), im.height(), 3, im.as_raw().clone());

    // Plain --resolution: each image stretched to 32x32 with Pillow's Lanczos.
    let out = t.join("plain.zip");
    run_out(&mut dataset(&src, &out, &["--resolution", "32x32"]));
    let e = zip_entries(&out);
    assert_eq!(e.len(), 4);
    for (i, (_, im)) in imgs.iter().enumerate() {
        let want = resize::resize_lanczos(&pixels(im), 32, 32);
        assert_eq!(decode(&e[i].1).to_rgb8().into_raw(), want.data);
    }

    // center-crop: the centred square, resized.
    let out = t.join("crop.zip");
    run_out(&mut dataset(&src, &out, &["--transform", "center-crop", "--resolution", "32,32"]));
    let e = zip_entries(&out);
    let tall = decode(&e[1].1).to_rgb8();
    assert_eq!(tall.dimensions(), (32, 32));
    assert_eq!(tall.into_raw(), resize::resize_lanczos(&pixels(&imgs[1].1).crop(0, 16, 64, 80), 32, 32).data);

    // center-crop-wide 64x32: letterboxed 64x64; the 40-wide image is dropped (and its number skipped).
    let out = t.join("wide.zip");
    let (stdout, stderr) = run_out(&mut dataset(&src, &out, &["--transform", "center-crop-wide", "--resolution", "64x32"]));
    assert!(stderr.contains("narrow.png") && stderr.contains("center-crop-wide"), "{stderr}");
    assert!(stdout.contains("Wrote 2 images") && stdout.contains("Skipped 1 file"), "{stdout}");
    let e = zip_entries(&out);
    let names: Vec<&str> = e.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["00000/img00000001.png", "00000/img00000002.png", "dataset.json"]);
    let wide = decode(&e[1].1).to_rgb8();
    assert_eq!(wide.dimensions(), (64, 64));
    assert_eq!(wide.get_pixel(10, 15).0, [0, 0, 0]);
    assert_eq!(wide.get_pixel(10, 48).0, [0, 0, 0]);
    assert_eq!(wide.into_raw(), resize::apply(pixels(&imgs[2].1), Some(Transform::CenterCropWide), Some((64, 32))).unwrap().data);

    // The transform needs a resolution; the output must be a square power of two.
    run_err(&mut dataset(&src, &t.join("x.zip"), &["--transform", "center-crop"]), "--resolution");
    run_err(&mut dataset(&src, &t.join("x.zip"), &["--resolution", "48x48"]), "power of two");
    run_err(&mut dataset(&src, &t.join("x.zip"), &["--resolution", "64x32"]), "square");
    run_err(&mut dataset(&src, &t.join("x.zip"), &["--resolution", "big"]), "WxH");
}

#[test]
fn max_images_and_bad_sources() {
    let t = ScratchDir::new("dataset-bad");
    let src = mixed_source(&t);
    let out = t.join("two.zip");
    run_out(&mut dataset(&src, &out, &["--max-images", "2"]));
    let e = zip_entries(&out);
    assert_eq!(e.len(), 3);
    assert_eq!(json(&e[2].1)["labels"].as_array().unwrap().len(), 2);

    let empty = mkdirs(&t.join("empty"));
    run_err(&mut dataset(&empty, &t.join("e.zip"), &[]), "empty");
    std::fs::write(empty.join("readme.md"), b"x").unwrap();
    run_err(&mut dataset(&empty, &t.join("e.zip"), &[]), "empty");
    run_err(&mut dataset(&t.join("missing"), &t.join("e.zip"), &[]), "missing");
    run_err(&mut dataset(&src.join("notes.txt"), &t.join("e.zip"), &[]), "notes.txt");

    // Only unreadable images.
    let junk = mkdirs(&t.join("junk"));
    std::fs::write(junk.join("x.png"), b"nope").unwrap();
    run_err(&mut dataset(&junk, &t.join("e.zip"), &[]), "junk");

    // Mixed sizes without --resolution: the odd file is named.
    let sizes = mkdirs(&t.join("sizes"));
    rgb(64, 64, 0).save(sizes.join("a.png")).unwrap();
    rgb(32, 32, 0).save(sizes.join("b.png")).unwrap();
    run_err(&mut dataset(&sizes, &t.join("e.zip"), &[]), "b.png");
    run_out(&mut dataset(&sizes, &t.join("ok.zip"), &["--resolution", "32x32"]));

    // Unwritable destinations are named.
    let file = t.join("file.txt");
    std::fs::write(&file, b"x").unwrap();
    run_err(&mut dataset(&sizes, &file.join("out.zip"), &["--resolution", "32x32"]), "file.txt/out.zip");
    run_err(&mut dataset(&sizes, &file.join("outdir"), &["--resolution", "32x32"]), "file.txt/outdir");
    run_err(&mut dataset(&sizes, &file, &["--resolution", "32x32"]), "file.txt");
}

/// The official layout written by the tool, read back by the training loader.
#[test]
fn loader_reads_the_tools_output() {
    let t = ScratchDir::new("dataset-loader");
    let src = mixed_source(&t);
    let zip = t.join("ds.zip");
    let dir = t.join("ds");
    run_out(&mut dataset(&src, &zip, &[]));
    run_out(&mut dataset(&src, &dir, &[]));
    let chw = |im: &RgbImage, flip: bool| Pixels::new(im.width(), im.height(), 3, im.as_raw().clone()).to_chw(flip);

    for path in [&zip, &dir] {
        let ds = ImageFolderDataset::open(path, &DatasetOptions::default()).unwrap();
        assert_eq!((ds.len(), ds.resolution(), ds.num_channels(), ds.image_shape()), (4, 64, 3, [3, 64, 64]));
        assert!(!ds.has_labels(), "use_labels is off by default, as in the official Dataset");
        assert_eq!(ds.label(0).unwrap(), Vec::<f32>::new());
        assert_eq!(ds.image(0).unwrap(), chw(&rgb(64, 64, 0), false));
        assert_eq!(ds.name(), "ds");

        let ds = ImageFolderDataset::open(path, &DatasetOptions { use_labels: true, xflip: true, ..Default::default() }).unwrap();
        assert_eq!(ds.len(), 8);
        assert!(ds.has_labels() && ds.has_onehot_labels());
        assert_eq!(ds.label_dim(), 4, "classes 0..=3");
        assert_eq!(ds.label(1).unwrap(), [0.0, 0.0, 1.0, 0.0]);
        assert_eq!(ds.label(5).unwrap(), [0.0, 0.0, 1.0, 0.0], "the mirrored copy keeps the label");
        assert_eq!(ds.details(6), Some((2, true)));
        assert_eq!(ds.image(4).unwrap(), chw(&rgb(64, 64, 0), true), "item n + i is item i mirrored");
        assert_eq!(ds.item(2).unwrap().0, chw(&rgb(64, 64, 2), false));
        assert!(ds.image(8).unwrap_err().to_string().contains("out of range"));

        // max_size: RandomState(0).shuffle(arange(4)), first 2, sorted → raw images [2, 3] (numpy).
        let ds = ImageFolderDataset::open(path, &DatasetOptions { max_size: Some(2), xflip: true, ..Default::default() }).unwrap();
        assert_eq!(ds.len(), 4);
        assert_eq!((0..4).map(|i| ds.details(i).unwrap()).collect::<Vec<_>>(), [(2, false), (3, false), (2, true), (3, true)]);
        assert!(ImageFolderDataset::open(path, &DatasetOptions { resolution: Some(32), ..Default::default() }).is_err());
    }
}

#[test]
fn loader_reads_plain_folders_and_refuses_odd_images() {
    let t = ScratchDir::new("dataset-plain");
    let src = mkdirs(&t.join("plain"));
    mkdirs(&src.join("sub"));
    for (i, n) in ["b.png", "a.png", "sub/c.png"].iter().enumerate() {
        gray(16, 16, i as u32).save(src.join(n)).unwrap();
    }
    std::fs::write(src.join("notes.txt"), b"ignored").unwrap();
    let ds = ImageFolderDataset::open(&src, &DatasetOptions { use_labels: true, ..Default::default() }).unwrap();
    assert_eq!(ds.image_names(), ["a.png", "b.png", "sub/c.png"]);
    assert_eq!((ds.len(), ds.num_channels(), ds.label_dim()), (3, 1, 0));
    assert_eq!(ds.image(0).unwrap(), gray(16, 16, 1).into_raw());

    // Float vector labels are used as they are.
    std::fs::write(src.join("dataset.json"), r#"{"labels": [["a.png", [0.5, 1]], ["b.png", [2, 3]], ["sub/c.png", [-1, 0.25]]]}"#).unwrap();
    let ds = ImageFolderDataset::open(&src, &DatasetOptions { use_labels: true, ..Default::default() }).unwrap();
    assert!(ds.has_labels() && !ds.has_onehot_labels());
    assert_eq!(ds.label(2).unwrap(), [-1.0, 0.25]);
    // A missing label names dataset.json and the image.
    std::fs::write(src.join("dataset.json"), r#"{"labels": [["a.png", 1]]}"#).unwrap();
    let err = ImageFolderDataset::open(&src, &DatasetOptions { use_labels: true, ..Default::default() }).err().unwrap().to_string();
    assert!(err.contains("dataset.json") && err.contains("b.png"), "{err}");

    // An image of another size is refused, naming it.
    gray(8, 8, 0).save(src.join("sub/d.png")).unwrap();
    let err = ImageFolderDataset::open(&src, &DatasetOptions::default()).err().unwrap().to_string();
    assert!(err.contains("sub/d.png") && err.contains("8x8"), "{err}");
    let err = ImageFolderDataset::open(&t.join("nothing"), &DatasetOptions::default()).err().unwrap().to_string();
    assert!(err.contains("nothing"), "{err}");
    let err = ImageFolderDataset::open(&mkdirs(&t.join("void")), &DatasetOptions::default()).err().unwrap().to_string();
    assert!(err.contains("void") && err.contains("no images"), "{err}");
}

#[test]
fn summary_before_training() {
    let t = ScratchDir::new("dataset-summary");
    let src = mixed_source(&t);
    let s = summarize(&src).unwrap();
    assert_eq!(s.images, 4);
    assert_eq!(s.shapes.len(), 1);
    assert_eq!((s.shapes[0].width, s.shapes[0].channels, s.shapes[0].count), (64, 3, 4));
    let skipped: Vec<&str> = s.skipped.iter().map(|k| k.file.as_str()).collect();
    assert!(skipped.iter().any(|f| f.ends_with("e_corrupt.png")) && skipped.iter().any(|f| f.ends_with("notes.txt")), "{skipped:?}");
    assert!(!s.ready(), "the unreadable image keeps the loader from opening it");
    assert!(matches!(s.labels, LabelSummary::Classes { classes: 4 }), "{:?}", s.labels);
    assert!(s.to_string().contains("e_corrupt.png"));

    let out = t.join("ds.zip");
    run_out(&mut dataset(&src, &out, &[]));
    let s = summarize(&out).unwrap();
    assert!(s.ready(), "{s}");
    assert_eq!(s.resolution(), Some(64));
    assert!(s.skipped.is_empty(), "{s}");
    assert!(summarize(&t.join("missing.zip")).is_err());
}

#[test]
fn sampler_order_is_numpys() {
    // The official InfiniteSampler(dataset of 10, seed=0), first 12 indices, printed by numpy 2.4.6.
    let got: Vec<usize> = InfiniteSampler::new(10, 0).take(12).collect();
    assert_eq!(got, [2, 8, 4, 9, 1, 6, 2, 3, 0, 9, 7, 8]);
}
