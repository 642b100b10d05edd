//! The VST3 factory (two classes) and the module entry points.

use super::*;

/// The plugin factory: the two classes of the table in the module documentation.
pub struct Factory {
    infos: [PluginInfo; 2],
}

impl Class for Factory {
    type Interfaces = (IPluginFactory, IPluginFactory2, IPluginFactory3);
}

impl Default for Factory {
    fn default() -> Self {
        Self::new()
    }
}

impl Factory {
    pub fn new() -> Self {
        let main = PluginInfo::for_plugin::<NmfSeparatorVst3>();
        let mut multi = PluginInfo::for_plugin::<NmfSeparatorClap>();
        multi.name = MULTI_OUT_NAME;
        Self {
            infos: [main, multi],
        }
    }

    fn info(&self, index: int32) -> Option<&PluginInfo> {
        usize::try_from(index).ok().and_then(|i| self.infos.get(i))
    }

    /// A new instance of class `index` as the interface `iid`.
    unsafe fn create(index: usize, iid: FIDString, obj: *mut *mut c_void) -> tresult {
        fn query<P: Vst3Plugin>(iid: FIDString, obj: *mut *mut c_void) -> tresult {
            let component = ComWrapper::new(Component::<P>::new());
            let unknown = component.as_com_ref::<FUnknown>().unwrap();
            let ptr = unknown.as_ptr();
            // SAFETY: `ptr` is our live object; `iid` and `obj` are the host's.
            unsafe { ((*(*ptr).vtbl).queryInterface)(ptr, iid as *const TUID, obj) }
        }
        match index {
            0 => query::<NmfSeparatorVst3>(iid, obj),
            _ => query::<NmfSeparatorClap>(iid, obj),
        }
    }
}

impl IPluginFactoryTrait for Factory {
    unsafe fn getFactoryInfo(&self, info: *mut PFactoryInfo) -> tresult {
        if info.is_null() {
            return kInvalidArgument;
        }
        unsafe { *info = self.infos[0].create_factory_info() };
        kResultOk
    }

    unsafe fn countClasses(&self) -> int32 {
        self.infos.len() as int32
    }

    unsafe fn getClassInfo(&self, index: int32, info: *mut PClassInfo) -> tresult {
        match self.info(index) {
            Some(i) if !info.is_null() => {
                unsafe { *info = i.create_class_info() };
                kResultOk
            }
            _ => kInvalidArgument,
        }
    }

    unsafe fn createInstance(
        &self,
        cid: FIDString,
        iid: FIDString,
        obj: *mut *mut c_void,
    ) -> tresult {
        if cid.is_null() || iid.is_null() || obj.is_null() {
            return kInvalidArgument;
        }
        // SAFETY: a class id is 16 bytes.
        let cid = unsafe { &*(cid as *const [u8; 16]) };
        match self.infos.iter().position(|i| i.cid == cid) {
            Some(index) => unsafe { Self::create(index, iid, obj) },
            None => kInvalidArgument,
        }
    }
}

impl IPluginFactory2Trait for Factory {
    unsafe fn getClassInfo2(&self, index: int32, info: *mut PClassInfo2) -> tresult {
        match self.info(index) {
            Some(i) if !info.is_null() => {
                unsafe { *info = i.create_class_info_2() };
                kResultOk
            }
            _ => kInvalidArgument,
        }
    }
}

impl IPluginFactory3Trait for Factory {
    unsafe fn getClassInfoUnicode(&self, index: int32, info: *mut PClassInfoW) -> tresult {
        match self.info(index) {
            Some(i) if !info.is_null() => {
                unsafe { *info = i.create_class_info_unicode() };
                kResultOk
            }
            _ => kInvalidArgument,
        }
    }

    unsafe fn setHostContext(&self, _context: *mut FUnknown) -> tresult {
        kResultOk
    }
}

/// The VST3 module entry point: the plugin factory (one per call; the host releases it).
#[unsafe(no_mangle)]
pub extern "system" fn GetPluginFactory() -> *mut c_void {
    ComWrapper::new(Factory::new())
        .to_com_ptr::<IPluginFactory>()
        .unwrap()
        .into_raw() as *mut c_void
}

pub(super) fn setup_loggers() {
    nice_plug::wrapper::setup_logger::<NmfSeparatorVst3>();
    nice_plug::wrapper::setup_logger::<NmfSeparatorClap>();
}

/// Linux (and other Unix) module entry, called once after loading the library.
#[unsafe(no_mangle)]
#[cfg(all(target_family = "unix", not(target_os = "macos")))]
pub extern "C" fn ModuleEntry(_lib_handle: *mut c_void) -> bool {
    setup_loggers();
    true
}

/// Linux (and other Unix) module exit, called once before unloading the library.
#[unsafe(no_mangle)]
#[cfg(all(target_family = "unix", not(target_os = "macos")))]
pub extern "C" fn ModuleExit() -> bool {
    true
}

/// macOS bundle entry.
#[unsafe(no_mangle)]
#[cfg(target_os = "macos")]
pub extern "C" fn bundleEntry(_bundle: *mut c_void) -> bool {
    setup_loggers();
    true
}

/// macOS bundle exit.
#[unsafe(no_mangle)]
#[cfg(target_os = "macos")]
pub extern "C" fn bundleExit() -> bool {
    true
}

/// Windows DLL entry.
#[unsafe(no_mangle)]
#[cfg(target_os = "windows")]
pub extern "system" fn InitDll() -> bool {
    setup_loggers();
    true
}

/// Windows DLL exit.
#[unsafe(no_mangle)]
#[cfg(target_os = "windows")]
pub extern "system" fn ExitDll() -> bool {
    true
}
