package org.withawsrole

import com.cloudbees.groovy.cps.NonCPS

/**
 * The step's options and the running build's identity, turned into the bridge's request pairs.
 *
 * Options are camelCase (Jenkins style); request keys are those of docs/architecture.md. Nothing
 * here reads the build's `env`: a pipeline controls it (withEnv, environment {}, env.X =), so
 * Vault's address, TLS, namespace, the controller's login and the purposes file are the
 * controller's own settings, read by the bridge and the native core (docs/security.md), and the
 * job's name and build number come from the running build, read by the bridge. A job that logs in
 * with a credential of its own names it by ID (vaultCredentialsId, see VaultCredential).
 */
class AwsRoleOptions implements Serializable {
    private static final long serialVersionUID = 1L

    static final String USAGE = "call it as withAwsRole('ecr-push') { ... } or withAwsRole(role: 'ecr-push', ttl: '30m') { ... }"

    /** Option -> request key, in the order the help lists them. `role` names the purpose. */
    static final Map<String, String> REQUEST_KEY_OF_OPTION = [
            role   : 'purpose',
            ttl    : 'ttl',
            roleArn: 'role_arn',
            region : 'region',
            jwtRole: 'vault_jwt_role',
            hideAccountId: 'hide_account_id',
    ].asImmutable()

    /**
     * Options a pipeline may no longer set, with why and what to do instead: each would let a
     * Jenkinsfile move, borrow or widen the controller's Vault identity (docs/security.md).
     */
    static final Map<String, String> REFUSED_OPTIONS = [
            sessionName: 'session names always name the job and build that asked (jenkins-<job>-<build>), ' +
                    'so CloudTrail can be trusted; leave sessionName out',
            mount      : "the purpose's Vault mount is set in the reviewed purposes config " +
                    '(resources/org/withawsrole/purposes.toml, key mount); leave mount out',
            vaultRole  : "the purpose's Vault role is set in the reviewed purposes config " +
                    '(resources/org/withawsrole/purposes.toml, key vault_role); leave vaultRole out',
            namespace  : "Vault's namespace is the controller's setting (VAULT_NAMESPACE); leave namespace out",
            configFile : 'the purposes config is the library\'s reviewed purposes.toml or the controller\'s ' +
                    'WITHAWSROLE_CONFIG file; leave configFile out',
    ].asImmutable()

    /** Options of the step itself, not sent to Vault as they are. */
    static final List<String> STEP_OPTIONS = ['vaultCredentialsId', 'mask'].asImmutable()

    /** Options that are true or false. */
    static final List<String> BOOLEAN_OPTIONS = ['mask', 'hideAccountId'].asImmutable()

    /** Options that take a number of seconds as well as a string. */
    static final List<String> NUMBER_OPTIONS = ['ttl'].asImmutable()

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
        List<String> names = given.keySet().collect { Object name -> String.valueOf(name) }
        String refused = names.find { String name -> REFUSED_OPTIONS.containsKey(name) }
        if (refused != null) {
            return "${refused} is not a pipeline's choice: ${REFUSED_OPTIONS[refused]}"
        }
        List<String> unknown = names.findAll { String name -> !(name in valid) }
        if (unknown) {
            String shown = unknown.collect { String name -> StepMessages.shown(name) }.join(', ')
            return "unknown option${unknown.size() > 1 ? 's' : ''} ${shown}; ${validList}"
        }
        Object role = given.role
        if (!(role instanceof CharSequence) || !role.toString().trim()) {
            return "name a role: ${usage}"
        }
        if (given.jwtRole != null && given.vaultCredentialsId == null) {
            return 'jwtRole names the Vault JWT role for the id token in vaultCredentialsId; give both, or neither ' +
                    "(the controller's own login is its setting)"
        }
        String notBoolean = BOOLEAN_OPTIONS.find { String option ->
            given.containsKey(option) && !(given[option] instanceof Boolean)
        }
        if (notBoolean != null) {
            return "${notBoolean} must be true or false, not ${describe(given[notBoolean])}; ${validList}"
        }
        for (String option : valid) {
            Object value = given[option]
            if (value == null || option in BOOLEAN_OPTIONS) {
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

    /**
     * The request pairs: the options, and nothing of the build's environment. The bridge adds the
     * running build's identity and the library's purposes config (it refuses them from callers).
     */
    @NonCPS
    static Map<String, String> toRequest(Map options) {
        Map<String, String> request = [:]
        REQUEST_KEY_OF_OPTION.each { String option, String key ->
            Object value = options?.get(option)
            if (value != null) {
                request[key] = value.toString()
            }
        }
        return request
    }

    /**
     * The options with `removed` left out and `added` set: how each mode derives the options of
     * another (refresh: true without its own, each role of roles: [...], ecrLogin's role).
     */
    @NonCPS
    static Map optionsWith(Map options, List<String> removed, Map added) {
        Map derived = new LinkedHashMap(options ?: [:])
        removed.each { String option -> derived.remove(option) }
        derived.putAll(added)
        return derived
    }

    /** The request with the Vault JWT role for a build's id token (a controller that logs in as each build). */
    @NonCPS
    static Map<String, String> withJwtRole(Map<String, String> request, String jwtRole) {
        Map<String, String> complete = new LinkedHashMap<String, String>(request)
        complete.vault_jwt_role = jwtRole
        return complete
    }

    @NonCPS
    static List<String> validOptions() {
        return (REQUEST_KEY_OF_OPTION.keySet() + STEP_OPTIONS) as List<String>
    }

    /** A variable of a block's environment (withCredentials' bindings, read by VaultCredential). */
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
