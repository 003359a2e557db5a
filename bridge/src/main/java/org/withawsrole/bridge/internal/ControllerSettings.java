package org.withawsrole.bridge.internal;

import java.util.Arrays;

/**
 * The controller's own settings beyond its process environment: the system properties
 * {@code -Dwithawsrole.<VARIABLE>} (e.g. {@code -Dwithawsrole.VAULT_ADDR=https://vault:8200}).
 *
 * <p>Why here: the native library reads the process environment itself, but cannot see Java
 * system properties. This class reads them in the bridge's own code, never from a caller's
 * request, and hands them to the native side whenever they change, so nothing a pipeline sets
 * (its {@code env}, step options) can reach Vault's address, TLS, namespace or the controller's
 * login. The list of variables comes from the native library, which owns it.
 */
public final class ControllerSettings {
    private static final Object LOCK = new Object();
    /** Alternating variable, property, from the native library; read once. */
    private static volatile String[] variablesAndProperties;
    /** The property values last applied (null: unset), in the order of the variables. */
    private static volatile String[] applied;

    private ControllerSettings() {
    }

    /**
     * Passes the current {@code withawsrole.*} system properties to the native side when they
     * differ from the last ones passed. Cheap when nothing changed: a property lookup per setting.
     */
    public static void apply() {
        ReviewedRequest.applyLibraryConfig();
        String[] names = variablesAndProperties;
        if (names == null) {
            names = Native.Settings_variables();
            variablesAndProperties = names;
        }
        String[] current = new String[names.length / 2];
        for (int i = 0; i < current.length; i++) {
            current[i] = System.getProperty(names[2 * i + 1]);
        }
        if (Arrays.equals(current, applied)) {
            return;
        }
        synchronized (LOCK) {
            StringBuilder packed = new StringBuilder();
            for (int i = 0; i < current.length; i++) {
                String value = current[i];
                if (value == null) {
                    continue;
                }
                if (value.indexOf('\0') >= 0) {
                    throw new IllegalStateException("system property " + names[2 * i + 1]
                            + " holds a NUL character; fix the controller's -D option");
                }
                packed.append(names[2 * i]).append('\0').append(value).append('\0');
            }
            Native.Broker_applySettings(packed.toString());
            applied = current;
        }
    }
}
