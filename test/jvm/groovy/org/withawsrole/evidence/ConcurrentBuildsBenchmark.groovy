package org.withawsrole.evidence

import groovy.json.JsonOutput
import org.junit.Assume
import org.junit.BeforeClass
import org.junit.Rule
import org.junit.Test
import org.withawsrole.ControllerSettings
import org.withawsrole.World
import org.withawsrole.replay.BuildResult

import static org.junit.Assert.*

/**
 * A benchmark, not a test (make bench-load runs it; `gradle test` skips it): single-flight under
 * the concurrency a controller has. N builds run at once, each on its own executor thread with the
 * library compiled in its own classloader, lined up so that their first withAwsRole steps ask
 * together on a cold cache (no credentials, no Vault login); each build then asks again (warm).
 * Per row: what the world's front saw (STS requests, credentials issued, AppRole logins) and each
 * build's time from asking to its block's body. For comparison, one build whose N parallel
 * branches ask (they take turns on the build's CPS VM thread), and N builds that share one cache
 * key, which builds on a controller never do (the session name names the build). Results:
 * build/evidence/concurrent-builds.md (copied into docs/benchmarks.md, Load).
 */
class ConcurrentBuildsBenchmark {
    static final List<Integer> SIZES = [1, 16, 64]
    /**
     * Parallel branches of one build: up to 256. Builds at once stop at 64: each holds the library
     * compiled in its own classloader, and 64 compiling at once used about 200 MiB of the test
     * JVM's fixed 256 MiB heap (build.gradle), where a controller running that many builds has a
     * heap sized for them.
     */
    static final List<Integer> BRANCHES = [16, 64, 256]
    static final String LIBRARY = "@Library('withAwsRole') _\n"
    static final String LINE_UP = 'org.withawsrole.evidence.ConcurrentBuilds.startTogether()\n'
    /** The three purposes of the mixed rows: 'ecr-push', and 'deploy' with either role it may assume. */
    static final List<String> MIXED = ["'ecr-push'", "'deploy'",
                                       "'deploy', roleArn: 'arn:aws:iam::123456789012:role/jenkins-deploy-readonly-role'"]

    @Rule
    public ControllerSettings controller = new ControllerSettings()

    @BeforeClass
    static void benchmarkOnly() {
        Assume.assumeTrue('a benchmark: make bench-load runs it', System.getenv('WITHAWSROLE_BENCHMARK') == '1')
        World.require()
    }

    /** A build's two blocks: the first asks on a cold cache, the second for the same credentials again. */
    static String twoBlocks(String arguments) {
        return LIBRARY + LINE_UP + """
            long asked = System.nanoTime()
            withAwsRole(${arguments}) { echo "cold \${(System.nanoTime() - asked).intdiv(1000)} us" }
            asked = System.nanoTime()
            withAwsRole(${arguments}) { echo "warm \${(System.nanoTime() - asked).intdiv(1000)} us" }
        """
    }

    /** One build whose `branches` parallel branches each run the two blocks; times from the parallel step's start. */
    static String branches(int branches) {
        return LIBRARY + LINE_UP + """
            Map branches = [:]
            long begun = System.nanoTime()
            for (int i = 0; i < ${branches}; i++) {
                branches["b\${i}".toString()] = {
                    withAwsRole('ecr-push') { echo "cold \${(System.nanoTime() - begun).intdiv(1000)} us" }
                    long asked = System.nanoTime()
                    withAwsRole('ecr-push') { echo "warm \${(System.nanoTime() - asked).intdiv(1000)} us" }
                }
            }
            parallel branches
        """
    }

