package org.withawsrole.replay

import org.junit.Test

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertEnded
import static org.withawsrole.BuildAssertions.assertLogLacks
import static org.withawsrole.BuildAssertions.assertLogShows
import static org.withawsrole.BuildAssertions.assertSucceeded

/** Declarative Pipeline as Jenkins runs it, the parts this project's Jenkinsfiles use. No world needed. */
class DeclarativePipelineTest extends ReplayTestBase {
    @Test
    void environment_is_scoped_like_jenkins_and_parameters_have_their_defaults() {
        runner.parameters.GIVEN = 'from-the-build'
        BuildResult build = runner.run('''
            pipeline {
                agent any
                parameters {
                    string(name: 'GIVEN', defaultValue: 'default-given')
                    string(name: 'GREETING', defaultValue: 'hello')
                    booleanParam(name: 'DRY_RUN', defaultValue: true)
                    choice(name: 'REGION', choices: ['eu-west-1', 'us-east-1'])
                }
                environment {
                    TOP = 'top-value'
                    DERIVED = "${TOP}-and-${env.TOP}-${BUILD_NUMBER}"
                }
                options { timestamps(); disableConcurrentBuilds(); buildDiscarder(logRotator(numToKeepStr: '5')) }
                stages {
                    stage('first') {
                        environment { INNER = 'inner-value' }
                        steps {
                            sh 'echo "sh: $TOP $DERIVED $INNER $GREETING $DRY_RUN $REGION $GIVEN"'
                            echo "env: ${env.TOP} ${env.INNER} ${params.DRY_RUN.getClass().simpleName} ${params.REGION} ${params.GIVEN}"
                            script {
                                def words = ['scripted', 'block']
                                echo words.join(' ')
                            }
                        }
                    }
                    stage('second') {
                        steps { echo "second: ${env.TOP} ${env.INNER}" }
                    }
                }
            }
            echo "after: ${env.TOP}"
        ''')
        assertSucceeded(build, "sh: top-value top-value-and-top-value-${build.number} inner-value hello true eu-west-1 from-the-build",
                'env: top-value inner-value Boolean eu-west-1 from-the-build', '\nscripted block\n')
        assertTrue('stage environment stays in its stage', build.log.contains('second: top-value null'))
        assertTrue('pipeline environment stays in the pipeline', build.log.contains('after: null'))
        assertEquals('the agent notice is logged once', 1, build.log.count('every agent runs on this machine'))
        assertLogShows(build, '[Pipeline] stage\n[Pipeline] { (first)')
    }

    @Test
    void credentials_in_environment_bind_like_declarative_and_are_masked() {
        runner.credentials.usernamePassword('approle', 'the-role-id', 'the-secret-id').secretText('token', 'the-token')
        BuildResult build = runner.run('''
            pipeline {
                agent none
                environment { VAULT = credentials('approle') }
                stages {
                    stage('s') {
                        environment { TOKEN = credentials('token'); USER_COPY = "${VAULT_USR}" }
                        steps {
                            sh 'echo "sh: $VAULT / $VAULT_USR / $VAULT_PSW / $TOKEN / $USER_COPY"'
                            writeFile file: 'bound', text: "${env.VAULT}|${env.VAULT_USR}|${env.VAULT_PSW}|${env.TOKEN}"
                        }
                    }
                }
            }
        ''')
        assertSucceeded(build, 'sh: ******** / ******** / ******** / ******** / ********',
                'Masking supported pattern matches of $VAULT or $VAULT_USR or $VAULT_PSW')
        assertEquals('the-role-id:the-secret-id|the-role-id|the-secret-id|the-token', new File(workspace, 'bound').text)
        SecretsScan scan = build.secretsFound(['the-role-id', 'the-secret-id', 'the-token'])
        // As withCredentials' variables: in the step records by name; the arguments of the steps that
        // use them (writeFile's text) are in the saved program while those steps run, as in Jenkins.
        assertEquals(scan.toString(), [[], [], [:]], [scan.log, scan.stepRecords, scan.files])
        assertTrue(build.stepRecords.toString(), build.stepRecords.contains('writeFile [file:bound, text:${VAULT}|${VAULT_USR}|${VAULT_PSW}|${TOKEN}]'))
    }

