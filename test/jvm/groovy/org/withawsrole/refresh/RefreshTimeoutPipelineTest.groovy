package org.withawsrole.refresh

import org.junit.Test
import org.withawsrole.World
import org.withawsrole.WorldTestBase
import org.withawsrole.replay.BuildResult
import org.withawsrole.replay.PipelineRunner

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertSucceeded

/**
 * A refresh: true block's timeout is its Vault token's lifetime, and only the core knows its
 * limits (1 minute to 7 days). Groovy used to accept up to 7 days itself and then ask for the
 * timeout plus 5 minutes, which the core refused: a timeout just under 7 days failed with an
 * error about a token_ttl the Jenkinsfile never named.
 */
class RefreshTimeoutPipelineTest extends WorldTestBase {
    static BuildResult build(String jobName, String jenkinsfile) {
        PipelineRunner runner = PipelineRunner.forThisProject()
        runner.workspace = File.createTempDir()
        runner.jobName = jobName
        return runner.run(jenkinsfile)
    }

    @Test
    void a_timeout_just_under_a_week_runs_the_block() {
        BuildResult build = build('refresh-timeout-week', '''
            withAwsRole(role: 'ecr-push', refresh: true, timeout: '6d23h59m') {
                sh 'set +x; aws sts get-caller-identity --query Arn --output text'
            }
        ''')
        assertSucceeded(build)
        // The token lives the timeout: 6d23h59m = 604740 s, and the block ends with it.
        assertLogHas(build, ['assumed-role/jenkins-ecr-push-role/', 'is aborted after 604740 s, when the token ends',
                             "the block's Vault token is revoked"])
    }

    static void assertLogHas(BuildResult build, List<String> texts) {
        List<String> missing = texts.findAll { String text -> !build.log.contains(text) }
        assertTrue("missing ${missing} in:\n${build.log}".toString(), missing.isEmpty())
    }

    @Test
    void a_timeout_over_a_week_is_the_cores_one_error() {
        long before = World.requestsSeen()
        BuildResult build = build('refresh-timeout-over', '''
            withAwsRole(role: 'ecr-push', refresh: true, timeout: '7d1m') { echo 'never here' }
        ''')
        assertEquals(build.log, ['FAILURE', 1, false], [build.result, build.log.count('ERROR: '), build.log.contains('never here')])
        assertLogHas(build, ['withAwsRole(\'ecr-push\'): invalid token_ttl "7d1m"', 'from 1m to 7d', "block's `timeout` is its token's"])
        assertEquals('refused before Vault', before, World.requestsSeen())
    }
}
