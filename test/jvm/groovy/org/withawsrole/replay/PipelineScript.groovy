package org.withawsrole.replay

import java.util.concurrent.TimeUnit

/**
 * Base class of the Jenkinsfile and of every vars/ script: the pipeline steps this runner offers,
 * the `env` and `currentBuild` globals, and calls to the library's global variables.
 *
 * Steps behave as in Jenkins where this project relies on it: sh runs `bash -xe -c` (Jenkins runs
 * `sh -xe`, hence `set +x` in examples) with the block's environment and prints to the console log;
 * withEnv scopes variables to its block and thread; parallel runs branches on their own threads;
 * wrap with MaskPasswordsBuildWrapper replaces the given values with ******** in its block's
 * output, as the Mask Passwords plugin does; withCredentials binds the runner's credentials and
 * masks them likewise. Not CPS: code runs as plain Groovy, so this checks
 * behaviour, not CPS-serializability (no groovy-cps on Maven Central).
 */
abstract class PipelineScript extends Script {
    PipelineRun pipelineRun

    static final List<String> STEPS = ['echo', 'error', 'sh', 'withEnv', 'parallel', 'libraryResource', 'wrap',
                                       'timeout', 'sleep', 'node', 'stage', 'dir', 'retry', 'writeFile', 'readFile',
                                       'fileExists', 'isUnix', 'library', 'pwd', 'withCredentials',
                                       'usernamePassword', 'string', 'step', 'pipeline', 'script', 'unstable'].asImmutable()

    // ---- globals

    EnvironmentVariables getEnv() {
        return pipelineRun.env
    }

    Map<String, Object> getCurrentBuild() {
        return pipelineRun.currentBuild
    }

    Map<String, Object> getParams() {
        return pipelineRun.params
    }

    /** `steps`: a step by its name, even when a library's global variable has the same name. */
    DslSteps getSteps() {
        return new DslSteps(this)
    }

    def methodMissing(String name, Object args) {
        PipelineScript global = pipelineRun.globalVariable(name)
        if (global != null) {
            return global.invokeMethod('call', args)
        }
        if (PluginSteps.provides(pipelineRun.runner.plugins, name)) {
            return PluginSteps.invoke(this, name, args as Object[])
        }
        throw new MissingMethodException(name, getClass(), args as Object[]) {
            @Override
            String getMessage() {
                return "No such DSL method '${name}' found among steps ${STEPS} or globals " +
                        "${['env', 'currentBuild', 'params'] + (pipelineRun.library?.globalVariableNames ?: [])}"
            }
        }
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
        throw new MissingPropertyException(name, getClass())
    }

    // ---- Declarative Pipeline

