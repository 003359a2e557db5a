package org.withawsrole

import com.cloudbees.groovy.cps.NonCPS

/**
 * withAwsRole: runs a block with short-lived AWS credentials for one purpose.
 *
 * The credentials come from the JVM-wide native broker (Vault's AWS secrets engine, cached and
 * single-flighted there), reach the block as environment variables through withEnv, and are masked
 * in the block's console output by the Mask Passwords plugin's build wrapper. The log gets one line:
 * purpose, assumed-role ARN, expiry, cache hit or miss. Never a key.
 *
 * CPS: run() only calls steps and @NonCPS helpers; everything that touches Java is @NonCPS.
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

    static final String MASK_PASSWORDS_PLUGIN = 'mask-passwords'

    /** The pipeline script (vars/withAwsRole's `this`): steps and env are reached through it. */
    final def script

    AwsRoleStep(def script) {
        this.script = script
    }

    def run(Map options, Closure body) {
        String problem = AwsRoleOptions.problemWith(options)
        if (problem != null) {
            script.error("withAwsRole: ${problem}")
        }
        String purpose = AwsRoleOptions.purposeOf(options)
        boolean mask = AwsRoleOptions.maskWanted(options)
        if (mask && !maskPasswordsAvailable()) {
            script.error("withAwsRole('${purpose}'): the Mask Passwords plugin (${MASK_PASSWORDS_PLUGIN}) is not " +
                    "installed, so the credentials could leak into the build log; install it, or pass mask: false")
        }
        Map<String, String> request = AwsRoleOptions.toRequest(options, script.env)

        String bridgeDigest = script.libraryResource(NativeBridge.DIGEST_RESOURCE).trim()
        if (!NativeBridge.isInstalled(bridgeDigest)) {
            NativeBridge.install(bridgeDigest,
                    script.libraryResource(resource: NativeBridge.JAR_RESOURCE, encoding: 'Base64'))
        }

        Map outcome = fetchCredentials(bridgeDigest, request)
        if (outcome.failure != null) {
            script.error("withAwsRole('${purpose}'): ${outcome.failure}")
        }
        script.echo(summaryLine(purpose, (Map<String, String>) outcome.credentials))
        List<String> environment = environmentOf((Map<String, String>) outcome.credentials)
        List<Map<String, String>> secrets = maskedValuesOf((Map<String, String>) outcome.credentials)
        // Pipeline state is written to disk between steps: keep the result out of it.
        outcome = null

        if (mask) {
            return script.wrap([$class: 'MaskPasswordsBuildWrapper', varPasswordPairs: secrets]) {
                script.withEnv(environment) {
                    body()
                }
            }
        }
        return script.withEnv(environment) {
            body()
        }
    }

    /**
     * Calls the broker; returns [credentials: Map] or [failure: message] for failures the user can
     * act on. Bugs are rethrown as IllegalStateException with the original's message and stack: the
     * bridge's own exception classes live in its classloader, which Jenkins cannot resolve when it
     * saves the build.
     */
    @NonCPS
    private static Map fetchCredentials(String bridgeDigest, Map<String, String> request) {
        try {
            return [credentials: NativeBridge.credentials(bridgeDigest, request)]
        } catch (Throwable failure) {
            if (isUserFacing(failure)) {
                return [failure: failure.message ?: failure.getClass().simpleName]
            }
            IllegalStateException bug = new IllegalStateException(
                    "withAwsRole: ${failure.getClass().name}: ${failure.message}")
            bug.stackTrace = failure.stackTrace
            throw bug
        }
    }

    @NonCPS
    private static boolean isUserFacing(Throwable failure) {
        for (Class type = failure.getClass(); type != null; type = type.superclass) {
            if (type.name in USER_FACING_FAILURES) {
                return true
            }
        }
        return false
    }

    @NonCPS
    static String summaryLine(String purpose, Map<String, String> credentials) {
        return "withAwsRole: ${purpose} as ${credentials.arn}, expires ${credentials.expiration} " +
                "(cache ${credentials.cache})"
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
        ].findAll { it.password } as List<Map<String, String>>
    }

    /**
     * Inside Jenkins: whether the Mask Passwords plugin is installed and active. Outside Jenkins (the
     * local runner in test/jvm) there is no plugin manager and the runner's wrap does the masking.
     */
    @NonCPS
    private static boolean maskPasswordsAvailable() {
        Class jenkins
        try {
            jenkins = Class.forName('jenkins.model.Jenkins', false, AwsRoleStep.classLoader)
        } catch (ClassNotFoundException ignored) {
            return true
        }
        def plugin = jenkins.getMethod('get').invoke(null).pluginManager.getPlugin(MASK_PASSWORDS_PLUGIN)
        return plugin != null && plugin.isActive()
    }
}
