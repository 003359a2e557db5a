package org.withawsrole.bridge;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.LinkedHashMap;
import java.util.Map;
import org.withawsrole.bridge.internal.ControllerSettings;
import org.withawsrole.bridge.internal.Native;
import org.withawsrole.bridge.internal.ReviewedRequest;
import org.withawsrole.bridge.internal.NativeLoader;

/**
 * The one entry point into the native broker: short-lived AWS credentials for a purpose, from
 * Vault's AWS secrets engine, cached and single-flighted inside the native library.
 *
 * <p>Only JDK types cross this API, so callers in other classloaders (every Jenkins build has its
 * own) can use it reflectively without class identity problems. Request and result keys are listed
 * in docs/architecture.md; the native side validates them. A request never says where Vault is or
 * how the controller logs in: those are the controller's settings (its environment and
 * {@code -Dwithawsrole.<VARIABLE>} system properties, see {@link ControllerSettings}), and a
 * request that carries one is refused.
 */
public final class AwsRoleBroker {
    private static final AwsRoleBroker SHARED = new AwsRoleBroker();

    private AwsRoleBroker() {
    }

    /**
     * The broker of this JVM; loads the native library on first use.
     *
     * @throws NativeLibraryUnavailableException when no usable native library is there for this
     *     platform: an expected failure (the admin picks a release with the platform), unlike an
     *     UnsatisfiedLinkError of a native method later, which would be a bug of the JNI contract
     */
    public static AwsRoleBroker shared() {
        try {
            NativeLoader.ensureLoaded();
        } catch (UnsatisfiedLinkError cannotLoad) {
            throw new NativeLibraryUnavailableException(cannotLoad.getMessage(), cannotLoad);
        }
        return SHARED;
    }

    /**
     * Credentials for {@code request} (at least {@code purpose}; see {@link ReviewedRequest} for what
     * the bridge adds and refuses). The result holds
     * {@code access_key_id}, {@code secret_access_key}, {@code session_token}, {@code expiration},
     * {@code arn}, {@code cache} and more.
     *
     * @throws InvalidRequestException bad input or configuration; nothing was sent
     * @throws PermissionDeniedException Vault refused
     * @throws VaultUnavailableException Vault unreachable, overloaded or sealed
     * @throws InternalBridgeException a bug, including a panic in the native library
     */
    public Map<String, String> credentials(Map<String, String> request) {
        String packed = packed(request);
        ControllerSettings.apply();
        return fromPacked(Native.Broker_credentialsPacked(packed));
    }

    /**
     * As {@link #credentials}, but waits at most {@code waitMillis} for a fetch under way and
     * returns {@code null} while it goes on; asking again joins the same fetch. A Jenkins step waits
     * in a pipeline step between the calls, where an abort or a {@code timeout} reaches it: a call
     * that blocked until Vault answered could not be interrupted. The fetch is shared with other
     * callers and ends by itself (credentials cached, or an error), whoever stops waiting.
     */
    public Map<String, String> credentialsWithin(Map<String, String> request, long waitMillis) {
        String packed = packed(request);
        ControllerSettings.apply();
        String answer = Native.Broker_credentialsWithinPacked(packed, waitMillis);
        return answer != null && answer.isEmpty() ? null : fromPacked(answer);
    }

    /** The request packed for the native side, checked and completed by ReviewedRequest. */
    private static String packed(Map<String, String> request) {
        if (request == null) {
            throw new InvalidRequestException("request is null; pass at least a purpose");
        }
        ReviewedRequest.check(request);
        StringBuilder packed = new StringBuilder(256);
        for (Map.Entry<String, String> entry : request.entrySet()) {
            String key = entry.getKey();
            String value = entry.getValue();
            if (key == null || value == null) {
                throw new InvalidRequestException("request key '" + key + "' has no value; leave out keys you do not set");
            }
            // NUL separates the packed pairs: a key or value holding one would shift every pair after it.
            if (key.indexOf('\0') >= 0 || value.indexOf('\0') >= 0) {
                throw new InvalidRequestException("request key '" + key.replace('\0', ' ')
                        + "' holds a NUL character in its name or value; remove it");
            }
            packed.append(key).append('\0').append(value).append('\0');
        }
        ReviewedRequest.appendTo(packed);
        return packed.toString();
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
        String[] pairs = childTokenPairs(request);
        ControllerSettings.apply();
        return toMap(Native.Broker_createChildToken(pairs));
    }

