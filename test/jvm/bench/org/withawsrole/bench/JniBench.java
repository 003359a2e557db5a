package org.withawsrole.bench;

import java.io.File;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import org.withawsrole.bridge.AwsRoleBroker;
import org.withawsrole.bridge.internal.Native;
import org.withawsrole.bridge.internal.NativeLoader;
import org.withawsrole.bridge.internal.ReviewedRequest;

/**
 * Cache hits through JNI, as a Jenkins build makes them: {@code AwsRoleBroker.credentials} on a warm
 * key, with 1 and 8 threads, in one run; plus the parts of that call measured alone, to show where
 * the time goes. Writes JSON for scripts/bench-report.
 *
 * <p>The request is the step's ({@code purpose}); the bridge adds the library's purposes config
 * packed into its jar, as for a build, so the native-only phase sends the same packed text. No
 * build runs here, so the session name is jenkins-ecr-push.
 *
 * <p>Each measured call is timed with System.nanoTime() around it (about 20 ns of the figures);
 * throughput is all calls of all threads over the wall time of the phase.
 *
 *   JniBench <output.json> [seconds per phase] [phase ids to run, e.g. native:1,full:8 (default: all)]
 */
public final class JniBench {
    private static final int MAX_SAMPLES_PER_THREAD = 4_000_000;

    private JniBench() {
    }

    /** One thing to call in a loop. */
    private interface Op {
        Object call();
    }

    public static void main(String[] args) throws Exception {
        File output = new File(args.length > 0 ? args[0] : "build/bench/jni.json");
        double seconds = args.length > 1 ? Double.parseDouble(args[1]) : 3.0;
        only = args.length > 2 ? java.util.Arrays.asList(args[2].split(",")) : null;

        AwsRoleBroker broker = AwsRoleBroker.shared();
        Map<String, Object> machine = machine();
        final Map<String, String> request = new LinkedHashMap<String, String>();
        request.put("purpose", "ecr-push");
        Map<String, String> first = broker.credentials(request);
        StringBuilder packed = new StringBuilder("purpose\0ecr-push\0");
        ReviewedRequest.appendTo(packed);
        final String packedRequest = packed.toString();
        final String result = Native.Broker_credentialsPacked(packedRequest);
        if (!"hit".equals(broker.credentials(request).get("cache"))) {
            throw new IllegalStateException("the bench key is not cached: " + first.get("cache"));
        }

        List<Map<String, Object>> phases = new ArrayList<Map<String, Object>>();
        Op full = () -> broker.credentials(request);
        Op nativeOnly = () -> Native.Broker_credentialsPacked(packedRequest);
        Op stats = () -> Native.Broker_stats();
        Op version = () -> Native.Library_version();
        Op javaOnly = () -> javaSideOfACall(request, result);
        for (int threads : new int[] {1, 8}) {
            add(phases, run("AwsRoleBroker.credentials(Map), cache hit", "full", full, threads, seconds));
        }
        for (int threads : new int[] {1, 8}) {
            add(phases, run("Native.Broker_credentialsPacked(String): JNI + core, no Map", "native", nativeOnly, threads, seconds));
        }
        add(phases, run("Native.Broker_stats(): JNI returning 10 strings, no request", "stats", stats, 1, seconds));
        add(phases, run("Native.Library_version(): JNI returning 1 string", "version", version, 1, seconds));
        add(phases, run("Java side only: Map -> packed String and packed String (" + resultStrings(result) + " strings) -> Map",
                "java", javaOnly, 1, seconds));

        Map<String, Object> report = new LinkedHashMap<String, Object>();
        report.put("machine", machine);
        report.put("library", NativeLoader.loadedFrom());
        report.put("library_bytes", new File(NativeLoader.loadedFrom()).length());
        report.put("result_strings", resultStrings(result));
        report.put("seconds_per_phase", seconds);
        report.put("phases", phases);
        output.getAbsoluteFile().getParentFile().mkdirs();
        try (PrintWriter out = new PrintWriter(output, "UTF-8")) {
            out.println(json(report, ""));
        }
        System.out.println("bench: wrote " + output);
        System.exit(0);
    }

