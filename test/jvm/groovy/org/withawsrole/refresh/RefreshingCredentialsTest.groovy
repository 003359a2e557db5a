package org.withawsrole.refresh

import org.junit.BeforeClass
import org.junit.Test
import org.withawsrole.replay.LocalLibrary

import static org.junit.Assert.*

/** The @NonCPS helpers of RefreshingCredentials, loaded from src/ as a build compiles them. */
class RefreshingCredentialsTest {
    static Class refreshing

    static final Map<String, String> CHILD = [
            token       : 's.CHILD',
            purpose     : 'deploy',
            mount       : 'aws',
            vault_role  : 'deploy',
            session_name: 'jenkins-app-7',
            role_arn    : 'arn:aws:iam::123456789012:role/deploy',
            ttl         : '900',
            region      : 'eu-west-1',
            vault_addr  : 'https://vault.example.com:8200',
            sts_path    : 'aws/sts/deploy',
            policies    : 'default,withawsrole-sts-deploy',
            expiration  : '2030-01-01T00:00:00Z',
    ].asImmutable()

    @BeforeClass
    static void compile() {
        LocalLibrary library = LocalLibrary.compile(new File(System.getProperty('withawsrole.library.dir', '.')))
        refreshing = library.classLoader.loadClass('org.withawsrole.RefreshingCredentials')
    }

    @Test
    void only_options_that_mention_refresh_take_this_path() {
        assertTrue(refreshing.requested([role: 'deploy', refresh: true]))
        assertTrue(refreshing.requested([role: 'deploy', refresh: false]))
        assertFalse(refreshing.requested([role: 'deploy']))
        assertFalse(refreshing.requested(null))
    }

    @Test
    void timeout_takes_units_or_seconds_between_a_minute_and_a_week() {
        assertEquals(4 * 3600L, refreshing.timeoutSecondsOf([refresh: true]))
        assertEquals(5400L, refreshing.timeoutSecondsOf([timeout: '90m']))
        assertEquals(5400L, refreshing.timeoutSecondsOf([timeout: '1h30m']))
        assertEquals(86400L, refreshing.timeoutSecondsOf([timeout: '1d']))
        assertEquals(600L, refreshing.timeoutSecondsOf([timeout: 600]))
        assertEquals(600L, refreshing.timeoutSecondsOf([timeout: '600']))
        ['30s', '8d', '1m1h', 'soon', '', 59].each { Object bad ->
            assertNull("${bad}", refreshing.timeoutSecondsOrNull(bad))
        }
    }

    @Test
    void problems_are_one_sentence_each() {
        assertNull(refreshing.problemWith([role: 'deploy', refresh: true, timeout: '2h', ttl: 900, mask: false]))
        assertTrue(refreshing.problemWith([role: 'deploy', refresh: 'yes']).contains('refresh must be true or false'))
        assertTrue(refreshing.problemWith([role: 'deploy', refresh: true, timeout: '5s']).contains('timeout must be'))
        assertTrue(refreshing.problemWith([role: 'deploy', refresh: false, timeout: '1h']).contains('option of refresh: true'))
        String unknown = refreshing.problemWith([role: 'deploy', refresh: true, tiemout: '1h'])
        assertTrue(unknown, unknown.contains('unknown option tiemout') && unknown.contains('refresh, timeout'))
        assertTrue(refreshing.problemWith([refresh: true]).contains('name a role'))
    }

    @Test
    void the_token_request_is_the_steps_request_with_a_lifetime_past_the_timeout() {
        Map<String, String> request = refreshing.tokenRequest([role: 'deploy', ttl: 900], 3600L)
        assertEquals([purpose: 'deploy', ttl: '900', token_ttl: '3900'], request)
    }

    @Test
    void the_token_request_carries_nothing_the_bridge_or_the_controller_decides() {
        // The bridge adds the running build and the library's purposes config itself (and refuses
        // requests that bring them); Vault's address, the controller's login and the token role
        // are the controller's settings. None of them is in a request library code could shape.
        Map<String, String> request = refreshing.tokenRequest([role: 'deploy', ttl: 900, region: 'eu-west-1'], 3600L)
        assertFalse(request.toString(), request.keySet().any {
            it in ['job', 'build', 'config_text', 'config_name', 'config_file', 'token_role'] || it.startsWith('vault_')
        })
    }

    @Test
    void the_aws_config_runs_awsrole_with_the_resolved_request() {
        String config = refreshing.awsConfig([CHILD], '/ws/app@tmp/withawsrole-1/awsrole', false)
        assertTrue(config, config.contains('[profile withawsrole]\n'))
        assertTrue(config, config.contains('credential_process = "/ws/app@tmp/withawsrole-1/awsrole" credential-process "deploy" ' +
                '--mount "aws" --vault-role "deploy" --session-name "jenkins-app-7" ' +
                '--role-arn "arn:aws:iam::123456789012:role/deploy" --ttl "900" ' +
                '--cache-file "/ws/app@tmp/withawsrole-1/cache-deploy.json"\n'))
        assertTrue(config, config.contains('region = eu-west-1\n'))
        assertFalse('no token in the file', config.contains('s.CHILD'))
    }

    @Test
    void the_block_gets_the_profile_and_the_token_but_no_keys() {
        List<String> environment = refreshing.environmentOf(CHILD, '/ws/t', 'withawsrole')
        assertTrue(environment.contains('AWS_CONFIG_FILE=/ws/t/config'))
        assertTrue(environment.contains('AWS_PROFILE=withawsrole'))
        assertTrue(environment.contains('VAULT_TOKEN=s.CHILD'))
        assertTrue(environment.contains('VAULT_ADDR=https://vault.example.com:8200'))
        assertTrue(environment.contains('AWS_ACCESS_KEY_ID='))
        assertTrue(environment.contains('PATH+WITHAWSROLE=/ws/t'))
        assertTrue(environment.contains('AWS_REGION=eu-west-1'))
    }

    @Test
    void platforms_and_unsafe_paths() {
        assertEquals('linux-x86_64', refreshing.platformOf('Linux x86_64\n'))
        assertEquals('linux-aarch64', refreshing.platformOf('Linux arm64'))
        assertNull(refreshing.pathProblem('/var/jenkins/workspace/my job@tmp/withawsrole-1'))
        ['/ws/a"b', '/ws/$HOME', '/ws/`x`', '/ws/a\\b', "/ws/it's"].each { String bad ->
            assertNotNull(bad, refreshing.pathProblem(bad))
        }
    }

    @Test
    void revocation_sends_the_child_token_only() {
        Map<String, String> request = refreshing.revocationRequest(CHILD + [vault_namespace: 'team-a'])
        assertEquals([token: 's.CHILD'], request)
    }
}
