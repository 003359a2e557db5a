//! JNI exports of withAwsRole. Keep in sync with
//! `bridge/.../org/withawsrole/bridge/internal/Native.java` and docs/architecture.md (JniContractTest
//! compares the two sides: names, argument and return types).
//!
//! Only conversions, error mapping and panic catching live here; every decision about Vault is
//! in `withawsrole_core`. Every export is written with [`jni_export!`], which runs its body inside
//! [`run_ffi_safe`].
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod ffi;

use jni::objects::{JClass, JObjectArray, JString};
use jni::sys::jlong;
use jni::EnvUnowned;
use once_cell::sync::Lazy;
use withawsrole_core::{BrokerError, ChildTokenWait, CredentialBroker};

use crate::ffi::{
    packed_to_java, pairs_to_java, request_from_java, request_from_packed, run_ffi_safe,
    wait_from_java, BridgeError,
};

/// Java's `String[]` of alternating key, value: most exports take or return one (JniContractTest
/// reads this name as `String[]`).
type JavaPairs<'local> = JObjectArray<'local, JString<'local>>;

/// One JNI export: `fn Java_…(env, argument: Type, …) -> Type { body }` becomes the
/// `extern "system"` function Java calls, with the JNI environment and class arguments, and its
/// body run inside [`run_ffi_safe`] (errors and panics become Java exceptions). Written once so no
/// export can skip that wrapper. JniContractTest reads exports in this form.
macro_rules! jni_export {
    ($(#[$doc:meta])* fn $name:ident($env:ident $(, $arg:ident: $type:ty)* $(,)?) $(-> $returned:ty)? $body:block) => {
        $(#[$doc])*
        #[unsafe(no_mangle)]
        pub extern "system" fn $name<'local>(
            mut env: EnvUnowned<'local>,
            _class: JClass<'local>,
            $($arg: $type),*
        ) $(-> $returned)? {
            run_ffi_safe(&mut env, |$env| $body)
        }
    };
}

/// One broker per loaded library, i.e. per JVM (the bridge loads the library once).
static BROKER: Lazy<Result<CredentialBroker, BrokerError>> =
    Lazy::new(CredentialBroker::for_jenkins_controller);

fn broker() -> Result<&'static CredentialBroker, BridgeError> {
    BROKER.as_ref().map_err(|e| BridgeError::Broker(e.clone()))
}

jni_export! {
    /// Credentials for a request packed as `key \0 value \0 …`; returns the result packed the same way.
    /// One string each way instead of `String[]`: a cache hit's cost was the per-string JNI calls.
    fn Java_org_withawsrole_bridge_internal_Native_Broker_1credentialsPacked(
        env,
        request: JString<'local>,
    ) -> JString<'local> {
        let pairs = request_from_packed(env, &request)?;
        let issued = broker()?.credentials(&pairs)?;
        packed_to_java(env, issued.pairs())
    }
}

jni_export! {
    /// As `Broker_credentialsPacked`, but waits at most `wait_millis` for a fetch under way: an empty
    /// string means "not yet, ask again" (the step waits in a pipeline step meanwhile, where Jenkins
    /// can deliver an abort; rust/core/src/waiting.rs).
    fn Java_org_withawsrole_bridge_internal_Native_Broker_1credentialsWithinPacked(
        env,
        request: JString<'local>,
        wait_millis: jlong,
    ) -> JString<'local> {
        let pairs = request_from_packed(env, &request)?;
        match broker()?.credentials_within(&pairs, wait_from_java(wait_millis))? {
            Some(issued) => packed_to_java(env, issued.pairs()),
            None => packed_to_java(env, Vec::<(&str, &str)>::new()),
        }
    }
}

jni_export! {
    /// A Vault token for one block of `withAwsRole(refresh: true)` (docs/refresh.md): request pairs
    /// plus `token_ttl`, `token_policy`, `token_role`; returns `token`, `accessor`, `expiration`, ...
    fn Java_org_withawsrole_bridge_internal_Native_Broker_1createChildToken(
        env,
        request_pairs: JavaPairs<'local>,
    ) -> JavaPairs<'local> {
        let pairs = request_from_java(env, &request_pairs)?;
        let child = broker()?.create_child_token(&pairs)?;
        pairs_to_java(env, child.pairs())
    }
}

