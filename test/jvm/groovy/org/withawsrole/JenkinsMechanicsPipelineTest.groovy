package org.withawsrole

import org.junit.Test
import org.withawsrole.refresh.RefreshingCredentialsPipelineTest
import org.withawsrole.replay.BuildResult
import org.withawsrole.replay.SecretsScan

import static org.junit.Assert.*

/**
 * What only a real Jenkins would show (issue #16), as the runner now models it:
 * - where a block's secrets sit on the controller's disk: the program state saved at every step
 *   while the build runs (program.dat, deleted when it ends) and the step records kept with the
 *   build for good (the flow nodes' arguments), both written by the runner's ProgramState; these
 *   tests pin what docs/security.md states;
 * - the agent's own process environment, which a process started by sh begins from (Jenkins'
 *   Launcher.inherit): a variable withEnv takes out of the computed environment (an empty value)
 *   comes back when the agent's process has it;
 * - a controller restart inside a block (PipelineRunner.restartBefore, ProgramState.restart): the
 *   build resumes from its saved program without the JVM-wide bridge an earlier step installed
 *   (docs/refresh.md, "After a controller restart").
 */
class JenkinsMechanicsPipelineTest extends PipelineTestBase {
    static final List<String> KEYS = ['AWS_ACCESS_KEY_ID', 'AWS_SECRET_ACCESS_KEY', 'AWS_SESSION_TOKEN'].asImmutable()
    static final Closure<Boolean> BEFORE_THE_MARKED_SH = { String step, Map arguments ->
        step == 'sh' && String.valueOf(arguments.script).contains('after restart')
    }

    /** Saves the block's values of variables to files named like them, printing nothing. */
    static String save(List<String> variables) {
        return "sh 'set +x; " + variables.collect { "printf %s \"\$${it}\" > saved.${it}" }.join('; ') + "'"
    }

    Map<String, String> saved(List<String> variables) {
        return variables.collectEntries { [(it): new File(workspace.root, "saved.${it}").getText('UTF-8')] }
    }

    /** The variables whose values the scan found in each place. */
    static Map<String, List<String>> where(SecretsScan scan, Map<String, String> values) {
        Map<String, String> names = values.collectEntries { name, value -> [(value): name] }
        return [log        : scan.log.collect { names[it] }, stepRecords: scan.stepRecords.collect { names[it] },
                savedState: scan.savedState.collect { names[it] }, files: scan.files.keySet().collect { new File(it).name }]
    }

    @Test
    void a_plain_block_s_keys_are_saved_while_it_runs_and_none_stays_in_the_step_records() {
        BuildResult build = runner.run("withAwsRole('ecr-push') { ${save(KEYS)} }")
        assertTrue(build.log, build.success)
        Map<String, String> values = saved(KEYS)
        Map<String, List<String>> found = where(build.secretsFound(values.values()), values)
        assertEquals([], found.log)
        // While the block runs: the withEnv and wrap steps' arguments and the closures that pass them.
        assertEquals(KEYS, found.savedState)
        // For good: nothing. The wrap and withEnv arguments that carry the keys are over Jenkins' limit (StepRecords).
        assertEquals(found.toString(), [], found.stepRecords)
        assertTrue(build.stepRecords.join('\n'), build.stepRecords.any { it.startsWith('withEnv [overrides:OVERSIZE_VALUE]') })
        assertTrue(build.stepRecords.join('\n'), build.stepRecords.any {
            it.contains('varPasswordPairs:[OVERSIZE_VALUE, OVERSIZE_VALUE, OVERSIZE_VALUE') })
    }

    @Test
    void secrets_shorter_than_a_real_session_token_stay_out_of_the_step_records_too() {
        // Whether Jenkins keeps an argument depends on its length: short secrets must not slip under the limit.
        String steps = '''
            withEnv(%s(['SHORT_KEY=short-secret-1'])) { echo 'in withEnv' }
            wrap([$class: 'MaskPasswordsBuildWrapper', varPasswordPairs: %s([[var: 'SHORT', password: 'short-secret-2']])]) { echo 'in wrap' }
        '''
        BuildResult shaped = runner.run('import org.withawsrole.StepRecords\n' +
                String.format(steps, 'StepRecords.unstoredEnvironment', 'StepRecords.unstoredPairs'))
        assertTrue(shaped.log, shaped.success)
        assertEquals(shaped.stepRecords.join('\n'), [], shaped.secretsFound(['short-secret-1', 'short-secret-2']).stepRecords)
        // The same steps as a Jenkinsfile would write them: Jenkins keeps both.
        BuildResult plain = runner.run(String.format(steps, '', ''))
        assertTrue(plain.log, plain.success)
        assertEquals(['short-secret-1', 'short-secret-2'], plain.secretsFound(['short-secret-1', 'short-secret-2']).stepRecords)
    }

    @Test
    void a_refresh_block_s_token_is_saved_while_it_runs_and_does_not_stay_in_the_step_records() {
        BuildResult build = runner.run("""
            node {
                withAwsRole(role: 'ecr-push', refresh: true, timeout: '10m') { ${save(['VAULT_TOKEN'])} }
            }
        """)
        assertTrue(build.log, build.success)
        Map<String, String> values = saved(['VAULT_TOKEN'])
        Map<String, List<String>> found = where(build.secretsFound(values.values()), values)
        assertEquals([], found.log)
        assertEquals(['VAULT_TOKEN'], found.savedState)
        assertEquals([], found.stepRecords)
        assertTrue(build.log, build.log.contains("the block's Vault token is revoked"))
    }

