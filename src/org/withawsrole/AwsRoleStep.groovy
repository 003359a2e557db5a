package org.withawsrole

import com.cloudbees.groovy.cps.NonCPS

/**
 * withAwsRole: runs a block with short-lived AWS credentials for one role (purpose).
 *
 * The credentials come from the JVM-wide native broker (Vault's AWS secrets engine, cached and
 * single-flighted there), reach the block as environment variables through withEnv, and are masked
 * in the block's console output by the Mask Passwords plugin's build wrapper. The log gets one line:
 * role, assumed-role ARN, expiry, cache hit or miss. Never a key.
 *
 * CPS: the methods that call steps or run the block (run, installBridge, fetch, maskedBlock) stay
 * CPS; everything that touches Java is @NonCPS.
 */
class AwsRoleStep implements Serializable {
    private static final long serialVersionUID = 1L

    /** Failures the user can act on: reported with error(), without a Java stack trace. */
    static final List<String> USER_FACING_FAILURES = [
            'org.withawsrole.bridge.InvalidRequestException',
            'org.withawsrole.bridge.PermissionDeniedException',
            'org.withawsrole.bridge.VaultUnavailableException',
            'java.lang.UnsatisfiedLinkError',
    ].asImmutable()

    static final String PERMISSION_DENIED = 'org.withawsrole.bridge.PermissionDeniedException'

    static final String MASK_PASSWORDS_WRAPPER = 'MaskPasswordsBuildWrapper'

    /**
     * How long one native call waits for Vault. Jenkins delivers an abort or a timeout to the
     * pipeline at its steps, never into a native call: the step waits for Vault in slices, with a
     * short sleep step between them, so an abort ends a block waiting on Vault within a slice.
     */
    static final long VAULT_WAIT_SLICE_MILLIS = 500L
    static final long BETWEEN_SLICES_MILLIS = 100L

    /** The pipeline script (the calling step's `this`): steps and env are reached through it. */
    final script

    AwsRoleStep(script) {
        this.script = script
    }

    def run(Map options, Closure body) {
        String problem = problemWith(options)
        if (problem != null) {
            script.error(StepMessages.oneLine("withAwsRole: ${problem}"))
        }
        String role = AwsRoleOptions.roleOf(options)
        Map outcome = fetch(options)
        if (outcome.failure != null) {
            script.error(StepMessages.oneLine("withAwsRole('${StepMessages.shown(role)}'): ${outcome.failure}"))
        }
        Map<String, String> credentials = (Map<String, String>) outcome.credentials
        String summary = summaryLine(role, credentials)
        List<String> environment = environmentOf(credentials) + KeyVariables.environmentOf(options, credentials)
        List<Map<String, String>> secrets = maskedValuesOf(credentials) + KeyVariables.maskedValuesOf(options, credentials)
        credentials = null
        // Pipeline state is written to disk between steps: keep the whole result out of it.
        outcome = null

        return maskedBlock(role, AwsRoleOptions.maskWanted(options), secrets) {
            script.echo(summary)
            script.withEnv(environment) {
                body()
            }
        }
    }

    /** withAwsRole's options and the plain block's own (other names for its keys, KeyVariables). */
    @NonCPS
    static String problemWith(Map options) {
        return AwsRoleOptions.problemWith(options, AwsRoleOptions.validOptions() + KeyVariables.OPTIONS) ?:
                KeyVariables.problemWith(options)
    }

    /**
     * [credentials: Map] or [failure: message], logging in as withVaultLogin says. The bridge adds
     * the running build's identity and the library's purposes config itself. RoleProfiles uses it
     * for each of its roles.
     */
    Map fetch(Map options) {
        String bridgeDigest = installBridge()
        Map<String, String> request = AwsRoleOptions.toRequest(options)
        return withVaultLogin(bridgeDigest, options, request) { Map<String, String> withLogin ->
            awaitCredentials(bridgeDigest, withLogin)
        }
    }

