//! The routing panel: a strip per source (name, color, gain, mute, solo, mode, meter) and the component-to-source matrix.

use super::*;

impl SeparatorApp {
    pub(super) fn routing_panel(&mut self, ui: &mut egui::Ui, setter: &ParamSetter) {
        let p = self.params.clone();
        let mut labels = p.source_labels.lock().clone();
        let old_labels = labels.clone();
        let assignment = current_assignment(&p);
        let k = assignment.len();
        ui.horizontal(|ui| {
            ui.label(RichText::new("Routing (click a cell to move a component)").strong());
            let latency = self.feed.latency_samples();
            let sr = self.feed.sample_rate();
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                ui.label(format!(
                    "Latency {latency} samples ({:.1} ms)",
                    seconds(latency as u64, sr) * 1000.0
                ));
            });
        });
        let name_w = 380.0;
        let cell_w = ((ui.available_width() - name_w - 250.0) / k.max(1) as f32).clamp(6.0, 18.0);
        egui::ScrollArea::horizontal()
            .id_salt("routing")
            .show(ui, |ui| {
                egui::Grid::new("routing_grid")
                    .spacing([6.0, 4.0])
                    .show(ui, |ui| {
                        for s in 0..MAX_SOURCES {
                            let src = &p.sources[s];
                            ui.horizontal(|ui| {
                                let mut c = labels.color(s);
                                if ui.color_edit_button_srgb(&mut c).changed() {
                                    labels.set_color(s, c);
                                }
                                let mut name = labels.name(s);
                                if ui
                                    .add(egui::TextEdit::singleline(&mut name).desired_width(90.0))
                                    .changed()
                                {
                                    labels.set_name(s, name);
                                }
                                let mute = src.mute.value();
                                if ui
                                    .add(egui::Button::selectable(
                                        mute,
                                        RichText::new("M").color(if mute {
                                            Color32::from_rgb(240, 90, 80)
                                        } else {
                                            ui.visuals().text_color()
                                        }),
                                    ))
                                    .on_hover_text("Mute")
                                    .clicked()
                                {
                                    set_param(setter, &src.mute, !mute);
                                }
                                let solo = src.solo.value();
                                if ui
                                    .add(egui::Button::selectable(
                                        solo,
                                        RichText::new("S").color(if solo {
                                            Color32::from_rgb(240, 210, 70)
                                        } else {
                                            ui.visuals().text_color()
                                        }),
                                    ))
                                    .on_hover_text("Solo")
                                    .clicked()
                                {
                                    set_param(setter, &src.solo, !solo);
                                }
                            });
                            ui.add(ParamSlider::for_param(&src.gain_db, setter).with_width(90.0));
                            let color = source_color(&labels, s);
                            ui.add(ParamSlider::for_param(&src.mode, setter).with_width(80.0))
                                .on_hover_text(
                                    "Auto: captured, or the rest learned live when this is \
                                     the first empty source and one source is captured",
                                );
                            Self::row_meter(ui, self.source_db[s], color);
                            let (rect, resp) = ui.allocate_exact_size(
                                Vec2::new(cell_w * k as f32, 16.0),
                                Sense::click(),
                            );
                            let painter = ui.painter();
                            for (j, &a) in assignment.iter().enumerate() {
                                let cell = Rect::from_min_size(
                                    Pos2::new(rect.left() + j as f32 * cell_w, rect.top()),
                                    Vec2::new(cell_w - 1.0, 16.0),
                                );
                                painter.rect_filled(
                                    cell,
                                    CornerRadius::same(2),
                                    if a == s {
                                        color
                                    } else {
                                        Color32::from_gray(45)
                                    },
                                );
                            }
                            if resp.clicked() {
                                if let Some(pos) = resp.interact_pointer_pos() {
                                    let j = ((pos.x - rect.left()) / cell_w) as usize;
                                    move_component(&p, j, s);
                                }
                            }
                            let n = assignment.iter().filter(|&&a| a == s).count();
                            ui.label(format!("{n}"));
                            ui.end_row();
                        }
                    });
            });
        if labels != old_labels {
            p.source_labels.set_external(labels);
        }
    }
}
