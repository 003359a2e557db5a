package org.withawsrole

import com.cloudbees.groovy.cps.NonCPS

/**
 * The one way from a block to the bridge: installs it in this JVM, logs in to Vault as the block
 * says, asks for credentials or a child token (waiting for Vault in slices), revokes child tokens,
 * and turns the bridge's expected failures into the step's one error line. Plain blocks, blocks
 * with several roles, refresh: true blocks and ecrLogin all come through here.
 *
 * CPS: install, credentials, childToken, settingVariables, revoke, answer, withVaultLogin and await call steps or
 * closures; everything that touches Java is @NonCPS (the bridge lives in another classloader:
 * NativeBridge).
 */
class BridgeGateway implements Serializable {
    private static final long serialVersionUID = 1L

    /**
     * How long one native call waits for Vault. Jenkins delivers an abort or a timeout to the
     * pipeline at its steps, never into a native call: the gateway waits for Vault in slices, with
     * a short sleep step between them, so an abort ends a block waiting on Vault within a slice.
     */
    static final long VAULT_WAIT_SLICE_MILLIS = 500L
    static final long BETWEEN_SLICES_MILLIS = 100L

    /** The broker's calls that wait for Vault a slice at a time (NativeBridge.BROKER_METHODS lists them all). */
    static final String CREDENTIALS_CALL = 'credentialsWithin'
    static final String CHILD_TOKEN_CALL = 'createChildTokenWithin'
    static final List<String> SLICED_CALLS = [CREDENTIALS_CALL, CHILD_TOKEN_CALL].asImmutable()

    /** The pipeline script (the calling step's `this`): steps are reached through it. */
    final script

    BridgeGateway(script) {
        this.script = script
    }

    /**
     * Installs the bridge jar into this JVM unless an earlier build did; returns its sha256. The
     * sha256 comes from the library's own classpath (NativeBridge.libraryDigest), so a bridge
     * installed already is trusted only when it is this library's: then no step is recorded.
     */
    String install() {
        String bridgeDigest = NativeBridge.libraryDigest()
        if (!NativeBridge.isInstalled(bridgeDigest)) {
            String refused = NativeBridge.installOrExplain(bridgeDigest,
                    script.libraryResource(resource: NativeBridge.JAR_RESOURCE, encoding: 'Base64'))
            if (refused != null) {
                script.error(StepMessages.oneLine(refused))
            }
        }
        return bridgeDigest
    }

    /** The role's credentials (docs/architecture.md, result keys); a failure ends the build with its one line. */
    Map<String, String> credentials(String role, Map options) {
        return answer(role, options, CREDENTIALS_CALL, AwsRoleOptions.toRequest(options))
    }

    /**
     * A child token for a refresh: true block, living `timeout` (the block's, as the Jenkinsfile
     * gave it: the core parses it and owns its limits), with the request as the controller resolved it.
     */
    Map<String, String> childToken(String role, Map options, String timeout) {
        Map<String, String> request = AwsRoleOptions.toRequest(options)
        request.token_ttl = timeout
        return answer(role, options, CHILD_TOKEN_CALL, request)
    }

    /**
     * The variables of the controller's settings as the core lists them (AwsRoleBroker.settingVariables):
     * what the awsrole CLI on an agent would read, so a refresh: true block sets each.
     */
    List<String> settingVariables() {
        Map outcome = NativeBridge.outcome(install(), 'settingVariables')
        if (outcome.failure != null) {
            script.error(StepMessages.oneLine("withAwsRole: ${outcome.failure}"))
        }
        return (List<String>) outcome.answer
    }

    /**
     * Revokes a child token, installing the bridge first: a build resumed after a controller
     * restart runs this in a new JVM, where no earlier block installed it. Returns null when done,
     * else what went wrong (never thrown: the block's own outcome wins).
     */
    @SuppressWarnings('CatchException') // whatever fails here, the block's own outcome must win
    String revoke(String token) {
        String bridgeDigest
        try {
            bridgeDigest = install()
        } catch (Exception failure) {
            if (failure instanceof InterruptedException) {
                throw failure
            }
            return "cannot install the bridge to revoke it (${failure.getClass().simpleName})"
        }
        return revocationProblem(bridgeDigest, token)
    }

    /** The broker's answer to `method`, with the block's Vault login; a failure ends the build with its one line. */
    private Map<String, String> answer(String role, Map options, String method, Map<String, String> request) {
        String bridgeDigest = install()
        Map outcome = withVaultLogin(bridgeDigest, options, request) { Map<String, String> withLogin ->
            await(bridgeDigest, method, withLogin)
        }
        if (outcome.failure != null) {
            script.error(StepMessages.oneLine("withAwsRole('${StepMessages.shown(role)}'): ${outcome.failure}"))
        }
        return (Map<String, String>) outcome.remove('answer')
    }

