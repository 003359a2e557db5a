package org.withawsrole.replay

import org.junit.Test

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertEnded
import static org.withawsrole.BuildAssertions.assertLogLacks
import static org.withawsrole.BuildAssertions.assertLogShows
import static org.withawsrole.BuildAssertions.assertSucceeded
import static org.withawsrole.BuildAssertions.inCase

/** The local runner's steps behave as the Jenkins ones this project relies on. No world needed. */
class PipelineRunnerTest extends ReplayTestBase {
    @Test
    void sh_runs_with_the_block_environment_and_prints_to_the_log() {
        BuildResult build = runner.run('''
            withEnv(['GREETING=hello', 'PATH+EXTRA=/opt/extra/bin']) {
                sh 'echo "$GREETING from $JOB_NAME #$BUILD_NUMBER"; echo "${PATH%%:*}"'
                echo "out=" + sh(script: 'echo captured', returnStdout: true).trim()
                echo "status=" + sh(script: 'exit 3', returnStatus: true)
            }
            sh 'echo "outside: [${GREETING:-}]"'
        ''')
        assertSucceeded(build, "hello from replay #${build.number}", '\n/opt/extra/bin\n', 'out=captured')
        assertFalse('returnStdout output is not logged', build.log.contains('\ncaptured\n'))
        assertLogShows(build, 'status=3', 'outside: []')
    }

    @Test
    void failing_sh_unknown_libraries_and_unknown_steps_fail_the_build_with_jenkins_words() {
        [["sh 'exit 7'", ['ERROR: script returned exit code 7']],
         ["@Library('somethingElse') _\necho 'never'", ['Library somethingElse not found']],
         // An unknown step names the available ones.
         ["notAStep 'x'", ["No such DSL method 'notAStep'", 'withAwsRole']]].each { String jenkinsfile, List<String> shown ->
            inCase(jenkinsfile) { assertEnded(runner.run(jenkinsfile), 'FAILURE', shown as Object[]) }
        }
    }

    @Test
    void parallel_branches_run_concurrently_with_their_own_environment() {
        // Each branch waits for the other's file: only concurrent branches finish.
        BuildResult build = runner.run('''
            timeout(time: 20, unit: 'SECONDS') {
                parallel a: {
                    withEnv(['SIDE=a']) {
                        sh 'touch a.ready; while [ ! -e b.ready ]; do sleep 0.05; done; echo "side $SIDE"'
                    }
                }, b: {
                    withEnv(['SIDE=b']) {
                        sh 'touch b.ready; while [ ! -e a.ready ]; do sleep 0.05; done; echo "side $SIDE"'
                    }
                }
            }
        ''')
        assertSucceeded(build, '[a] side a', '[b] side b')
    }

    @Test
    void concurrent_node_blocks_get_workspaces_of_their_own_as_on_one_agent() {
        // Each branch waits until the other is inside its node block, so both hold a workspace at once.
        String branch = '''node { sh 'touch "$WORKSPACE/../%1$s-in"; n=0; until [ -f "$WORKSPACE/../%2$s-in" ] || [ $n -ge 200 ]; do sleep 0.05; n=$((n+1)); done; echo "%1$s: $WORKSPACE $PWD"' }'''
        BuildResult build = runner.run("parallel a: { ${String.format(branch, 'a', 'b')} }, b: { ${String.format(branch, 'b', 'a')} }")
        assertSucceeded(build)
        List<String> used = (build.log =~ /(?m)^\[\w\] \w: (\S+) (\S+)$/).collect { it[1] + ' ' + it[2] }
        assertEquals(build.log, ["${workspace} ${workspace}".toString(), "${workspace}@2 ${workspace}@2".toString()] as Set, used as Set)
        assertFalse('the extra workspace goes with the build', new File("${workspace}@2").exists())
    }

    @Test
    void parallel_fails_when_a_branch_fails_after_all_finish() {
        BuildResult build = runner.run('''
            parallel ok: { sleep 1; echo 'ok finished' }, broken: { error 'broken branch' }
        ''')
        assertEnded(build, 'FAILURE', '[ok] ok finished', 'ERROR: Failed in branch broken: broken branch')
    }

    @Test
    void mask_passwords_wrapper_masks_the_block_output_only() {
        BuildResult build = runner.run('''
            wrap([$class: 'MaskPasswordsBuildWrapper', varPasswordPairs: [[var: 'S', password: 's3cr3t-value']]]) {
                sh 'echo "the value is s3cr3t-value"'
                echo 's3cr3t-value in echo'
            }
            echo 'after: s3cr3t-value'
        ''')
        assertSucceeded(build, 'the value is ********', '******** in echo', 'after: s3cr3t-value')
        assertEquals(build.log, 1, build.log.count('s3cr3t-value'))
    }

