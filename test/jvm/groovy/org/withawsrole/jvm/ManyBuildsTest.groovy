package org.withawsrole.jvm

import org.junit.Test
import org.withawsrole.World
import org.withawsrole.WorldTestBase
import org.withawsrole.replay.BuildResult
import org.withawsrole.replay.PipelineRunner

import java.lang.ref.WeakReference

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertLogLacks
import static org.withawsrole.BuildAssertions.assertLogShows

/**
 * A controller's life in one JVM: many builds and Replays, each compiling src/ and vars/ in its own
 * GroovyClassLoader, all sharing one native library, one runtime and one credential cache; and no
 * build leaves anything behind (memory, threads, its classloader).
 *
 * The cache key holds the STS session name, jenkins-<job>-<build>: for every build to ask for the
 * one shared key, each run is build #1 of the job `many-builds`, compiled afresh.
 */
class ManyBuildsTest extends WorldTestBase {
    static final int WARM_UP = 20
    static final int BUILDS = 50

    static final String JENKINSFILE = '''
        @Library('withAwsRole') _
        withAwsRole('ecr-push') {
            sh 'set +x; test -n "$AWS_ACCESS_KEY_ID" && test -n "$AWS_SESSION_TOKEN"'
        }
    '''
    /** What a Replay runs: the same job's script, edited in the Replay page. */
    static final String REPLAYED = JENKINSFILE + '''
        echo 'replayed with an edit'
    '''

    @Test
    void fifty_builds_and_replays_share_one_native_instance_and_leave_nothing_behind() {
        File workspace = File.createTempDir()
        List<WeakReference<ClassLoader>> buildLoaders = []

        // Warm-up: the first build installs the bridge, loads the library, starts the runtime.
        WARM_UP.times { runAndCheck(workspace, it % 2 == 0 ? JENKINSFILE : REPLAYED, buildLoaders) }
        ProcSelf.settle()
        Snapshot before = Snapshot.take()

        BUILDS.times { runAndCheck(workspace, it % 2 == 0 ? JENKINSFILE : REPLAYED, buildLoaders) }
        // The runner's own Groovy call sites remember the last build's classes (Jenkins' do too,
        // until the next build): one more build, left out of the check, moves that on.
        runAndCheck(workspace, JENKINSFILE, [])
        ProcSelf.awaitCollected(buildLoaders, 30)
        List<Integer> retained = buildLoaders.findIndexValues { it.get() != null }.collect { it as int }
        println "many builds: classloaders still reachable after ${buildLoaders.size()} builds: ${retained}"
        // Build 0 too, the one that installed the bridge: the bridge's URLClassLoader keeps the
        // AccessControlContext it was created in, so NativeBridge.install creates it where no build
        // class is on the stack. A loader per build is the leak that kills controllers.
        assertEquals('the classloaders of finished builds, the installing one included, can be collected',
                [], retained)
        ProcSelf.settle()
        Snapshot after = Snapshot.take()
        println "many builds: before ${before}; after ${BUILDS} more: ${after}"

        List<Object> bridgeLoaders = System.properties.keySet().findAll { it.toString().startsWith('org.withawsrole.bridge.loader.') }.toList()
        assertEquals('one bridge classloader in the JVM', 1, bridgeLoaders.size())
        Map<String, String> stats = brokerStats((ClassLoader) System.properties.get(bridgeLoaders[0]))
        println "many builds: broker ${stats}; world: ${World.stsCalls('aws/ecr-push')} STS calls for aws/ecr-push"
        assertEquals("one Vault STS call for the shared key across every build: ${stats}", '1', stats.vault_calls)
        assertEquals("${stats}", '1', stats.cache_misses)
        assertEquals("${stats}", "${WARM_UP + BUILDS}".toString(), stats.cache_hits)
        // The world's counters are global: exact only while no other suite uses the world.
        assertTrue(World.stsCalls('aws/ecr-push') >= 1)
        assertEquals('one copy of the native library mapped', 1, ProcSelf.mappedFiles('libwithawsrole_jni').size())
        assertEquals("runtime threads: ${after.threadNames}", before.runtimeThreads, after.runtimeThreads)
        assertTrue("runtime threads: ${after.threadNames}", after.runtimeThreads in 1..4)
        // JIT compiler threads come and go with load (-XX:+UseDynamicNumberOfCompilerThreads).
        assertTrue("threads: ${before.threadNames} -> ${after.threadNames}", after.threads <= before.threads + 3)
        assertTrue("loaded classes ${before.classes} -> ${after.classes}: build classes unload",
                after.classes <= before.classes + 500)
        assertTrue("heap after GC ${before.heapMb} -> ${after.heapMb} MiB", after.heapMb - before.heapMb < 16)
        // A build classloader kept alive adds ~36 classes and ~0.5 MiB of metaspace per build
        // (measured: +1,815 classes, +24 MiB non-heap over 50 builds); without a leak: +31, +4 MiB.
        assertTrue("non-heap committed ${before.nonHeapCommittedMb} -> ${after.nonHeapCommittedMb} MiB",
                after.nonHeapCommittedMb - before.nonHeapCommittedMb < 16)
        assertTrue("VmRSS ${before.rssMb} -> ${after.rssMb} MiB", after.rssMb - before.rssMb < 30)
    }

