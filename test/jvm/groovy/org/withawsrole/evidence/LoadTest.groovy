package org.withawsrole.evidence

import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import org.junit.After
import org.junit.Test
import org.withawsrole.World
import org.withawsrole.WorldTestBase
import org.withawsrole.bridge.AwsRoleBroker
import org.withawsrole.bridge.PermissionDeniedException

import java.util.concurrent.Callable
import java.util.concurrent.CountDownLatch
import java.util.concurrent.ExecutorService
import java.util.concurrent.Executors
import java.util.concurrent.Future
import java.util.concurrent.TimeUnit

import static org.junit.Assert.*

/**
 * Load: 1,000 broker calls per round from 64 threads over 20 keys (18 that succeed: ecr-push and
 * deploy with either ARN, each asked by its own build and so its own session name; 2 that Vault's
 * policy refuses: forbidden, listed in the world's purposes config, the controller's here), with
 * 10% of the world's STS answers a 503. Ten rounds, the cache cleared between rounds, one JVM:
 * every call ends as expected, Vault issues exactly one set of credentials per successful key and
 * round, extra Vault requests are the injected faults (each one retried), and resident memory and
 * the thread count stay flat. Results: build/evidence/load.md (copied into docs/benchmarks.md, Load).
 */
class LoadTest extends WorldTestBase {
    static final int CALLS = 1000
    static final int THREADS = 64
    static final int ROUNDS = 10
    static final double FAULT_RATIO = 0.1

    @After
    void clearFaults() {
        World.resetCounters()
    }

    /** The 20 keys: request maps, the job whose build 1 asks, and whether Vault should say yes. */
    static List<Map> keys() {
        String run = Long.toString(System.currentTimeMillis() % 100000)
        List<Map> keys = []
        10.times { i -> keys << [request: [purpose: 'ecr-push'], job: "load-${run}-ecr-${i}".toString(), ok: true] }
        ['jenkins-deploy-role', 'jenkins-deploy-readonly-role'].each { role ->
            4.times { i ->
                keys << [request: [purpose: 'deploy', role_arn: "arn:aws:iam::123456789012:role/${role}".toString()],
                         job: "load-${run}-${role.length()}-${i}".toString(), ok: true]
            }
        }
        2.times { i -> keys << [request: [purpose: 'forbidden'], job: "load-${run}-forbidden-${i}".toString(), ok: false] }
        return keys
    }

    static Map<String, String> credentialsFor(AwsRoleBroker broker, Map key) {
        return World.asBuild((String) key.job, 1) { broker.credentials((Map<String, String>) key.request) }
    }

    static void fault(Map spec) {
        HttpURLConnection c = (HttpURLConnection) new URL("${System.getenv('WORLD_CONTROL_URL')}/faults").openConnection()
        c.requestMethod = 'POST'
        c.doOutput = true
        c.outputStream.withStream { it.write(JsonOutput.toJson(spec).getBytes('UTF-8')) }
        assertEquals(200, c.responseCode)
    }

    static long residentKb() {
        String line = new File('/proc/self/status').readLines().find { it.startsWith('VmRSS:') }
        return line.replaceAll(/[^0-9]/, '') as long
    }

    static int threads() {
        return new File('/proc/self/task').list().length
    }