jni_export! {
    /// As `Broker_createChildToken`, but waits at most `wait_millis` for Vault: `ticket` empty starts
    /// the creation, else asks again for the one started with the same pairs. Returns the token's
    /// pairs, or only `pending_ticket` while Vault has not answered (rust/core/src/waiting.rs).
    fn Java_org_withawsrole_bridge_internal_Native_Broker_1createChildTokenWithin(
        env,
        request_pairs: JavaPairs<'local>,
        ticket: JString<'local>,
        wait_millis: jlong,
    ) -> JavaPairs<'local> {
        let pairs = request_from_java(env, &request_pairs)?;
        let ticket = ticket.try_to_string(env)?;
        let ticket = Some(ticket.as_str()).filter(|t| !t.is_empty());
        match broker()?.create_child_token_within(&pairs, ticket, wait_from_java(wait_millis))? {
            ChildTokenWait::Created(child) => pairs_to_java(env, child.pairs()),
            ChildTokenWait::Pending { ticket } => {
                pairs_to_java(env, vec![("pending_ticket", ticket)])
            }
        }
    }
}

jni_export! {
    /// The caller of `Broker_createChildTokenWithin` stopped waiting (an abort): the token it started
    /// is revoked once Vault has created it.
    fn Java_org_withawsrole_bridge_internal_Native_Broker_1abandonChildToken(
        env,
        request_pairs: JavaPairs<'local>,
        ticket: JString<'local>,
    ) {
        let pairs = request_from_java(env, &request_pairs)?;
        let ticket = ticket.try_to_string(env)?;
        broker()?.abandon_child_token(&pairs, &ticket);
        Ok(())
    }
}

jni_export! {
    /// Revokes a child token with itself: pairs `token` and the Vault endpoint keys; returns
    /// `revocation` = `revoked` or `already_gone`.
    fn Java_org_withawsrole_bridge_internal_Native_Broker_1revokeChildToken(
        env,
        request_pairs: JavaPairs<'local>,
    ) -> JavaPairs<'local> {
        let pairs = request_from_java(env, &request_pairs)?;
        let revocation = broker()?.revoke_child_token(&pairs)?;
        pairs_to_java(env, revocation.pairs())
    }
}

jni_export! {
    /// The controller's settings as alternating variable, system property (`withawsrole.<VARIABLE>`):
    /// what the bridge reads on every call.
    fn Java_org_withawsrole_bridge_internal_Native_Settings_1variables(env) -> JavaPairs<'local> {
        pairs_to_java(env, withawsrole_core::broker::setting_properties())
    }
}

jni_export! {
    /// Overlays the controller's environment with the system properties the bridge read, packed as
    /// `VARIABLE \0 value \0 …` (an empty value unsets the variable).
    fn Java_org_withawsrole_bridge_internal_Native_Broker_1applySettings(
        env,
        settings: JString<'local>,
    ) {
        let pairs = request_from_packed(env, &settings)?;
        broker()?.apply_overrides(&pairs)?;
        Ok(())
    }
}

jni_export! {
    /// How a block logs in, given the credential ID it names for a login of its own (empty:
    /// none): `source` = `own`, `build` (with `credentials_id`, `jwt_role`) or `controller`.
    fn Java_org_withawsrole_bridge_internal_Native_Broker_1blockLogin(
        env,
        credentials_id: JString<'local>,
    ) -> JavaPairs<'local> {
        let credentials_id = credentials_id.try_to_string(env)?;
        let login = broker()?.block_login(Some(credentials_id.as_str()))?;
        pairs_to_java(env, login)
    }
}

jni_export! {
    /// The library's purposes config packed into the bridge jar, packed as `name \0 text \0`: used
    /// for every request that brings no `config_text`.
    fn Java_org_withawsrole_bridge_internal_Native_Broker_1setLibraryConfig(
        env,
        config: JString<'local>,
    ) {
        let pairs = request_from_packed(env, &config)?;
        let [(name, text)] = &pairs[..] else {
            return Err(BridgeError::Broker(BrokerError::Internal(format!(
                "the library config came as {} pairs; the bridge sends one name and its text",
                pairs.len()
            ))));
        };
        broker()?.set_library_config(name, text);
        Ok(())
    }
}

jni_export! {
    fn Java_org_withawsrole_bridge_internal_Native_Broker_1stats(env) -> JavaPairs<'local> {
        let stats = broker()?.stats();
        pairs_to_java(env, stats.pairs())
    }
}

jni_export! {
    fn Java_org_withawsrole_bridge_internal_Native_Broker_1clearCache(_env) {
        broker()?.clear_cache();
        Ok(())
    }
}

jni_export! {
    fn Java_org_withawsrole_bridge_internal_Native_Library_1version(env) -> JString<'local> {
        Ok(JString::from_str(env, withawsrole_core::VERSION)?)
    }
}

jni_export! {
    fn Java_org_withawsrole_bridge_internal_Native_Diagnostics_1panic(
        env,
        message: JString<'local>,
    ) {
        let message = if message.is_null() {
            String::from("(no message)")
        } else {
            message.try_to_string(env)?
        };
        panic!("{message}");
    }
}