    /**
     * [credentials: Map] or [failure: ...] as fetchCredentials, waiting for Vault in slices: between
     * them a sleep step, where Jenkins can deliver an abort or the enclosing timeout (which then
     * ends the block with FlowInterruptedException). The fetch goes on for other branches and
     * builds that wait for it. A cache hit or a quick Vault answer needs no sleep step.
     */
    Map awaitCredentials(String bridgeDigest, Map<String, String> request) {
        Map outcome = fetchCredentialsWithin(bridgeDigest, request)
        while (outcome.pending) {
            script.sleep(time: BETWEEN_SLICES_MILLIS, unit: 'MILLISECONDS')
            outcome = fetchCredentialsWithin(bridgeDigest, request)
        }
        return outcome
    }

    /** fetchCredentials with one slice's wait: also [pending: true] while Vault has not answered. */
    @NonCPS
    @SuppressWarnings('CatchThrowable') // as fetchCredentials
    static Map fetchCredentialsWithin(String bridgeDigest, Map<String, String> request) {
        try {
            Map<String, String> credentials = NativeBridge.credentialsWithin(bridgeDigest, request, VAULT_WAIT_SLICE_MILLIS)
            return credentials == null ? [pending: true] : [credentials: credentials]
        } catch (Throwable failure) {
            return failureOf(failure)
        }
    }

    /**
     * Calls `callVault` with the request completed by the block's Vault login, and returns what it
     * returns: the job's own credential (vaultCredentialsId); else, on a controller that logs in as
     * each build, the build's id token credential and JWT role from the controller's settings;
     * else nothing, and the core logs in as the controller. RefreshingCredentials uses it too.
     */
    Map withVaultLogin(String bridgeDigest, Map options, Map<String, String> request, Closure callVault) {
        String credentialsId = AwsRoleOptions.vaultCredentialsIdOf(options)
        Map<String, String> withRole = request
        boolean idToken = false
        if (credentialsId == null) {
            Map perBuild = perBuildLogin(bridgeDigest)
            if (perBuild.failure != null) {
                return perBuild
            }
            credentialsId = perBuild.login.credentials_id
            withRole = AwsRoleOptions.withJwtRole(request, (String) perBuild.login.jwt_role)
            idToken = credentialsId != null
        }
        if (credentialsId == null) {
            return callVault(request)
        }
        return new VaultCredential(script, credentialsId, idToken).fetch(withRole, callVault)
    }

    /** [login: [credentials_id:, jwt_role:] or empty] or [failure: message]. */
    @NonCPS
    @SuppressWarnings('CatchThrowable') // as fetchCredentials
    static Map perBuildLogin(String bridgeDigest) {
        try {
            return [login: NativeBridge.perBuildLogin(bridgeDigest)]
        } catch (Throwable failure) {
            return failureOf(failure)
        }
    }

