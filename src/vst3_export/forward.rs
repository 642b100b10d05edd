//! The interfaces the [`super::Component`] passes to nice-plug's wrapper unchanged.

use super::*;

impl<P: Vst3Plugin> IEditControllerTrait for Component<P> {
    unsafe fn setComponentState(&self, state: *mut IBStream) -> tresult {
        self.controller.clear();
        unsafe { self.wrapper.setComponentState(state) }
    }

    unsafe fn setState(&self, state: *mut IBStream) -> tresult {
        self.controller.clear();
        unsafe { IEditControllerTrait::setState(&self.wrapper, state) }
    }

    unsafe fn getState(&self, state: *mut IBStream) -> tresult {
        unsafe { IEditControllerTrait::getState(&self.wrapper, state) }
    }

    unsafe fn getParameterCount(&self) -> int32 {
        unsafe { self.wrapper.getParameterCount() }
    }

    unsafe fn getParameterInfo(&self, param_index: int32, info: *mut ParameterInfo) -> tresult {
        unsafe { self.wrapper.getParameterInfo(param_index, info) }
    }

    unsafe fn getParamStringByValue(
        &self,
        id: ParamID,
        value_normalized: ParamValue,
        string: *mut String128,
    ) -> tresult {
        unsafe {
            self.wrapper
                .getParamStringByValue(id, value_normalized, string)
        }
    }

    unsafe fn getParamValueByString(
        &self,
        id: ParamID,
        string: *mut TChar,
        value_normalized: *mut ParamValue,
    ) -> tresult {
        unsafe {
            self.wrapper
                .getParamValueByString(id, string, value_normalized)
        }
    }

    unsafe fn normalizedParamToPlain(
        &self,
        id: ParamID,
        value_normalized: ParamValue,
    ) -> ParamValue {
        unsafe { self.wrapper.normalizedParamToPlain(id, value_normalized) }
    }

    unsafe fn plainParamToNormalized(&self, id: ParamID, plain_value: ParamValue) -> ParamValue {
        unsafe { self.wrapper.plainParamToNormalized(id, plain_value) }
    }

    /// The value held by [`Self::setParamNormalized`] while processing, else the processor's.
    unsafe fn getParamNormalized(&self, id: ParamID) -> ParamValue {
        match self.controller.held(id) {
            Some(value) => value,
            None => unsafe { self.wrapper.getParamNormalized(id) },
        }
    }

    /// While processing, holds the value (snapped to the parameter's steps, as the processor
    /// will store it) for [`Self::getParamNormalized`]; the wrapper would drop it. Otherwise the
    /// wrapper applies it.
    unsafe fn setParamNormalized(&self, id: ParamID, value: ParamValue) -> tresult {
        if !self.controller.processing() {
            return unsafe { self.wrapper.setParamNormalized(id, value) };
        }
        let Some(steps) = self.controller.step_count(id) else {
            return kInvalidArgument;
        };
        if !value.is_finite() {
            return kInvalidArgument;
        }
        // The wrapper's round trip snaps integer and enum values (nice-plug rounds them); it
        // passes a bool's value through, which nice-plug stores as `value > 0.5`.
        let mut snapped = unsafe {
            let plain = self
                .wrapper
                .normalizedParamToPlain(id, value.clamp(0.0, 1.0));
            self.wrapper.plainParamToNormalized(id, plain)
        };
        if steps == 1 {
            snapped = if snapped > 0.5 { 1.0 } else { 0.0 };
        }
        if self.controller.hold(id, snapped) {
            kResultOk
        } else {
            kInvalidArgument
        }
    }

    unsafe fn setComponentHandler(&self, handler: *mut IComponentHandler) -> tresult {
        unsafe { self.wrapper.setComponentHandler(handler) }
    }

    unsafe fn createView(&self, name: FIDString) -> *mut IPlugView {
        unsafe { self.wrapper.createView(name) }
    }
}

impl<P: Vst3Plugin> IMidiMappingTrait for Component<P> {
    unsafe fn getMidiControllerAssignment(
        &self,
        bus_index: int32,
        channel: int16,
        midi_controller_number: CtrlNumber,
        id: *mut ParamID,
    ) -> tresult {
        unsafe {
            self.wrapper
                .getMidiControllerAssignment(bus_index, channel, midi_controller_number, id)
        }
    }
}

impl<P: Vst3Plugin> INoteExpressionControllerTrait for Component<P> {
    unsafe fn getNoteExpressionCount(&self, bus_index: int32, channel: int16) -> int32 {
        unsafe { self.wrapper.getNoteExpressionCount(bus_index, channel) }
    }

