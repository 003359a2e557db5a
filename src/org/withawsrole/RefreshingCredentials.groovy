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
    /** The block's timeout, and so its Vault token's lifetime, unless the Jenkinsfile says otherwise. */
    static final String DEFAULT_TIMEOUT = '4h'
    /** The profile of the private AWS config. */
    static final String PROFILE = 'withawsrole'
    static final String CLI_RESOURCE = 'org/withawsrole/cli/%s/awsrole'
    /** Settings the agent keeps its own of: the controller's CA file path may not exist on the agent. */
    static final List<String> AGENTS_OWN_SETTINGS = ['VAULT_CACERT'].asImmutable()
    /**
     * Variables that the aws CLI/botocore and the Java and Go SDKs read ahead of a profile named by
     * AWS_PROFILE (their key variables, and the web identity token file of EKS' IRSA), which the block
     * takes out of its environment with an empty withEnv value. Jenkins starts sh from the agent
     * JVM's own environment with the block's on top, so a removal holds only where the agent's
     * process lacks them: prepareAgent checks. (The core's settings need no check: the profile
     * starts awsrole with the ones the block leaves empty taken out, see cliSettingsTakenOut.)
     */
    static final List<String> AHEAD_OF_THE_PROFILE = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN',
                                                      'AWS_SECURITY_TOKEN', 'AWS_WEB_IDENTITY_TOKEN_FILE'].asImmutable()
    /** Present on every Linux agent (GNU coreutils, busybox); by its path, whatever the block's PATH. */
    static final String ENV_COMMAND = '/usr/bin/env'

    /** The pipeline script: steps and env are reached through it. */
    final script

    RefreshingCredentials(script) {
        this.script = script
    }

    /** True when the options ask for this mode: refresh: true (refresh: false is a plain block, or one with roles). */
    @NonCPS
    static boolean requested(Map options) {
        return options != null && options.refresh == Boolean.TRUE
    }

    def run(Map options, Closure body) {
        String problem = problemWith(options)
        if (problem != null) {
            script.error(StepMessages.oneLine("withAwsRole: ${problem}"))
        }
        if (!script.isUnix()) {
            script.error('withAwsRole: refresh: true hands AWS tools the awsrole CLI, which runs on Linux agents only; ' +
                    "on this Windows agent use a plain block whose ttl covers the work, e.g. withAwsRole(role: 'deploy', ttl: '1h')")
        }
        Map stepOptions = withoutOwnOptions(options)
        // withAwsRole(roles: [...], refresh: true): one token and one named profile per role.
        List<String> roles = RoleProfiles.requested(stepOptions) ? RoleProfiles.rolesOf(stepOptions) : [AwsRoleOptions.roleOf(stepOptions)]
        String temporaryFiles = RoleProfiles.temporaryFiles(script)
        String directory = null
        BridgeGateway gateway = new BridgeGateway(script)
        // The tokens to revoke after the block: the one secret the library keeps for the block's whole life.
        List<String> revocations = []
        boolean created = false
        try {
            Map block = null
            Map agent = [stepOptions: stepOptions, directory: null, settingVariables: gateway.settingVariables()]
            for (String role : roles) {
                Map<String, String> child = gateway.childToken(role, optionsFor(stepOptions, role), timeoutOf(options))
                revocations << child.token
                if (directory == null) {
                    directory = PrivateDirectories.named(temporaryFiles, Long.parseLong(child.expires_at_epoch_seconds))
                    agent.directory = directory
                }
                block = withChild(block, role, agent, child)
                child = null
            }
            created = true
            prepareAgent(directory, block)
            return new BlockRunner(script).run(block, body)
        } finally {
            revokeAll(gateway, roles, revocations)
            if (created) {
                script.sh("set +x; rm -rf '${directory}'")
            }
        }
    }

    /** Revokes each token the block got (one log line for them all); what fails is logged, never thrown. */
    def revokeAll(BridgeGateway gateway, List<String> roles, List<String> revocations) {
        List<String> lines = []
        for (int i = 0; i < revocations.size(); i++) {
            lines << revocationLine(roles[i], gateway.revoke(revocations[i]))
        }
        revocations.clear()
        if (lines) {
            script.echo(lines.join('\n'))
        }
    }

    /**
     * Puts the awsrole CLI for the agent's platform into the new private directory on the agent,
     * with the AWS config naming it (and, with roles, each role's token in a file of its own).
     */
    @SuppressWarnings('CatchException') // libraryResource's "no such resource" has no class of its own
    def prepareAgent(String directory, Map block) {
        List<String> removed = removedFrom((List<String>) block.environment)
        String sweep = PrivateDirectories.removalOfDeadBeside("'${directory}'")
        String probe = script.sh(script: "set +x; umask 077; ${sweep}; mkdir -p '${directory}' && " +
                agentProbe(removed), returnStdout: true)
        // Set in the process but not in the build's environment: the agent's own, which the block cannot remove.
        List<String> overriding = []
        for (String name : agentOverridesIn(probe)) {
            if (script.env[name] == null) {
                overriding << name
            }
        }
        if (!overriding.isEmpty()) {
            script.error("withAwsRole('${block.role}'): this agent's own environment sets ${overriding.join(', ')}, which Jenkins " +
                    "cannot take out of the block's processes and which AWS tools use ahead of the block's profile: start the agent " +
                    'without them, or use a plain block (no refresh: true), which sets its own keys')
        }
        String platform = platformOf(probe)
        String resource = String.format(CLI_RESOURCE, platform)
        // The binary travels as Base64 text: writeFile's own Base64 mode is not in every Jenkins.
        try {
            script.writeFile(file: "${directory}/awsrole.b64", text: script.libraryResource(resource: resource, encoding: 'Base64'))
        } catch (Exception missing) {
            if (missing instanceof InterruptedException) {
                throw missing
            }
            script.error("withAwsRole('${block.role}'): this library has no awsrole CLI for ${platform} (${resource}), " +
                    "which refresh: true runs on the agent: build it with 'make native' (${missing.message})")
        }
        script.writeFile(file: "${directory}/config", text: awsConfig((List<Map<String, String>>) block.remove('profiles'), directory,
                (List<String>) block.remove('cliSettingsTakenOut')))
        String unpack = "set +x; umask 077; cd '${directory}' && base64 -d < awsrole.b64 > awsrole && rm awsrole.b64 && " +
                "chmod 700 awsrole && : > credentials${tokenFileWrites((List<String>) block.remove('tokenFiles'))}"
        if (!block.tokenVariables) {
            script.sh(unpack)
            return
        }
        // With roles, each role's token goes into a file of its own (0600 in the 0700 directory) that its
        // profile names: the tokens reach this sh step in its environment, never in a step's arguments.
        script.withEnv(StepRecords.unstoredEnvironment((List<String>) block.remove('tokenVariables'))) {
            script.sh(unpack)
        }
    }

    // ---- @NonCPS helpers (no steps) -------------------------------------------------------------

    /** The AHEAD_OF_THE_PROFILE variables that the block's environment removes (sets empty). */
    @NonCPS
    static List<String> removedFrom(List<String> environment) {
        return AHEAD_OF_THE_PROFILE.findAll { String name -> "${name}=".toString() in environment }
    }

    /** `uname -sm`, then `agent-sets NAME` for each of names the process has; never a value (the caller's set +x). */
    @NonCPS
    static String agentProbe(List<String> names) {
        return 'uname -sm; for name in ' + names.join(' ') +
                '; do if [ -n "$(printenv "$name")" ]; then echo "agent-sets $name"; fi; done'
    }

    @NonCPS
    static List<String> agentOverridesIn(String probe) {
        return (probe ?: '').readLines().findAll { String line -> line.startsWith('agent-sets ') }
                .collect { String line -> line.substring('agent-sets '.length()).trim() }
    }

    /**
     * The block with one more role's child token: BlockRunner's map, plus what prepareAgent writes
     * (the profiles for the AWS config and, with roles, the token files). The first role's token
     * and profile are the block's environment; the block is aborted when its first token ends
     * (every token lives the one timeout).
     */
    @NonCPS
    static Map withChild(Map block, String role, Map agent, Map<String, String> child) {
        boolean named = RoleProfiles.requested(agent.stepOptions)
        String directory = agent.directory
        Map next = block ?: [role          : role,
                             mask          : AwsRoleOptions.maskWanted(agent.stepOptions),
                             secrets       : [],
                             summary       : null,
                             environment   : environmentOf(child, directory, named ? role : PROFILE) +
                                     agentSettingsOf((List<String>) agent.settingVariables, child),
                             cliSettingsTakenOut: cliSettingsTakenOut((List<String>) agent.settingVariables, child),
                             abortAtEpochSeconds: Long.MAX_VALUE,
                             profiles      : [],
                             tokenVariables: [],
                             tokenFiles    : [],]
        int index = next.profiles.size()
        next.secrets << [var: index == 0 ? 'VAULT_TOKEN' : "VAULT_TOKEN_${index}".toString(), password: child.token]
        next.secrets.addAll(AwsRoleStep.maskedAccountIdOf(child))
        next.summary = [next.summary, summaryLine(role, child)].findAll().join('\n')
        next.abortAtEpochSeconds = Math.min((long) next.abortAtEpochSeconds, Long.parseLong(child.expires_at_epoch_seconds))
        String tokenFile = named ? "${directory}/token-${child.purpose}".toString() : null
        next.profiles << profileOf(child, named ? child.purpose : PROFILE, tokenFile)
        if (named) {
            next.tokenVariables << "WITHAWSROLE_TOKEN_${index}=${child.token}".toString()
            next.tokenFiles << tokenFile
        }
        return next
    }

    /** What the AWS config needs of a child token's answer (no token: that goes into a file or the environment). */
    @NonCPS
    static Map<String, String> profileOf(Map<String, String> child, String profile, String tokenFile) {
        Map<String, String> chosen = child.subMap(['purpose', 'mount', 'vault_role', 'session_name', 'role_arn', 'ttl', 'region'])
        chosen.profile = profile
        if (tokenFile != null) {
            chosen.token_file = tokenFile
        }
        return chosen.findAll { String key, String value -> value != null }
    }

    /** `&& printf` of each token variable into its file, for the sh step that unpacks the CLI. */
    @NonCPS
    static String tokenFileWrites(List<String> tokenFiles) {
        StringBuilder writes = new StringBuilder()
        tokenFiles.eachWithIndex { String file, int i ->
            writes << " && printf '%s' \"\$WITHAWSROLE_TOKEN_${i}\" > '${file}'"
        }
        return writes.toString()
    }

    @NonCPS
    static Map withoutOwnOptions(Map options) {
        return AwsRoleOptions.optionsWith(options, OWN_OPTIONS, [:])
    }

    /** withAwsRole's options for one role of the block. */
    @NonCPS
    static Map optionsFor(Map stepOptions, String role) {
        return RoleProfiles.requested(stepOptions) ? RoleProfiles.optionsFor(stepOptions, role) : stepOptions
    }

    /**
     * The block's timeout as the Jenkinsfile gave it: it is the Vault token's token_ttl, whose
     * units and limits only the core knows (rust/core/src/child_token.rs), and the block is
     * aborted when the token ends.
     */
    @NonCPS
    static String timeoutOf(Map options) {
        return options.timeout == null ? DEFAULT_TIMEOUT : options.timeout.toString().trim()
    }

    /**
     * What is wrong with `refresh` and `timeout`, in any mode (AwsRole.withRole asks before it
     * picks one); null when nothing is.
     */
    @NonCPS
    static String modeProblem(Map options) {
        if (options == null || !options.containsKey('refresh')) {
            return null
        }
        if (!(options.refresh instanceof Boolean)) {
            return "refresh must be true or false, not a ${options.refresh?.getClass()?.simpleName}"
        }
        if (options.refresh == Boolean.FALSE && options.containsKey('timeout')) {
            return 'timeout is an option of refresh: true; leave it out, or use the timeout step around the block'
        }
        return null
    }

    /** What is wrong with the options of a refresh: true block, as one sentence for the build log; null when nothing is. */
    @NonCPS
    static String problemWith(Map options) {
        Object timeout = options.timeout
        if (timeout != null && !(timeout instanceof CharSequence) && !(timeout instanceof Number)) {
            return "timeout must be a string like '90m', '4h' or '1d', or a number of seconds " +
                    '(the block is aborted when its Vault token, which lives that long, ends)'
        }
        if (RoleProfiles.requested(options)) {
            return RoleProfiles.problemWith(withoutOwnOptions(options))
        }
        List<String> valid = AwsRoleOptions.validOptions() + OWN_OPTIONS
        return AwsRoleOptions.problemWith(withoutOwnOptions(options), valid)
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

    /**
     * The private AWS config: a profile whose credentials come from awsrole with the block's token
     * (`withawsrole`), or with roles: one profile per role, named like it, each with its own token file.
     * awsrole starts without the settings the block leaves empty (takenOut): an empty withEnv value
     * cannot take them out of the agent's own environment, which every process of the block inherits.
     */
    @NonCPS
    static String awsConfig(List<Map<String, String>> profiles, String directory, List<String> takenOut) {
        StringBuilder config = new StringBuilder()
        config << '# withAwsRole(refresh: true): written for one block, deleted after it\n'
        List<String> start = takenOut ? [ENV_COMMAND] + takenOut.collect { String name -> "-u ${name}".toString() } : []
        profiles.each { Map<String, String> profile ->
            List<String> command = start + [quoted("${directory}/awsrole".toString()), 'credential-process', quoted(profile.purpose),
                                    '--mount', quoted(profile.mount), '--vault-role', quoted(profile.vault_role),
                                    '--session-name', quoted(profile.session_name)]
            if (profile.role_arn) {
                command += ['--role-arn', quoted(profile.role_arn)]
            }
            if (profile.ttl) {
                command += ['--ttl', quoted(profile.ttl)]
            }
            // Beside the CLI, in the block's private directory, deleted with it.
            command += ['--cache-file', quoted("${directory}/cache-${profile.purpose}.json".toString())]
            if (profile.token_file) {
                command += ['--vault-token-file', quoted(profile.token_file)]
            }
            config << "[profile ${profile.profile}]\n"
            config << "credential_process = ${command.join(' ')}\n"
            if (profile.region) {
                config << "region = ${profile.region}\n"
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
                'AWS_WEB_IDENTITY_TOKEN_FILE=',
                "WITHAWSROLE_CLI=${directory}/awsrole",
                "PATH+WITHAWSROLE=${directory}",
        ]*.toString()
        if (child.region) {
            environment << "AWS_REGION=${child.region}".toString()
            environment << "AWS_DEFAULT_REGION=${child.region}".toString()
        }
        return environment
    }

    /**
     * The controller's settings as the awsrole CLI on the agent gets them: every variable the core
     * lists (the one list: nothing here names them), set to what the controller resolved for this
     * token (the child token's answer carries vault_addr, vault_namespace, ...: the variable's name
     * in lower case) or empty, so nothing set on the agent or by the pipeline changes where the CLI
     * goes or how it logs in. Only the CA file is the agent's own: the controller's path may not exist there.
     */
    @NonCPS
    static List<String> agentSettingsOf(List<String> settingVariables, Map<String, String> child) {
        return cliSettingsOf(settingVariables, child).collect { String variable, String value -> "${variable}=${value}".toString() }
    }

    /**
     * The settings agentSettingsOf leaves empty, which the profile's credential_process takes out of
     * awsrole's environment (`env -u`): where the agent's own process has one, the block's processes
     * inherit it (Jenkins cannot remove it), and awsrole would use it. Those the block sets win anyway.
     */
    @NonCPS
    static List<String> cliSettingsTakenOut(List<String> settingVariables, Map<String, String> child) {
        return cliSettingsOf(settingVariables, child).findAll { String variable, String value -> value.isEmpty() }.keySet() as List<String>
    }

    /** Each setting variable but the agent's own, with the controller's value for this token or ''. */
    @NonCPS
    static Map<String, String> cliSettingsOf(List<String> settingVariables, Map<String, String> child) {
        Map<String, String> settings = [:]
        settingVariables.findAll { String variable -> !(variable in AGENTS_OWN_SETTINGS) }.each { String variable ->
            String value = variable == 'VAULT_TOKEN' ? child.token : child[variable.toLowerCase(Locale.ROOT)]
            settings[variable] = value ?: ''
        }
        return settings
    }

    @NonCPS
    static String summaryLine(String role, Map<String, String> child) {
        return "withAwsRole: ${role} refreshing through awsrole credential-process with a Vault token for " +
                "${child.sts_path} only (policy ${child.policies}), valid until ${child.expiration}; the block " +
                "is aborted after ${child.token_ttl_seconds} s, when the token ends"
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