    @Test
    void mask_passwords_wrapper_fails_before_its_block_when_the_plugin_is_missing() {
        runner.plugins.remove('mask-passwords')
        BuildResult build = runner.run('''
            wrap([$class: 'MaskPasswordsBuildWrapper', varPasswordPairs: [[var: 'S', password: 's3cr3t-value']]]) {
                echo 'never here'
            }
        ''')
        assertEnded(build, 'FAILURE',
                'no known implementation of class jenkins.tasks.SimpleBuildWrapper is named MaskPasswordsBuildWrapper')
        assertLogLacks(build, 'never here')
    }

    @Test
    void with_credentials_binds_the_store_s_credentials_and_masks_them() {
        runner.credentials.usernamePassword('approle', 'the-role-id', 'the-secret-id').secretText('token', 'the-token')
        int minted = 0
        runner.credentials.idToken('oidc') { "eyJ.minted-${++minted}.sig".toString() }
        BuildResult build = runner.run('''
            withCredentials([usernamePassword(credentialsId: 'approle', usernameVariable: 'U', passwordVariable: 'P'),
                             string(credentialsId: 'token', variable: 'T')]) {
                sh 'echo "sh: $U $P $T"'
                echo "env: ${env.U} ${env.P} ${env.T}"
            }
            withCredentials([string(credentialsId: 'oidc', variable: 'ID_TOKEN')]) { writeFile file: 'first', text: env.ID_TOKEN }
            withCredentials([string(credentialsId: 'oidc', variable: 'ID_TOKEN')]) { writeFile file: 'second', text: env.ID_TOKEN }
            echo "after: ${env.U} ${env.T}"
        ''')
        assertSucceeded(build, 'Masking supported pattern matches of $U or $P or $T', 'sh: ******** ******** ********',
                'env: ******** ******** ********', 'after: null null')
        assertFalse(build.log, (build.log =~ /the-(role-id|secret-id|token)/).find())
        assertEquals('eyJ.minted-1.sig', new File(workspace, 'first').text)
        assertEquals('an id token is minted afresh at every binding', 'eyJ.minted-2.sig', new File(workspace, 'second').text)
    }

    @Test
    void with_credentials_fails_like_jenkins_for_unknown_ids_and_other_kinds() {
        runner.credentials.secretText('token', 'the-token')
        BuildResult unknown = runner.run("withCredentials([string(credentialsId: 'nope', variable: 'T')]) { echo 'never here' }")
        assertEnded(unknown, 'FAILURE', "ERROR: Could not find credentials entry with ID 'nope'")

        BuildResult otherKind = runner.run('''
            withCredentials([usernamePassword(credentialsId: 'token', usernameVariable: 'U', passwordVariable: 'P')]) { echo 'never here' }
        ''')
        assertEnded(otherKind, 'FAILURE')
        assertTrue(otherKind.log, otherKind.log.contains("ERROR: Credentials 'token' is of type 'Secret text' where " +
                "'com.cloudbees.plugins.credentials.common.StandardUsernamePasswordCredentials' was expected"))
        assertLogLacks(otherKind, 'never here')
    }

    @Test
    void replay_prints_the_log_and_exits_non_zero_when_the_build_fails() {
        File credentials = temporary.newFile('credentials.json')
        credentials.text = '{"greeting": {"secretText": "hello-from-a-credential"}}'
        File passing = temporary.newFile('Jenkinsfile.passing')
        passing.text = '''
            node {
                parallel a: { echo 'branch a' }, b: { echo 'branch b' }
                withCredentials([string(credentialsId: 'greeting', variable: 'G')]) { sh 'echo "$G"' }
            }
        '''
        File failing = temporary.newFile('Jenkinsfile.failing')
        failing.text = "node { sh 'exit 4' }"

        Map passed = replay(passing, credentials)
        assertReplayed(passed, 0, '[a] branch a', '[b] branch b', '\n********\n', 'Finished: SUCCESS')

        Map failed = replay(failing, credentials)
        assertReplayed(failed, 1, 'ERROR: script returned exit code 4', 'Finished: FAILURE')
    }

