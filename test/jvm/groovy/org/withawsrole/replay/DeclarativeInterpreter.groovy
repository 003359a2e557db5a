package org.withawsrole.replay

import org.withawsrole.replay.DeclarativeModel.Agent
import org.withawsrole.replay.DeclarativeModel.Condition
import org.withawsrole.replay.DeclarativeModel.Options
import org.withawsrole.replay.DeclarativeModel.Root
import org.withawsrole.replay.DeclarativeModel.Stage
import org.withawsrole.replay.DeclarativeModel.When

import java.util.regex.Pattern

/**
 * Runs a DeclarativeModel the way pipeline-model-definition's ModelInterpreter does, through this
 * runner's own steps (node, stage, withEnv, withCredentials, timeout, parallel):
 *
 * - the whole build, post actions included, runs in the top-level agent, pipeline environment and
 *   options; a stage runs in its options, then its agent, then `when` (unless beforeAgent /
 *   beforeOptions), then its credentials and environment, so a stage's environment is not seen by
 *   its own `when`;
 * - after a failure later stages are skipped ("Stage "x" skipped due to earlier failure(s)") and
 *   the first error fails the build once post actions have run;
 * - post conditions run in Jenkins' order (always, aborted, success, unsuccessful, unstable,
 *   failure, notBuilt, cleanup) against the result so far combined with the stage's error, with
 *   currentBuild.result showing that result inside the block.
 *
 * Agents of every kind run on this machine, in the runner's workspace; the log says so once.
 */
class DeclarativeInterpreter {
    private static final String SKIPPED_BY_WHEN = 'Stage "%s" skipped due to when conditional'
    private static final String SKIPPED_BY_FAILURE = 'Stage "%s" skipped due to earlier failure(s)'
    private static final String SKIPPED_BY_UNSTABLE = 'Stage "%s" skipped due to earlier stage(s) marking the build as unstable'

    final PipelineScript script
    final PipelineRun run
    final Root root
    private boolean agentNoticeLogged

    DeclarativeInterpreter(PipelineScript script, Root root) {
        this.script = script
        this.run = script.pipelineRun
        this.root = root
    }

    void execute() {
        Throwable firstError = null
        boolean postBuildRun = false
        try {
            inAgent(root.agent) {
                withEnvironment(root.environment) {
                    inOptions(root.options) {
                        firstError = null // a retry option runs all of this again
                        withTools(root.tools) {
                            firstError = evaluateSequentialStages(root.stages, null, null, null)
                            postBuildRun = true
                            firstError = postBuildAfter(firstError)
                        }
                        if (firstError != null) {
                            throw firstError
                        }
                    }
                }
            }
        } catch (Throwable e) {
            if (firstError == null) {
                firstError = e
            }
        } finally {
            if (!postBuildRun) {
                firstError = postBuildAfter(firstError)
            }
        }
        if (firstError != null) {
            throw firstError
        }
    }

    /** Runs the post section after `firstError` (null: none); returns the build's first error, post's own if none came before. */
    private Throwable postBuildAfter(Throwable firstError) {
        try {
            executePostBuild(firstError)
        } catch (Throwable e) {
            return firstError ?: e
        }
        return firstError
    }

    private Throwable evaluateSequentialStages(List<Stage> stages, Throwable firstError, Stage parent, String skippedReason) {
        try {
            stages.each { Stage stage ->
                try {
                    evaluateStage(stage, firstError, parent, skippedReason)
                } catch (Throwable e) {
                    if (firstError == null) {
                        firstError = e
                    }
                }
            }
        } finally {
            if (skippedReason == null && parent != null && satisfied(parent.post, firstError)) {
                log('Post stage')
                firstError = runPostConditions(parent.post, firstError)
            }
        }
        return firstError
    }

    /** skippedReason: a format with one %s for the stage name, or null. */
    private void evaluateStage(Stage stage, Throwable firstError, Stage parent, String skippedReason) {
        script.stage(stage.name) {
            try {
                if (skippedReason != null) {
                    skipStage(stage, firstError, skippedReason)
                } else if (firstError != null) {
                    skippedReason = SKIPPED_BY_FAILURE
                    skipStage(stage, firstError, skippedReason)
                } else if (run.currentBuild.result == 'UNSTABLE' && root.options?.declarative?.containsKey('skipStagesAfterUnstable')) {
                    skippedReason = SKIPPED_BY_UNSTABLE
                    skipStage(stage, firstError, skippedReason)
                } else {
                    Boolean passed = stage.when == null ? Boolean.TRUE : null
                    withCell(stage) {
                        if (stage.when?.beforeOptions) {
                            passed = whenPasses(stage.when)
                        }
                        if (passed != Boolean.FALSE) {
                            inOptions(stage.options) {
                                if (passed == null && stage.when.beforeInput) {
                                    passed = whenPasses(stage.when)
                                }
                                if (passed != Boolean.FALSE) {
                                    withInput(stage.input) {
                                        evaluateStageInInput(stage, passed) { Boolean after -> passed = after }
                                    }
                                }
                            }
                        }
                    }
                    if (passed == Boolean.FALSE) {
                        skippedReason = SKIPPED_BY_WHEN
                        skipStage(stage, firstError, skippedReason)
                    }
                }
            } catch (Throwable e) {
                if (firstError == null) {
                    firstError = e
                }
            } finally {
                if (skippedReason == null && stage.parallel != null && satisfied(stage.post, firstError)) {
                    log('Post stage')
                    firstError = runPostConditions(stage.post, firstError)
                }
            }
            if (firstError != null) {
                throw firstError
            }
        }
    }

