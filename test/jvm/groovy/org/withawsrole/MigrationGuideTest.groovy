package org.withawsrole

import groovy.json.JsonSlurper
import org.junit.Test
import org.withawsrole.replay.BuildResult
import org.withawsrole.replay.PipelineRunner

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertEnded
import static org.withawsrole.BuildAssertions.assertLogLacks
import static org.withawsrole.BuildAssertions.assertSucceeded

/**
 * docs/migration.md's Jenkinsfile pairs run against the world: each "before" (marked `MigrationGuideTest
 * runs this, the plugin's step stood in`) with the plugin's step stood in as the plugin behaves
 * (test/jvm/fixtures/migration/plugin-stand-ins.groovy), each "after" (marked `MigrationGuideTest
 * runs this`) as written; the block's commands see every variable of the before under the same name
 * after, so the migration is the one-line swap of the step. And the key-name options that make it
 * so do what the AWS credentials binding's options did.
 */
class MigrationGuideTest extends PipelineTestBase {
    static final String GUIDE = 'docs/migration.md'
    static final String MARK = '<!-- MigrationGuideTest runs this -->'
    static final String BEFORE_MARK = '<!-- MigrationGuideTest runs this, the plugin\'s step stood in -->'
    static final String ASSUMED = 'arn:aws:sts::123456789012:assumed-role/'
    static final String STAND_INS = 'test/jvm/fixtures/migration/plugin-stand-ins.groovy'
    /** What each before's step puts in the block (withAWS, the binding, withVault), as its plugin documents. */
    static final List<List<String>> SET_BY_THE_PLUGIN = [
            ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_REGION', 'AWS_DEFAULT_REGION'],
            ['DEPLOY_KEY_ID', 'DEPLOY_SECRET'],
            ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'],
    ].asImmutable()

    @Test
    void every_before_and_after_in_the_guide_runs_and_the_block_sees_the_same_variables() {
        List<String> befores = markedJenkinsfiles(BEFORE_MARK)
        List<String> afters = markedJenkinsfiles(MARK)
        assertEquals('withAWS, the credentials binding and withVault each have a before', 3, befores.size())
        assertEquals('and an after', 3, afters.size())
        String property = 'replay.aws.defaultCredentials'
        // The controller's own AWS identity (withAWS without credentials): the world's IAM user.
        System.setProperty(property, new File(new File(System.getenv('AWS_CONFIG_FILE')).parentFile, 'moto-vault-user.json').path)
        try {
            afters.eachWithIndex { String after, int index ->
                Map<String, Object> seenBefore = blockOf(befores[index], "before-${index}")
                Map<String, Object> seenAfter = blockOf(after, "after-${index}")
                String shown = "${GUIDE}, pair ${index + 1}:\n${befores[index]}\n${after}\n${seenBefore.log}\n${seenAfter.log}"
                assertTrue(shown, seenAfter.log.contains("as ${ASSUMED}"))
                assertTrue(shown, seenAfter.log.contains('deploy.sh: ' + ASSUMED + 'jenkins-deploy-role/') || !after.contains('deploy.sh'))
                assertTrue("the before's step set its variables: ${SET_BY_THE_PLUGIN[index]}\n${shown}".toString(),
                        seenBefore.names.containsAll(SET_BY_THE_PLUGIN[index]))
                assertEquals("names the block saw before and not after\n${shown}".toString(), [] as Set, seenBefore.names - seenAfter.names)
                if (befores[index].contains('region')) {
                    assertEquals(shown, seenBefore.regions, seenAfter.regions)
                }
            }
        } finally {
            System.clearProperty(property)
        }
    }

    /**
     * Runs `jenkinsfile` (a guide's before with the stand-ins, or an after) and answers what its
     * aws calls saw: the environment's variable names, AWS_REGION and AWS_DEFAULT_REGION, and the log.
     */
    private Map<String, Object> blockOf(String jenkinsfile, String job) {
        PipelineRunner runner = guideRunnerIn(workspace.newFolder(job), job)
        runner.standIns.file = new File(runner.libraryDirectory, STAND_INS)
        Map iamUser = worldIamUserKeys()
        runner.credentials.usernamePassword('aws-deploy', (String) iamUser.access_key, (String) iamUser.secret_key)
        File record = new File(workspace.root, "${job}.env")
        File shim = new File(runner.libraryDirectory, 'test/jvm/fixtures/migration/bin')
        runner.baseEnvironment.PATH = "${shim.absolutePath}:${runner.baseEnvironment.PATH}".toString()
        runner.baseEnvironment.MIGRATION_RECORD = record.absolutePath
        BuildResult build = runner.run(jenkinsfile)
        assertTrue("${job}:\n${jenkinsfile}\n${build.log}".toString(), build.success)
        assertTrue("${job}: the block ran aws\n${build.log}".toString(), record.isFile())
        List<String> lines = record.readLines('UTF-8')
        return [log    : build.log,
                names  : lines.findAll { it ==~ /[A-Za-z_][A-Za-z0-9_]*/ } as Set<String>,
                regions: lines.findAll { it.startsWith('AWS_REGION=') || it.startsWith('AWS_DEFAULT_REGION=') } as Set<String>]
    }

