//! StyleGAN2 and StyleGAN2-ADA TensorFlow networks onto the official PyTorch names, as the
//! official `legacy.py` (`convert_tf_generator`, `convert_tf_discriminator`) maps them: dense
//! weights transposed, conv weights `[kh, kw, in, out]` → `[out, in, kh, kw]`, the up-sampling
//! convolutions' kernels flipped, `mod_bias + 1`, `dlatent_avg` → `w_avg`, the stored noise maps
//! → `noise_const`, conditioning embeddings. Where `legacy.py` leans on defaults the stored
//! variables decide instead (mapping width, number of layers, `cmap_dim`), and the
//! discriminator's minibatch-stddev group keeps TF's default of 4.

use std::collections::BTreeMap;

use serde_json::json;

use super::{check_common, conv_weight, dense_weight, flip_spatial, Converted, TfFormat, TfNetwork};
use crate::weights::HostTensor;

/// The `[4, 4]` `resample_filter` buffer of `resample_kernel` (`outer(k, k) / sum²`).
fn resample_filter(net: &TfNetwork) -> Result<HostTensor, String> {
    let k: Vec<f64> = match net.kwarg("resample_kernel") {
        None => vec![1.0, 3.0, 3.0, 1.0],
        Some(v) => v
            .as_array()
            .map(|a| a.iter().filter_map(serde_json::Value::as_f64).collect())
            .ok_or_else(|| net.fail("resample_kernel is not a list"))?,
    };
    if k.len() != 4 {
        return Err(net.fail(format!("resample_kernel {k:?} (only 4-tap kernels such as [1,3,3,1] are supported)")));
    }
    let sum: f64 = k.iter().sum();
    let data = k.iter().flat_map(|a| k.iter().map(move |b| (a * b / (sum * sum)) as f32)).collect();
    Ok(HostTensor { shape: vec![4, 4], data })
}

/// Number of consecutive `{prefix}{i}/weight` variables.
fn count_layers(net: &TfNetwork, prefix: &str) -> usize {
    (0..).take_while(|i| net.vars.contains_key(&format!("{prefix}{i}/weight"))).count()
}

struct Out<'a> {
    net: &'a TfNetwork,
    tensors: BTreeMap<String, HostTensor>,
}

impl Out<'_> {
    fn put(&mut self, key: String, t: HostTensor) {
        self.tensors.insert(key, t);
    }

    fn dense(&mut self, key: &str, tf: &str) -> Result<(), String> {
        self.put(format!("{key}.weight"), dense_weight(self.net.var(&format!("{tf}/weight"), 2)?));
        self.put(format!("{key}.bias"), self.net.var(&format!("{tf}/bias"), 1)?.clone());
        Ok(())
    }

    fn conv(&mut self, key: &str, tf: &str, flip: bool, bias: bool) -> Result<(), String> {
        let w = self.net.var(&format!("{tf}/weight"), 4)?;
        let w = if flip { flip_spatial(w) } else { w.clone() };
        self.put(format!("{key}.weight"), conv_weight(&w));
        if bias {
            self.put(format!("{key}.bias"), self.net.var(&format!("{tf}/bias"), 1)?.clone());
        }
        Ok(())
    }

    /// `mod_weight` → `affine.weight` (transposed), `mod_bias + 1` → `affine.bias`.
    fn affine(&mut self, key: &str, tf: &str) -> Result<(), String> {
        self.put(format!("{key}.affine.weight"), dense_weight(self.net.var(&format!("{tf}/mod_weight"), 2)?));
        let b = self.net.var(&format!("{tf}/mod_bias"), 1)?;
        self.put(format!("{key}.affine.bias"), HostTensor { shape: b.shape.clone(), data: b.data.iter().map(|v| v + 1.0).collect() });
        Ok(())
    }

    /// A modulated SynthesisLayer with its noise.
    fn layer(&mut self, key: &str, tf: &str, noise: usize, flip: bool, filter: &HostTensor) -> Result<(), String> {
        self.conv(key, tf, flip, true)?;
        self.affine(key, tf)?;
        let strength = self.net.var(&format!("{tf}/noise_strength"), 0).or_else(|_| self.net.var(&format!("{tf}/noise_strength"), 1))?;
        self.put(format!("{key}.noise_strength"), HostTensor { shape: vec![], data: vec![strength.data[0]] });
        let n = self.net.var(&format!("synthesis/noise{noise}"), 4)?;
        let (h, w) = (n.shape[2], n.shape[3]);
        self.put(format!("{key}.noise_const"), HostTensor { shape: vec![h, w], data: n.data[..h * w].to_vec() });
        self.put(format!("{key}.resample_filter"), filter.clone());
        Ok(())
    }
}