    /** The part of a stage inside its options and input: agent, when, credentials, environment, tools, the steps. */
    private void evaluateStageInInput(Stage stage, Boolean passedSoFar, Closure<Void> record) {
        Boolean passed = passedSoFar
        try {
            if (stage.parallel != null) {
                passed = passed ?: whenPasses(stage.when)
                if (passed) {
                    withEnvironment(stage.environment) {
                        script.parallel(parallelStages(stage, null))
                    }
                }
                return
            }
            if (passed == null && stage.when.beforeAgent) {
                passed = whenPasses(stage.when)
            }
            if (passed == Boolean.FALSE) {
                return
            }
            inAgent(stage.agent) {
                passed = passed ?: whenPasses(stage.when)
                if (passed) {
                    withEnvironment(stage.environment) {
                        withTools(stage.tools) {
                            if (stage.stages != null) {
                                Throwable nested = evaluateSequentialStages(stage.stages, null, stage, null)
                                if (nested != null) {
                                    throw nested
                                }
                            } else {
                                executeSingleStage(stage)
                            }
                        }
                    }
                }
            }
        } finally {
            record.call(passed)
        }
    }

    /** A matrix cell's axis values are its environment before anything else of the stage is evaluated. */
    private void withCell(Stage stage, Closure body) {
        if (stage.cell == null) {
            body.call()
        } else {
            script.withEnv(stage.cell.collect { String name, String value -> "${name}=${value}".toString() }, body)
        }
    }

    /** A stage's input: asked before its agent; its parameters become the stage's environment variables. */
    private void withInput(DeclarativeModel.Input input, Closure body) {
        if (input == null) {
            body.call()
            return
        }
        Map<String, Object> settings = new LinkedHashMap<String, Object>(input.settings)
        settings.parameters = input.parameters
        Object submitted = script.input(settings)
        List<String> variables = []
        if (submitted instanceof Map) {
            variables = ((Map) submitted).collect { name, value -> "${name}=${value}".toString() }
        } else if (input.settings.submitterParameter != null) {
            variables = ["${input.settings.submitterParameter}=${submitted}".toString()]
        } else if (input.parameters.size() == 1) {
            variables = ["${input.parameters[0].name}=${submitted}".toString()]
        }
        if (variables.isEmpty()) {
            body.call()
        } else {
            script.withEnv(variables, body)
        }
    }

    /**
     * tools { maven 'M3' }: each installation's bin/ goes first on PATH, as Jenkins' tools block does; the
     * replay knows the installations REPLAY_TOOLS names, and fails in Jenkins' words for others.
     */
    private void withTools(Map<String, String> tools, Closure body) {
        if (!tools) {
            body.call()
            return
        }
        List<String> paths = tools.collect { String type, String name ->
            String home = script.tool(name: name, type: type)
            "PATH+${type.toUpperCase()}=${home}/bin".toString()
        }
        script.withEnv(paths, body)
    }

    private Map<String, Object> parallelStages(Stage stage, String skippedReason) {
        Map<String, Object> branches = new LinkedHashMap<String, Object>()
        stage.parallel.each { Stage branch ->
            branches[branch.name] = { evaluateStage(branch, null, stage, skippedReason) }
        }
        if (skippedReason == null && (stage.failFast || root.options?.parallelsAlwaysFailFast)) {
            branches.failFast = true
        }
        return branches
    }

    private void skipStage(Stage stage, Throwable firstError, String reason) {
        log(String.format(reason, stage.name))
        if (stage.parallel != null) {
            script.parallel(parallelStages(stage, reason))
        } else if (stage.stages != null) {
            evaluateSequentialStages(stage.stages, firstError, stage, reason)
        }
    }

    private void executeSingleStage(Stage stage) {
        Throwable stageError = null
        try {
            runBody(stage.steps)
        } catch (Throwable e) {
            stageError = e
        } finally {
            if (satisfied(stage.post, stageError)) {
                log('Post stage')
                stageError = runPostConditions(stage.post, stageError)
            }
        }
        if (stageError != null) {
            throw stageError
        }
    }

