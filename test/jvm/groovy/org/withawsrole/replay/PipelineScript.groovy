package org.withawsrole.replay

import java.util.concurrent.TimeUnit

/**
 * Base class of the Jenkinsfile and of every vars/ script: the pipeline steps this runner offers,
 * the `env` and `currentBuild` globals, and calls to the library's global variables.
 *
 * Steps behave as in Jenkins where this project relies on it: sh runs `bash -xe -c` (Jenkins runs
 * `sh -xe`, hence `set +x` in examples) with the block's environment over the agent's own
 * (PipelineRunner.agentEnvironment) and prints to the console log;
 * withEnv scopes variables to its block and thread; parallel runs branches on threads of their own
 * that take turns as on Jenkins' one CPS VM thread (PipelineRun.offVmThread);
 * wrap with MaskPasswordsBuildWrapper replaces the given values with ******** in its block's
 * output, as the Mask Passwords plugin does; withCredentials binds the runner's credentials and
 * masks them likewise. Not CPS: code runs as plain Groovy (no groovy-cps on Maven Central); what
 * Jenkins would save at each step, and a NotSerializableException where it would fail, comes from
 * ProgramState.
 */
abstract class PipelineScript extends Script implements GroovyInterceptable {
    PipelineRun pipelineRun

    static final List<String> STEPS = ['ansiColor', 'archiveArtifacts', 'bat', 'booleanParam', 'buildDiscarder', 'catchError', 'checkout',
                                       'choice', 'cleanWs', 'deleteDir', 'dir', 'disableConcurrentBuilds', 'echo', 'error', 'fileExists',
                                       'git', 'input', 'isUnix', 'junit', 'library', 'libraryResource', 'lock', 'logRotator', 'milestone', 'modernSCM',
                                       'node', 'parallel', 'parameters', 'password', 'pipeline', 'pipelineTriggers', 'powershell',
                                       'properties', 'pwd', 'pwsh', 'readFile', 'retry', 'script', 'sh', 'sleep', 'stage', 'stash',
                                       'step', 'string', 'text', 'timeout', 'timestamps', 'tool', 'unstable', 'unstash',
                                       'usernamePassword', 'waitUntil', 'warnError', 'withCredentials', 'withEnv', 'wrap',
                                       'writeFile'].asImmutable()

    /** Job properties and triggers: properties([...]) and Declarative accept them; a replay has no job to set them on. */
    static final List<String> JOB_SETTINGS = ['cron', 'disableResume', 'durabilityHint', 'githubPush', 'overrideIndexTriggers',
                                              'pollSCM', 'upstream', 'copyArtifactPermission', 'rateLimitBuilds',
                                              'preserveStashes', 'quietPeriod'].asImmutable()

    /**
     * Every method call on a script comes here (GroovyInterceptable): a step call is recorded and
     * the program saved before the step runs, as Jenkins does at each step (ProgramState).
     */
    @Override
    Object invokeMethod(String name, Object args) {
        ProgramState program = pipelineRun?.program
        if (program == null || !program.isStepCall(name)) {
            return super.invokeMethod(name, args)
        }
        Object[] arguments = args instanceof Object[] ? (Object[]) args : [args] as Object[]
        return program.step(name, arguments) { -> stepImplementation(name, arguments) }
    }

    /** This script runs in `run`; its closures' step calls come through invokeMethod too (StepCallsThroughInvokeMethod). */
    void setPipelineRun(PipelineRun run) {
        this.@pipelineRun = run
        setMetaClass(new StepCallsThroughInvokeMethod(getMetaClass()))
    }

    /**
     * The step's own method, past invokeMethod's recording. (Every call on a script comes through
     * invokeMethod, so the runner's helpers here are protected: a subclass's metaclass, the
     * Jenkinsfile's, would not find private ones.)
     */
    Object stepImplementation(String name, Object[] arguments) {
        return super.invokeMethod(name, arguments)
    }

    // ---- globals

    EnvironmentVariables getEnv() {
        return pipelineRun.env
    }

    CurrentBuild getCurrentBuild() {
        return pipelineRun.currentBuild
    }

    Map<String, Object> getParams() {
        return pipelineRun.params
    }

    /** `steps`: a step by its name, even when a library's global variable has the same name. */
    DslSteps getSteps() {
        return new DslSteps(this)
    }

    /** The job's SCM (ScmSource); an inline-script job has none, and Jenkins says so in these words. */
    ScmSource getScm() {
        if (pipelineRun.runner.scm == null) {
            throw new MissingPropertyException('No such property: scm (this job is an inline Pipeline script: ' +
                    "'checkout scm' is only available when using Multibranch Pipeline or Pipeline script from SCM)")
        }
        return pipelineRun.runner.scm
    }

