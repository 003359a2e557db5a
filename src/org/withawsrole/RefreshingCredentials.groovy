package org.withawsrole

import com.cloudbees.groovy.cps.NonCPS

/**
 * withAwsRole(role: 'deploy', refresh: true) { ... }: credentials that renew themselves, for blocks
 * that outlive one STS session (docs/refresh.md).
 *
 * The controller creates a Vault token for this block only (a child token holding the one policy
 * withawsrole-sts-<role>, created with the controller's login or the job's vaultCredentialsId,
 * renewable: false, living the block's timeout plus a grace period), copies the awsrole CLI from
 * the library's resources to the agent, and runs the block with a private AWS config whose profile
 * says `credential_process = awsrole credential-process <role> ... --cache-file <dir>/cache-<role>.json`.
 * Every AWS SDK and the aws CLI then fetch new credentials by themselves whenever theirs near
 * expiry, and all of the block's processes share one set through the cache file until shortly
 * before it expires (one Vault call per set, not per process). The block is aborted at its
 * timeout; the token is revoked when the block ends, whether it succeeded or failed, and the
 * private directory (CLI, config, the block's credentials cache) is deleted.
 *
 * The block sees VAULT_ADDR, VAULT_TOKEN (the child token, masked in the log), AWS_CONFIG_FILE,
 * AWS_PROFILE and awsrole on its PATH; no AWS key is in its environment.
 *
 * Options: those of withAwsRole, plus `refresh` (true; false runs the plain step) and `timeout`
 * ('4h' by default; a string like '90m' or a number of seconds; at most '7d').
 *
 * CPS: run, createToken and prepareAgent call steps or the block; everything else is @NonCPS.
 */
class RefreshingCredentials implements Serializable {
    private static final long serialVersionUID = 1L

    static final List<String> OWN_OPTIONS = ['refresh', 'timeout'].asImmutable()
    static final String DEFAULT_TIMEOUT = '4h'
    static final long MINUTE = 60L
    static final long HOUR = 3600L
    static final long DAY = 86400L
    static final long MIN_TIMEOUT_SECONDS = MINUTE
    static final long MAX_TIMEOUT_SECONDS = 7L * DAY
    /** The token outlives the block's timeout by this much: setup before the block, revocation after. */
    static final long GRACE_SECONDS = 300
    /** The profile of the private AWS config. */
    static final String PROFILE = 'withawsrole'
    static final String CLI_RESOURCE = 'org/withawsrole/cli/%s/awsrole'

    /** The pipeline script: steps and env are reached through it. */
    final script

    RefreshingCredentials(script) {
        this.script = script
    }

    /** True when the options ask for this mode (or say refresh: false, which this class also handles). */
    @NonCPS
    static boolean requested(Map options) {
        return options != null && options.containsKey('refresh')
    }

