package org.withawsrole.replay

import org.jenkinsci.plugins.workflow.cps.CpsThread
import org.junit.Before
import org.junit.Test

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertLogShows
import static org.withawsrole.BuildAssertions.assertSucceeded

/**
 * Library code finds the running build as in Jenkins, through CpsThread.current(), on the build's
 * threads only, and nothing a Jenkinsfile does to `env` changes it. No world needed.
 */
class BuildIdentityTest extends ReplayTestBase {
    /** What trusted library code would write (dynamic calls, importing only CpsThread). */
    static final String IDENTITY = '''
        import org.jenkinsci.plugins.workflow.cps.CpsThread
        def buildIdentity() {
            def thread = CpsThread.current()
            if (thread == null) {
                return 'none'
            }
            def run = thread.execution.owner.executable
            return "${run.parent.fullName}#${run.number}".toString()
        }
    '''

    @Before
    void jobInAFolder() {
        runner.jobName = 'team-a/app/main'
    }

    @Test
    void the_build_s_threads_know_their_job_and_number() {
        BuildResult build = runner.run(IDENTITY + '''
            echo "main: ${buildIdentity()}"
            parallel a: { echo "branch: ${buildIdentity()}" }, b: { echo "branch: ${buildIdentity()}" }
            def other = 'unset'
            Thread worker = Thread.start { other = buildIdentity() }
            worker.join()
            echo "other thread: ${other}"
        ''')
        assertSucceeded(build)
        String expected = "team-a/app/main#${build.number}"
        assertLogShows(build, "main: ${expected}", "[a] branch: ${expected}", "[b] branch: ${expected}", 'other thread: none')
    }

    @Test
    void nothing_is_current_after_the_build() {
        BuildResult build = runner.run(IDENTITY + "echo \"during: \${buildIdentity()}\"")
        assertLogShows(build, "during: team-a/app/main#${build.number}")
        assertNull('the test thread ran the build, and runs none now', CpsThread.current())
    }

    @Test
    void env_overrides_change_env_but_not_the_buildIdentity() {
        BuildResult build = runner.run(IDENTITY + '''
            env.JOB_NAME = 'forged/by/env'
            env.BUILD_NUMBER = '99'
            withEnv(['JOB_NAME=forged/by/withEnv', 'BUILD_NUMBER=9']) {
                echo "env: ${env.JOB_NAME} ${env.BUILD_NUMBER}"
                sh 'echo "sh: $JOB_NAME $BUILD_NUMBER"'
                echo "identity: ${buildIdentity()}"
            }
            echo "after: ${env.JOB_NAME} ${buildIdentity()}"
        ''')
        assertSucceeded(build)
        String expected = "team-a/app/main#${build.number}"
        assertTrue('withEnv overrides the build variables, as in Jenkins', build.log.contains('env: forged/by/withEnv 9'))
        assertLogShows(build, 'sh: forged/by/withEnv 9', "identity: ${expected}", "after: forged/by/env ${expected}")
    }

    @Test
    void declarative_environment_does_not_change_the_buildIdentity() {
        BuildResult build = runner.run(IDENTITY + '''
            pipeline {
                agent any
                environment { JOB_NAME = 'forged'; BUILD_NUMBER = '7' }
                stages {
                    stage('s') {
                        environment { JOB_NAME = 'forged/in/stage' }
                        steps { echo "env: ${env.JOB_NAME} identity: ${buildIdentity()}" }
                    }
                }
            }
        ''')
        assertSucceeded(build, "env: forged/in/stage identity: team-a/app/main#${build.number}")
    }
}
