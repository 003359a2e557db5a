package org.withawsrole.jvm

import java.lang.management.ManagementFactory

/** What this JVM's process looks like from /proc: threads by name, resident memory, mappings. */
class ProcSelf {
    /**
     * The native runtime's threads (rust/core names them "withawsrole-worker"; Linux keeps the
     * first 15 bytes of a thread name).
     */
    static final String RUNTIME_THREAD_PREFIX = 'withawsrole-wor'

    /** Every thread of the process by its kernel name (Java and native threads alike). */
    static List<String> threadNames() {
        File[] tasks = new File('/proc/self/task').listFiles()
        List<String> names = []
        for (File task : tasks) {
            try {
                names << new File(task, 'comm').text.trim()
            } catch (IOException ignored) {
                // the thread ended while we looked
            }
        }
        return names
    }

    static int runtimeThreads() {
        return threadNames().count { it.startsWith(RUNTIME_THREAD_PREFIX) } as int
    }

    /** VmRSS of /proc/self/status, in KiB. */
    static long residentKb() {
        String line = new File('/proc/self/status').readLines().find { it.startsWith('VmRSS:') }
        return line.replaceAll(/[^0-9]/, '') as long
    }

    /** The distinct files mapped whose name contains {@code fragment} (e.g. the native library). */
    static Set<String> mappedFiles(String fragment) {
        return new File('/proc/self/maps').readLines().findAll { it.contains(fragment) }
                .collect { it.substring(it.indexOf('/')) }.toSet()
    }

    static long heapUsedBytes() {
        return ManagementFactory.memoryMXBean.heapMemoryUsage.used
    }

    static int loadedClasses() {
        return ManagementFactory.classLoadingMXBean.loadedClassCount
    }

    /** Full collections until the heap stops shrinking (System.gc() is only a request). */
    static void settle() {
        long before = Long.MAX_VALUE
        for (int i = 0; i < 10; i++) {
            System.gc()
            Thread.sleep(50)
            long used = heapUsedBytes()
            if (used >= before - 64 * 1024) {
                return
            }
            before = used
        }
    }

    /** True once every reference is cleared, collecting in between; false after {@code seconds}. */
    static boolean awaitCollected(Collection<? extends java.lang.ref.Reference> references, int seconds) {
        long end = System.nanoTime() + seconds * 1_000_000_000L
        while (System.nanoTime() < end) {
            if (references.every { it.get() == null }) {
                return true
            }
            System.gc()
            Thread.sleep(100)
        }
        return references.every { it.get() == null }
    }
}