    def methodMissing(String name, Object args) {
        Object[] arguments = args instanceof Object[] ? (Object[]) args : [args] as Object[]
        PipelineScript global = pipelineRun.globalVariable(name)
        if (global != null) {
            return global.invokeMethod('call', arguments)
        }
        if (PluginSteps.provides(pipelineRun.runner.plugins, name)) {
            return PluginSteps.invoke(this, name, arguments)
        }
        Object stoodIn = pipelineRun.runner.standIns.call(pipelineRun, name, arguments)
        if (!stoodIn.is(StepStandIns.NOT_STOOD_IN)) {
            return stoodIn
        }
        if (name in JOB_SETTINGS || name in DeclarativeModel.OPTIONS) {
            return [symbol: name, arguments: arguments.toList()]
        }
        throw UnknownStep.method(name, STEPS + PluginSteps.available(pipelineRun.runner.plugins),
                ['env', 'currentBuild', 'params', 'scm', 'steps'] + (pipelineRun.library?.globalVariableNames ?: []))
    }

    /** A global variable of the libraries, else (as CpsScript does) an environment variable of the block. */
    def propertyMissing(String name) {
        PipelineScript global = pipelineRun.globalVariable(name)
        if (global != null) {
            return global
        }
        String value = pipelineRun.currentContext().environment()[name]
        if (value != null) {
            return value
        }
        Object stoodIn = pipelineRun.runner.standIns.global(pipelineRun, name)
        if (!stoodIn.is(StepStandIns.NOT_STOOD_IN)) {
            return stoodIn
        }
        throw UnknownStep.property(name)
    }

    /** println in a Jenkinsfile writes to the build's console, as in Jenkins. */
    void println(Object value) {
        context().log(String.valueOf(value))
    }

    void println() {
        context().log('')
    }

    // ---- Declarative Pipeline

    /** Declarative Pipeline: the block is read and checked first (nothing runs if it is wrong), then run. */
    void pipeline(Closure body) {
        DeclarativeModel.Root root = DeclarativeModel.parse(body)
        if (root.parameters) {
            pipelineRun.defineParameters(root.parameters)
        }
        new DeclarativeInterpreter(this, root).execute()
    }

    /** Declarative's script step: its block runs as scripted Pipeline code. */
    def script(Closure body) {
        return block('script', null, context(), body)
    }

    /** Sets the build result to UNSTABLE (never better than it is) and goes on, as workflow-basic-steps' unstable. */
    void unstable(Object message) {
        if (message instanceof Map) {
            message = ((Map) message).message
        }
        logStep('unstable')
        context().log("WARNING: ${message}")
        pipelineRun.currentBuild.result = 'UNSTABLE'
    }

    // ---- steps

    protected StepContext context() {
        return pipelineRun.currentContext()
    }

    protected void logStep(String name) {
        context().log("[Pipeline] ${name}")
    }

    protected def block(String name, String detail, StepContext inner, Closure body) {
        logStep(name)
        return enterBlock(name, detail, inner, body)
    }

    /** The block of a step whose "[Pipeline] name" line is already in the log. */
    protected def enterBlock(String name, String detail, StepContext inner, Closure body) {
        inner.log(detail == null ? '[Pipeline] {' : "[Pipeline] { (${detail})")
        try {
            return pipelineRun.within(inner, body)
        } finally {
            inner.log('[Pipeline] }')
            logStep("// ${name}")
        }
    }

    void echo(Object message) {
        logStep('echo')
        context().log(String.valueOf(message))
    }

    void error(Object message) {
        logStep('error')
        throw new PipelineFailure(String.valueOf(message))
    }

    def sh(CharSequence script) {
        return sh([script: script])
    }

    def sh(Map args) {
        String script = args.script?.toString()
        if (script == null) {
            throw new IllegalArgumentException('sh: script is required')
        }
        boolean returnStdout = args.returnStdout as boolean
        boolean returnStatus = args.returnStatus as boolean
        StepContext here = context()
        logStep('sh')
        if (here.directory != null) {
            here.directory.mkdirs()
        }
        List<String> command = args.interpreter ? (args.interpreter as List<String>) + [script] : ['bash', '-xe', '-c', script]
        ProcessBuilder builder = new ProcessBuilder(command).directory(here.directory)
        builder.environment().clear()
        builder.environment().putAll(here.processEnvironment())
        builder.redirectInput(ProcessBuilder.Redirect.from(new File('/dev/null')))
        if (!returnStdout) {
            builder.redirectErrorStream(true)
        }
        Process process = builder.start()
        Thread logger = copyLinesToLog(returnStdout ? process.errorStream : process.inputStream, here)
        ByteArrayOutputStream stdout = new ByteArrayOutputStream()
        Thread capture = null
        if (returnStdout) {
            capture = Thread.start { stdout << process.inputStream }
        }
        int exitCode = pipelineRun.offVmThread {
            int exit = waitFor(process, here)
            logger.join()
            capture?.join()
            exit
        }
        if (exitCode != 0 && !returnStatus) {
            throw new PipelineFailure("script returned exit code ${exitCode}")
        }
        if (returnStatus) {
            return exitCode
        }
        return returnStdout ? new String(stdout.toByteArray(), 'UTF-8') : null
    }

