package org.withawsrole.replay

import com.cloudbees.plugins.credentials.CredentialsProvider
import org.jenkinsci.plugins.workflow.cps.CpsFlowExecution
import org.jenkinsci.plugins.workflow.cps.CpsThread

import java.nio.file.Files
import java.util.concurrent.ConcurrentHashMap
import java.util.concurrent.Executors
import java.util.concurrent.ScheduledExecutorService
import java.util.concurrent.ThreadFactory
import java.util.concurrent.locks.ReentrantLock

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
    /** Where this build runs: the runner's workspace, or a fresh directory of this build's own. */
    final File workspace
    private final boolean freshWorkspace
    /** The previous build's result (null for the first build): post changed, fixed, regression. */
    final String previousResult
    /** What stash saved: name -> (relative path -> bytes); unstash copies back. */
    final Map<String, Map<String, byte[]>> stashes = new ConcurrentHashMap<String, Map<String, byte[]>>()
    /** The names of the stages entered, in order (skipped ones too, as Jenkins shows them). */
    final List<String> stages = Collections.synchronizedList([])
    /** Files archiveArtifacts recorded, relative to the workspace, in order. */
    final List<String> artifacts = Collections.synchronizedList([])
    /** What junit recorded: one entry per report file ([file:, tests:, failures:, errors:, skipped:]). */
    final List<Map<String, Object>> testReports = Collections.synchronizedList([])
    private final Map<String, String> buildVariables = new ConcurrentHashMap<String, String>()
    private final Map<String, PipelineScript> globalVariableInstances = new ConcurrentHashMap<String, PipelineScript>()
    private final ThreadLocal<StepContext> contexts = new ThreadLocal<StepContext>()
    private StepContext rootContext
    /** This build's execution, shared by all its pipeline threads; set while the build runs. */
    private volatile CpsFlowExecution execution
    /** What Jenkins would save of this build while it runs, and the step records it keeps. */
    final ProgramState program = new ProgramState(this)
    final EnvironmentVariables env = new EnvironmentVariables(this)
    final CurrentBuild currentBuild = new CurrentBuild()
    /**
     * The build's one CPS VM thread (Jenkins' CpsVmThread): its pipeline threads (the main one and
     * each parallel branch) take turns, one running Groovy at a time; a thread lets the others run
     * only while it waits in a step that Jenkins runs off that thread (sh, sleep, waitUntil's pause,
     * parallel's join), never inside library code (a native call holds every branch of the build).
     */
    private final ReentrantLock cpsVm = new ReentrantLock(true)
    /** The Stop button (runner.abortRunningBuild()). */
    final BuildAbort abort = new BuildAbort()
    /** Timeouts delivered, as "<thread id>@<deadline>": Jenkins interrupts a timeout's body once. */
    private final Set<String> deliveredTimeouts = ConcurrentHashMap.newKeySet()
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
        this.previousResult = runner.lastResult
        this.freshWorkspace = runner.workspace == null
        this.workspace = freshWorkspace ?
                Files.createTempDirectory("replay-${runner.jobName.replaceAll(/[^A-Za-z0-9._-]/, '_')}-${number}-").toFile() :
                runner.workspace.absoluteFile
    }

    /**
     * Whether the timeout ending at `deadline` (System.nanoTime()) is to be delivered to `thread`
     * now: true once per thread and deadline. Its timer and a step that sees the deadline pass
     * both ask; only one interrupts, and steps the body runs afterwards (its finally blocks) run
     * as in Jenkins, which interrupts only what runs when the timeout fires.
     */
    boolean claimTimeout(Thread thread, long deadline) {
        return deliveredTimeouts.add("${thread.id}@${deadline}".toString())
    }

    /** The Jenkinsfile this build runs (a restart compiles it again). */
    String jenkinsfile

    BuildResult execute(String jenkinsfile) {
        this.jenkinsfile = jenkinsfile
        String result = 'SUCCESS'
        Throwable failure = null
        console.println("Started by user replay (build #${number} of ${runner.jobName})")
        CpsThread.ReplayScope pipelineThread = CpsThread.enterForReplay(runner.jobName, number)
        execution = CpsThread.current().execution
        CredentialsProvider.storeForReplay(execution.owner.executable, runner.credentials)
        abort.enter()
        runner.running = this
        cpsVm.lock()
        try {
            rootContext = new StepContext(this, [:], [], null, workspace, null)
            contexts.set(rootContext)
            currentBuild.start(this)
            parameters = Collections.unmodifiableMap(new LinkedHashMap<String, Object>(runner.parameters))
            library = LocalLibrary.forBuild(runner, jenkinsfile, console)
            PipelineScript script = (PipelineScript) library.compileJenkinsfile(jenkinsfile).newInstance()
            script.setPipelineRun(this) // not a property assignment: Script sends those to its binding
            console.println('[Pipeline] Start of Pipeline')
            script.run()
        } catch (UnknownStep e) {
            failure = e
            result = 'FAILURE'
            console.println("java.lang.NoSuchMethodError: ${e.message}")
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
            if (abort.requested) {
                result = 'ABORTED'
                console.println('Aborted by user replay')
            } else if (e instanceof MissingPropertyException && e.message.contains(StepStandIns.HINT)) {
                console.println("${e.class.name}: ${e.message}") // an unknown global: what to do, not where
            } else {
                StringWriter trace = new StringWriter()
                e.printStackTrace(new PrintWriter(trace))
                console.println(trace.toString().trim())
            }
        } finally {
            releaseVm()
            runner.running = null
            abort.leave()
            if (abort.requested) {
                Thread.interrupted() // the abort's interruption ends with the build, not on the caller's thread
            }
            contexts.remove()
            timers.shutdownNow()
            pipelineThread.close()
        }
        return finish(result, failure)
    }

    private BuildResult finish(String outcome, Throwable failure) {
        // As in Jenkins, a result set during the build (currentBuild.result, unstable) stands unless worse came.
        String result = CurrentBuild.worse((String) currentBuild.result ?: 'SUCCESS', outcome)
        console.println('[Pipeline] End of Pipeline')
        leaveWorkspace()
        console.println("Finished: ${result}")
        currentBuild.setRawResult(result)
        runner.lastResult = result
        keepBuildRecord()
        return new BuildResult(number, result, console.text, failure, library?.classLoader, this)
    }

    /** The build's directory in the runner's buildsDirectory: its log and step records, as Jenkins keeps them. */
    private void keepBuildRecord() {
        if (runner.buildsDirectory == null) {
            return
        }
        // Test classes run in JVMs of their own and may reuse a job name and number: one directory each.
        File build = new File(runner.buildsDirectory, "${runner.jobName}/builds/${number}-${UUID.randomUUID().toString().take(8)}")
        build.mkdirs()
        new File(build, 'log').setText(console.text, 'UTF-8')
        new File(build, 'step-records.txt').setText(program.stepRecords.join('\n'), 'UTF-8')
    }

    private final Set<File> workspacesInUse = new HashSet<File>()
    private final Set<File> extraWorkspaces = new LinkedHashSet<File>()

    /**
     * The workspace a node block gets, as Jenkins' WorkspaceList allocates it: the build's, or while
     * another block of the build holds that one (parallel branches), <workspace>@2, @3, ...
     */
    synchronized File allocateWorkspace() {
        File candidate = workspace
        for (int n = 2; candidate in workspacesInUse; n++) {
            candidate = new File(workspace.parentFile, "${workspace.name}@${n}")
        }
        workspacesInUse << candidate
        if (candidate != workspace) {
            extraWorkspaces << candidate
        }
        candidate.mkdirs()
        return candidate
    }

    synchronized void releaseWorkspace(File allocated) {
        workspacesInUse.remove(allocated)
    }

    /** A fresh workspace goes once the build ends, with its @tmp sibling, unless the runner keeps it. */
    private void leaveWorkspace() {
        extraWorkspaces.each { File extra ->
            extra.deleteDir()
            new File(extra.parentFile, extra.name + '@tmp').deleteDir()
        }
        if (!freshWorkspace) {
            return
        }
        File tmp = new File(workspace.parentFile, workspace.name + '@tmp')
        if (runner.keepWorkspace) {
            console.println("[replay] workspace kept: ${workspace}")
        } else {
            workspace.deleteDir()
            tmp.deleteDir()
        }
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
            return program.body(body)
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

    /**
     * Declarative `parameters { }` or properties([parameters(...)]): as Jenkins' `params` does, the
     * values the build was started with (converted to each parameter's type), else the defaults.
     */
    void defineParameters(List<ParameterDefinition> definitions) {
        Map<String, Object> all = new LinkedHashMap<String, Object>()
        definitions.each { ParameterDefinition definition ->
            all[definition.name] = runner.parameters.containsKey(definition.name) ?
                    definition.valueOf(runner.parameters[definition.name]) : definition.defaultValue
        }
        runner.parameters.each { String name, Object value -> all.putIfAbsent(name, value) }
        parameters = Collections.unmodifiableMap(all)
    }

    private volatile PipelineScript standIns
    private volatile boolean standInsCompiled

    /** REPLAY_STEPS' file compiled for this build, or null. */
    synchronized PipelineScript standInScript() {
        if (!standInsCompiled) {
            standInsCompiled = true
            standIns = runner.standIns.compileFor(this)
        }
        return standIns
    }

    /**
     * Runs `wait` (a step waiting for a process, a timer or other threads) with the CPS VM thread
     * free for the build's other pipeline threads, and takes its turn again afterwards.
     */
    def <T> T offVmThread(Closure<T> wait) {
        int holds = cpsVm.holdCount
        holds.times { cpsVm.unlock() }
        try {
            return wait.call()
        } finally {
            holds.times { cpsVm.lock() }
        }
    }

    private void releaseVm() {
        while (cpsVm.heldByCurrentThread) {
            cpsVm.unlock()
        }
    }

    /** Starts a thread that runs body in context (parallel branches). */
    Thread startThread(String name, StepContext context, Closure body) {
        CpsFlowExecution build = execution
        Thread thread = new Thread({
            contexts.set(context)
            CpsThread.ReplayScope pipelineThread = CpsThread.enterForReplay(build)
            abort.enter()
            try {
                cpsVm.lock() // an interruption before its turn stays pending for its first step
                body.call()
            } finally {
                releaseVm()
                abort.leave()
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
                WORKSPACE         : workspace.absolutePath,
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
