package org.withawsrole

import org.junit.BeforeClass
import org.junit.Rule
import org.junit.Test
import org.junit.rules.TemporaryFolder
import org.withawsrole.replay.BuildResult
import org.withawsrole.replay.PipelineRunner

import static org.junit.Assert.*

/**
 * docs/migration.md's "after" Jenkinsfiles (those marked `MigrationGuideTest runs this`) run against
 * the world as written, and the key-name options that make a migration a one-line change do what
 * the AWS credentials binding's options did.
 */
class MigrationGuideTest {
    static final String GUIDE = 'docs/migration.md'
    static final String MARK = '<!-- MigrationGuideTest runs this -->'
    static final String ASSUMED = 'arn:aws:sts::123456789012:assumed-role/'

    @Rule
    public TemporaryFolder workspace = new TemporaryFolder()

    @BeforeClass
    static void world() {
        World.require()
    }

    @Test
    void every_marked_jenkinsfile_in_the_guide_runs() {
        List<String> jenkinsfiles = markedJenkinsfiles()
        assertEquals('withAWS, the credentials binding and withVault each have one', 3, jenkinsfiles.size())
        jenkinsfiles.eachWithIndex { String jenkinsfile, int index ->
            PipelineRunner runner = runnerIn(workspace.newFolder("after-${index}"), "migration-${index}")
            BuildResult build = runner.run(jenkinsfile)
            String shown = "${GUIDE}, Jenkinsfile ${index + 1}:\n${jenkinsfile}\n${build.log}"
            assertTrue(shown, build.success)
            assertTrue(shown, build.log.contains("as ${ASSUMED}"))
            assertTrue(shown, build.log.contains('deploy.sh: ' + ASSUMED + 'jenkins-deploy-role/') || !jenkinsfile.contains('deploy.sh'))
        }
    }

    @Test
    void keys_under_the_binding_s_names_are_the_block_s_keys_and_masked() {
        PipelineRunner runner = runnerIn(workspace.root, 'key-names')
        BuildResult build = runner.run('''
            withAwsRole('ecr-push', accessKeyVariable: 'MY_KEY', secretKeyVariable: 'MY_SECRET', sessionTokenVariable: 'MY_TOKEN') {
                sh 'set +x; [ "$MY_KEY" = "$AWS_ACCESS_KEY_ID" ] && [ "$MY_SECRET" = "$AWS_SECRET_ACCESS_KEY" ] && ' +
                   '[ "$MY_TOKEN" = "$AWS_SESSION_TOKEN" ] && [ -n "$MY_TOKEN" ] && echo same-keys'
                sh 'printf "%s|%s|%s\\n" "$MY_KEY" "$MY_SECRET" "$MY_TOKEN" > keys.txt; cat keys.txt'
            }
            sh 'echo "after the block: [${MY_KEY:-}${MY_SECRET:-}${MY_TOKEN:-}]"'
        ''')
        assertTrue(build.log, build.success)
        assertTrue(build.log, build.log.contains('same-keys'))
        assertTrue(build.log, build.log.contains('after the block: []'))
        new File(workspace.root, 'keys.txt').text.trim().split('\\|').each { String secret ->
            assertTrue('a key was written', secret.length() > 8)
            assertFalse("a key is in the log:\n${build.log}".toString(), build.log.contains(secret))
        }
    }

    @Test
    void key_names_are_for_the_plain_block_only() {
        PipelineRunner runner = runnerIn(workspace.root, 'key-names-refresh')
        BuildResult build = runner.run("withAwsRole(role: 'ecr-push', refresh: true, accessKeyVariable: 'K') { echo 'never here' }")
        assertEquals(build.log, 'FAILURE', build.result)
        assertTrue(build.log, build.log.contains('ERROR: withAwsRole: unknown option accessKeyVariable'))
        assertFalse(build.log, build.log.contains('never here'))
    }

    private static PipelineRunner runnerIn(File directory, String job) {
        PipelineRunner runner = PipelineRunner.forThisProject()
        runner.workspace = directory
        runner.jobName = job
        runner.credentials.usernamePassword('vault-approle', System.getenv('VAULT_ROLE_ID'), System.getenv('VAULT_SECRET_ID'))
        new File(directory, 'stack.yaml').text = ReadmeUsageTest.STACK
        File deploy = new File(directory, 'deploy.sh')
        // A script of the kind the binding fed: it reads the keys under its own names.
        deploy.text = '#!/bin/sh\nset +x\necho "deploy.sh: $(AWS_ACCESS_KEY_ID="$DEPLOY_KEY_ID" AWS_SECRET_ACCESS_KEY="$DEPLOY_SECRET" ' +
                'aws sts get-caller-identity --query Arn --output text)"\n'
        deploy.setExecutable(true)
        return runner
    }

    private static List<String> markedJenkinsfiles() {
        List<String> found = []
        List<String> lines = new File(GUIDE).readLines('UTF-8')
        lines.eachWithIndex { String line, int index ->
            if (line.trim() == MARK) {
                assertEquals("${GUIDE}:${index + 2} opens a groovy block".toString(), '```groovy', lines[index + 1].trim())
                int end = (index + 2..<lines.size()).find { lines[it].trim() == '```' }
                found << lines.subList(index + 2, end).join('\n')
            }
        }
        return found
    }
}