    private static void add(List<Map<String, Object>> phases, Map<String, Object> phase) {
        if (phase != null) {
            phases.add(phase);
        }
    }

    /** Keys and values in a packed result. */
    private static int resultStrings(String packed) {
        int n = 0;
        for (int i = packed.indexOf('\0'); i >= 0; i = packed.indexOf('\0', i + 1)) {
            n++;
        }
        return n;
    }

    /** What AwsRoleBroker.credentials does in Java around the native call. */
    private static Object javaSideOfACall(Map<String, String> request, String result) {
        StringBuilder packed = new StringBuilder(256);
        for (Map.Entry<String, String> entry : request.entrySet()) {
            if (entry.getKey().indexOf('\0') >= 0 || entry.getValue().indexOf('\0') >= 0) {
                throw new IllegalStateException("NUL in the request");
            }
            packed.append(entry.getKey()).append('\0').append(entry.getValue()).append('\0');
        }
        Map<String, String> map = new LinkedHashMap<String, String>();
        int at = 0;
        while (at < result.length()) {
            int keyEnd = result.indexOf('\0', at);
            int valueEnd = result.indexOf('\0', keyEnd + 1);
            map.put(result.substring(at, keyEnd), result.substring(keyEnd + 1, valueEnd));
            at = valueEnd + 1;
        }
        return java.util.Collections.unmodifiableMap(map).size() + packed.toString().length();
    }

    /** Phases to run ("id:threads"), for profiling one at a time; null for all. */
    private static List<String> only;

    private static Map<String, Object> run(String name, String id, Op op, int threads, double seconds) throws Exception {
        if (only != null && !only.contains(id + ":" + threads)) {
            return null;
        }
        // Warm-up: let the JIT compile the loop and the call path.
        measure(op, threads, Math.min(1.0, seconds / 2));
        Measured m = measure(op, threads, seconds);
        Map<String, Object> phase = new LinkedHashMap<String, Object>();
        phase.put("id", id);
        phase.put("name", name);
        phase.put("threads", threads);
        phase.put("calls", m.samples.length);
        phase.put("seconds", m.seconds);
        phase.put("calls_per_second", Math.round(m.samples.length / m.seconds));
        Arrays.sort(m.samples);
        phase.put("p50_ns", percentile(m.samples, 0.50));
        phase.put("p90_ns", percentile(m.samples, 0.90));
        phase.put("p99_ns", percentile(m.samples, 0.99));
        phase.put("p999_ns", percentile(m.samples, 0.999));
        phase.put("max_ns", m.samples[m.samples.length - 1]);
        System.out.println(String.format(Locale.ROOT, "bench: %-66s %d thread(s): %,9d calls/s  p50 %,7d ns  p99 %,8d ns",
                name, threads, phase.get("calls_per_second"), phase.get("p50_ns"), phase.get("p99_ns")));
        return phase;
    }

    private static final class Measured {
        long[] samples;
        double seconds;
    }

