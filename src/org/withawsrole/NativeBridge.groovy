package org.withawsrole

import com.cloudbees.groovy.cps.NonCPS

import java.lang.invoke.MethodHandle
import java.lang.invoke.MethodHandleProxies
import java.lang.invoke.MethodHandles
import java.lang.invoke.MethodType
import java.lang.reflect.InvocationTargetException
import java.lang.reflect.Method
import java.nio.file.FileSystems
import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.Paths
import java.nio.file.attribute.PosixFilePermissions
import java.security.MessageDigest
import java.util.concurrent.CompletableFuture
import java.util.concurrent.ExecutionException
import java.util.concurrent.ForkJoinPool
import java.util.concurrent.TimeUnit
import java.util.concurrent.TimeoutException

/**
 * The bridge jar's one home in this JVM.
 *
 * Jenkins compiles this class again for every build and Replay, but a native library binds to one
 * classloader per JVM. So the bridge jar (plain Java, native library inside) is installed once into a
 * URLClassLoader that is published in System.getProperties() under
 * "org.withawsrole.bridge.loader.<sha256 of the jar>", the one map every classloader sees; later
 * builds find it there and reach the same broker, native instance and credential cache. Only JDK
 * types (String, Map) cross between the build's classloader and the bridge's.
 * See docs/architecture.md, "How the native library survives builds and Replays".
 *
 * Everything here calls into Java, so every method is @NonCPS.
 */
class NativeBridge implements Serializable {
    private static final long serialVersionUID = 1L

    /** The library's resources: the bridge jar (read only when this JVM has no bridge yet) and its sha256. */
    static final String DIGEST_RESOURCE = 'org/withawsrole/bridge/bridge.sha256'
    static final String JAR_RESOURCE = 'org/withawsrole/bridge/withawsrole-bridge.jar'

    /** Where the installed bridge's classloader is published: System.getProperties(), this prefix and its sha256. */
    static final String REGISTRY_KEY_PREFIX = 'org.withawsrole.bridge.loader.'

    static final String BROKER_CLASS = 'org.withawsrole.bridge.AwsRoleBroker'
    /**
     * The broker's methods (AwsRoleBroker) this library calls, with their parameter types: the one
     * list of the reflective calls' signatures (a name not listed here is no call of this library).
     */
    static final Map<String, List<Class>> BROKER_METHODS = [
            credentials           : [Map],
            credentialsWithin     : [Map, Long.TYPE],
            createChildTokenWithin: [Map, String, Long.TYPE],
            abandonChildToken     : [Map, String],
            revokeChildToken      : [Map],
            blockLogin            : [String],
            settingVariables      : [],
            stats                 : [],
            clearCache            : [],
            version               : [],
    ].asImmutable()
    /** The base class of the bridge's expected failures; the rest (InternalBridgeException, ...) are bugs. */
    static final String EXPECTED_FAILURE_CLASS = 'org.withawsrole.bridge.AwsRoleException'
    static final String PERMISSION_DENIED_CLASS = 'org.withawsrole.bridge.PermissionDeniedException'
    static final long CREATE_LOADER_TIMEOUT_SECONDS = 30

    /** Beside this class in src/, written by the build: the sha256 of the one jar this library installs. */
    static final String DIGEST_ON_CLASSPATH = '/org/withawsrole/bridge-jar.sha256'

    /**
     * The sha256 of this library's bridge jar, read from the library's own classpath (src/), which
     * no pipeline can change: a Jenkinsfile may call this class's methods directly, so the jar
     * they install must not be the caller's to choose.
     */
    @NonCPS
    static String libraryDigest() {
        InputStream stream = NativeBridge.getResourceAsStream(DIGEST_ON_CLASSPATH)
        if (stream == null) {
            throw new IllegalStateException("withAwsRole: this copy of the library has no ${DIGEST_ON_CLASSPATH.substring(1)}: " +
                    "build the bridge with 'make native', or configure Jenkins with a release tag of the library")
        }
        String digest = stream.withStream { InputStream input -> input.getText('US-ASCII').trim() }
        registryKey(digest)
        return digest
    }

    /** True when the bridge jar with this sha256 is already installed in this JVM. */
    @NonCPS
    static boolean isInstalled(String bridgeSha256) {
        return System.getProperties().get(registryKey(bridgeSha256)) instanceof ClassLoader
    }

