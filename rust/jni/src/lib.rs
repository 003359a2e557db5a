//! JNI exports of withAwsRole. Keep in sync with
//! `bridge/.../org/withawsrole/bridge/internal/Native.java` and docs/architecture.md (JniContractTest
//! compares the two sides: names, argument and return types).
//!
//! Only conversions, error mapping and panic catching live here; every decision about Vault is
//! in `withawsrole_core`. Every export body runs inside [`run_ffi_safe`].
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod ffi;

use jni::objects::{JClass, JObjectArray, JString};
use jni::sys::jlong;
use jni::EnvUnowned;
use once_cell::sync::Lazy;
use withawsrole_core::{BrokerError, ChildTokenWait, CredentialBroker};

use crate::ffi::{
    packed_from_java, packed_to_java, pairs_to_java, run_ffi_safe, strings_from_java, BridgeError,
};

/// One broker per loaded library, i.e. per JVM (the bridge loads the library once).
static BROKER: Lazy<Result<CredentialBroker, BrokerError>> =
    Lazy::new(CredentialBroker::for_jenkins_controller);

fn broker() -> Result<&'static CredentialBroker, BridgeError> {
    BROKER.as_ref().map_err(|e| BridgeError::Broker(e.clone()))
}

/// Credentials for a request packed as `key \0 value \0 …`; returns the result packed the same way.
/// One string each way instead of `String[]`: a cache hit's cost was the per-string JNI calls.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_withawsrole_bridge_internal_Native_Broker_1credentialsPacked<
    'local,
>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    request: JString<'local>,
) -> JString<'local> {
    run_ffi_safe(&mut env, |env| {
        let flat = packed_from_java(env, &request)?;
        let pairs = withawsrole_core::request::RequestPairs::from_flat(flat)?;
        let issued = broker()?.credentials(&pairs)?;
        packed_to_java(env, issued.pairs())
    })
}

/// As `Broker_credentialsPacked`, but waits at most `wait_millis` for a fetch under way: an empty
/// string means "not yet, ask again" (the step waits in a pipeline step meanwhile, where Jenkins
/// can deliver an abort; rust/core/src/waiting.rs).
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_withawsrole_bridge_internal_Native_Broker_1credentialsWithinPacked<
    'local,
>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    request: JString<'local>,
    wait_millis: jlong,
) -> JString<'local> {
    run_ffi_safe(&mut env, |env| {
        let flat = packed_from_java(env, &request)?;
        let pairs = withawsrole_core::request::RequestPairs::from_flat(flat)?;
        let wait = std::time::Duration::from_millis(u64::try_from(wait_millis).unwrap_or(0));
        match broker()?.credentials_within(&pairs, wait)? {
            Some(issued) => packed_to_java(env, issued.pairs()),
            None => packed_to_java(env, Vec::<(&str, &str)>::new()),
        }
    })
}

/// A Vault token for one block of `withAwsRole(refresh: true)` (docs/refresh.md): request pairs
/// plus `token_ttl`, `token_policy`, `token_role`; returns `token`, `accessor`, `expiration`, ...
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_withawsrole_bridge_internal_Native_Broker_1createChildToken<
    'local,
>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    request_pairs: JObjectArray<'local, JString<'local>>,
) -> JObjectArray<'local, JString<'local>> {
    run_ffi_safe(&mut env, |env| {
        let flat = strings_from_java(env, &request_pairs)?;
        let pairs = withawsrole_core::request::RequestPairs::from_flat(flat)?;
        let child = broker()?.create_child_token(&pairs)?;
        pairs_to_java(env, child.pairs())
    })
}

/// As `Broker_createChildToken`, but waits at most `wait_millis` for Vault: `ticket` empty starts
/// the creation, else asks again for the one started with the same pairs. Returns the token's
/// pairs, or only `pending_ticket` while Vault has not answered (rust/core/src/waiting.rs).
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_withawsrole_bridge_internal_Native_Broker_1createChildTokenWithin<
    'local,
>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    request_pairs: JObjectArray<'local, JString<'local>>,
    ticket: JString<'local>,
    wait_millis: jlong,
) -> JObjectArray<'local, JString<'local>> {
    run_ffi_safe(&mut env, |env| {
        let flat = strings_from_java(env, &request_pairs)?;
        let pairs = withawsrole_core::request::RequestPairs::from_flat(flat)?;
        let ticket = ticket.try_to_string(env)?;
        let ticket = Some(ticket.as_str()).filter(|t| !t.is_empty());
        let wait = std::time::Duration::from_millis(u64::try_from(wait_millis).unwrap_or(0));
        match broker()?.create_child_token_within(&pairs, ticket, wait)? {
            ChildTokenWait::Created(child) => pairs_to_java(env, child.pairs()),
            ChildTokenWait::Pending { ticket } => {
                pairs_to_java(env, vec![("pending_ticket", ticket)])
            }
        }
    })
}

