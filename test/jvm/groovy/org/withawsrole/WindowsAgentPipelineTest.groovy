package org.withawsrole

import org.junit.Before
import org.junit.Test
import org.withawsrole.replay.BuildResult

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertEnded
import static org.withawsrole.BuildAssertions.assertLogLacks
import static org.withawsrole.BuildAssertions.assertSucceeded

/**
 * On a Windows agent (the runner's emulated one: isUnix() false, bat and powershell), the plain
 * step hands bat and powershell the same credentials as sh: they are the block's environment.
 */
class WindowsAgentPipelineTest extends PipelineTestBase {
    @Before
    void onAWindowsAgent() {
        runner.jobName = 'windows-agent'
        runner.windowsAgent = true
    }

    @Test
    void bat_and_powershell_get_the_block_s_credentials() {
        BuildResult build = runner.run('''
            node('windows') {
                withAwsRole('ecr-push') {
                    def fromSh = sh(script: 'echo "$AWS_ACCESS_KEY_ID $AWS_SESSION_TOKEN $AWS_REGION"', returnStdout: true).trim()
                    def fromBat = bat(script: '@echo off\\necho %AWS_ACCESS_KEY_ID% %AWS_SESSION_TOKEN% %AWS_REGION%', returnStdout: true).trim()
                    def fromPowershell = powershell(script: 'Write-Output "$env:AWS_ACCESS_KEY_ID $env:AWS_SESSION_TOKEN $env:AWS_REGION"',
                            returnStdout: true).trim()
                    echo "unix: ${isUnix()}, same in bat: ${fromBat == fromSh}, same in powershell: ${fromPowershell == fromSh}, " +
                            "set: ${fromSh.length() > 20}"
                    bat 'aws sts get-caller-identity --query Arn --output text'
                }
                echo "after: ${bat(script: '@echo off\\necho [%AWS_ACCESS_KEY_ID%]', returnStdout: true).trim()}"
            }
        ''')
        assertSucceeded(build, 'unix: false, same in bat: true, same in powershell: true, set: true',
                'arn:aws:sts::123456789012:assumed-role/jenkins-ecr-push-role/jenkins-windows-agent-')
        assertTrue('the credentials end with the block', build.log.contains('after: []'))
    }

    @Test
    void ecr_login_says_before_anything_that_it_needs_sh() {
        World.resetCounters()
        BuildResult build = runner.run("""
            node('windows') {
                ecrLogin(registry: '123456789012.dkr.ecr.eu-west-1.amazonaws.com', role: 'ecr-push')
            }
        """)
        assertEnded(build, 'FAILURE')
        List<String> errors = build.log.readLines().findAll { it.startsWith('ERROR: ') }
        assertEquals(build.log, ["ERROR: ecrLogin: logs Docker in with sh, which this Windows agent does not run; on Windows, log in " +
                "inside a plain block: withAwsRole('ecr-push') { powershell \"aws ecr get-login-password --region eu-west-1 | " +
                'docker login --username AWS --password-stdin 123456789012.dkr.ecr.eu-west-1.amazonaws.com" }'], errors)
        assertEquals('nothing was asked of Vault', 0, World.counters().sts_total)
    }

    @Test
    void refresh_says_before_anything_that_it_needs_a_linux_agent() {
        long before = World.requestsSeen()
        BuildResult build = runner.run("""
            node('windows') {
                withAwsRole(role: 'ecr-push', refresh: true) { echo 'never here' }
            }
        """)
        assertEnded(build, 'FAILURE')
        assertLogLacks(build, 'never here')
        assertTrue(build.log, build.log.contains('ERROR: withAwsRole: refresh: true hands AWS tools the awsrole CLI, which runs on ' +
                "Linux agents only; on this Windows agent use a plain block whose ttl covers the work, e.g. withAwsRole(role: 'deploy', ttl: '1h')"))
        assertEquals('no token was created: nothing reached Vault', before, World.requestsSeen())
    }
}
