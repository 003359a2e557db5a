package org.withawsrole.replay

import java.security.MessageDigest
import java.util.concurrent.ConcurrentHashMap

/**
 * What Jenkins writes to disk of a running build, and what stays there afterwards.
 *
 * Saved program state (Jenkins' program.dat, written with JBoss Marshalling at every step
 * boundary): here, at every step call, the open blocks of every thread of the build (each block
 * step's arguments, the closure passed to it included, with what that closure captures: its
 * owner, i.e. the library object that called the step, and the locals it uses) and the arguments
 * of the step being called, written with Java serialization. An object that cannot be serialized
 * fails the build with java.io.NotSerializableException, as in Jenkins. The runner's own objects
 * (scripts, env, currentBuild, ...) are written as references, as Jenkins' pickles write its own;
 * a script's binding is written with it, as CpsScript's is. Jenkins deletes program.dat when the
 * build ends: these bytes are what was on disk while it ran.
 *
 * Step records (the flow nodes' ArgumentsAction, kept with the build for good): each step's name
 * and arguments as workflow-cps' ArgumentsActionImpl stores them: a string or a nested map or list
 * longer than 1024 is replaced by OVERSIZE_VALUE, the values of variables a withCredentials binding
 * declared sensitive by ${NAME}; everything else is stored as given. `parallel`'s are not stored.
 *
 * Not modelled: CPS frames' locals that no closure passed to a step captures (the runner runs
 * plain Groovy, not the CPS interpreter, so it cannot see them).
 */
class ProgramState {
    /** ArgumentsAction.MAX_RETAINED_LENGTH */
    static final int MAX_RETAINED_LENGTH = 1024
    static final String OVERSIZE_VALUE = 'OVERSIZE_VALUE'
    static final String UNSERIALIZABLE = 'UNSERIALIZABLE'
    /** Saved states kept per build (their distinct bytes), beyond which only the last is kept. */
    static final int MAX_KEPT_BYTES = 32 * 1024 * 1024
    /** Where the library keeps its JVM-wide bridge (NativeBridge.REGISTRY_KEY_PREFIX): gone after a restart. */
    static final String BRIDGE_REGISTRY = 'org.withawsrole.bridge.loader.'

    /** Names under which DSL stores a step's single unnamed argument (its @DataBoundConstructor parameter). */
    static final Map<String, String> UNNAMED_ARGUMENT = [
            sh: 'script', bat: 'script', powershell: 'script', pwsh: 'script', echo: 'message', error: 'message',
            unstable: 'message', withEnv: 'overrides', wrap: 'delegate', step: 'delegate', withCredentials: 'bindings',
            sleep: 'time', libraryResource: 'resource', readFile: 'file', fileExists: 'file', stage: 'name', node: 'label',
            dir: 'path', retry: 'count', timeout: 'time', stash: 'name', unstash: 'name', archiveArtifacts: 'artifacts',
            junit: 'testResults', tool: 'name', input: 'message', git: 'url', lock: 'resource', library: 'identifier',
            checkout: 'scm', properties: 'properties', milestone: 'ordinal', ansiColor: 'colorMapName', warnError: 'message',
    ].asImmutable()

    /** Names in PipelineScript.STEPS that build a step's argument (a describable) rather than being steps. */
    static final Set<String> NOT_STEPS = ['booleanParam', 'buildDiscarder', 'choice', 'logRotator', 'modernSCM', 'parameters',
                                          'password', 'pipeline', 'pipelineTriggers', 'string', 'text',
                                          'usernamePassword'].toSet().asImmutable()

    private final PipelineRun run
    /** The open block steps of each thread of the build, innermost last: [step name, its arguments]. */
    private final Map<Thread, List<List<Object>>> openBlocks = new ConcurrentHashMap<Thread, List<List<Object>>>()
    /** True while a step's own implementation runs on this thread (its calls to other steps are not steps). */
    private final ThreadLocal<Boolean> inStep = new ThreadLocal<Boolean>()
    private volatile boolean restarted
    private final List<String> records = Collections.synchronizedList([])
    private final ByteArrayOutputStream saved = new ByteArrayOutputStream()
    private final Set<String> savedDigests = new HashSet<String>()
    private volatile byte[] last = new byte[0]

