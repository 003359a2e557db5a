package org.withawsrole.replay

/**
 * The `steps` global of Jenkins (CpsScript.STEPS_VAR, the DSL): calls a step by its name even when
 * a library's global variable has the same name, as `steps.ecrLogin()` does in Jenkins. A name that
 * no step of this runner (or of a plugin it has) answers to fails with Jenkins' NoSuchMethodError.
 */
class DslSteps {
    private final PipelineScript script

    DslSteps(PipelineScript script) {
        this.script = script
    }

    @Override
    Object invokeMethod(String name, Object args) {
        if (name in PipelineScript.STEPS) {
            return script.invokeMethod(name, args)
        }
        if (PluginSteps.provides(script.pipelineRun.runner.plugins, name)) {
            return PluginSteps.invoke(script, name, args as Object[])
        }
        throw new NoSuchMethodError("No such DSL method '${name}' found among steps " +
                "${PipelineScript.STEPS + PluginSteps.available(script.pipelineRun.runner.plugins)}")
    }
}
