package org.withawsrole

import org.junit.Test
import org.withawsrole.replay.BuildResult
import org.withawsrole.replay.PipelineRunner

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertEnded
import static org.withawsrole.BuildAssertions.assertLogLacks
import static org.withawsrole.BuildAssertions.assertLogShows
import static org.withawsrole.BuildAssertions.assertSucceeded

/**
 * The credentials never reach the build log, however carelessly the block prints them. Each block
 * saves its values to files (set +x, nothing printed) so the test knows what must not appear.
 */
class MaskingPipelineTest extends PipelineTestBase {
    static final List<String> SECRET_VARIABLES = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'].asImmutable()

    /** Saves the block's three values to <prefix>.<variable>, printing nothing. */
    static String save(String prefix) {
        return "sh 'set +x; " + SECRET_VARIABLES.collect { "printf %s \"\$${it}\" > ${prefix}.${it}" }.join('; ') + "'"
    }

    /** Every careless way to print them: sh traces and output, env dumps, echo of env. */
    static final String PRINT_EVERYTHING = '''
        sh 'echo "$AWS_ACCESS_KEY_ID $AWS_SECRET_ACCESS_KEY $AWS_SESSION_TOKEN"'
        sh 'env | grep "^AWS_" | sort'
        sh 'printenv AWS_SESSION_TOKEN; printenv AWS_SECRET_ACCESS_KEY'
        sh 'printf "%s\\n" "$AWS_SECRET_ACCESS_KEY" >&2'
        echo "env: ${env.AWS_ACCESS_KEY_ID} ${env.AWS_SECRET_ACCESS_KEY} ${env.AWS_SESSION_TOKEN}"
        echo env.AWS_SESSION_TOKEN
    '''

    @Test
    void printed_credentials_are_masked_in_plain_nested_and_parallel_blocks() {
        buildShowsSecretsOnPurpose() // echo steps whose arguments are the keys
        BuildResult build = runner.run("""
            withAwsRole('ecr-push') {
                ${save('outer')}
                ${PRINT_EVERYTHING}
                withAwsRole('deploy', roleArn: 'arn:aws:iam::123456789012:role/jenkins-deploy-role') {
                    ${save('inner')}
                    ${PRINT_EVERYTHING}
                    sh 'echo "outer values printed inside: \$(cat outer.AWS_SECRET_ACCESS_KEY) \$(cat outer.AWS_SESSION_TOKEN)"'
                }
            }
            parallel a: {
                withAwsRole(role: 'deploy', roleArn: 'arn:aws:iam::123456789012:role/jenkins-deploy-readonly-role') {
                    ${save('branch')}
                    ${PRINT_EVERYTHING}
                }
            }, b: {
                withAwsRole('ecr-push') { ${PRINT_EVERYTHING} }
            }
        """)
        assertSucceeded(build)
        List<String> values = ['outer', 'inner', 'branch'].collectMany { String prefix ->
            SECRET_VARIABLES.collect { workspaceFile("${prefix}.${it}") }
        }
        assertEquals('three roles, three different sets of values', 9, values.toSet().size())
        values.each { String value ->
            assertTrue("a real value: ${value.length()} characters", value.length() >= 16)
            assertFalse("a credential value leaked into the log:\n${build.log}", build.log.contains(value))
        }
        // The prints did run: masked, not skipped.
        assertLogShows(build, '+ echo \'******** ******** ********\'', 'AWS_SESSION_TOKEN=********', 'env: ******** ******** ********',
                'outer values printed inside: ******** ********', '[a] env: ******** ******** ********')
    }

    @Test
    void leak_detection_works_when_masking_is_turned_off() {
        buildShowsSecretsOnPurpose()
        // The control for the test above: the same prints with mask: false do show the values.
        BuildResult build = runner.run("""
            withAwsRole(role: 'ecr-push', mask: false) {
                ${save('unmasked')}
                ${PRINT_EVERYTHING}
            }
        """)
        assertSucceeded(build)
        SECRET_VARIABLES.each {
            assertTrue("${it} printed unmasked", build.log.contains(workspaceFile("unmasked.${it}")))
        }
    }

    @Test
    void without_the_mask_passwords_plugin_the_block_does_not_run() {
        runner.plugins.remove('mask-passwords')
        BuildResult build = runner.run("""
            withAwsRole('ecr-push') {
                ${save('never')}
                echo 'never here'
            }
        """)
        BuildAssertions.assertFailedWithOneLine(build, "withAwsRole('ecr-push'): cannot mask the credentials in the " +
                'build log, so the block did not run: install the Mask Passwords plugin (mask-passwords), or pass mask: false')
        assertLogLacks(build, 'withAwsRole: ecr-push as')
        assertFalse(new File(workspace.root, 'never.AWS_ACCESS_KEY_ID').exists())
        assertLogLacks(build, '\tat ')
    }

    /**
     * Jenkins fails a wrap step of a missing plugin with "Could not instantiate {delegate=
     * {$class=MaskPasswordsBuildWrapper, varPasswordPairs=[{var=..., password=<the key>}...]}}":
     * the refusal must not pass that message on. Build 1 (plugin present) saves the keys; build 1
     * again on a controller without the plugin gets the same cached keys and is refused.
     */
    @Test
    void without_the_plugin_the_refusal_never_shows_the_keys_it_protects() {
        PipelineRunner withPlugin = new PipelineRunner(runner.libraryDirectory, 1)
        withPlugin.workspace = workspace.root
        withPlugin.jobName = runner.jobName
        BuildResult first = withPlugin.run("withAwsRole('ecr-push') { ${save('cached')} }")
        assertSucceeded(first)
        List<String> keys = SECRET_VARIABLES.collect { workspaceFile("cached.${it}") }

        PipelineRunner withoutPlugin = new PipelineRunner(runner.libraryDirectory, 1)
        withoutPlugin.workspace = workspace.root
        withoutPlugin.jobName = runner.jobName
        withoutPlugin.plugins.remove('mask-passwords')
        BuildResult refused = withoutPlugin.run("withAwsRole('ecr-push') { echo 'never here' }")

        assertEnded(refused, 'FAILURE', "ERROR: withAwsRole('ecr-push'): cannot mask the credentials")
        keys.each { String key ->
            assertFalse("a key the wrapper was to mask is in the log:\n${refused.log}".toString(), refused.log.contains(key))
        }
    }

    @Test
    void without_the_plugin_mask_false_runs_the_block() {
        runner.plugins.remove('mask-passwords')
        BuildResult build = runner.run("withAwsRole(role: 'ecr-push', mask: false) { sh 'set +x; aws sts get-caller-identity --query Arn --output text' }")
        assertSucceeded(build, ':assumed-role/jenkins-ecr-push-role/')
    }
}
