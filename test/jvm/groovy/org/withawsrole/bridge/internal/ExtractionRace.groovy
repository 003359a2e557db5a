package org.withawsrole.bridge.internal

import java.util.concurrent.CyclicBarrier
import java.util.concurrent.TimeUnit

/**
 * One racer in NativeLoaderTest's race between JVMs: in each round, at a wall-clock instant shared
 * by every racing JVM, all threads extract the bridge jar's library into the round's directory at
 * once; each checks that what it got is the whole library. Prints one line per extraction:
 * {@code ok <round> <path>} or {@code error <round> <exception>}.
 *
 *   ExtractionRace <bridge jar> <platform> <root> <start epoch ms> <rounds> <threads> <period ms>
 */
class ExtractionRace {
    static void main(String[] args) {
        File jar = new File(args[0])
        String platform = args[1]
        File root = new File(args[2])
        long start = args[3] as long
        int rounds = args[4] as int
        int threads = args[5] as int
        long period = args[6] as long
        URLClassLoader resources = new URLClassLoader([jar.toURI().toURL()] as URL[], (ClassLoader) null)
        String expected = resources.getResource(NativeLoader.resourcePath(platform) + '.sha256').text.trim()
        List<String> lines = Collections.synchronizedList([])
        CyclicBarrier barrier = new CyclicBarrier(threads)
        List<Thread> racers = (1..threads).collect { int n ->
            Thread.start("racer-${n}") {
                for (int round = 0; round < rounds; round++) {
                    long wait = start + round * period - System.currentTimeMillis()
                    if (wait > 0) {
                        Thread.sleep(wait)
                    }
                    barrier.await(30, TimeUnit.SECONDS)
                    try {
                        def path = NativeLoader.extract(resources, platform, new File(root, "round-${round}").toPath())
                        String actual = NativeLoader.sha256Hex(path)
                        lines << (actual == expected ? "ok ${round} ${path}" : "error ${round} got sha256 ${actual}").toString()
                    } catch (Throwable e) {
                        lines << "error ${round} ${e}".toString()
                    }
                }
            }
        }
        racers*.join()
        lines.each { println it }
        System.exit(lines.any { it.startsWith('error') } ? 1 : 0)
    }
}
