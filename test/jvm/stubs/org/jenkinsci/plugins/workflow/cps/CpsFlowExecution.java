package org.jenkinsci.plugins.workflow.cps;

import hudson.model.Queue;
import org.jenkinsci.plugins.workflow.flow.FlowExecutionOwner;
import org.jenkinsci.plugins.workflow.job.WorkflowRun;

/**
 * Stand-in for workflow-cps' {@code CpsFlowExecution}, one per build, with only
 * {@link #getOwner()}, whose executable is the build. Created by the replay runner through
 * {@link CpsThread#enterForReplay}.
 */
public final class CpsFlowExecution {
    private final FlowExecutionOwner owner;

    CpsFlowExecution(final WorkflowRun run) {
        owner = new FlowExecutionOwner() {
            @Override
            public Queue.Executable getExecutable() {
                return run;
            }
        };
    }

    public FlowExecutionOwner getOwner() {
        return owner;
    }
}
