package org.withawsrole.jvm

import java.util.concurrent.TimeUnit

/**
 * A second JVM with this test JVM's classpath: for what one JVM cannot show about itself (two JVMs
 * racing, an environment variable the native library reads once at start).
 */
class ChildJvm {
    final Process process
    final List<String> command
    private final StringBuffer buffer = new StringBuffer()
    private final Thread reader

    private ChildJvm(List<String> command, Map<String, String> environment) {
        this.command = command
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true)
        builder.environment().putAll(environment)
        process = builder.start()
        reader = Thread.start("child-jvm-output") {
            process.inputStream.eachLine('UTF-8') { String line -> buffer.append(line).append('\n') }
        }
    }

    /** Starts {@code mainClass} with {@code args}; {@code environment} is added to this JVM's. */
    static ChildJvm start(Class mainClass, List<?> args, Map<String, String> environment = [:], List<?> jvmArgs = []) {
        String java = new File(System.getProperty('java.home'), 'bin/java').absolutePath
        List<String> command = ([java, '-Xmx128m', '-XX:+UseSerialGC'] + jvmArgs +
                ['-cp', System.getProperty('java.class.path'), mainClass.name] + args).collect { it.toString() }
        return new ChildJvm(command, environment)
    }

    /** Waits for the exit; a child still running after {@code seconds} is killed and fails the test. */
    int waitFor(long seconds) {
        if (!process.waitFor(seconds, TimeUnit.SECONDS)) {
            process.destroyForcibly()
            reader.join(5000)
            throw new AssertionError("child JVM did not finish within ${seconds} s: ${command.last()}\n${buffer}".toString())
        }
        reader.join(5000)
        return process.exitValue()
    }

    String getOutput() {
        return buffer.toString()
    }
}
