package org.withawsrole.replay

import org.junit.Test

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertEnded
import static org.withawsrole.BuildAssertions.assertLogLacks

/** The runner's Stop button (BuildAbort) ends a build as Jenkins' does: ABORTED, steps stopped, finally blocks run. */
class BuildAbortTest extends ReplayTestBase {
    /** Runs jenkinsfile on another thread, presses Stop once `started` is in its log, and returns the build. */
    BuildResult abortedAfter(String started, String jenkinsfile) {
        BuildResult build = null
        Thread running = Thread.start { build = runner.run(jenkinsfile) }
        long giveUp = System.nanoTime() + 30_000_000_000L
        while (!(runner.running?.console?.text?.contains(started)) && System.nanoTime() < giveUp) {
            Thread.sleep(20)
        }
        assertTrue('a build is running', runner.abortRunningBuild())
        running.join(30_000)
        assertFalse('the build ended', running.alive)
        return build
    }

    @Test
    void stop_ends_a_long_sh_in_every_parallel_branch_and_finally_blocks_run() {
        BuildResult build = abortedAfter('both started', '''
            parallel a: {
                try { sh 'sleep 60' } finally { echo 'a cleaned up' }
            }, b: {
                sh 'echo both started; sleep 60'
            }
        ''')
        assertEnded(build, 'ABORTED', 'Aborted by user', 'a cleaned up')
        assertLogLacks(build, '\tat ')
    }

    @Test
    void stop_ends_a_sleep_step() {
        BuildResult build = abortedAfter('Sleeping for', "sleep 60\necho 'never here'")
        assertEnded(build, 'ABORTED')
        assertLogLacks(build, 'never here')
    }

    @Test
    void stop_with_no_build_running_does_nothing() {
        assertFalse(runner.abortRunningBuild())
    }
}
