package org.withawsrole.replay

import org.junit.Test

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertSucceeded

/**
 * A build's pipeline threads share one CPS VM thread, as in Jenkins: parallel branches take turns,
 * a branch lets the others run only while it waits in a step, and code that holds the thread
 * (a native call, Thread.sleep in Groovy) stalls every branch. No world needed.
 */
class CpsVmThreadTest extends ReplayTestBase {
    @Test
    void code_that_holds_the_thread_stalls_every_branch_and_a_waiting_step_lets_them_run() {
        BuildResult build = runner.run('''
            parallel holder: {
                echo 'holder begins'
                Thread.sleep(1500)
                echo 'holder ends'
            }, other: {
                sleep(time: 200, unit: 'MILLISECONDS')
                echo 'other ran'
            }, waiter: {
                sh 'sleep 1'
                echo 'waiter ran'
            }
        ''')
        assertSucceeded(build)
        String log = build.log
        // Whichever branch ran first, none ran while the holder held the thread.
        assertTrue(log, log.indexOf('[other] other ran') > log.indexOf('[holder] holder ends'))
        assertTrue(log, log.indexOf('[waiter] waiter ran') > log.indexOf('[holder] holder ends'))
        assertTrue(log, log.indexOf('[holder] holder ends') > log.indexOf('[holder] holder begins'))
    }
}
