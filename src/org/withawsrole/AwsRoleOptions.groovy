package org.withawsrole

import com.cloudbees.groovy.cps.NonCPS

/**
 * The step's options and the build's environment, turned into the bridge's request pairs.
 *
 * Options are camelCase (Jenkins style); request keys are those of docs/architecture.md. Vault's
 * address and the controller's own login come from the build's environment (the controller's, or
 * withEnv), never from the Jenkinsfile's text, so no token is ever written into a pipeline; a job
 * that logs in with a credential of its own names it by ID (vaultCredentialsId, see VaultCredential).
 */
class AwsRoleOptions implements Serializable {
    private static final long serialVersionUID = 1L

    static final String USAGE = "call it as withAwsRole('ecr-push') { ... } or withAwsRole(role: 'ecr-push', ttl: '30m') { ... }"

    /** Option -> request key, in the order the help lists them. `role` names the purpose. */
    static final Map<String, String> REQUEST_KEY_OF_OPTION = [
            role          : 'purpose',
            ttl           : 'ttl',
            roleArn       : 'role_arn',
            sessionName   : 'session_name',
            region        : 'region',
            mount         : 'mount',
            namespace     : 'vault_namespace',
            vaultRole     : 'vault_role',
            jwtRole       : 'vault_jwt_role',
            configFile    : 'config_file',
    ].asImmutable()

    /**
     * The purposes config the library ships (TOML: per role its mount, Vault role, IAM role, ttl,
     * region), reviewed like code in the library's repository; the core parses it.
     */
    static final String PURPOSES_CONFIG_RESOURCE = 'org/withawsrole/purposes.toml'

    /** Options of the step itself, not sent to Vault as they are. */
    static final List<String> STEP_OPTIONS = ['vaultCredentialsId', 'mask'].asImmutable()

    /** Options that take a number of seconds as well as a string. */
    static final List<String> NUMBER_OPTIONS = ['ttl'].asImmutable()

    /** Environment variable -> request key, for Vault's address, TLS and the controller's login. */
    static final Map<String, String> REQUEST_KEY_OF_VARIABLE = [
            VAULT_ADDR        : 'vault_addr',
            VAULT_NAMESPACE   : 'vault_namespace',
            VAULT_CACERT      : 'vault_cacert',
            VAULT_SKIP_VERIFY : 'vault_skip_verify',
            VAULT_TOKEN       : 'vault_token',
            VAULT_ROLE_ID     : 'vault_role_id',
            VAULT_SECRET_ID   : 'vault_secret_id',
            VAULT_JWT         : 'vault_jwt',
            VAULT_JWT_FILE    : 'vault_jwt_file',
            VAULT_JWT_ROLE    : 'vault_jwt_role',
            VAULT_K8S_ROLE    : 'vault_k8s_role',
            WITHAWSROLE_CONFIG: 'config_file',
    ].asImmutable()

    /**
     * The controller's login variables. A block with vaultCredentialsId leaves them out of the
     * request: the core tries a token before an AppRole or a JWT, so a VAULT_TOKEN on the
     * controller would otherwise win over the job's own credential.
     */
    static final List<String> LOGIN_VARIABLES = ['VAULT_TOKEN', 'VAULT_ROLE_ID', 'VAULT_SECRET_ID', 'VAULT_JWT',
                                                 'VAULT_JWT_FILE', 'VAULT_JWT_ROLE', 'VAULT_K8S_ROLE'].asImmutable()

    /** What is wrong with withAwsRole's options, as one sentence for the build log; null when nothing is. */
    @NonCPS
    static String problemWith(Map options) {
        return problemWith(options, validOptions(), USAGE)
    }

    /** The same for a step that accepts `valid` options (withAwsRole's and its own). */
    @NonCPS
    static String problemWith(Map options, List<String> valid) {
        return problemWith(options, valid, USAGE)
    }