    ProgramState(PipelineRun run) {
        this.run = run
    }

    /** Whether a call to this method of a script is a step call to record and save at. */
    boolean isStepCall(String name) {
        if (inStep.get()) {
            return false
        }
        return isStepName(name) || PluginSteps.provides(run.runner.plugins, name)
    }

    /** A step of the runner's own (PipelineScript.STEPS), not one that builds another's argument. */
    static boolean isStepName(String name) {
        return name in PipelineScript.STEPS && !(name in NOT_STEPS)
    }

    /** Records the step, saves the program, then runs the step (`call`) with its block, if any, open. */
    Object step(String name, Object[] args, Closure call) {
        record(name, args)
        save(args)
        if (!restarted && run.runner.restartBefore?.call(name, namedArguments(name, args))) {
            restart(name)
        }
        boolean block = args.length > 0 && args[args.length - 1] instanceof Closure
        List<List<Object>> open = openBlocks.computeIfAbsent(Thread.currentThread()) { Thread ignored -> [].asSynchronized() }
        if (block) {
            open << [name, args]
        }
        inStep.set(true)
        try {
            return call.call()
        } finally {
            inStep.set(false)
            if (block) {
                open.remove(open.size() - 1)
            }
            if (open.isEmpty()) {
                openBlocks.remove(Thread.currentThread())
            }
        }
    }

    /**
     * A controller restart before this step (PipelineRunner.restartBefore): the program saved just
     * now is read back with the library and the Jenkinsfile compiled in a fresh classloader, as the
     * new JVM reads program.dat, and the library's JVM-wide bridge is gone, as in a new JVM (its
     * registry entries, NativeBridge.REGISTRY_KEY_PREFIX, leave System.getProperties()). The build
     * then goes on with the same Java stack: plain Groovy cannot resume from bytes, so what a resume
     * needs of the saved state is checked by reading it, and what runs after it (the block, its
     * finally) runs without the bridge an earlier step installed.
     */
    private void restart(String step) {
        restarted = true
        byte[] saved = lastSavedState
        LocalLibrary fresh = LocalLibrary.forBuild(run.runner, run.jenkinsfile, new ConsoleLog(null))
        fresh.compileJenkinsfile(run.jenkinsfile)
        List<Object> program = (List<Object>) ProgramInputStream.read(saved, fresh.classLoader)
        List<Object> registry = System.properties.keySet().findAll { String.valueOf(it).startsWith(BRIDGE_REGISTRY) }.toList()
        registry.each { System.properties.remove(it) }
        run.console.println("[replay] controller restarted before ${step}: the program saved there (${saved.length} bytes, " +
                "${program.size() - 1} open blocks) was read back in a fresh classloader; the JVM-wide bridge is gone " +
                "(${registry.size()} registry entries)")
        run.console.println('Resuming build after Jenkins restart')
    }

    /** A step's block runs its own steps: runs body with step recording on for this thread. */
    def <T> T body(Closure<T> body) {
        Boolean outer = inStep.get()
        inStep.set(false)
        try {
            return body.call()
        } finally {
            inStep.set(outer)
        }
    }

    /** The step records, one line per step: `name [argument: value, ...]` as stored. */
    List<String> getStepRecords() {
        synchronized (records) {
            return new ArrayList<String>(records)
        }
    }

    /** Every distinct saved state of the build, one after another (bounded by MAX_KEPT_BYTES), and the last. */
    synchronized byte[] getSavedStates() {
        ByteArrayOutputStream all = new ByteArrayOutputStream()
        all.write(saved.toByteArray())
        all.write(last)
        return all.toByteArray()
    }

    synchronized byte[] getLastSavedState() {
        return last
    }