    @Test
    void builds_at_once_on_a_cold_cache() {
        controller.set('WITHAWSROLE_CONFIG', World.purposesFile().path)
        controller.set('VAULT_TOKEN', null) // the controller logs in with the world's AppRole: logins count
        String run = Long.toString(System.currentTimeMillis() % 100000)
        // Warm-up, not reported: installs the bridge and gives the JIT the runner's and library's code.
        measure('warm-up', 4, (1..4).collect { [job: "cb-${run}-warm-${it}".toString(), number: 1] }, twoBlocks("'ecr-push'"))
        List<Map> rows = []
        SIZES.each { int n ->
            rows << measure('builds at once, one purpose', n,
                    (1..n).collect { [job: "cb-${run}-one-${n}-${it}".toString(), number: 1] }, twoBlocks("'ecr-push'"))
            write(rows) // each row as it comes: a long run that fails later keeps what it measured
        }
        // Fewer rows where the answer does not depend on N: every build compiles the library, and
        // the build machine's 2 cores are shared.
        rows << measure('builds at once, three purposes', 16, (1..16).collect {
            [job: "cb-${run}-mix-${it}".toString(), number: 1, jenkinsfile: twoBlocks(MIXED[it % MIXED.size()])]
        }, null)
        BRANCHES.each { int n ->
            rows << measure('one build, parallel branches', n, [[job: "cb-${run}-branches-${n}".toString(), number: 1]], branches(n))
        }
        rows << measure('builds sharing one key (never on a controller)', 16,
                (1..16).collect { [job: "cb-${run}-shared".toString(), number: 1] }, twoBlocks("'ecr-push'"))
        write(rows)
    }

    static Map measure(String scenario, int n, List<Map> builds, String jenkinsfile) {
        boolean warmUp = scenario == 'warm-up' // before it, no build has installed the bridge
        if (!warmUp) {
            ConcurrentBuilds.clearCache()
        }
        World.resetCounters()
        Map<String, String> before = warmUp ? [vault_calls: '0', cache_hits: '0'] : ConcurrentBuilds.brokerStats()
        List<BuildResult> results = ConcurrentBuilds.run(builds, jenkinsfile)
        Map counters = World.counters()
        Map<String, String> after = ConcurrentBuilds.brokerStats()
        List<BuildResult> failed = results.findAll { !it.success }
        assertTrue("${scenario}, ${n}: ${failed.size()} failed; first:\n${failed ? failed[0].log : ''}", failed.isEmpty())
        List<Long> cold = results.collectMany { ConcurrentBuilds.microseconds(it, 'cold') }.sort()
        List<Long> warm = results.collectMany { ConcurrentBuilds.microseconds(it, 'warm') }.sort()
        assertEquals(n, cold.size())
        assertEquals(n, warm.size())
        Map row = [
                scenario   : scenario,
                n          : n,
                builds     : builds.size(),
                stsRequests: counters.sts_total as long,
                stsIssued  : counters.sts_issued as long,
                logins     : (((Map) counters.proxied)?.get('auth/approle/login') ?: 0) as long,
                vaultCalls : (after.vault_calls as long) - (before.vault_calls as long),
                hits       : (after.cache_hits as long) - (before.cache_hits as long),
                coldP50ms  : percentile(cold, 0.50),
                coldP90ms  : percentile(cold, 0.90),
                coldMaxms  : cold.last() / 1000d,
                warmP50ms  : percentile(warm, 0.50),
                warmMaxms  : warm.last() / 1000d,
        ]
        println "concurrent builds: ${row}"
        return row
    }

    static double percentile(List<Long> sortedMicros, double p) {
        return sortedMicros[Math.min(sortedMicros.size() - 1, (int) (sortedMicros.size() * p))] / 1000d
    }

    static void write(List<Map> rows) {
        File dir = new File(System.getProperty('withawsrole.library.dir', '.'), 'build/evidence')
        dir.mkdirs()
        StringBuilder md = new StringBuilder()
        md << '| what runs at once | N | STS requests at Vault | credentials issued | AppRole logins | ' +
                'cold: p50 / p90 / max to credentials | warm: p50 / max |\n'
        md << '|---|---:|---:|---:|---:|---|---|\n'
        rows.each { r ->
            md << "| ${r.scenario} | ${r.n} | ${r.stsRequests} | ${r.stsIssued} | ${r.logins} | " +
                    "${ms(r.coldP50ms)} / ${ms(r.coldP90ms)} / ${ms(r.coldMaxms)} | ${ms(r.warmP50ms)} / ${ms(r.warmMaxms)} |\n"
        }
        new File(dir, 'concurrent-builds.md').text = md.toString()
        new File(dir, 'concurrent-builds.json').text = JsonOutput.prettyPrint(JsonOutput.toJson(rows))
    }

    static String ms(Object value) {
        double v = value as double
        return v < 10 ? String.format('%.2f ms', v) : String.format('%.0f ms', v)
    }
}
