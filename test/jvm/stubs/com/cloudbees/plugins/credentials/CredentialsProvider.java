package com.cloudbees.plugins.credentials;

import hudson.model.Queue;

import java.lang.reflect.Proxy;
import java.util.Collections;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * Stand-in for the Credentials plugin's {@code CredentialsProvider}, with the one lookup library
 * code uses: {@link #findCredentialById}, which answers for the credentials the build can see
 * and only when the credential is of the asked type (Jenkins' signature takes a {@code Run}; the
 * runner's builds are {@code WorkflowRun}s, which Groovy passes to either).
 *
 * <p>The credentials come from the replay runner's store, registered per build with
 * {@link #storeForReplay} (Jenkins has no such method). The credential returned carries no values:
 * as in a pipeline, values are only ever bound by {@code withCredentials}.
 */
public abstract class CredentialsProvider {
    /** Replay only: whether the build sees a credential with this ID of this type (a class name). */
    public interface ReplayStore {
        boolean has(String id, String typeName);
    }

    private static final Map<Queue.Executable, ReplayStore> STORES =
            Collections.synchronizedMap(new WeakHashMap<Queue.Executable, ReplayStore>());

    private CredentialsProvider() {
    }

    /** The credential with this ID if the build sees one of this type, else null. */
    public static <C extends Credentials> C findCredentialById(String id, Class<C> type, Queue.Executable run,
                                                               Object... domainRequirements) {
        ReplayStore store = STORES.get(run);
        if (id == null || store == null || !store.has(id, type.getName())) {
            return null;
        }
        return type.cast(Proxy.newProxyInstance(type.getClassLoader(), new Class<?>[] {type}, (proxy, method, args) -> {
            switch (method.getName()) {
                case "equals":
                    return proxy == args[0];
                case "hashCode":
                    return System.identityHashCode(proxy);
                case "toString":
                    return type.getSimpleName() + " " + id;
                default:
                    throw new UnsupportedOperationException("replay: credential values are bound by withCredentials only");
            }
        }));
    }

    /** Replay only: the credentials the build {@code run} sees. */
    public static void storeForReplay(Queue.Executable run, ReplayStore store) {
        STORES.put(run, store);
    }
}
