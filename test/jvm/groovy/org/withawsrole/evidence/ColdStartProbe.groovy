package org.withawsrole.evidence

import org.withawsrole.World
import org.withawsrole.replay.LocalLibrary

/**
 * The first block's work in a fresh JVM, part by part, as NativeBridge and the bridge do it:
 * compiling the library's classes (Jenkins does this for every build), reading the bridge jar as
 * libraryResource hands it over (Base64 text), installing it (decode, check, write, classloader),
 * loading the native library (extraction of the .so into a fresh private directory, and
 * System.load), the first Vault call (a cache miss: login and STS) and a second call (a cache hit).
 * Run by ColdStartTest in a child JVM; prints one line `part=millis ...`. With the argument
 * `load-only` (and -Dwithawsrole.native.library naming an extracted .so) the native load is
 * System.load alone, which tells extraction from loading.
 */
class ColdStartProbe {
    static void main(String[] args) {
        File libraryDir = new File(args[0])
        Map<String, Double> parts = [:]
        long start = System.nanoTime()
        Closure<Object> timed = { String part, Closure<Object> work ->
            long begin = System.nanoTime()
            Object result = work()
            parts[part] = (System.nanoTime() - begin) / 1e6d
            return result
        }
        Class nativeBridge = timed('compile') {
            LocalLibrary.compile(libraryDir).classLoader.loadClass('org.withawsrole.NativeBridge')
        }
        String digest = nativeBridge.libraryDigest()
        String jarBase64 = timed('read_resource') {
            new File(libraryDir, "resources/${nativeBridge.JAR_RESOURCE}").bytes.encodeBase64().toString()
        }
        timed('install') { nativeBridge.install(digest, jarBase64) }
        ClassLoader bridge = nativeBridge.loaderOf(digest)
        Class broker = bridge.loadClass('org.withawsrole.bridge.AwsRoleBroker')
        Object shared = timed('native_load') { broker.getMethod('shared').invoke(null) }
        Map<String, String> request = [purpose: 'ecr-push']
        String job = "cold-start-${System.currentTimeMillis()}".toString()
        Map first = timed('first_vault_call') { World.asBuild(job, 1) { broker.getMethod('credentials', Map).invoke(shared, request) } }
        Map second = timed('cache_hit') { World.asBuild(job, 1) { broker.getMethod('credentials', Map).invoke(shared, request) } }
        parts.total = (System.nanoTime() - start) / 1e6d
        String loadedFrom = bridge.loadClass('org.withawsrole.bridge.internal.NativeLoader').loadedFrom()
        println("COLD ${parts.collect { k, v -> "${k}=${String.format('%.1f', v)}" }.join(' ')} " +
                "first=${first.cache} second=${second.cache} loaded_from=${loadedFrom}")
    }
}
