package org.withawsrole.bridge.internal;

/**
 * The native methods of libwithawsrole_jni, named {@code Type_Verb}.
 *
 * <p>Keep in sync with rust/jni/src/lib.rs and the JNI contract in docs/architecture.md;
 * JniContractTest fails when the two sides differ.
 *
 * <p>Failures arrive as subclasses of {@code org.withawsrole.bridge.AwsRoleException}; a panic in
 * Rust arrives as {@code InternalBridgeException}. Call {@link NativeLoader#ensureLoaded()} first
 * ({@code AwsRoleBroker.shared()} does): loading here, in a static initializer, would turn a missing
 * library into "Could not initialize class" on every later call and lose the reason.
 */
public final class Native {
    private Native() {
    }

    /**
     * The request packed as {@code key \0 value \0 ...} (no value holds NUL); returns the result
     * packed the same way. One string each way: per-string JNI calls were most of a cache hit's cost.
     */
    public static native String Broker_credentialsPacked(String request);

    /**
     * As {@link #Broker_credentialsPacked}, waiting at most {@code waitMillis} for a fetch under
     * way; an empty string while it goes on (ask again to keep waiting).
     */
    public static native String Broker_credentialsWithinPacked(String request, long waitMillis);

    /**
     * A Vault token for one block of {@code withAwsRole(refresh: true)}: the request pairs plus
     * {@code token_ttl}, {@code token_policy}, {@code token_role}; returns alternating key, value
     * ({@code token}, {@code accessor}, {@code expiration}, ...). See docs/refresh.md.
     */
    public static native String[] Broker_createChildToken(String[] requestPairs);

    /**
     * As {@link #Broker_createChildToken}, waiting at most {@code waitMillis} for Vault: an empty
     * {@code ticket} starts the creation, a ticket asks again for the one started with the same
     * pairs. Returns the token's pairs, or only {@code pending_ticket} while Vault has not answered.
     */
    public static native String[] Broker_createChildTokenWithin(String[] requestPairs, String ticket, long waitMillis);

    /**
     * The caller of {@link #Broker_createChildTokenWithin} stopped waiting (an abort): the token it
     * started ({@code ticket}, the same pairs) is revoked once Vault has created it.
     */
    public static native void Broker_abandonChildToken(String[] requestPairs, String ticket);

    /**
     * Revokes a child token with itself ({@code auth/token/revoke-self}): pairs {@code token} and the
     * Vault endpoint keys; returns {@code revocation} = {@code revoked} or {@code already_gone}.
     */
    public static native String[] Broker_revokeChildToken(String[] requestPairs);

    /**
     * The controller's settings as alternating variable, system property: {@code VAULT_ADDR},
     * {@code withawsrole.VAULT_ADDR}, ... The native library owns the list.
     */
    public static native String[] Settings_variables();

    /**
     * Overlays the controller's process environment with the system properties set now, packed as
     * {@code VARIABLE \0 value \0 ...}; an empty value unsets a variable. Only
     * {@link ControllerSettings} calls it, with what it read from this JVM's own properties.
     */
    public static native void Broker_applySettings(String settings);

    /**
     * How a block logs in, given the credential ID it names for a login of its own (empty: none):
     * alternating key, value; {@code source} = {@code own}, {@code build} (with
     * {@code credentials_id}, {@code jwt_role}) or {@code controller}. The core decides.
     */
    public static native String[] Broker_blockLogin(String credentialsId);

    /**
     * The library's purposes config packed into the bridge jar, as {@code name \0 text \0}: the
     * core parses every request that brings no config with it. Sent once per JVM, so cache hits
     * do not carry the text across JNI.
     */
    public static native void Broker_setLibraryConfig(String config);

    /** Alternating key, value of counters; all values are decimal strings. */
    public static native String[] Broker_stats();

    /** Forgets cached credentials. */
    public static native void Broker_clearCache();

    /** The crate version of the native library. */
    public static native String Library_version();

    /** Panics inside Rust on purpose: proves a panic becomes an exception and the JVM lives on. */
    public static native void Diagnostics_panic(String message);
}
