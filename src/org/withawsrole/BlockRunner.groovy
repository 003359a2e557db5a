package org.withawsrole

import com.cloudbees.groovy.cps.NonCPS

/**
 * Runs a block the way every withAwsRole mode does: the Mask Passwords wrapper over the block's
 * secrets, the summary line, the block's environment (and, for refresh: true, the timeout that
 * aborts it when its Vault token ends), the body; withEnv puts the environment back afterwards.
 *
 * Three steps per block (wrap, echo, withEnv), each a flow node Jenkins writes to disk. The block
 * is a map the caller built without keeping it (blockOf in each mode):
 * `role`, `mask`, `secrets` ([var:, password:] pairs), `summary`, `environment`, and optionally
 * `abortAtEpochSeconds`. The secrets and the environment are taken out of the map as they are
 * handed to wrap and withEnv, so while the body runs they are in those steps' arguments and in no
 * variable of the library's (a CPS program's variables are saved to disk: docs/security.md), and
 * those arguments are shaped so that Jenkins keeps them out of the build's step records (StepRecords).
 *
 * CPS: run, inEnvironment and withEnvironment call steps; the rest is @NonCPS.
 */
class BlockRunner implements Serializable {
    private static final long serialVersionUID = 1L

    static final String MASK_PASSWORDS_WRAPPER = 'MaskPasswordsBuildWrapper'

    final script

    BlockRunner(script) {
        this.script = script
    }

    /**
     * Runs the body inside the Mask Passwords plugin's wrapper. Whether the plugin is installed is
     * found by trying the wrapper, the same on every controller and in the local runner: when it
     * is missing, Jenkins fails the wrap step before its block starts, and so does this method,
     * with what to do. The block never runs unmasked unless the Jenkinsfile said mask: false.
     *
     * The wrap step's own failure message is never shown: Jenkins' "Could not instantiate
     * {delegate={$class=MaskPasswordsBuildWrapper, varPasswordPairs=[...]}}" quotes its
     * arguments, i.e. the very secrets the wrapper was to mask.
     */
    @SuppressWarnings('CatchException') // any failure of the wrap step before its block starts
    def run(Map block, Closure body) {
        if (block.mask == Boolean.FALSE) {
            block.remove('secrets')
            return inEnvironment(block, body)
        }
        boolean started = false
        try {
            // Inline, not a local: a CPS method's locals are saved with the program while the body runs.
            return script.wrap([$class          : MASK_PASSWORDS_WRAPPER,
                                varPasswordPairs: StepRecords.unstoredPairs((List<Map<String, String>>) block.remove('secrets')),]) {
                started = true
                inEnvironment(block, body)
            }
        } catch (Exception failure) {
            if (started || failure instanceof InterruptedException) {
                throw failure
            }
            script.error(StepMessages.oneLine("withAwsRole('${StepMessages.shown(block.role)}'): cannot mask the credentials " +
                    'in the build log, so the block did not run: install the Mask Passwords plugin (mask-passwords), ' +
                    'or pass mask: false for a block that prints nothing (the wrap step failed with a ' +
                    "${failure.getClass().simpleName}, whose message would show the secrets)"))
        }
    }

    def inEnvironment(Map block, Closure body) {
        script.echo((String) block.summary)
        if (block.abortAtEpochSeconds == null) {
            return withEnvironment(block, body)
        }
        return script.timeout(time: secondsUntil((long) block.abortAtEpochSeconds), unit: 'SECONDS') {
            withEnvironment(block, body)
        }
    }

    def withEnvironment(Map block, Closure body) {
        return script.withEnv(StepRecords.unstoredEnvironment((List<String>) block.remove('environment'))) {
            body()
        }
    }

    /** From now until then, at least a second (a block whose token is about to end still starts and is aborted). */
    @NonCPS
    static long secondsUntil(long epochSeconds) {
        return Math.max(1L, epochSeconds - (long) (System.currentTimeMillis() / 1000L))
    }
}
