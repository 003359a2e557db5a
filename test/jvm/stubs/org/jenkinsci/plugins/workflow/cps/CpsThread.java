package org.jenkinsci.plugins.workflow.cps;

import org.jenkinsci.plugins.workflow.job.WorkflowRun;

/**
 * Stand-in for workflow-cps' {@code CpsThread}: how trusted library code finds the running build,
 * {@code CpsThread.current().execution.owner.executable} (then {@code .parent.fullName} and
 * {@code .number}). As in Jenkins, {@link #current()} answers on the threads that run the build's
 * pipeline code (the main one and every parallel branch) and is null on any other thread.
 *
 * <p>Jenkins API kept: {@link #current()} and {@link #getExecution()}. Everything named
 * {@code ...ForReplay} exists only here, for the replay runner (PipelineRun) to say which build a
 * thread runs; library code must never call it (Jenkins has no such method).
 */
public final class CpsThread {
    private static final ThreadLocal<CpsThread> CURRENT = new ThreadLocal<CpsThread>();

    private final CpsFlowExecution execution;

    private CpsThread(CpsFlowExecution execution) {
        this.execution = execution;
    }

    /** The pipeline thread running on this Java thread, or null when this thread runs no build. */
    public static CpsThread current() {
        return CURRENT.get();
    }

    /** The build's execution; all threads of one build share it. */
    public CpsFlowExecution getExecution() {
        return execution;
    }

    /**
     * Replay only: this Java thread runs the build {@code number} of job {@code jobFullName} (a
     * new execution) until the returned scope is closed, which restores what was current before.
     */
    public static ReplayScope enterForReplay(String jobFullName, int number) {
        return enterForReplay(new CpsFlowExecution(WorkflowRun.forReplay(jobFullName, number)));
    }

    /**
     * Replay only: this Java thread runs another pipeline thread (a parallel branch) of the build
     * whose execution is given, until the returned scope is closed.
     */
    public static ReplayScope enterForReplay(CpsFlowExecution execution) {
        if (execution == null) {
            throw new IllegalArgumentException("a pipeline thread needs its build's execution");
        }
        CpsThread previous = CURRENT.get();
        CURRENT.set(new CpsThread(execution));
        return new ReplayScope(previous);
    }

    /** Replay only: what {@link #enterForReplay} returns; {@link #close()} on the same thread. */
    public static final class ReplayScope implements AutoCloseable {
        private final CpsThread previous;
        private final Thread owner = Thread.currentThread();

        private ReplayScope(CpsThread previous) {
            this.previous = previous;
        }

        @Override
        public void close() {
            if (Thread.currentThread() != owner) {
                throw new IllegalStateException("a replay scope is closed on the thread that entered it");
            }
            if (previous == null) {
                CURRENT.remove();
            } else {
                CURRENT.set(previous);
            }
        }
    }
}
