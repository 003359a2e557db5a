package org.withawsrole

import org.junit.Test
import org.withawsrole.replay.BuildResult
import org.withawsrole.replay.PipelineRunner

import static org.junit.Assert.*

/**
 * The Jenkinsfiles of README.md's "## Usage" (its groovy blocks that load the library) run as they
 * are against the world: what users copy works. `docker` is the recording fixture; the deploy
 * example's stack.yaml is a one-bucket CloudFormation template.
 */
class ReadmeUsageTest extends PipelineTestBase {
    static final String STACK = '''\
        AWSTemplateFormatVersion: '2010-09-09'
        Resources:
          Artifacts:
            Type: AWS::S3::Bucket
        '''.stripIndent()

    @Test
    void every_usage_jenkinsfile_in_the_readme_runs() {
        List<String> jenkinsfiles = usageJenkinsfiles()
        assertTrue("the Usage section has its examples: ${jenkinsfiles.size()}", jenkinsfiles.size() >= 4)
        jenkinsfiles.eachWithIndex { String jenkinsfile, int index ->
            PipelineRunner runner = runnerIn(workspace.newFolder("example-${index}"), "readme-example-${index}")
            new File(runner.workspace, 'stack.yaml').text = STACK
            withFakeDocker(runner, new File(workspace.root, "docker-calls-${index}"))
            runner.credentials.usernamePassword('vault-approle-app', System.getenv('VAULT_ROLE_ID'), System.getenv('VAULT_SECRET_ID'))
            World.resetCounters()

            BuildResult build = runner.run(jenkinsfile)

            String example = "README example ${index + 1}:\n${jenkinsfile}\n${build.log}"
            assertTrue(example, build.success)
            int blocks = build.log.count('withAwsRole: ')
            assertTrue(example, blocks >= 1)
            if (jenkinsfile.contains('parallel')) {
                assertEquals("one Vault call for all branches\n${example}", 1, World.counters().sts_total)
                assertEquals(example, 3, blocks)
            }
        }
    }

    /** The ```groovy blocks of README.md's Usage section that are Jenkinsfiles (they load the library). */
    private static List<String> usageJenkinsfiles() {
        String readme = new File(System.getProperty('withawsrole.library.dir', '.'), 'README.md').getText('UTF-8')
        int start = readme.indexOf('\n## Usage\n')
        assertTrue('README.md has a ## Usage section', start >= 0)
        int end = readme.indexOf('\n## ', start + 1)
        String usage = readme.substring(start, end < 0 ? readme.length() : end)
        return (usage =~ /(?s)```groovy\n(.*?)```/).collect { List<String> match -> match[1] }
                .findAll { String block -> block.contains("@Library('withAwsRole')") }
    }
}
