//! Raw napi calls for the JS-thread connection: promises without a threadsafe function, handle and
//! callback scopes, and the few JS functions we call (`queueMicrotask`, `JSON.parse`, the error
//! class). Every function here must run on the JS thread that owns `env`.

use std::ffi::c_char;
use std::os::raw::c_void;
use std::ptr::null_mut;
use std::rc::{Rc, Weak};

use napi::sys;

use super::Shared;
use crate::error::AdapterError;

fn check(status: sys::napi_status, what: &str) -> napi::Result<()> {
    if status == sys::Status::napi_ok {
        Ok(())
    } else {
        Err(napi::Error::from_reason(format!(
            "[MOTIA_INTERNAL] napi call failed: {what} ({status})"
        )))
    }
}

pub fn create_promise(env: sys::napi_env) -> napi::Result<(sys::napi_deferred, sys::napi_value)> {
    let mut d = null_mut();
    let mut p = null_mut();
    // SAFETY: JS thread, live env.
    check(
        unsafe { sys::napi_create_promise(env, &mut d, &mut p) },
        "napi_create_promise",
    )?;
    Ok((d, p))
}

pub fn resolve(env: sys::napi_env, d: sys::napi_deferred, v: sys::napi_value) {
    // SAFETY: `d` is settled exactly once (it is moved out of its slot).
    unsafe { sys::napi_resolve_deferred(env, d, v) };
}

pub fn reject(env: sys::napi_env, d: sys::napi_deferred, v: sys::napi_value) {
    // SAFETY: as `resolve`.
    unsafe { sys::napi_reject_deferred(env, d, v) };
}

pub fn null(env: sys::napi_env) -> sys::napi_value {
    let mut v = null_mut();
    // SAFETY: JS thread.
    unsafe { sys::napi_get_null(env, &mut v) };
    v
}

pub fn undefined(env: sys::napi_env) -> sys::napi_value {
    let mut v = null_mut();
    // SAFETY: JS thread.
    unsafe { sys::napi_get_undefined(env, &mut v) };
    v
}

pub fn boolean(env: sys::napi_env, b: bool) -> sys::napi_value {
    let mut v = null_mut();
    // SAFETY: JS thread.
    unsafe { sys::napi_get_boolean(env, b, &mut v) };
    v
}

pub fn string(env: sys::napi_env, s: &str) -> sys::napi_value {
    bytes_string(env, s.as_bytes())
}

/// A JS string from bytes that should be UTF-8 (invalid sequences become U+FFFD).
pub fn bytes_string(env: sys::napi_env, b: &[u8]) -> sys::napi_value {
    let mut v = null_mut();
    // SAFETY: ptr/len of a byte slice; napi decodes it as UTF-8.
    unsafe { sys::napi_create_string_utf8(env, b.as_ptr() as *const c_char, b.len() as isize, &mut v) };
    v
}

/// A new empty object.
pub fn object(env: sys::napi_env) -> sys::napi_value {
    let mut v = null_mut();
    // SAFETY: JS thread.
    unsafe { sys::napi_create_object(env, &mut v) };
    v
}

/// `obj[name] = v`.
pub fn set(env: sys::napi_env, obj: sys::napi_value, name: &str, v: sys::napi_value) {
    // SAFETY: JS thread, live values.
    unsafe { sys::napi_set_property(env, obj, string(env, name), v) };
}

pub fn number(env: sys::napi_env, n: f64) -> sys::napi_value {
    let mut v = null_mut();
    // SAFETY: JS thread.
    unsafe { sys::napi_create_double(env, n, &mut v) };
    v
}

/// `obj[name] = n`.
pub fn set_number(env: sys::napi_env, obj: sys::napi_value, name: &str, n: f64) {
    let mut v = null_mut();
    // SAFETY: JS thread, live object.
    unsafe {
        sys::napi_create_double(env, n, &mut v);
        sys::napi_set_property(env, obj, string(env, name), v);
    }
}

fn named(env: sys::napi_env, obj: sys::napi_value, name: &str) -> napi::Result<sys::napi_value> {
    let mut v = null_mut();
    let key = string(env, name);
    // SAFETY: JS thread, live values.
    check(unsafe { sys::napi_get_property(env, obj, key, &mut v) }, name)?;
    Ok(v)
}

