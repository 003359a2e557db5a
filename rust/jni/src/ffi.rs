//! The one FFI-safe wrapper (after libsignal's `run_ffi_safe`), Java <-> Rust conversions, and
//! the mapping of errors to Java exception classes.

use std::any::Any;
use std::borrow::Cow;
use std::ffi::CStr;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use jni::errors::ErrorPolicy;
use jni::objects::{JObjectArray, JString};
use jni::strings::{JNIStr, JNIString};
use jni::sys::jlong;
use jni::{jni_str, Env, EnvUnowned};
use withawsrole_core::request::RequestPairs;
use withawsrole_core::{BrokerError, ErrorKind};
use zeroize::Zeroizing;

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
    /// The Java exception class (package `org.withawsrole.bridge`) for this error: the one place
    /// that maps Rust errors to Java. Expected failures (the user can act on them) are subclasses
    /// of `AwsRoleException`, which callers catch as one type; an internal error or a JNI failure
    /// is `InternalBridgeException`, which is not one (a bug, as uniffi keeps unexpected errors a
    /// type apart). `ExceptionClassesTest` (JVM) checks both sides of that split.
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

/// A request as the bridge sends it in a `String[]` of alternating key, value.
pub fn request_from_java<'local>(
    env: &mut Env<'local>,
    array: &JObjectArray<'local, JString<'local>>,
) -> Result<RequestPairs, BridgeError> {
    Ok(RequestPairs::from_flat(strings_from_java(env, array)?)?)
}

/// A request as the bridge sends it packed, `key \0 value \0 …`.
pub fn request_from_packed<'local>(
    env: &Env<'local>,
    packed: &JString<'local>,
) -> Result<RequestPairs, BridgeError> {
    Ok(RequestPairs::from_flat(packed_from_java(env, packed)?)?)
}

/// How long a `…Within` call may wait, from Java's milliseconds (negative: not at all).
pub fn wait_from_java(millis: jlong) -> Duration {
    Duration::from_millis(u64::try_from(millis).unwrap_or(0))
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

/// U+0000 in modified UTF-8, the encoding of JNI's string functions: the separator of the packed
/// form. No other character's encoding contains these bytes (0xC0 is never a continuation byte).
const MUTF8_NUL: [u8; 2] = [0xC0, 0x80];

/// A packed request, `key \0 value \0 …`, -> the alternating key, value strings that
/// `RequestPairs::from_flat` takes (and wipes). A null string is an error (the bridge never sends one).
pub fn packed_from_java<'local>(
    env: &Env<'local>,
    packed: &JString<'local>,
) -> Result<Vec<String>, BridgeError> {
    if packed.is_null() {
        return Err(jni::errors::Error::NullPtr("request").into());
    }
    // The JVM's UTF buffer is the JVM's to free; the pieces are the only copies Rust makes.
    let chars = packed.mutf8_chars(env)?;
    Ok(split_packed(chars.to_bytes()))
}

/// Splits modified UTF-8 `key \0 value \0 …` (the last `\0` optional; empty: no pairs).
fn split_packed(bytes: &[u8]) -> Vec<String> {
    let mut rest = bytes.strip_suffix(&MUTF8_NUL).unwrap_or(bytes);
    if rest.is_empty() {
        return Vec::new();
    }
    // Wiped if a decode panics half-way; on success its contents move out.
    let mut out = Zeroizing::new(Vec::new());
    loop {
        // Compared byte by byte: a slice comparison per window is a memcmp call per byte.
        match rest
            .windows(2)
            .position(|w| w[0] == MUTF8_NUL[0] && w[1] == MUTF8_NUL[1])
        {
            Some(i) => {
                out.push(decode_mutf8(&rest[..i]));
                rest = &rest[i + 2..];
            }
            None => {
                out.push(decode_mutf8(rest));
                return std::mem::take(&mut *out);
            }
        }
    }
}

/// One piece, without NULs: plain UTF-8 unless it holds supplementary characters (surrogate pairs
/// in modified UTF-8, e.g. an emoji in `config_text`). The JVM hands over valid modified UTF-8
/// only, so the lossy decoder never replaces anything.
fn decode_mutf8(piece: &[u8]) -> String {
    match std::str::from_utf8(piece) {
        Ok(text) => text.to_owned(),
        Err(_) => simd_cesu8::mutf8::decode_lossy(piece).into_owned(),
    }
}

