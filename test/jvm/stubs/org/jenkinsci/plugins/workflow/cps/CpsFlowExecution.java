package org.jenkinsci.plugins.workflow.cps;

import org.jenkinsci.plugins.workflow.flow.FlowExecutionOwner;

/**
 * Stand-in for workflow-cps' {@code CpsFlowExecution}, one per build, with only
 * {@link #getOwner()}. Created by the replay runner through {@link CpsThread#enterForReplay}.
 */
public final class CpsFlowExecution {
    private final FlowExecutionOwner owner;

    CpsFlowExecution(FlowExecutionOwner owner) {
        this.owner = owner;
    }

    public FlowExecutionOwner getOwner() {
        return owner;
    }
}
