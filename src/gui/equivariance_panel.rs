//! Equivariance (StyleGAN3): translate and rotate the Fourier input features by value, by
//! dragging, or animated, with whole-pixel rounding — the visualizer's equivariance widget. The
//! render worker writes the inverse of this forward transform into `synthesis.input.transform`.
//! Its "Metrics" part (live EQ-T / EQ-T_frac / EQ-R, sweeps, spectrum) is `equivariance_metrics`.

use egui::{Button, DragValue, Sense, Slider, Ui};

use super::ExplorerApp;

/// Translation per point for "Drag fast" / "Drag slow" (the visualizer: 2e-2 and 4e-4 per font px).
const DRAG_FAST: f64 = 2e-2 / 14.0;
const DRAG_SLOW: f64 = 4e-4 / 14.0;

/// One step of the visualizer's circular translation animation (radius 0.1 about the origin),
/// moving `step` image widths along the circle.
pub fn circle_step(pos: (f64, f64), step: f64) -> (f64, f64) {
    let c = [pos.0, pos.1];
    let mut t = c;
    if t[0].abs().max(t[1].abs()) < 1e-4 {
        t = [t[0] + 1.0, t[1] + 1.0];
    }
    let n = t[0].hypot(t[1]);
    t = [t[0] * 0.1 / n, t[1] * 0.1 / n];
    t = [t[0] + c[1], t[1] - c[0]];
    let d = [t[0] - c[0], t[1] - c[1]];
    let dn = d[0].hypot(d[1]);
    if dn == 0.0 {
        return pos;
    }
    (pos.0 + d[0] * step / dn, pos.1 + d[1] * step / dn)
}

/// A button that reports how far it was dragged (points).
fn drag_button(ui: &mut Ui, text: &str) -> egui::Vec2 {
    let r = ui.add(Button::new(text).sense(Sense::drag())).on_hover_text("drag this button");
    if r.dragged() {
        r.drag_delta()
    } else {
        egui::Vec2::ZERO
    }
}

pub fn equivariance_ui(ui: &mut Ui, app: &mut ExplorerApp) {
    let sg3 = app.model.as_ref().is_some_and(|m| m.is_stylegan3());
    if !sg3 {
        ui.weak("Only StyleGAN3 networks have a transformable input (synthesis.input.transform).");
    }
    let s = &mut app.settings;
    ui.add_enabled_ui(sg3, |ui| {
        ui.horizontal(|ui| {
            let label = ui.label("Translate");
            let (x, y) = &mut s.latent.translate;
            ui.add(DragValue::new(x).speed(1e-3).fixed_decimals(4).prefix("x ")).labelled_by(label.id);
            ui.add(DragValue::new(y).speed(1e-3).fixed_decimals(4).prefix("y "));
        });
        ui.horizontal(|ui| {
            let fast = drag_button(ui, "Drag fast");
            let slow = drag_button(ui, "Drag slow");
            let d = fast * DRAG_FAST as f32 + slow * DRAG_SLOW as f32;
            s.latent.translate.0 += d.x as f64;
            s.latent.translate.1 += d.y as f64;
            ui.checkbox(&mut s.anim_translate, "Anim").on_hover_text("circular motion");
            ui.checkbox(&mut s.round_translate, "Round").on_hover_text("snap to whole output pixels");
        });
        ui.add(Slider::new(&mut s.translate_speed, 1e-4..=0.5).logarithmic(true).text("speed"));
        ui.separator();
        ui.horizontal(|ui| {
            let label = ui.label("Rotate");
            ui.add(DragValue::new(&mut s.latent.rotate_turns).speed(1e-3).fixed_decimals(4).suffix(" turns")).labelled_by(label.id);
        });
        ui.horizontal(|ui| {
            let fast = drag_button(ui, "Drag fast");
            let slow = drag_button(ui, "Drag slow");
            s.latent.rotate_turns += (fast.x as f64) * DRAG_FAST + (slow.x as f64) * DRAG_SLOW;
            ui.checkbox(&mut s.anim_rotate, "Anim");
        });
        ui.add(Slider::new(&mut s.rotate_speed, 1e-4..=0.5).logarithmic(true).text("speed"));
        if ui.button("Reset").clicked() {
            s.latent.translate = (0.0, 0.0);
            s.latent.rotate_turns = 0.0;
            s.anim_translate = false;
            s.anim_rotate = false;
            s.round_translate = false;
            s.view.untransform = false;
        }
        ui.checkbox(&mut s.view.untransform, "Untransform")
            .on_hover_text("resample the shown image back through the transform (band-limited, as the official metric), so it lines up with the untransformed one");
    });
    ui.add_enabled_ui(sg3, |ui| {
        let open = app.settings.eq_live;
        egui::CollapsingHeader::new("Metrics").id_salt("eq-metrics").default_open(open).show(ui, |ui| super::equivariance_metrics::metrics_ui(ui, app));
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn circle_animation_stays_near_radius_one_tenth() {
        let mut p = (0.0, 0.0);
        for _ in 0..2000 {
            p = circle_step(p, 1e-3);
        }
        let r = p.0.hypot(p.1);
        assert!((r - 0.1).abs() < 0.01, "radius {r}");
    }
}