    /** The world's IAM user's static key: what an "AWS Credentials" entry of Jenkins held before. */
    private static Map worldIamUserKeys() {
        return (Map) new JsonSlurper().parse(new File(System.getProperty('replay.aws.defaultCredentials')))
    }

    @Test
    void keys_under_the_binding_s_names_are_the_block_s_keys_and_masked() {
        PipelineRunner runner = guideRunnerIn(workspace.root, 'key-names')
        BuildResult build = runner.run('''
            withAwsRole('ecr-push', accessKeyVariable: 'MY_KEY', secretKeyVariable: 'MY_SECRET', sessionTokenVariable: 'MY_TOKEN') {
                sh 'set +x; [ "$MY_KEY" = "$AWS_ACCESS_KEY_ID" ] && [ "$MY_SECRET" = "$AWS_SECRET_ACCESS_KEY" ] && ' +
                   '[ "$MY_TOKEN" = "$AWS_SESSION_TOKEN" ] && [ -n "$MY_TOKEN" ] && echo same-keys'
                sh 'printf "%s|%s|%s\\n" "$MY_KEY" "$MY_SECRET" "$MY_TOKEN" > keys.txt; cat keys.txt'
            }
            sh 'echo "after the block: [${MY_KEY:-}${MY_SECRET:-}${MY_TOKEN:-}]"'
        ''')
        assertSucceeded(build, 'same-keys', 'after the block: []')
        new File(workspace.root, 'keys.txt').text.trim().split('\\|').each { String secret ->
            assertTrue('a key was written', secret.length() > 8)
            assertFalse("a key is in the log:\n${build.log}".toString(), build.log.contains(secret))
        }
    }

    @Test
    void key_names_are_for_the_plain_block_only() {
        PipelineRunner runner = guideRunnerIn(workspace.root, 'key-names-refresh')
        BuildResult build = runner.run("withAwsRole(role: 'ecr-push', refresh: true, accessKeyVariable: 'K') { echo 'never here' }")
        assertEnded(build, 'FAILURE', 'ERROR: withAwsRole: unknown option accessKeyVariable')
        assertLogLacks(build, 'never here')
    }

    /** A runner with the guide's credentials and the files its Jenkinsfiles use. */
    private static PipelineRunner guideRunnerIn(File directory, String job) {
        PipelineRunner runner = runnerIn(directory, job)
        runner.credentials.usernamePassword('vault-approle', System.getenv('VAULT_ROLE_ID'), System.getenv('VAULT_SECRET_ID'))
        new File(directory, 'stack.yaml').text = ReadmeUsageTest.STACK
        File deploy = new File(directory, 'deploy.sh')
        // A script of the kind the binding fed: it reads the keys under its own names.
        deploy.text = '#!/bin/sh\nset +x\necho "deploy.sh: $(AWS_ACCESS_KEY_ID="$DEPLOY_KEY_ID" AWS_SECRET_ACCESS_KEY="$DEPLOY_SECRET" ' +
                'aws sts get-caller-identity --query Arn --output text)"\n'
        deploy.setExecutable(true)
        return runner
    }

    /** The Jenkinsfiles of the guide marked with `mark`, in order. */
    private static List<String> markedJenkinsfiles(String mark) {
        List<String> found = []
        List<String> lines = new File(GUIDE).readLines('UTF-8')
        lines.eachWithIndex { String line, int index ->
            if (line.trim() == mark) {
                assertEquals("${GUIDE}:${index + 2} opens a groovy block".toString(), '```groovy', lines[index + 1].trim())
                int end = (index + 2..<lines.size()).find { lines[it].trim() == '```' }
                found << lines.subList(index + 2, end).join('\n')
            }
        }
        return found
    }
}
