package org.withawsrole.bridge;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import org.withawsrole.bridge.internal.Native;
import org.withawsrole.bridge.internal.NativeLoader;

/**
 * The one entry point into the native broker: short-lived AWS credentials for a purpose, from
 * Vault's AWS secrets engine, cached and single-flighted inside the native library.
 *
 * <p>Only JDK types cross this API, so callers in other classloaders (every Jenkins build has its
 * own) can use it reflectively without class identity problems. Request and result keys are listed
 * in docs/architecture.md; the native side validates them.
 */
public final class AwsRoleBroker {
    private static final AwsRoleBroker SHARED = new AwsRoleBroker();

    private AwsRoleBroker() {
    }

    /**
     * The broker of this JVM; loads the native library on first use.
     *
     * @throws UnsatisfiedLinkError when no usable native library is there for this platform
     */
    public static AwsRoleBroker shared() {
        NativeLoader.ensureLoaded();
        return SHARED;
    }

    /**
     * Credentials for {@code request} (at least {@code purpose}). The result holds
     * {@code access_key_id}, {@code secret_access_key}, {@code session_token}, {@code expiration},
     * {@code arn}, {@code cache} and more.
     *
     * @throws InvalidRequestException bad input or configuration; nothing was sent
     * @throws PermissionDeniedException Vault refused
     * @throws VaultUnavailableException Vault unreachable, overloaded or sealed
     * @throws InternalBridgeException a bug, including a panic in the native library
     */
    public Map<String, String> credentials(Map<String, String> request) {
        if (request == null) {
            throw new InvalidRequestException("request is null; pass at least a purpose");
        }
        String[] pairs = new String[request.size() * 2];
        int i = 0;
        for (Map.Entry<String, String> entry : request.entrySet()) {
            if (entry.getKey() == null || entry.getValue() == null) {
                throw new InvalidRequestException("request key '" + entry.getKey() + "' has no value; leave out keys you do not set");
            }
            pairs[i++] = entry.getKey();
            pairs[i++] = entry.getValue();
        }
        return toMap(Native.Broker_credentials(pairs));
    }

    /**
     * A Vault token for one block of {@code withAwsRole(refresh: true)} (docs/refresh.md), created
     * with the controller's own login: {@code request} as for {@link #credentials} plus optional
     * {@code token_ttl}, {@code token_policy}, {@code token_role}. The result holds {@code token},
     * {@code accessor}, {@code expiration}, {@code policies} and the resolved request
     * ({@code vault_addr}, {@code mount}, {@code vault_role}, {@code role_arn}, ...) for the agent.
     *
     * @throws InvalidRequestException bad input, or Vault refused the token's policy or TTL
     * @throws PermissionDeniedException Vault denied {@code auth/token/create}
     * @throws VaultUnavailableException Vault unreachable, overloaded or sealed
     */
    public Map<String, String> createChildToken(Map<String, String> request) {
        return toMap(Native.Broker_createChildToken(toPairs(request)));
    }

    /**
     * Revokes a child token with itself: {@code request} holds {@code token} and the Vault endpoint
     * keys (the creating request may be passed again). The result's {@code revocation} is
     * {@code revoked}, or {@code already_gone} when Vault no longer knew the token.
     */
    public Map<String, String> revokeChildToken(Map<String, String> request) {
        return toMap(Native.Broker_revokeChildToken(toPairs(request)));
    }

    /** Counters: vault_calls, vault_logins, cache_hits, cache_misses, retries (decimal strings). */
    public Map<String, String> stats() {
        return toMap(Native.Broker_stats());
    }

    /** Forgets every cached credential. */
    public void clearCache() {
        Native.Broker_clearCache();
    }

    /** The native library's version. */
    public String version() {
        return Native.Library_version();
    }

    /** As credentials() converts its request (kept separate so that method stays as it was). */
    private static String[] toPairs(Map<String, String> request) {
        if (request == null) {
            throw new InvalidRequestException("request is null; pass at least a purpose");
        }
        String[] pairs = new String[request.size() * 2];
        int i = 0;
        for (Map.Entry<String, String> entry : request.entrySet()) {
            if (entry.getKey() == null || entry.getValue() == null) {
                throw new InvalidRequestException("request key '" + entry.getKey() + "' has no value; leave out keys you do not set");
            }
            pairs[i++] = entry.getKey();
            pairs[i++] = entry.getValue();
        }
        return pairs;
    }

    private static Map<String, String> toMap(String[] pairs) {
        if (pairs == null || pairs.length % 2 != 0) {
            throw new InternalBridgeException("native library returned " + (pairs == null ? "null" : pairs.length + " strings")
                    + " where key/value pairs were expected");
        }
        Map<String, String> map = new LinkedHashMap<String, String>();
        for (int i = 0; i < pairs.length; i += 2) {
            map.put(pairs[i], pairs[i + 1]);
        }
        return Collections.unmodifiableMap(map);
    }
}