    protected static Thread copyLinesToLog(InputStream stream, StepContext here) {
        return Thread.start {
            stream.withReader('UTF-8') { Reader reader ->
                reader.eachLine { String line -> here.log(line) }
            }
        }
    }

    protected static int waitFor(Process process, StepContext here) {
        try {
            if (here.deadline == null) {
                return process.waitFor()
            }
            long remaining = here.deadline - System.nanoTime()
            if (remaining > 0 && process.waitFor(remaining, TimeUnit.NANOSECONDS)) {
                return process.exitValue()
            }
            if (here.run.claimTimeout(Thread.currentThread(), here.deadline)) {
                kill(process)
                throw new PipelineFailure('Timeout has been exceeded', 'ABORTED')
            }
            // The timeout was delivered before this step started (it runs in a finally or catch
            // of the body): Jenkins lets it run.
            return process.waitFor()
        } catch (InterruptedException e) {
            kill(process)
            throw here.pastDeadline ? new PipelineFailure('Timeout has been exceeded', 'ABORTED') : e
        }
    }

    protected static void kill(Process process) {
        process.descendants().each { it.destroyForcibly() }
        process.destroyForcibly()
        process.waitFor()
    }

    def withEnv(List overrides, Closure body) {
        StepContext inner = context().withEnvironment(overrides.collect { String.valueOf(it) })
        return block('withEnv', null, inner, body)
    }

    /**
     * Branches run each on a thread of its own, taking turns on the build's CPS VM thread (a branch
     * lets the others run while it waits in a step); the step fails after all finish if any failed.
     */
    def parallel(Map branches) {
        boolean failFast = branches.failFast as boolean
        Map<String, Closure> bodies = branches.findAll { it.key != 'failFast' } as Map<String, Closure>
        StepContext here = context()
        logStep('parallel')
        Map<String, Object> results = Collections.synchronizedMap([:])
        Map<String, Throwable> failures = Collections.synchronizedMap(new LinkedHashMap<String, Throwable>())
        List<Thread> threads = []
        bodies.each { String name, Closure body ->
            StepContext branch = here.inBranch(name)
            threads << pipelineRun.startThread(name, branch) {
                branch.log("[Pipeline] { (Branch: ${name})")
                try {
                    results[name] = body.call()
                } catch (Throwable failure) {
                    failures[name] = failure
                    if (failure instanceof PipelineFailure) {
                        branch.log("ERROR: ${failure.message}")
                    }
                    if (failFast) {
                        threads.each { if (it != Thread.currentThread()) it.interrupt() }
                    }
                } finally {
                    branch.log('[Pipeline] }')
                }
            }
        }
        try {
            pipelineRun.offVmThread { threads.each { it.join() } }
        } catch (InterruptedException e) {
            threads.each { it.interrupt() }
            pipelineRun.offVmThread { threads.each { it.join() } }
            throw e
        } finally {
            logStep('// parallel')
        }
        if (!failures.isEmpty()) {
            Map.Entry<String, Throwable> first = failures.entrySet().iterator().next()
            if (first.value instanceof PipelineFailure) {
                throw new PipelineFailure("Failed in branch ${first.key}: ${first.value.message}", ((PipelineFailure) first.value).result)
            }
            throw first.value
        }
        return results
    }

    String libraryResource(CharSequence resource) {
        return libraryResource([resource: resource])
    }

    String libraryResource(Map args) {
        logStep('libraryResource')
        byte[] bytes = pipelineRun.library.resource(String.valueOf(args.resource))
        String encoding = args.encoding?.toString()
        if (encoding == 'Base64') {
            return Base64.encoder.encodeToString(bytes)
        }
        return new String(bytes, encoding ?: 'UTF-8')
    }

    /**
     * Only the Mask Passwords plugin's wrapper exists here, and only while the runner has that
     * plugin; any other `$class` fails before the block starts, with the message of Jenkins'
     * structs plugin, which renders the step's arguments (secrets included) into it.
     */
    def wrap(Map wrapper, Closure body) {
        logStep('wrap')
        Describables.resolve(Describables.CORE_WRAPPER_STEP, [delegate: wrapper], Describables.SIMPLE_BUILD_WRAPPER,
                wrapper, availableDescribables(Describables.SIMPLE_BUILD_WRAPPER))
        List<String> values = (wrapper.varPasswordPairs ?: []).collect { Map pair -> pair.password?.toString() }
        return enterBlock('wrap', null, context().withMasked(values), body)
    }

