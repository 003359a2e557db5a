package org.withawsrole.release

import groovy.json.JsonSlurper
import org.junit.AfterClass
import org.junit.BeforeClass
import org.junit.ClassRule
import org.junit.Test
import org.junit.rules.TemporaryFolder
import org.withawsrole.World
import org.withawsrole.replay.BuildResult
import org.withawsrole.replay.PipelineRunner

import java.security.MessageDigest
import java.util.concurrent.Callable
import java.util.concurrent.CyclicBarrier
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import java.util.concurrent.Future
import java.util.zip.ZipEntry
import java.util.zip.ZipFile
import java.util.zip.ZipOutputStream

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertFailedWithOneLine

/**
 * `make release` into a temporary clone of this repository (never into this checkout's refs), then
 * Jenkinsfiles pinned to its tags, loaded as Jenkins' Modern SCM retriever does: checked out of the
 * clone into a fresh directory, nothing built. The release builds in the clone with this checkout's
 * cargo target directory (only this workspace's crates are compiled again, in another directory),
 * so its native library also shows that the build does not depend on where the checkout is.
 */
class ReleaseTest {
    static final File PROJECT = new File(System.getProperty('withawsrole.library.dir', '.')).absoluteFile
    static final String JAR = 'resources/org/withawsrole/bridge/withawsrole-bridge.jar'
    static final String JAR_DIGEST = 'resources/org/withawsrole/bridge/bridge.sha256'
    static final String CLASSPATH_DIGEST = 'src/org/withawsrole/bridge-jar.sha256'
    static final String EXAMPLE = new File(PROJECT, 'examples/Jenkinsfile').getText('UTF-8')

    @ClassRule
    public static TemporaryFolder temporary = new TemporaryFolder()

    static File repository
    static String sourceCommit

    @BeforeClass
    static void releaseIntoAClone() {
        World.require()
        repository = new File(temporary.root, 'library.git-checkout')
        run(temporary.root, 'git', 'clone', '--quiet', PROJECT.absolutePath, repository.absolutePath)
        sourceCommit = git('rev-parse', 'HEAD')
        Map result = release('0.1.0')
        assertEquals(result.output, 0, result.exitCode)
    }

    @AfterClass
    static void libraryCheckoutsGo() {
        new File(temporary.root, 'checkouts').deleteDir()
    }

    @Test
    void the_tag_holds_the_sources_and_what_ships_main_does_not() {
        assertEquals('the release commit\'s first parent is the released commit', sourceCommit, git('rev-parse', 'v0.1.0^{commit}^1'))
        run(repository, 'git', 'merge-base', '--is-ancestor', 'v0.1.0', 'releases')
        List<String> released = git('ls-tree', '-r', '--name-only', 'v0.1.0').readLines()
        List<String> source = git('ls-tree', '-r', '--name-only', sourceCommit).readLines()
        assertTrue('every source file is in the release', released.containsAll(source))
        List<String> added = released - source
        assertEquals([CLASSPATH_DIGEST, 'release.json', JAR_DIGEST, JAR, 'resources/org/withawsrole/cli/linux-x86_64/awsrole'].sort(), added.sort())
        assertEquals('the CLI stays executable', '100755', git('ls-tree', 'v0.1.0', 'resources/org/withawsrole/cli/linux-x86_64/awsrole').tokenize()[0])
        assertFalse('main holds no binaries', source.any { it.endsWith('.jar') || it.endsWith('/awsrole') })
    }

    @Test
    void the_manifest_names_every_artifact_with_its_sha256_and_the_glibc_floor() {
        Map manifest = (Map) new JsonSlurper().parseText(git('show', 'v0.1.0:release.json'))
        assertEquals('0.1.0', manifest.version)
        assertEquals(sourceCommit, manifest.source_commit)
        ((Map<String, String>) manifest.artifacts).each { String path, String sha256 ->
            assertEquals(path, sha256, sha256Hex(blob("v0.1.0:${path}")))
        }
        assertEquals(['linux-x86_64'], ((Map) manifest.platforms).keySet() as List)
        assertEquals('2.17', manifest.platforms['linux-x86_64'].min_glibc)
        assertEquals('2.17', manifest.min_glibc)
        assertEquals(manifest.artifacts[JAR], new String(blob("v0.1.0:${JAR_DIGEST}"), 'US-ASCII').trim())
        ['rustc', 'cargo', 'cargo-zigbuild (PyPI pins)', 'zig', 'java', 'gradle'].each { String tool ->
            assertTrue("${tool} in ${manifest.toolchain}", manifest.toolchain[tool] as boolean)
        }
    }

