//! The one FFI-safe wrapper (after libsignal's `run_ffi_safe`), Java <-> Rust conversions, and
//! the mapping of errors to Java exception classes.

use std::any::Any;
use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};

use jni::errors::ErrorPolicy;
use jni::objects::{JObjectArray, JString};
use jni::strings::{JNIStr, JNIString};
use jni::{jni_str, Env, EnvUnowned};
use withawsrole_core::{BrokerError, ErrorKind};

/// Why an export failed: the core said no, or JNI itself failed.
#[derive(Debug)]
pub enum BridgeError {
    Broker(BrokerError),
    Jni(jni::errors::Error),
}

impl From<BrokerError> for BridgeError {
    fn from(e: BrokerError) -> Self {
        BridgeError::Broker(e)
    }
}

impl From<jni::errors::Error> for BridgeError {
    fn from(e: jni::errors::Error) -> Self {
        BridgeError::Jni(e)
    }
}

impl BridgeError {
    /// The Java exception class (package `org.withawsrole.bridge`) for this error.
    fn exception_class(&self) -> &'static JNIStr {
        match self {
            BridgeError::Broker(e) => match e.kind() {
                ErrorKind::InvalidRequest => {
                    jni_str!("org/withawsrole/bridge/InvalidRequestException")
                }
                ErrorKind::PermissionDenied => {
                    jni_str!("org/withawsrole/bridge/PermissionDeniedException")
                }
                ErrorKind::Unavailable => {
                    jni_str!("org/withawsrole/bridge/VaultUnavailableException")
                }
                ErrorKind::Internal => INTERNAL,
            },
            BridgeError::Jni(_) => INTERNAL,
        }
    }

    fn message(&self) -> String {
        match self {
            BridgeError::Broker(e) => e.to_string(),
            BridgeError::Jni(e) => format!("JNI call failed in withawsrole: {e}"),
        }
    }
}

const INTERNAL: &JNIStr = jni_str!("org/withawsrole/bridge/InternalBridgeException");
const LAST_RESORT: &JNIStr = jni_str!("java/lang/AssertionError");
const MAX_MESSAGE: usize = 2000;

/// Runs an export body: `Ok` is returned; `Err` becomes the Java exception of its kind; a panic
/// becomes an `InternalBridgeException`. On failure Java gets a default value (null/void) along
/// with the pending exception. Nothing unwinds into the JVM.
pub fn run_ffi_safe<'local, T, F>(env: &mut EnvUnowned<'local>, body: F) -> T
where
    T: Default,
    F: FnOnce(&mut Env<'local>) -> Result<T, BridgeError>,
{
    env.with_env(|env| -> Result<T, jni::errors::Error> {
        match catch_unwind(AssertUnwindSafe(|| body(env))) {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => {
                throw(env, error.exception_class(), &error.message());
                Ok(T::default())
            }
            Err(payload) => {
                let message = format!("Rust panic in withawsrole: {}", panic_message(&*payload));
                drop_payload(payload);
                throw(env, INTERNAL, &message);
                Ok(T::default())
            }
        }
    })
    .resolve::<LastResort>()
}

/// Throws `class(message)`; when that class cannot be thrown, an `AssertionError` instead.
/// A Java exception already pending (e.g. from a failed JNI call) is left as it is.
fn throw(env: &mut Env<'_>, class: &JNIStr, message: &str) {
    if env.exception_check() {
        return;
    }
    let message = JNIString::new(truncate(message));
    if try_throw(env, class, &message) {
        return;
    }
    env.exception_clear();
    let _ = try_throw(env, LAST_RESORT, &message);
}

fn try_throw(env: &mut Env<'_>, class: &JNIStr, message: &JNIStr) -> bool {
    // FindClass from a native method searches the loader of the class declaring it (the
    // bridge jar's), not the thread's context loader: the exception is the caller's class.
    let Ok(class) = env.find_class(class) else {
        return false;
    };
    let _ = env.throw_new(&class, message);
    env.exception_check()
}

/// If mapping itself failed or panicked, still leave Java an exception rather than nothing.
struct LastResort;

impl<T: Default> ErrorPolicy<T, jni::errors::Error> for LastResort {
    type Captures<'unowned_env_local: 'native_method, 'native_method> = ();

    fn on_error<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _cap: &mut (),
        err: jni::errors::Error,
    ) -> jni::errors::Result<T> {
        throw(
            env,
            LAST_RESORT,
            &format!("withawsrole: JNI failure while reporting an error: {err}"),
        );
        Ok(T::default())
    }

    fn on_panic<'unowned_env_local: 'native_method, 'native_method>(
        env: &mut Env<'unowned_env_local>,
        _cap: &mut (),
        payload: Box<dyn Any + Send + 'static>,
    ) -> jni::errors::Result<T> {
        drop_payload(payload);
        throw(
            env,
            LAST_RESORT,
            "withawsrole: panic while reporting an error",
        );
        Ok(T::default())
    }
}