    /** The `step` step (CoreStep): no SimpleBuildStep exists here, so every `$class` is unknown. */
    def step(Map delegate) {
        logStep('step')
        Describables.resolve(Describables.CORE_STEP, [delegate: delegate], Describables.SIMPLE_BUILD_STEP,
                delegate, availableDescribables(Describables.SIMPLE_BUILD_STEP))
        throw new IllegalStateException("step: ${delegate['$class']} exists but the replay runner cannot run it")
    }

    /** Class names (fully qualified) of the implementations of base that this runner's plugins provide. */
    Set<String> availableDescribables(String base) {
        Set<String> names = new LinkedHashSet<String>()
        Describables.PROVIDED_BY_PLUGIN.each { String plugin, Map<String, List<String>> byBase ->
            if (plugin in pipelineRun.runner.plugins) {
                names.addAll(byBase[base] ?: [])
            }
        }
        return names
    }

    /**
     * Binds credentials of the runner's store to variables for the block, masking their values in
     * its output, as the Credentials Binding plugin does. Bindings are resolved before the block
     * starts, so an unknown ID or a credential of another kind fails without running it.
     */
    def withCredentials(List bindings, Closure body) {
        requirePlugin('credentials-binding', 'withCredentials')
        StepContext here = context()
        logStep('withCredentials')
        List<String> assignments = []
        List<String> secrets = []
        List<String> variables = []
        List<String> sensitive = []
        // As in Jenkins, every binding is instantiated before any credential is looked up.
        List<Map> specs = bindings.collect { Object binding ->
            Map spec = (Map) binding
            if (!spec.containsKey('$class')) {
                return spec
            }
            if (pipelineRun.runner.standIns.hasBinding(pipelineRun, spec)) {
                return [binding: StepStandIns.BINDING, spec: spec]
            }
            String type = Describables.resolve(Describables.BINDING_STEP, [bindings: bindings], Describables.MULTI_BINDING,
                    spec, availableDescribables(Describables.MULTI_BINDING))
            return type.endsWith('.UsernamePasswordMultiBinding') ? usernamePassword(spec) : string(spec)
        }
        specs.each { Map spec ->
            Map<String, String> values
            Map fieldsToVariables
            if (spec.binding == StepStandIns.BINDING) {
                // A stood-in binding (REPLAY_STEPS) answers variable -> value itself.
                values = pipelineRun.runner.standIns.bind(pipelineRun, (Map) spec.spec)
                fieldsToVariables = values.collectEntries { String variable, String value -> [(variable): variable] }
            } else {
                values = pipelineRun.runner.credentials.bind(String.valueOf(spec.binding), String.valueOf(spec.credentialsId))
                fieldsToVariables = (Map) spec.variables
            }
            fieldsToVariables.each { String field, Object variable ->
                assignments << "${variable}=${values[field]}".toString()
                secrets << values[field]
                variables << "\$${variable}".toString()
                sensitive << String.valueOf(variable)
            }
        }
        here.log("Masking supported pattern matches of ${variables.join(' or ')}")
        StepContext inner = here.withEnvironment(assignments).withMasked(secrets).withSensitive(sensitive)
        return enterBlock('withCredentials', null, inner, body)
    }

    /** The Credentials Binding plugin's username/password binding (a "Username with password" credential). */
    Map usernamePassword(Map args) {
        requirePlugin('credentials-binding', 'usernamePassword')
        return [binding: 'usernamePassword', credentialsId: args.credentialsId,
                variables: [username: args.usernameVariable, password: args.passwordVariable]]
    }

    /**
     * The Credentials Binding plugin's secret text binding ("Secret text", OIDC id token), or, with a
     * name and no credentialsId, a string parameter (parameters, input): Jenkins tells them apart by
     * where they are used, the runner by their arguments.
     */
    Object string(Map args) {
        if (args.name != null && args.credentialsId == null) {
            return new ParameterDefinition('string', args)
        }
        requirePlugin('credentials-binding', 'string')
        return [binding: 'string', credentialsId: args.credentialsId, variables: [secret: args.variable]]
    }

    protected void requirePlugin(String plugin, String step) {
        if (!(plugin in pipelineRun.runner.plugins)) {
            throw new MissingMethodException(step, getClass(), [] as Object[]) {
                @Override
                String getMessage() {
                    return "No such DSL method '${step}' found (the ${plugin} plugin is not installed)"
                }
            }
        }
    }

    /** pwd(): the current directory; pwd(tmp: true): its @tmp sibling, Jenkins' place for temporary files. */
    String pwd(Map args = [:]) {
        File directory = context().directory
        if (args.tmp) {
            directory = new File(directory.parentFile, directory.name + '@tmp')
        }
        return directory.absolutePath
    }

