package org.withawsrole

import com.cloudbees.groovy.cps.NonCPS

/**
 * Other names for a block's keys, for Jenkinsfiles moving over from the AWS credentials binding
 * (`accessKeyVariable`, `secretKeyVariable`) or withVault (`envVar`) whose scripts read the keys
 * under their own names: the block gets those names too, beside the AWS SDKs' standard variables,
 * and the Mask Passwords wrapper masks the values whatever they are called (docs/migration.md).
 *
 * Only the plain step takes them: a refresh block and a block with several roles hand out
 * profiles, not keys.
 */
class KeyVariables implements Serializable {
    private static final long serialVersionUID = 1L

    /** Option -> the credential it names, and the standard variable that always holds it. */
    static final Map<String, List<String>> VALUE_OF_OPTION = [
            accessKeyVariable   : ['access_key_id', 'AWS_ACCESS_KEY_ID'],
            secretKeyVariable   : ['secret_access_key', 'AWS_SECRET_ACCESS_KEY'],
            sessionTokenVariable: ['session_token', 'AWS_SESSION_TOKEN'],
    ].asImmutable()

    static final List<String> OPTIONS = VALUE_OF_OPTION.keySet().asList().asImmutable()

    /** What the step sets itself: another key under one of these names would be a swap, not an alias. */
    static final List<String> BLOCK_VARIABLES = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN',
                                                 'AWS_CREDENTIAL_EXPIRATION', 'AWS_REGION', 'AWS_DEFAULT_REGION'].asImmutable()

    /** A shell variable's name: anything else (`=`, spaces, newlines) would write other variables. */
    static final String NAME_SHAPE = /[A-Za-z_][A-Za-z0-9_]{0,127}/

    /** What is wrong with the variable options, as one sentence; null when nothing is. */
    @NonCPS
    static String problemWith(Map options) {
        Map<String, String> named = [:]
        for (String option : OPTIONS) {
            Object name = options?.get(option)
            if (name == null) {
                continue
            }
            String shown = StepMessages.shown(String.valueOf(name))
            if (!(name instanceof CharSequence) || !(name.toString() ==~ NAME_SHAPE)) {
                return "${option} must name an environment variable (letters, digits and _, not starting with a digit), " +
                        "not '${shown}'"
            }
            String standard = VALUE_OF_OPTION[option][1]
            if (name.toString() in BLOCK_VARIABLES && name.toString() != standard) {
                return "${option} cannot be ${shown}: the block sets that variable to something else; " +
                        'choose a name of your own'
            }
            String other = named.find { String otherOption, String otherName -> otherName == name.toString() }?.key
            if (other != null) {
                return "${option} and ${other} both name ${shown}: each key needs a name of its own"
            }
            named[option] = name.toString()
        }
        return null
    }

    /** NAME=value for each variable the options name (the standard ones are set anyway). */
    @NonCPS
    static List<String> environmentOf(Map options, Map<String, String> credentials) {
        return named(options).collect { String name, String value -> "${name}=${credentials[value]}".toString() }
    }

    /** The same values under the options' names, for the Mask Passwords wrapper. */
    @NonCPS
    static List<Map<String, String>> maskedValuesOf(Map options, Map<String, String> credentials) {
        return named(options).findAll { String name, String value -> credentials[value] }
                .collect { String name, String value -> [var: name, password: credentials[value]] }
    }

    /** Variable name -> the credential's key, for the options given (standard names left out). */
    @NonCPS
    private static Map<String, String> named(Map options) {
        Map<String, String> names = [:]
        VALUE_OF_OPTION.each { String option, List<String> value ->
            Object name = options?.get(option)
            if (name != null && name.toString() != value[1]) {
                names[name.toString()] = value[0]
            }
        }
        return names
    }
}