/// `G` or `Gs` of a StyleGAN2 / StyleGAN2-ADA TF pickle → networks_stylegan2.Generator.
pub fn generator(net: &TfNetwork, format: TfFormat) -> Result<Converted, String> {
    check_common(net)?;
    if net.vars.keys().any(|k| k.starts_with("synthesis/ToRGB_lod")) {
        return Err(net.fail("synthesis architecture 'orig' (ToRGB_lod*): only 'skip', the official default, is supported"));
    }
    if net.vars.contains_key("mapping/LabelConcat/weight") {
        return Err(net.fail("StyleGAN2 TF label concatenation (LabelConcat) is not supported (StyleGAN2-ADA conditioning is)"));
    }
    if net.kwarg("use_noise").and_then(serde_json::Value::as_bool) == Some(false) {
        return Err(net.fail("use_noise=False is not supported"));
    }
    let resolution = net.kwarg_usize("resolution", 1024);
    let w_avg = net.var("dlatent_avg", 1)?;
    let w_dim = w_avg.shape[0];
    let c_dim = net.kwarg_usize("label_size", 0);
    let num_layers = count_layers(net, "mapping/Dense");
    if num_layers == 0 {
        return Err(net.fail("no mapping layers (mapping/Dense0/weight)"));
    }
    let dense0 = net.var("mapping/Dense0/weight", 2)?;
    let embed = if c_dim > 0 {
        let e = net.var("mapping/LabelEmbed/weight", 2)?;
        if e.shape[1] != w_dim {
            return Err(net.fail(format!("label embedding of {} features (only dlatent_size {w_dim} is supported)", e.shape[1])));
        }
        e.shape[1]
    } else {
        0
    };
    let z_dim = dense0.shape[0].checked_sub(embed).ok_or_else(|| net.fail("mapping/Dense0 is narrower than the label embedding"))?;
    let layer_features = if num_layers > 1 { Some(dense0.shape[1]) } else { None };
    let init_kwargs = json!({
        "z_dim": z_dim,
        "c_dim": c_dim,
        "w_dim": w_dim,
        "img_resolution": resolution,
        "img_channels": net.kwarg_usize("num_channels", 3),
        "channel_base": net.kwarg_usize("fmap_base", 16384) * 2,
        "channel_max": net.kwarg_usize("fmap_max", 512),
        "num_fp16_res": net.kwarg_usize("num_fp16_res", 0),
        "conv_clamp": net.kwarg("conv_clamp").cloned().unwrap_or(serde_json::Value::Null),
        "architecture": net.kwarg("architecture").cloned().unwrap_or_else(|| json!("skip")),
        "mapping_kwargs": {
            "num_layers": num_layers,
            "embed_features": serde_json::Value::Null,
            "layer_features": layer_features,
            "lr_multiplier": net.kwarg("mapping_lrmul").and_then(serde_json::Value::as_f64).unwrap_or(0.01),
            "w_avg_beta": net.kwarg("dlatent_avg_beta").and_then(serde_json::Value::as_f64).unwrap_or(0.995),
        },
        "tf_format": format.describe(),
    });
    let filter = resample_filter(net)?;
    let mut out = Out { net, tensors: BTreeMap::new() };
    out.put("mapping.w_avg".into(), w_avg.clone());
    if c_dim > 0 {
        out.dense("mapping.embed", "mapping/LabelEmbed")?;
    }
    for i in 0..num_layers {
        out.dense(&format!("mapping.fc{i}"), &format!("mapping/Dense{i}"))?;
    }
    let c = net.var("synthesis/4x4/Const/const", 4)?;
    out.put("synthesis.b4.const".into(), HostTensor { shape: c.shape[1..].to_vec(), data: c.data[..c.shape[1..].iter().product()].to_vec() });
    let mut res = 4;
    while res <= resolution {
        let b = format!("synthesis.b{res}");
        let tf = format!("synthesis/{res}x{res}");
        let log2 = res.trailing_zeros() as usize;
        if res == 4 {
            out.layer(&format!("{b}.conv1"), "synthesis/4x4/Conv", 0, false, &filter)?;
        } else {
            out.layer(&format!("{b}.conv0"), &format!("{tf}/Conv0_up"), 2 * log2 - 5, true, &filter)?;
            out.layer(&format!("{b}.conv1"), &format!("{tf}/Conv1"), 2 * log2 - 4, false, &filter)?;
        }
        out.conv(&format!("{b}.torgb"), &format!("{tf}/ToRGB"), false, true)?;
        out.affine(&format!("{b}.torgb"), &format!("{tf}/ToRGB"))?;
        out.put(format!("{b}.resample_filter"), filter.clone());
        res *= 2;
    }
    Ok(Converted { class_name: "Generator".into(), init_kwargs, tensors: out.tensors })
}