    def timeout(Number minutes, Closure body) {
        return timeout([time: minutes, unit: 'MINUTES'], body)
    }

    def timeout(Map args, Closure body) {
        TimeUnit unit = TimeUnit.valueOf((args.unit ?: 'MINUTES').toString())
        long nanos = unit.toNanos((args.time as Number).longValue())
        long deadline = System.nanoTime() + nanos
        StepContext inner = context().withDeadline(deadline)
        Thread blocked = Thread.currentThread()
        Object finished = new Object()
        boolean done = false
        def timer = pipelineRun.timers.schedule({
            synchronized (finished) {
                if (!done && pipelineRun.claimTimeout(blocked, deadline)) {
                    blocked.interrupt()
                }
            }
        } as Runnable, nanos, TimeUnit.NANOSECONDS)
        try {
            return block('timeout', null, inner, body)
        } catch (InterruptedException e) {
            if (inner.pastDeadline) {
                throw new PipelineFailure('Timeout has been exceeded', 'ABORTED')
            }
            throw e
        } finally {
            synchronized (finished) {
                done = true
            }
            timer.cancel(false)
            Thread.interrupted() // the timer fired after the body had finished
        }
    }

    // long, not Number: Groovy would prefer Object.sleep(long) (milliseconds) for an int argument.
    void sleep(long seconds) {
        sleep([time: seconds, unit: 'SECONDS'])
    }

    void sleep(Map args) {
        logStep('sleep')
        TimeUnit unit = TimeUnit.valueOf((args.unit ?: 'SECONDS').toString())
        long millis = unit.toMillis((args.time as Number).longValue())
        context().log("Sleeping for ${millis} ms")
        pipelineRun.offVmThread { Thread.sleep(millis) }
    }

    def node(Closure body) {
        return node('', body)
    }

    def node(CharSequence label, Closure body) {
        StepContext here = context()
        logStep('node')
        File allocated = pipelineRun.allocateWorkspace()
        StepContext inside = here.inDirectory(allocated).withEnvironment(["WORKSPACE=${allocated.absolutePath}".toString()])
        here.log("Running on replay in ${allocated}")
        here.log('[Pipeline] {')
        try {
            return pipelineRun.within(inside, body)
        } finally {
            pipelineRun.releaseWorkspace(allocated)
            here.log('[Pipeline] }')
            logStep('// node')
        }
    }

    def stage(CharSequence name, Closure body) {
        pipelineRun.stages << name.toString()
        return block('stage', name.toString(), context(), body)
    }

    def stage(Map args, Closure body) {
        return stage(String.valueOf(args.name), body)
    }

    def dir(CharSequence path, Closure body) {
        StepContext here = context()
        File target = new File(path.toString()).absolute ? new File(path.toString()) : new File(here.directory, path.toString())
        return block('dir', null, here.inDirectory(target), body)
    }

    def retry(int count, Closure body) {
        return retry([count: count], body)
    }

    /** Runs body up to count times; a failure is retried (logged first), an abort (timeout, input) is not. */
    def retry(Map args, Closure body) {
        int count = args.count as int
        logStep('retry')
        for (int attempt = 1; ; attempt++) {
            try {
                return enterBlock('retry', null, context(), body)
            } catch (Exception e) {
                if (attempt >= count || (e instanceof PipelineFailure && ((PipelineFailure) e).result == 'ABORTED')) {
                    throw e
                }
                context().log("ERROR: ${e instanceof PipelineFailure ? e.message : e.toString()}")
                context().log('Retrying')
            }
        }
    }

    void writeFile(Map args) {
        logStep('writeFile')
        File file = fileInWorkspace(String.valueOf(args.file))
        file.parentFile.mkdirs()
        file.setText(String.valueOf(args.text), (args.encoding ?: 'UTF-8').toString())
    }

    String readFile(CharSequence file) {
        return readFile([file: file])
    }

    String readFile(Map args) {
        logStep('readFile')
        return fileInWorkspace(String.valueOf(args.file)).getText((args.encoding ?: 'UTF-8').toString())
    }

    boolean fileExists(CharSequence file) {
        logStep('fileExists')
        return fileInWorkspace(file.toString()).exists()
    }

    boolean isUnix() {
        return !pipelineRun.runner.windowsAgent
    }

    /** The library step: library('name@version'), library(identifier: ..., retriever: modernSCM(...)) (LocalLibrary.libraryStep). */
    def library(Object args) {
        logStep('library')
        return pipelineRun.library.libraryStep(args, pipelineRun.runner.libraryCheckouts, pipelineRun.console)
    }

    /** retriever: modernSCM([$class: 'GitSCMSource', remote: ...]) of the library step. */
    Map modernSCM(Map scm) {
        return [$class: 'SCMSourceRetriever', scm: scm]
    }

    protected File fileInWorkspace(String path) {
        File file = new File(path)
        return file.absolute ? file : new File(context().directory, path)
    }

