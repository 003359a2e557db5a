package org.withawsrole.replay

/** The `env` global: reads the current block's environment, assignments set build-wide variables. */
class EnvironmentVariables extends GroovyObjectSupport {
    private final PipelineRun run

    EnvironmentVariables(PipelineRun run) {
        this.run = run
    }

    @Override
    Object getProperty(String name) {
        return run.currentContext().environment()[name]
    }

    @Override
    void setProperty(String name, Object value) {
        run.setBuildVariable(name, value == null ? null : value.toString())
    }

    Map<String, String> getEnvironment() {
        return run.currentContext().environment()
    }

    @Override
    String toString() {
        return 'env'
    }
}