    private void record(String name, Object[] args) {
        if (name == 'parallel') {
            return
        }
        Map<String, Object> named = namedArguments(name, args)
        if (named.isEmpty()) {
            records << name
            return
        }
        StepContext context = run.currentContext()
        Map<String, String> sensitive = context.environment().subMap(context.sensitive)
        records << "${name} ${sanitized(named, sensitive, true)}".toString()
    }

    /** The step's arguments by name, without its block, as DSL hands them to ArgumentsActionImpl. */
    static Map<String, Object> namedArguments(String name, Object[] args) {
        List<Object> values = args.findAll { !(it instanceof Closure) }
        if (values.isEmpty()) {
            return [:]
        }
        if (values.size() == 1 && values[0] instanceof Map) {
            return new LinkedHashMap<String, Object>((Map<String, Object>) values[0])
        }
        Map<String, Object> named = new LinkedHashMap<String, Object>()
        named[UNNAMED_ARGUMENT[name] ?: 'value'] = values[0]
        values.drop(1).eachWithIndex { Object value, int i -> named["argument${i + 1}".toString()] = value }
        return named
    }

    /** ArgumentsActionImpl.sanitizeObjectAndRecordMutation, as far as the runner's arguments go. */
    static Object sanitized(Object value, Map<String, String> sensitive, boolean topLevel = false) {
        if (value instanceof CharSequence) {
            String text = value.toString()
            if (text.length() > MAX_RETAINED_LENGTH) {
                return OVERSIZE_VALUE
            }
            sensitive.each { String variable, String secret -> text = secret ? text.replace(secret, '${' + variable + '}') : text }
            return text
        }
        if (value instanceof Map) {
            Map<Object, Object> output = new LinkedHashMap<Object, Object>()
            long size = ((Map) value).size()
            for (Map.Entry entry : ((Map) value).entrySet()) {
                Object modded = sanitized(entry.value, sensitive)
                size += String.valueOf(entry.key).length() + shallowSize(modded)
                if (!topLevel && size > MAX_RETAINED_LENGTH) {
                    return OVERSIZE_VALUE
                }
                output[entry.key] = modded
            }
            return output
        }
        if (value instanceof Collection || value instanceof Object[]) {
            List<Object> items = value as List
            long size = items.size()
            List<Object> output = []
            for (Object item : items) {
                Object modded = sanitized(item, sensitive)
                size += shallowSize(modded)
                if (size > MAX_RETAINED_LENGTH) {
                    return OVERSIZE_VALUE
                }
                output << modded
            }
            return output
        }
        if (value == null || value instanceof Number || value instanceof Boolean || value instanceof Enum) {
            return value
        }
        return UNSERIALIZABLE
    }

    private static long shallowSize(Object value) {
        if (value.is(OVERSIZE_VALUE) || value.is(UNSERIALIZABLE)) {
            return 1 // NotStoredReason, an enum in Jenkins
        }
        if (value instanceof CharSequence) {
            return ((CharSequence) value).length()
        }
        if (value instanceof Map || value instanceof Collection) {
            return value.size()
        }
        return value == null ? 0 : 1
    }

    /** Writes the program as it stands (every thread's open blocks and this step's arguments). */
    private void save(Object[] stepArguments) {
        List<Object> program = []
        openBlocks.values().each { List<List<Object>> blocks ->
            synchronized (blocks) {
                program.addAll(blocks)
            }
        }
        program << stepArguments
        try {
            keep(ProgramOutputStream.write(program))
        } catch (NotSerializableException e) {
            throw new NotSaved(e)
        }
    }

    /**
     * Jenkins could not save the program: the build ends (CpsFlowExecution.croak), the pipeline's own
     * try/catch cannot catch it (an Error here: library and Jenkinsfile code catch Exception).
     */
    static class NotSaved extends Error {
        NotSaved(NotSerializableException cause) {
            super(cause.toString(), cause)
        }
    }

    private synchronized void keep(byte[] bytes) {
        if (last.length > 0 && saved.size() + last.length <= MAX_KEPT_BYTES &&
                savedDigests.add(MessageDigest.getInstance('SHA-256').digest(last).encodeHex().toString())) {
            saved.write(last)
        }
        last = bytes
    }
}