    /** Built in the clone's directory, the release has this checkout's bytes: the build does not depend on where it runs. */
    @Test
    void the_release_has_the_bytes_of_this_checkout_s_build() {
        String built = new File(PROJECT, JAR_DIGEST).text.trim()
        String released = new String(blob("v0.1.0:${JAR_DIGEST}"), 'US-ASCII').trim()
        assertEquals('the same source commit gives the same jar (commit this checkout\'s changes before running the test)', built, released)
    }

    @Test
    void bad_input_is_refused_with_one_line_and_changes_nothing() {
        String tagsBefore = git('tag', '-l')
        String releasesBefore = git('rev-parse', 'releases')
        assertRefused(release('1.2'), "release: VERSION '1.2' is not a semantic version (MAJOR.MINOR.PATCH")
        assertRefused(release('v1.2.3'), "release: VERSION 'v1.2.3' is not a semantic version")
        assertRefused(release('0.1.0'), 'release: tag v0.1.0 already exists (commit ')
        File stray = new File(repository, 'notes.txt')
        stray.text = 'not committed\n'
        try {
            assertRefused(release('0.9.0'), 'release: the working tree has changes that are not committed (?? notes.txt;')
        } finally {
            stray.delete()
        }
        assertEquals(tagsBefore, git('tag', '-l'))
        assertEquals(releasesBefore, git('rev-parse', 'releases'))
    }

    @Test
    void example_jenkinsfile_pinned_to_the_tag_runs_from_a_fresh_checkout() {
        PipelineRunner runner = runnerOfTheClone()
        BuildResult build = runner.run(EXAMPLE.replace("@Library('withAwsRole') _", "@Library('withAwsRole@v0.1.0') _"))
        assertTrue(build.log, build.success)
        assertTrue(build.log, build.log.contains('Loading library withAwsRole@v0.1.0'))
        assertTrue(build.log, build.log.contains("Checking out ${repository.absolutePath} at v0.1.0 (${git('rev-parse', 'v0.1.0^{commit}')})"))
        assertTrue(build.log, build.log.contains('assumed-role/jenkins-ecr-push-role/'))
        String releasedJar = new String(blob("v0.1.0:${JAR_DIGEST}"), 'US-ASCII').trim()
        assertTrue('the bridge installed is the release\'s', System.properties.containsKey("org.withawsrole.bridge.loader.${releasedJar}".toString()))
    }

    @Test
    void without_a_version_the_default_version_loads() {
        PipelineRunner runner = runnerOfTheClone()
        runner.libraryDefaultVersion = 'v0.1.0'
        BuildResult build = runner.run(EXAMPLE)
        assertTrue(build.log, build.success)
        assertTrue(build.log, build.log.contains('Loading library withAwsRole@v0.1.0'))
        runner.allowVersionOverride = false
        assertFailedWithOneLine(runner.run("@Library('withAwsRole@main') _\necho 'never here'"),
                'Version override not permitted for library withAwsRole: it loads v0.1.0')
    }

    @Test
    void a_ref_that_does_not_exist_fails_with_one_line() {
        assertFailedWithOneLine(runnerOfTheClone().run("@Library('withAwsRole@v9.9.9') _\necho 'never here'"),
                "No version v9.9.9 found for library withAwsRole in ${repository.absolutePath}")
    }

    @Test
    void a_tag_without_this_platform_s_library_fails_with_one_line() {
        tagAltered('v0.1.0-no-linux') { File checkout ->
            rewriteJar(new File(checkout, JAR)) { String name -> !name.startsWith('native/linux-x86_64/') }
            String digest = sha256Hex(new File(checkout, JAR).bytes)
            new File(checkout, JAR_DIGEST).text = digest + '\n'
            new File(checkout, CLASSPATH_DIGEST).text = digest + '\n'
        }
        BuildResult build = runnerOfTheClone().run(EXAMPLE.replace("@Library('withAwsRole')", "@Library('withAwsRole@v0.1.0-no-linux')"))
        assertFailedWithOneLine(build, "withAwsRole('ecr-push'): withAwsRole: no native library for platform linux-x86_64: ")
    }

