package org.withawsrole.replay

/**
 * A step or global the Jenkinsfile calls that neither Jenkins' basic steps here, the libraries nor a
 * stand-in provide. An Error, as Jenkins' NoSuchMethodError is, so `catch (Exception e)` in a
 * Jenkinsfile does not swallow it; the build prints the message and how to stand the step in,
 * never a stack trace.
 */
class UnknownStep extends Error {
    UnknownStep(String message) {
        super(message)
    }

    static UnknownStep method(String name, Collection<String> steps, Collection<String> globals) {
        return new UnknownStep("No such DSL method '${name}' found among steps ${steps} or globals ${globals}\n" +
                StepStandIns.howToStandIn(name))
    }

    /** A MissingPropertyException, as in Jenkins (a Jenkinsfile may catch it), with the hint. */
    static MissingPropertyException property(String name) {
        return new MissingPropertyException("No such property: ${name} for class: WorkflowScript\n" + StepStandIns.howToStandIn(name))
    }
}