/// `[(key, value)]` -> one `key \0 value \0 …` string. The one Rust buffer holding the secrets
/// is sized exactly up front (no reallocation leaves a copy behind) and wiped after the copy.
pub fn packed_to_java<'local, V: AsRef<str>>(
    env: &mut Env<'local>,
    pairs: Vec<(&'static str, V)>,
) -> Result<JString<'local>, BridgeError> {
    let encoded = encode_packed(&pairs);
    let text = CStr::from_bytes_with_nul(&encoded)
        .map_err(|_| BrokerError::Internal("the packed result holds a raw NUL".into()))?;
    debug_assert!(JNIStr::from_cstr(text).is_some());
    // SAFETY: `encode_packed` writes modified UTF-8 (NUL as C0 80, 4-byte characters as surrogate
    // pairs, everything else as the valid UTF-8 it was); `from_cstr` would check it again byte by
    // byte, a tenth of a cache hit for a 1.5 KB result.
    let text = unsafe { JNIStr::from_cstr_unchecked(text) };
    Ok(JString::from_jni_str(env, text)?)
}

/// Modified UTF-8 of `key \0 value \0 …`, NUL-terminated, in a buffer wiped on drop.
fn encode_packed<V: AsRef<str>>(pairs: &[(&'static str, V)]) -> Zeroizing<Vec<u8>> {
    let len = pairs
        .iter()
        .map(|(key, value)| mutf8_len(key) + mutf8_len(value.as_ref()) + 2 * MUTF8_NUL.len())
        .sum::<usize>()
        + 1;
    let mut out = Zeroizing::new(Vec::with_capacity(len));
    for (key, value) in pairs {
        for text in [*key, value.as_ref()] {
            push_mutf8(&mut out, text);
            out.extend_from_slice(&MUTF8_NUL);
        }
    }
    out.push(0);
    out
}

/// Bytes of `text` in modified UTF-8: NUL takes 2 bytes, a 4-byte character 6 (two surrogates).
fn mutf8_len(text: &str) -> usize {
    text.len()
        + text
            .bytes()
            .map(|b| match b {
                0 => 1,
                0xF0.. => 2,
                _ => 0,
            })
            .sum::<usize>()
}

fn push_mutf8(out: &mut Vec<u8>, text: &str) {
    if !text.bytes().any(|b| b == 0 || b >= 0xF0) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    for c in text.chars() {
        if c == '\0' {
            out.extend_from_slice(&MUTF8_NUL);
        } else if c.len_utf8() == 4 {
            let mut units = [0u16; 2];
            for &unit in c.encode_utf16(&mut units).iter() {
                out.extend_from_slice(&[
                    0xE0 | (unit >> 12) as u8,
                    0x80 | ((unit >> 6) & 0x3F) as u8,
                    0x80 | (unit & 0x3F) as u8,
                ]);
            }
        } else {
            let mut bytes = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut bytes).as_bytes());
        }
    }
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
    fn packed_pairs_round_trip_through_modified_utf8() {
        let pairs = vec![
            ("purpose", "ecr-push"),
            ("config_text", "# \u{1F680} ünïcode\n[purposes.x]"),
            ("empty", ""),
            ("nul", "a\0b"),
        ];
        let encoded = encode_packed(&pairs);
        assert_eq!(encoded.len(), encoded.capacity());
        let body = &encoded[..encoded.len() - 1];
        let joined: String = pairs.iter().map(|(k, v)| format!("{k}\0{v}\0")).collect();
        assert_eq!(body, &*simd_cesu8::mutf8::encode(&joined));
        // The bridge refuses a value holding NUL; here it would just split in two.
        assert_eq!(
            split_packed(body),
            [
                "purpose",
                "ecr-push",
                "config_text",
                "# \u{1F680} ünïcode\n[purposes.x]",
                "empty",
                "",
                "nul",
                "a",
                "b"
            ]
        );
    }

    #[test]
    fn packed_requests_may_omit_the_last_nul_and_may_be_empty() {
        assert_eq!(split_packed(b"purpose\xC0\x80x"), ["purpose", "x"]);
        assert_eq!(split_packed(b"purpose\xC0\x80\xC0\x80"), ["purpose", ""]);
        assert!(split_packed(b"").is_empty());
        assert_eq!(split_packed(b"purpose"), ["purpose"]);
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
