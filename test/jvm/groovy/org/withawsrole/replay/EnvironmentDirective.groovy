package org.withawsrole.replay

/**
 * The delegate of a Declarative `environment { }` block while it is evaluated: `NAME = value` sets
 * NAME for the rest of the block and for the stage (values become strings, null becomes "null" as
 * in Jenkins), bare names read variables set so far, and `credentials('id')` binds a credential of
 * the runner's store as Declarative does: secret text -> NAME; username with password -> NAME
 * (user:password), NAME_USR and NAME_PSW; all masked in the block's output.
 */
class EnvironmentDirective extends GroovyObjectSupport {
    private final PipelineRun run
    /** The block's context with every entry evaluated so far. */
    private StepContext context
    private final List<String> credentialVariables = []

    EnvironmentDirective(PipelineRun run, StepContext outer) {
        this.run = run
        this.context = outer
    }

    // Methods, not properties: getProperty below answers for the block's variables.
    StepContext context() {
        return context
    }

    /** The variables credentials were bound to, in order. */
    List<String> credentialVariables() {
        return credentialVariables
    }

    /** What `credentials('id')` evaluates to until it is assigned to a name. */
    static class CredentialsReference {
        final String id

        CredentialsReference(String id) {
            this.id = id
        }
    }

    CredentialsReference credentials(Object id) {
        if (!('credentials-binding' in run.runner.plugins)) {
            throw new PipelineFailure("credentials('${id}') needs the Credentials Binding plugin, which this controller lacks")
        }
        return new CredentialsReference(String.valueOf(id))
    }

    @Override
    Object getProperty(String name) {
        String value = context.environment()[name]
        if (value == null) {
            throw new MissingPropertyException(name, EnvironmentDirective)
        }
        return value
    }

    @Override
    void setProperty(String name, Object value) {
        if (!(name ==~ /[A-Za-z_][A-Za-z0-9_]*/)) {
            throw new PipelineFailure("\"${name}\" is not a valid identifier and cannot be used for an environment variable.")
        }
        if (value instanceof CredentialsReference) {
            bind(name, ((CredentialsReference) value).id)
        } else {
            set([(name): String.valueOf(value)], [])
        }
    }

    private void bind(String name, String id) {
        CredentialsStore store = run.runner.credentials
        if (store.kind(id) == CredentialsStore.USERNAME_PASSWORD) {
            Map<String, String> values = store.bind('usernamePassword', id)
            String both = "${values.username}:${values.password}".toString()
            set([(name): both, ("${name}_USR".toString()): values.username, ("${name}_PSW".toString()): values.password],
                    [both, values.username, values.password])
            credentialVariables.addAll([name, "${name}_USR".toString(), "${name}_PSW".toString()])
        } else {
            String secret = store.bind('string', id).secret
            set([(name): secret], [secret])
            credentialVariables << name
        }
    }

    private void set(Map<String, String> variables, List<String> secrets) {
        context = context.withEnvironment(variables.collect { String key, String value -> "${key}=${value}".toString() }).withMasked(secrets)
        if (secrets) {
            context = context.withSensitive(variables.keySet()) // as withCredentials: step records show their names
        }
        run.replaceContext(context)
    }
}
