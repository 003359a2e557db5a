package org.withawsrole

import org.junit.rules.ExternalResource

/**
 * The controller's own settings for one test, as an admin sets them: `-Dwithawsrole.<VARIABLE>`
 * system properties, which the bridge reads on every call and which win over the test JVM's
 * environment (the world's VAULT_ADDR, VAULT_TOKEN, ...). Never the build's `env`: a pipeline
 * controls that, and the library ignores it for these settings (docs/security.md).
 *
 * <pre>
 * {@literal @}Rule public ControllerSettings controller = new ControllerSettings()
 * controller.set('VAULT_TOKEN', null)            // unset: the world's AppRole logs in instead
 * controller.set('WITHAWSROLE_CONFIG', file.path)
 * </pre>
 * Everything set is restored after the test.
 */
class ControllerSettings extends ExternalResource {
    static final String PREFIX = 'withawsrole.'

    private final Map<String, String> saved = [:]

    /** Sets a controller setting for this test; null unsets it (an empty property). */
    ControllerSettings set(String variable, String value) {
        String property = PREFIX + variable
        if (!saved.containsKey(property)) {
            saved[property] = System.getProperty(property)
        }
        System.setProperty(property, value ?: '')
        return this
    }

    /** A purposes config of the controller's own (WITHAWSROLE_CONFIG), written to `file`. */
    ControllerSettings purposes(File file, String toml) {
        file.setText(toml, 'UTF-8')
        return set('WITHAWSROLE_CONFIG', file.absolutePath)
    }

    @Override
    protected void after() {
        saved.each { String property, String value ->
            if (value == null) {
                System.clearProperty(property)
            } else {
                System.setProperty(property, value)
            }
        }
        saved.clear()
    }
}
