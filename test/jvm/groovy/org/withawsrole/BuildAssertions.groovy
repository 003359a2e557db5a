package org.withawsrole

import org.withawsrole.replay.BuildResult
import org.withawsrole.replay.PipelineRunner

import static org.junit.Assert.*

/** What every expected failure of a step must look like to a Jenkins user. */
class BuildAssertions {
    /**
     * The build failed with exactly one `ERROR:` line that starts with `expectedStart`, no stack
     * trace and no Java exception name, and the block (which prints 'never here') did not run.
     */
    static void assertFailedWithOneLine(BuildResult build, String expectedStart) {
        assertEnded(build, 'FAILURE')
        List<String> errors = build.log.readLines().findAll { it.startsWith('ERROR: ') }
        assertEquals(build.log, 1, errors.size())
        assertTrue("expected 'ERROR: ${expectedStart}...' in:\n${build.log}".toString(), errors[0].startsWith("ERROR: ${expectedStart}"))
        assertFalse(build.log, build.log.contains('never here'))
        assertFalse("no stack trace:\n${build.log}".toString(), build.log.contains('\tat '))
        // Qualified names only: AWS's own error codes (ValidationError, ExpiredTokenException) may be quoted.
        assertFalse("no Java exception names:\n${build.log}".toString(),
                (build.log =~ /\b(java|javax|groovy|org|com|hudson|jenkins)\.[\w.$]*(Exception|Error)\b/).find())
    }

    /**
     * Runs `jenkinsfile` and asserts what assertFailedWithOneLine does, and that the refusal came
     * before the network: the world (Vault and STS) saw no request during the build.
     */
    static BuildResult assertRefusedBeforeVault(PipelineRunner runner, String jenkinsfile, String expectedStart) {
        long before = World.requestsSeen()
        BuildResult build = runner.run(jenkinsfile)
        assertFailedWithOneLine(build, expectedStart)
        assertEquals("requests that reached the world:\n${build.log}".toString(), before, World.requestsSeen())
        return build
    }

    /**
     * Runs each of `refusals`, a Jenkinsfile, the start of its one ERROR line and any texts its log
     * must also show, and asserts what assertFailedWithOneLine does; a failure names the Jenkinsfile.
     */
    static void assertEachFailsWithOneLine(PipelineRunner runner, List<List<String>> refusals) {
        refusals.each { List<String> refusal ->
            inCase(refusal[0]) {
                BuildResult build = runner.run(refusal[0].toString())
                assertFailedWithOneLine(build, refusal[1].toString())
                assertLogShows(build, refusal.drop(2) as Object[])
            }
        }
    }

    /** One case of a table-driven test: an assertion that fails in `check` says which case failed. */
    static void inCase(Object name, Closure check) {
        try {
            check()
        } catch (AssertionError e) {
            throw new AssertionError("case ${name}: ${e.message}".toString(), e)
        }
    }

    /** The build succeeded and every one of `texts` is in its log (the log is the message when not). */
    static void assertSucceeded(BuildResult build, Object... texts) {
        assertTrue(build.log, build.success)
        assertLogShows(build, texts)
    }

    /** The build ended with `result` (SUCCESS, FAILURE, UNSTABLE, ABORTED) and every one of `texts` is in its log. */
    static void assertEnded(BuildResult build, String result, Object... texts) {
        assertEquals(build.log, result, build.result)
        assertLogShows(build, texts)
    }

    /** Every one of `texts` is in the build's log (the log is the message when one is not). */
    static void assertLogShows(BuildResult build, Object... texts) {
        texts.each { Object text -> assertTrue("'${text}' is not in the log:\n${build.log}".toString(), build.log.contains(text.toString())) }
    }

    /** None of `texts` is in the build's log. */
    static void assertLogLacks(BuildResult build, Object... texts) {
        texts.each { Object text -> assertFalse("'${text}' is in the log:\n${build.log}".toString(), build.log.contains(text.toString())) }
    }
}