    unsafe fn getNoteExpressionInfo(
        &self,
        bus_index: int32,
        channel: int16,
        note_expression_index: int32,
        info: *mut NoteExpressionTypeInfo,
    ) -> tresult {
        unsafe {
            self.wrapper
                .getNoteExpressionInfo(bus_index, channel, note_expression_index, info)
        }
    }

    unsafe fn getNoteExpressionStringByValue(
        &self,
        bus_index: int32,
        channel: int16,
        id: NoteExpressionTypeID,
        value_normalized: NoteExpressionValue,
        string: *mut String128,
    ) -> tresult {
        unsafe {
            self.wrapper.getNoteExpressionStringByValue(
                bus_index,
                channel,
                id,
                value_normalized,
                string,
            )
        }
    }

    unsafe fn getNoteExpressionValueByString(
        &self,
        bus_index: int32,
        channel: int16,
        id: NoteExpressionTypeID,
        string: *const TChar,
        value_normalized: *mut NoteExpressionValue,
    ) -> tresult {
        unsafe {
            self.wrapper.getNoteExpressionValueByString(
                bus_index,
                channel,
                id,
                string,
                value_normalized,
            )
        }
    }
}

impl<P: Vst3Plugin> IProcessContextRequirementsTrait for Component<P> {
    unsafe fn getProcessContextRequirements(&self) -> uint32 {
        unsafe { self.wrapper.getProcessContextRequirements() }
    }
}

impl<P: Vst3Plugin> IUnitInfoTrait for Component<P> {
    unsafe fn getUnitCount(&self) -> int32 {
        unsafe { self.wrapper.getUnitCount() }
    }

    unsafe fn getUnitInfo(&self, unit_index: int32, info: *mut UnitInfo) -> tresult {
        unsafe { self.wrapper.getUnitInfo(unit_index, info) }
    }

    unsafe fn getProgramListCount(&self) -> int32 {
        unsafe { self.wrapper.getProgramListCount() }
    }

    unsafe fn getProgramListInfo(&self, list_index: int32, info: *mut ProgramListInfo) -> tresult {
        unsafe { self.wrapper.getProgramListInfo(list_index, info) }
    }

    unsafe fn getProgramName(
        &self,
        list_id: ProgramListID,
        program_index: int32,
        name: *mut String128,
    ) -> tresult {
        unsafe { self.wrapper.getProgramName(list_id, program_index, name) }
    }

    unsafe fn getProgramInfo(
        &self,
        list_id: ProgramListID,
        program_index: int32,
        attribute_id: CString,
        attribute_value: *mut String128,
    ) -> tresult {
        unsafe {
            self.wrapper
                .getProgramInfo(list_id, program_index, attribute_id, attribute_value)
        }
    }

    unsafe fn hasProgramPitchNames(&self, list_id: ProgramListID, program_index: int32) -> tresult {
        unsafe { self.wrapper.hasProgramPitchNames(list_id, program_index) }
    }

    unsafe fn getProgramPitchName(
        &self,
        list_id: ProgramListID,
        program_index: int32,
        midi_pitch: int16,
        name: *mut String128,
    ) -> tresult {
        unsafe {
            self.wrapper
                .getProgramPitchName(list_id, program_index, midi_pitch, name)
        }
    }

    unsafe fn getSelectedUnit(&self) -> UnitID {
        unsafe { self.wrapper.getSelectedUnit() }
    }

    unsafe fn selectUnit(&self, id: UnitID) -> tresult {
        unsafe { self.wrapper.selectUnit(id) }
    }

    unsafe fn getUnitByBus(
        &self,
        type_: MediaType,
        dir: BusDirection,
        bus_index: int32,
        channel: int32,
        unit_id: *mut UnitID,
    ) -> tresult {
        unsafe {
            self.wrapper
                .getUnitByBus(type_, dir, bus_index, channel, unit_id)
        }
    }

    unsafe fn setUnitProgramData(
        &self,
        list_or_unit_id: int32,
        program_index: int32,
        data: *mut IBStream,
    ) -> tresult {
        unsafe {
            self.wrapper
                .setUnitProgramData(list_or_unit_id, program_index, data)
        }
    }
}

impl<P: Vst3Plugin> IInfoListenerTrait for Component<P> {
    unsafe fn setChannelContextInfos(&self, list: *mut IAttributeList) -> tresult {
        unsafe { self.wrapper.setChannelContextInfos(list) }
    }
}

// ------------------------------------------------------------------------------------------
// The factory
