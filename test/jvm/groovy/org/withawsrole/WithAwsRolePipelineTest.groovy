package org.withawsrole

import org.junit.Test
import org.withawsrole.replay.BuildResult

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertEnded
import static org.withawsrole.BuildAssertions.assertEachFailsWithOneLine
import static org.withawsrole.BuildAssertions.assertFailedWithOneLine
import static org.withawsrole.BuildAssertions.assertLogLacks
import static org.withawsrole.BuildAssertions.assertLogShows
import static org.withawsrole.BuildAssertions.assertRefusedBeforeVault
import static org.withawsrole.BuildAssertions.assertSucceeded

/** Jenkinsfiles using withAwsRole, run by the local runner against the real world. */
class WithAwsRolePipelineTest extends PipelineTestBase {
    static final String SUMMARY_LINE =
            /(?m)^withAwsRole: ecr-push as arn:aws:sts::\d+:assumed-role\/jenkins-ecr-push-role\/\S+, expires \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ \(cache (hit|miss)\)$/
    static final String DEPLOY_ROLE_ARN = 'arn:aws:iam::123456789012:role/jenkins-deploy-role'
    static final String READONLY_ROLE_ARN = 'arn:aws:iam::123456789012:role/jenkins-deploy-readonly-role'
    static final String CALLER_ARN = "sh 'set +x; echo \"caller=\$(aws sts get-caller-identity --query Arn --output text)\"'"

    // ---- forms and options

    @Test
    void short_form_names_the_role() {
        BuildResult build = runner.run("""
            @Library('withAwsRole') _
            node {
                withAwsRole('ecr-push') {
                    ${CALLER_ARN}
                }
            }
        """)
        assertSucceeded(build, 'caller=arn:aws:sts::123456789012:assumed-role/jenkins-ecr-push-role/')
        assertEquals(build.log, 1, (build.log =~ SUMMARY_LINE).count)
    }

    @Test
    void named_form_takes_every_option() {
        // Every option that shapes the credentials; roleArn only within what the purpose offers
        // (deploy's role_arns). The login options are VaultCredentialsPipelineTest's.
        BuildResult build = runner.run("""
            withAwsRole(role: 'deploy', ttl: '20m', roleArn: '${READONLY_ROLE_ARN}', region: 'eu-west-1', mask: true) {
                sh 'set +x; echo "region=\$AWS_REGION/\$AWS_DEFAULT_REGION"'
                sh 'set +x; echo "lifetime=\$(( \$(date -d "\$AWS_CREDENTIAL_EXPIRATION" +%s) - \$(date +%s) ))"'
            }
        """)
        assertSucceeded(build, "as arn:aws:sts::123456789012:assumed-role/jenkins-deploy-readonly-role/${sessionName(build)},",
                'region=eu-west-1/eu-west-1')
        int lifetime = (build.log =~ /lifetime=(\d+)/)[0][1] as int
        assertTrue("ttl 20m gives about 1200 s: ${lifetime}", lifetime > 1100 && lifetime <= 1200)
    }

    @Test
    void named_options_may_follow_the_role() {
        BuildResult build = runner.run('''
            withAwsRole('ecr-push', ttl: 900, region: 'eu-west-1') { sh 'set +x; echo "region=$AWS_REGION"' }
        ''')
        assertSucceeded(build, "assumed-role/jenkins-ecr-push-role/${sessionName(build)},", 'region=eu-west-1')
    }

    @Test
    void purposes_config_of_the_library_names_the_iam_role_ttl_and_region() {
        // resources/org/withawsrole/purposes.toml: deploy -> jenkins-deploy-role, 30m; region us-east-1.
        BuildResult build = runner.run('''
            withAwsRole('deploy') {
                sh 'set +x; echo "region=$AWS_REGION lifetime=$(( $(date -d "$AWS_CREDENTIAL_EXPIRATION" +%s) - $(date +%s) ))"'
            }
        ''')
        assertSucceeded(build, 'withAwsRole: deploy as arn:aws:sts::123456789012:assumed-role/jenkins-deploy-role/', 'region=us-east-1 ')
        int lifetime = (build.log =~ /lifetime=(\d+)/)[0][1] as int
        assertTrue("ttl 30m gives about 1800 s: ${lifetime}", lifetime > 1700 && lifetime <= 1800)
    }