fn new_ref(env: sys::napi_env, v: sys::napi_value) -> napi::Result<sys::napi_ref> {
    let mut r = null_mut();
    // SAFETY: JS thread.
    check(
        unsafe { sys::napi_create_reference(env, v, 1, &mut r) },
        "napi_create_reference",
    )?;
    Ok(r)
}

fn get_ref(env: sys::napi_env, r: sys::napi_ref) -> sys::napi_value {
    let mut v = null_mut();
    // SAFETY: `r` is a live strong reference.
    unsafe { sys::napi_get_reference_value(env, r, &mut v) };
    v
}

/// A strong reference to one JS value, released by [`Ref::take`]. Node before 22 only references
/// objects, so a primitive is kept in a one-element array.
pub struct Ref(sys::napi_ref, bool);

impl Ref {
    pub fn new(env: sys::napi_env, v: sys::napi_value) -> napi::Result<Ref> {
        let mut t = 0;
        // SAFETY: JS thread.
        unsafe { sys::napi_typeof(env, v, &mut t) };
        if t == sys::ValueType::napi_object || t == sys::ValueType::napi_function {
            return Ok(Ref(new_ref(env, v)?, false));
        }
        let mut arr = null_mut();
        // SAFETY: JS thread.
        unsafe {
            check(
                sys::napi_create_array_with_length(env, 1, &mut arr),
                "napi_create_array",
            )?;
            check(sys::napi_set_element(env, arr, 0, v), "napi_set_element")?;
        }
        Ok(Ref(new_ref(env, arr)?, true))
    }

    /// The value, releasing the reference.
    pub fn take(self, env: sys::napi_env) -> sys::napi_value {
        let mut v = get_ref(env, self.0);
        // SAFETY: live reference, deleted once; a boxed primitive is element 0.
        unsafe {
            sys::napi_delete_reference(env, self.0);
            if self.1 {
                let arr = v;
                sys::napi_get_element(env, arr, 0, &mut v);
            }
        }
        v
    }
}

/// A handle scope for callbacks that come from libuv (no JS on the stack).
pub struct HandleScope(sys::napi_env, sys::napi_handle_scope);

impl HandleScope {
    pub fn open(env: sys::napi_env) -> HandleScope {
        let mut s = null_mut();
        // SAFETY: JS thread.
        unsafe { sys::napi_open_handle_scope(env, &mut s) };
        HandleScope(env, s)
    }
}

impl Drop for HandleScope {
    fn drop(&mut self) {
        // SAFETY: opened by `open`, closed once, in LIFO order (RAII).
        unsafe { sys::napi_close_handle_scope(self.0, self.1) };
    }
}

/// A callback scope: closing the outermost one runs `process.nextTick` callbacks and microtasks.
pub struct CallbackScope(sys::napi_env, sys::napi_callback_scope);

impl CallbackScope {
    pub fn open(env: sys::napi_env, js: &JsRefs) -> CallbackScope {
        let mut s = null_mut();
        let resource = get_ref(env, js.resource);
        // SAFETY: JS thread, inside a handle scope, `async_ctx` from napi_async_init.
        unsafe { sys::napi_open_callback_scope(env, resource, js.async_ctx, &mut s) };
        CallbackScope(env, s)
    }
}

impl Drop for CallbackScope {
    fn drop(&mut self) {
        // SAFETY: opened by `open`, closed once.
        unsafe { sys::napi_close_callback_scope(self.0, self.1) };
    }
}

/// JS values kept for the life of one connection.
pub struct JsRefs {
    env: sys::napi_env,
    error_class: sys::napi_ref,
    json: sys::napi_ref,
    json_parse: sys::napi_ref,
    queue_microtask: sys::napi_ref,
    flush: std::cell::Cell<sys::napi_ref>,
    /// A subscriber's `(channel, payload)` callback (null: a command connection).
    on_message: std::cell::Cell<sys::napi_ref>,
    resource: sys::napi_ref,
    async_ctx: sys::napi_async_context,
    /// The env was torn down: no napi call may be made any more.
    pub dead: std::cell::Cell<bool>,
}

