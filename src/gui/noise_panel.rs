//! StyleGAN2's and StyleGAN v1's noise inputs: mode (const / random / none), the random seed, and a strength
//! multiplier. StyleGAN3 has no noise inputs, so the panel is greyed out with the reason.

use egui::{DragValue, Slider, Ui};

use super::ExplorerApp;
use crate::render::NoiseMode;

pub fn noise_ui(ui: &mut Ui, app: &mut ExplorerApp) {
    let sg2 = app.model.as_ref().is_some_and(|m| !m.is_stylegan3());
    if !sg2 {
        ui.weak("StyleGAN3 has no noise inputs (its layers are noise-free by design); these controls apply to StyleGAN2 and StyleGAN (v1) models.");
    }
    let s = &mut app.settings;
    ui.add_enabled_ui(sg2, |ui| {
        ui.horizontal(|ui| {
            let label = ui.label("Mode");
            for (mode, name, tip) in [
                (NoiseMode::Const, "const", "the stored noise_const buffers (deterministic)"),
                (NoiseMode::Random, "random", "fresh Gaussian noise from the seed below"),
                (NoiseMode::None, "none", "no noise"),
            ] {
                ui.radio_value(&mut s.latent.noise.mode, mode, name).on_hover_text(tip);
            }
            let _ = label;
        });
        ui.add_enabled_ui(s.latent.noise.mode == NoiseMode::Random, |ui| {
            ui.horizontal(|ui| {
                let label = ui.label("Noise seed");
                ui.add(DragValue::new(&mut s.latent.noise.seed).speed(0.2)).labelled_by(label.id);
                ui.checkbox(&mut s.anim_noise, "Anim").on_hover_text("seed + 1 every frame");
            });
        });
        ui.horizontal(|ui| {
            let label = ui.label("Strength");
            ui.add(Slider::new(&mut s.latent.noise.gain, 0.0..=4.0).fixed_decimals(2))
                .labelled_by(label.id)
                .on_hover_text("multiplies every layer's learned noise strength (1 = the network as trained)");
        });
        if ui.button("Reset").clicked() {
            s.latent.noise = Default::default();
            s.anim_noise = false;
        }
    });
}