    def run(Map options, Closure body) {
        Map stepOptions = withoutOwnOptions(options)
        if (options.refresh == Boolean.FALSE && !options.containsKey('timeout')) {
            return AwsRole.withRole(script, stepOptions, body)
        }
        String problem = problemWith(options)
        if (problem != null) {
            script.error(StepMessages.oneLine("withAwsRole: ${problem}"))
        }
        if (!script.isUnix()) {
            script.error('withAwsRole: refresh: true hands AWS tools the awsrole CLI, which runs on Linux agents only; ' +
                    "on this Windows agent use a plain block whose ttl covers the work, e.g. withAwsRole(role: 'deploy', ttl: '1h')")
        }
        // withAwsRole(roles: [...], refresh: true): one token and one named profile per role.
        boolean named = RoleProfiles.requested(stepOptions)
        List<String> roles = named ? RoleProfiles.rolesOf(stepOptions) : [AwsRoleOptions.roleOf(stepOptions)]
        long timeoutSeconds = timeoutSecondsOf(options)
        List<Map<String, String>> revocations = []
        String directory = null
        try {
            List<Map<String, String>> children = []
            for (String role : roles) {
                Map outcome = blockToken(named ? RoleProfiles.optionsFor(stepOptions, role) : stepOptions, timeoutSeconds)
                if (outcome.failure != null) {
                    script.error(StepMessages.oneLine("withAwsRole('${role}'): ${outcome.failure}"))
                }
                Map<String, String> child = (Map<String, String>) outcome.token
                outcome = null
                revocations << revocationRequest(child)
                children << child
            }
            directory = prepareAgent(roles[0], children, named)
            List<String> environment = environmentOf(children[0], directory, named ? roles[0] : PROFILE)
            List<Map<String, String>> secrets = maskedValuesOf(children)
            // Plain loops in CPS code that calls steps.
            for (int i = 0; i < roles.size(); i++) {
                script.echo(summaryLine(roles[i], children[i], timeoutSeconds))
            }
            children = null
            return new AwsRoleStep(script).maskedBlock(roles[0], AwsRoleOptions.maskWanted(stepOptions), secrets) {
                script.timeout(time: timeoutSeconds, unit: 'SECONDS') {
                    script.withEnv(environment) {
                        body()
                    }
                }
            }
        } finally {
            for (int i = 0; i < revocations.size(); i++) {
                script.echo(revocationLine(roles[i], revokeInThisJvm(revocations[i])))
            }
            if (directory != null) {
                script.sh("set +x; rm -rf '${directory}'")
            }
        }
    }

    /**
     * Revokes the block's child token, installing the bridge first: a build resumed after a
     * controller restart runs this in a new JVM, where no earlier block installed it. Returns
     * null when done, else what went wrong (never thrown: the block's own outcome wins).
     */
    @SuppressWarnings('CatchException') // whatever fails here, the block's own outcome must win
    private String revokeInThisJvm(Map<String, String> revocation) {
        String bridgeDigest
        try {
            bridgeDigest = new AwsRoleStep(script).installBridge()
        } catch (Exception failure) {
            if (failure instanceof InterruptedException) {
                throw failure
            }
            return "cannot install the bridge to revoke it (${failure.getClass().simpleName})"
        }
        return revoke(bridgeDigest, revocation)
    }

    /**
     * [token: Map] or [failure: message]: the child token, created with the
     * block's Vault login as a plain block would log in (AwsRoleStep.withVaultLogin).
     */
    private Map blockToken(Map stepOptions, long timeoutSeconds) {
        AwsRoleStep step = new AwsRoleStep(script)
        String bridgeDigest = step.installBridge()
        Map<String, String> request = tokenRequest(stepOptions, timeoutSeconds)
        return step.withVaultLogin(bridgeDigest, stepOptions, request) { Map<String, String> withLogin ->
            childToken(bridgeDigest, withLogin)
        }
    }

    /**
     * A new private directory in the workspace's @tmp on the agent with the awsrole CLI for the
     * agent's platform and the AWS config naming it; returns the directory.
     */
    @SuppressWarnings('CatchException') // libraryResource's "no such resource" has no class of its own
    private String prepareAgent(String role, List<Map<String, String>> children, boolean named) {
        if (!script.isUnix()) {
            script.error("withAwsRole('${role}'): refresh: true needs a Linux agent (the awsrole CLI runs there)")
        }
        String platform = platformOf(script.sh(script: 'uname -sm', returnStdout: true))
        String resource = String.format(CLI_RESOURCE, platform)
        String directory = privateDirectoryIn(script.pwd(tmp: true))
        String problem = pathProblem(directory)
        if (problem != null) {
            script.error("withAwsRole('${role}'): ${problem}")
        }
        // The binary travels as Base64 text: writeFile's own Base64 mode is not in every Jenkins.
        script.sh("set +x; umask 077; mkdir -p '${directory}'")
        try {
            script.writeFile(file: "${directory}/awsrole.b64", text: script.libraryResource(resource: resource, encoding: 'Base64'))
        } catch (Exception missing) {
            if (missing instanceof InterruptedException) {
                throw missing
            }
            script.error("withAwsRole('${role}'): this library has no awsrole CLI for ${platform} (${resource}), " +
                    "which refresh: true runs on the agent: build it with 'make native' (${missing.message})")
        }
        script.sh("set +x; cd '${directory}' && base64 -d < awsrole.b64 > awsrole && rm awsrole.b64 && chmod 700 awsrole")
        script.writeFile(file: "${directory}/config", text: awsConfig(children, "${directory}/awsrole", named))
        script.writeFile(file: "${directory}/credentials", text: '')
        if (named) {
            // Each role's token in a file of its own (0600 in the 0700 directory), which its profile names;
            // the tokens reach the sh step in its environment, never in a step's arguments.
            script.withEnv(tokenVariablesOf(children)) {
                script.sh("set +x; umask 077; ${tokenFileWrites(children, directory)}")
            }
        }
        return directory
    }