    // ---- everyday steps of Jenkins' plugins, emulated on this machine

    /** checkout scm (the job's ScmSource) or checkout([$class: 'GitSCM', branches:, userRemoteConfigs:]): a clone. */
    Map<String, String> checkout(Object source) {
        StepContext here = context()
        logStep('checkout')
        if (source instanceof ScmSource) {
            return ((ScmSource) source).checkoutInto(here.directory, here)
        }
        Map settings = source instanceof Map ? (Map) source : [:]
        Map remote = settings.userRemoteConfigs instanceof List && settings.userRemoteConfigs ? (Map) ((List) settings.userRemoteConfigs)[0] : null
        if (remote?.url == null) {
            throw new PipelineFailure("checkout: the replay runner checks out `scm` or a GitSCM with userRemoteConfigs: [[url: ...]]; got ${source}")
        }
        String branch = settings.branches instanceof List && settings.branches ? String.valueOf(((Map) ((List) settings.branches)[0]).name) : null
        return ScmSource.cloneInto(String.valueOf(remote.url), branch?.replaceFirst('^(\\*/|origin/|refs/heads/)', ''), here.directory, here)
    }

    Map<String, String> checkout(Map args) {
        return checkout(args.scm instanceof ScmSource ? args.scm : (Object) args)
    }

    /** git url: ..., branch: ... (credentialsId is not used: this machine's git access is). */
    Map<String, String> git(Map args) {
        StepContext here = context()
        logStep('git')
        return ScmSource.cloneInto(String.valueOf(args.url), args.branch == null ? 'master' : String.valueOf(args.branch), here.directory, here)
    }

    Map<String, String> git(CharSequence url) {
        return git([url: url])
    }

    /** Deletes the current directory and everything in it (as Jenkins, the directory itself too). */
    void deleteDir() {
        logStep('deleteDir')
        context().directory.deleteDir()
    }

    /** The Workspace Cleanup plugin: empties the whole workspace (patterns: [[pattern:, type: 'INCLUDE'|'EXCLUDE']]). */
    void cleanWs(Map args = [:]) {
        StepContext here = context()
        logStep('cleanWs')
        here.log('[WS-CLEANUP] Deleting project workspace...')
        List<Map> patterns = (args.patterns ?: []) as List<Map>
        String includes = patterns.findAll { it.type != 'EXCLUDE' }*.pattern.join(',')
        String excludes = patterns.findAll { it.type == 'EXCLUDE' }*.pattern.join(',')
        File root = new File(here.environment().WORKSPACE)
        if (patterns.isEmpty()) {
            root.listFiles()?.each { File file -> file.directory ? file.deleteDir() : file.delete() }
        } else {
            AntPattern.select(root, includes ?: '**', excludes, false).each { String path -> new File(root, path).delete() }
        }
        here.log('[WS-CLEANUP] done')
    }

    void stash(CharSequence name) {
        stash([name: name])
    }

    /** Saves files of the current directory under a name for unstash, in this build only. */
    void stash(Map args) {
        StepContext here = context()
        logStep('stash')
        String name = String.valueOf(args.name)
        List<String> files = AntPattern.select(here.directory, args.includes?.toString(), args.excludes?.toString(),
                args.useDefaultExcludes == null ? true : args.useDefaultExcludes as boolean)
        if (files.isEmpty() && !args.allowEmpty) {
            throw new PipelineFailure("No files included in stash \u2018${name}\u2019")
        }
        Map<String, byte[]> saved = new LinkedHashMap<String, byte[]>()
        files.each { String path -> saved[path] = new File(here.directory, path).bytes }
        pipelineRun.stashes[name] = saved
        here.log("Stashed ${files.size()} file(s)")
    }

    void unstash(Map args) {
        unstash(String.valueOf(args.name))
    }

    /** Restores a stash of this build into the current directory (name is unstash's only parameter). */
    void unstash(CharSequence name) {
        StepContext here = context()
        logStep('unstash')
        Map<String, byte[]> saved = pipelineRun.stashes[name.toString()]
        if (saved == null) {
            throw new PipelineFailure("No such saved stash \u2018${name}\u2019")
        }
        saved.each { String path, byte[] bytes ->
            File file = new File(here.directory, path)
            file.parentFile.mkdirs()
            file.bytes = bytes
        }
    }

    void archiveArtifacts(CharSequence artifacts) {
        archiveArtifacts([artifacts: artifacts])
    }

