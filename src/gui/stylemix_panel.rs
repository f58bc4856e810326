//! Style mixing: a second seed whose `w` replaces the ticked w indices (one box per w index).

use egui::{DragValue, Ui};

use super::ExplorerApp;

pub fn stylemix_ui(ui: &mut Ui, app: &mut ExplorerApp) {
    let num_ws = app.model.as_ref().map(|m| m.num_ws).unwrap_or(0);
    let s = &mut app.settings;
    ui.horizontal(|ui| {
        let label = ui.label("Mix seed");
        ui.add(DragValue::new(&mut s.latent.stylemix_seed).speed(0.2)).labelled_by(label.id);
        ui.checkbox(&mut s.anim_stylemix, "Anim").on_hover_text("seed + 1 every frame");
        if ui.button("Reset").clicked() {
            s.latent.stylemix_seed = 1000;
            s.latent.stylemix.clear();
            s.anim_stylemix = false;
        }
    });
    if num_ws == 0 {
        ui.weak("(load a model)");
        return;
    }
    ui.label("Take these w indices from the mix seed:");
    ui.horizontal_wrapped(|ui| {
        for i in 0..num_ws {
            let mut on = s.latent.stylemix.contains(&i);
            if ui.checkbox(&mut on, format!("{i}")).on_hover_text(format!("w index {i}")).changed() {
                if on {
                    s.latent.stylemix.push(i);
                    s.latent.stylemix.sort_unstable();
                } else {
                    s.latent.stylemix.retain(|&j| j != i);
                }
            }
        }
    });
    ui.horizontal(|ui| {
        if ui.small_button("All").clicked() {
            s.latent.stylemix = (0..num_ws).collect();
        }
        if ui.small_button("None").clicked() {
            s.latent.stylemix.clear();
        }
    });
}
