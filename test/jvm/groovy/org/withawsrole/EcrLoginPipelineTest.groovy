package org.withawsrole

import org.junit.Before
import org.junit.Rule
import org.junit.Test
import org.junit.rules.TemporaryFolder
import org.withawsrole.replay.BuildResult
import org.withawsrole.replay.PipelineRunner

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertEachFailsWithOneLine
import static org.withawsrole.BuildAssertions.assertFailedWithOneLine
import static org.withawsrole.BuildAssertions.assertLogLacks
import static org.withawsrole.BuildAssertions.assertLogShows
import static org.withawsrole.BuildAssertions.assertSucceeded

/**
 * ecrLogin: `aws ecr get-login-password` really runs against the world's moto; `docker` is the
 * fixture test/jvm/fixtures/bin/docker, which records the registry and a hash of the password it
 * read on stdin (the world has no Docker).
 */
class EcrLoginPipelineTest extends PipelineTestBase {
    static final String REGISTRY = '123456789012.dkr.ecr.eu-west-1.amazonaws.com'

    /** Saves the password `aws ecr get-login-password` gives the same role, and its sha256, printing nothing. */
    static final String SAVE_EXPECTED_PASSWORD = '''
        withAwsRole(role: 'ecr-push', region: 'eu-west-1') {
            sh 'set +x; printf %s "$(aws ecr get-login-password --region eu-west-1)" > expected-password; sha256sum < expected-password | cut -d" " -f1 > expected-sha256'
        }
    '''

    @Rule
    public TemporaryFolder home = new TemporaryFolder()

    File record

    @Before
    void fakeDockerWithAnEmptyHome() {
        runner.workspace = new File(workspace.root, 'job')
        record = new File(workspace.root, 'docker-calls')
        withFakeDocker(runner, record)
        runner.baseEnvironment.HOME = home.root.absolutePath
        runner.baseEnvironment.remove('DOCKER_CONFIG')
    }

    @Test
    void login_passes_the_ecr_password_to_docker_on_stdin() {
        BuildResult build = runner.run("""
            node {
                ecrLogin(registry: '${REGISTRY}', role: 'ecr-push')
                ${SAVE_EXPECTED_PASSWORD}
            }
        """)
        assertSucceeded(build)
        Map<String, String> login = loginRecorded()
        assertEquals(REGISTRY, login.registry)
        assertEquals('AWS', login.user)
        String password = jobFile('expected-password')
        assertTrue("a real password: ${password.length()} characters", password.length() >= 16)
        assertEquals(String.valueOf(password.length()), login.password_length)
        assertEquals('docker got exactly what aws ecr get-login-password gives', jobFile('expected-sha256').trim(), login.password_sha256)
        assertEquals('without a block the login lasts, as docker login does', "${home.root}/.docker".toString(), login.config)
        assertLogShows(build, 'Login Succeeded', 'withAwsRole: ecr-push as arn:aws:sts::123456789012:assumed-role/jenkins-ecr-push-role/')
        assertFalse('the password never reaches the log', build.log.contains(password))
        assertLogLacks(build, 'get-login-password')
    }

    @Test
    void login_with_a_block_is_private_to_the_block() {
        BuildResult build = runner.run("""
            ecrLogin(registry: '${REGISTRY}', role: 'ecr-push') {
                sh 'docker push ${REGISTRY}/app:1'
                sh 'set +x; echo "inside: \$DOCKER_CONFIG \$AWS_REGION"; test -f "\$DOCKER_CONFIG/config.json"'
            }
            sh 'set +x; echo "after: [\${DOCKER_CONFIG:-}]"'
        """)
        assertSucceeded(build)
        Map<String, String> login = loginRecorded()
        assertEquals(REGISTRY, login.registry)
        String tmp = "${runner.workspace.absolutePath}@tmp/"
        assertTrue(login.config, login.config ==~ /${java.util.regex.Pattern.quote(tmp)}withawsrole-until-\d+-[0-9a-f]{8}/)
        assertTrue(record.text, record.text.contains("docker push ${REGISTRY}/app:1"))
        assertLogShows(build, "inside: ${login.config} eu-west-1", 'after: []')
        assertFalse('the login is gone after the block', new File(login.config).exists())
        assertFalse('nothing stored in the home directory', new File(home.root, '.docker').exists())
    }