    /**
     * As {@link #createChildToken}, but waits at most {@code waitMillis} for Vault: with an empty
     * {@code ticket} it starts the creation, with the ticket it returned it asks again (the same
     * request). While Vault has not answered the result holds only {@code pending_ticket}; a
     * caller that stops asking (an abort) calls {@link #abandonChildToken}, so the token is
     * revoked once created. A Jenkins step waits in a pipeline step between the calls, where an
     * abort or a {@code timeout} reaches it.
     */
    public Map<String, String> createChildTokenWithin(Map<String, String> request, String ticket, long waitMillis) {
        String[] pairs = childTokenPairs(request);
        ControllerSettings.apply();
        return toMap(Native.Broker_createChildTokenWithin(pairs, ticket == null ? "" : ticket, waitMillis));
    }

    /** Gives up the child token {@link #createChildTokenWithin} is creating: it is revoked once created. */
    public void abandonChildToken(Map<String, String> request, String ticket) {
        Native.Broker_abandonChildToken(childTokenPairs(request), ticket == null ? "" : ticket);
    }

    /** A child-token request, checked and completed by ReviewedRequest, as pairs. */
    private static String[] childTokenPairs(Map<String, String> request) {
        if (request == null) {
            throw new InvalidRequestException("request is null; pass at least a purpose");
        }
        ReviewedRequest.check(request);
        Map<String, String> complete = new LinkedHashMap<String, String>(request);
        ReviewedRequest.addTo(complete);
        return toPairs(complete);
    }

    /**
     * Revokes a child token with itself: {@code request} holds {@code token} only; Vault is the
     * controller's. The result's {@code revocation} is
     * {@code revoked}, or {@code already_gone} when Vault no longer knew the token.
     */
    public Map<String, String> revokeChildToken(Map<String, String> request) {
        String[] pairs = toPairs(request);
        ControllerSettings.apply();
        return toMap(Native.Broker_revokeChildToken(pairs));
    }

    /**
     * How a block logs in, as the core decides (docs/architecture.md, "Where settings come from"):
     * {@code source} = {@code own}, with the {@code credentials_id} the block named
     * ({@code vaultCredentialsId}); {@code build}, when the controller's settings say it logs in
     * to Vault as each build ({@code WITHAWSROLE_JOB_ID_TOKEN}, {@code WITHAWSROLE_JOB_JWT_ROLE}),
     * with {@code credentials_id} (the Jenkins "OpenID Connect id token" credential to bind) and
     * {@code jwt_role}; or {@code controller}, when the core logs in with the controller's own login.
     *
     * @param vaultCredentialsId the credential the block names for a login of its own; null or empty: none
     */
    public Map<String, String> blockLogin(String vaultCredentialsId) {
        ControllerSettings.apply();
        return toMap(Native.Broker_blockLogin(vaultCredentialsId == null ? "" : vaultCredentialsId));
    }

    /**
     * The variables of the controller's settings (VAULT_ADDR, VAULT_TOKEN, ..., WITHAWSROLE_CONFIG),
     * as the core lists them: the one list, which callers derive from rather than copy.
     */
    public List<String> settingVariables() {
        String[] pairs = Native.Settings_variables();
        List<String> variables = new ArrayList<String>(pairs.length / 2);
        for (int i = 0; i + 1 < pairs.length; i += 2) {
            variables.add(pairs[i]);
        }
        return Collections.unmodifiableList(variables);
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

    /** A request as alternating key, value (the child-token calls). */
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

    /** {@code key \0 value \0 ...} -> an unmodifiable map in the native side's order. */
    private static Map<String, String> fromPacked(String packed) {
        if (packed == null) {
            throw new InternalBridgeException("native library returned null where packed key/value pairs were expected");
        }
        Map<String, String> map = new LinkedHashMap<String, String>();
        int at = 0;
        while (at < packed.length()) {
            int keyEnd = packed.indexOf('\0', at);
            int valueEnd = keyEnd < 0 ? -1 : packed.indexOf('\0', keyEnd + 1);
            if (valueEnd < 0) {
                throw new InternalBridgeException("native library returned a packed result with an unterminated pair at " + at);
            }
            map.put(packed.substring(at, keyEnd), packed.substring(keyEnd + 1, valueEnd));
            at = valueEnd + 1;
        }
        return Collections.unmodifiableMap(map);
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
