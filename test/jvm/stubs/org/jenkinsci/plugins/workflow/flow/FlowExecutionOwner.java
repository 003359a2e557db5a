package org.jenkinsci.plugins.workflow.flow;

import hudson.model.Queue;

import java.io.IOException;

/**
 * Stand-in for workflow-api's {@code FlowExecutionOwner}, with only {@link #getExecutable()}:
 * the build a pipeline execution belongs to (a {@code WorkflowRun} for Pipeline jobs). Declared
 * {@code throws IOException} and typed {@code Queue.Executable} as in Jenkins, so code written
 * against this stand-in compiles against the real class too.
 */
public abstract class FlowExecutionOwner {
    public abstract Queue.Executable getExecutable() throws IOException;
}
