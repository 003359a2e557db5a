package org.withawsrole.refresh

import org.junit.BeforeClass
import org.junit.Test
import org.withawsrole.World
import org.withawsrole.bridge.AwsRoleBroker
import org.withawsrole.replay.BuildResult
import org.withawsrole.replay.PipelineRunner

import static org.junit.Assert.*

/**
 * The core owns the list of the controller's settings (Settings_variables); a refresh: true block
 * hands the agent's awsrole CLI every one of them, set to what the controller resolved or empty,
 * so nothing the pipeline (or the agent) sets changes where the CLI goes or how it logs in. The
 * Groovy side derives the variables from the bridge's list instead of a table of its own: a
 * variable the core adds and the block does not set fails here (VAULT_K8S_TOKEN_FILE and
 * VAULT_AUTH_MOUNT were missing from the old Groovy table).
 */
class AgentSettingsPipelineTest {
    /** The agent's own CA file applies (the controller's path may not exist there). */
    static final List<String> AGENTS_OWN = ['VAULT_CACERT']
    /** Set to what the controller resolved for the block (values checked below). */
    static final List<String> RESOLVED = ['VAULT_ADDR', 'VAULT_TOKEN']

    @BeforeClass
    static void world() {
        World.require()
    }

    @Test
    void every_setting_the_core_lists_is_the_controllers_or_empty_in_a_refresh_block() {
        List<String> variables = AwsRoleBroker.shared().settingVariables()
        assertTrue(variables.toString(), variables.containsAll(['VAULT_ADDR', 'VAULT_K8S_TOKEN_FILE', 'VAULT_AUTH_MOUNT', 'WITHAWSROLE_CONFIG']))
        List<String> checked = variables - AGENTS_OWN
        // The pipeline sets every one of them around the block, as a hostile Jenkinsfile would.
        String outer = checked.collect { "'${it}=from-the-pipeline'" }.join(', ')
        String report = checked.collect { "echo \"${it}=[\${${it}:+set}]\"" }.join('; ')
        PipelineRunner runner = PipelineRunner.forThisProject()
        runner.workspace = File.createTempDir()
        runner.jobName = 'agent-settings'
        // A remote agent, whose own process lacks the controller's Vault login. (On the built-in node
        // every sh inherits the controller's environment, in Jenkins too: a block can empty a variable
        // in the computed environment, not in the agent's process; see RefreshingCredentials.REMOVED_FROM_BLOCK.)
        runner.agentEnvironment = runner.baseEnvironment.findAll { String name, String value -> !(name in variables) }
        BuildResult build = runner.run("""
            withEnv([${outer}]) {
                withAwsRole(role: 'ecr-push', refresh: true, timeout: '10m') {
                    sh '''set +x; ${report.replace('\\', '\\\\')}; echo "addr=\$VAULT_ADDR"'''
                }
            }
        """)
        assertTrue(build.log, build.success)
        List<String> wrong = checked.findAll { String variable ->
            String expected = variable in RESOLVED ? 'set' : ''
            !build.log.contains("${variable}=[${expected}]")
        }
        assertTrue("not the controller's or empty: ${wrong}\n${build.log}".toString(), wrong.isEmpty())
        assertTrue(build.log, build.log.contains("addr=${System.getenv('VAULT_ADDR')}"))
    }
}