    @Test
    void config_file_option_is_refused_the_purposes_config_is_not_a_pipeline_s_choice() {
        // A Jenkinsfile that could name its own purposes file could grant itself any Vault role.
        File config = new File(workspace.root, 'purposes.toml')
        config.text = '[purposes.deploy]\nrole_arn = "arn:aws:iam::123456789012:role/jenkins-deploy-readonly-role"\n'
        assertRefusedBeforeVault(runner, "withAwsRole(role: 'deploy', configFile: '${config.absolutePath}') { echo 'never here' }",
                "withAwsRole: configFile is not a pipeline's choice: the purposes config is the library's reviewed " +
                        "purposes.toml or the controller's WITHAWSROLE_CONFIG file")
    }

    @Test
    void controller_config_file_replaces_the_library_s_purposes_config() {
        controllerPurposes('[purposes.deploy]\nrole_arn = "arn:aws:iam::123456789012:role/jenkins-deploy-readonly-role"\n')
        BuildResult build = runner.run("withAwsRole('deploy') { echo 'inside' }")
        assertSucceeded(build, 'withAwsRole: deploy as arn:aws:sts::123456789012:assumed-role/jenkins-deploy-readonly-role/')
    }

    @Test
    void controller_config_file_refuses_what_it_does_not_list() {
        // It replaces the library's file: ecr-push, listed there, is not listed here.
        controllerPurposes('[purposes.deploy]\n')
        assertRefusedBeforeVault(runner, "withAwsRole('ecr-push') { echo 'never here' }",
                "withAwsRole('ecr-push'): purpose `ecr-push` is not in the purposes config")
    }

    @Test
    void purpose_the_library_s_config_does_not_list_is_refused_before_vault() {
        // forbidden exists in the world's AWS engine: only the purposes config keeps it out.
        assertRefusedBeforeVault(runner, "withAwsRole('forbidden') { echo 'never here' }",
                "withAwsRole('forbidden'): purpose `forbidden` is not in the purposes config org/withawsrole/purposes.toml: " +
                        'add a reviewed [purposes.forbidden] table there')
    }

    @Test
    void namespace_of_the_controller_reaches_vault() {
        controller.set('VAULT_NAMESPACE', 'no-such-team')
        BuildResult build = runner.run("withAwsRole(role: 'ecr-push') { echo 'never here' }")
        assertEnded(build, 'FAILURE', 'namespace not found')
        assertLogLacks(build, 'never here')
    }

    @Test
    void namespace_option_is_refused_the_namespace_is_the_controller_s() {
        assertRefusedBeforeVault(runner, "withAwsRole(role: 'ecr-push', namespace: 'no-such-team') { echo 'never here' }",
                "withAwsRole: namespace is not a pipeline's choice: Vault's namespace is the controller's setting (VAULT_NAMESPACE)")
    }

    @Test
    void session_name_mount_and_vault_role_options_are_refused() {
        // Each would let a Jenkinsfile forge its CloudTrail identity or reach another Vault role.
        assertRefusedBeforeVault(runner, "withAwsRole(role: 'ecr-push', sessionName: 'jenkins-other-job-1') { echo 'never here' }",
                "withAwsRole: sessionName is not a pipeline's choice: session names always name the job and build that asked")
        assertRefusedBeforeVault(runner, "withAwsRole(role: 'ecr-push', mount: 'aws') { echo 'never here' }",
                "withAwsRole: mount is not a pipeline's choice: the purpose's Vault mount is set in the reviewed purposes config")
        assertRefusedBeforeVault(runner, "withAwsRole(role: 'ecr-push', vaultRole: 'forbidden') { echo 'never here' }",
                "withAwsRole: vaultRole is not a pipeline's choice: the purpose's Vault role is set in the reviewed purposes config")
    }

    @Test
    void refresh_option_goes_to_the_refreshing_mode() {
        // refresh: false is that mode's way back to the plain step: it proves the hand-over
        // without the awsrole CLI that refresh: true copies to the agent.
        BuildResult build = runner.run("withAwsRole(role: 'ecr-push', refresh: false) { echo 'inside' }")
        assertSucceeded(build)
        assertEquals(build.log, 1, (build.log =~ SUMMARY_LINE).count)
    }

