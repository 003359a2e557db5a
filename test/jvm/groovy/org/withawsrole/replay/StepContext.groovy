package org.withawsrole.replay

/**
 * What a step sees of the block it runs in: withEnv overrides, masked values, the parallel branch,
 * the directory, the timeout deadline. Immutable; nested blocks make children. Each thread (the main
 * one, each parallel branch) has its current context in PipelineRun.
 */
class StepContext {
    final PipelineRun run
    /** withEnv overrides in the order applied; a null value removes the variable. */
    final Map<String, String> overrides
    final List<String> masked
    final String branch
    final File directory
    /** System.nanoTime() deadline of the innermost timeout, or null. */
    final Long deadline
    /** Variables a withCredentials binding declared sensitive (EnvironmentExpander.getSensitiveVariables). */
    final Set<String> sensitive

    StepContext(PipelineRun run, Map<String, String> overrides, List<String> masked, String branch, File directory, Long deadline,
                Set<String> sensitive = []) {
        this.run = run
        this.overrides = Collections.unmodifiableMap(new LinkedHashMap<String, String>(overrides))
        this.masked = Collections.unmodifiableList(new ArrayList<String>(masked))
        this.branch = branch
        this.directory = directory
        this.deadline = deadline
        this.sensitive = Collections.unmodifiableSet(new LinkedHashSet<String>(sensitive))
    }

    /** The environment a process started here gets, and env.X reads. */
    Map<String, String> environment() {
        Map<String, String> environment = new LinkedHashMap<String, String>(run.buildEnvironment())
        overrides.each { String name, String value ->
            if (value == null) {
                environment.remove(name)
            } else {
                environment[name] = value
            }
        }
        return environment
    }

    /**
     * The environment of a process a step starts here: the agent's own process environment with
     * this one on top, as Jenkins' launcher builds it (PipelineRunner.agentEnvironment).
     */
    Map<String, String> processEnvironment() {
        Map<String, String> agent = run.runner.agentEnvironment
        Map<String, String> process = new LinkedHashMap<String, String>(agent == null ? run.runner.baseEnvironment : agent)
        process.putAll(environment())
        return process
    }

    /** withEnv(['A=b', 'PATH+EXTRA=/opt/bin', 'C=']) as Jenkins reads it: PATH+X prepends, empty unsets. */
    StepContext withEnvironment(List<String> assignments) {
        Map<String, String> next = new LinkedHashMap<String, String>(overrides)
        Map<String, String> current = environment()
        for (Object assignment : assignments) {
            String text = String.valueOf(assignment)
            int equals = text.indexOf('=')
            if (equals <= 0) {
                throw new IllegalArgumentException("withEnv: '${text}' is not NAME=value")
            }
            String name = text.substring(0, equals)
            String value = text.substring(equals + 1)
            int plus = name.indexOf('+')
            if (plus > 0) {
                name = name.substring(0, plus)
                String existing = current[name]
                value = existing ? value + File.pathSeparator + existing : value
            }
            next.remove(name) // keep application order
            next[name] = value.isEmpty() ? null : value
            current[name] = value
        }
        return new StepContext(run, next, masked, branch, directory, deadline, sensitive)
    }

    StepContext withMasked(Collection<String> values) {
        List<String> all = new ArrayList<String>(masked)
        all.addAll(values.findAll { it })
        return new StepContext(run, overrides, all, branch, directory, deadline, sensitive)
    }

    StepContext withSensitive(Collection<String> variables) {
        Set<String> all = new LinkedHashSet<String>(sensitive)
        all.addAll(variables)
        return new StepContext(run, overrides, masked, branch, directory, deadline, all)
    }

    StepContext inBranch(String name) {
        return new StepContext(run, overrides, masked, name, directory, deadline, sensitive)
    }

    StepContext inDirectory(File dir) {
        return new StepContext(run, overrides, masked, branch, dir, deadline, sensitive)
    }

    StepContext withDeadline(long nanoTime) {
        Long sooner = deadline == null ? nanoTime : Math.min(deadline, nanoTime)
        return new StepContext(run, overrides, masked, branch, directory, sooner, sensitive)
    }

    boolean isPastDeadline() {
        return deadline != null && System.nanoTime() - deadline >= 0
    }

    /** Writes text to the console, line by line: masked values become ********, branch lines get [branch]. */
    void log(String text) {
        List<String> byLength = masked.sort(false) { -it.length() }
        for (String line : text.split('\n', -1).toList().with { it.size() > 1 && it.last().isEmpty() ? it.subList(0, it.size() - 1) : it }) {
            String shown = line
            for (String value : byLength) {
                shown = shown.replace(value, '********')
            }
            run.console.println(branch == null ? shown : "[${branch}] ${shown}".toString())
        }
    }
}
