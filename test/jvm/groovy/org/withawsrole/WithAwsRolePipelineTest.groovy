package org.withawsrole

import org.junit.Before
import org.junit.BeforeClass
import org.junit.Rule
import org.junit.Test
import org.junit.rules.TemporaryFolder
import org.junit.rules.TestName
import org.withawsrole.replay.BuildResult
import org.withawsrole.replay.PipelineRunner

import static org.junit.Assert.*

/** Jenkinsfiles using withAwsRole, run by the local runner against the real world. */
class WithAwsRolePipelineTest {
    static final String SUMMARY_LINE =
            /(?m)^withAwsRole: ecr-push as arn:aws:sts::\d+:assumed-role\/jenkins-ecr-push-role\/\S+, expires \S+ \(cache (hit|miss)\)$/

    @Rule
    public TemporaryFolder workspace = new TemporaryFolder()

    @Rule
    public TestName test = new TestName()

    PipelineRunner runner

    @BeforeClass
    static void world() {
        World.require()
    }

    @Before
    void runner() {
        runner = PipelineRunner.forThisProject()
        runner.workspace = workspace.root
        // Session names (jenkins-<job>-<build>) are part of the cache key: one job per test keeps
        // the tests of this JVM from sharing cached credentials.
        runner.jobName = test.methodName.replace('_', '-')
    }

    @Test
    void block_gets_credentials_that_never_reach_the_log() {
        BuildResult build = runner.run('''
            @Library('withAwsRole') _
            node {
                withAwsRole('ecr-push') {
                    sh 'set +x; aws sts get-caller-identity --query Arn --output text'
                    sh 'set +x; printf %s "$AWS_ACCESS_KEY_ID" > access-key-id; printf %s "$AWS_SECRET_ACCESS_KEY" > secret-access-key; printf %s "$AWS_SESSION_TOKEN" > session-token'
                    // Careless on purpose: without set +x the trace shows the expanded values.
                    sh 'printf "%s %s" "$AWS_SECRET_ACCESS_KEY" "$AWS_SESSION_TOKEN" > /dev/null'
                    echo "expires at ${env.AWS_CREDENTIAL_EXPIRATION}"
                }
                sh 'set +x; echo "after the block: [${AWS_ACCESS_KEY_ID:-}${AWS_SECRET_ACCESS_KEY:-}${AWS_SESSION_TOKEN:-}]"'
                echo "env after the block: ${env.AWS_SECRET_ACCESS_KEY}"
            }
        ''')
        assertTrue(build.log, build.success)
        assertTrue(build.log, build.log.contains('assumed-role/jenkins-ecr-push-role/'))
        assertEquals(build.log, 1, (build.log =~ SUMMARY_LINE).count)

        String secretAccessKey = workspaceFile('secret-access-key')
        String sessionToken = workspaceFile('session-token')
        assertTrue('the block saw a secret key', secretAccessKey.length() >= 16)
        assertTrue('the block saw a session token', sessionToken.length() >= 16)
        assertTrue('the block saw an access key id', workspaceFile('access-key-id').length() >= 16)
        assertFalse('secret key in the log', build.log.contains(secretAccessKey))
        assertFalse('session token in the log', build.log.contains(sessionToken))
        assertTrue("the careless trace was masked:\n${build.log}", build.log.contains("+ printf '%s %s' ******** ********"))

        assertTrue('environment restored for sh', build.log.contains('after the block: []'))
        assertTrue('environment restored for env', build.log.contains('env after the block: null'))
    }

    @Test
    void options_reach_the_request() {
        BuildResult build = runner.run('''
            withAwsRole('ecr-push', ttl: '15m', region: 'eu-west-1', sessionName: 'options-test') {
                sh 'set +x; echo "region=$AWS_REGION/$AWS_DEFAULT_REGION"'
            }
        ''')
        assertTrue(build.log, build.success)
        assertTrue(build.log, build.log.contains('assumed-role/jenkins-ecr-push-role/options-test'))
        assertTrue(build.log, build.log.contains('region=eu-west-1/eu-west-1'))
    }

    @Test
    void session_name_records_job_and_build() {
        BuildResult build = runner.run("withAwsRole('ecr-push') { echo 'inside' }")
        assertTrue(build.log, build.success)
        assertTrue(build.log, build.log.contains("assumed-role/jenkins-ecr-push-role/jenkins-${runner.jobName}-${build.number},"))
    }

