package org.jenkinsci.plugins.workflow.job;

/**
 * Stand-in for the Pipeline job type (workflow-job plugin), with only the getter library code
 * uses: {@link #getFullName()}, the job's path through its folders, e.g. {@code team-a/app/main}.
 * Only the replay runner creates these (through {@code CpsThread.enterForReplay}); Jenkins'
 * constructor takes an item group and a name instead.
 */
public final class WorkflowJob {
    private final String fullName;

    WorkflowJob(String fullName) {
        this.fullName = fullName;
    }

    public String getFullName() {
        return fullName;
    }

    @Override
    public String toString() {
        return "WorkflowJob@" + fullName;
    }
}