    private void executePostBuild(Throwable stageError) {
        if (satisfied(root.post, stageError)) {
            script.stage('Declarative: Post Actions') {
                stageError = runPostConditions(root.post, stageError)
            }
        }
        if (stageError != null) {
            throw stageError
        }
    }

    private Throwable runPostConditions(Map<String, Closure> post, Throwable stageError) {
        CurrentBuild build = run.currentBuild
        DeclarativeModel.POST_CONDITIONS.each { String condition ->
            String original = build.result
            String logical = combinedResult(stageError)
            try {
                Closure body = post[condition]
                if (body != null && meets(condition, logical)) {
                    build.setRawResult(logical)
                    runBody(body)
                }
            } catch (Throwable e) {
                log("Error when executing ${condition} post condition:")
                // An unknown step says what to do, not where (UnknownStep); other errors show their trace as in Jenkins.
                log(e instanceof PipelineFailure ? "${e.class.name}: ${e.message}" :
                        e instanceof UnknownStep ? "java.lang.NoSuchMethodError: ${e.message}" : stackTrace(e))
                if (stageError == null) {
                    stageError = e
                }
            } finally {
                if (build.currentResult == logical && logical != original) {
                    build.setRawResult(original)
                }
            }
        }
        return stageError
    }

    private boolean satisfied(Map<String, Closure> post, Throwable error) {
        if (post == null) {
            return false
        }
        String logical = combinedResult(error)
        return post.keySet().any { String condition -> meets(condition, logical) }
    }

    private String combinedResult(Throwable error) {
        String fromError = error == null ? 'SUCCESS' : error instanceof PipelineFailure ? ((PipelineFailure) error).result : 'FAILURE'
        return CurrentBuild.worse(run.currentBuild.result ?: 'SUCCESS', fromError)
    }

    private boolean meets(String condition, String result) {
        String previous = run.previousResult
        switch (condition) {
            case 'changed': return previous == null || result != previous
            case 'fixed': return previous != null && result == 'SUCCESS' && previous in ['FAILURE', 'UNSTABLE']
            case 'regression': return previous != null && CurrentBuild.RESULTS.indexOf(result) > CurrentBuild.RESULTS.indexOf(previous)
            case 'always': return true
            case 'cleanup': return true
            case 'success': return result == 'SUCCESS'
            case 'unsuccessful': return result != 'SUCCESS'
            case 'unstable': return result == 'UNSTABLE'
            case 'failure': return result == 'FAILURE'
            case 'aborted': return result == 'ABORTED'
            case 'notBuilt': return result == 'NOT_BUILT'
            default: throw new IllegalStateException("post condition ${condition}")
        }
    }

    // ---- sections

    private def runBody(Closure body) {
        body.delegate = script
        body.resolveStrategy = Closure.DELEGATE_FIRST
        return body.call()
    }

    private void inAgent(Agent agent, Closure body) {
        if (agent == null || agent.type == 'none') {
            body.call()
            return
        }
        if (!agentNoticeLogged) {
            agentNoticeLogged = true
            log("[replay] agent ${agent.describe()}: every agent runs on this machine, in ${run.workspace} (no labels, no containers)")
        }
        String label = agent.type == 'label' ? String.valueOf(agent.argument) :
                agent.argument instanceof Map && ((Map) agent.argument).label ? String.valueOf(((Map) agent.argument).label) : ''
        script.node(label) {
            checkoutScm(agent.is(root.agent))
            body.call()
        }
    }

    /**
     * Declarative checks out `scm` as soon as an agent starts (the top-level one in a stage of its own),
     * unless skipDefaultCheckout; a job without an SCM (an inline script) has nothing to check out.
     */
    private void checkoutScm(boolean topLevel) {
        Map<String, Object> declarative = root.options?.declarative ?: [:]
        if (run.runner.scm == null || declarative.skipDefaultCheckout) {
            return
        }
        Closure checkout = {
            if (declarative.checkoutToSubdirectory) {
                script.dir(String.valueOf(declarative.checkoutToSubdirectory)) { script.checkout(run.runner.scm) }
            } else {
                script.checkout(run.runner.scm)
            }
        }
        if (topLevel) {
            script.stage('Declarative: Checkout SCM', checkout)
        } else {
            checkout.call()
        }
    }

    private void inOptions(Options options, Closure body) {
        List<String> wrappers = options == null ? [] : new ArrayList<String>(options.wrappers.keySet())
        inWrappers(options, wrappers, body)
    }