    /**
     * Installs the bridge jar (given Base64, as libraryResource reads it) unless it already is:
     * checks its sha256, writes it to a new private directory, creates its classloader, publishes it.
     */
    @NonCPS
    static void install(String bridgeSha256, String jarBase64) {
        String expected = libraryDigest()
        if (bridgeSha256 != expected) {
            throw new IllegalStateException("withAwsRole: this library installs only its own bridge jar (sha256 ${expected}), " +
                    "not ${bridgeSha256}")
        }
        String key = registryKey(bridgeSha256)
        // The interned key is the same object in every classloader of this JVM.
        synchronized (key.intern()) {
            if (System.getProperties().get(key) instanceof ClassLoader) {
                return
            }
            byte[] jar = Base64.getMimeDecoder().decode(jarBase64)
            String actual = sha256Hex(jar)
            if (actual != bridgeSha256) {
                throw new IllegalStateException("withAwsRole: ${JAR_RESOURCE} has sha256 ${actual} but " +
                        "${DIGEST_RESOURCE} says ${bridgeSha256}, so this copy of the library is damaged or altered: " +
                        "load a release tag whose files match its release.json (docs/install.md), or rebuild both with 'make native'")
            }
            Path dir = newPrivateDirectory("withawsrole-bridge-${bridgeSha256.substring(0, 16)}-")
            Path jarFile = dir.resolve('withawsrole-bridge.jar')
            Files.write(jarFile, jar)
            jarFile.toFile().deleteOnExit()
            dir.toFile().deleteOnExit()
            String written = sha256Hex(Files.readAllBytes(jarFile))
            if (written != bridgeSha256) {
                throw new IllegalStateException("withAwsRole: ${jarFile} changed while being written (sha256 ${written})")
            }
            ClassLoader loader = newBridgeLoader(jarFile.toUri().toURL())
            System.getProperties().put(key, loader)
        }
    }

    /**
     * install, with its refusals (a jar that does not match its sha256) as the one line the step
     * shows instead of a stack trace: null when the bridge is installed.
     */
    @NonCPS
    static String installOrExplain(String bridgeSha256, String jarBase64) {
        try {
            install(bridgeSha256, jarBase64)
            return null
        } catch (IllegalStateException | IllegalArgumentException refused) {
            return refused.message
        }
    }

    /** Credentials for the request; throws the bridge's exceptions (AwsRoleException subclasses). */
    @NonCPS
    static Map<String, String> credentials(String bridgeSha256, Map<String, String> request) {
        return (Map<String, String>) callBroker(bridgeSha256, 'credentials', request)
    }

    /** The broker's counters: vault_calls, vault_logins, cache_hits, cache_misses, retries. */
    @NonCPS
    static Map<String, String> stats(String bridgeSha256) {
        return (Map<String, String>) callBroker(bridgeSha256, 'stats')
    }

    @NonCPS
    static void clearCache(String bridgeSha256) {
        callBroker(bridgeSha256, 'clearCache')
    }

    @NonCPS
    static String version(String bridgeSha256) {
        return (String) callBroker(bridgeSha256, 'version')
    }

    /**
     * [answer: what the broker's method returned] or, for a failure the user can act on (an
     * AwsRoleException of the bridge: the expected failures, rust/jni/src/ffi.rs),
     * [failure: message, permissionDenied: boolean]. Anything else is a bug, rethrown as an
     * IllegalStateException with the original's message and stack: the bridge's own exception
     * classes live in its classloader, which Jenkins cannot resolve when it saves the build.
     */
    @NonCPS
    @SuppressWarnings('CatchThrowable') // bugs, Errors included, must keep their stack
    static Map outcome(String bridgeSha256, String method, Object... args) {
        try {
            return [answer: callBroker(bridgeSha256, method, args)]
        } catch (Throwable failure) {
            ClassLoader bridge = loaderOf(bridgeSha256)
            if (bridge.loadClass(EXPECTED_FAILURE_CLASS).isInstance(failure)) {
                return [failure         : failure.message ?: failure.getClass().simpleName,
                        permissionDenied: bridge.loadClass(PERMISSION_DENIED_CLASS).isInstance(failure),]
            }
            IllegalStateException bug = new IllegalStateException("withAwsRole: ${failure.getClass().name}: ${failure.message}")
            bug.stackTrace = failure.stackTrace
            throw bug
        }
    }

    /** The installed bridge's classloader (tests check it is the same one across builds). */
    @NonCPS
    static ClassLoader loaderOf(String bridgeSha256) {
        Object loader = System.getProperties().get(registryKey(bridgeSha256))
        if (!(loader instanceof ClassLoader)) {
            throw new IllegalStateException("withAwsRole: bridge ${bridgeSha256} is not installed in this JVM")
        }
        return (ClassLoader) loader
    }

