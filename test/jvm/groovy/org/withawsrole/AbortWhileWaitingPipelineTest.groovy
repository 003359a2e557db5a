package org.withawsrole

import org.junit.After
import org.junit.Before
import org.junit.Test
import org.withawsrole.replay.BuildResult

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertEnded
import static org.withawsrole.BuildAssertions.assertLogLacks
import static org.withawsrole.BuildAssertions.assertLogShows

/**
 * A block waiting on a slow Vault ends within about a second of an enclosing timeout: Jenkins
 * delivers the interruption at the pipeline's steps, never into a native call, so the step waits
 * in slices with a sleep step between them (BridgeGateway.await). The world's front holds
 * the STS answer for 20 s; without the slices the block would wait for all of it. A refresh: true
 * block waits for its child token the same way: there the front holds Vault's auth/token/create
 * answer.
 */
class AbortWhileWaitingPipelineTest extends PipelineTestBase {
    static final int VAULT_DELAY_MS = 20000

    String fault

    @Before
    void slowVault() {
        fault = World.addFault([path: 'aws/sts/ecr-push', mode: 'delay', delay_ms: VAULT_DELAY_MS, count: 1])
    }

    @After
    void removeFault() {
        World.deleteFault(fault)
    }

    @Test
    void a_timeout_in_one_branch_leaves_the_shared_fetch_to_the_other_branch() {
        int before = World.stsCalls('aws/ecr-push')
        long started = System.nanoTime()
        BuildResult build = runner.run('''
            parallel impatient: {
                timeout(time: 2, unit: 'SECONDS') {
                    withAwsRole('ecr-push') { echo 'never here' }
                }
                echo 'never here either'
            }, patient: {
                withAwsRole('ecr-push') { echo "patient got ${env.AWS_ACCESS_KEY_ID ? 'keys' : 'nothing'}" }
            }, busy: {
                for (int i = 1; i <= 5; i++) {
                    echo "busy step ${i}"
                    sleep(time: 100, unit: 'MILLISECONDS')
                }
            }
        ''')
        long seconds = (System.nanoTime() - started).intdiv(1000000000L)
        assertEnded(build, 'ABORTED', 'Timeout has been exceeded')
        assertLogLacks(build, 'never here')
        // The patient branch waited for the same fetch, which went on after the other stopped waiting.
        assertLogShows(build, '[patient] patient got keys')
        // The branches share the build's one CPS VM thread: waiting for Vault in slices lets the others run.
        assertTrue(build.log, build.log.indexOf('[busy] busy step 5') in 0..<build.log.indexOf('[patient] patient got keys'))
        assertEquals('one Vault call for both branches', before + 1, World.stsCalls('aws/ecr-push'))
        assertTrue("the patient branch waited for Vault: ${seconds} s", seconds >= VAULT_DELAY_MS / 1000 - 1)
    }

    /**
     * Runs jenkinsfile on another thread; once the step waits for Vault in slices (its first sleep
     * step is in the log) runs `then`, and returns the build and the seconds from then to its end.
     * Measured from there, not from the start: compiling the library takes a while on a busy machine.
     */
    List runWhileWaiting(String jenkinsfile, Closure then) {
        BuildResult build = null
        Thread running = Thread.start { build = runner.run(jenkinsfile) }
        long giveUp = System.nanoTime() + 60_000_000_000L
        boolean sliced = false
        while (!sliced && System.nanoTime() < giveUp) {
            Thread.sleep(20)
            sliced = runner.running?.console?.text?.contains('Sleeping for')
        }
        assertTrue('the step waits for Vault in slices, with a sleep step between them', sliced)
        long waiting = System.nanoTime()
        then()
        running.join(VAULT_DELAY_MS * 2)
        assertFalse('the build ended', running.alive)
        return [build, (System.nanoTime() - waiting) / 1e9d]
    }

    @Test
    void a_timeout_ends_a_block_waiting_on_vault_long_before_vault_answers() {
        List outcome = runWhileWaiting('''
            timeout(time: 3, unit: 'SECONDS') {
                withAwsRole('ecr-push') { echo 'never here' }
            }
        ''') { }
        BuildResult build = outcome[0]
        double seconds = outcome[1]
        assertEnded(build, 'ABORTED', 'Timeout has been exceeded')
        assertLogLacks(build, 'never here')
        // Behaviour, not a timing target: the build ends with its timeout, not when Vault answers.
        assertTrue("the build ended ${seconds} s after it began to wait, Vault answers after ${VAULT_DELAY_MS / 1000} s",
                seconds < VAULT_DELAY_MS / 2000)
        println "timeout while waiting on Vault: the build ended ${String.format('%.2f', seconds)} s after it began to wait (timeout 3 s)"
    }

    @Test
    void an_abort_ends_a_block_waiting_on_vault_long_before_vault_answers() {
        List outcome = runWhileWaiting("withAwsRole('ecr-push') { echo 'never here' }") {
            assertTrue('a build is running', runner.abortRunningBuild())
        }
        BuildResult build = outcome[0]
        double seconds = outcome[1]
        assertEnded(build, 'ABORTED', 'Aborted by user')
        assertLogLacks(build, 'never here')
        assertTrue("the abort took ${seconds} s with Vault answering after ${VAULT_DELAY_MS / 1000} s", seconds < VAULT_DELAY_MS / 2000)
        println "abort while waiting on Vault: the build ended ${String.format('%.2f', seconds)} s after the Stop button"
    }

    /**
     * A refresh: true block whose child token Vault creates only after 20 s, stopped by `stop`:
     * the build ends long before Vault answers, and the token Vault then creates is revoked.
     */
    void refreshBlockStoppedWhileWaitingForItsToken(String around, Closure stop, String reason) {
        String tokenFault = World.addFault([path: '^auth/token/create', mode: 'delay', delay_ms: VAULT_DELAY_MS, count: 1])
        try {
            int revokedBefore = World.proxiedCalls('auth/token/revoke-self')
            String block = "withAwsRole(role: 'ecr-push', refresh: true, timeout: '10m') { echo 'never here' }"
            List outcome = runWhileWaiting("node { ${String.format(around, block)} }", stop)
            BuildResult build = outcome[0]
            double seconds = outcome[1]
            assertEnded(build, 'ABORTED', reason)
            assertLogLacks(build, 'never here')
            assertTrue("the build ended ${seconds} s after it began to wait, Vault answers after ${VAULT_DELAY_MS / 1000} s",
                    seconds < VAULT_DELAY_MS / 2000)
            // The block gave the token up: once Vault creates it, the core revokes it (no live token left behind).
            long giveUp = System.nanoTime() + VAULT_DELAY_MS * 2_000_000L
            while (World.proxiedCalls('auth/token/revoke-self') == revokedBefore && System.nanoTime() < giveUp) {
                Thread.sleep(100)
            }
            assertEquals('the abandoned child token was revoked', revokedBefore + 1, World.proxiedCalls('auth/token/revoke-self'))
        } finally {
            World.deleteFault(tokenFault)
        }
    }

    @Test
    void an_abort_ends_a_refresh_block_waiting_for_its_child_token() {
        refreshBlockStoppedWhileWaitingForItsToken('%s', { assertTrue('a build is running', runner.abortRunningBuild()) }, 'Aborted by user')
    }

    @Test
    void a_timeout_ends_a_refresh_block_waiting_for_its_child_token() {
        refreshBlockStoppedWhileWaitingForItsToken("timeout(time: 3, unit: 'SECONDS') { %s }", { }, 'Timeout has been exceeded')
    }
}