    // ---- @NonCPS helpers (no steps) -------------------------------------------------------------

    /** Every child token (and hidden account id) the Mask Passwords wrapper hides in the block's output. */
    @NonCPS
    static List<Map<String, String>> maskedValuesOf(List<Map<String, String>> children) {
        List<Map<String, String>> secrets = []
        children.eachWithIndex { Map<String, String> child, int i ->
            secrets << [var: i == 0 ? 'VAULT_TOKEN' : "VAULT_TOKEN_${i}".toString(), password: child.token]
            secrets.addAll(AwsRoleStep.maskedAccountIdOf(child))
        }
        return secrets
    }

    /** The tokens as variables of the one sh step that writes them to files. */
    @NonCPS
    static List<String> tokenVariablesOf(List<Map<String, String>> children) {
        List<String> variables = []
        children.eachWithIndex { Map<String, String> child, int i -> variables << "WITHAWSROLE_TOKEN_${i}=${child.token}".toString() }
        return variables
    }

    @NonCPS
    static String tokenFileWrites(List<Map<String, String>> children, String directory) {
        List<String> writes = []
        children.eachWithIndex { Map<String, String> child, int i ->
            writes << "printf '%s' \"\$WITHAWSROLE_TOKEN_${i}\" > '${directory}/token-${child.purpose}'".toString()
        }
        return writes.join(' && ')
    }

    @NonCPS
    static Map withoutOwnOptions(Map options) {
        Map rest = new LinkedHashMap(options ?: [:])
        OWN_OPTIONS.each { String option -> rest.remove(option) }
        return rest
    }

    /** What is wrong with the options, as one sentence for the build log; null when nothing is. */
    @NonCPS
    static String problemWith(Map options) {
        if (!(options.refresh instanceof Boolean)) {
            return "refresh must be true or false, not a ${options.refresh?.getClass()?.simpleName}"
        }
        if (options.refresh == Boolean.FALSE) {
            return 'timeout is an option of refresh: true; leave it out, or use the timeout step around the block'
        }
        Object timeout = options.timeout
        if (timeout != null && timeoutSecondsOrNull(timeout) == null) {
            return "timeout must be a string like '90m', '4h' or '1d', or a number of seconds, from 1m to 7d " +
                    '(the block is aborted after it and its Vault token expires soon after)'
        }
        if (RoleProfiles.requested(options)) {
            return RoleProfiles.problemWith(withoutOwnOptions(options))
        }
        List<String> valid = AwsRoleOptions.validOptions() + OWN_OPTIONS
        return AwsRoleOptions.problemWith(withoutOwnOptions(options), valid)
    }

    @NonCPS
    static long timeoutSecondsOf(Map options) {
        return timeoutSecondsOrNull(options.timeout ?: DEFAULT_TIMEOUT)
    }