/// `D` of a StyleGAN2 / StyleGAN2-ADA TF pickle → networks_stylegan2.Discriminator (resnet).
pub fn discriminator(net: &TfNetwork, format: TfFormat) -> Result<Converted, String> {
    check_common(net)?;
    if net.vars.keys().any(|k| k.starts_with("FromRGB_lod")) {
        return Err(net.fail("discriminator architecture 'orig' (FromRGB_lod*): only 'resnet', the official default, is supported"));
    }
    let resolution = net.kwarg_usize("resolution", 1024);
    let c_dim = net.kwarg_usize("label_size", 0);
    if c_dim > 0 && format == TfFormat::StyleGan2 {
        return Err(net.fail("conditional StyleGAN2 TF discriminators are not supported (StyleGAN2-ADA ones are)"));
    }
    let output = net.var("Output/weight", 2)?;
    let cmap_dim = if c_dim > 0 { output.shape[1] } else { 0 };
    let mapping_layers = count_layers(net, "Mapping");
    let init_kwargs = json!({
        "c_dim": c_dim,
        "img_resolution": resolution,
        "img_channels": net.kwarg_usize("num_channels", 3),
        "architecture": net.kwarg("architecture").cloned().unwrap_or_else(|| json!("resnet")),
        "channel_base": net.kwarg_usize("fmap_base", 16384) * 2,
        "channel_max": net.kwarg_usize("fmap_max", 512),
        "num_fp16_res": net.kwarg_usize("num_fp16_res", 0),
        "conv_clamp": net.kwarg("conv_clamp").cloned().unwrap_or(serde_json::Value::Null),
        "cmap_dim": if c_dim > 0 { json!(cmap_dim) } else { serde_json::Value::Null },
        "mapping_kwargs": {
            "num_layers": mapping_layers,
            "lr_multiplier": net.kwarg("mapping_lrmul").and_then(serde_json::Value::as_f64).unwrap_or(0.1),
        },
        "epilogue_kwargs": {
            "mbstd_group_size": net.kwarg_usize("mbstd_group_size", 4),
            "mbstd_num_channels": net.kwarg_usize("mbstd_num_features", 1),
        },
        "tf_format": format.describe(),
    });
    let filter = resample_filter(net)?;
    let mut out = Out { net, tensors: BTreeMap::new() };
    let mut res = resolution;
    while res >= 8 {
        let b = format!("b{res}");
        let tf = format!("{res}x{res}");
        if res == resolution {
            out.conv(&format!("{b}.fromrgb"), &format!("{tf}/FromRGB"), false, true)?;
            out.put(format!("{b}.fromrgb.resample_filter"), filter.clone());
        }
        out.conv(&format!("{b}.conv0"), &format!("{tf}/Conv0"), false, true)?;
        out.conv(&format!("{b}.conv1"), &format!("{tf}/Conv1_down"), false, true)?;
        out.conv(&format!("{b}.skip"), &format!("{tf}/Skip"), false, false)?;
        for layer in ["conv0", "conv1", "skip"] {
            out.put(format!("{b}.{layer}.resample_filter"), filter.clone());
        }
        out.put(format!("{b}.resample_filter"), filter.clone());
        res /= 2;
    }
    if c_dim > 0 {
        out.dense("mapping.embed", "LabelEmbed")?;
        for i in 0..mapping_layers {
            out.dense(&format!("mapping.fc{i}"), &format!("Mapping{i}"))?;
        }
    }
    out.conv("b4.conv", "4x4/Conv", false, true)?;
    out.put("b4.conv.resample_filter".into(), filter.clone());
    out.dense("b4.fc", "4x4/Dense0")?;
    out.dense("b4.out", "Output")?;
    Ok(Converted { class_name: "Discriminator".into(), init_kwargs, tensors: out.tensors })
}
