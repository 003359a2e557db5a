package org.withawsrole.refresh

import org.junit.BeforeClass
import org.junit.Test
import org.withawsrole.PipelineTestBase
import org.withawsrole.World
import org.withawsrole.replay.BuildResult

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertFailedWithOneLine
import static org.withawsrole.BuildAssertions.assertLogShows
import static org.withawsrole.BuildAssertions.assertRefusedBeforeVault

/**
 * refresh: true end to end against the world: the controller's child token, awsrole from the
 * library's resources on the "agent", the aws CLI fetching credentials through credential_process,
 * and revocation after the block, through the step as a Jenkinsfile calls it.
 */
class RefreshingCredentialsPipelineTest extends PipelineTestBase {
    static final String ENTRY = 'withAwsRole'

    @BeforeClass
    static void requireTheCli() {
        String cli = 'resources/org/withawsrole/cli/linux-x86_64/awsrole'
        assertTrue("build the CLI into ${cli} first (cargo build --release -p awsrole, make native)".toString(),
                new File(System.getProperty('withawsrole.library.dir', '.'), cli).isFile())
    }

    static int issued(String role) {
        return ((Map) World.counters().sts_issued_by_role)?.get("aws/${role}".toString()) as Integer ?: 0
    }

    /** lookup-self with `token`: the HTTP status (200 alive, 403 gone). */
    static int lookupSelf(String token) {
        HttpURLConnection connection = (HttpURLConnection) new URL("${System.getenv('VAULT_ADDR')}/v1/auth/token/lookup-self").openConnection()
        connection.setRequestProperty('X-Vault-Token', token)
        return connection.responseCode
    }

    @Test
    void every_aws_call_gets_credentials_through_awsrole_and_the_token_dies_with_the_block() {
        int before = issued('ecr-push')
        BuildResult build = runner.run("""
            node {
                ${ENTRY}([role: 'ecr-push', refresh: true, timeout: '10m', ttl: 900]) {
                    sh 'set +x; for i in 1 2 3; do aws sts get-caller-identity --query Arn --output text; done'
                    sh 'set +x; printf %s "\$VAULT_TOKEN" > block-token; printf %s "\$AWS_CONFIG_FILE" > block-config; echo "keys:[\${AWS_ACCESS_KEY_ID:-}]"'
                    sh 'set +x; awsrole --version'
                    // Careless on purpose: the trace shows the expanded token, masked.
                    sh 'printf "%s" "\$VAULT_TOKEN" > /dev/null'
                }
            }
        """)
        assertTrue(build.log, build.success)
        // The session name is the build's (jenkins-<job>-<build>, shortened with a hash when long).
        assertEquals(build.log, 3, (build.log =~ /(?m)^arn:aws:sts::\d+:assumed-role\/jenkins-ecr-push-role\/jenkins-every-aws-call\S+$/).count)
        // Three aws processes, each running awsrole (botocore, with 15-minute credentials, even
        // twice): one Vault call, the rest answered from the block's cache file.
        assertEquals('three aws processes, one Vault call', before + 1, issued('ecr-push'))
        assertTrue(build.log, build.log.contains('keys:[]'))
        assertTrue(build.log, build.log.contains('awsrole 0.'))
        assertTrue(build.log, build.log.contains('withAwsRole: ecr-push refreshing through awsrole credential-process with a Vault token for aws/sts/ecr-push only'))
        assertTrue(build.log, build.log.contains("withAwsRole: ecr-push: the block's Vault token is revoked"))

        String token = workspaceFile('block-token')
        assertTrue('the block saw a token', token.length() > 10)
        assertFalse('token in the log', build.log.contains(token))
        assertTrue(build.log, build.log.contains("+ printf %s ********"))
        assertEquals('revoked after the block', 403, lookupSelf(token))
        assertFalse('the private directory is gone', new File(workspaceFile('block-config')).parentFile.exists())
    }

    @Test
    void botocore_in_the_block_refreshes_from_the_block_s_cache() {
        String script = '''
import boto3
sts = boto3.Session().client("sts")
for _ in range(3):
    sts.get_caller_identity()
frozen = boto3.Session().get_credentials().get_frozen_credentials()
print("python ok", frozen.access_key[:4])
'''
        new File(workspace.root, 'calls.py').text = script
        int before = issued('ecr-push')
        BuildResult build = runner.run("""
            ${ENTRY}([role: 'ecr-push', refresh: true, timeout: '10m', ttl: '15m']) {
                sh 'set +x; "\$WORLD_VENV/bin/python" calls.py'
            }
        """)
        assertTrue(build.log, build.success)
        assertTrue(build.log, build.log.contains('python ok ASIA'))
        // botocore refreshes within 15 minutes of expiry, so with 15-minute credentials on every call;
        // each refresh runs awsrole, which answers from the cache while 11 minutes are left
        // (new credentials after that: rust/cli/src/block_cache.rs, with an injected clock).
        assertEquals('one AssumeRole for every refresh of the block', before + 1, issued('ecr-push'))
    }

