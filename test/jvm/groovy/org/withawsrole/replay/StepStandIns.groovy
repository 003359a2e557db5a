package org.withawsrole.replay

/**
 * Stand-ins for plugin steps the runner does not have (slackSend, sshagent, docker, ...), so a
 * Jenkinsfile that calls them can still be replayed:
 *
 * - REPLAY_STUB_STEPS=slackSend,sshagent (`noOps`): the step does nothing, runs its block if it has
 *   one and returns null; the log says "[replay] slackSend: stood in, did nothing".
 * - REPLAY_STEPS=<file.groovy> (`file`): each method of the file is a step (`def slackSend(Map args)
 *   { echo "slack: ${args.message}" }`), and a `getName()` method a global (`def getDocker()`). The
 *   file runs like a vars/ script of the build: it can call echo, sh and the other steps. A
 *   `withCredentials` binding `[$class: 'SomeBinding', ...]` of a plugin the runner lacks is stood
 *   in by a method of that simple name (`Map<String, String> SomeBinding(Map binding)`), which
 *   answers variable -> value; withCredentials sets and masks them as its own bindings'.
 */
class StepStandIns {
    static final Object NOT_STOOD_IN = new Object()
    /** withCredentials' name for a binding the REPLAY_STEPS file stands in. */
    static final String BINDING = 'stood-in binding'

    final Set<String> noOps = Collections.synchronizedSet(new LinkedHashSet<String>())
    File file

    static final String HINT = 'The replay runner does not have'

    static String howToStandIn(String name) {
        return "${HINT} '${name}'. Stand it in: REPLAY_STUB_STEPS=${name} (does nothing, runs its " +
                "block), or REPLAY_STEPS=<file.groovy> with `def ${name}(Map args) { ... }` (README, \"Steps the runner does not have\")."
    }

    /** The file's methods for one build, compiled by the build's library classloader; null without a file. */
    PipelineScript compileFor(PipelineRun run) {
        if (file == null) {
            return null
        }
        if (!file.isFile()) {
            throw new PipelineFailure("REPLAY_STEPS names ${file}, which is not a file")
        }
        Class type = run.library.classLoader.parseClass(new GroovyCodeSource(file.getText('UTF-8'), 'ReplaySteps', '/groovy/shell'), false)
        PipelineScript script = (PipelineScript) type.newInstance()
        script.setPipelineRun(run)
        return script
    }

    /** Calls the stand-in for step `name`, or returns NOT_STOOD_IN. */
    Object call(PipelineRun run, String name, Object[] args) {
        PipelineScript standIns = run.standInScript()
        if (standIns != null && standIns.metaClass.respondsTo(standIns, name, args)) {
            return standIns.invokeMethod(name, args)
        }
        if (name in noOps) {
            run.currentContext().log("[Pipeline] ${name}")
            run.currentContext().log("[replay] ${name}: stood in, did nothing")
            Object last = args.length > 0 ? args[args.length - 1] : null
            return last instanceof Closure ? ((Closure) last).call() : null
        }
        return NOT_STOOD_IN
    }

    /** The stand-in for global `name` (a getName() method of the file), or NOT_STOOD_IN. */
    Object global(PipelineRun run, String name) {
        PipelineScript standIns = run.standInScript()
        String getter = 'get' + name.capitalize()
        if (standIns != null && standIns.metaClass.respondsTo(standIns, getter)) {
            return standIns.invokeMethod(getter, [] as Object[])
        }
        return NOT_STOOD_IN
    }

    /** Whether the REPLAY_STEPS file stands in the withCredentials binding `[$class: ..., ...]`. */
    boolean hasBinding(PipelineRun run, Map binding) {
        PipelineScript standIns = run.standInScript()
        return standIns != null && standIns.metaClass.respondsTo(standIns, bindingMethod(binding), [binding] as Object[])
    }

    /** The stood-in binding's variables and their values (variable -> value). */
    Map<String, String> bind(PipelineRun run, Map binding) {
        Map answer = (Map) run.standInScript().invokeMethod(bindingMethod(binding), [binding] as Object[])
        return answer.collectEntries { Object variable, Object value -> [(String.valueOf(variable)): String.valueOf(value)] }
    }

    private static String bindingMethod(Map binding) {
        return String.valueOf(binding['$class']).tokenize('.').last()
    }
}