    private void inWrappers(Options options, List<String> remaining, Closure body) {
        if (remaining.isEmpty()) {
            body.call()
            return
        }
        String wrapper = remaining.remove(0)
        Object arguments = options.wrappers[wrapper]
        // As Jenkins' recursiveWrappers: the option is the step of the same name around the rest.
        Closure rest = { inWrappers(options, new ArrayList<String>(remaining), body) }
        if (arguments == null) {
            script.invokeMethod(wrapper, [rest] as Object[])
        } else {
            script.invokeMethod(wrapper, [arguments, rest] as Object[])
        }
    }

    /**
     * The environment directive: entries evaluated in order in the current block, each seeing the
     * ones before it; credentials('id') binds through the runner's store (masked), like
     * withCredentials, then the block runs with all of them.
     */
    private void withEnvironment(Closure environment, Closure body) {
        if (environment == null) {
            body.call()
            return
        }
        StepContext outer = run.currentContext()
        EnvironmentDirective evaluated = new EnvironmentDirective(run, outer)
        run.within(outer) {
            environment.delegate = evaluated
            environment.resolveStrategy = Closure.DELEGATE_FIRST
            environment.call()
        }
        StepContext inner = evaluated.context()
        if (evaluated.credentialVariables()) {
            outer.log('[Pipeline] withCredentials')
            outer.log("Masking supported pattern matches of ${evaluated.credentialVariables().collect { '$' + it }.join(' or ')}")
        }
        outer.log('[Pipeline] withEnv')
        inner.log('[Pipeline] {')
        try {
            run.within(inner, body)
        } finally {
            inner.log('[Pipeline] }')
            outer.log('[Pipeline] // withEnv')
            if (evaluated.credentialVariables()) {
                outer.log('[Pipeline] // withCredentials')
            }
        }
    }

    private boolean whenPasses(When when) {
        return when == null || passes(when.condition)
    }

    private boolean passes(Condition condition) {
        switch (condition.type) {
            case 'allOf': return condition.children.every { passes(it) }
            case 'anyOf': return condition.children.any { passes(it) }
            case 'not': return !passes(condition.children[0])
            case 'expression': return runBody(condition.expression) as boolean
            case 'branch': return compare(condition.argument, run.currentContext().environment().BRANCH_NAME)
            case 'tag': return compare(condition.argument, run.currentContext().environment().TAG_NAME)
            case 'buildingTag': return run.currentContext().environment().TAG_NAME != null
            case 'changeRequest': return run.currentContext().environment().CHANGE_ID != null
            case 'triggeredBy':
                String cause = String.valueOf(condition.argument instanceof Map ? ((Map) condition.argument).cause : condition.argument)
                return cause in ['UserIdCause', 'hudson.model.Cause$UserIdCause']
            case 'equals':
                Map settings = (Map) condition.argument
                Object actual = settings.actual instanceof Closure ? runBody((Closure) settings.actual) : settings.actual
                return String.valueOf(settings.expected) == String.valueOf(actual)
            case 'environment':
                Map settings = (Map) condition.argument
                String actual = run.currentContext().environment()[String.valueOf(settings.name)]
                String expected = String.valueOf(settings.value)
                return actual != null && (settings.ignoreCase ? actual.equalsIgnoreCase(expected) : actual == expected)
            default: throw new IllegalStateException("when condition ${condition.type}")
        }
    }

    /** branch/tag: 'pattern' or pattern: '...', comparator: 'GLOB' (default), 'REGEXP' or 'EQUALS'. */
    private static boolean compare(Object argument, String actual) {
        if (actual == null) {
            return false
        }
        Map settings = argument instanceof Map ? (Map) argument : [pattern: argument]
        String pattern = String.valueOf(settings.pattern)
        switch (String.valueOf(settings.comparator ?: 'GLOB')) {
            case 'REGEXP': return actual ==~ pattern
            case 'EQUALS': return actual == pattern
            default: return glob(pattern).matcher(actual).matches()
        }
    }

    /** Ant-style pattern as `when { branch }` compares by default: * within a path segment, ** across. */
    static Pattern glob(String pattern) {
        StringBuilder regex = new StringBuilder()
        for (int i = 0; i < pattern.length(); i++) {
            char c = pattern.charAt(i)
            if (c == '*' as char && i + 1 < pattern.length() && pattern.charAt(i + 1) == '*' as char) {
                regex.append('.*')
                i++
            } else if (c == '*' as char) {
                regex.append('[^/]*')
            } else if (c == '?' as char) {
                regex.append('[^/]')
            } else {
                regex.append(Pattern.quote(String.valueOf(c)))
            }
        }
        return Pattern.compile(regex.toString())
    }

    private void log(String line) {
        run.currentContext().log(line)
    }

    private static String stackTrace(Throwable e) {
        StringWriter trace = new StringWriter()
        e.printStackTrace(new PrintWriter(trace))
        return trace.toString().trim()
    }
}
