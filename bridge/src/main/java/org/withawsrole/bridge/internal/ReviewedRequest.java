package org.withawsrole.bridge.internal;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import org.withawsrole.bridge.InternalBridgeException;
import org.withawsrole.bridge.InvalidRequestException;

/**
 * What the bridge adds to every request itself, because no caller may choose it: the running
 * build's identity ({@link RunningBuild}), and the library's purposes config (handed to the core
 * once, see {@link #applyLibraryConfig}), packed into this jar
 * when it was built from the library's reviewed {@code resources/org/withawsrole/purposes.toml}
 * (the controller's WITHAWSROLE_CONFIG, when set, wins in the core). A request that carries
 * {@code job}, {@code build}, {@code config_text} or {@code config_name} is refused: any of them
 * would let a Jenkinsfile that calls the library's classes directly pick the job the purposes
 * config admits, or bring a config of its own (docs/security.md).
 */
public final class ReviewedRequest {
    /** Where bridgeJar packs the library's purposes config. */
    public static final String PURPOSES_RESOURCE = "/org/withawsrole/bridge/purposes.toml";
    static final String PURPOSES_NAME = "org/withawsrole/purposes.toml";
    private static final String[] BRIDGE_KEYS = {"job", "build", "config_text", "config_name"};

    private static volatile String purposes;
    private static volatile boolean configApplied;

    private ReviewedRequest() {
    }

    /** Refuses the keys only the bridge fills. */
    public static void check(Map<String, String> request) {
        for (String key : BRIDGE_KEYS) {
            if (request.containsKey(key)) {
                throw new InvalidRequestException("request key '" + key + "' is filled by the bridge itself (the running "
                        + "build, the library's reviewed purposes config); leave it out");
            }
        }
    }

    /** Appends {@code key \0 value \0} for the running build. */
    public static void appendTo(StringBuilder packed) {
        RunningBuild build = RunningBuild.current();
        if (build != null) {
            packed.append("job").append('\0').append(build.job).append('\0');
            packed.append("build").append('\0').append(build.number).append('\0');
        }
    }

    /** As {@link #appendTo} for the child-token calls' map form. */
    public static void addTo(Map<String, String> request) {
        RunningBuild build = RunningBuild.current();
        if (build != null) {
            request.put("job", build.job);
            request.put("build", build.number);
        }
    }

    /**
     * Hands the packed purposes config to the native core once per JVM (per bridge version):
     * the core uses it for every request, which then never carries the text.
     */
    static void applyLibraryConfig() {
        if (configApplied) {
            return;
        }
        synchronized (ReviewedRequest.class) {
            if (!configApplied) {
                String config = purposes();
                if (!config.isEmpty()) {
                    Native.Broker_setLibraryConfig(PURPOSES_NAME + '\0' + config + '\0');
                }
                configApplied = true;
            }
        }
    }

    /** The packed config, read once; empty when the jar has none (then only WITHAWSROLE_CONFIG governs). */
    static String purposes() {
        String text = purposes;
        if (text == null) {
            text = read();
            purposes = text;
        }
        return text;
    }

    private static String read() {
        InputStream in = ReviewedRequest.class.getResourceAsStream(PURPOSES_RESOURCE);
        if (in == null) {
            return "";
        }
        try (InputStream stream = in) {
            ByteArrayOutputStream bytes = new ByteArrayOutputStream();
            byte[] buffer = new byte[8192];
            for (int n = stream.read(buffer); n > 0; n = stream.read(buffer)) {
                bytes.write(buffer, 0, n);
            }
            String text = new String(bytes.toByteArray(), StandardCharsets.UTF_8);
            if (text.indexOf('\0') >= 0) {
                throw new InternalBridgeException(PURPOSES_RESOURCE + " in the bridge jar holds a NUL character");
            }
            return text;
        } catch (IOException e) {
            throw new InternalBridgeException("cannot read " + PURPOSES_RESOURCE + " from the bridge jar: " + e);
        }
    }
}