    @Test
    void a_thousand_calls_from_64_threads_over_20_keys_with_10_percent_faults() {
        AwsRoleBroker broker = AwsRoleBroker.shared()
        List<Map> keys = keys()
        controller.set('WITHAWSROLE_CONFIG', World.purposesFile().path)
        credentialsFor(broker, keys[0]) // load the library, start the runtime
        List<Map> rows = []
        ExecutorService pool = Executors.newFixedThreadPool(THREADS)
        try {
            for (int round = 0; round <= ROUNDS; round++) { // round 0 warms up, not reported
                broker.clearCache()
                World.resetCounters()
                fault([path: '^aws/sts/', status: 503, ratio: FAULT_RATIO])
                Map<String, String> before = broker.stats()
                CountDownLatch start = new CountDownLatch(1)
                List<Future<String>> futures = []
                List<Long> latenciesUs = Collections.synchronizedList([])
                for (int i = 0; i < CALLS; i++) {
                    Map key = keys[i % keys.size()]
                    futures << pool.submit({
                        start.await()
                        long t0 = System.nanoTime()
                        try {
                            credentialsFor(broker, key)
                            return key.ok ? 'ok' : 'unexpected success'
                        } catch (PermissionDeniedException e) {
                            return key.ok ? "unexpected ${e.class.simpleName}: ${e.message}".toString() : 'ok'
                        } catch (Exception e) {
                            return "unexpected ${e.class.simpleName}: ${e.message}".toString()
                        } finally {
                            latenciesUs << (System.nanoTime() - t0).intdiv(1000L)
                        }
                    } as Callable<String>)
                }
                long t0 = System.nanoTime()
                start.countDown()
                List<String> outcomes = futures.collect { it.get(120, TimeUnit.SECONDS) }
                double seconds = (System.nanoTime() - t0) / 1e9d
                Map counters = World.counters()
                System.gc() // RSS after a collection: the JVM heap's garbage is not a leak
                Map<String, String> after = broker.stats()
                List<String> unexpected = outcomes.findAll { it != 'ok' }
                List<Long> sorted = new ArrayList<Long>(latenciesUs).sort()
                Map row = [
                        round        : round,
                        calls        : CALLS,
                        unexpected   : unexpected.size(),
                        seconds      : seconds,
                        stsRequests  : counters.sts_total as long,
                        stsIssued    : counters.sts_issued as long,
                        faults       : counters.faults_applied as long,
                        vaultCalls   : (after.vault_calls as long) - (before.vault_calls as long),
                        retries      : (after.retries as long) - (before.retries as long),
                        hits         : (after.cache_hits as long) - (before.cache_hits as long),
                        p50ms        : sorted[(int) (sorted.size() * 0.50)] / 1000d,
                        p99ms        : sorted[(int) (sorted.size() * 0.99)] / 1000d,
                        rssKb        : residentKb(),
                        threads      : threads(),
                ]
                assertTrue("round ${round}: ${unexpected.take(3)}", unexpected.isEmpty())
                // Single-flight: exactly one issued set of credentials per successful key.
                assertEquals("round ${round} issued", 18L, row.stsIssued)
                // Every other request at the world is a fault (then retried) or a policy refusal.
                long refused = row.stsRequests - row.stsIssued - row.faults
                row.refused = refused
                assertTrue("round ${round}: ${refused} refused requests", refused >= 2 && refused <= 200)
                if (round > 0) {
                    rows << row
                }
            }
        } finally {
            pool.shutdownNow()
            pool.awaitTermination(10, TimeUnit.SECONDS)
        }
        long rssFirst = rows.first().rssKb as long
        long rssLast = rows.last().rssKb as long
        int threadsFirst = rows.first().threads as int
        int threadsLast = rows.last().threads as int
        write(rows)
        assertTrue("threads grew ${threadsFirst} -> ${threadsLast}", threadsLast <= threadsFirst)
        assertTrue("RSS grew ${rssFirst} -> ${rssLast} KiB", rssLast - rssFirst < 32 * 1024)
    }

    static void write(List<Map> rows) {
        File dir = new File(System.getProperty('withawsrole.library.dir', '.'), 'build/evidence')
        dir.mkdirs()
        StringBuilder md = new StringBuilder()
        md << "| round | calls | unexpected outcomes | wall time | p50 / p99 per call | Vault STS requests | issued | injected 503s | refused (forbidden) | broker Vault calls / retries / hits | RSS | threads |\n"
        md << "|---:|---:|---:|---:|---|---:|---:|---:|---:|---|---:|---:|\n"
        rows.each { r ->
            md << "| ${r.round} | ${r.calls} | ${r.unexpected} | ${String.format('%.2f', r.seconds)} s | " +
                    "${String.format('%.2f', r.p50ms)} / ${String.format('%.1f', r.p99ms)} ms | ${r.stsRequests} | ${r.stsIssued} | " +
                    "${r.faults} | ${r.refused} | ${r.vaultCalls} / ${r.retries} / ${r.hits} | ${(r.rssKb as long).intdiv(1024)} MiB | ${r.threads} |\n"
        }
        new File(dir, 'load.md').text = md.toString()
        new File(dir, 'load.json').text = JsonOutput.prettyPrint(JsonOutput.toJson(rows))
    }
}