    private static Measured measure(final Op op, int threads, double seconds) throws Exception {
        final long[][] samples = new long[threads][];
        final int[] counts = new int[threads];
        final long durationNanos = (long) (seconds * 1e9);
        final CountDownLatch ready = new CountDownLatch(threads);
        final CountDownLatch go = new CountDownLatch(1);
        final Object[] sink = new Object[threads];
        Thread[] workers = new Thread[threads];
        for (int t = 0; t < threads; t++) {
            final int index = t;
            workers[t] = new Thread(() -> {
                long[] mine = new long[MAX_SAMPLES_PER_THREAD];
                ready.countDown();
                try {
                    go.await();
                } catch (InterruptedException e) {
                    return;
                }
                long end = System.nanoTime() + durationNanos;
                int n = 0;
                Object last = null;
                while (n < mine.length) {
                    long start = System.nanoTime();
                    last = op.call();
                    long stop = System.nanoTime();
                    mine[n++] = stop - start;
                    if (stop >= end) {
                        break;
                    }
                }
                sink[index] = last;
                samples[index] = mine;
                counts[index] = n;
            }, "bench-" + t);
            workers[t].start();
        }
        ready.await();
        long started = System.nanoTime();
        go.countDown();
        for (Thread worker : workers) {
            worker.join(TimeUnit.SECONDS.toMillis((long) seconds + 60));
        }
        double elapsed = (System.nanoTime() - started) / 1e9;
        int total = 0;
        for (int c : counts) {
            total += c;
        }
        long[] all = new long[total];
        int at = 0;
        for (int t = 0; t < threads; t++) {
            System.arraycopy(samples[t], 0, all, at, counts[t]);
            at += counts[t];
        }
        Measured m = new Measured();
        m.samples = all;
        m.seconds = elapsed;
        if (sink.length > 0 && sink[0] == null) {
            throw new IllegalStateException("no call completed");
        }
        return m;
    }

    private static long percentile(long[] sorted, double p) {
        int index = (int) Math.ceil(p * sorted.length) - 1;
        return sorted[Math.max(0, Math.min(sorted.length - 1, index))];
    }

    private static Map<String, Object> machine() throws IOException {
        Map<String, Object> m = new LinkedHashMap<String, Object>();
        m.put("cpu", firstValue("/proc/cpuinfo", "model name"));
        m.put("cpus", Runtime.getRuntime().availableProcessors());
        m.put("memory", firstValue("/proc/meminfo", "MemTotal"));
        m.put("kernel", System.getProperty("os.name") + " " + System.getProperty("os.version") + " " + System.getProperty("os.arch"));
        m.put("java", System.getProperty("java.vm.name") + " " + System.getProperty("java.vm.version"));
        m.put("jvm_args", String.join(" ", java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments()));
        m.put("native_version", Native.Library_version());
        // Other work on the machine skews a 2-CPU benchmark: say how busy it was at the start.
        String[] load = new String(java.nio.file.Files.readAllBytes(new File("/proc/loadavg").toPath()),
                StandardCharsets.US_ASCII).trim().split(" ");
        m.put("load_average", load[0] + " " + load[1] + " " + load[2]);
        return m;
    }

    private static String firstValue(String file, String key) throws IOException {
        for (String line : java.nio.file.Files.readAllLines(new File(file).toPath(), StandardCharsets.UTF_8)) {
            if (line.startsWith(key)) {
                return line.substring(line.indexOf(':') + 1).trim();
            }
        }
        return "?";
    }

    @SuppressWarnings("unchecked")
    private static String json(Object value, String indent) {
        if (value instanceof Map) {
            StringBuilder out = new StringBuilder("{\n");
            String inner = indent + "  ";
            boolean firstEntry = true;
            for (Map.Entry<String, Object> entry : ((Map<String, Object>) value).entrySet()) {
                out.append(firstEntry ? "" : ",\n").append(inner).append(quote(entry.getKey())).append(": ")
                        .append(json(entry.getValue(), inner));
                firstEntry = false;
            }
            return out.append('\n').append(indent).append('}').toString();
        }
        if (value instanceof List) {
            StringBuilder out = new StringBuilder("[\n");
            String inner = indent + "  ";
            List<Object> list = (List<Object>) value;
            for (int i = 0; i < list.size(); i++) {
                out.append(inner).append(json(list.get(i), inner)).append(i + 1 < list.size() ? ",\n" : "\n");
            }
            return out.append(indent).append(']').toString();
        }
        if (value instanceof Number) {
            return value.toString();
        }
        return quote(String.valueOf(value));
    }

    private static String quote(String s) {
        StringBuilder out = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') {
                out.append('\\').append(c);
            } else if (c < 0x20) {
                out.append(String.format("\\u%04x", (int) c));
            } else {
                out.append(c);
            }
        }
        return out.append('"').toString();
    }
}
