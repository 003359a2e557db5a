package org.withawsrole.replay

import org.junit.Test

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertEnded
import static org.withawsrole.BuildAssertions.assertLogLacks
import static org.withawsrole.BuildAssertions.assertLogShows
import static org.withawsrole.BuildAssertions.assertSucceeded

/**
 * A step given an unknown `$class` fails as Jenkins' structs plugin makes it fail: with the step's
 * arguments in the message, secrets included. No world needed.
 */
class StepArgumentsInFailuresTest extends ReplayTestBase {
    static final String MASKED_WRAP = '''
        def failure = null
        try {
            wrap([$class: 'MaskPasswordsBuildWrapper', varPasswordPairs: [[var: 'AWS_ACCESS_KEY_ID', password: 'the-key-id'],
                                                                           [var: 'AWS_SECRET_ACCESS_KEY', password: "the-${'secret'}"]]]) {
                echo 'never here'
            }
        } catch (e) {
            failure = e
        }
        writeFile file: 'failure', text: "${failure.getClass().name}: ${failure.message}"
    '''

    @Test
    void wrap_without_the_mask_passwords_plugin_fails_with_its_arguments_in_the_message() {
        runner.plugins.remove('mask-passwords')
        BuildResult build = runner.run(MASKED_WRAP)
        assertSucceeded(build)
        assertLogLacks(build, 'never here')
        assertEquals('java.lang.IllegalArgumentException: Could not instantiate {delegate={$class=MaskPasswordsBuildWrapper, ' +
                'varPasswordPairs=[{var=AWS_ACCESS_KEY_ID, password=the-key-id}, {var=AWS_SECRET_ACCESS_KEY, password=the-secret}]}} ' +
                'for org.jenkinsci.plugins.workflow.steps.CoreWrapperStep: java.lang.UnsupportedOperationException: ' +
                'no known implementation of class jenkins.tasks.SimpleBuildWrapper is named MaskPasswordsBuildWrapper',
                new File(workspace, 'failure').text)
    }

    @Test
    void an_uncaught_wrap_failure_prints_the_secrets_in_the_log_as_jenkins_does() {
        runner.plugins.remove('mask-passwords')
        BuildResult build = runner.run('''
            wrap([$class: 'com.michelin.cio.hudson.plugins.maskpasswords.MaskPasswordsBuildWrapper',
                  varPasswordPairs: [[var: 'T', password: 'the-token']]]) { echo 'never here' }
        ''')
        assertEnded(build, 'FAILURE')
        assertTrue(build.log, build.log.contains('java.lang.IllegalArgumentException: Could not instantiate {delegate={' +
                '$class=com.michelin.cio.hudson.plugins.maskpasswords.MaskPasswordsBuildWrapper, varPasswordPairs=[{var=T, password=the-token}]}} ' +
                'for org.jenkinsci.plugins.workflow.steps.CoreWrapperStep: java.lang.ClassNotFoundException: ' +
                'com.michelin.cio.hudson.plugins.maskpasswords.MaskPasswordsBuildWrapper'))
        assertEquals(['the-token'], build.secretsFound(['the-token', 'not-there']).log)
    }

    @Test
    void wrap_with_the_plugin_masks_and_other_wrappers_stay_unknown() {
        BuildResult masked = runner.run("wrap([\$class: 'MaskPasswordsBuildWrapper', varPasswordPairs: [[var: 'S', password: 'p4ss']]]) { echo 'here p4ss' }")
        assertLogShows(masked, '[Pipeline] wrap\n[Pipeline] {\n[Pipeline] echo\nhere ********\n')
        BuildResult other = runner.run("wrap([\$class: 'AnsiColorBuildWrapper', colorMapName: 'xterm']) { echo 'never here' }")
        assertEnded(other, 'FAILURE')
        assertTrue(other.log, other.log.contains('Could not instantiate {delegate={$class=AnsiColorBuildWrapper, colorMapName=xterm}} ' +
                'for org.jenkinsci.plugins.workflow.steps.CoreWrapperStep: java.lang.UnsupportedOperationException: ' +
                'no known implementation of class jenkins.tasks.SimpleBuildWrapper is named AnsiColorBuildWrapper'))
    }

    @Test
    void other_steps_with_an_unknown_class_fail_the_same_way() {
        runner.credentials.secretText('token', 'the-token')
        BuildResult step = runner.run("step([\$class: 'ArtifactArchiver', artifacts: 'secret-name.txt'])")
        assertTrue(step.log, step.log.contains('Could not instantiate {delegate={$class=ArtifactArchiver, artifacts=secret-name.txt}} ' +
                'for org.jenkinsci.plugins.workflow.steps.CoreStep: java.lang.UnsupportedOperationException: ' +
                'no known implementation of interface jenkins.tasks.SimpleBuildStep is named ArtifactArchiver'))

        BuildResult binding = runner.run('''
            withCredentials([[$class: 'StringBinding', credentialsId: 'token', variable: 'T'],
                             [$class: 'AmazonWebServicesCredentialsBinding', credentialsId: 'aws']]) { echo 'never here' }
        ''')
        assertEnded(binding, 'FAILURE')
        assertTrue(binding.log, binding.log.contains('Could not instantiate {bindings=[{$class=StringBinding, credentialsId=token, variable=T}, ' +
                '{$class=AmazonWebServicesCredentialsBinding, credentialsId=aws}]} for org.jenkinsci.plugins.credentialsbinding.impl.BindingStep: ' +
                'java.lang.UnsupportedOperationException: no known implementation of class ' +
                'org.jenkinsci.plugins.credentialsbinding.MultiBinding is named AmazonWebServicesCredentialsBinding'))

        BuildResult known = runner.run("withCredentials([[\$class: 'StringBinding', credentialsId: 'token', variable: 'T']]) { sh 'echo \"[\$T]\"' }")
        assertSucceeded(known, '[********]')
    }
}