/// The caller of `Broker_createChildTokenWithin` stopped waiting (an abort): the token it started
/// is revoked once Vault has created it.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_withawsrole_bridge_internal_Native_Broker_1abandonChildToken<
    'local,
>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    request_pairs: JObjectArray<'local, JString<'local>>,
    ticket: JString<'local>,
) {
    run_ffi_safe(&mut env, |env| {
        let flat = strings_from_java(env, &request_pairs)?;
        let pairs = withawsrole_core::request::RequestPairs::from_flat(flat)?;
        let ticket = ticket.try_to_string(env)?;
        broker()?.abandon_child_token(&pairs, &ticket);
        Ok(())
    })
}

/// Revokes a child token with itself: pairs `token` and the Vault endpoint keys; returns
/// `revocation` = `revoked` or `already_gone`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_withawsrole_bridge_internal_Native_Broker_1revokeChildToken<
    'local,
>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    request_pairs: JObjectArray<'local, JString<'local>>,
) -> JObjectArray<'local, JString<'local>> {
    run_ffi_safe(&mut env, |env| {
        let flat = strings_from_java(env, &request_pairs)?;
        let pairs = withawsrole_core::request::RequestPairs::from_flat(flat)?;
        let revocation = broker()?.revoke_child_token(&pairs)?;
        pairs_to_java(env, revocation.pairs())
    })
}

/// The controller's settings as alternating variable, system property (`withawsrole.<VARIABLE>`):
/// what the bridge reads on every call.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_withawsrole_bridge_internal_Native_Settings_1variables<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
) -> JObjectArray<'local, JString<'local>> {
    run_ffi_safe(&mut env, |env| {
        pairs_to_java(env, withawsrole_core::broker::setting_properties())
    })
}

/// Overlays the controller's environment with the system properties the bridge read, packed as
/// `VARIABLE \0 value \0 …` (an empty value unsets the variable).
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_withawsrole_bridge_internal_Native_Broker_1applySettings<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    settings: JString<'local>,
) {
    run_ffi_safe(&mut env, |env| {
        let flat = packed_from_java(env, &settings)?;
        let pairs = withawsrole_core::request::RequestPairs::from_flat(flat)?;
        broker()?.apply_overrides(&pairs)?;
        Ok(())
    })
}

/// How blocks log in when the controller logs in as each build: `credentials_id`, `jwt_role`;
/// empty when the controller logs in as itself.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_withawsrole_bridge_internal_Native_Broker_1buildLogin<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
) -> JObjectArray<'local, JString<'local>> {
    run_ffi_safe(&mut env, |env| {
        let login = broker()?.build_login()?;
        pairs_to_java(env, login)
    })
}

/// The library's purposes config packed into the bridge jar, packed as `name \0 text \0`: used
/// for every request that brings no `config_text`.
#[unsafe(no_mangle)]
pub extern "system" fn Java_org_withawsrole_bridge_internal_Native_Broker_1setLibraryConfig<
    'local,
>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    config: JString<'local>,
) {
    run_ffi_safe(&mut env, |env| {
        let flat = packed_from_java(env, &config)?;
        let pairs = withawsrole_core::request::RequestPairs::from_flat(flat)?;
        let [(name, text)] = &pairs[..] else {
            return Err(BridgeError::Broker(BrokerError::Internal(format!(
                "the library config came as {} pairs; the bridge sends one name and its text",
                pairs.len()
            ))));
        };
        broker()?.set_library_config(name, text);
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_withawsrole_bridge_internal_Native_Broker_1stats<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
) -> JObjectArray<'local, JString<'local>> {
    run_ffi_safe(&mut env, |env| {
        let stats = broker()?.stats();
        pairs_to_java(env, stats.pairs())
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_withawsrole_bridge_internal_Native_Broker_1clearCache<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
) {
    run_ffi_safe(&mut env, |_env| {
        broker()?.clear_cache();
        Ok(())
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_withawsrole_bridge_internal_Native_Library_1version<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
) -> JString<'local> {
    run_ffi_safe(&mut env, |env| {
        Ok(JString::from_str(env, withawsrole_core::VERSION)?)
    })
}

#[unsafe(no_mangle)]
pub extern "system" fn Java_org_withawsrole_bridge_internal_Native_Diagnostics_1panic<'local>(
    mut env: EnvUnowned<'local>,
    _class: JClass<'local>,
    message: JString<'local>,
) {
    run_ffi_safe(&mut env, |env| {
        let message = if message.is_null() {
            String::from("(no message)")
        } else {
            message.try_to_string(env)?
        };
        panic!("{message}");
    })
}
