//! The templates W as small log-frequency spectra, and the activations H as a scrolling heat map.

use super::*;

impl SeparatorApp {
    pub(super) fn components_panel(&mut self, ui: &mut egui::Ui) {
        let labels = self.params.source_labels.lock().clone();
        let assignment = current_assignment(&self.params);
        let k = self.dict.curves.len();
        ui.label(RichText::new(format!("Templates W (log frequency, {k} components)")).strong());
        if k == 0 {
            ui.label("No dictionary yet: capture a source and stop to learn, or load a file.");
        }
        let width = ui.available_width();
        let cols = ((width + 4.0) / 84.0).floor().max(1.0) as usize;
        // Minus the scroll bar's room.
        let cell = Vec2::new((width - 12.0) / cols as f32 - 4.0, 44.0);
        let rows = k.div_ceil(cols);
        let max_rows = 3usize;
        egui::ScrollArea::vertical()
            .id_salt("templates")
            .max_height((cell.y + 4.0) * max_rows.min(rows.max(1)) as f32 - 4.0)
            .show(ui, |ui| {
                egui::Grid::new("templates_grid")
                    .spacing([4.0, 4.0])
                    .show(ui, |ui| {
                        for (i, curve) in self.dict.curves.iter().enumerate() {
                            let s = assignment.get(i).copied().unwrap_or(0);
                            let color = source_color(&labels, s);
                            let (rect, resp) = ui.allocate_exact_size(cell, Sense::hover());
                            draw_template(ui, rect, curve, color, i);
                            resp.on_hover_text(format!(
                                "component {}: {} -> {}",
                                i + 1,
                                self.dict.labels.get(i).map(String::as_str).unwrap_or(""),
                                labels.name(s)
                            ));
                            if (i + 1) % cols == 0 {
                                ui.end_row();
                            }
                        }
                    });
            });
        ui.add_space(4.0);
        ui.label(RichText::new("Activations H (components x time)").strong());
        self.heat_map(ui, &assignment, &labels);
    }

    pub(super) fn heat_map(
        &mut self,
        ui: &mut egui::Ui,
        assignment: &[usize],
        labels: &SourceLabels,
    ) {
        let k = self
            .dict
            .weights
            .len()
            .min(crate::plugin::feed::FEED_COMPONENTS);
        let width = ui.available_width();
        let height = (k as f32 * 6.0).clamp(60.0, 220.0);
        let (rect, _) = ui.allocate_exact_size(Vec2::new(width, height), Sense::hover());
        ui.painter()
            .rect_filled(rect, CornerRadius::ZERO, Color32::from_gray(12));
        if k == 0 {
            return;
        }
        // Energy of each component in each frame, dB relative to the loudest in view.
        let mut max = 0.0f32;
        for col in &self.history {
            for (j, &h) in col.iter().take(k).enumerate() {
                max = max.max(h * self.dict.weights[j]);
            }
        }
        let mut pixels = vec![Color32::BLACK; HISTORY * k];
        let offset = HISTORY - self.history.len();
        for (c, col) in self.history.iter().enumerate() {
            for j in 0..k.min(col.len()) {
                let v = if max > 0.0 {
                    level(col[j] * self.dict.weights[j] / max)
                } else {
                    0.0
                };
                let [r, g, b] = labels.color(assignment.get(j).copied().unwrap_or(0));
                let a = v * v;
                pixels[j * HISTORY + offset + c] = Color32::from_rgb(
                    (r as f32 * a) as u8,
                    (g as f32 * a) as u8,
                    (b as f32 * a) as u8,
                );
            }
        }
        let image = ColorImage::new([HISTORY, k], pixels);
        match self.heat.as_mut() {
            Some(t) if t.size() == [HISTORY, k] => t.set(image, TextureOptions::NEAREST),
            _ => {
                self.heat = Some(ui.ctx().load_texture(
                    "activations",
                    image,
                    TextureOptions::NEAREST,
                ))
            }
        }
        if let Some(t) = &self.heat {
            ui.painter().image(
                t.id(),
                rect,
                Rect::from_min_max(Pos2::ZERO, Pos2::new(1.0, 1.0)),
                Color32::WHITE,
            );
        }
        if self.history.is_empty() {
            ui.painter().text(
                rect.center(),
                egui::Align2::CENTER_CENTER,
                "waiting for audio",
                egui::FontId::proportional(13.0),
                Color32::GRAY,
            );
        }
    }
}

pub(super) fn draw_template(
    ui: &egui::Ui,
    rect: Rect,
    curve: &[f32],
    color: Color32,
    index: usize,
) {
    let painter = ui.painter();
    painter.rect_filled(rect, CornerRadius::same(3), Color32::from_gray(22));
    if curve.len() >= 2 {
        let n = curve.len() - 1;
        let pts: Vec<Pos2> = curve
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                Pos2::new(
                    rect.left() + 2.0 + (rect.width() - 4.0) * i as f32 / n as f32,
                    rect.bottom() - 2.0 - (rect.height() - 4.0) * v,
                )
            })
            .collect();
        let mut fill = pts.clone();
        fill.push(Pos2::new(rect.right() - 2.0, rect.bottom() - 2.0));
        fill.push(Pos2::new(rect.left() + 2.0, rect.bottom() - 2.0));
        for w in pts.windows(2) {
            let quad = vec![
                w[0],
                w[1],
                Pos2::new(w[1].x, rect.bottom() - 2.0),
                Pos2::new(w[0].x, rect.bottom() - 2.0),
            ];
            painter.add(egui::Shape::convex_polygon(
                quad,
                color.gamma_multiply(0.25),
                Stroke::NONE,
            ));
        }
        painter.add(egui::Shape::line(pts, Stroke::new(1.2, color)));
    }
    painter.text(
        rect.left_top() + Vec2::new(3.0, 1.0),
        egui::Align2::LEFT_TOP,
        format!("{}", index + 1),
        egui::FontId::proportional(10.0),
        Color32::from_gray(170),
    );
}
