//! The source learned live: its templates as they change, Freeze, Export, Keep as capture.

use super::*;

impl SeparatorApp {
    /// The source learned live: its templates as they are now (they change with every
    /// refit), Freeze, export and "keep as capture".
    pub(super) fn live_panel(&mut self, ui: &mut egui::Ui, setter: &ParamSetter) {
        let p = self.params.clone();
        let live = self.status.live_source.load(Ordering::Acquire) as usize;
        let labels = p.source_labels.lock().clone();
        ui.horizontal(|ui| {
            if live == 0 {
                ui.label(RichText::new("Learned live: none").strong());
                ui.label(
                    RichText::new("(capture one source: the first empty one learns the rest)")
                        .small()
                        .color(Color32::from_gray(170)),
                );
                return;
            }
            let s = live - 1;
            ui.label(
                RichText::new(format!("Learned live: {}", labels.name(s)))
                    .strong()
                    .color(source_color(&labels, s)),
            );
            let frozen = p.freeze.value();
            if ui
                .add(egui::Button::selectable(
                    frozen,
                    RichText::new(if frozen { "Frozen" } else { "Freeze" }).color(if frozen {
                        Color32::from_rgb(120, 190, 255)
                    } else {
                        ui.visuals().text_color()
                    }),
                ))
                .on_hover_text("Stop learning: the learned templates stand still")
                .clicked()
            {
                set_param(setter, &p.freeze, !frozen);
            }
            let path = self.path.trim().to_string();
            if ui
                .add_enabled(
                    !path.is_empty() && !self.rest_curves.is_empty(),
                    egui::Button::new("Export"),
                )
                .on_hover_text("Write the learned templates to the file path below (.npz)")
                .clicked()
            {
                p.rest_export_path.set_external(path);
            }
            if ui
                .add_enabled(
                    !self.rest_curves.is_empty(),
                    egui::Button::new("Keep as capture"),
                )
                .on_hover_text("Make the learned templates this source's captured components")
                .clicked()
            {
                p.rest_to_capture.set_external(true);
            }
            ui.label(format!(
                "{} refits",
                self.status.rest_refits.load(Ordering::Acquire)
            ));
        });
        if live == 0 || self.rest_curves.is_empty() {
            return;
        }
        let color = source_color(&labels, live - 1);
        let n = self.rest_curves.len();
        let width = ui.available_width();
        let cell = Vec2::new(((width - 4.0) / n as f32 - 4.0).max(20.0), 30.0);
        ui.horizontal(|ui| {
            ui.spacing_mut().item_spacing.x = 4.0;
            for (i, curve) in self.rest_curves.iter().enumerate() {
                let (rect, _) = ui.allocate_exact_size(cell, Sense::hover());
                draw_template(ui, rect, curve, color, i);
            }
        });
    }

    /// A small level bar of `db` (-60..0 dB).
    pub(super) fn row_meter(ui: &mut egui::Ui, db: f32, color: Color32) {
        let (rect, resp) = ui.allocate_exact_size(Vec2::new(46.0, 10.0), Sense::hover());
        let painter = ui.painter();
        painter.rect_filled(rect, CornerRadius::same(2), Color32::from_gray(30));
        let x = rect.left() + rect.width() * ((db + 60.0) / 60.0).clamp(0.0, 1.0);
        painter.rect_filled(
            Rect::from_min_max(rect.min, Pos2::new(x, rect.max.y)),
            CornerRadius::same(2),
            color,
        );
        resp.on_hover_text(if db <= -89.0 {
            "-inf dB".to_string()
        } else {
            format!("{db:.1} dB")
        });
    }
}
