package org.withawsrole

import org.junit.Before
import org.junit.Test
import org.withawsrole.replay.BuildResult

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertLogShows
import static org.withawsrole.BuildAssertions.assertSucceeded

/**
 * Another organisation's library (test/jvm/fixtures/acme-pipeline) uses withAwsRole through its
 * Groovy API, from a class in its src/ and from its vars/, loaded next to withAwsRole as Jenkins
 * loads the libraries of one build into one classloader.
 */
class ConsumerLibraryPipelineTest extends PipelineTestBase {
    File dockerCalls

    @Before
    void withTheConsumersLibrary() {
        runner.workspace = new File(workspace.root, 'job')
        runner.withLibrary('acme-pipeline', new File(runner.libraryDirectory, 'test/jvm/fixtures/acme-pipeline'))
        dockerCalls = new File(workspace.root, 'docker-calls')
        withFakeDocker(runner, dockerCalls)
    }

    @Test
    void another_library_gets_credentials_through_the_api() {
        BuildResult build = runner.run('''
            @Library(['withAwsRole', 'acme-pipeline']) _
            node {
                def arn = acmeDeploy('production')
                acmeDeploy('audit')
                acmePublishImage('app:7')
                withAwsRole('ecr-push') { echo 'the step still works next to the API' }
            }
        ''')
        assertSucceeded(build, 'acmeDeploy: production deploys as arn:aws:sts::123456789012:assumed-role/jenkins-deploy-role/',
                'acmeDeploy: audit deploys as arn:aws:sts::123456789012:assumed-role/jenkins-deploy-readonly-role/')
        assertEquals('one log line per block, as for the step', 4, build.log.count('withAwsRole: '))
        assertTrue(dockerCalls.text, dockerCalls.text.contains('login registry=123456789012.dkr.ecr.eu-west-1.amazonaws.com user=AWS'))
        assertTrue(dockerCalls.text, dockerCalls.text.contains('docker push 123456789012.dkr.ecr.eu-west-1.amazonaws.com/app:7'))
        assertLogShows(build, 'the step still works next to the API')
    }

    @Test
    void errors_reach_the_other_library_s_users_as_one_line() {
        // The purposes config refuses a role ARN the purpose does not offer, whoever's code asks.
        BuildAssertions.assertRefusedBeforeVault(runner, "acmeDeploy('sandbox')",
                "withAwsRole('deploy'): purpose `deploy` does not let a pipeline assume " +
                        'arn:aws:iam::123456789012:role/jenkins-sandbox-role: leave roleArn out, or add the ARN to ' +
                        "the purpose's role_arns in org/withawsrole/purposes.toml")
    }
}