    /** Declarative Pipeline: the block is read and checked first (nothing runs if it is wrong), then run. */
    void pipeline(Closure body) {
        DeclarativeModel.Root root = DeclarativeModel.parse(body)
        if (root.parameters) {
            pipelineRun.defineParameters(root.parameters.collectEntries { [(it.name): it.defaultValue] })
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

    private StepContext context() {
        return pipelineRun.currentContext()
    }

    private void logStep(String name) {
        context().log("[Pipeline] ${name}")
    }

    private def block(String name, String detail, StepContext inner, Closure body) {
        logStep(name)
        return enterBlock(name, detail, inner, body)
    }

    /** The block of a step whose "[Pipeline] name" line is already in the log. */
    private def enterBlock(String name, String detail, StepContext inner, Closure body) {
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
        ProcessBuilder builder = new ProcessBuilder('bash', '-xe', '-c', script).directory(here.directory)
        builder.environment().clear()
        builder.environment().putAll(here.environment())
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
        int exitCode = waitFor(process, here)
        logger.join()
        capture?.join()
        if (exitCode != 0 && !returnStatus) {
            throw new PipelineFailure("script returned exit code ${exitCode}")
        }
        if (returnStatus) {
            return exitCode
        }
        return returnStdout ? new String(stdout.toByteArray(), 'UTF-8') : null
    }

    private static Thread copyLinesToLog(InputStream stream, StepContext here) {
        return Thread.start {
            stream.withReader('UTF-8') { Reader reader ->
                reader.eachLine { String line -> here.log(line) }
            }
        }
    }

    private static int waitFor(Process process, StepContext here) {
        try {
            if (here.deadline == null) {
                return process.waitFor()
            }
            long remaining = here.deadline - System.nanoTime()
            if (remaining > 0 && process.waitFor(remaining, TimeUnit.NANOSECONDS)) {
                return process.exitValue()
            }
            kill(process)
            throw new PipelineFailure('Timeout has been exceeded', 'ABORTED')
        } catch (InterruptedException e) {
            kill(process)
            throw here.pastDeadline ? new PipelineFailure('Timeout has been exceeded', 'ABORTED') : e
        }
    }

    private static void kill(Process process) {
        process.descendants().each { it.destroyForcibly() }
        process.destroyForcibly()
        process.waitFor()
    }

    def withEnv(List overrides, Closure body) {
        StepContext inner = context().withEnvironment(overrides.collect { String.valueOf(it) })
        return block('withEnv', null, inner, body)
    }

    /** Branches run concurrently, each on its own thread; the step fails after all finish if any failed. */
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
            threads.each { it.join() }
        } catch (InterruptedException e) {
            threads.each { it.interrupt() }
            threads.each { it.join() }
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
        // As in Jenkins, every binding is instantiated before any credential is looked up.
        List<Map> specs = bindings.collect { Object binding ->
            Map spec = (Map) binding
            if (!spec.containsKey('$class')) {
                return spec
            }
            String type = Describables.resolve(Describables.BINDING_STEP, [bindings: bindings], Describables.MULTI_BINDING,
                    spec, availableDescribables(Describables.MULTI_BINDING))
            return type.endsWith('.UsernamePasswordMultiBinding') ? usernamePassword(spec) : string(spec)
        }
        specs.each { Map spec ->
            Map<String, String> values = pipelineRun.runner.credentials.bind(String.valueOf(spec.binding), String.valueOf(spec.credentialsId))
            spec.variables.each { String field, Object variable ->
                assignments << "${variable}=${values[field]}".toString()
                secrets << values[field]
                variables << "\$${variable}".toString()
            }
        }
        here.log("Masking supported pattern matches of ${variables.join(' or ')}")
        StepContext inner = here.withEnvironment(assignments).withMasked(secrets)
        inner.log('[Pipeline] {')
        try {
            return pipelineRun.within(inner, body)
        } finally {
            inner.log('[Pipeline] }')
            logStep('// withCredentials')
        }
    }

    /** The Credentials Binding plugin's username/password binding (a "Username with password" credential). */
    Map usernamePassword(Map args) {
        requirePlugin('credentials-binding', 'usernamePassword')
        return [binding: 'usernamePassword', credentialsId: args.credentialsId,
                variables: [username: args.usernameVariable, password: args.passwordVariable]]
    }

    /** The Credentials Binding plugin's secret text binding ("Secret text", OIDC id token). */
    Map string(Map args) {
        requirePlugin('credentials-binding', 'string')
        return [binding: 'string', credentialsId: args.credentialsId, variables: [secret: args.variable]]
    }

    private void requirePlugin(String plugin, String step) {
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
        StepContext inner = context().withDeadline(System.nanoTime() + nanos)
        Thread blocked = Thread.currentThread()
        Object finished = new Object()
        boolean done = false
        def timer = pipelineRun.timers.schedule({
            synchronized (finished) {
                if (!done) {
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
        Thread.sleep(millis)
    }

    def node(Closure body) {
        return node('', body)
    }

    def node(CharSequence label, Closure body) {
        StepContext here = context()
        logStep('node')
        here.log("Running on replay in ${here.directory}")
        here.log('[Pipeline] {')
        try {
            return pipelineRun.within(here, body)
        } finally {
            here.log('[Pipeline] }')
            logStep('// node')
        }
    }

    def stage(CharSequence name, Closure body) {
        return block('stage', name.toString(), context(), body)
    }

    def dir(CharSequence path, Closure body) {
        StepContext here = context()
        File target = new File(path.toString()).absolute ? new File(path.toString()) : new File(here.directory, path.toString())
        return block('dir', null, here.inDirectory(target), body)
    }

    def retry(int count, Closure body) {
        logStep('retry')
        for (int attempt = 1; ; attempt++) {
            try {
                return pipelineRun.within(context(), body)
            } catch (PipelineFailure e) {
                if (attempt >= count) {
                    throw e
                }
                context().log("ERROR: ${e.message}")
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
        return File.separatorChar == '/' as char
    }

    /** library('withAwsRole'): this runner always has the library loaded. */
    def library(CharSequence name) {
        pipelineRun.library.checkKnown(name.toString())
        return null
    }

    private File fileInWorkspace(String path) {
        File file = new File(path)
        return file.absolute ? file : new File(context().directory, path)
    }
}
