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
        // in the computed environment, not in the agent's process; the next test shows what awsrole sees then.)
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

    /**
     * Jenkins starts sh from the agent JVM's own environment with the block's on top, and an empty
     * withEnv value cannot take out what the agent's process has. An agent whose own process holds
     * settings of the core (here ones that would skip TLS checks, send the CLI to another namespace,
     * swap the purposes file, log in with AppRole or break the deadline) still runs the block, and
     * the CLI's calls reach the world exactly as the controller resolved them: the block's profile
     * starts awsrole with those variables taken out (before, the block refused the namespace and the
     * purposes file, and the deadline made every refresh fail).
     */
    @Test
    void an_agent_s_own_vault_settings_do_not_reach_the_cli() {
        File workspace = File.createTempDir()
        File hostileConfig = new File(workspace, 'agent-purposes.toml')
        hostileConfig.text = '[purposes.ecr-push]\nvault_role = "deploy"\nrole_arn = "arn:aws:iam::123456789012:role/jenkins-deploy-role"\n'
        Map<String, String> agentOwn = [VAULT_SKIP_VERIFY           : 'true',
                                        VAULT_NAMESPACE             : 'agent-namespace',
                                        WITHAWSROLE_TOKEN_ROLE      : 'agent-token-role',
                                        WITHAWSROLE_CONFIG          : hostileConfig.absolutePath,
                                        VAULT_ROLE_ID               : 'agent-role-id',
                                        VAULT_SECRET_ID             : 'agent-secret-id',
                                        WITHAWSROLE_DEADLINE_SECONDS: 'not-seconds']
        List<String> variables = AwsRoleBroker.shared().settingVariables()
        assertTrue(variables.toString(), variables.containsAll(agentOwn.keySet()))
        PipelineRunner runner = PipelineRunner.forThisProject()
        runner.workspace = workspace
        runner.jobName = 'agent-own-settings'
        runner.agentEnvironment = runner.baseEnvironment.findAll { String name, String value -> !(name in variables) } + agentOwn
        int before = World.stsCalls('aws/ecr-push')
        BuildResult build = runner.run("""
            withAwsRole(role: 'ecr-push', refresh: true, timeout: '10m') {
                sh 'set +x; echo "agent namespace [\${VAULT_NAMESPACE:-}]"; aws sts get-caller-identity --query Arn --output text'
            }
        """)
        assertTrue(build.log, build.success)
        // The block's own processes still see the agent's variables: Jenkins gives no way to remove them.
        assertTrue(build.log, build.log.contains('agent namespace [agent-namespace]'))
        // The CLI went to the controller's Vault, root namespace, with the block's token, for ecr-push.
        assertTrue(build.log, (build.log =~ /(?m)^arn:aws:sts::\d+:assumed-role\/jenkins-ecr-push-role\//).find())
        assertEquals(build.log, 1, World.stsCalls('aws/ecr-push') - before)
        assertFalse(build.log, build.log.contains('agent-secret-id'))
    }
}