    /**
     * Calls `callVault` with the request completed by the block's Vault login, and returns what it
     * returns. The core decides whose login (AwsRoleBroker.blockLogin; docs/architecture.md, "Where
     * settings come from"): the job's own credential (vaultCredentialsId), bound here; the build's
     * id token credential and the controller's JWT role, bound here; or the controller's, which
     * the core reads itself.
     */
    Map withVaultLogin(String bridgeDigest, Map options, Map<String, String> request, Closure callVault) {
        String named = AwsRoleOptions.vaultCredentialsIdOf(options)
        Map login = NativeBridge.outcome(bridgeDigest, 'blockLogin', named ?: '')
        if (login.failure != null) {
            return login
        }
        String credentialsId = login.answer.credentials_id
        switch (login.answer.source) {
            case 'own':
                return new VaultCredential(script, credentialsId).fetch(request, callVault)
            case 'build':
                Map<String, String> withRole = AwsRoleOptions.withJwtRole(request, (String) login.answer.jwt_role)
                return new VaultCredential(script, credentialsId, true).fetch(withRole, callVault)
            case 'controller':
                return callVault(request)
            default:
                throw new IllegalStateException("withAwsRole: the bridge named an unknown login source '${login.answer.source}'")
        }
    }

    /**
     * The outcome of `method` (NativeBridge.outcome); a sliced call waits one slice at a time,
     * with a sleep step between slices where Jenkins can deliver an abort or the enclosing
     * timeout. The fetch goes on for other branches and builds that wait for it. A cache hit or
     * a quick Vault answer needs no sleep step. A child token under way belongs to this block (its
     * ticket): stopped at a sleep step, the block gives it up, and the core revokes it once created.
     */
    Map await(String bridgeDigest, String method, Map<String, String> request) {
        Map outcome = attempt(bridgeDigest, method, request, '')
        try {
            while (outcome.pending) {
                script.sleep(time: BETWEEN_SLICES_MILLIS, unit: 'MILLISECONDS')
                outcome = attempt(bridgeDigest, method, request, (String) outcome.ticket)
            }
        } finally {
            if (outcome.ticket) {
                abandon(bridgeDigest, request, (String) outcome.ticket)
            }
        }
        return outcome
    }

    /**
     * One call of `method`: [answer:], [failure:, permissionDenied:], or [pending: true] while a
     * sliced call waits on Vault (with the child token's [ticket:] to ask again with).
     */
    @NonCPS
    static Map attempt(String bridgeDigest, String method, Map<String, String> request, String ticket = '') {
        if (!(method in SLICED_CALLS)) {
            return NativeBridge.outcome(bridgeDigest, method, request)
        }
        if (method == CHILD_TOKEN_CALL) {
            Map outcome = NativeBridge.outcome(bridgeDigest, method, request, ticket, VAULT_WAIT_SLICE_MILLIS)
            String pending = outcome.answer?.pending_ticket
            return pending != null ? [pending: true, ticket: pending] : outcome
        }
        Map outcome = NativeBridge.outcome(bridgeDigest, method, request, VAULT_WAIT_SLICE_MILLIS)
        return outcome.failure == null && outcome.answer == null ? [pending: true] : outcome
    }

    /** Gives up the child token under way (AwsRoleBroker.abandonChildToken); never thrown: the abort that ended the wait wins. */
    @NonCPS
    @SuppressWarnings('CatchException')
    static void abandon(String bridgeDigest, Map<String, String> request, String ticket) {
        try {
            NativeBridge.outcome(bridgeDigest, 'abandonChildToken', request, ticket)
        } catch (Exception ignored) {
            // The core revokes a token no block took after the deadline anyway.
        }
    }

    /** Null when the token is revoked or was gone already, else what went wrong. */
    @NonCPS
    @SuppressWarnings('CatchException') // a bug while revoking must not hide the block's own outcome either
    static String revocationProblem(String bridgeDigest, String token) {
        try {
            Map outcome = NativeBridge.outcome(bridgeDigest, 'revokeChildToken', [token: token])
            if (outcome.failure != null) {
                return outcome.failure
            }
            String revocation = outcome.answer.revocation
            return revocation in ['revoked', 'already_gone'] ? null : "unexpected answer ${revocation}"
        } catch (Exception bug) {
            return bug.message ?: bug.getClass().simpleName
        }
    }
}