    @Test
    void when_conditions_skip_stages_with_jenkins_message() {
        runner.branchName = 'main'
        BuildResult build = runner.run('''
            pipeline {
                agent any
                environment { DEPLOY = 'yes' }
                stages {
                    stage('on main') { when { branch 'main' }; steps { echo 'ran: on main' } }
                    stage('on release') { when { branch 'release/*' }; steps { echo 'ran: on release' } }
                    stage('expression') { when { expression { return env.DEPLOY == 'yes' } }; steps { echo 'ran: expression' } }
                    stage('environment') { when { environment name: 'DEPLOY', value: 'no' }; steps { echo 'ran: environment' } }
                    stage('not') { when { not { branch 'main' } }; steps { echo 'ran: not' } }
                    stage('allOf') { when { allOf { branch 'ma*'; environment name: 'DEPLOY', value: 'yes' } }; steps { echo 'ran: allOf' } }
                    stage('anyOf') { when { anyOf { branch 'dev'; expression { false } } }; steps { echo 'ran: anyOf' } }
                    stage('own env') {
                        environment { LATE = 'set' }
                        when { environment name: 'LATE', value: 'set' }
                        steps { echo 'ran: own env' }
                    }
                }
            }
        ''')
        assertSucceeded(build)
        ['on main', 'expression', 'allOf'].each { assertTrue(build.log, build.log.contains("ran: ${it}")) }
        ['on release', 'environment', 'not', 'anyOf', 'own env'].each {
            assertLogShows(build, "Stage \"${it}\" skipped due to when conditional")
            assertLogLacks(build, "ran: ${it}")
        }
        PipelineRunner plainJob = new PipelineRunner(runner.libraryDirectory)
        plainJob.workspace = workspace
        BuildResult noBranch = plainJob.run('''
            pipeline { agent any; stages { stage('on main') { when { branch 'main' }; steps { echo 'ran' } } } }
        ''')
        assertLogShows(noBranch, 'Stage "on main" skipped due to when conditional')
    }

    @Test
    void a_failed_stage_skips_the_rest_and_post_conditions_follow_the_result() {
        BuildResult build = runner.run('''
            pipeline {
                agent any
                stages {
                    stage('ok') { steps { echo 'ok ran' }; post { success { echo 'ok: success' }; failure { echo 'ok: failure' } } }
                    stage('broken') {
                        steps { sh 'exit 3' }
                        post {
                            always { echo "broken: always ${currentBuild.result}" }
                            success { echo 'broken: success' }
                            failure { echo "broken: failure ${currentBuild.currentResult}" }
                        }
                    }
                    stage('later') { steps { echo 'later ran' } }
                }
                post {
                    always { echo 'post: always' }
                    success { echo 'post: success' }
                    unsuccessful { echo 'post: unsuccessful' }
                    failure { echo 'post: failure' }
                    cleanup { echo 'post: cleanup' }
                }
            }
        ''')
        assertEnded(build, 'FAILURE', 'ok: success', 'broken: always FAILURE', 'broken: failure FAILURE',
                'Stage "later" skipped due to earlier failure(s)', '[Pipeline] { (Declarative: Post Actions)')
        assertLogLacks(build, 'ok: failure', 'broken: success', 'later ran')
        List<String> order = ['post: always', 'post: unsuccessful', 'post: failure', 'post: cleanup']
        assertEquals(order, order.sort(false) { build.log.indexOf(it) })
        assertLogShows(build, 'ERROR: script returned exit code 3')
        assertLogLacks(build, 'post: success')
    }