    @Test
    void a_jar_that_does_not_match_its_sha256_fails_with_one_line() {
        // The sha256 files name another jar than the one beside them. (Altering the jar and keeping its
        // digest would test nothing here: a bridge with that digest may already be installed in this JVM,
        // and then the step rightly uses it and never reads the jar.)
        tagAltered('v0.1.0-altered-jar') { File checkout ->
            String other = sha256Hex('another jar'.bytes)
            new File(checkout, JAR_DIGEST).text = other + '\n'
            new File(checkout, CLASSPATH_DIGEST).text = other + '\n'
        }
        BuildResult build = runnerOfTheClone().run(EXAMPLE.replace("@Library('withAwsRole')", "@Library('withAwsRole@v0.1.0-altered-jar')"))
        assertFailedWithOneLine(build, "withAwsRole: ${JAR.substring('resources/'.length())} has sha256 ")
        assertTrue(build.log, build.log.contains('so this copy of the library is damaged or altered: load a release tag'))
    }

    /**
     * Two versions with different jars, builds pinned to each running at the same time in this one
     * JVM: each gets its own bridge classloader and native instance, both succeed; the second was
     * tagged and loaded while the first was in use, with no restart.
     */
    @Test
    void builds_pinned_to_two_releases_run_at_once_in_one_jvm() {
        PipelineRunner older = runnerOfTheClone()
        assertTrue(older.run(EXAMPLE.replace("@Library('withAwsRole')", "@Library('withAwsRole@v0.1.0')")).success)
        // A second version whose jar differs: its purposes config gains a comment, in the tree and in
        // the jar (the bridge packs it), with the digests that go with it: the tree a release of that
        // change has, made from v0.1.0's without building the same native library again.
        tagAltered('v0.2.0') { File checkout ->
            String comment = '\n# release 0.2.0\n'
            new File(checkout, 'resources/org/withawsrole/purposes.toml').append(comment)
            rewriteJar(new File(checkout, JAR), { String name -> true }) { String name, byte[] bytes ->
                name == 'org/withawsrole/bridge/purposes.toml' ? (new String(bytes, 'UTF-8') + comment).getBytes('UTF-8') : bytes
            }
            String digest = sha256Hex(new File(checkout, JAR).bytes)
            new File(checkout, JAR_DIGEST).text = digest + '\n'
            new File(checkout, CLASSPATH_DIGEST).text = digest + '\n'
        }
        String first = new String(blob("v0.1.0:${JAR_DIGEST}"), 'US-ASCII').trim()
        String newer = new String(blob("v0.2.0:${JAR_DIGEST}"), 'US-ASCII').trim()
        assertNotEquals(first, newer)

        String loop = '''
            node {
                for (int i = 0; i < 5; i++) {
                    withAwsRole('ecr-push') {
                        sh 'set +x; aws sts get-caller-identity --query Arn --output text'
                    }
                }
            }
        '''
        CyclicBarrier start = new CyclicBarrier(2)
        ExecutorService pool = Executors.newFixedThreadPool(2)
        try {
            List<Future<BuildResult>> builds = ['v0.1.0', 'v0.2.0'].collect { String tag ->
                pool.submit({
                    PipelineRunner runner = runnerOfTheClone()
                    runner.jobName = "pinned-${tag}"
                    start.await()
                    runner.run("@Library('withAwsRole@${tag}') _\n${loop}")
                } as Callable<BuildResult>)
            }
            builds.each { Future<BuildResult> build ->
                BuildResult result = build.get()
                assertTrue(result.log, result.success)
                assertEquals('five blocks, each with its own bridge\'s log line:\n' + result.log, 5, result.log.count('withAwsRole: ecr-push as '))
            }
        } finally {
            pool.shutdownNow()
        }
        ClassLoader firstLoader = (ClassLoader) System.properties["org.withawsrole.bridge.loader.${first}".toString()]
        ClassLoader secondLoader = (ClassLoader) System.properties["org.withawsrole.bridge.loader.${newer}".toString()]
        assertNotNull(firstLoader)
        assertNotNull(secondLoader)
        assertNotSame(firstLoader, secondLoader)
        Class firstNative = firstLoader.loadClass('org.withawsrole.bridge.internal.Native')
        Class secondNative = secondLoader.loadClass('org.withawsrole.bridge.internal.Native')
        assertNotSame('each release has its own native declarations, so its own native instance', firstNative, secondNative)
        [firstLoader, secondLoader].each { ClassLoader loader ->
            Class broker = loader.loadClass('org.withawsrole.bridge.AwsRoleBroker')
            Map<String, String> stats = (Map<String, String>) broker.getMethod('stats').invoke(broker.getMethod('shared').invoke(null))
            assertTrue("each broker fetched for its own builds: ${stats}", (stats.vault_calls as long) >= 1)
        }
    }