    /** Records the matching files (BuildResult.artifacts); none fails the build unless allowEmptyArchive. */
    void archiveArtifacts(Map args) {
        StepContext here = context()
        logStep('archiveArtifacts')
        if (args.onlyIfSuccessful && pipelineRun.currentBuild.currentResult != 'SUCCESS') {
            return
        }
        here.log('Archiving artifacts')
        List<String> files = AntPattern.select(here.directory, String.valueOf(args.artifacts), args.excludes?.toString(),
                args.defaultExcludes == null ? true : args.defaultExcludes as boolean)
        if (files.isEmpty() && !args.allowEmptyArchive) {
            throw new PipelineFailure("No artifacts found that match the file pattern \"${args.artifacts}\". Configuration error?")
        }
        pipelineRun.artifacts.addAll(files)
    }

    Map<String, Integer> junit(CharSequence testResults) {
        return junit([testResults: testResults])
    }

    /** Records JUnit XML reports (BuildResult.testReports); failed tests make the build UNSTABLE, as in Jenkins. */
    Map<String, Integer> junit(Map args) {
        StepContext here = context()
        logStep('junit')
        here.log('Recording test results')
        List<String> files = AntPattern.select(here.directory, String.valueOf(args.testResults), null, false)
        if (files.isEmpty()) {
            if (args.allowEmptyResults) {
                here.log('None of the test reports contained any result')
                return [totalCount: 0, failCount: 0, skipCount: 0, passCount: 0]
            }
            throw new PipelineFailure('No test report files were found. Configuration error?')
        }
        List<Map<String, Object>> reports = files.collect { String path -> TestReports.read(new File(here.directory, path), path) }
        pipelineRun.testReports.addAll(reports)
        int total = reports.sum { it.tests } as int
        int failed = reports.sum { (it.failures as int) + (it.errors as int) } as int
        int skipped = reports.sum { it.skipped } as int
        if (failed > 0) {
            pipelineRun.currentBuild.result = 'UNSTABLE'
        }
        return [totalCount: total, failCount: failed, skipCount: skipped, passCount: total - failed - skipped]
    }

    /** bat runs on a Windows agent only, as in Jenkins: the emulated one (REPLAY_AGENT_OS=windows, WindowsShell) or none. */
    def bat(Object args) {
        if (pipelineRun.runner.windowsAgent) {
            return windowsScript('bat', args)
        }
        logStep('bat')
        throw new PipelineFailure("bat runs only on a Windows agent; this replay runs on a Unix agent (isUnix() is true): use sh, " +
                'or replay on an emulated Windows agent (REPLAY_AGENT_OS=windows)')
    }

    def powershell(Object args) {
        if (pipelineRun.runner.windowsAgent) {
            return windowsScript('powershell', args)
        }
        return shell('powershell', 'pwsh', args)
    }

    def pwsh(Object args) {
        return shell('pwsh', 'pwsh', args)
    }

    protected def windowsScript(String step, Object args) {
        Map settings = args instanceof Map ? (Map) args : [script: args]
        StepContext here = context()
        logStep(step)
        here.directory.mkdirs()
        boolean returnStdout = settings.returnStdout as boolean
        Map<String, Object> result = pipelineRun.offVmThread {
            WindowsShell.run(step, String.valueOf(settings.script), here.processEnvironment(), here.directory) { String line ->
                if (!returnStdout) {
                    here.log(line)
                }
            }
        }
        int exitCode = result.exitCode as int
        if (exitCode != 0 && !settings.returnStatus) {
            throw new PipelineFailure("script returned exit code ${exitCode}")
        }
        return settings.returnStatus ? exitCode : returnStdout ? result.stdout : null
    }

    protected def shell(String step, String program, Object args) {
        Map settings = args instanceof Map ? (Map) args : [script: args]
        if (!onPath(program)) {
            logStep(step)
            throw new PipelineFailure("${step}: ${program} is not installed on this machine, which is this replay's agent")
        }
        return sh(settings + [interpreter: [program, '-NoProfile', '-NonInteractive', '-Command']])
    }

    protected boolean onPath(String program) {
        return (context().environment().PATH ?: '').split(File.pathSeparator).any { new File(it, program).canExecute() }
    }

    /** Runs body until it returns true: 0.25 s, then 1.2 times longer each time, at most 15 s, as Jenkins does. */
    def waitUntil(Map args = [:], Closure body) {
        logStep('waitUntil')
        long delay = (args.initialRecurrencePeriod ?: 250) as long
        while (true) {
            if (enterBlock('waitUntil', null, context(), body)) {
                return null
            }
            if (!args.quiet) {
                context().log("Will try again after ${delay / 1000.0} sec")
            }
            pipelineRun.offVmThread { Thread.sleep(delay) }
            delay = Math.min(15000L, (long) (delay * 1.2))
        }
    }

