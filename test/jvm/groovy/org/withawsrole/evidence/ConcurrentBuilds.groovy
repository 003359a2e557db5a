package org.withawsrole.evidence

import org.withawsrole.replay.BuildResult
import org.withawsrole.replay.PipelineRunner

import java.util.concurrent.Callable
import java.util.concurrent.CyclicBarrier
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import java.util.concurrent.Future
import java.util.concurrent.TimeUnit

/**
 * Builds running at once on one controller, which is where a controller's concurrency comes from:
 * a build's `parallel` branches take turns on its one CPS VM thread (CpsVmThreadTest), while each
 * build runs on an executor thread of its own, with the library compiled in its own classloader,
 * and every build shares the one JVM-wide bridge, native library and credential cache.
 *
 * A Jenkinsfile lines its build up with the others by calling
 * `org.withawsrole.evidence.ConcurrentBuilds.startTogether()` (the build classloader's parent is
 * the test classpath): once every build of the batch has compiled and reached it, all go on at
 * the same moment, so their first withAwsRole steps ask together.
 */
class ConcurrentBuilds {
    /** How long a build waits for the others at startTogether(), and how long a batch may take. */
    static final long TIMEOUT_SECONDS = 600L

    private static volatile CyclicBarrier lineUp

    /** Called from a Jenkinsfile: waits until every build of the running batch got here. */
    static void startTogether() {
        lineUp.await(TIMEOUT_SECONDS, TimeUnit.SECONDS)
    }

    /**
     * Runs one build per entry of `builds` ([job: name, number: build number, and its own
     * jenkinsfile: if not `jenkinsfile`]) at once, each on a thread of its own (an executor) with a
     * runner of its own; returns the results in the same order. Builds that share job and number share a cache key (the STS
     * session name is jenkins-<job>-<number>), which two builds on a real controller never do.
     */
    static List<BuildResult> run(List<Map> builds, String jenkinsfile = null) {
        File libraryDirectory = new File(System.getProperty('withawsrole.library.dir', '.'))
        lineUp = new CyclicBarrier(builds.size())
        ExecutorService executors = Executors.newFixedThreadPool(builds.size())
        try {
            List<Future<BuildResult>> running = builds.collect { Map build ->
                executors.submit({
                    PipelineRunner runner = new PipelineRunner(libraryDirectory, build.number as int)
                    runner.jobName = build.job
                    return runner.run((String) (build.jenkinsfile ?: jenkinsfile))
                } as Callable<BuildResult>)
            }
            return running.collect { it.get(TIMEOUT_SECONDS, TimeUnit.SECONDS) }
        } finally {
            executors.shutdownNow()
            executors.awaitTermination(10, TimeUnit.SECONDS)
            lineUp = null
        }
    }

    /** The JVM-wide broker's calls, reached as a build reaches them: through the bridge's classloader. */
    static Object broker(String method) {
        List<Object> loaders = System.properties.keySet().findAll { it.toString().startsWith('org.withawsrole.bridge.loader.') }.toList()
        if (loaders.size() != 1) {
            throw new IllegalStateException("expected one installed bridge, found ${loaders}; run a build first")
        }
        Class broker = Class.forName('org.withawsrole.bridge.AwsRoleBroker', true, (ClassLoader) System.properties.get(loaders[0]))
        Object shared = broker.getMethod('shared').invoke(null)
        return broker.getMethod(method).invoke(shared)
    }

    /** A cold cache: no credentials and no Vault login held (AwsRoleBroker.clearCache). */
    static void clearCache() {
        broker('clearCache')
    }

    static Map<String, String> brokerStats() {
        return (Map<String, String>) broker('stats')
    }

    /** The microseconds a build's log reports for `label` ("<label> <µs> us" lines the Jenkinsfile echoes). */
    static List<Long> microseconds(BuildResult build, String label) {
        return (build.log =~ /${label} (\d+) us/).collect { (it[1] as String) as long }
    }
}
