package org.withawsrole.replay

/**
 * How Jenkins turns a step's `$class` map into an object, and how it fails: structs' DescribableModel
 * resolves a simple name among the installed implementations of the expected base type (a name with
 * a dot through the plugins' classloader), and any failure while instantiating the step becomes
 *
 *   IllegalArgumentException: Could not instantiate {<the step's arguments>} for <step class>: <cause>
 *
 * with the arguments rendered by Java's Map/List toString, secrets and all (structs hides them only
 * for hudson.util.Secret values, which a Jenkinsfile's strings never are). Library code that puts
 * such a message into its own error line therefore leaks whatever the step was given.
 */
class Describables {
    static final String CORE_WRAPPER_STEP = 'org.jenkinsci.plugins.workflow.steps.CoreWrapperStep'
    static final String CORE_STEP = 'org.jenkinsci.plugins.workflow.steps.CoreStep'
    static final String BINDING_STEP = 'org.jenkinsci.plugins.credentialsbinding.impl.BindingStep'

    /** Base types as java.lang.Class#toString names them ("class ..." or "interface ..."). */
    static final String SIMPLE_BUILD_WRAPPER = 'class jenkins.tasks.SimpleBuildWrapper'
    static final String SIMPLE_BUILD_STEP = 'interface jenkins.tasks.SimpleBuildStep'
    static final String MULTI_BINDING = 'class org.jenkinsci.plugins.credentialsbinding.MultiBinding'

    /** plugin id -> base type -> the implementations this runner provides while it has that plugin. */
    static final Map<String, Map<String, List<String>>> PROVIDED_BY_PLUGIN = [
            'mask-passwords'     : [(SIMPLE_BUILD_WRAPPER): ['com.michelin.cio.hudson.plugins.maskpasswords.MaskPasswordsBuildWrapper']],
            'credentials-binding': [(MULTI_BINDING): ['org.jenkinsci.plugins.credentialsbinding.impl.UsernamePasswordMultiBinding',
                                                      'org.jenkinsci.plugins.credentialsbinding.impl.StringBinding']],
    ].asImmutable()

    /**
     * The fully qualified class `$class` of value names among available, or throws what Jenkins throws
     * for stepClass called with stepArguments.
     */
    static String resolve(String stepClass, Map stepArguments, String base, Map value, Collection<String> available) {
        Object name = value['$class']
        Throwable cause
        if (name == null) {
            cause = new UnsupportedOperationException('must specify $class with an implementation of ' + base)
        } else if (name.toString().contains('.')) {
            if (name.toString() in available) {
                return name.toString()
            }
            cause = new ClassNotFoundException(name.toString())
        } else {
            String found = available.find { String type -> type.substring(type.lastIndexOf('.') + 1) == name.toString() }
            if (found != null) {
                return found
            }
            cause = new UnsupportedOperationException("no known implementation of ${base} is named ${name}".toString())
        }
        throw new IllegalArgumentException('Could not instantiate ' + javaToString(stepArguments) + ' for ' + stepClass + ': ' +
                cause.toString(), cause)
    }

    /** Java's toString of maps ({k=v, ...}) and collections ([a, b]), which Groovy would print as [k:v]. */
    static String javaToString(Object value) {
        if (value instanceof Map) {
            List<String> entries = []
            ((Map) value).each { Object key, Object entry ->
                entries << javaToString(key) + '=' + (entry.is(value) ? '(this Map)' : javaToString(entry))
            }
            return '{' + entries.join(', ') + '}'
        }
        if (value instanceof Collection) {
            return '[' + ((Collection) value).collect { Object item -> item.is(value) ? '(this Collection)' : javaToString(item) }.join(', ') + ']'
        }
        return String.valueOf(value)
    }
}