    @Test
    void replay_runs_without_the_plugins_named_in_replay_without_plugins() {
        File jenkinsfile = temporary.newFile('Jenkinsfile.wrap')
        jenkinsfile.text = """
            wrap([\$class: 'MaskPasswordsBuildWrapper', varPasswordPairs: [[var: 'S', password: 'pw-value']]]) { echo 'wrapped' }
            withCredentials([string(credentialsId: 'greeting', variable: 'G')]) { echo 'bound' }
        """
        File credentials = temporary.newFile('credentials.json')
        credentials.text = '{"greeting": {"secretText": "hello"}}'

        Map without = replay(jenkinsfile, credentials, [REPLAY_WITHOUT_PLUGINS: 'mask-passwords'])
        assertReplayed(without, 1, 'no known implementation of class jenkins.tasks.SimpleBuildWrapper is named MaskPasswordsBuildWrapper')

        Map unknown = replay(jenkinsfile, credentials, [REPLAY_WITHOUT_PLUGINS: 'no-such-plugin'])
        assertReplayed(unknown, 2, "REPLAY_WITHOUT_PLUGINS names 'no-such-plugin'")

        Map neither = replay(jenkinsfile, credentials, [REPLAY_WITHOUT_PLUGINS: 'credentials-binding'])
        assertReplayed(neither, 1, 'wrapped', '(the credentials-binding plugin is not installed)')
    }

    @Test
    void replay_runs_in_a_fresh_workspace_with_parameters_and_fails_only_when_jenkins_would() {
        File project = temporary.newFolder('project')
        new File(project, 'app.txt').text = 'the project file'
        File jenkinsfile = new File(project, 'Jenkinsfile')
        jenkinsfile.text = '''
            pipeline {
                agent any
                parameters {
                    string(name: 'TARGET', defaultValue: 'staging')
                    booleanParam(name: 'DRY_RUN', defaultValue: true)
                    choice(name: 'REGION', choices: ['eu-west-1', 'us-east-1'])
                }
                stages {
                    stage('clean up like a careless Jenkinsfile') {
                        steps {
                            sh 'echo "checked out: $(cat app.txt)"; rm -rf "$WORKSPACE"/*'
                            echo "params: ${params.TARGET} ${params.DRY_RUN.getClass().simpleName}:${params.DRY_RUN} ${params.REGION}"
                            echo "workspace: ${WORKSPACE}"
                            unstable 'flaky'
                        }
                    }
                }
            }
        '''
        Map unstable = replay(jenkinsfile, null, [REPLAY_PARAMS: '{"TARGET": "production", "DRY_RUN": "false"}'])
        assertReplayed(unstable, 0, 'checked out: the project file', 'params: production Boolean:false eu-west-1', 'Finished: UNSTABLE')
        assertEquals('the checkout is untouched', 'the project file', new File(project, 'app.txt').text)
        String used = (unstable.output =~ /workspace: (\S+)/)[0][1]
        assertFalse('the fresh workspace is removed', new File(used).exists())
        assertFalse(used.startsWith(project.absolutePath))

        // The same options in this JVM (ReplayMain.configure is what main runs before the build).
        PipelineRunner kept = ReplayMain.configure(runner.libraryDirectory, null, null, jenkinsfile,
                [REPLAY_KEEP_WORKSPACE: 'true', REPLAY_PARAMS: '{"REGION": "us-west-2"}'], null)
        BuildResult illegal = kept.run(jenkinsfile)
        assertEquals('an illegal choice fails the build', 1, ReplayMain.exitCode(illegal))
        assertLogShows(illegal, 'Illegal choice for parameter REGION: us-west-2')
        String keptAt = (illegal.log =~ /workspace kept: (\S+)/)[0][1]
        assertTrue(new File(keptAt).isDirectory())
        new File(keptAt).deleteDir()

        jenkinsfile.text = "node { input message: 'Deploy?'; echo 'never here' }"
        BuildResult aborted = ReplayMain.configure(runner.libraryDirectory, null, null, jenkinsfile, [REPLAY_INPUT: 'abort'], null).run(jenkinsfile)
        assertEquals(aborted.log, 0, ReplayMain.exitCode(aborted))
        assertEnded(aborted, 'ABORTED', 'Finished: ABORTED')
        assertLogLacks(aborted, 'never here')

        [[[REPLAY_PARAMS: 'TARGET=production'], [], 'REPLAY_PARAMS is not JSON'],
         [[REPLAY_INPUT: 'maybe'], [], "REPLAY_INPUT is 'maybe'"],
         [[:], [project], "holds the Jenkinsfile's checkout"]].each { Map<String, String> options, List<File> workspaceOption, String message ->
            try {
                ReplayMain.configure(runner.libraryDirectory, workspaceOption ? workspaceOption[0] : null, null, jenkinsfile, options, null)
                fail("${options} ${workspaceOption} accepted")
            } catch (ReplayMain.BadOption e) {
                assertTrue(e.message, e.message.contains(message))
            }
        }
    }