    /** The shared broker's counters, reached as a build reaches them: through the bridge classloader. */
    private static Map<String, String> brokerStats(ClassLoader bridge) {
        Class broker = Class.forName('org.withawsrole.bridge.AwsRoleBroker', true, bridge)
        return (Map<String, String>) broker.getMethod('stats').invoke(broker.getMethod('shared').invoke(null))
    }

    /** Builds run so far: the first is the cache miss, every later one a hit. */
    private static int buildsRun = 0

    private static void runAndCheck(File workspace, String jenkinsfile, List<WeakReference<ClassLoader>> loaders) {
        PipelineRunner runner = new PipelineRunner(new File(System.getProperty('withawsrole.library.dir', '.')), 1)
        runner.workspace = workspace
        runner.jobName = 'many-builds'
        BuildResult build = runner.run(jenkinsfile)
        boolean first = buildsRun++ == 0
        assertTrue("${build}\n${build.log}", build.success)
        assertLogShows(build, 'assumed-role/jenkins-ecr-push-role/jenkins-many-builds-1,')
        assertLogLacks(build, 'UnsatisfiedLinkError')
        assertTrue(build.log, first ? build.log.contains('(cache miss)') : build.log.contains('(cache hit)'))
        loaders << new WeakReference<ClassLoader>(build.libraryClassLoader)
        // What Jenkins does after every build (workflow-cps cleanUpHeap): Groovy 2.4's own caches
        // let go of a build's classes only under memory pressure otherwise.
        JenkinsHeapCleanup.afterBuild(build.libraryClassLoader)
    }

    static class Snapshot {
        long rssMb
        long heapMb
        long heapCommittedMb
        long nonHeapCommittedMb
        int classes
        int threads
        int runtimeThreads
        List<String> threadNames

        static Snapshot take() {
            List<String> names = ProcSelf.threadNames()
            def memory = java.lang.management.ManagementFactory.memoryMXBean
            return new Snapshot(rssMb: ProcSelf.residentKb() >> 10, heapMb: ProcSelf.heapUsedBytes() >> 20,
                    heapCommittedMb: memory.heapMemoryUsage.committed >> 20, nonHeapCommittedMb: memory.nonHeapMemoryUsage.committed >> 20,
                    classes: ProcSelf.loadedClasses(), threads: names.size(),
                    runtimeThreads: names.count { it.startsWith(ProcSelf.RUNTIME_THREAD_PREFIX) } as int,
                    threadNames: names.sort())
        }

        @Override
        String toString() {
            return "VmRSS ${rssMb} MiB, heap ${heapMb} MiB (committed ${heapCommittedMb}), non-heap committed ${nonHeapCommittedMb} MiB, ${classes} classes, ${threads} threads (${runtimeThreads} runtime)"
        }
    }
}
