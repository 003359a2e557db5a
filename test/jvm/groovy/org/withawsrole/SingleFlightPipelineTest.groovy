package org.withawsrole

import org.junit.After
import org.junit.Before
import org.junit.BeforeClass
import org.junit.Test
import org.withawsrole.evidence.ConcurrentBuilds
import org.withawsrole.replay.BuildResult

import static org.junit.Assert.*

/**
 * Single-flight under the concurrency a controller has: builds at once, each on its own executor
 * thread with the library in its own classloader, and a build's parallel branches taking turns on
 * its one CPS VM thread. Vault (the world's front) answers slowly here, so requests that arrive
 * while a fetch or a login is under way can only share it through the single-flight, not through
 * the cache; the counts are the world's. (Timings: make bench-load, docs/benchmarks.md.)
 */
class SingleFlightPipelineTest extends WorldTestBase {
    static final String LINE_UP = 'org.withawsrole.evidence.ConcurrentBuilds.startTogether()'

    private final List<String> faults = []

    @BeforeClass
    static void world() {
        // Installs the bridge in this JVM, so that each test can empty its cache first.
        ConcurrentBuilds.run([[job: 'single-flight-first', number: 1]], """
            @Library('withAwsRole') _
            ${LINE_UP}
            withAwsRole('ecr-push') { echo 'bridge installed' }
        """)
    }

    @Before
    void coldCache() {
        ConcurrentBuilds.clearCache()
        World.resetCounters()
    }

    @After
    void removeFaults() {
        faults.each { World.deleteFault(it) }
    }

    private void vaultTakes(long millis, String path) {
        faults << World.addFault([path: path, mode: 'delay', delay_ms: millis])
    }

    private static void assertAllSucceeded(List<BuildResult> builds) {
        builds.each { assertTrue("${it}\n${it.log}", it.success) }
    }

    /**
     * Builds that share a cache key share one fetch across their classloaders. On a controller two
     * builds never share a key (the session name is jenkins-<job>-<build>), so every build here is
     * build 1 of one job, as ManyBuildsTest's are; the next test has what a controller does.
     */
    @Test
    void thirty_two_builds_of_one_key_started_together_on_a_cold_cache_make_one_vault_call() {
        vaultTakes(1500, '^aws/sts/')
        List<BuildResult> builds = ConcurrentBuilds.run((1..32).collect { [job: 'single-flight-shared', number: 1] }, """
            @Library('withAwsRole') _
            ${LINE_UP}
            withAwsRole('ecr-push') { echo 'got credentials' }
        """)
        assertAllSucceeded(builds)
        Map counters = World.counters()
        assertEquals("Vault STS requests: ${counters}", 1, counters.sts_total)
        assertEquals("credentials issued: ${counters}", 1, counters.sts_issued)
        assertTrue(builds[0].log, builds[0].log.contains('assumed-role/jenkins-ecr-push-role/jenkins-single-flight-shared-1,'))
    }

    /**
     * What a controller does: builds at once never share credentials (each session name names its
     * build), so each costs one STS call, but they share the controller's one Vault login.
     */
    @Test
    void eight_builds_started_together_make_one_sts_call_each_and_share_one_vault_login() {
        controller.set('VAULT_TOKEN', null) // the world's AppRole logs in instead
        vaultTakes(1500, '^auth/approle/login$')
        List<BuildResult> builds = ConcurrentBuilds.run((1..8).collect { [job: "single-flight-${it}".toString(), number: 7] }, """
            @Library('withAwsRole') _
            ${LINE_UP}
            withAwsRole('ecr-push') { echo 'got credentials' }
        """)
        assertAllSucceeded(builds)
        Map counters = World.counters()
        assertEquals("AppRole logins: ${counters}", 1, ((Map) counters.proxied)['auth/approle/login'])
        assertEquals("credentials issued: ${counters}", 8, counters.sts_issued)
        assertEquals("Vault STS requests: ${counters}", 8, counters.sts_total)
        builds.eachWithIndex { BuildResult build, int i ->
            assertTrue(build.log, build.log.contains("assumed-role/jenkins-ecr-push-role/jenkins-single-flight-${i + 1}-7,"))
        }
    }

    /**
     * A build's parallel branches take turns on its CPS VM thread: a branch waiting for Vault lets
     * the others run at its sleep steps between wait slices, and they join its fetch.
     */
    @Test
    void eight_parallel_branches_of_one_build_asking_while_vault_is_slow_make_one_vault_call() {
        vaultTakes(1500, '^aws/sts/')
        List<BuildResult> builds = ConcurrentBuilds.run([[job: 'single-flight-branches', number: 3]], """
            @Library('withAwsRole') _
            ${LINE_UP}
            Map branches = [:]
            for (int i = 0; i < 8; i++) {
                branches["b\${i}".toString()] = { withAwsRole('ecr-push') { echo 'got credentials' } }
            }
            parallel branches
        """)
        assertAllSucceeded(builds)
        String log = builds[0].log
        Map counters = World.counters()
        assertEquals("Vault STS requests: ${counters}\n${log}", 1, counters.sts_total)
        assertEquals("credentials issued: ${counters}", 1, counters.sts_issued)
        assertEquals(log, 8, log.count('got credentials'))
        // Branches asked while the fetch was under way: those that asked first waited at sleep
        // steps, and the others ran meanwhile (later ones find the credentials in the cache).
        List<String> waited = (0..7).collect { "b${it}".toString() }.findAll { log.contains("[${it}] [Pipeline] sleep") }
        assertTrue("branches that waited for the fetch: ${waited}\n${log}", waited.size() >= 2)
    }
}
