//! Truncation: psi (−1…2) and the cutoff (how many ws are truncated), as in the visualizer.

use egui::{Slider, Ui};

use super::ExplorerApp;

pub fn truncation_ui(ui: &mut Ui, app: &mut ExplorerApp) {
    let num_ws = app.model.as_ref().map(|m| m.num_ws).unwrap_or(0);
    let p = &mut app.settings.latent;
    ui.horizontal(|ui| {
        let label = ui.label("Truncation psi");
        ui.add(Slider::new(&mut p.psi, -1.0..=2.0).fixed_decimals(2)).labelled_by(label.id);
    });
    ui.horizontal(|ui| {
        let label = ui.label("Cutoff");
        let mut cutoff = p.cutoff.unwrap_or(num_ws).min(num_ws.max(1));
        let r = ui
            .add_enabled(num_ws > 0, Slider::new(&mut cutoff, 0..=num_ws.max(1)))
            .labelled_by(label.id)
            .on_hover_text("truncate only the first N ws (all by default)");
        if r.changed() {
            p.cutoff = (cutoff < num_ws).then_some(cutoff);
        }
        if ui.button("Reset").clicked() {
            p.psi = 1.0;
            p.cutoff = None;
        }
    });
}