    // ---- helpers

    private static PipelineRunner runnerOfTheClone() {
        PipelineRunner runner = new PipelineRunner(new File(temporary.root, 'unused-working-tree'))
        runner.workspace = new File(temporary.root, 'workspace')
        runner.libraryRepository = repository.absolutePath
        runner.libraryCheckouts = new File(temporary.root, 'checkouts')
        return runner
    }

    /** A tag made from v0.1.0 with the checkout changed by `change`, as a damaged or hand-made tag would be. */
    private static void tagAltered(String tag, Closure change) {
        File checkout = new File(temporary.root, tag)
        run(repository, 'git', 'worktree', 'add', '--quiet', '--detach', checkout.absolutePath, 'v0.1.0')
        try {
            change(checkout)
            run(checkout, 'git', '-c', 'user.name=test', '-c', 'user.email=test@example.invalid', 'commit', '--quiet', '-am', tag)
            run(checkout, 'git', 'tag', tag)
        } finally {
            run(repository, 'git', 'worktree', 'remove', '--force', checkout.absolutePath)
        }
    }

    /** The jar with the entries `keep` keeps, each entry's bytes as `change` gives them (unchanged by default). */
    private static void rewriteJar(File jar, Closure<Boolean> keep, Closure<byte[]> change = { String name, byte[] bytes -> bytes }) {
        File rewritten = new File(jar.parentFile, 'rewritten.jar')
        new ZipFile(jar).withCloseable { ZipFile original ->
            rewritten.withOutputStream { OutputStream out ->
                ZipOutputStream zip = new ZipOutputStream(out)
                original.entries().each { ZipEntry entry ->
                    if (keep(entry.name)) {
                        zip.putNextEntry(new ZipEntry(entry.name))
                        zip << change(entry.name, original.getInputStream(entry).bytes)
                        zip.closeEntry()
                    }
                }
                zip.finish()
            }
        }
        jar.bytes = rewritten.bytes
        rewritten.delete()
    }

    private static Map release(String version) {
        Map<String, String> environment = [CARGO_TARGET_DIR: new File(PROJECT, 'target').absolutePath]
        return runCapturing(repository, environment, 'scripts/release', version)
    }

    private static void assertRefused(Map result, String expectedStart) {
        assertEquals(result.output, 2, result.exitCode)
        List<String> lines = ((String) result.output).readLines()
        assertEquals(result.output, 1, lines.size())
        assertTrue(result.output, lines[0].startsWith(expectedStart))
    }

    private static String git(String... args) {
        return run(repository, (['git'] + (args as List)) as String[]).trim()
    }

    private static byte[] blob(String object) {
        Process process = new ProcessBuilder('git', 'cat-file', 'blob', object).directory(repository).start()
        byte[] bytes = process.inputStream.bytes
        assertEquals(object, 0, process.waitFor())
        return bytes
    }

    private static String run(File directory, String... command) {
        Map result = runCapturing(directory, [:], command)
        assertEquals("${command.join(' ')}: ${result.output}".toString(), 0, result.exitCode)
        return result.output
    }

    private static Map runCapturing(File directory, Map<String, String> environment, String... command) {
        ProcessBuilder builder = new ProcessBuilder(command).directory(directory).redirectErrorStream(true)
        builder.environment().putAll(environment)
        builder.redirectInput(ProcessBuilder.Redirect.from(new File('/dev/null')))
        Process process = builder.start()
        String output = process.inputStream.getText('UTF-8')
        return [exitCode: process.waitFor(), output: output]
    }

    private static String sha256Hex(byte[] bytes) {
        return MessageDigest.getInstance('SHA-256').digest(bytes).collect { String.format('%02x', it & 0xff) }.join('')
    }
}
