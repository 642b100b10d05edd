//! The learning settings and the dictionary file panel (load and save `.npz`).

use super::*;

impl SeparatorApp {
    pub(super) fn learning_panel(&mut self, ui: &mut egui::Ui, setter: &ParamSetter) {
        let p = self.params.clone();
        ui.group(|ui| {
            ui.set_width(ui.available_width());
            ui.label(RichText::new("Learning").strong());
            let old = p.learn.lock().clone();
            let mut s: LearnSettings = old.clone();
            egui::Grid::new("learn")
                .num_columns(2)
                .spacing([10.0, 4.0])
                .show(ui, |ui| {
                    ui.label("Components per source");
                    ui.add(egui::DragValue::new(&mut s.components_per_source).range(1..=64));
                    ui.end_row();
                    ui.label("Components (whole mix)");
                    ui.add(egui::DragValue::new(&mut s.mix_components).range(1..=128));
                    ui.end_row();
                    ui.label("Beta (0 IS, 1 KL, 2 EU)");
                    ui.add(
                        egui::DragValue::new(&mut s.beta)
                            .range(0.0..=2.0)
                            .speed(0.01)
                            .max_decimals(2),
                    );
                    ui.end_row();
                    ui.label("FFT size");
                    egui::ComboBox::from_id_salt("n_fft")
                        .selected_text(s.n_fft.to_string())
                        .show_ui(ui, |ui| {
                            for n in FFT_SIZES {
                                ui.selectable_value(&mut s.n_fft, n, n.to_string());
                            }
                        });
                    ui.end_row();
                    ui.label("Iterations (fit)");
                    ui.add(egui::DragValue::new(&mut s.iterations).range(10..=2000));
                    ui.end_row();
                    ui.label("Capture given the others");
                    ui.checkbox(&mut s.given_known, "").on_hover_text(
                        "A capture into a source learns only what the other sources' \
                             templates do not explain (it need not be solo)",
                    );
                    ui.end_row();
                });
            if s != old {
                p.learn.set_external(s);
            }
            ui.separator();
            ui.label(RichText::new("Separation").strong());
            egui::Grid::new("engine")
                .num_columns(2)
                .spacing([10.0, 4.0])
                .show(ui, |ui| {
                    ui.label("Iterations per frame");
                    ui.add(ParamSlider::for_param(&p.iterations, setter).with_width(110.0));
                    ui.end_row();
                    ui.label("Mask exponent");
                    ui.add(ParamSlider::for_param(&p.mask_power, setter).with_width(110.0));
                    ui.end_row();
                    ui.label("Sparsity");
                    ui.add(ParamSlider::for_param(&p.sparsity, setter).with_width(110.0));
                    ui.end_row();
                    ui.label("Solver");
                    ui.add(ParamSlider::for_param(&p.solver, setter).with_width(110.0));
                    ui.end_row();
                });
        });
    }

    pub(super) fn files_panel(&mut self, ui: &mut egui::Ui) {
        ui.group(|ui| {
            ui.set_width(ui.available_width());
            ui.label(RichText::new("Dictionary file (.npz, nmfsep format)").strong());
            ui.add(
                egui::TextEdit::singleline(&mut self.path)
                    .desired_width(ui.available_width())
                    .hint_text("/path/to/dictionary.npz"),
            );
            ui.horizontal(|ui| {
                let path = self.path.trim().to_string();
                if ui
                    .add_enabled(!path.is_empty(), egui::Button::new("Load"))
                    .on_hover_text("Replace the dictionary (default routing)")
                    .clicked()
                {
                    self.params.load_path.set_external(path.clone());
                }
                if ui
                    .add_enabled(
                        !path.is_empty() && !self.dict.labels.is_empty(),
                        egui::Button::new("Save"),
                    )
                    .clicked()
                {
                    self.params.export_path.set_external(path);
                }
                if !self.dict.labels.is_empty() {
                    ui.label(format!(
                        "{} comp., {} Hz, n_fft {}",
                        self.dict.labels.len(),
                        self.dict.sample_rate,
                        self.dict.n_fft
                    ));
                }
            });
            if !self.dict.labels.is_empty() && !self.dict.mapping.is_empty() {
                ui.label(
                    RichText::new(&self.dict.mapping)
                        .small()
                        .color(Color32::from_gray(170)),
                )
                .on_hover_text(
                    "The dictionary was learned at another sample rate: its templates are \
                     mapped onto this session's frequencies. The project keeps the original.",
                );
            }
        });
    }
}