    /** Runs ReplayMain (what gradle replay runs) in a JVM of its own; returns [exitCode:, output:]. */
    /** `replayed` (what replay returned) exited with `exitCode` and printed every one of `texts`. */
    private static void assertReplayed(Map replayed, int exitCode, String... texts) {
        assertEquals(replayed.output, exitCode, replayed.exitCode)
        texts.each { String text -> assertTrue(replayed.output, replayed.output.contains(text)) }
    }

    private Map replay(File jenkinsfile, File credentials, Map<String, String> environment = [:]) {
        String java = new File(System.getProperty('java.home'), 'bin/java').absolutePath
        List<String> command = [java, '-cp', System.getProperty('java.class.path'), ReplayMain.name,
                                '--library', runner.libraryDirectory.absolutePath, jenkinsfile.absolutePath]
        ProcessBuilder builder = new ProcessBuilder(command).redirectErrorStream(true)
        builder.environment().keySet().removeAll(builder.environment().keySet().findAll { it.startsWith('REPLAY_') })
        if (credentials != null) {
            builder.environment().REPLAY_CREDENTIALS = credentials.absolutePath
        }
        builder.environment().putAll(environment)
        Process process = builder.start()
        String output = process.inputStream.getText('UTF-8')
        return [exitCode: process.waitFor(), output: output]
    }

    @Test
    void library_resource_reads_text_and_base64() {
        File resources = new File(runner.libraryDirectory, 'resources/org/withawsrole/bridge')
        assertTrue("${resources} missing: run gradle bridgeJar", new File(resources, 'bridge.sha256').isFile())
        String digest = new File(resources, 'bridge.sha256').text
        byte[] jar = new File(resources, 'withawsrole-bridge.jar').bytes
        BuildResult build = runner.run('''
            writeFile file: 'digest', text: libraryResource('org/withawsrole/bridge/bridge.sha256')
            writeFile file: 'jar.b64', text: libraryResource(resource: 'org/withawsrole/bridge/withawsrole-bridge.jar', encoding: 'Base64')
        ''')
        assertSucceeded(build)
        assertEquals(digest, new File(workspace, 'digest').text)
        assertArrayEquals(jar, Base64.decoder.decode(new File(workspace, 'jar.b64').text))
    }

    @Test
    void steps_in_a_finally_after_a_timeout_run_as_in_jenkins() {
        // Jenkins interrupts what runs when the timeout fires, once; the body's finally blocks
        // then run their steps (a block's cleanup). A second interruption used to kill them.
        BuildResult build = runner.run('''
            timeout(time: 1, unit: 'SECONDS') {
                try {
                    sh 'sleep 30'
                } finally {
                    sh 'sleep 2; echo cleaned > cleaned.txt'
                }
            }
        ''')
        assertEnded(build, 'ABORTED')
        assertTrue(build.log, new File(workspace, 'cleaned.txt').isFile())
    }

    @Test
    void timeout_aborts_a_long_sh() {
        long started = System.nanoTime()
        BuildResult build = runner.run("timeout(time: 1, unit: 'SECONDS') { sh 'sleep 30' }")
        assertEnded(build, 'ABORTED', 'Timeout has been exceeded')
        assertTrue('aborted promptly', System.nanoTime() - started < 20e9)
    }

    @Test
    void a_result_set_during_the_build_only_gets_worse_and_stands() {
        BuildResult build = runner.run('''
            echo "before: ${currentBuild.result} ${currentBuild.currentResult}"
            currentBuild.result = 'UNSTABLE'
            currentBuild.result = 'SUCCESS'
            echo "after: ${currentBuild.result} ${currentBuild.currentResult}"
        ''')
        assertEnded(build, 'UNSTABLE', 'before: null SUCCESS', 'after: UNSTABLE UNSTABLE')
        assertEquals('UNSTABLE', runner.run("unstable(message: 'flaky')").result)
    }

    @Test
    void sleep_inside_a_closure_is_the_step() {
        BuildResult build = runner.run("node { sleep(time: 10, unit: 'MILLISECONDS'); sleep 0 }")
        assertSucceeded(build)
        assertEquals(build.log, 2, build.log.count('[Pipeline] sleep'))
    }