    /**
     * Installs the bridge jar into this JVM unless an earlier build did; returns its sha256.
     * RefreshingCredentials uses it too.
     */
    String installBridge() {
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

    /**
     * Runs the block inside the Mask Passwords plugin's wrapper. Whether the plugin is installed
     * is found by trying the wrapper, the same on every controller and in the local runner: when
     * it is missing, Jenkins fails the wrap step before its block starts, and so does this
     * method, with what to do. The block never runs unmasked unless the Jenkinsfile said mask: false.
     * RefreshingCredentials masks its block's Vault token through this too.
     *
     * The wrap step's own failure message is never shown: Jenkins' "Could not instantiate
     * {delegate={$class=MaskPasswordsBuildWrapper, varPasswordPairs=[...]}}" quotes its
     * arguments, i.e. the very secrets the wrapper was to mask.
     */
    @SuppressWarnings('CatchException') // any failure of the wrap step before its block starts
    def maskedBlock(String role, boolean mask, List<Map<String, String>> secrets, Closure block) {
        if (!mask) {
            return block()
        }
        boolean started = false
        try {
            return script.wrap([$class: MASK_PASSWORDS_WRAPPER, varPasswordPairs: secrets]) {
                started = true
                block()
            }
        } catch (Exception failure) {
            if (started || failure instanceof InterruptedException) {
                throw failure
            }
            script.error(StepMessages.oneLine("withAwsRole('${StepMessages.shown(role)}'): cannot mask the credentials " +
                    'in the build log, so the block did not run: install the Mask Passwords plugin (mask-passwords), ' +
                    'or pass mask: false for a block that prints nothing (the wrap step failed with a ' +
                    "${failure.getClass().simpleName}, whose message would show the secrets)"))
        }
    }

    /**
     * Calls the broker; returns [credentials: Map] or [failure: message, permissionDenied: boolean]
     * for failures the user can act on. Bugs are rethrown as IllegalStateException with the
     * original's message and stack: the bridge's own exception classes live in its classloader,
     * which Jenkins cannot resolve when it saves the build. Not private: a closure calls it, and
     * CPS closures do not reach private methods reliably.
     */
    @NonCPS
    @SuppressWarnings('CatchThrowable') // UnsatisfiedLinkError is an Error, and bugs must keep their stack
    static Map fetchCredentials(String bridgeDigest, Map<String, String> request) {
        try {
            return [credentials: NativeBridge.credentials(bridgeDigest, request)]
        } catch (Throwable failure) {
            return failureOf(failure)
        }
    }

    /**
     * [failure: message, permissionDenied: boolean] for a failure of the bridge the user can act
     * on; anything else is a bug, rethrown as IllegalStateException with the original's message
     * and stack (see fetchCredentials). RefreshingCredentials maps its failures here too.
     */
    @NonCPS
    static Map failureOf(Throwable failure) {
        if (isA(failure, USER_FACING_FAILURES)) {
            return [failure: failure.message ?: failure.getClass().simpleName,
                    permissionDenied: isA(failure, [PERMISSION_DENIED])]
        }
        IllegalStateException bug = new IllegalStateException(
                "withAwsRole: ${failure.getClass().name}: ${failure.message}")
        bug.stackTrace = failure.stackTrace
        throw bug
    }

    /** By class name: the bridge's classes come from another classloader than this build's. */
    @NonCPS
    private static boolean isA(Throwable failure, List<String> classNames) {
        for (Class type = failure.getClass(); type != null; type = type.superclass) {
            if (type.name in classNames) {
                return true
            }
        }
        return false
    }

    @NonCPS
    static String summaryLine(String role, Map<String, String> credentials) {
        return "withAwsRole: ${role} as ${loggedArn(credentials)}, expires ${credentials.expiration} " +
                "(cache ${credentials.cache})"
    }

    /** The assumed-role ARN as the log shows it: arn:aws:sts::***:assumed-role/... when the account id is hidden. */
    @NonCPS
    static String loggedArn(Map<String, String> credentials) {
        if (!accountIdHidden(credentials) || !credentials.account_id) {
            return credentials.arn
        }
        return credentials.arn.replace(":${credentials.account_id}:", ':***:')
    }

    /** The core decided (hideAccountId, or the purposes config's hide_account_id). */
    @NonCPS
    static boolean accountIdHidden(Map<String, String> credentials) {
        return credentials.account_id_hidden == 'true'
    }

    /** The account id as a value to mask in the block's output, when it is hidden; none otherwise. */
    @NonCPS
    static List<Map<String, String>> maskedAccountIdOf(Map<String, String> result) {
        if (!accountIdHidden(result) || !result.account_id) {
            return []
        }
        return [[var: 'AWS_ACCOUNT_ID', password: result.account_id]]
    }

    /** The block's environment: the AWS SDKs' and CLI's standard variables. */
    @NonCPS
    static List<String> environmentOf(Map<String, String> credentials) {
        List<String> environment = [
                "AWS_ACCESS_KEY_ID=${credentials.access_key_id}".toString(),
                "AWS_SECRET_ACCESS_KEY=${credentials.secret_access_key}".toString(),
                "AWS_SESSION_TOKEN=${credentials.session_token}".toString(),
                "AWS_CREDENTIAL_EXPIRATION=${credentials.expiration}".toString(),
        ]
        if (credentials.region) {
            environment << "AWS_REGION=${credentials.region}".toString()
            environment << "AWS_DEFAULT_REGION=${credentials.region}".toString()
        }
        return environment
    }

    /** Values the Mask Passwords wrapper replaces with ******** in the block's output. */
    @NonCPS
    static List<Map<String, String>> maskedValuesOf(Map<String, String> credentials) {
        return [
                [var: 'AWS_ACCESS_KEY_ID', password: credentials.access_key_id],
                [var: 'AWS_SECRET_ACCESS_KEY', password: credentials.secret_access_key],
                [var: 'AWS_SESSION_TOKEN', password: credentials.session_token],
        ].findAll { Map<String, String> pair -> pair.password } + maskedAccountIdOf(credentials) as List<Map<String, String>>
    }
}
