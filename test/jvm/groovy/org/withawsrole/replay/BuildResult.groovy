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

    BuildResult(int number, String result, String log, Throwable failure, ClassLoader libraryClassLoader) {
        this.number = number
        this.result = result
        this.log = log
        this.failure = failure
        this.libraryClassLoader = libraryClassLoader
    }

    /**
     * Which of secrets appear in this build's console log and in files under directories (each
     * with its @tmp sibling): build.secretsFound([token], workspace).empty after a pipeline test.
     */
    SecretsScan secretsFound(Collection<String> secrets, File... directories) {
        return SecretsScan.of(log, secrets, directories as List<File>)
    }

    boolean isSuccess() {
        return result == 'SUCCESS'
    }

    @Override
    String toString() {
        return "build #${number}: ${result}"
    }
}