    @Test
    void builds_number_up_and_compile_the_library_afresh() {
        BuildResult first = runner.run("echo env.BUILD_NUMBER")
        BuildResult second = runner.run("@Library('withAwsRole@main') _\necho env.BUILD_NUMBER")
        assertEquals(first.number + 1, second.number)
        assertSucceeded(second)
        assertNotSame(first.libraryClassLoader, second.libraryClassLoader)
    }

    @Test
    void unknown_globals_say_how_to_stand_them_in_and_a_groovy_file_stands_them_in() {
        String jenkinsfile = "node { docker.image('maven:3').inside { sh 'echo inside' } }"
        BuildResult missing = runner.run(jenkinsfile)
        assertEnded(missing, 'FAILURE', 'groovy.lang.MissingPropertyException: No such property: docker for class: WorkflowScript',
                "REPLAY_STEPS=<file.groovy> with `def docker(Map args)")
        assertFalse('no stack trace', (missing.log =~ /\n\s+at [a-z]/).find())

        File standIns = temporary.newFile('stand-ins.groovy')
        standIns.text = '''
            // docker.image(name).inside { }: runs the block here, without a container.
            def getDocker() {
                return [image: { String name -> [inside: { Closure body -> echo "(no container: ${name})"; body() }] }]
            }
        '''
        runner.standIns.file = standIns
        BuildResult stoodIn = runner.run(jenkinsfile)
        assertSucceeded(stoodIn, '(no container: maven:3)\n[Pipeline] sh\n+ echo inside\ninside')
    }

    @Test
    void unstash_brings_back_what_stash_saved_in_this_build_by_name_or_by_map() {
        BuildResult build = runner.run('''
            dir('a') { writeFile file: 'kept.txt', text: 'stashed text'; stash name: 'files', includes: '*.txt' }
            dir('b') { unstash 'files'; echo "b: ${readFile('kept.txt')}" }
            dir('c') { unstash name: 'files'; echo "c: ${readFile('kept.txt')}" }
            unstash 'nothing-saved'
        ''')
        assertEnded(build, 'FAILURE', 'b: stashed text', 'c: stashed text', 'No such saved stash \u2018nothing-saved\u2019')
    }

    @Test
    void current_build_offers_run_wrapper_s_api_and_refuses_raw_build_like_the_sandbox() {
        BuildResult build = runner.run('''
            currentBuild.description = 'described'
            currentBuild.displayName = 'named'
            echo "api: ${currentBuild.number} ${currentBuild.description} ${currentBuild.displayName} ${currentBuild.previousBuild?.result} " +
                    "${currentBuild.resultIsBetterOrEqualTo('UNSTABLE')} ${currentBuild.getBuildCauses()[0].shortDescription}"
            currentBuild.rawBuild.delete()
        ''')
        assertEnded(build, 'FAILURE', "api: ${build.number} described named null true Started by user replay",
                'Scripts not permitted to use method org.jenkinsci.plugins.workflow.support.steps.build.RunWrapper getRawBuild')
    }

    @Test
    void git_and_checkout_clone_a_repository_at_its_branch() {
        File repository = temporary.newFolder('infra')
        new File(repository, 'README').text = 'on main'
        ['init -q -b main', 'add .', '-c user.name=dev -c user.email=dev@example.com commit -q -m first',
         'checkout -q -b release', 'rm -q README'].each { String arguments ->
            assertEquals(arguments, 0, (['git'] + arguments.split(' ').toList()).execute(null, repository).waitFor())
        }
        new File(repository, 'RELEASE').text = 'on release'
        ['add .', '-c user.name=dev -c user.email=dev@example.com commit -q -m release', 'checkout -q main'].each { String arguments ->
            assertEquals(arguments, 0, (['git'] + arguments.split(' ').toList()).execute(null, repository).waitFor())
        }
        runner.workspace = temporary.newFolder('job')
        runner.scm = ScmSource.ofRepository(repository.absolutePath, 'release')
        BuildResult build = runner.run("""
            node {
                dir('from-git') {
                    def vars = git url: '${repository.absolutePath}', branch: 'main'
                    echo "git: \${readFile('README')} \${vars.GIT_BRANCH}"
                }
                dir('from-scm') {
                    checkout scm
                    echo "scm: \${readFile('RELEASE')} \${fileExists('README')} \${scm.branches[0].name}"
                }
            }
        """)
        assertSucceeded(build, 'git: on main origin/main', 'scm: on release false */release')
    }
}