    @Test
    void parallel_branches_share_one_vault_call() {
        World.resetCounters()
        BuildResult build = runner.run('''
            def branches = [:]
            for (int i = 0; i < 32; i++) {
                def n = i
                branches["b${n}"] = {
                    withAwsRole('ecr-push') {
                        sh "set +x; printf %s \\"\\$AWS_ACCESS_KEY_ID\\" > key-${n}"
                    }
                }
            }
            parallel branches
        ''')
        assertTrue(build.log, build.success)
        assertEquals(build.log, 32, (build.log =~ /withAwsRole: ecr-push as .*\(cache (hit|miss)\)/).count)
        Set<String> keys = (0..<32).collect { workspaceFile("key-${it}") } as Set
        assertEquals('every branch got the same credentials', 1, keys.size())
        assertEquals(build.log, 1, World.stsCalls('aws/ecr-push'))
    }

    @Test
    void refused_purpose_fails_with_one_line_and_no_stack_trace() {
        BuildResult build = runner.run("withAwsRole('forbidden') { echo 'never here' }")
        assertEquals(build.log, 'FAILURE', build.result)
        assertTrue(build.log, build.log.contains("ERROR: withAwsRole('forbidden'): "))
        assertFalse(build.log, build.log.contains('never here'))
        assertFalse(build.log, build.log.contains('\tat '))
    }

    @Test
    void invalid_purpose_fails_with_one_line_and_no_stack_trace() {
        BuildResult build = runner.run("withAwsRole('../x') { echo 'never here' }")
        assertEquals(build.log, 'FAILURE', build.result)
        assertTrue(build.log, build.log.contains("ERROR: withAwsRole('../x'): "))
        assertFalse(build.log, build.log.contains('\tat '))
    }

    @Test
    void unreachable_vault_fails_with_one_line() {
        BuildResult build = runner.run('''
            withEnv(['VAULT_ADDR=http://127.0.0.1:1']) {
                withAwsRole(purpose: 'ecr-push', sessionName: 'unreachable-test') { echo 'never here' }
            }
        ''')
        assertEquals(build.log, 'FAILURE', build.result)
        assertTrue(build.log, build.log.contains("ERROR: withAwsRole('ecr-push'): "))
        assertFalse(build.log, build.log.contains('\tat '))
    }

    @Test
    void unknown_option_is_named() {
        BuildResult build = runner.run("withAwsRole(purpose: 'ecr-push', colour: 'blue') { echo 'never here' }")
        assertEquals(build.log, 'FAILURE', build.result)
        assertTrue(build.log, build.log.contains('ERROR: withAwsRole: unknown option colour; valid options: purpose, ttl'))
    }

    @Test
    void missing_purpose_is_named() {
        BuildResult build = runner.run("withAwsRole { echo 'never here' }")
        assertEquals(build.log, 'FAILURE', build.result)
        assertTrue(build.log, build.log.contains("ERROR: withAwsRole: name a purpose: withAwsRole('ecr-push') { ... }"))
    }

    @Test
    void failure_inside_the_block_still_restores_the_environment() {
        BuildResult build = runner.run('''
            try {
                withAwsRole('ecr-push') { error 'inside' }
            } catch (e) {
                echo "caught: ${e.message}"
            }
            echo "after: ${env.AWS_ACCESS_KEY_ID}"
        ''')
        assertTrue(build.log, build.success)
        assertTrue(build.log, build.log.contains('caught: inside'))
        assertTrue(build.log, build.log.contains('after: null'))
    }

    @Test
    void returns_the_value_of_the_block() {
        BuildResult build = runner.run('''
            def arn = withAwsRole('ecr-push') {
                sh(script: 'aws sts get-caller-identity --query Arn --output text', returnStdout: true).trim()
            }
            echo "arn=${arn}"
        ''')
        assertTrue(build.log, build.success)
        assertTrue(build.log, (build.log =~ /arn=arn:aws:sts::\d+:assumed-role\/jenkins-ecr-push-role\//).find())
    }

    private String workspaceFile(String name) {
        File file = new File(workspace.root, name)
        assertTrue("${name} written by the block", file.isFile())
        return file.text
    }
}