impl JsRefs {
    pub fn new(env: sys::napi_env, error_class: sys::napi_value) -> napi::Result<JsRefs> {
        let mut global = null_mut();
        // SAFETY: JS thread.
        check(unsafe { sys::napi_get_global(env, &mut global) }, "napi_get_global")?;
        let json = named(env, global, "JSON")?;
        let parse = named(env, json, "parse")?;
        let qm = named(env, global, "queueMicrotask")?;
        let mut resource = null_mut();
        // SAFETY: JS thread.
        check(
            unsafe { sys::napi_create_object(env, &mut resource) },
            "napi_create_object",
        )?;
        let name = string(env, "MotiaRedisJsLoop");
        let mut ctx = null_mut();
        // SAFETY: JS thread; destroyed in Drop.
        check(
            unsafe { sys::napi_async_init(env, resource, name, &mut ctx) },
            "napi_async_init",
        )?;
        Ok(JsRefs {
            env,
            error_class: new_ref(env, error_class)?,
            json: new_ref(env, json)?,
            json_parse: new_ref(env, parse)?,
            queue_microtask: new_ref(env, qm)?,
            flush: std::cell::Cell::new(null_mut()),
            on_message: std::cell::Cell::new(null_mut()),
            resource: new_ref(env, resource)?,
            async_ctx: ctx,
            dead: std::cell::Cell::new(false),
        })
    }

    /// Creates the per-connection flush function that `queueMicrotask` runs.
    pub fn set_flush(&self, env: sys::napi_env, shared: Weak<Shared>) -> napi::Result<()> {
        let data = Box::into_raw(Box::new(shared)) as *mut c_void;
        let mut f = null_mut();
        let name = "motiaRedisFlush";
        // SAFETY: JS thread; `data` is freed by `drop_flush_data` when the function is collected.
        unsafe {
            check(
                sys::napi_create_function(
                    env,
                    name.as_ptr() as *const c_char,
                    name.len() as isize,
                    Some(flush_cb),
                    data,
                    &mut f,
                ),
                "napi_create_function",
            )?;
            check(
                sys::napi_add_finalizer(env, f, data, Some(drop_flush_data), null_mut(), null_mut()),
                "napi_add_finalizer",
            )?;
        }
        self.flush.set(new_ref(env, f)?);
        Ok(())
    }

    /// Sets the function [`JsRefs::deliver`] calls.
    pub fn set_on_message(&self, env: sys::napi_env, f: sys::napi_value) -> napi::Result<()> {
        self.on_message.set(new_ref(env, f)?);
        Ok(())
    }

    /// `onMessage(channel, payload)` for one pub/sub message (inside a callback scope). What it
    /// throws is dropped: the JS dispatcher catches its handlers' errors itself.
    pub fn deliver(&self, env: sys::napi_env, channel: &[u8], payload: &[u8]) {
        let r = self.on_message.get();
        if r.is_null() {
            return;
        }
        let f = get_ref(env, r);
        let args = [bytes_string(env, channel), bytes_string(env, payload)];
        let mut out = null_mut();
        // SAFETY: JS thread, live values.
        let status = unsafe { sys::napi_call_function(env, undefined(env), f, 2, args.as_ptr(), &mut out) };
        if status != sys::Status::napi_ok {
            let mut exc = null_mut();
            // SAFETY: clears what the callback threw.
            unsafe { sys::napi_get_and_clear_last_exception(env, &mut exc) };
        }
    }

    /// `queueMicrotask(flush)`.
    pub fn queue_flush(&self, env: sys::napi_env) -> napi::Result<()> {
        let qm = get_ref(env, self.queue_microtask);
        let f = get_ref(env, self.flush.get());
        let mut out = null_mut();
        // SAFETY: JS thread, live values.
        check(
            unsafe { sys::napi_call_function(env, undefined(env), qm, 1, &f, &mut out) },
            "queueMicrotask",
        )
    }