    @Test
    void calls_it_cannot_serve_fail_with_one_line_that_says_how_to_call_it() {
        String howToCall = "call it as ecrLogin(registry: '123456789012.dkr.ecr.eu-west-1.amazonaws.com', role: 'ecr-push')"
        assertEachFailsWithOneLine(runner, [
                ["ecrLogin(registry: 'https://${REGISTRY}/app', role: 'ecr-push')",
                 "ecrLogin: registry 'https://${REGISTRY}/app' is not an ECR registry host like " +
                         '123456789012.dkr.ecr.eu-west-1.amazonaws.com (no https://, no repository path); the region comes from it'],
                ["ecrLogin(role: 'ecr-push')", "ecrLogin: name the registry: ${howToCall}"],
                ["ecrLogin(registry: '${REGISTRY}')", "ecrLogin: name a role: ${howToCall}"],
                ["ecrLogin('${REGISTRY}')", 'ecrLogin: call it as ecrLogin(registry: '],
                // The region comes from the registry only.
                ["ecrLogin(registry: '${REGISTRY}', role: 'ecr-push', region: 'us-east-1')",
                 'ecrLogin: unknown option region; valid options: registry, role, ttl, roleArn, jwtRole, hideAccountId, vaultCredentialsId, mask'],
        ])
    }

    @Test
    void options_that_are_not_a_pipeline_s_choice_are_refused_as_for_with_aws_role() {
        BuildResult build = runner.run("ecrLogin(registry: '${REGISTRY}', role: 'ecr-push', sessionName: 'other-job') { echo 'never here' }")
        assertFailedWithOneLine(build, "ecrLogin: sessionName is not a pipeline's choice: ")
        assertFalse('docker was never called', record.exists())
    }

    /**
     * Jenkins resolves `ecrLogin` to this library's global before the pipeline-aws plugin's step; a
     * call made the plugin's way (no registry, no role) still reaches the plugin's step and returns
     * its login command, in the same build as the library's own form.
     */
    @Test
    void both_forms_work_next_to_the_pipeline_aws_plugin() {
        runner.plugins << 'pipeline-aws'
        BuildResult build = runner.run("""
            node {
                withAwsRole(role: 'ecr-push', region: 'eu-west-1') {
                    String plain = ecrLogin()
                    String withOptions = ecrLogin(email: true, registryIds: ['123456789012'])
                    String expected = sh(script: 'set +x; aws ecr get-login-password', returnStdout: true).trim()
                    if (plain != "docker login -u AWS -p \${expected}  https://${REGISTRY}") {
                        error('the plugin form did not return the login command of the plugin step')
                    }
                    if (withOptions != "docker login -u AWS -p \${expected} -e none https://${REGISTRY}") {
                        error('the plugin form did not pass its options to the plugin step')
                    }
                    echo 'plugin form: login command as the plugin builds it'
                }
                ecrLogin(registry: '${REGISTRY}', role: 'ecr-push')
            }
        """)
        assertSucceeded(build, 'plugin form: login command as the plugin builds it')
        assertEquals('the plugin step ran twice', 2, build.log.count('[Pipeline] ecrLogin'))
        assertEquals('the library form logged in once', REGISTRY, loginRecorded().registry)
    }

    @Test
    void plugin_form_without_the_plugin_says_what_to_call() {
        BuildResult build = runner.run("withAwsRole(role: 'ecr-push', region: 'eu-west-1') { sh ecrLogin() }")
        assertFailedWithOneLine(build, "ecrLogin: a call without registry and role is the pipeline-aws plugin's ecrLogin(), " +
                "which is not installed; to log in with a withAwsRole role, call it as ecrLogin(registry: ")
        assertFalse('docker was never called', record.exists())
    }

    /** As CpsScript.invokeMethod: the global wins over the step; `steps.ecrLogin` is the plugin's step itself. */
    @Test
    void the_runner_resolves_the_name_as_jenkins_does() {
        runner.plugins << 'pipeline-aws'
        BuildResult build = runner.run("""
            withAwsRole(role: 'ecr-push', region: 'eu-west-1') {
                echo(steps.ecrLogin().startsWith('docker login -u AWS -p ') ? 'steps.ecrLogin: the plugin' : 'other')
            }
            ecrLogin(role: 'ecr-push')
        """)
        assertLogShows(build, 'steps.ecrLogin: the plugin')
        assertFailedWithOneLine(build, 'ecrLogin: name the registry: ')
        PipelineRunner withoutLibrary = new PipelineRunner(new File(workspace.root, 'no-library'))
        withoutLibrary.baseEnvironment.putAll(runner.baseEnvironment)
        withoutLibrary.plugins << 'pipeline-aws'
        BuildResult plugin = withoutLibrary.run("withEnv(['AWS_REGION=eu-west-1']) { echo(ecrLogin() ?: 'no command') }")
        assertTrue('without the library, ecrLogin is the plugin step:\n' + plugin.log, plugin.log.contains('[Pipeline] ecrLogin'))
    }

    /** The fake docker's one login line as a map. */
    private Map<String, String> loginRecorded() {
        assertTrue('docker was called', record.isFile())
        List<String> logins = record.readLines().findAll { it.startsWith('login ') }
        assertEquals(record.text, 1, logins.size())
        return (logins[0] - 'login ').tokenize(' ').collectEntries { String pair -> pair.split('=', 2) as List }
    }

    private String jobFile(String name) {
        File file = new File(runner.workspace, name)
        assertTrue("${name} written by the build", file.isFile())
        return file.text
    }
}
