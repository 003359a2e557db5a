package org.withawsrole.replay

/**
 * A failure the pipeline itself reports (error step, sh exit code, timeout), shown as
 * "ERROR: <message>" without a stack trace, like Jenkins' AbortException.
 */
class PipelineFailure extends RuntimeException {
    /** The build result it leads to: FAILURE or ABORTED. */
    final String result

    PipelineFailure(String message, String result = 'FAILURE') {
        super(message)
        this.result = result
    }
}