    @Test
    void an_empty_withEnv_value_takes_a_variable_out_of_env_but_not_out_of_the_agent_s_processes() {
        runner.agentEnvironment = new LinkedHashMap<String, String>(runner.baseEnvironment)
        runner.agentEnvironment.AGENT_ONLY = 'from-the-agent'
        runner.baseEnvironment.BOTH = 'from-the-controller'
        BuildResult build = runner.run('''
            withEnv(['AGENT_ONLY=', 'BOTH=']) {
                echo "env: [${env.AGENT_ONLY}] [${env.BOTH}]"
                sh 'echo "process: [${AGENT_ONLY:-}] [${BOTH:-}]"'
            }
        ''')
        assertTrue(build.log, build.success)
        assertTrue(build.log, build.log.contains('env: [null] [null]'))
        assertTrue(build.log, build.log.contains('process: [from-the-agent] []'))
    }

    /**
     * The variables the aws CLI and the Java and Go SDKs read ahead of a profile named by AWS_PROFILE:
     * the key variables and EKS' web identity token file (IRSA). The core's own settings on the agent
     * do not stop a block (AgentSettingsPipelineTest): awsrole starts without them.
     */
    @Test
    void an_agent_with_aws_keys_or_a_web_identity_of_its_own_cannot_run_a_refresh_block() {
        File token = workspace.newFile('agent-web-identity-token')
        token.text = 'not-a-real-jwt'
        runner.agentEnvironment = new LinkedHashMap<String, String>(runner.baseEnvironment)
        runner.agentEnvironment.putAll([AWS_ACCESS_KEY_ID          : 'AKIAAGENTOWNKEY00000', AWS_SECRET_ACCESS_KEY: 'agent-own-secret',
                                        AWS_WEB_IDENTITY_TOKEN_FILE: token.absolutePath,
                                        AWS_ROLE_ARN               : 'arn:aws:iam::123456789012:role/agent-own-role',
                                        VAULT_NAMESPACE            : 'agent-namespace'])
        BuildResult build = runner.run('''
            node {
                withAwsRole(role: 'ecr-push', refresh: true, timeout: '10m') {
                    sh 'set +x; aws sts get-caller-identity --query Arn --output text'
                }
            }
        ''')
        // No withEnv can take them out of the block's processes: the block refuses to run, saying which
        // and what to do, and never runs as the agent's keys (before, its aws call used them).
        BuildAssertions.assertFailedWithOneLine(build, "withAwsRole('ecr-push'): this agent's own environment sets " +
                'AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_WEB_IDENTITY_TOKEN_FILE, which Jenkins cannot take out')
        assertFalse(build.log, build.log.contains('get-caller-identity'))
        assertFalse('no value of the agent\'s shown', build.log.contains('agent-own-secret') || build.log.contains('AKIAAGENTOWNKEY'))
        // The block's token was created before the check, and is revoked all the same.
        assertTrue(build.log, build.log.contains("withAwsRole: ecr-push: the block's Vault token is revoked"))
    }

    @Test
    void a_refresh_block_interrupted_by_a_restart_still_revokes_its_token() {
        runner.restartBefore = BEFORE_THE_MARKED_SH
        BuildResult build = runner.run('''
            node {
                withAwsRole(role: 'ecr-push', refresh: true, timeout: '10m') {
                    sh 'set +x; printf %s "$VAULT_TOKEN" > block-token'
                    sh 'set +x; echo after restart; aws sts get-caller-identity --query Arn --output text'
                }
            }
        ''')
        assertTrue(build.log, build.success)
        assertTrue(build.log, build.log.contains('Resuming build after Jenkins restart'))
        assertTrue(build.log, build.log.contains('the JVM-wide bridge is gone (1 registry entries)'))
        assertTrue(build.log, (build.log =~ /(?m)^arn:aws:sts::\d+:assumed-role\/jenkins-ecr-push-role\//).find())
        // The finally ran in the "new JVM": it installed the bridge again and revoked the token in Vault.
        assertTrue(build.log, build.log.contains("withAwsRole: ecr-push: the block's Vault token is revoked"))
        String token = workspaceFile('block-token')
        assertTrue('the block saw a token', token.length() > 10)
        assertEquals('the token is gone from Vault', 403, RefreshingCredentialsPipelineTest.lookupSelf(token))
    }

    @Test
    void a_plain_block_resumed_after_a_restart_keeps_its_saved_keys_and_fetches_none() {
        runner.restartBefore = BEFORE_THE_MARKED_SH
        BuildResult build = runner.run('''
            withAwsRole('ecr-push') {
                sh 'set +x; printf %s "$AWS_ACCESS_KEY_ID" > before-restart'
                sh 'set +x; echo after restart; printf %s "$AWS_ACCESS_KEY_ID" > after-restart'
            }
        ''')
        assertTrue(build.log, build.success)
        assertTrue(build.log, build.log.contains('Resuming build after Jenkins restart'))
        // The block's environment is part of its saved state: the same keys, no new fetch (past their
        // expiry AWS would answer ExpiredToken; docs/refresh.md).
        assertEquals(workspaceFile('before-restart'), workspaceFile('after-restart'))
        assertEquals(build.log, 1, (build.log =~ /withAwsRole: ecr-push as /).count)
    }
}
