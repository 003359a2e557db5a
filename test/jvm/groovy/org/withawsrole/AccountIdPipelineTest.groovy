package org.withawsrole

import org.junit.Test
import org.withawsrole.replay.BuildResult

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertLogLacks
import static org.withawsrole.BuildAssertions.assertRefusedBeforeVault
import static org.withawsrole.BuildAssertions.assertSucceeded

/**
 * Account ids out of the log on request: hideAccountId: true, or hide_account_id = true in the
 * purposes config (which a Jenkinsfile cannot turn off). The log line shows
 * arn:aws:sts::***:assumed-role/..., and the block's own output has the account id masked.
 */
class AccountIdPipelineTest extends PipelineTestBase {
    /** moto's account: every ARN of the world names it. */
    static final String ACCOUNT = '123456789012'

    /** Prints the account id the way a careless block would. */
    static final String PRINT_ACCOUNT = '''
        sh 'set +x; echo "account=$(aws sts get-caller-identity --query Account --output text)"'
    '''

    @Test
    void hide_account_id_shortens_the_log_line_and_masks_the_account_in_the_block_output() {
        BuildResult build = runner.run("""
            withAwsRole(role: 'ecr-push', hideAccountId: true) {
                ${PRINT_ACCOUNT}
            }
        """)
        assertSucceeded(build, 'withAwsRole: ecr-push as arn:aws:sts::***:assumed-role/jenkins-ecr-push-role/', 'account=********')
        assertFalse("the account id leaked:\n${build.log}", build.log.contains(ACCOUNT))
    }

    @Test
    void without_the_option_the_account_id_is_shown_the_control_for_the_test_above() {
        BuildResult build = runner.run("withAwsRole('ecr-push') { ${PRINT_ACCOUNT} }")
        assertSucceeded(build, "withAwsRole: ecr-push as arn:aws:sts::${ACCOUNT}:assumed-role/", "account=${ACCOUNT}")
    }

    @Test
    void the_purposes_config_hides_it_for_every_pipeline_and_a_pipeline_cannot_show_it_again() {
        controllerPurposes('[defaults]\nhide_account_id = true\n\n[purposes.ecr-push]\n')
        BuildResult build = runner.run("withAwsRole('ecr-push') { ${PRINT_ACCOUNT} }")
        assertSucceeded(build, 'withAwsRole: ecr-push as arn:aws:sts::***:assumed-role/')
        assertLogLacks(build, ACCOUNT)

        assertRefusedBeforeVault(runner, "withAwsRole(role: 'ecr-push', hideAccountId: false) { echo 'never here' }",
                "withAwsRole('ecr-push'): purpose `ecr-push` does not let a pipeline show the AWS account id in the build log: " +
                        'leave hideAccountId out')
    }

    @Test
    void hide_account_id_must_be_a_boolean_not_a_string_the_core_would_read_differently() {
        assertRefusedBeforeVault(runner, "withAwsRole(role: 'ecr-push', hideAccountId: 'no') { echo 'never here' }",
                'withAwsRole: hideAccountId must be true or false, not a String')
    }

    @Test
    void refreshing_blocks_mask_the_account_of_their_role_too() {
        BuildResult build = runner.run("""
            withAwsRole(role: 'deploy', refresh: true, timeout: '10m', hideAccountId: true) {
                ${PRINT_ACCOUNT}
            }
        """)
        assertSucceeded(build, 'account=********')
        assertLogLacks(build, ACCOUNT)
    }
}
