package org.withawsrole

import com.cloudbees.groovy.cps.NonCPS

/**
 * withAwsRole(roles: ['ecr-push', 'deploy']) { sh 'aws --profile deploy ...' }: several roles in
 * one block, one named AWS profile per role.
 *
 * Each role is fetched exactly as a plain block fetches it (the purposes config authorizes each;
 * parallel branches share one fetch per role through the controller's cache). The first role is
 * the default: its keys are the block's AWS_* variables, as in a plain block. Every role is also a
 * profile named like the role in a private AWS credentials file and config in the workspace's
 * @tmp (a new 0700 directory, deleted after the block, also when it fails or is aborted, and by a
 * later block once all its keys have expired when the build died without its finally: PrivateDirectories), which
 * AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE name. Masking covers every role's keys. With
 * refresh: true, RefreshingCredentials gives each role a token and a refreshing profile instead.
 *
 * CPS: run and withProfileFiles call steps; the rest is @NonCPS.
 */
class RoleProfiles implements Serializable {
    private static final long serialVersionUID = 1L

    static final String USAGE = "call it as withAwsRole(roles: ['ecr-push', 'deploy']) { sh 'aws --profile deploy ...' }"

    /** At most this many roles in one block: each is a Vault call on a cold cache. */
    static final int MAX_ROLES = 8

    /**
     * A profile name goes into an INI section header: letters, digits, '.', '_', '-' only (no ']',
     * newline or '#' that would end the header or start another section), at most 64 characters.
     */
    static final String PROFILE_NAME = /[A-Za-z0-9][A-Za-z0-9._-]{0,63}/

    final script

    RoleProfiles(script) {
        this.script = script
    }

    /** True when the options ask for several roles. */
    @NonCPS
    static boolean requested(Map options) {
        return options != null && options.containsKey('roles')
    }

    def run(Map options, Closure body) {
        String problem = problemWith(options)
        if (problem != null) {
            script.error(StepMessages.oneLine("withAwsRole: ${problem}"))
        }
        BridgeGateway gateway = new BridgeGateway(script)
        Map block = null
        // The private directory is dead once every role's keys have expired (PrivateDirectories): until
        // then the block may still use a later role's profile, which a sweep must not delete.
        long ends = 0L
        for (String role : rolesOf(options)) {
            Map<String, String> credentials = gateway.credentials(role, optionsFor(options, role))
            block = withRole(block, role, options, credentials)
            ends = Math.max(ends, Long.parseLong(credentials.expires_at_epoch_seconds))
            credentials = null
        }
        String directory = PrivateDirectories.named(temporaryFiles(script), ends)
        try {
            writeProfileFiles(directory, block)
            return new BlockRunner(script).run(block, body)
        } finally {
            script.sh("set +x; rm -rf '${directory}'")
        }
    }

    /**
     * Writes the private credentials file and config (one sh step: the text reaches it in the
     * environment, never in a step's arguments); the block's environment then names them.
     */
    def writeProfileFiles(String directory, Map block) {
        script.withEnv(StepRecords.unstoredEnvironment(fileVariables((Map<String, Map<String, String>>) block.remove('profiles')))) {
            script.sh("""set +x; umask 077; ${PrivateDirectories.removalOfDeadBeside("'${directory}'")}; mkdir -p '${directory}' && \
printf '%s' "\$WITHAWSROLE_CREDENTIALS_TEXT" > '${directory}/credentials' && \
printf '%s' "\$WITHAWSROLE_CONFIG_TEXT" > '${directory}/config'""")
        }
        block.environment += profileEnvironment(directory)
    }

    /**
     * The workspace's @tmp on the agent, where a block's private directory goes (RefreshingCredentials'
     * too); the build fails when the path cannot go into sh and an AWS config (the directory's own
     * name adds only letters, digits and '-').
     */
    static String temporaryFiles(script) {
        String temporaryFiles = script.pwd(tmp: true)
        String problem = pathProblem(temporaryFiles)
        if (problem != null) {
            script.error("withAwsRole: ${problem}")
        }
        return temporaryFiles
    }

    // ---- @NonCPS helpers (no steps) -------------------------------------------------------------

