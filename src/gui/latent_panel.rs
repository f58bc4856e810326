//! Latent controls: seed, fractional offset between seeds (the visualizer blends the `w` of the
//! four neighbouring seeds), animation with speed, snap, reset, and the class of conditional
//! models. Dragging on the image also moves the latent (see `viewer`).

use egui::{DragValue, Slider, Ui};

use super::ExplorerApp;

/// Latent units per point dragged on the image (the visualizer: `4e-2` per font pixel).
pub const DRAG_PER_POINT: f64 = 4e-2 / 14.0;
/// Seeds per row of the 2-D latent plane (`seed = x + 100·y`).
pub const STEP_Y: i64 = 100;

pub fn latent_ui(ui: &mut Ui, app: &mut ExplorerApp) {
    let s = &mut app.settings;
    let p = &mut s.latent;
    ui.horizontal(|ui| {
        let label = ui.label("Seed");
        let mut seed = p.seed() as i64;
        let r = ui.add(DragValue::new(&mut seed).range(0..=u32::MAX as i64).speed(0.2)).labelled_by(label.id);
        if r.changed() {
            // The visualizer puts a typed seed on the x axis.
            p.x = seed as f64;
            p.y = 0.0;
        }
        let (fx, fy) = (p.x - p.x.round(), p.y - p.y.round());
        let (mut nx, mut ny) = (fx, fy);
        let l = ui.label("Offset");
        let rx = ui.add(DragValue::new(&mut nx).speed(0.005).fixed_decimals(2).prefix("x ")).labelled_by(l.id);
        let ry = ui.add(DragValue::new(&mut ny).speed(0.005).fixed_decimals(2).prefix("y "));
        if rx.changed() || ry.changed() {
            p.x += nx - fx;
            p.y += ny - fy;
        }
    });
    ui.horizontal(|ui| {
        ui.checkbox(&mut s.anim_latent, "Anim");
        ui.add(Slider::new(&mut s.anim_speed, -5.0..=5.0).logarithmic(true).smallest_positive(1e-3).text("speed"))
            .on_hover_text("seeds per second along x");
    });
    ui.horizontal(|ui| {
        if ui.button("Snap").on_hover_text("round to the nearest seed").clicked() {
            let p = &mut app.settings.latent;
            p.x = p.x.round();
            p.y = p.y.round();
        }
        if ui.button("Reset").clicked() {
            let s = &mut app.settings;
            s.latent.x = 0.0;
            s.latent.y = 0.0;
            s.anim_latent = false;
            s.anim_speed = 0.25;
        }
        let w0 = crate::render::w0_seeds(app.settings.latent.x, app.settings.latent.y);
        if w0.len() > 1 {
            let text: Vec<String> = w0.iter().map(|(s, w)| format!("{s}×{w:.2}")).collect();
            ui.weak(format!("blend {}", text.join(" + ")));
        }
    });
    ui.weak("Drag on the image to move between seeds.");
    class_ui(ui, app);
}

/// The class of a conditional model: fixed, or drawn per seed like the official visualizer.
fn class_ui(ui: &mut Ui, app: &mut ExplorerApp) {
    let Some(c_dim) = app.model.as_ref().map(|m| m.c_dim).filter(|&c| c > 0) else { return };
    let p = &mut app.settings.latent;
    ui.horizontal(|ui| {
        let label = ui.label("Class");
        let text = match p.class {
            Some(c) => format!("{c}"),
            None => "per seed (official)".to_string(),
        };
        egui::ComboBox::from_id_salt("class")
            .selected_text(text)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut p.class, None, "per seed (official)")
                    .on_hover_text("the visualizer draws the class from the seed's random stream, after z");
                for c in 0..c_dim {
                    ui.selectable_value(&mut p.class, Some(c), format!("{c}"));
                }
            })
            .response
            .labelled_by(label.id);
    });
}
