package org.withawsrole.replay

import com.cloudbees.plugins.credentials.CredentialsProvider
import org.jenkinsci.plugins.workflow.cps.CpsFlowExecution
import org.jenkinsci.plugins.workflow.cps.CpsThread

import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.Executors
import java.util.concurrent.ScheduledExecutorService
import java.util.concurrent.ThreadFactory

/**
 * One build: its library (compiled for it alone), console log, environment and running blocks.
 *
 * The build's identity reaches library code as in Jenkins, through CpsThread.current() (the
 * stand-in in test/jvm/stubs): set on the thread that runs the Jenkinsfile and on every parallel
 * branch's thread, from runner.jobName and this build's number, never from `env`.
 */
class PipelineRun {
    final PipelineRunner runner
    final int number
    final ConsoleLog console
    LocalLibrary library
    private final Map<String, String> buildVariables = new ConcurrentHashMap<String, String>()
    private final Map<String, PipelineScript> globalVariableInstances = new ConcurrentHashMap<String, PipelineScript>()
    private final ThreadLocal<StepContext> contexts = new ThreadLocal<StepContext>()
    private StepContext rootContext
    /** This build's execution, shared by all its pipeline threads; set while the build runs. */
    private volatile CpsFlowExecution execution
    final EnvironmentVariables env = new EnvironmentVariables(this)
    final CurrentBuild currentBuild = new CurrentBuild()
    /** The `params` global: the runner's parameter values, with Declarative parameters' defaults for the others. */
    private volatile Map<String, Object> parameters = Collections.emptyMap()
    final ScheduledExecutorService timers = Executors.newSingleThreadScheduledExecutor({ Runnable r ->
        Thread thread = new Thread(r, 'replay-timeouts')
        thread.daemon = true
        thread
    } as ThreadFactory)

    PipelineRun(PipelineRunner runner, int number) {
        this.runner = runner
        this.number = number
        this.console = new ConsoleLog(runner.echo)
    }

    BuildResult execute(String jenkinsfile) {
        String result = 'SUCCESS'
        Throwable failure = null
        console.println("Started by user replay (build #${number} of ${runner.jobName})")
        CpsThread.ReplayScope pipelineThread = CpsThread.enterForReplay(runner.jobName, number)
        execution = CpsThread.current().execution
        CredentialsProvider.storeForReplay(execution.owner.executable, runner.credentials)
        try {
            rootContext = new StepContext(this, [:], [], null, runner.workspace, null)
            contexts.set(rootContext)
            currentBuild.putAll([number: number, displayName: "#${number}".toString(), currentResult: 'SUCCESS'])
            parameters = Collections.unmodifiableMap(new LinkedHashMap<String, Object>(runner.parameters))
            runner.libraries().each { String name, File directory ->
                console.println("Loading library ${name}@local from ${directory}")
            }
            library = LocalLibrary.compile(runner.libraries())
            PipelineScript script = (PipelineScript) library.compileJenkinsfile(jenkinsfile).newInstance()
            script.setPipelineRun(this) // not a property assignment: Script sends those to its binding
            console.println('[Pipeline] Start of Pipeline')
            script.run()
        } catch (DeclarativeModel.ValidationFailure e) {
            failure = e
            result = e.result
            console.println(e.message)
        } catch (PipelineFailure e) {
            failure = e
            result = e.result
            console.println("ERROR: ${e.message}")
        } catch (Throwable e) {
            failure = e
            result = 'FAILURE'
            StringWriter trace = new StringWriter()
            e.printStackTrace(new PrintWriter(trace))
            console.println(trace.toString().trim())
        } finally {
            contexts.remove()
            timers.shutdownNow()
            pipelineThread.close()
        }
        // As in Jenkins, a result set during the build (currentBuild.result, unstable) stands unless worse came.
        result = CurrentBuild.worse((String) currentBuild.result ?: 'SUCCESS', result)
        console.println('[Pipeline] End of Pipeline')
        console.println("Finished: ${result}")
        currentBuild.setRawResult(result)
        runner.lastResult = result
        return new BuildResult(number, result, console.text, failure, library?.classLoader)
    }

    StepContext currentContext() {
        StepContext context = contexts.get()
        if (context == null) {
            throw new IllegalStateException("a step ran outside the build's threads (${Thread.currentThread().name})")
        }
        return context
    }

    /** Runs body with context as the current one on this thread. */
    def <T> T within(StepContext context, Closure<T> body) {
        StepContext outer = contexts.get()
        contexts.set(context)
        try {
            return body.call()
        } finally {
            contexts.set(outer)
        }
    }

    /** Makes context the current one on this thread, for the rest of the enclosing within() (environment directives). */
    void replaceContext(StepContext context) {
        if (contexts.get() == null) {
            throw new IllegalStateException("no block to replace on ${Thread.currentThread().name}")
        }
        contexts.set(context)
    }

    Map<String, Object> getParams() {
        return parameters
    }

    /** Declarative `parameters { }`: defaults for the parameters the build was not given, visible from now on. */
    void defineParameters(Map<String, Object> defaults) {
        Map<String, Object> all = new LinkedHashMap<String, Object>(defaults)
        all.putAll(runner.parameters)
        parameters = Collections.unmodifiableMap(all)
    }

    /** Starts a thread that runs body in context (parallel branches). */
    Thread startThread(String name, StepContext context, Closure body) {
        CpsFlowExecution build = execution
        Thread thread = new Thread({
            contexts.set(context)
            CpsThread.ReplayScope pipelineThread = CpsThread.enterForReplay(build)
            try {
                body.call()
            } finally {
                pipelineThread.close()
                contexts.remove()
            }
        } as Runnable, "replay-${number}-${name}")
        thread.start()
        return thread
    }

    /** The controller's environment plus the build's variables (JOB_NAME, BUILD_NUMBER, ...). */
    Map<String, String> buildEnvironment() {
        Map<String, String> environment = new LinkedHashMap<String, String>(runner.baseEnvironment)
        environment.putAll([
                JOB_NAME          : runner.jobName,
                JOB_BASE_NAME     : runner.jobName.tokenize('/').last(),
                BUILD_NUMBER      : String.valueOf(number),
                BUILD_ID          : String.valueOf(number),
                BUILD_DISPLAY_NAME: "#${number}".toString(),
                BUILD_TAG         : "jenkins-${runner.jobName.replace('/', '-')}-${number}".toString(),
                WORKSPACE         : runner.workspace.absolutePath,
        ])
        if (runner.branchName != null) {
            environment.BRANCH_NAME = runner.branchName
        }
        // Parameters are environment variables of the build too (ParametersAction), below env.X = ... ones.
        parameters.each { String name, Object value -> environment[name] = String.valueOf(value) }
        environment.putAll(buildVariables)
        return environment
    }

    void setBuildVariable(String name, String value) {
        if (value == null) {
            buildVariables.remove(name)
        } else {
            buildVariables[name] = value
        }
    }

    /** The instance of vars/<name>.groovy for this build, or null when there is no such global. */
    PipelineScript globalVariable(String name) {
        Class type = library?.globalVariableClass(name)
        if (type == null) {
            return null
        }
        return globalVariableInstances.computeIfAbsent(name) { String ignored ->
            PipelineScript instance = (PipelineScript) type.newInstance()
            instance.setPipelineRun(this)
            instance
        }
    }
}