    /**
     * catchError: a failure in body is logged and sets the build result (buildResult, default
     * FAILURE; null leaves it), and the build goes on; an abort is caught too unless catchInterruptions: false.
     */
    def catchError(Map args = [:], Closure body) {
        logStep('catchError')
        try {
            return enterBlock('catchError', null, context(), body)
        } catch (Exception e) {
            boolean aborted = e instanceof PipelineFailure && ((PipelineFailure) e).result == 'ABORTED'
            if (aborted && args.containsKey('catchInterruptions') && !args.catchInterruptions) {
                throw e
            }
            if (args.message) {
                context().log(String.valueOf(args.message))
            }
            context().log("ERROR: ${e instanceof PipelineFailure ? e.message : e.toString()}")
            String result = args.containsKey('buildResult') ? args.buildResult : (aborted ? 'ABORTED' : 'FAILURE')
            if (result != null) {
                pipelineRun.currentBuild.result = result
            }
            return null
        }
    }

    def warnError(CharSequence message, Closure body) {
        return warnError([message: message], body)
    }

    def warnError(Map args, Closure body) {
        return catchError([message: args.message, buildResult: 'UNSTABLE', stageResult: 'UNSTABLE', catchInterruptions: args.catchInterruptions], body)
    }

    String tool(CharSequence name) {
        return tool([name: name])
    }

    /** A tool installation's home; the runner knows those REPLAY_TOOLS names (Jenkins' words otherwise). */
    String tool(Map args) {
        logStep('tool')
        String name = String.valueOf(args.name)
        File home = pipelineRun.runner.tools[name]
        if (home == null) {
            throw new PipelineFailure("No ${args.type ? "${args.type} " : ''}named ${name} found; give the replay its home: " +
                    "REPLAY_TOOLS=${name}=/path/to/its/home")
        }
        return home.absolutePath
    }

    def input(CharSequence message) {
        return input([message: message])
    }

    /** Nobody clicks in a replay: proceeds with the parameters' defaults, or aborts (REPLAY_INPUT). */
    def input(Map args) {
        StepContext here = context()
        logStep('input')
        here.log(String.valueOf(args.message))
        here.log("${args.ok ?: 'Proceed'} or Abort")
        if (pipelineRun.runner.inputAnswer == ReplayInput.ABORT) {
            here.log("Aborted by ${ReplayInput.SUBMITTER} (REPLAY_INPUT=abort)")
            throw new PipelineFailure('Rejected by replay (REPLAY_INPUT=abort)', 'ABORTED')
        }
        List<Map> parameters = ((args.parameters ?: []) as List).collect { it instanceof ParameterDefinition ? ((ParameterDefinition) it).asMap() : (Map) it }
        here.log("Approved by ${ReplayInput.SUBMITTER} (REPLAY_INPUT=proceed: the parameters' defaults)")
        return ReplayInput.answer(parameters, args.submitterParameter?.toString())
    }

    ParameterDefinition booleanParam(Map args) {
        return new ParameterDefinition('booleanParam', args)
    }

    ParameterDefinition choice(Map args) {
        return new ParameterDefinition('choice', args)
    }

    ParameterDefinition text(Map args) {
        return new ParameterDefinition('text', args)
    }

    ParameterDefinition password(Map args) {
        return new ParameterDefinition('password', args)
    }

    List parameters(List definitions) {
        return definitions
    }

    /** properties([parameters([...]), buildDiscarder(...), pipelineTriggers([...])]): parameters take effect for `params`. */
    void properties(List settings) {
        logStep('properties')
        settings.each { Object setting ->
            if (setting instanceof List) {
                List<ParameterDefinition> definitions = ((List) setting).findAll { it instanceof ParameterDefinition } as List<ParameterDefinition>
                pipelineRun.defineParameters(definitions)
            }
        }
    }

    Map buildDiscarder(Object strategy) {
        return [symbol: 'buildDiscarder', arguments: [strategy]]
    }

    Map logRotator(Map args) {
        return [symbol: 'logRotator', arguments: [args]]
    }

    Map disableConcurrentBuilds(Map args = [:]) {
        return [symbol: 'disableConcurrentBuilds', arguments: [args]]
    }

    Map pipelineTriggers(List triggers) {
        return [symbol: 'pipelineTriggers', arguments: triggers]
    }

    /** The Timestamper's wrapper: this console has no timestamps to add, the block runs as is. */
    def timestamps(Closure body) {
        return block('timestamps', null, context(), body)
    }

    /** The AnsiColor plugin's wrapper: the block runs as is (this console keeps the escape codes). */
    def ansiColor(Object colorMap = 'xterm', Closure body) {
        return block('ansiColor', null, context(), body)
    }

    /** Lockable Resources: one replay has nobody to wait for, so the lock is free at once. */
    def lock(Object resource, Closure body) {
        logStep('lock')
        context().log("Lock acquired on [${resource instanceof Map ? ((Map) resource).resource ?: ((Map) resource).label : resource}]")
        return enterBlock('lock', null, context(), body)
    }

    void milestone(Object ordinal = null) {
        logStep('milestone')
    }
}
