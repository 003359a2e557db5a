package org.jenkinsci.plugins.workflow.job;

import hudson.model.Queue;

/**
 * Stand-in for a Pipeline build (workflow-job plugin), with only the getters library code uses:
 * {@link #getParent()} (its job) and {@link #getNumber()}. Values never change during the build,
 * whatever the Jenkinsfile does to {@code env}.
 */
public final class WorkflowRun implements Queue.Executable {
    private final WorkflowJob parent;
    private final int number;

    private WorkflowRun(WorkflowJob parent, int number) {
        this.parent = parent;
        this.number = number;
    }

    /**
     * Replay only (Jenkins has no such factory): the run of job {@code jobFullName} numbered
     * {@code number}. Called by {@code CpsThread.enterForReplay}.
     */
    public static WorkflowRun forReplay(String jobFullName, int number) {
        if (jobFullName == null || jobFullName.isEmpty()) {
            throw new IllegalArgumentException("a run needs its job's full name");
        }
        return new WorkflowRun(new WorkflowJob(jobFullName), number);
    }

    public WorkflowJob getParent() {
        return parent;
    }

    public int getNumber() {
        return number;
    }

    @Override
    public String toString() {
        return parent.getFullName() + " #" + number;
    }
}