    @Test
    void a_token_role_on_the_controller_gives_the_block_an_orphan_token() {
        // An AppRole login (1 h tokens, renewed by logging in again): the case token roles are for.
        controller.set('VAULT_TOKEN', null)
        controller.set('WITHAWSROLE_TOKEN_ROLE', 'withawsrole')
        new File(workspace.root, 'lookup.py').text = '''
import json, os, urllib.request
request = urllib.request.Request(os.environ["VAULT_ADDR"] + "/v1/auth/token/lookup-self",
                                 headers={"X-Vault-Token": os.environ["VAULT_TOKEN"]})
data = json.load(urllib.request.urlopen(request))["data"]
print("orphan=%s renewable=%s policies=%s" % (data["orphan"], data["renewable"], ",".join(data["policies"])))
'''
        BuildResult build = runner.run("""
            ${ENTRY}([role: 'ecr-push', refresh: true, timeout: '10m']) {
                sh 'set +x; "\$WORLD_VENV/bin/python" lookup.py; aws sts get-caller-identity --query Arn --output text'
            }
        """)
        assertTrue(build.log, build.success)
        assertTrue(build.log, build.log.contains('orphan=True renewable=False policies=default,withawsrole-sts-ecr-push'))
        assertTrue(build.log, build.log.contains('assumed-role/jenkins-ecr-push-role/'))
        assertTrue(build.log, build.log.contains("the block's Vault token is revoked"))
    }

    @Test
    void a_failing_block_still_revokes_its_token_and_deletes_its_cached_credentials() {
        BuildResult build = runner.run("""
            ${ENTRY}([role: 'ecr-push', refresh: true, timeout: '10m']) {
                sh 'set +x; aws sts get-caller-identity > /dev/null; printf %s "\$VAULT_TOKEN" > block-token; printf %s "\$AWS_CONFIG_FILE" > block-config; exit 3'
            }
        """)
        assertEquals(build.log, 'FAILURE', build.result)
        assertTrue(build.log, build.log.contains("the block's Vault token is revoked"))
        assertEquals(403, lookupSelf(workspaceFile('block-token')))
        File directory = new File(workspaceFile('block-config')).parentFile
        assertFalse("the private directory with the cache file is gone: ${directory}", directory.exists())
    }

    @Test
    void an_aborted_block_deletes_its_cached_credentials() {
        BuildResult build = runner.run("""
            timeout(time: 20, unit: 'SECONDS') {
                ${ENTRY}([role: 'ecr-push', refresh: true, timeout: '10m']) {
                    sh 'set +x; aws sts get-caller-identity > /dev/null; printf %s "\$AWS_CONFIG_FILE" > block-config; ls "\$(dirname "\$AWS_CONFIG_FILE")"; sleep 60'
                }
            }
        """)
        assertEquals(build.log, 'ABORTED', build.result)
        assertTrue(build.log, build.log.contains('cache-ecr-push.json'))
        File directory = new File(workspaceFile('block-config')).parentFile
        assertFalse("the private directory with the cache file is gone: ${directory}", directory.exists())
    }

    @Test
    void a_role_jenkins_cannot_hand_out_fails_before_the_block() {
        // Vault's own refusal: the world's purposes config lists forbidden, its policy denies it.
        controller.set('WITHAWSROLE_CONFIG', World.purposesFile().path)
        BuildResult build = runner.run("${ENTRY}([role: 'forbidden', refresh: true]) { echo 'never here' }")
        assertFailedWithOneLine(build, "withAwsRole('forbidden'): Vault rejected the request to auth/token/create")
        assertLogShows(build, 'withawsrole-sts-forbidden')
    }

    @Test
    void a_purpose_the_purposes_config_does_not_list_gets_no_child_token() {
        // No token is created: nothing reaches Vault.
        assertRefusedBeforeVault(runner, "${ENTRY}([role: 'forbidden', refresh: true]) { echo 'never here' }",
                "withAwsRole('forbidden'): purpose `forbidden` is not in the purposes config")
    }

    @Test
    void refresh_false_is_the_plain_step() {
        BuildResult build = runner.run("""
            ${ENTRY}([role: 'ecr-push', refresh: false]) {
                sh 'set +x; test -n "\$AWS_ACCESS_KEY_ID" && test -z "\${AWS_PROFILE:-}" && echo plain'
            }
        """)
        assertTrue(build.log, build.success)
        assertTrue(build.log, build.log.contains('plain'))
    }

    @Test
    void bad_options_fail_with_one_line() {
        BuildResult build = runner.run("${ENTRY}([role: 'ecr-push', refresh: true, timeout: '10s']) { echo 'never here' }")
        assertEquals(build.log, 'FAILURE', build.result)
        // The core owns the timeout's units and limits (it is the block's Vault token's token_ttl).
        assertTrue(build.log, build.log.contains('withAwsRole(\'ecr-push\'): invalid token_ttl "10s"'))
        assertTrue(build.log, build.log.contains('from 1m to 7d'))
        assertFalse(build.log, build.log.contains('never here'))
    }
}
