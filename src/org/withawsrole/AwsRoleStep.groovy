package org.withawsrole

import com.cloudbees.groovy.cps.NonCPS

/**
 * withAwsRole: runs a block with short-lived AWS credentials for one role (purpose).
 *
 * The credentials come from the JVM-wide native broker (Vault's AWS secrets engine, cached and
 * single-flighted there) through BridgeGateway, reach the block as environment variables through
 * withEnv, and are masked in the block's console output by the Mask Passwords plugin's build
 * wrapper (BlockRunner). The log gets one line: role, assumed-role ARN, expiry, cache hit or miss.
 * Never a key.
 *
 * CPS: run calls steps and the block; everything else is @NonCPS.
 */
class AwsRoleStep implements Serializable {
    private static final long serialVersionUID = 1L

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
        Map<String, String> credentials = new BridgeGateway(script).credentials(role, options)
        Map block = blockOf(role, options, credentials)
        // Pipeline state is written to disk between steps: the block map hands the secrets to wrap and withEnv.
        credentials = null
        return new BlockRunner(script).run(block, body)
    }

    /** withAwsRole's options and the plain block's own (other names for its keys, KeyVariables). */
    @NonCPS
    static String problemWith(Map options) {
        return AwsRoleOptions.problemWith(options, AwsRoleOptions.validOptions() + KeyVariables.OPTIONS) ?:
                KeyVariables.problemWith(options)
    }

    /** The plain block for BlockRunner: the keys under their standard names and the options' own. */
    @NonCPS
    static Map blockOf(String role, Map options, Map<String, String> credentials) {
        return [role       : role,
                mask       : AwsRoleOptions.maskWanted(options),
                secrets    : maskedValuesOf(credentials) + KeyVariables.maskedValuesOf(options, credentials),
                summary    : summaryLine(role, credentials),
                environment: environmentOf(credentials) + KeyVariables.environmentOf(options, credentials)]
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
