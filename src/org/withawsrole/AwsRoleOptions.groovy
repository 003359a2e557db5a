package org.withawsrole

import com.cloudbees.groovy.cps.NonCPS

/**
 * The step's options and the build's environment, turned into the bridge's request pairs.
 *
 * Options are camelCase (Jenkins style); request keys are those of docs/architecture.md. Vault
 * settings come from the build's environment (the controller's, or withEnv), never from the
 * Jenkinsfile's text, so no token is ever written into a pipeline.
 */
class AwsRoleOptions implements Serializable {
    private static final long serialVersionUID = 1L

    /** Step option -> request key. */
    static final Map<String, String> REQUEST_KEY_OF_OPTION = [
            purpose       : 'purpose',
            ttl           : 'ttl',
            region        : 'region',
            roleArn       : 'role_arn',
            sessionName   : 'session_name',
            mount         : 'mount',
            vaultRole     : 'vault_role',
            vaultNamespace: 'vault_namespace',
            configFile    : 'config_file',
    ].asImmutable()

    /** Options of the step itself, not sent to Vault. */
    static final List<String> STEP_OPTIONS = ['mask'].asImmutable()

    /** Environment variable -> request key, for Vault's address and the controller's login. */
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

    /** What is wrong with the options, as one sentence for the build log; null when nothing is. */
    @NonCPS
    static String problemWith(Map options) {
        Map given = options ?: [:]
        List<String> valid = validOptions()
        List<String> unknown = given.keySet().collect { String.valueOf(it) }.findAll { !(it in valid) }
        if (unknown) {
            return "unknown option${unknown.size() > 1 ? 's' : ''} ${unknown.join(', ')}; valid options: ${valid.join(', ')}"
        }
        Object purpose = given.purpose
        if (!(purpose instanceof CharSequence) || !purpose.toString().trim()) {
            return "name a purpose: withAwsRole('ecr-push') { ... }"
        }
        if (given.containsKey('mask') && !(given.mask instanceof Boolean)) {
            return "mask must be true or false, not '${given.mask}'"
        }
        for (String option : REQUEST_KEY_OF_OPTION.keySet()) {
            Object value = given[option]
            if (value != null && !(value instanceof CharSequence || value instanceof Number)) {
                return "${option} must be a string, not ${value.getClass().simpleName}"
            }
        }
        return null
    }

    @NonCPS
    static String purposeOf(Map options) {
        return options?.purpose?.toString()
    }

    /** Masking stays on unless the options say mask: false. */
    @NonCPS
    static boolean maskWanted(Map options) {
        return options?.mask != Boolean.FALSE
    }

    /**
     * The request pairs: Vault settings from the environment, the build's identity (for the STS
     * session name and the audit trail), then the options, which win.
     */
    @NonCPS
    static Map<String, String> toRequest(Map options, Object environment) {
        Map<String, String> request = new LinkedHashMap<String, String>()
        REQUEST_KEY_OF_VARIABLE.each { String variable, String key ->
            String value = valueOf(environment, variable)
            if (value) {
                request[key] = value
            }
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
    private static String valueOf(Object environment, String variable) {
        Object value = environment?.getProperty(variable)
        return value == null ? null : value.toString()
    }
}