    @NonCPS
    private static Object callBroker(String bridgeSha256, String method, Object... args) {
        List<Class> parameterTypes = BROKER_METHODS[method]
        if (parameterTypes == null) {
            throw new IllegalArgumentException("withAwsRole: ${StepMessages.shown(method)} is not a call of this library; " +
                    "it calls ${BROKER_METHODS.keySet().join(', ')}")
        }
        Class broker = loaderOf(bridgeSha256).loadClass(BROKER_CLASS)
        try {
            Object shared = broker.getMethod('shared').invoke(null)
            return broker.getMethod(method, parameterTypes as Class[]).invoke(shared, args)
        } catch (InvocationTargetException e) {
            throw e.cause
        }
    }

    @NonCPS
    private static String registryKey(String bridgeSha256) {
        if (bridgeSha256 == null || !(bridgeSha256 ==~ /[0-9a-f]{64}/)) {
            throw new IllegalArgumentException("withAwsRole: ${DIGEST_RESOURCE} does not hold a sha256: '${bridgeSha256}'; " +
                    "rebuild it with 'gradle bridgeJar'")
        }
        return REGISTRY_KEY_PREFIX + bridgeSha256
    }

    /**
     * The bridge's URLClassLoader, parent the platform loader, so nothing of this build (or of
     * Jenkins) is reachable from the bridge. A URLClassLoader also keeps the AccessControlContext of
     * the stack that creates it, i.e. the ProtectionDomains, and so the classloaders, of the classes
     * on it: created here, it would keep this (the installing) build's loader alive for the JVM's
     * life. So a common-pool worker creates it (the pool starts its threads with a JDK-only
     * context), running only JDK code: method handles behind a proxy, not a closure. The result comes
     * back through a CompletableFuture, not ForkJoinTask.get(), which may run the task on this
     * thread, build frames and all. Not supplyAsync either: with a common pool of one (2 CPUs) it
     * starts a thread from this one, which inherits this stack's context. docs/jni-verification.md, F1.
     */
    @NonCPS
    private static ClassLoader newBridgeLoader(URL jar) {
        MethodHandles.Lookup lookup = MethodHandles.publicLookup()
        MethodHandle create = MethodHandles.insertArguments(
                lookup.findConstructor(URLClassLoader, MethodType.methodType(Void.TYPE, URL[], ClassLoader)),
                0, [[jar] as URL[], platformClassLoader()] as Object[]).asType(MethodType.methodType(Object))
        CompletableFuture<Object> created = new CompletableFuture<Object>()
        MethodHandle complete = lookup.findVirtual(CompletableFuture, 'complete',
                MethodType.methodType(Boolean.TYPE, Object)).bindTo(created)
        MethodHandle fail = lookup.findVirtual(CompletableFuture, 'completeExceptionally',
                MethodType.methodType(Boolean.TYPE, Throwable)).bindTo(created)
        MethodHandle task = MethodHandles.catchException(MethodHandles.collectArguments(complete, 0, create), Throwable, fail)
        ForkJoinPool.commonPool().execute(MethodHandleProxies.asInterfaceInstance(Runnable, task))
        try {
            return (ClassLoader) created.get(CREATE_LOADER_TIMEOUT_SECONDS, TimeUnit.SECONDS)
        } catch (ExecutionException e) {
            throw e.cause
        } catch (TimeoutException ignored) {
            // A common pool without workers (parallelism 0) never runs it: create it here and keep
            // this build's loader alive, one per JVM, rather than fail the build.
            return new URLClassLoader([jar] as URL[], platformClassLoader())
        }
    }

    @NonCPS
    private static ClassLoader platformClassLoader() {
        Method platformLoader = ClassLoader.methods.find { Method method -> method.name == 'getPlatformClassLoader' }
        // Java 8 has none: null stands for the bootstrap loader there.
        return platformLoader == null ? null : (ClassLoader) platformLoader.invoke(null)
    }

    @NonCPS
    private static Path newPrivateDirectory(String prefix) {
        Path parent = Paths.get(System.getProperty('java.io.tmpdir'))
        if (FileSystems.getDefault().supportedFileAttributeViews().contains('posix')) {
            return Files.createTempDirectory(parent, prefix,
                    PosixFilePermissions.asFileAttribute(PosixFilePermissions.fromString('rwx------')))
        }
        return Files.createTempDirectory(parent, prefix)
    }

    @NonCPS
    private static String sha256Hex(byte[] bytes) {
        byte[] digest = MessageDigest.getInstance('SHA-256').digest(bytes)
        StringBuilder hex = new StringBuilder(64)
        for (byte b : digest) {
            hex.append(String.format('%02x', b & 0xff))
        }
        return hex.toString()
    }
}
