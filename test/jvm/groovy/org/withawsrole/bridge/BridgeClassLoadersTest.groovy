package org.withawsrole.bridge

import org.junit.Test
import org.withawsrole.World
import org.withawsrole.WorldTestBase
import org.withawsrole.bridge.internal.NativeLoader
import org.withawsrole.jvm.ProcSelf

import static org.junit.Assert.*

/**
 * A library update that changes only the bridge's Java code gives a second bridge classloader in a
 * running controller with the same native library inside. The JVM refuses one library file in two
 * classloaders, so each bridge loader must load its own copy, and both must work.
 */
class BridgeClassLoadersTest extends WorldTestBase {
    static final File BRIDGE_JAR = new File(System.getProperty('withawsrole.library.dir', '.'),
            'resources/org/withawsrole/bridge/withawsrole-bridge.jar')

    @Test
    void two_bridge_classloaders_with_the_same_library_each_load_a_copy_and_both_work() {
        List<URLClassLoader> bridges = (1..2).collect {
            new URLClassLoader([BRIDGE_JAR.toURI().toURL()] as URL[], ClassLoader.platformClassLoader)
        }
        List<Map<String, String>> answers = bridges.collect { ClassLoader bridge ->
            Class broker = Class.forName('org.withawsrole.bridge.AwsRoleBroker', true, bridge)
            World.asBuild('two-bridge-loaders', 1) {
                (Map<String, String>) broker.getMethod('credentials', Map).invoke(broker.getMethod('shared').invoke(null),
                        [purpose: 'ecr-push'])
            }
        }
        List<String> paths = bridges.collect { ClassLoader bridge ->
            (String) Class.forName(NativeLoader.name, true, bridge).getMethod('loadedFrom').invoke(null)
        }
        String sha = bridges[0].getResource(NativeLoader.resourcePath(NativeLoader.currentPlatform()) + '.sha256').text.trim()

        answers.each { assertTrue(it.arn, it.arn.endsWith('/jenkins-two-bridge-loaders-1')) }
        assertEquals('each bridge has its own native instance and cache', ['miss', 'miss'], answers*.cache)
        assertTrue(paths[0], paths[0].endsWith("libwithawsrole_jni-${sha}.so"))
        assertTrue(paths[1], paths[1].endsWith("libwithawsrole_jni-${sha}-1.so"))
        assertEquals(paths.toSet(), ProcSelf.mappedFiles('libwithawsrole_jni'))
    }
}
