package org.withawsrole.replay

import java.util.concurrent.ConcurrentHashMap

/**
 * The Stop button of a running build. Jenkins aborts a build by stopping each pipeline thread with
 * FlowInterruptedException(ABORTED): a thread inside a step (sh, sleep, timeout's body waiting) has
 * that step stopped at once; a thread running library code (a @NonCPS method, a native call) is
 * stopped when it reaches its next step, never inside that code. The runner stands for a
 * pipeline thread with a Java thread: the abort interrupts each one, and the runner's steps (sh,
 * sleep, parallel, timeout) end with ABORTED; code that is not a step sees the interruption only
 * if it blocks interruptibly, which library code must not rely on (AwsRoleStep waits for Vault in
 * slices with a sleep step between them).
 *
 * <pre>
 * Thread build = Thread.start { result = runner.run(jenkinsfile) }
 * runner.abortRunningBuild()
 * </pre>
 */
class BuildAbort {
    private final Set<Thread> threads = ConcurrentHashMap.newKeySet()
    private volatile boolean requested

    /** The calling thread runs pipeline code of this build until leave(). */
    void enter() {
        threads.add(Thread.currentThread())
        if (requested) {
            Thread.currentThread().interrupt()
        }
    }

    void leave() {
        threads.remove(Thread.currentThread())
    }

    /** Stops every pipeline thread of the build, as the Stop button does. */
    void abort() {
        requested = true
        threads.each { Thread thread -> thread.interrupt() }
    }

    boolean isRequested() {
        return requested
    }
}
