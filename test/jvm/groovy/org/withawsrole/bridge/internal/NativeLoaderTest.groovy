package org.withawsrole.bridge.internal

import org.junit.Assume
import org.junit.Rule
import org.junit.Test
import org.junit.rules.TemporaryFolder
import org.withawsrole.jvm.ChildJvm

import java.nio.file.Files
import java.nio.file.LinkOption
import java.nio.file.Path
import java.nio.file.attribute.FileTime
import java.nio.file.attribute.PosixFilePermissions
import java.nio.file.attribute.UserPrincipal
import java.security.MessageDigest
import java.util.concurrent.CyclicBarrier
import java.util.concurrent.TimeUnit

import static org.junit.Assert.*

class NativeLoaderTest {
    @Rule
    public TemporaryFolder temp = new TemporaryFolder()

    static final File BRIDGE_JAR = new File(System.getProperty('withawsrole.library.dir', '.'),
            'resources/org/withawsrole/bridge/withawsrole-bridge.jar')
    static final String PRIVATE_DIR = 'withawsrole-native-' + System.getProperty('user.name')

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
        assertEquals('libwithawsrole_jni-abc.so', NativeLoader.extractedFileName('linux-x86_64', 'abc', 0))
        assertEquals('libwithawsrole_jni-abc-2.dylib', NativeLoader.extractedFileName('darwin-aarch64', 'abc', 2))
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
        URLClassLoader resources = fakeJar('linux-x86_64', 'not the library that was hashed', sha256('the library that was hashed'))
        File extractTo = temp.newFolder('tmp')
        try {
            NativeLoader.extract(resources, 'linux-x86_64', extractTo.toPath())
            fail('expected UnsatisfiedLinkError')
        } catch (UnsatisfiedLinkError e) {
            assertTrue(e.message, e.message.contains('sha256 mismatch'))
            assertTrue(e.message, e.message.contains('refusing to load'))
        }
        assertEquals('nothing is left behind', [], new File(extractTo, PRIVATE_DIR).list().toList())
    }

    @Test
    void library_without_a_hash_is_refused() {
        URLClassLoader resources = fakeJar('linux-x86_64', 'some library', null)
        try {
            NativeLoader.extract(resources, 'linux-x86_64', temp.newFolder('tmp').toPath())
            fail('expected UnsatisfiedLinkError')
        } catch (UnsatisfiedLinkError e) {
            assertTrue(e.message, e.message.contains('refusing to load an unverified library'))
        }
    }

    @Test
    void library_is_extracted_read_only_into_a_private_directory_under_a_name_with_its_hash() {
        URLClassLoader resources = fakeJar('darwin-aarch64', 'a library', sha256('a library'))
        Path root = temp.newFolder('tmp').toPath()
        Path extracted = NativeLoader.extract(resources, 'darwin-aarch64', root)
        assertEquals('a library', new String(Files.readAllBytes(extracted)))
        assertEquals("libwithawsrole_jni-${sha256('a library')}.dylib".toString(), extracted.fileName.toString())
        assertEquals(root.resolve(PRIVATE_DIR), extracted.parent)
        assertEquals('rwx------', PosixFilePermissions.toString(Files.getPosixFilePermissions(extracted.parent)))
        assertEquals('r-x------', PosixFilePermissions.toString(Files.getPosixFilePermissions(extracted)))
        assertEquals('no temporary files stay', [extracted.fileName.toString()], extracted.parent.toFile().list().toList())
    }

    @Test
    void a_verified_earlier_extraction_is_used_as_it_is() {
        URLClassLoader resources = linuxJar('a library')
        Path root = temp.newFolder('tmp').toPath()
        Path first = NativeLoader.extract(resources, 'linux-x86_64', root)
        Object inode = Files.getAttribute(first, 'unix:ino')
        Path second = NativeLoader.extract(resources, 'linux-x86_64', root)
        assertEquals(first, second)
        assertEquals('the same file, not a rewrite', inode, Files.getAttribute(second, 'unix:ino'))
    }

    @Test
    void libraries_no_jvm_started_from_for_a_month_are_removed_and_recent_ones_kept() {
        URLClassLoader resources = linuxJar('version 2')
        Path root = temp.newFolder('tmp').toPath()
        Path dir = NativeLoader.privateDirectory(root)
        Path old = linuxLibraryIn(root, 'version 0')
        Path recent = linuxLibraryIn(root, 'version 1')
        old.text = 'version 0'
        recent.text = 'version 1'
        long day = 24L * 3600 * 1000
        Files.setLastModifiedTime(old, FileTime.fromMillis(System.currentTimeMillis() - (NativeLoader.UNUSED_LIBRARY_DAYS + 1) * day))
        Files.setLastModifiedTime(recent, FileTime.fromMillis(System.currentTimeMillis() - (NativeLoader.UNUSED_LIBRARY_DAYS - 1) * day))
        Path extracted = NativeLoader.extract(resources, 'linux-x86_64', root)
        assertEquals([extracted.fileName.toString(), recent.fileName.toString()].toSet(), dir.toFile().list().toList().toSet())
    }

    @Test
    void a_planted_file_with_other_content_is_replaced_by_a_verified_copy() {
        URLClassLoader resources = linuxJar('the real library')
        Path root = temp.newFolder('tmp').toPath()
        Path planted = linuxLibraryIn(root, 'the real library')
        planted.text = 'a planted library'
        Path extracted = NativeLoader.extract(resources, 'linux-x86_64', root)
        assertEquals(planted, extracted)
        assertEquals('the real library', extracted.text)
    }

    @Test
    void a_planted_symbolic_link_is_replaced_and_its_target_left_alone() {
        URLClassLoader resources = linuxJar('the real library')
        Path root = temp.newFolder('tmp').toPath()
        Path elsewhere = temp.newFile('elsewhere').toPath()
        elsewhere.text = 'the real library'
        Path link = linuxLibraryIn(root, 'the real library')
        Files.createSymbolicLink(link, elsewhere)
        Path extracted = NativeLoader.extract(resources, 'linux-x86_64', root)
        assertFalse('a regular file now', Files.isSymbolicLink(extracted))
        assertEquals('the real library', extracted.text)
        assertTrue(Files.isRegularFile(elsewhere, LinkOption.NOFOLLOW_LINKS))
    }

    @Test
    void a_private_directory_others_can_enter_is_not_used() {
        URLClassLoader resources = linuxJar('a library')
        Path root = temp.newFolder('tmp').toPath()
        Path shared = Files.createDirectory(root.resolve(PRIVATE_DIR))
        Files.setPosixFilePermissions(shared, PosixFilePermissions.fromString('rwxrwxrwx'))
        Path extracted = NativeLoader.extract(resources, 'linux-x86_64', root)
        assertTrue(NativeLoader.lastDirectoryProblem, NativeLoader.lastDirectoryProblem.contains('rwxrwxrwx'))
        assertNotEquals(shared, extracted.parent)
        assertTrue(extracted.parent.fileName.toString().startsWith("withawsrole-native-${sha256('a library').substring(0, 16)}-"))
        assertEquals('rwx------', PosixFilePermissions.toString(Files.getPosixFilePermissions(extracted.parent)))
        assertEquals('a library', extracted.text)
        assertEquals('nothing written into the open directory', [], shared.toFile().list().toList())
    }

    @Test
    void a_private_directory_that_is_a_symbolic_link_is_not_used() {
        URLClassLoader resources = linuxJar('a library')
        Path root = temp.newFolder('tmp').toPath()
        Path target = temp.newFolder('somewhere-else').toPath()
        Files.setPosixFilePermissions(target, PosixFilePermissions.fromString('rwx------'))
        Files.createSymbolicLink(root.resolve(PRIVATE_DIR), target)
        Path extracted = NativeLoader.extract(resources, 'linux-x86_64', root)
        assertTrue(NativeLoader.lastDirectoryProblem, NativeLoader.lastDirectoryProblem.contains('symbolic link'))
        assertEquals('a library', extracted.text)
        assertEquals([], target.toFile().list().toList())
    }

    @Test
    void a_private_directory_of_another_user_is_not_used() {
        Path root = temp.newFolder('tmp').toPath()
        Path theirs = Files.createDirectory(root.resolve(PRIVATE_DIR))
        Files.setPosixFilePermissions(theirs, PosixFilePermissions.fromString('rwx------'))
        UserPrincipal nobody = root.fileSystem.userPrincipalLookupService.lookupPrincipalByName('nobody')
        // Only root may give a directory away; anyone else runs the rest of this class.
        Assume.assumeTrue('needs root to chown', System.getProperty('user.name') == 'root')
        Files.setOwner(theirs, nobody)
        URLClassLoader resources = linuxJar('a library')
        Path extracted = NativeLoader.extract(resources, 'linux-x86_64', root)
        assertTrue(NativeLoader.lastDirectoryProblem, NativeLoader.lastDirectoryProblem.contains('belongs to nobody'))
        assertNotEquals(theirs, extracted.parent)
        assertEquals('a library', extracted.text)
    }

    @Test
    void threads_extracting_at_once_all_get_the_whole_library() {
        URLClassLoader jar = new URLClassLoader([BRIDGE_JAR.toURI().toURL()] as URL[], (ClassLoader) null)
        String platform = NativeLoader.currentPlatform()
        String expected = jar.getResource(NativeLoader.resourcePath(platform) + '.sha256').text.trim()
        int threads = 8
        CyclicBarrier barrier = new CyclicBarrier(threads)
        List<String> problems = Collections.synchronizedList([])
        Set<Path> paths = Collections.synchronizedSet(new HashSet<Path>())
        Path root = temp.newFolder('tmp').toPath()
        List<Thread> racers = (1..threads).collect {
            Thread.start {
                for (int round = 0; round < 10; round++) {
                    barrier.await(30, TimeUnit.SECONDS)
                    try {
                        Path path = NativeLoader.extract(jar, platform, root.resolve("round-${round}"))
                        paths << path
                        if (NativeLoader.sha256Hex(path) != expected) {
                            problems << "round ${round}: wrong content at ${path}".toString()
                        }
                    } catch (Throwable e) {
                        problems << "round ${round}: ${e}".toString()
                    }
                }
            }
        }
        racers.each { it.join(60000); assertFalse('racer finished', it.alive) }
        jar.close()
        assertEquals([], problems)
        assertEquals('one file per round', 10, paths.size())
        (0..<10).each { int round ->
            assertEquals("round ${round} leaves only the library", 1, root.resolve("round-${round}/${PRIVATE_DIR}").toFile().list().length)
        }
    }

    @Test
    void jvms_extracting_at_once_all_get_the_whole_library() {
        String platform = NativeLoader.currentPlatform()
        File root = temp.newFolder('tmp')
        int rounds = 12
        long start = System.currentTimeMillis() + 2500 // after every child JVM has started
        List<ChildJvm> racers = (1..3).collect {
            ChildJvm.start(ExtractionRace, [BRIDGE_JAR.absolutePath, platform, root.absolutePath, start,
                                            rounds, 4, 250])
        }
        racers.each { ChildJvm racer ->
            assertEquals(racer.output, 0, racer.waitFor(60))
            assertEquals(racer.output, rounds * 4, racer.output.readLines().count { it.startsWith('ok ') })
        }
        (0..<rounds).each { int round ->
            Set<String> paths = racers.collectMany { it.output.readLines().findAll { it.startsWith("ok ${round} ") } }
                    .collect { it.split(' ', 3)[2] }.toSet()
            assertEquals("round ${round}: one path for every JVM", 1, paths.size())
            assertEquals("round ${round} leaves only the library", 1, new File(root, "round-${round}/${PRIVATE_DIR}").list().length)
        }
    }

    @Test
    void a_second_bridge_classloader_in_the_jvm_gets_its_own_copy() {
        String sha = sha256('claim test')
        System.properties.put(NativeLoader.CLAIM_PREFIX + sha + '.0', 'another bridge classloader')
        try {
            assertEquals(1, NativeLoader.claimCopy(sha))
            assertEquals('the claim is stable', 1, NativeLoader.claimCopy(sha))
        } finally {
            System.properties.remove(NativeLoader.CLAIM_PREFIX + sha + '.0')
            System.properties.remove(NativeLoader.CLAIM_PREFIX + sha + '.1')
        }
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

    /** A bridge jar for linux-x86_64 whose library is `library`, with its right sha256. */
    private URLClassLoader linuxJar(String library) {
        return fakeJar('linux-x86_64', library, sha256(library))
    }

    /** Where extract puts the linux-x86_64 library `library` under `root` (the first copy). */
    private static Path linuxLibraryIn(Path root, String library) {
        return NativeLoader.privateDirectory(root).resolve(NativeLoader.extractedFileName('linux-x86_64', sha256(library), 0))
    }

    /** A directory laid out like the bridge jar with one library (and its .sha256 unless null). */
    private URLClassLoader fakeJar(String platform, String library, String digest) {
        File root = temp.newFolder()
        File file = new File(root, NativeLoader.resourcePath(platform))
        file.parentFile.mkdirs()
        file.bytes = library.getBytes('UTF-8')
        if (digest != null) {
            new File(file.path + '.sha256').text = digest + '\n'
        }
        return new URLClassLoader([root.toURI().toURL()] as URL[], (ClassLoader) null)
    }

    private static String sha256(Object content) {
        byte[] bytes = content instanceof byte[] ? (byte[]) content : content.toString().getBytes('UTF-8')
        return MessageDigest.getInstance('SHA-256').digest(bytes).collect { String.format('%02x', it & 0xff) }.join('')
    }
}