    /// `JSON.parse(text)`, or the exception's message.
    pub fn json_parse(&self, env: sys::napi_env, text: &str) -> Result<sys::napi_value, String> {
        let json = get_ref(env, self.json);
        let parse = get_ref(env, self.json_parse);
        let arg = string(env, text);
        let mut out = null_mut();
        // SAFETY: JS thread, live values.
        let status = unsafe { sys::napi_call_function(env, json, parse, 1, &arg, &mut out) };
        if status == sys::Status::napi_ok {
            return Ok(out);
        }
        let mut exc = null_mut();
        // SAFETY: clears the pending SyntaxError.
        unsafe { sys::napi_get_and_clear_last_exception(env, &mut exc) };
        Err(value_text(env, exc, "message").unwrap_or_else(|| "not JSON".into()))
    }

    /// `new MotiaAdapterError(code, message)` for `e`.
    pub fn error(&self, env: sys::napi_env, e: &AdapterError) -> sys::napi_value {
        let ctor = get_ref(env, self.error_class);
        let args = [string(env, e.code()), string(env, &e.js_message())];
        let mut out = null_mut();
        // SAFETY: JS thread, live values.
        let status = unsafe { sys::napi_new_instance(env, ctor, 2, args.as_ptr(), &mut out) };
        if status != sys::Status::napi_ok || out.is_null() {
            let mut exc = null_mut();
            // SAFETY: clear anything the constructor threw, then build a plain Error with `code`.
            unsafe {
                sys::napi_get_and_clear_last_exception(env, &mut exc);
                sys::napi_create_error(env, args[0], args[1], &mut out);
            }
        }
        out
    }
}

fn value_text(env: sys::napi_env, v: sys::napi_value, prop: &str) -> Option<String> {
    if v.is_null() {
        return None;
    }
    let m = named(env, v, prop).ok()?;
    let mut s = null_mut();
    // SAFETY: JS thread.
    unsafe { sys::napi_coerce_to_string(env, m, &mut s) };
    let mut len = 0usize;
    // SAFETY: length query.
    unsafe { sys::napi_get_value_string_utf8(env, s, null_mut(), 0, &mut len) };
    let mut buf = vec![0u8; len + 1];
    // SAFETY: buffer of len + 1 bytes.
    unsafe { sys::napi_get_value_string_utf8(env, s, buf.as_mut_ptr() as *mut c_char, len + 1, &mut len) };
    buf.truncate(len);
    String::from_utf8(buf).ok()
}

impl Drop for JsRefs {
    fn drop(&mut self) {
        if self.dead.get() {
            return;
        }
        let env = self.env;
        // SAFETY: JS thread (Shared is dropped by a uv close callback or a finalizer).
        unsafe {
            sys::napi_async_destroy(env, self.async_ctx);
            for r in [
                self.error_class,
                self.json,
                self.json_parse,
                self.queue_microtask,
                self.flush.get(),
                self.on_message.get(),
                self.resource,
            ] {
                if !r.is_null() {
                    sys::napi_delete_reference(env, r);
                }
            }
        }
    }
}

unsafe extern "C" fn flush_cb(env: sys::napi_env, info: sys::napi_callback_info) -> sys::napi_value {
    // SAFETY: see the function contract; called by libuv/napi on the JS thread.
    unsafe {
        let mut data = null_mut();
        sys::napi_get_cb_info(env, info, null_mut(), null_mut(), null_mut(), &mut data);
        if !data.is_null() {
            let weak = &*(data as *const Weak<Shared>);
            if let Some(s) = weak.upgrade() {
                crate::binding::guard::catch(|| Rc::clone(&s).flush_from_js());
            }
        }
        null_mut()
    }
}

unsafe extern "C" fn drop_flush_data(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
    // SAFETY: see the function contract; called by libuv/napi on the JS thread.
    unsafe {
        drop(Box::from_raw(data as *mut Weak<Shared>));
    }
}

/// A JS value made with raw napi calls, returned as is from a `#[napi]` method.
pub struct JsRaw(pub sys::napi_value);

impl napi::bindgen_prelude::ToNapiValue for JsRaw {
    unsafe fn to_napi_value(_env: sys::napi_env, val: Self) -> napi::Result<sys::napi_value> {
        Ok(val.0)
    }
}