    @Test
    void session_name_records_job_and_build() {
        BuildResult build = runner.run("withAwsRole('ecr-push') { echo 'inside' }")
        assertSucceeded(build, "assumed-role/jenkins-ecr-push-role/jenkins-${runner.jobName}-${build.number},")
    }

    @Test
    void returns_the_value_of_the_block() {
        BuildResult build = runner.run('''
            def arn = withAwsRole('ecr-push') {
                sh(script: 'aws sts get-caller-identity --query Arn --output text', returnStdout: true).trim()
            }
            echo "arn=${arn}"
        ''')
        assertSucceeded(build)
        assertTrue(build.log, (build.log =~ /arn=arn:aws:sts::\d+:assumed-role\/jenkins-ecr-push-role\//).find())
    }

    // ---- environment

    @Test
    void block_gets_the_aws_variables_and_the_previous_environment_returns() {
        BuildResult build = runner.run('''
            withEnv(['AWS_REGION=us-west-2', 'AWS_DEFAULT_REGION=us-west-2', 'AWS_ACCESS_KEY_ID=outer-value']) {
                withAwsRole(role: 'ecr-push', region: 'eu-west-1') {
                    sh 'set +x; for v in AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_SESSION_TOKEN AWS_CREDENTIAL_EXPIRATION; do eval "test -n \\"\\$$v\\"" && echo "$v set"; done'
                    echo "inside: ${env.AWS_REGION} ${env.AWS_DEFAULT_REGION}"
                }
                echo "after: ${env.AWS_ACCESS_KEY_ID} ${env.AWS_REGION} ${env.AWS_DEFAULT_REGION} ${env.AWS_SESSION_TOKEN}"
                sh 'set +x; echo "sh after: [$AWS_ACCESS_KEY_ID] [${AWS_SECRET_ACCESS_KEY:-}] [${AWS_CREDENTIAL_EXPIRATION:-}]"'
            }
        ''')
        assertSucceeded(build)
        ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN', 'AWS_CREDENTIAL_EXPIRATION'].each {
            assertLogShows(build, "${it} set")
        }
        assertLogShows(build, 'inside: eu-west-1 eu-west-1', 'after: outer-value us-west-2 us-west-2 null', 'sh after: [outer-value] [] []')
    }

    @Test
    void failure_inside_the_block_still_restores_the_environment() {
        BuildResult build = runner.run('''
            try {
                withAwsRole('ecr-push') { error 'inside' }
            } catch (e) {
                echo "caught: ${e.message}"
            }
            echo "after: ${env.AWS_ACCESS_KEY_ID}"
            sh 'set +x; echo "sh after: [${AWS_SESSION_TOKEN:-}]"'
        ''')
        assertSucceeded(build, 'caught: inside', 'after: null', 'sh after: []')
    }

    @Test
    void nested_blocks_with_different_roles_restore_the_outer_credentials() {
        BuildResult build = runner.run("""
            withAwsRole('ecr-push') {
                ${CALLER_ARN.replace('caller=', 'outer before=')}
                withAwsRole('deploy', roleArn: '${DEPLOY_ROLE_ARN}', region: 'eu-central-1') {
                    ${CALLER_ARN.replace('caller=', 'inner=')}
                    sh 'set +x; echo "inner region=\$AWS_REGION"'
                    withAwsRole('deploy', roleArn: '${READONLY_ROLE_ARN}', region: 'ap-southeast-2') {
                        ${CALLER_ARN.replace('caller=', 'innermost=')}
                        sh 'set +x; echo "innermost region=\$AWS_REGION"'
                    }
                    ${CALLER_ARN.replace('caller=', 'inner again=')}
                }
                ${CALLER_ARN.replace('caller=', 'outer after=')}
                sh 'set +x; echo "outer region=\$AWS_REGION"'
            }
        """)
        assertSucceeded(build, 'outer before=arn:aws:sts::123456789012:assumed-role/jenkins-ecr-push-role/',
                'inner=arn:aws:sts::123456789012:assumed-role/jenkins-deploy-role/',
                'innermost=arn:aws:sts::123456789012:assumed-role/jenkins-deploy-readonly-role/',
                'inner again=arn:aws:sts::123456789012:assumed-role/jenkins-deploy-role/',
                'outer after=arn:aws:sts::123456789012:assumed-role/jenkins-ecr-push-role/')
        assertTrue('a region set by an inner block stays inside it', build.log.contains('inner region=eu-central-1'))
        assertLogShows(build, 'innermost region=ap-southeast-2', "outer region=${System.getenv('AWS_REGION')}")
        assertEquals('one line per block', 3, build.log.count('withAwsRole: '))
    }

    @Test
    void parallel_branches_share_one_vault_call() {
        World.resetCounters()
        BuildResult build = runner.run('''
            def branches = [:]
            for (int i = 0; i < 32; i++) {
                def n = i
                branches["b${n}"] = {
                    withAwsRole('ecr-push') {
                        sh "set +x; printf %s \\"\\$AWS_ACCESS_KEY_ID\\" > key-${n}"
                    }
                }
            }
            parallel branches
        ''')
        assertSucceeded(build)
        assertEquals(build.log, 32, (build.log =~ /withAwsRole: ecr-push as .*\(cache (hit|miss)\)/).count)
        assertEquals(build.log, 1, build.log.count('(cache miss)'))
        Set<String> keys = (0..<32).collect { workspaceFile("key-${it}") } as Set
        assertEquals('every branch got the same credentials', 1, keys.size())
        assertEquals(build.log, 1, World.stsCalls('aws/ecr-push'))
    }

    // ---- errors: one line that says what to do, no stack trace, the block never runs

    @Test
    void vault_s_and_aws_s_refusals_fail_with_one_line_that_says_what_to_do() {
        // The world's purposes config lists roles Vault refuses and sets no max_ttl: each request
        // reaches Vault (and AWS), and their answer becomes the one ERROR line.
        controller.set('WITHAWSROLE_CONFIG', World.purposesFile().path)
        assertEachFailsWithOneLine(runner, [
                // Vault's policy denies the role.
                ["withAwsRole('forbidden') { echo 'never here' }",
                 "withAwsRole('forbidden'): Vault denied `update` on aws/sts/forbidden: ask your Vault admin"],
                // Vault has no such role.
                ["withAwsRole('no-such-role') { echo 'never here' }",
                 "withAwsRole('no-such-role'): Vault rejected the request to aws/sts/no-such-role (400): " +
                         'Role "no-such-role" not found; check that the Vault role `no-such-role` exists'],
                // AWS's refusal comes back through Vault with line breaks in it; the ERROR line has none.
                ["withAwsRole(role: 'ecr-push', ttl: '2h') { echo 'never here' }",
                 "withAwsRole('ecr-push'): the requested lifetime is too long for aws/sts/ecr-push: ", "lower ttl (e.g. ttl: '1h')"],
        ])
    }

    @Test
    void role_with_several_arns_needs_role_arn() {
        // A purpose for the deploy Vault role (two ARNs) that names no role_arn: Vault refuses.
        controllerPurposes('[purposes.deploy-unconfigured]\nvault_role = "deploy"\n')
        BuildResult build = runner.run("withAwsRole(role: 'deploy-unconfigured') { echo 'never here' }")
        assertFailedWithOneLine(build, "withAwsRole('deploy-unconfigured'): Vault rejected the request to aws/sts/deploy (400): " +
                'did not supply a role_arn parameter')
        assertLogShows(build, 'pass role_arn when it lists several ARNs')
    }

    @Test
    void ttl_above_the_purpose_s_max_ttl_is_refused_before_vault() {
        assertRefusedBeforeVault(runner, "withAwsRole(role: 'ecr-push', ttl: '2h') { echo 'never here' }",
                "withAwsRole('ecr-push'): purpose `ecr-push` does not let a pipeline ask for ttl 2h (its max_ttl is 3600 s): " +
                        "ask for less, or raise the purpose's max_ttl in org/withawsrole/purposes.toml")
    }

    @Test
    void role_arn_the_purpose_does_not_offer_is_refused_before_vault() {
        assertRefusedBeforeVault(runner, "withAwsRole(role: 'deploy', roleArn: 'arn:aws:iam::123456789012:role/jenkins-admin-role') { echo 'never here' }",
                "withAwsRole('deploy'): purpose `deploy` does not let a pipeline assume arn:aws:iam::123456789012:role/jenkins-admin-role: " +
                        "leave roleArn out, or add the ARN to the purpose's role_arns")
    }

    @Test
    void invalid_options_fail_with_one_line_that_names_them() {
        assertEachFailsWithOneLine(runner, [
                ["withAwsRole('../x') { echo 'never here' }", "withAwsRole('../x'): invalid purpose \"../x\""],
                ["withAwsRole(role: 'ecr-push', colour: 'blue') { echo 'never here' }",
                 'withAwsRole: unknown option colour; valid options: role, ttl, roleArn, region, jwtRole, hideAccountId, vaultCredentialsId, mask'],
                // Line breaks in values stay escaped on the one error line.
                ["withAwsRole(role: 'ecr\\npush') { echo 'never here' }", "withAwsRole('ecr\\npush'): invalid purpose \"ecr\\npush\""],
                ["withAwsRole(role: 'ecr-push', 'colour\\tname': 1) { echo 'never here' }", 'withAwsRole: unknown option colour\\tname; valid options: role,'],
                // An option of the wrong type is named with the valid ones.
                ["withAwsRole(role: 'ecr-push', ttl: [15]) { echo 'never here' }",
                 "withAwsRole: ttl must be a string like '30m' or a number of seconds, not an ArrayList; valid options: role, ttl,"],
                ["withAwsRole(role: 'ecr-push', mask: 'no') { echo 'never here' }", 'withAwsRole: mask must be true or false, not a String; valid options: role,'],
                ["withAwsRole(role: 'ecr-push', region: 7) { echo 'never here' }", 'withAwsRole: region must be a string, not an Integer; valid options: role,'],
                ["withAwsRole(role: 'ecr-push', ttl: 'soon') { echo 'never here' }", "withAwsRole('ecr-push'): invalid ttl \"soon\""],
        ])
    }

    @Test
    void unreachable_vault_fails_with_one_line() {
        controller.set('VAULT_ADDR', 'http://127.0.0.1:1')
        BuildResult build = runner.run("withAwsRole(role: 'ecr-push') { echo 'never here' }")
        // The core retries with backoff until its deadline, then says what it last saw.
        assertFailedWithOneLine(build, "withAwsRole('ecr-push'): gave up after ")
        assertLogShows(build, 'cannot reach Vault at http://127.0.0.1:1', 'check VAULT_ADDR')
    }

    @Test
    void calls_of_another_shape_say_how_to_call_the_step() {
        String howToCall = "withAwsRole: call it as withAwsRole('ecr-push') { ... } or withAwsRole(role: 'ecr-push', ttl: '30m') { ... }; " +
                'valid options: role,'
        assertEachFailsWithOneLine(runner, [
                ["withAwsRole { echo 'never here' }", howToCall],
                ["withAwsRole('ecr-push')", howToCall],
                ["withAwsRole(42) { echo 'never here' }", howToCall],
                ["withAwsRole(ttl: '15m') { echo 'never here' }", "withAwsRole: name a role: call it as withAwsRole('ecr-push') { ... }"],
                ["withAwsRole('ecr-push', role: 'deploy') { echo 'never here' }",
                 "withAwsRole: the role is given twice, as 'ecr-push' and as role: 'deploy'; give it once"],
        ])
    }

    @Test
    void role_may_be_an_interpolated_string() {
        BuildResult build = runner.run('''
            def team = 'ecr'
            withAwsRole("${team}-push") { echo 'inside' }
            withAwsRole(role: "${team}-push", region: "${'eu'}-west-1") { echo 'inside too' }
        ''')
        assertSucceeded(build)
        assertEquals(build.log, 2, (build.log =~ SUMMARY_LINE).count)
    }

    /** The STS session name of a block in `build`: jenkins-<job>-<build>. */
    private String sessionName(BuildResult build) {
        return "jenkins-${runner.jobName}-${build.number}"
    }
}
