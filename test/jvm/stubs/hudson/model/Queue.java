package hudson.model;

/**
 * Stand-in for Jenkins core's {@code hudson.model.Queue}: only the nested {@link Executable} type,
 * the declared return type of {@code FlowExecutionOwner.getExecutable()}. Library code reaches the
 * run through it dynamically ({@code owner.executable.parent.fullName}), as it must in Jenkins.
 */
public class Queue {
    private Queue() {
    }

    /** What an executor runs; a pipeline build ({@code WorkflowRun}) is one. */
    public interface Executable {
    }
}