    /**
     * The block with one more role: its keys masked, its summary line, its profile; the first
     * role's keys are the block's AWS_* variables (a plain block's environment).
     */
    @NonCPS
    static Map withRole(Map block, String role, Map options, Map<String, String> credentials) {
        if (block == null) {
            Map first = AwsRoleStep.blockOf(role, options, credentials)
            first.profiles = [(role): profileOf(credentials)]
            return first
        }
        block.secrets += AwsRoleStep.maskedValuesOf(credentials)
        block.summary = "${block.summary}\n${AwsRoleStep.summaryLine(role, credentials)}".toString()
        block.profiles[role] = profileOf(credentials)
        return block
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

    /** What is wrong with the options, as one sentence for the build log; null when nothing is. */
    @NonCPS
    static String problemWith(Map options) {
        Object roles = options.roles
        if (options.containsKey('role')) {
            return "give either role or roles, not both: ${USAGE}"
        }
        if (options.containsKey('roleArn')) {
            return 'roleArn names one IAM role and cannot go with roles; set role_arn in the purposes config for each role, ' +
                    'or use a block of its own for the one that needs roleArn'
        }
        if (!(roles instanceof List) || ((List) roles).isEmpty() || ((List) roles).size() > MAX_ROLES) {
            return "roles must be a list of 1 to ${MAX_ROLES} role names: ${USAGE}"
        }
        List<String> seen = []
        for (Object role : (List) roles) {
            if (!(role instanceof CharSequence) || !(role.toString() ==~ PROFILE_NAME)) {
                return "roles: '${StepMessages.shown(role)}' cannot name an AWS profile; a role name is letters, digits, " +
                        "'.', '_' and '-' (at most 64)"
            }
            if (role.toString() in seen) {
                return "roles: '${role}' is given twice"
            }
            seen << role.toString()
        }
        Map single = optionsFor(options, seen[0])
        return AwsRoleOptions.problemWith(single)
    }

    @NonCPS
    static List<String> rolesOf(Map options) {
        return ((List) options.roles)*.toString()
    }

    /** withAwsRole's options for one of the roles. */
    @NonCPS
    static Map optionsFor(Map options, String role) {
        return AwsRoleOptions.optionsWith(options, ['roles'], [role: role])
    }

    @NonCPS
    static Map<String, String> profileOf(Map<String, String> credentials) {
        Map<String, String> profile = [
                aws_access_key_id    : credentials.access_key_id,
                aws_secret_access_key: credentials.secret_access_key,
                aws_session_token    : credentials.session_token,
        ]
        if (credentials.region) {
            profile.region = credentials.region
        }
        return profile
    }

    /** The shared credentials file: one section per role, named like it. */
    @NonCPS
    static String credentialsFile(Map<String, Map<String, String>> profiles) {
        StringBuilder text = new StringBuilder('# withAwsRole(roles: ...): written for one block, deleted after it\n')
        profiles.each { String role, Map<String, String> profile ->
            text << "[${role}]\n"
            ['aws_access_key_id', 'aws_secret_access_key', 'aws_session_token'].each { String key ->
                text << "${key} = ${profile[key]}\n"
            }
        }
        return text.toString()
    }

    /** The config file: each profile's region. */
    @NonCPS
    static String configFile(Map<String, Map<String, String>> profiles) {
        StringBuilder text = new StringBuilder('# withAwsRole(roles: ...): written for one block, deleted after it\n')
        profiles.each { String role, Map<String, String> profile ->
            text << "[profile ${role}]\n"
            if (profile.region) {
                text << "region = ${profile.region}\n"
            }
        }
        return text.toString()
    }

    /** The two files' texts as variables of the sh step that writes them. */
    @NonCPS
    static List<String> fileVariables(Map<String, Map<String, String>> profiles) {
        return ["WITHAWSROLE_CREDENTIALS_TEXT=${credentialsFile(profiles)}",
                "WITHAWSROLE_CONFIG_TEXT=${configFile(profiles)}"]*.toString()
    }

    /** The files, and no AWS_PROFILE: the default role's keys are the block's AWS_* variables. */
    @NonCPS
    static List<String> profileEnvironment(String directory) {
        return ["AWS_SHARED_CREDENTIALS_FILE=${directory}/credentials",
                "AWS_CONFIG_FILE=${directory}/config",
                'AWS_PROFILE=',
                'AWS_DEFAULT_PROFILE=']*.toString()
    }
}