    /** The same for a step that accepts `valid` options and is called as `usage` says (ecrLogin). */
    @NonCPS
    static String problemWith(Map options, List<String> valid, String usage) {
        Map given = options ?: [:]
        String validList = "valid options: ${valid.join(', ')}"
        List<String> unknown = given.keySet().collect { Object name -> String.valueOf(name) }.findAll { String name -> !(name in valid) }
        if (unknown) {
            String names = unknown.collect { String name -> StepMessages.shown(name) }.join(', ')
            return "unknown option${unknown.size() > 1 ? 's' : ''} ${names}; ${validList}"
        }
        Object role = given.role
        if (!(role instanceof CharSequence) || !role.toString().trim()) {
            return "name a role: ${usage}"
        }
        if (given.containsKey('mask') && !(given.mask instanceof Boolean)) {
            return "mask must be true or false, not ${describe(given.mask)}; ${validList}"
        }
        for (String option : valid) {
            Object value = given[option]
            if (value == null || option == 'mask') {
                continue
            }
            boolean number = option in NUMBER_OPTIONS && value instanceof Number
            if (!(value instanceof CharSequence) && !number) {
                String expected = option in NUMBER_OPTIONS ? "a string like '30m' or a number of seconds" : 'a string'
                return "${option} must be ${expected}, not ${describe(value)}; ${validList}"
            }
        }
        return null
    }

    @NonCPS
    static String roleOf(Map options) {
        return options?.role?.toString()
    }

    @NonCPS
    static String vaultCredentialsIdOf(Map options) {
        return options?.vaultCredentialsId?.toString()
    }

    /** Masking stays on unless the options say mask: false. */
    @NonCPS
    static boolean maskWanted(Map options) {
        return options?.mask != Boolean.FALSE
    }

    /** The request pairs without the library's purposes config. */
    @NonCPS
    static Map<String, String> toRequest(Map options, Object environment) {
        return toRequest(options, environment, null)
    }

    /**
     * The request pairs: Vault settings from the environment (without the controller's login when
     * the block brings its own credential), the purposes config, the build's identity (for the STS
     * session name and the audit trail), then the options, which win.
     *
     * @param purposesConfig the text of the library's purposes config (PURPOSES_CONFIG_RESOURCE),
     *        or null. It is the default: a configFile option (the Jenkinsfile's choice) or a
     *        WITHAWSROLE_CONFIG file (the controller's, e.g. one per AWS account when several
     *        controllers share the library) replaces it.
     */
    @NonCPS
    static Map<String, String> toRequest(Map options, Object environment, String purposesConfig) {
        boolean ownLogin = vaultCredentialsIdOf(options) != null
        boolean libraryConfig = purposesConfig != null && options?.configFile == null &&
                !valueOf(environment, 'WITHAWSROLE_CONFIG')
        Map<String, String> request = [:]
        REQUEST_KEY_OF_VARIABLE.each { String variable, String key ->
            String value = valueOf(environment, variable)
            if (value && !(ownLogin && variable in LOGIN_VARIABLES)) {
                request[key] = value
            }
        }
        if (libraryConfig) {
            request.config_text = purposesConfig
            request.config_name = PURPOSES_CONFIG_RESOURCE
        }
        String job = valueOf(environment, 'JOB_NAME')
        String build = valueOf(environment, 'BUILD_NUMBER')
        if (job) {
            request.job = job
        }
        if (build) {
            request.build = build
        }
        REQUEST_KEY_OF_OPTION.each { String option, String key ->
            Object value = options?.get(option)
            if (value != null) {
                request[key] = value.toString()
            }
        }
        return request
    }

    @NonCPS
    static List<String> validOptions() {
        return (REQUEST_KEY_OF_OPTION.keySet() + STEP_OPTIONS) as List<String>
    }

    @NonCPS
    static String valueOf(Object environment, String variable) {
        Object value = environment?.getProperty(variable)
        return value == null ? null : value.toString()
    }

    /** A value's type for a message: never the value itself, which may be a secret put in the wrong place. */
    @NonCPS
    private static String describe(Object value) {
        String type = value.getClass().simpleName
        return "${type[0] in ['A', 'E', 'I', 'O', 'U'] ? 'an' : 'a'} ${type}"
    }
}
