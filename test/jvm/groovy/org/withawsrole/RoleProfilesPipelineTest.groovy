package org.withawsrole

import org.junit.Test
import org.withawsrole.replay.BuildResult

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertEnded
import static org.withawsrole.BuildAssertions.assertFailedWithOneLine
import static org.withawsrole.BuildAssertions.assertLogShows
import static org.withawsrole.BuildAssertions.assertRefusedBeforeVault
import static org.withawsrole.BuildAssertions.assertSucceeded

/**
 * Several roles in one block: withAwsRole(roles: ['ecr-push', 'deploy']) gives one named AWS
 * profile per role (the first also as the block's AWS_* variables), every role authorized by the
 * purposes config, every key masked, the files gone after the block.
 */
class RoleProfilesPipelineTest extends PipelineTestBase {
    static final String ARNS = '''
        sh 'set +x; echo "default=$(aws sts get-caller-identity --query Arn --output text)"'
        sh 'set +x; echo "deploy=$(aws --profile deploy sts get-caller-identity --query Arn --output text)"'
        sh 'set +x; echo "ecr=$(aws --profile ecr-push sts get-caller-identity --query Arn --output text)"'
    '''


    @Test
    void each_role_is_a_named_profile_the_first_is_the_default_and_every_key_is_masked() {
        BuildResult build = runner.run("""
            withAwsRole(roles: ['ecr-push', 'deploy']) {
                ${ARNS}
                sh 'set +x; cp "\$AWS_SHARED_CREDENTIALS_FILE" saved-credentials; printf %s "\$AWS_SHARED_CREDENTIALS_FILE" > credentials-path'
                // Careless on purpose: the whole file, masked.
                sh 'cat "\$AWS_SHARED_CREDENTIALS_FILE"'
            }
        """)
        assertSucceeded(build, 'withAwsRole: ecr-push as arn:aws:sts::', 'withAwsRole: deploy as arn:aws:sts::')
        assertTrue(build.log, (build.log =~ /default=arn:aws:sts::\d+:assumed-role\/jenkins-ecr-push-role\//).find())
        assertTrue(build.log, (build.log =~ /deploy=arn:aws:sts::\d+:assumed-role\/jenkins-deploy-role\//).find())
        assertTrue(build.log, (build.log =~ /ecr=arn:aws:sts::\d+:assumed-role\/jenkins-ecr-push-role\//).find())
        List<String> secrets = workspaceFile('saved-credentials').readLines()
                .findAll { it.startsWith('aws_') }
                .collect { it.split(' = ', 2)[1] }
        assertEquals('two roles, three values each', 6, secrets.toSet().size())
        secrets.each { assertFalse("a key leaked:\n${build.log}", build.log.contains(it)) }
        assertLogShows(build, 'aws_secret_access_key = ********')
        assertFalse('the private files are gone', new File(workspaceFile('credentials-path')).parentFile.exists())
    }

    @Test
    void roles_with_refresh_get_one_token_and_one_refreshing_profile_per_role() {
        BuildResult build = runner.run("""
            withAwsRole(roles: ['ecr-push', 'deploy'], refresh: true, timeout: '10m') {
                ${ARNS}
                sh 'set +x; printf %s "\$AWS_CONFIG_FILE" > config-path; echo "keys:[\${AWS_ACCESS_KEY_ID:-}]"'
            }
        """)
        assertSucceeded(build)
        assertTrue(build.log, (build.log =~ /default=arn:aws:sts::\d+:assumed-role\/jenkins-ecr-push-role\//).find())
        assertTrue(build.log, (build.log =~ /deploy=arn:aws:sts::\d+:assumed-role\/jenkins-deploy-role\//).find())
        assertLogShows(build, 'keys:[]',
                'withAwsRole: deploy refreshing through awsrole credential-process with a Vault token for aws/sts/deploy only')
        assertEquals(build.log, 2, build.log.count("the block's Vault token is revoked"))
        assertFalse('the private directory is gone', new File(workspaceFile('config-path')).parentFile.exists())
    }

    @Test
    void parallel_branches_share_one_fetch_per_role() {
        int ecr = World.stsCalls('aws/ecr-push')
        int deploy = World.stsCalls('aws/deploy')
        BuildResult build = runner.run("""
            parallel a: {
                withAwsRole(roles: ['ecr-push', 'deploy']) { ${ARNS} }
            }, b: {
                withAwsRole(roles: ['deploy', 'ecr-push']) { ${ARNS} }
            }
        """)
        assertSucceeded(build)
        assertTrue(build.log, (build.log =~ /\[b\] default=arn:aws:sts::\d+:assumed-role\/jenkins-deploy-role\//).find())
        assertEquals(ecr + 1, World.stsCalls('aws/ecr-push'))
        assertEquals(deploy + 1, World.stsCalls('aws/deploy'))
    }

    @Test
    void a_failing_block_removes_its_profiles_too() {
        BuildResult build = runner.run("""
            withAwsRole(roles: ['ecr-push', 'deploy']) {
                sh 'set +x; printf %s "\$AWS_SHARED_CREDENTIALS_FILE" > credentials-path; exit 3'
            }
        """)
        assertEnded(build, 'FAILURE')
        assertFalse('the private files are gone', new File(workspaceFile('credentials-path')).parentFile.exists())
    }

    @Test
    void every_role_is_authorized_by_the_purposes_config() {
        int forbidden = World.stsCalls('aws/forbidden')
        BuildResult build = runner.run("withAwsRole(roles: ['ecr-push', 'forbidden']) { echo 'never here' }")
        assertFailedWithOneLine(build, "withAwsRole('forbidden'): purpose `forbidden` is not in the purposes config")
        assertEquals(forbidden, World.stsCalls('aws/forbidden'))
    }

    @Test
    void a_role_name_that_would_escape_its_profile_section_is_refused_before_vault() {
        assertRefusedBeforeVault(runner, "withAwsRole(roles: ['ecr-push', 'deploy]\\n[default']) { echo 'never here' }",
                "withAwsRole: roles: 'deploy]\\n[default' cannot name an AWS profile")
        assertRefusedBeforeVault(runner, "withAwsRole(roles: ['ecr-push', 'deploy\\naws_access_key_id = AKIA']) { echo 'never here' }",
                'withAwsRole: roles: ')
    }

    @Test
    void malformed_roles_options_are_refused_before_vault() {
        assertRefusedBeforeVault(runner, "withAwsRole(roles: [], ttl: '15m') { echo 'never here' }",
                'withAwsRole: roles must be a list of 1 to 8 role names')
        assertRefusedBeforeVault(runner, "withAwsRole(roles: 'ecr-push') { echo 'never here' }",
                'withAwsRole: roles must be a list of 1 to 8 role names')
        assertRefusedBeforeVault(runner, "withAwsRole(roles: ['ecr-push', 'ecr-push']) { echo 'never here' }",
                "withAwsRole: roles: 'ecr-push' is given twice")
        assertRefusedBeforeVault(runner, "withAwsRole(role: 'deploy', roles: ['ecr-push']) { echo 'never here' }",
                'withAwsRole: give either role or roles, not both')
        assertRefusedBeforeVault(runner,
                "withAwsRole(roles: ['deploy'], roleArn: 'arn:aws:iam::123456789012:role/jenkins-deploy-readonly-role') { echo 'never here' }",
                'withAwsRole: roleArn names one IAM role and cannot go with roles')
        assertRefusedBeforeVault(runner, "withAwsRole(roles: ['ecr-push'], mount: 'other') { echo 'never here' }",
                "withAwsRole: mount is not a pipeline's choice")
    }
}
