package org.withawsrole.bench;

import java.util.LinkedHashMap;
import java.util.Map;
import org.withawsrole.bridge.AwsRoleBroker;
import org.withawsrole.bridge.AwsRoleException;
import org.withawsrole.bridge.InternalBridgeException;
import org.withawsrole.bridge.internal.Native;

/**
 * Every JNI entry point and every error path, briefly, on several threads: small enough to run
 * under valgrind (scripts/jni-valgrind), where a JVM is some 50 times slower. Exits 0 when every
 * answer was the expected one. The controller's settings are system properties here: the world's
 * purposes config (test/jvm/fixtures/world-purposes.toml, from the project's directory), which
 * lists forbidden for Vault's own refusal, and an unreachable Vault for one call. No build runs
 * here, so requests get distinct cache entries through their ttl.
 *
 *   JniExercise [hits per thread] [threads]
 */
public final class JniExercise {
    private JniExercise() {
    }

    public static void main(String[] args) throws Exception {
        final int hits = args.length > 0 ? Integer.parseInt(args[0]) : 200;
        int threads = args.length > 1 ? Integer.parseInt(args[1]) : 4;
        final AwsRoleBroker broker = AwsRoleBroker.shared();
        check(!broker.version().isEmpty(), "version");
        check(broker.stats().containsKey("vault_calls"), "stats");
        System.setProperty("withawsrole.WITHAWSROLE_CONFIG",
                new java.io.File("test/jvm/fixtures/world-purposes.toml").getAbsolutePath());
        check("controller".equals(broker.blockLogin(null).get("source")), "block login: the controller logs in as itself");
        final Map<String, String> hot = request("ecr-push", 900);
        check("miss".equals(broker.credentials(hot).get("cache")) || true, "first fetch");
        expect(() -> broker.credentials(request("ecr-push", 900, "colour", "blue")), "InvalidRequestException");
        expect(() -> broker.credentials(request("../escape", 900)), "InvalidRequestException");
        expect(() -> broker.credentials(request("forbidden", 900)), "PermissionDeniedException");
        expect(() -> broker.credentials(request("no-listed-purpose", 900)), "PermissionDeniedException");
        expect(() -> broker.credentials(request("ecr-push", 900, "vault_addr", "http://127.0.0.1:1")),
                "InvalidRequestException");
        expect(() -> broker.credentials(request("ecr-push", 900, "job", "another-job")), "InvalidRequestException");
        System.setProperty("withawsrole.VAULT_ADDR", "http://127.0.0.1:1");
        expect(() -> broker.credentials(request("ecr-push", 901)), "VaultUnavailableException");
        System.clearProperty("withawsrole.VAULT_ADDR");
        try {
            Native.Diagnostics_panic("on purpose, under valgrind");
            check(false, "panic became no exception");
        } catch (InternalBridgeException expected) {
            check(expected.getMessage().contains("on purpose"), "panic message");
        }
        Thread[] workers = new Thread[threads];
        final boolean[] ok = new boolean[threads];
        for (int t = 0; t < threads; t++) {
            final int index = t;
            workers[t] = new Thread(() -> {
                for (int i = 0; i < hits; i++) {
                    Map<String, String> c = broker.credentials(hot);
                    if (!"hit".equals(c.get("cache"))) {
                        return;
                    }
                    if (i % 50 == 0) {
                        broker.credentials(request("ecr-push", 1000 + index * 200 + i));
                    }
                }
                ok[index] = true;
            }, "exercise-" + t);
            workers[t].start();
        }
        for (int t = 0; t < threads; t++) {
            workers[t].join();
            check(ok[t], "thread " + t + " got hits");
        }
        broker.clearCache();
        check("miss".equals(broker.credentials(hot).get("cache")), "miss after clearCache");
        System.out.println("exercise: ok " + broker.stats());
        System.exit(0);
    }

    private interface Call {
        Object run();
    }

    /** A request for {@code purpose} with {@code ttlSeconds}: part of the cache key, so a key of its own. */
    private static Map<String, String> request(String purpose, int ttlSeconds, String... more) {
        Map<String, String> request = new LinkedHashMap<String, String>();
        request.put("purpose", purpose);
        request.put("ttl", String.valueOf(ttlSeconds));
        for (int i = 0; i + 1 < more.length; i += 2) {
            request.put(more[i], more[i + 1]);
        }
        return request;
    }

    private static void expect(Call call, String exceptionClass) {
        try {
            call.run();
            check(false, "expected " + exceptionClass);
        } catch (AwsRoleException e) {
            check(e.getClass().getSimpleName().equals(exceptionClass), "expected " + exceptionClass + ", got " + e);
        }
    }

    private static void check(boolean condition, String what) {
        if (!condition) {
            System.out.println("exercise: FAILED " + what);
            System.exit(1);
        }
    }
}