    @Test
    void unstable_builds_run_unstable_post_and_finish_unstable() {
        BuildResult build = runner.run('''
            pipeline {
                agent any
                stages {
                    stage('tests') { steps { unstable 'two tests failed'; echo 'still running' } }
                    stage('next') { steps { echo 'next ran' } }
                }
                post {
                    success { echo 'post: success' }
                    unstable { echo 'post: unstable' }
                }
            }
        ''')
        assertEnded(build, 'UNSTABLE', 'WARNING: two tests failed', 'next ran', 'post: unstable')
        assertLogLacks(build, 'post: success')
    }

    @Test
    void the_timeout_option_aborts_and_aborted_post_runs() {
        long started = System.nanoTime()
        BuildResult build = runner.run('''
            pipeline {
                agent any
                options { timeout(time: 1, unit: 'SECONDS') }
                stages { stage('slow') { steps { sh 'sleep 30' } } }
                post { aborted { echo 'post: aborted' }; failure { echo 'post: failure' } }
            }
        ''')
        assertEnded(build, 'ABORTED', 'Timeout has been exceeded', 'post: aborted')
        assertLogLacks(build, 'post: failure')
        assertTrue('aborted promptly', System.nanoTime() - started < 20e9)
    }

    @Test
    void parallel_stages_run_concurrently_with_their_own_environment() {
        BuildResult build = runner.run('''
            pipeline {
                agent any
                options { timeout(time: 20, unit: 'SECONDS') }
                stages {
                    stage('both') {
                        parallel {
                            stage('a') {
                                environment { SIDE = 'a' }
                                steps { sh 'touch a.ready; while [ ! -e b.ready ]; do sleep 0.05; done; echo "side $SIDE"' }
                            }
                            stage('b') {
                                environment { SIDE = 'b' }
                                steps { sh 'touch b.ready; while [ ! -e a.ready ]; do sleep 0.05; done; echo "side $SIDE"' }
                            }
                        }
                        post { always { echo 'both: post' } }
                    }
                }
            }
        ''')
        assertSucceeded(build, '[a] side a', '[b] side b', 'both: post')
    }

    @Test
    void wrong_structure_fails_before_any_step_in_jenkins_words() {
        Map<String, String> cases = [
                'pipeline { agent any }'                                                           : 'Missing required section "stages"',
                "pipeline { agent any; steps { echo 'ran' } }"                                      : 'Undefined section "steps"',
                "pipeline { agent any; stages { stage('x') { echo 'ran' } } }"                    : 'Unknown stage section "echo". Starting with version 0.5, steps in a stage must be in a \u2018steps\u2019 block.',
                "pipeline { agent any; stages { stage('x') { agent any } } }"                     : 'Expected one of "steps", "stages", or "parallel" for stage "x"',
                "pipeline { stages { stage('x') { steps { echo 'ran' } } } }"                     : 'Missing required section "agent"',
                "pipeline { agent any; stages { } }"                                                : 'No stages specified',
                "pipeline { agent any; stages { stage('x') { steps { echo 'ran' } } }; post { sometimes { echo 'ran' } } }":
                        'Invalid condition "sometimes" - valid conditions are [always, changed, fixed, regression, aborted, success, unsuccessful, unstable, failure, notBuilt, cleanup]',
                "pipeline { agent any; stages { stage('x') { when { weekday 'Monday' }; steps { echo 'ran' } } } }":
                        'Unknown conditional weekday. Valid conditionals are:',
                "pipeline { agent any; stages { stage('x') { steps { echo 'ran' } }; stage('x') { steps { echo 'ran' } } } }":
                        'Duplicate stage name: "x"',
        ]
        cases.each { String jenkinsfile, String message ->
            BuildResult build = runner.run(jenkinsfile)
            assertEnded(build, 'FAILURE', 'org.codehaus.groovy.control.MultipleCompilationErrorsException: startup failed:',
                    "WorkflowScript: ${message}")
            assertLogLacks(build, '\nran\n')
        }
    }
}