    /** '90m', '4h', '1h30m', '1d' or a number of seconds, within 60 s .. 7 d; null otherwise. */
    @NonCPS
    static Long timeoutSecondsOrNull(Object timeout) {
        Long seconds = null
        if (timeout instanceof Number) {
            seconds = ((Number) timeout).longValue()
        } else if (timeout instanceof CharSequence) {
            String text = timeout.toString().trim()
            if (text ==~ /\d{1,9}/) {
                seconds = Long.parseLong(text)
            } else {
                java.util.regex.Matcher match = text =~ /^(?:(\d{1,4})d)?(?:(\d{1,5})h)?(?:(\d{1,6})m)?(?:(\d{1,7})s)?$/
                if (text && match.matches()) {
                    List<Long> factors = [DAY, HOUR, MINUTE, 1L]
                    seconds = 0L
                    for (int i = 0; i < 4; i++) {
                        String group = match.group(i + 1)
                        seconds += group ? Long.parseLong(group) * factors[i] : 0L
                    }
                }
            }
        }
        return (seconds != null && seconds >= MIN_TIMEOUT_SECONDS && seconds <= MAX_TIMEOUT_SECONDS) ? seconds : null
    }

    /**
     * withAwsRole's request plus the child token's lifetime. The bridge adds the build and the
     * purposes config (so the agent gets the same role_arn, ttl and region as a plain block); the
     * token role child tokens are created through is the controller's WITHAWSROLE_TOKEN_ROLE.
     */
    @NonCPS
    static Map<String, String> tokenRequest(Map stepOptions, long timeoutSeconds) {
        Map<String, String> request = AwsRoleOptions.toRequest(stepOptions)
        request.token_ttl = String.valueOf(timeoutSeconds + GRACE_SECONDS)
        return request
    }

    /** The revocation needs only the child token itself: Vault is the controller's. */
    @NonCPS
    static Map<String, String> revocationRequest(Map<String, String> child) {
        return [token: child.token]
    }

    @NonCPS
    @SuppressWarnings('CatchThrowable') // UnsatisfiedLinkError is an Error, and bugs must keep their stack
    static Map childToken(String bridgeDigest, Map<String, String> request) {
        try {
            return [token: callBroker(bridgeDigest, 'createChildToken', request)]
        } catch (Throwable failure) {
            return AwsRoleStep.failureOf(failure)
        }
    }

    /** Revokes the child token; returns null when done, else what went wrong (never thrown: the block's own outcome wins). */
    @NonCPS
    @SuppressWarnings('CatchThrowable') // whatever happens, the block's own outcome must win
    static String revoke(String bridgeDigest, Map<String, String> request) {
        try {
            Map<String, String> result = callBroker(bridgeDigest, 'revokeChildToken', request)
            return result.revocation == 'revoked' || result.revocation == 'already_gone' ? null : "unexpected answer ${result}"
        } catch (Throwable failure) {
            return failure.message ?: failure.getClass().simpleName
        }
    }

    @NonCPS
    private static Map<String, String> callBroker(String bridgeDigest, String method, Map<String, String> request) {
        Class broker = NativeBridge.loaderOf(bridgeDigest).loadClass(NativeBridge.BROKER_CLASS)
        try {
            Object shared = broker.getMethod('shared').invoke(null)
            return (Map<String, String>) broker.getMethod(method, Map).invoke(shared, request)
        } catch (java.lang.reflect.InvocationTargetException e) {
            throw e.cause
        }
    }

    /** `uname -sm` -> the resource folder: linux-x86_64, linux-aarch64. */
    @NonCPS
    static String platformOf(String unameSm) {
        List<String> words = (unameSm ?: '').trim().tokenize()
        String os = words ? words[0].toLowerCase(Locale.ROOT) : 'unknown'
        String arch = words.size() > 1 ? words[1].toLowerCase(Locale.ROOT) : 'unknown'
        arch = (arch in ['amd64', 'x86_64', 'x64']) ? 'x86_64' : (arch in ['aarch64', 'arm64']) ? 'aarch64' : arch
        return "${os}-${arch}"
    }

    @NonCPS
    static String privateDirectoryIn(String tmp) {
        return "${tmp}/withawsrole-${UUID.randomUUID().toString().substring(0, 8)}"
    }

