//! The few libuv functions the JS-thread connection needs, resolved at load time against the host
//! process (node exports its libuv), the way napi-sys resolves the napi functions: `dlopen(NULL)`
//! on Unix, the executable's module on Windows (node.exe exports `uv_*`, but napi-rs does not link
//! node.lib). A host without them (Bun, Deno) gets `None`, and the adapters keep the tokio path.

use std::os::raw::{c_int, c_void};
use std::sync::OnceLock;

/// `uv_handle_type` values (stable libuv ABI).
pub const UV_POLL: c_int = 8;
pub const UV_TIMER: c_int = 13;
/// `uv_poll_event` flags.
pub const UV_READABLE: c_int = 1;
pub const UV_WRITABLE: c_int = 2;
pub const UV_DISCONNECT: c_int = 4;

#[cfg(unix)]
pub type RawSock = c_int;
#[cfg(windows)]
pub type RawSock = usize; // SOCKET

pub type PollCb = unsafe extern "C" fn(handle: *mut c_void, status: c_int, events: c_int);
pub type TimerCb = unsafe extern "C" fn(handle: *mut c_void);
pub type CloseCb = unsafe extern "C" fn(handle: *mut c_void);

/// Function pointers into the host's libuv.
pub struct Uv {
    pub handle_size: unsafe extern "C" fn(c_int) -> usize,
    pub poll_init_socket: unsafe extern "C" fn(*mut c_void, *mut c_void, RawSock) -> c_int,
    pub poll_start: unsafe extern "C" fn(*mut c_void, c_int, PollCb) -> c_int,
    pub poll_stop: unsafe extern "C" fn(*mut c_void) -> c_int,
    pub close: unsafe extern "C" fn(*mut c_void, Option<CloseCb>),
    pub ref_: unsafe extern "C" fn(*mut c_void),
    pub unref: unsafe extern "C" fn(*mut c_void),
    pub timer_init: unsafe extern "C" fn(*mut c_void, *mut c_void) -> c_int,
    pub timer_start: unsafe extern "C" fn(*mut c_void, TimerCb, u64, u64) -> c_int,
    pub timer_stop: unsafe extern "C" fn(*mut c_void) -> c_int,
}

// SAFETY: plain function pointers into the host binary.
unsafe impl Send for Uv {}
unsafe impl Sync for Uv {}

fn load() -> Option<Uv> {
    #[cfg(unix)]
    let lib: libloading::Library = libloading::os::unix::Library::this().into();
    #[cfg(windows)]
    let lib: libloading::Library = libloading::os::windows::Library::this().ok()?.into();
    macro_rules! sym {
        ($name:literal) => {
            // SAFETY: the symbol has the libuv signature declared in `Uv` (libuv's stable ABI).
            unsafe { *lib.get(concat!($name, "\0").as_bytes()).ok()? }
        };
    }
    let uv = Uv {
        handle_size: sym!("uv_handle_size"),
        poll_init_socket: sym!("uv_poll_init_socket"),
        poll_start: sym!("uv_poll_start"),
        poll_stop: sym!("uv_poll_stop"),
        close: sym!("uv_close"),
        ref_: sym!("uv_ref"),
        unref: sym!("uv_unref"),
        timer_init: sym!("uv_timer_init"),
        timer_start: sym!("uv_timer_start"),
        timer_stop: sym!("uv_timer_stop"),
    };
    // keep the host handle open for the life of the process (the pointers live in it)
    std::mem::forget(lib);
    Some(uv)
}

/// The host's libuv, or `None` when it has none (or `MOTIA_NATIVE_JSLOOP=0` asks for the tokio path).
pub fn uv() -> Option<&'static Uv> {
    static UV: OnceLock<Option<Uv>> = OnceLock::new();
    UV.get_or_init(|| {
        if std::env::var("MOTIA_NATIVE_JSLOOP").is_ok_and(|v| v == "0") {
            return None;
        }
        load()
    })
    .as_ref()
}

/// Allocates zeroed memory for a handle of `kind` (freed with [`free_handle`] in the close callback).
pub fn alloc_handle(uv: &Uv, kind: c_int) -> *mut c_void {
    // SAFETY: uv_handle_size only reads a table.
    let size = unsafe { (uv.handle_size)(kind) }.max(std::mem::size_of::<*mut c_void>());
    let mem = vec![0u64; size.div_ceil(8)].into_boxed_slice();
    Box::into_raw(mem) as *mut c_void
}

/// # Safety
/// `h` came from [`alloc_handle`] with the same `kind` and libuv no longer uses it.
pub unsafe fn free_handle(uv: &Uv, kind: c_int, h: *mut c_void) {
    // SAFETY: see the function contract; called by libuv/napi on the JS thread.
    unsafe {
        let size = (uv.handle_size)(kind).max(std::mem::size_of::<*mut c_void>());
        let words = size.div_ceil(8);
        drop(Box::from_raw(std::ptr::slice_from_raw_parts_mut(h as *mut u64, words)));
    }
}

/// `handle->data` (the first field of every uv handle).
///
/// # Safety
/// `h` points to a live uv handle.
pub unsafe fn data(h: *mut c_void) -> *mut c_void {
    // SAFETY: see the function contract; called by libuv/napi on the JS thread.
    unsafe { *(h as *mut *mut c_void) }
}

/// # Safety
/// `h` points to a live uv handle.
pub unsafe fn set_data(h: *mut c_void, d: *mut c_void) {
    // SAFETY: see the function contract; called by libuv/napi on the JS thread.
    unsafe {
        *(h as *mut *mut c_void) = d;
    }
}
