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
    void only_refresh_true_takes_this_path() {
        assertTrue(refreshing.requested([role: 'deploy', refresh: true]))
        assertFalse(refreshing.requested([role: 'deploy', refresh: false]))
        assertFalse(refreshing.requested([role: 'deploy']))
        assertFalse(refreshing.requested(null))
    }

    @Test
    void the_timeout_goes_to_the_core_as_given() {
        // The core parses it (units, limits): nothing here knows them (issue 13).
        assertEquals('4h', refreshing.timeoutOf([refresh: true]))
        assertEquals('6d23h59m', refreshing.timeoutOf([timeout: ' 6d23h59m ']))
        assertEquals('600', refreshing.timeoutOf([timeout: 600]))
    }

    @Test
    void problems_are_one_sentence_each() {
        assertNull(refreshing.problemWith([role: 'deploy', refresh: true, timeout: '2h', ttl: 900, mask: false]))
        assertTrue(refreshing.modeProblem([role: 'deploy', refresh: 'yes']).contains('refresh must be true or false'))
        assertTrue(refreshing.problemWith([role: 'deploy', refresh: true, timeout: ['5s']]).contains('timeout must be'))
        assertTrue(refreshing.modeProblem([role: 'deploy', refresh: false, timeout: '1h']).contains('option of refresh: true'))
        assertNull(refreshing.modeProblem([role: 'deploy', timeout: '1h']))
        String unknown = refreshing.problemWith([role: 'deploy', refresh: true, tiemout: '1h'])
        assertTrue(unknown, unknown.contains('unknown option tiemout') && unknown.contains('refresh, timeout'))
        assertTrue(refreshing.problemWith([refresh: true]).contains('name a role'))
    }

    @Test
    void the_aws_config_runs_awsrole_with_the_resolved_request() {
        String config = refreshing.awsConfig([refreshing.profileOf(CHILD, 'withawsrole', null)], '/ws/app@tmp/withawsrole-1',
                ['VAULT_NAMESPACE', 'WITHAWSROLE_CONFIG'])
        assertTrue(config, config.contains('[profile withawsrole]\n'))
        assertTrue(config, config.contains('credential_process = /usr/bin/env -u VAULT_NAMESPACE -u WITHAWSROLE_CONFIG ' +
                '"/ws/app@tmp/withawsrole-1/awsrole" credential-process "deploy" ' +
                '--mount "aws" --vault-role "deploy" --session-name "jenkins-app-7" ' +
                '--role-arn "arn:aws:iam::123456789012:role/deploy" --ttl "900" ' +
                '--cache-file "/ws/app@tmp/withawsrole-1/cache-deploy.json"\n'))
        assertTrue(config, config.contains('region = eu-west-1\n'))
        assertFalse('no token in the file', config.contains('s.CHILD'))
    }

    @Test
    void the_block_gets_the_profile_and_the_token_but_no_keys() {
        List<String> environment = refreshing.environmentOf(CHILD, '/ws/t', 'withawsrole') +
                refreshing.agentSettingsOf(['VAULT_ADDR', 'VAULT_TOKEN', 'VAULT_CACERT', 'VAULT_AUTH_MOUNT', 'WITHAWSROLE_CONFIG'], CHILD)
        assertTrue(environment.contains('AWS_CONFIG_FILE=/ws/t/config'))
        assertTrue(environment.contains('AWS_PROFILE=withawsrole'))
        assertTrue(environment.contains('VAULT_TOKEN=s.CHILD'))
        assertTrue(environment.contains('VAULT_ADDR=https://vault.example.com:8200'))
        assertTrue(environment.contains('VAULT_AUTH_MOUNT='))
        assertTrue(environment.contains('WITHAWSROLE_CONFIG='))
        assertFalse('the agent keeps its own CA file', environment.any { it.startsWith('VAULT_CACERT') })
        assertTrue(environment.contains('AWS_ACCESS_KEY_ID='))
        assertTrue(environment.contains('PATH+WITHAWSROLE=/ws/t'))
        assertTrue(environment.contains('AWS_REGION=eu-west-1'))
    }

    @Test
    void awsrole_starts_without_the_settings_the_block_leaves_empty() {
        List<String> takenOut = refreshing.cliSettingsTakenOut(['VAULT_ADDR', 'VAULT_TOKEN', 'VAULT_CACERT', 'VAULT_NAMESPACE',
                                                                'VAULT_SKIP_VERIFY', 'WITHAWSROLE_TOKEN_ROLE'], CHILD)
        // VAULT_ADDR and VAULT_TOKEN are the block's (they win over the agent's); VAULT_CACERT is the agent's own.
        assertEquals(['VAULT_NAMESPACE', 'VAULT_SKIP_VERIFY', 'WITHAWSROLE_TOKEN_ROLE'], takenOut)
        String config = refreshing.awsConfig([refreshing.profileOf(CHILD, 'withawsrole', null)], '/ws/t', [])
        assertTrue('nothing to take out: awsrole itself', config.contains('credential_process = "/ws/t/awsrole" credential-process'))
    }

    @Test
    void platforms_and_unsafe_paths() {
        assertEquals('linux-x86_64', refreshing.platformOf('Linux x86_64\n'))
        assertEquals('linux-aarch64', refreshing.platformOf('Linux arm64'))
        Class profiles = refreshing.classLoader.loadClass('org.withawsrole.RoleProfiles')
        assertNull(profiles.pathProblem('/var/jenkins/workspace/my job@tmp/withawsrole-1'))
        ['/ws/a"b', '/ws/$HOME', '/ws/`x`', '/ws/a\\b', "/ws/it's"].each { String bad ->
            assertNotNull(bad, profiles.pathProblem(bad))
        }
    }
}