    /** The path goes into a credential_process line and into sh: keep it to characters safe in both. */
    @NonCPS
    static String pathProblem(String path) {
        if (path ==~ /[^"$`\\'\n]+/) {
            return null
        }
        return "refresh: true cannot use the workspace path ${path}: it holds a quote, \$, backquote, backslash " +
                'or newline, which the AWS config\'s credential_process line cannot carry; use a workspace without them'
    }

    /**
     * The private AWS config: a profile whose credentials come from awsrole with the block's token
     * (`withawsrole`), or with roles: one profile per role, named like it, each with its own token file.
     */
    @NonCPS
    static String awsConfig(List<Map<String, String>> children, String cli, boolean named) {
        StringBuilder config = new StringBuilder()
        config << '# withAwsRole(refresh: true): written for one block, deleted after it\n'
        String directory = cli.replaceFirst(/\/awsrole$/, '')
        children.each { Map<String, String> child ->
            List<String> command = ["\"${cli}\"".toString(), 'credential-process', quoted(child.purpose),
                                    '--mount', quoted(child.mount), '--vault-role', quoted(child.vault_role),
                                    '--session-name', quoted(child.session_name)]
            if (child.role_arn) {
                command += ['--role-arn', quoted(child.role_arn)]
            }
            if (child.ttl) {
                command += ['--ttl', quoted(child.ttl)]
            }
            // Beside the CLI, in the block's private directory, deleted with it.
            command += ['--cache-file', quoted("${directory}/cache-${child.purpose}.json".toString())]
            if (named) {
                command += ['--vault-token-file', quoted("${directory}/token-${child.purpose}".toString())]
            }
            config << "[profile ${named ? child.purpose : PROFILE}]\n"
            config << "credential_process = ${command.join(' ')}\n"
            if (child.region) {
                config << "region = ${child.region}\n"
            }
        }
        return config.toString()
    }

    @NonCPS
    private static String quoted(String value) {
        return "\"${value}\"".toString()
    }

    /**
     * The block's environment: the private config and its profile, the child token for awsrole, and
     * no AWS keys (an outer withAwsRole's keys would win over the profile in every SDK).
     */
    @NonCPS
    static List<String> environmentOf(Map<String, String> child, String directory, String profile) {
        List<String> environment = [
                "AWS_CONFIG_FILE=${directory}/config",
                "AWS_SHARED_CREDENTIALS_FILE=${directory}/credentials",
                "AWS_PROFILE=${profile}",
                "AWS_DEFAULT_PROFILE=${profile}",
                'AWS_SDK_LOAD_CONFIG=1',
                'AWS_ACCESS_KEY_ID=',
                'AWS_SECRET_ACCESS_KEY=',
                'AWS_SESSION_TOKEN=',
                'AWS_SECURITY_TOKEN=',
                'AWS_CREDENTIAL_EXPIRATION=',
                "VAULT_ADDR=${child.vault_addr}",
                "VAULT_TOKEN=${child.token}",
                "VAULT_NAMESPACE=${child.vault_namespace ?: ''}",
                // The controller's CA file path may not exist on the agent: the agent's own applies.
                "VAULT_SKIP_VERIFY=${child.vault_skip_verify ?: ''}",
                // The controller resolved the role's settings; an agent-side file must not change them.
                'WITHAWSROLE_CONFIG=',
                "WITHAWSROLE_CLI=${directory}/awsrole",
                "PATH+WITHAWSROLE=${directory}",
        ]*.toString()
        if (child.region) {
            environment << "AWS_REGION=${child.region}".toString()
            environment << "AWS_DEFAULT_REGION=${child.region}".toString()
        }
        return environment
    }

    @NonCPS
    static String summaryLine(String role, Map<String, String> child, long timeoutSeconds) {
        return "withAwsRole: ${role} refreshing through awsrole credential-process with a Vault token for " +
                "${child.sts_path} only (policy ${child.policies}), valid until ${child.expiration}; the block " +
                "is aborted after ${timeoutSeconds} s"
    }

    @NonCPS
    static String revocationLine(String role, String problem) {
        if (problem == null) {
            return "withAwsRole: ${role}: the block's Vault token is revoked"
        }
        return "withAwsRole: ${role}: WARNING: could not revoke the block's Vault token (it expires by itself at " +
                "the time logged above): ${problem}"
    }
}