/// The text of a panic, guarded: even reading it must not unwind further.
fn panic_message(payload: &(dyn Any + Send)) -> String {
    catch_unwind(AssertUnwindSafe(|| {
        if let Some(s) = payload.downcast_ref::<&'static str>() {
            (*s).to_owned()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "(a panic without a message)".to_owned()
        }
    }))
    .unwrap_or_else(|_| "(the panic message could not be read)".to_owned())
}

/// Frees a caught panic's payload without letting its destructor unwind further.
fn drop_payload(payload: Box<dyn Any + Send>) {
    // Dropping the payload frees it (valgrind showed one leak per caught panic otherwise); a
    // payload whose own Drop panics is the one thing left to forget.
    if let Err(inner) = catch_unwind(AssertUnwindSafe(move || drop(payload))) {
        std::mem::forget(inner);
    }
}

fn truncate(message: &str) -> Cow<'_, str> {
    match message.char_indices().nth(MAX_MESSAGE) {
        None => Cow::Borrowed(message),
        Some((i, _)) => Cow::Owned(format!("{}…", &message[..i])),
    }
}

/// `String[]` -> `Vec<String>`; a null array or element is an error (the bridge never sends one).
pub fn strings_from_java<'local>(
    env: &mut Env<'local>,
    array: &JObjectArray<'local, JString<'local>>,
) -> Result<Vec<String>, BridgeError> {
    if array.is_null() {
        return Err(jni::errors::Error::NullPtr("requestPairs").into());
    }
    let len = array.len(env)?;
    let mut out = Vec::with_capacity(len);
    for i in 0..len {
        let element = array.get_element(env, i)?;
        if element.is_null() {
            return Err(jni::errors::Error::NullPtr("requestPairs element").into());
        }
        let text = element.try_to_string(env);
        env.delete_local_ref(element);
        out.push(text?);
    }
    Ok(out)
}

/// `[(key, value)]` -> `String[]` of alternating key, value.
pub fn pairs_to_java<'local, V: AsRef<str>>(
    env: &mut Env<'local>,
    pairs: Vec<(&'static str, V)>,
) -> Result<JObjectArray<'local, JString<'local>>, BridgeError> {
    let array = JObjectArray::<JString>::new(env, pairs.len() * 2, JString::null())?;
    for (i, (key, value)) in pairs.iter().enumerate() {
        for (j, text) in [*key, value.as_ref()].into_iter().enumerate() {
            let s = JString::from_str(env, text)?;
            array.set_element(env, 2 * i + j, &s)?;
            env.delete_local_ref(s);
        }
    }
    Ok(array)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn panic_messages_are_read_from_str_and_string_payloads() {
        let s: Box<dyn Any + Send> = Box::new("static text");
        assert_eq!(panic_message(&*s), "static text");
        let s: Box<dyn Any + Send> = Box::new(String::from("owned text"));
        assert_eq!(panic_message(&*s), "owned text");
        let s: Box<dyn Any + Send> = Box::new(42u8);
        assert_eq!(panic_message(&*s), "(a panic without a message)");
    }

    #[test]
    fn long_messages_are_cut_on_a_char_boundary() {
        let long = "é".repeat(MAX_MESSAGE + 10);
        let cut = truncate(&long);
        assert_eq!(cut.chars().count(), MAX_MESSAGE + 1);
        assert!(cut.ends_with('…'));
        assert_eq!(truncate("short"), "short");
    }

    #[test]
    fn each_error_kind_has_its_exception_class() {
        let class = |e: BrokerError| {
            BridgeError::Broker(e)
                .exception_class()
                .to_str()
                .into_owned()
        };
        assert_eq!(
            class(BrokerError::MissingPurpose),
            "org/withawsrole/bridge/InvalidRequestException"
        );
        assert_eq!(
            class(BrokerError::Forbidden { path: "p".into() }),
            "org/withawsrole/bridge/PermissionDeniedException"
        );
        assert_eq!(
            class(BrokerError::Unreachable {
                addr: "a".into(),
                cause: "c".into()
            }),
            "org/withawsrole/bridge/VaultUnavailableException"
        );
        assert_eq!(
            class(BrokerError::Internal("x".into())),
            "org/withawsrole/bridge/InternalBridgeException"
        );
    }
}
