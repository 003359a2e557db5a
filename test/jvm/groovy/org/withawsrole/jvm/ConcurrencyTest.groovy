package org.withawsrole.jvm

import org.junit.Test
import org.withawsrole.World
import org.withawsrole.WorldTestBase
import org.withawsrole.bridge.AwsRoleBroker
import org.withawsrole.bridge.InvalidRequestException
import org.withawsrole.bridge.PermissionDeniedException

import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.ConcurrentLinkedQueue
import java.util.concurrent.CountDownLatch
import java.util.concurrent.TimeUnit
import java.util.concurrent.atomic.AtomicLong

import static org.junit.Assert.*

/**
 * 64 Jenkins threads at once for a bounded time, through JNI into the one native broker: cache
 * hits, cold fetches (each its own job, so its own session), waves where every thread asks for one
 * new session at once (single-flight under load), invalid requests and refused ones. Every answer
 * must be right, nothing may hang, and the runtime must not grow threads.
 */
class ConcurrencyTest extends WorldTestBase {
    static final int THREADS = 64
    static final long RUN_MILLIS = 12_000
    static final long WAVE_MILLIS = 3_000
    static final int COLD_PER_THREAD = 3

    @Test
    void sixty_four_threads_mixing_hits_misses_and_failures_all_get_right_answers() {
        controller.set('WITHAWSROLE_CONFIG', World.purposesFile().path)
        AwsRoleBroker broker = AwsRoleBroker.shared()
        Map<String, String> hot = ofJob(broker, 'ecr-push', 'concurrency-hot')
        int runtimeThreadsBefore = ProcSelf.runtimeThreads()
        Map<String, String> statsBefore = broker.stats()

        Queue<String> problems = new ConcurrentLinkedQueue<String>()
        Map<String, Set<String>> waveKeys = new ConcurrentHashMap<String, Set<String>>()
        Map<String, AtomicLong> waveMisses = new ConcurrentHashMap<String, AtomicLong>()
        Map<String, AtomicLong> counts = ['hit', 'cold', 'wave', 'invalid', 'denied'].collectEntries { [(it): new AtomicLong()] }
        long started = System.nanoTime()
        long end = started + TimeUnit.MILLISECONDS.toNanos(RUN_MILLIS)
        CountDownLatch go = new CountDownLatch(1)
        List<Thread> threads = (0..<THREADS).collect { int n ->
            Thread thread = new Thread({
                go.await()
                int cold = 0
                int lastWave = -1
                long i = 0
                while (System.nanoTime() < end) {
                    i++
                    int wave = (System.nanoTime() - started).intdiv(TimeUnit.MILLISECONDS.toNanos(WAVE_MILLIS)) as int
                    try {
                        if (wave != lastWave) {
                            lastWave = wave
                            String session = "concurrency-wave-${wave}".toString()
                            Map<String, String> c = ofJob(broker, 'ecr-push', session)
                            waveKeys.computeIfAbsent(session) { ConcurrentHashMap.newKeySet() } << c.access_key_id
                            if (c.cache == 'miss') {
                                waveMisses.computeIfAbsent(session) { new AtomicLong() }.incrementAndGet()
                            }
                            counts.wave.incrementAndGet()
                        } else if (i % 500 == 0 && cold < COLD_PER_THREAD) {
                            cold++
                            String session = "concurrency-cold-${n}-${cold}".toString()
                            Map<String, String> c = ofJob(broker, 'ecr-push', session)
                            if (c.cache != 'miss' || !c.arn.endsWith("/jenkins-${session}-1") || c.access_key_id == hot.access_key_id) {
                                problems << "cold ${session}: cache=${c.cache} arn=${c.arn}".toString()
                            }
                            counts.cold.incrementAndGet()
                        } else if (i % 50 == 1) {
                            invalid(broker, i, problems)
                            counts.invalid.incrementAndGet()
                        } else if (i % 2000 == 2) {
                            try {
                                ofJob(broker, 'forbidden', 'concurrency-denied')
                                problems << 'forbidden purpose was allowed'
                            } catch (PermissionDeniedException expected) {
                                counts.denied.incrementAndGet()
                            }
                        } else {
                            Map<String, String> c = ofJob(broker, 'ecr-push', 'concurrency-hot')
                            if (c.cache != 'hit' || c.access_key_id != hot.access_key_id || c.secret_access_key != hot.secret_access_key) {
                                problems << "hot key: cache=${c.cache}, same key: ${c.access_key_id == hot.access_key_id}".toString()
                            }
                            counts.hit.incrementAndGet()
                        }
                    } catch (Throwable e) {
                        problems << "thread ${n}: ${e}".toString()
                    }
                    if (problems.size() > 100) {
                        return
                    }
                }
            } as Runnable, "jenkins-like-${n}")
            thread.start()
            thread
        }
        go.countDown()
        long joinBy = System.currentTimeMillis() + RUN_MILLIS + 60_000
        threads.each { it.join(Math.max(1, joinBy - System.currentTimeMillis())) }
        List<Thread> stuck = threads.findAll { it.alive }
        if (stuck) {
            fail("${stuck.size()} threads did not finish (deadlock?):\n" + stuck.collect { t ->
                "${t.name}\n  " + t.stackTrace.join('\n  ')
            }.join('\n'))
        }
        Map<String, String> statsAfter = broker.stats()
        long seconds = TimeUnit.NANOSECONDS.toSeconds(System.nanoTime() - started)
        println "concurrency: ${counts} in ${seconds} s; broker before ${statsBefore}, after ${statsAfter}; " +
                "runtime threads ${runtimeThreadsBefore} -> ${ProcSelf.runtimeThreads()}"

        assertEquals([], problems.take(20).toList())
        waveKeys.each { String session, Set<String> keys ->
            assertEquals("${session}: every thread got the same credentials", 1, keys.size())
            assertEquals("${session}: one caller loaded them, the rest waited for that load", 1, waveMisses[session]?.get() ?: 0)
        }
        long misses = statsAfter.cache_misses.toLong() - statsBefore.cache_misses.toLong()
        long denied = counts.denied.get()
        // A refused request is a load that failed (not cached): one per single-flight group of callers.
        assertTrue("misses ${misses} = cold ${counts.cold} + waves ${waveKeys.size()} + refused loads (<= ${denied})",
                misses >= counts.cold.get() + waveKeys.size() && misses <= counts.cold.get() + waveKeys.size() + denied)
        assertTrue(counts.hit.get() > 1000)
        assertTrue(counts.cold.get() > 0 && counts.invalid.get() > 0 && denied > 0)
        assertEquals('the runtime did not grow threads', runtimeThreadsBefore, ProcSelf.runtimeThreads())
    }

    /** Credentials for `purpose` asked by build 1 of job `job`: its own session and cache entry, jenkins-<job>-1. */
    private static Map<String, String> ofJob(AwsRoleBroker broker, String purpose, String job) {
        return World.asBuild(job, 1) { broker.credentials([purpose: purpose]) }
    }

    private static void invalid(AwsRoleBroker broker, long i, Queue<String> problems) {
        List<Map<String, String>> invalid = [
                [purpose: 'ecr-push', colour: 'blue'],
                [purpose: '../escape'],
                [purpose: 'ecr-push', ttl: 'a while'],
                [region: 'no-purpose'],
                [purpose: 'ecr-push', vault_addr: 'http://127.0.0.1:1'],
                [purpose: 'ecr-push', job: 'another-job'],
        ]
        Map<String, String> request = invalid[(i.intdiv(50) % invalid.size()) as int]
        try {
            broker.credentials(request)
            problems << "accepted ${request}".toString()
        } catch (InvalidRequestException expected) {
            // right
        }
    }
}
