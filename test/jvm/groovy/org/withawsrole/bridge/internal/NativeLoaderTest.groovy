package org.withawsrole.bridge.internal

import org.junit.Rule
import org.junit.Test
import org.junit.rules.TemporaryFolder

import java.nio.file.Files
import java.nio.file.Path
import java.nio.file.attribute.PosixFilePermissions
import java.security.MessageDigest

import static org.junit.Assert.*

class NativeLoaderTest {
    @Rule
    public TemporaryFolder temp = new TemporaryFolder()

    static final File BRIDGE_JAR = new File(System.getProperty('withawsrole.library.dir', '.'),
            'resources/org/withawsrole/bridge/withawsrole-bridge.jar')

    @Test
    void platform_names_follow_the_jar_layout() {
        assertEquals('linux-x86_64', NativeLoader.platform('Linux', 'amd64'))
        assertEquals('linux-x86_64', NativeLoader.platform('Linux', 'x86_64'))
        assertEquals('linux-aarch64', NativeLoader.platform('Linux', 'aarch64'))
        assertEquals('darwin-x86_64', NativeLoader.platform('Mac OS X', 'x86_64'))
        assertEquals('darwin-aarch64', NativeLoader.platform('Mac OS X', 'aarch64'))
        assertEquals('libwithawsrole_jni.so', NativeLoader.libraryFileName('linux-aarch64'))
        assertEquals('libwithawsrole_jni.dylib', NativeLoader.libraryFileName('darwin-aarch64'))
        assertEquals('native/linux-x86_64/libwithawsrole_jni.so', NativeLoader.resourcePath('linux-x86_64'))
    }

    @Test
    void missing_platform_error_names_the_platform_and_where_it_looked() {
        assertTrue("${BRIDGE_JAR} missing: run gradle bridgeJar", BRIDGE_JAR.isFile())
        URLClassLoader jar = new URLClassLoader([BRIDGE_JAR.toURI().toURL()] as URL[], (ClassLoader) null)
        try {
            NativeLoader.extract(jar, 'linux-riscv64', temp.root.toPath())
            fail('expected UnsatisfiedLinkError')
        } catch (UnsatisfiedLinkError e) {
            assertTrue(e.message, e.message.contains('no native library for platform linux-riscv64'))
            assertTrue(e.message, e.message.contains('native/linux-riscv64/libwithawsrole_jni.so'))
            assertTrue(e.message, e.message.contains(BRIDGE_JAR.name))
            assertTrue(e.message, e.message.contains("native libraries for ${NativeLoader.currentPlatform()}"))
        } finally {
            jar.close()
        }
    }

    @Test
    void library_whose_hash_does_not_match_is_refused_and_removed() {
        File root = temp.newFolder('jar-root')
        File library = new File(root, 'native/linux-x86_64/libwithawsrole_jni.so')
        library.parentFile.mkdirs()
        library.bytes = 'not the library that was hashed' as byte[]
        new File(root, 'native/linux-x86_64/libwithawsrole_jni.so.sha256').text = sha256('the library that was hashed') + '\n'
        File extractTo = temp.newFolder('tmp')
        URLClassLoader resources = new URLClassLoader([root.toURI().toURL()] as URL[], (ClassLoader) null)
        try {
            NativeLoader.extract(resources, 'linux-x86_64', extractTo.toPath())
            fail('expected UnsatisfiedLinkError')
        } catch (UnsatisfiedLinkError e) {
            assertTrue(e.message, e.message.contains('sha256 mismatch'))
            assertTrue(e.message, e.message.contains('refusing to load'))
        }
        assertTrue('the mismatching copy is deleted', extractTo.listFiles().every { it.listFiles().length == 0 })
    }

    @Test
    void library_without_a_hash_is_refused() {
        File root = temp.newFolder('jar-root')
        File library = new File(root, 'native/linux-x86_64/libwithawsrole_jni.so')
        library.parentFile.mkdirs()
        library.bytes = 'some library' as byte[]
        URLClassLoader resources = new URLClassLoader([root.toURI().toURL()] as URL[], (ClassLoader) null)
        try {
            NativeLoader.extract(resources, 'linux-x86_64', temp.newFolder('tmp').toPath())
            fail('expected UnsatisfiedLinkError')
        } catch (UnsatisfiedLinkError e) {
            assertTrue(e.message, e.message.contains('refusing to load an unverified library'))
        }
    }

    @Test
    void library_is_extracted_to_a_private_directory_named_by_its_hash() {
        File root = temp.newFolder('jar-root')
        File library = new File(root, 'native/darwin-aarch64/libwithawsrole_jni.dylib')
        library.parentFile.mkdirs()
        library.bytes = 'a library' as byte[]
        new File(root, 'native/darwin-aarch64/libwithawsrole_jni.dylib.sha256').text = sha256('a library')
        URLClassLoader resources = new URLClassLoader([root.toURI().toURL()] as URL[], (ClassLoader) null)
        Path extracted = NativeLoader.extract(resources, 'darwin-aarch64', temp.newFolder('tmp').toPath())
        assertEquals('a library', new String(Files.readAllBytes(extracted)))
        assertEquals('libwithawsrole_jni.dylib', extracted.fileName.toString())
        assertTrue(extracted.parent.fileName.toString().startsWith("withawsrole-native-${sha256('a library').substring(0, 16)}-"))
        assertEquals('rwx------', PosixFilePermissions.toString(Files.getPosixFilePermissions(extracted.parent)))
    }

    @Test
    void bridge_jar_carries_this_platforms_library_and_its_hash() {
        URLClassLoader jar = new URLClassLoader([BRIDGE_JAR.toURI().toURL()] as URL[], (ClassLoader) null)
        try {
            String path = NativeLoader.resourcePath(NativeLoader.currentPlatform())
            byte[] library = jar.getResource(path).bytes
            assertEquals(sha256(library), jar.getResource(path + '.sha256').text.trim())
            assertNotNull(jar.getResource('org/withawsrole/bridge/AwsRoleBroker.class'))
        } finally {
            jar.close()
        }
    }

    private static String sha256(Object content) {
        byte[] bytes = content instanceof byte[] ? (byte[]) content : content.toString().getBytes('UTF-8')
        return MessageDigest.getInstance('SHA-256').digest(bytes).collect { String.format('%02x', it & 0xff) }.join('')
    }
}
