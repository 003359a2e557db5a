package org.withawsrole.replay

/** What a finished run left: its number, result (SUCCESS, FAILURE, ABORTED) and console log. */
class BuildResult {
    final int number
    final String result
    final String log
    /** The failure that ended the build, or null. */
    final Throwable failure
    /** The classloader that compiled the library for this build. */
    final ClassLoader libraryClassLoader

    /** Files archiveArtifacts recorded (relative paths) and what junit recorded ([file:, tests:, failures:, ...]). */
    final List<String> artifacts
    /** The stages entered, in order, skipped ones included. */
    final List<String> stages
    final List<Map<String, Object>> testReports
    /** Each step's name and arguments as Jenkins keeps them with the build (ProgramState). */
    final List<String> stepRecords
    /** Every distinct program state saved while the build ran (ProgramState.savedStates). */
    final byte[] savedStates

    BuildResult(int number, String result, String log, Throwable failure, ClassLoader libraryClassLoader, PipelineRun run = null) {
        this.stages = run == null ? [] : new ArrayList<String>(run.stages)
        this.artifacts = run == null ? [] : new ArrayList<String>(run.artifacts)
        this.testReports = run == null ? [] : new ArrayList<Map<String, Object>>(run.testReports)
        this.stepRecords = run == null ? [] : run.program.stepRecords
        this.savedStates = run == null ? new byte[0] : run.program.savedStates
        this.number = number
        this.result = result
        this.log = log
        this.failure = failure
        this.libraryClassLoader = libraryClassLoader
    }

    /**
     * Which of secrets appear in this build's console log, its step records, the program state it
     * saved while running, and in files under directories (each with its @tmp sibling), as the
     * Mask Passwords plugin's tests grep a build's directory: build.secretsFound([token], workspace).empty
     * after a pipeline test.
     */
    SecretsScan secretsFound(Collection<String> secrets, File... directories) {
        return SecretsScan.of(log, secrets, directories as List<File>, stepRecords.join('\n'), savedStates)
    }

    boolean isSuccess() {
        return result == 'SUCCESS'
    }

    @Override
    String toString() {
        return "build #${number}: ${result}"
    }
}
