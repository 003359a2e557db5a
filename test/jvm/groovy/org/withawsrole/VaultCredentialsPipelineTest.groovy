package org.withawsrole

import org.junit.Before
import org.junit.Test
import org.withawsrole.replay.BuildResult

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertFailedWithOneLine
import static org.withawsrole.BuildAssertions.assertLogLacks
import static org.withawsrole.BuildAssertions.assertLogShows
import static org.withawsrole.BuildAssertions.assertRefusedBeforeVault
import static org.withawsrole.BuildAssertions.assertSucceeded

/**
 * vaultCredentialsId: a job logs in to Vault with a Jenkins credential of its own (AppRole as
 * username/password, a Vault token as secret text, or an OIDC id token) instead of the controller's
 * identity. The controller's token is made useless here, so only the credential can succeed.
 */
class VaultCredentialsPipelineTest extends PipelineTestBase {
    static final String ECR_PUSH_ARN = 'arn:aws:sts::123456789012:assumed-role/jenkins-ecr-push-role/'

    /** Prints the caller and whether the block sees anything of the Vault login. */
    static final String BODY = '''
        sh 'set +x; echo "caller=$(aws sts get-caller-identity --query Arn --output text)"'
        sh 'set +x; echo "vault login in the block: [${WITHAWSROLE_VAULT_ROLE_ID:-}${WITHAWSROLE_VAULT_SECRET_ID:-}${WITHAWSROLE_VAULT_SECRET_TEXT:-}]"'
    '''

    @Before
    void controllerLoginRefused() {
        // The controller's own login is useless here: success can only come from the credential.
        controller.set('VAULT_TOKEN', 'controller-token-that-vault-refuses')
        controller.set('VAULT_ROLE_ID', null)
        controller.set('VAULT_SECRET_ID', null)
    }

    @Test
    void without_a_credential_the_controller_login_is_used() {
        // The control for the tests below: the controller's (broken) token is what Vault sees.
        BuildResult build = runner.run("withAwsRole('ecr-push') { echo 'never here' }")
        assertFailedWithOneLine(build, "withAwsRole('ecr-push'): ")
        assertLogShows(build, 'VAULT_TOKEN')
    }

    @Test
    void username_password_credential_is_an_approle_login() {
        addWorldAppRole('vault-approle')
        World.resetCounters()
        BuildResult build = runner.run("""
            withAwsRole(role: 'ecr-push', vaultCredentialsId: 'vault-approle') {
                ${BODY}
            }
        """)
        assertSucceeded(build, "caller=${ECR_PUSH_ARN}", 'vault login in the block: []')
        // At most one: the core keeps the AppRole's Vault token for later blocks of this JVM.
        assertTrue(build.log, World.proxiedCalls('auth/approle/login') <= 1)
        assertLogLacks(build, System.getenv('VAULT_SECRET_ID'))
    }

    @Test
    void refused_approle_names_the_credential() {
        runner.credentials.usernamePassword('vault-approle-stale', System.getenv('VAULT_ROLE_ID'), 'a-secret-id-vault-never-issued')
        BuildResult build = runner.run("withAwsRole(role: 'ecr-push', vaultCredentialsId: 'vault-approle-stale') { echo 'never here' }")
        assertFailedWithOneLine(build, "withAwsRole('ecr-push'): Vault refused the AppRole login at auth/approle/login: ")
        assertTrue(build.log, build.log.contains("(the Vault login used the Jenkins credential 'vault-approle-stale' as an AppRole: " +
                'username = role_id, password = secret_id)'))
        assertLogLacks(build, 'a-secret-id-vault-never-issued')
    }

    @Test
    void secret_text_credential_is_a_vault_token() {
        runner.credentials.secretText('vault-token', System.getenv('VAULT_TOKEN'))
        BuildResult build = runner.run("""
            withAwsRole(role: 'ecr-push', vaultCredentialsId: 'vault-token') {
                ${BODY}
            }
        """)
        assertSucceeded(build, "caller=${ECR_PUSH_ARN}", 'vault login in the block: []')
        assertLogLacks(build, System.getenv('VAULT_TOKEN'))
        assertBoundOnce(build)
    }

    @Test
    void refused_token_names_the_credential() {
        runner.credentials.secretText('vault-token-revoked', 'hvs.revoked-token-value')
        BuildResult build = runner.run("withAwsRole(role: 'ecr-push', vaultCredentialsId: 'vault-token-revoked') { echo 'never here' }")
        // Vault refuses the token itself; the core's words for it may change, the note may not.
        assertFailedWithOneLine(build, "withAwsRole('ecr-push'): ")
        assertLogShows(build, "(the Vault login used the Jenkins credential 'vault-token-revoked' as a Vault token)")
        assertLogLacks(build, 'revoked-token-value')
    }

    @Test
    void id_token_credential_is_a_jwt_login_with_jwt_role() {
        List<String> minted = Collections.synchronizedList([])
        runner.credentials.idToken('vault-oidc') {
            String jwt = World.mintJwt(['--sub', 'https://jenkins.example.com/job/app/'])
            minted << jwt
            jwt
        }
        World.resetCounters()
        BuildResult build = runner.run("""
            withAwsRole(role: 'ecr-push', vaultCredentialsId: 'vault-oidc', jwtRole: '${System.getenv('WORLD_JWT_ROLE')}') {
                ${BODY}
            }
        """)
        assertSucceeded(build, "caller=${ECR_PUSH_ARN}", 'vault login in the block: []')
        assertEquals(build.log, 1, World.proxiedCalls('auth/jwt/login'))
        assertEquals('a fresh id token per binding, as the OIDC plugin does', 1, minted.size())
        assertLogLacks(build, minted[0])
        assertBoundOnce(build)
    }

    @Test
    void id_token_credential_does_not_take_its_jwt_role_from_the_build_s_env() {
        // VAULT_JWT_ROLE in the job's environment used to complete the login: a pipeline sets
        // its env at will, so the JWT role now goes with the credential, as jwtRole.
        runner.credentials.idToken('vault-oidc') { World.mintJwt() }
        runner.baseEnvironment.VAULT_JWT_ROLE = System.getenv('WORLD_JWT_ROLE')
        assertRefusedBeforeVault(runner, """
            withEnv(['VAULT_JWT_ROLE=${System.getenv('WORLD_JWT_ROLE')}']) {
                withAwsRole(role: 'ecr-push', vaultCredentialsId: 'vault-oidc') { echo 'never here' }
            }
        """, "withAwsRole('ecr-push'): the Jenkins credential in vaultCredentialsId holds an id token (a JWT): " +
                "name the Vault JWT role that accepts it with jwtRole: '<role>'")
    }

    @Test
    void id_token_without_a_jwt_role_says_how_to_name_one() {
        runner.credentials.idToken('vault-oidc') { World.mintJwt() }
        BuildResult build = assertRefusedBeforeVault(runner,
                "withAwsRole(role: 'ecr-push', vaultCredentialsId: 'vault-oidc') { echo 'never here' }",
                "withAwsRole('ecr-push'): the Jenkins credential in vaultCredentialsId holds an id token " +
                        "(a JWT): name the Vault JWT role that accepts it with jwtRole: '<role>'")
        assertFalse('the only way is jwtRole', build.log.contains('VAULT_JWT_ROLE'))
    }

    @Test
    void jwt_role_without_a_credential_of_the_job_s_own_is_refused() {
        // The controller's login is its setting: a pipeline cannot complete or change it.
        assertRefusedBeforeVault(runner, "withAwsRole(role: 'ecr-push', jwtRole: 'jenkins') { echo 'never here' }",
                'withAwsRole: jwtRole names the Vault JWT role for the id token in vaultCredentialsId; give both, or neither')
    }

    @Test
    void refused_id_token_names_the_credential() {
        runner.credentials.idToken('vault-oidc-other-audience') { World.mintJwt(['--aud', 'someone-else']) }
        BuildResult build = runner.run("""
            withAwsRole(role: 'ecr-push', vaultCredentialsId: 'vault-oidc-other-audience', jwtRole: 'jenkins') { echo 'never here' }
        """)
        assertFailedWithOneLine(build, "withAwsRole('ecr-push'): Vault refused the JWT login at auth/jwt/login: ")
        assertTrue(build.log, build.log.contains("(the Vault login used the Jenkins credential 'vault-oidc-other-audience' " +
                "as an id token for the Vault JWT role 'jenkins')"))
    }

    @Test
    void unknown_credential_id_says_what_to_create() {
        BuildResult build = runner.run("withAwsRole(role: 'ecr-push', vaultCredentialsId: 'no-such-credential') { echo 'never here' }")
        assertFailedWithOneLine(build, "withAwsRole('ecr-push'): vaultCredentialsId 'no-such-credential' names no credential " +
                "this job can use for a Vault login (as username/password: Could not find credentials entry with ID " +
                "'no-such-credential'; as secret text: Could not find credentials entry with ID 'no-such-credential'); " +
                "create it as 'Username with password' (AppRole role_id/secret_id), 'Secret text' (Vault token) or " +
                "'OpenID Connect id token'")
    }

    @Test
    void approle_credential_is_bound_once() {
        addWorldAppRole('vault-approle')
        BuildResult build = runner.run("withAwsRole(role: 'ecr-push', vaultCredentialsId: 'vault-approle') { echo 'inside' }")
        assertSucceeded(build)
        assertBoundOnce(build)
    }

    /**
     * Jenkins says which kind a credential is (CredentialsProvider), so it is bound once, as that
     * kind: a binding of the wrong kind would fail and show as a failed (red) step in every build.
     */
    private static void assertBoundOnce(BuildResult build) {
        assertEquals(build.log, 1, build.log.readLines().count { it.trim() == '[Pipeline] withCredentials' })
        assertLogLacks(build, 'where \'com.cloudbees.plugins.credentials.common.')
    }

    @Test
    void parallel_branches_with_one_credential_share_one_vault_call() {
        addWorldAppRole('vault-approle')
        World.resetCounters()
        BuildResult build = runner.run('''
            def branches = [:]
            for (int i = 0; i < 8; i++) {
                branches["b${i}"] = { withAwsRole(role: 'ecr-push', vaultCredentialsId: 'vault-approle') { echo 'inside' } }
            }
            parallel branches
        ''')
        assertSucceeded(build)
        assertEquals(build.log, 8, build.log.count('withAwsRole: ecr-push as '))
        assertEquals(build.log, 1, World.stsCalls('aws/ecr-push'))
        assertTrue(build.log, World.proxiedCalls('auth/approle/login') <= 1)
    }

    /** A username/password credential `id` that holds the world's AppRole (role_id, secret_id). */
    private void addWorldAppRole(String id) {
        runner.credentials.usernamePassword(id, System.getenv('VAULT_ROLE_ID'), System.getenv('VAULT_SECRET_ID'))
    }
}
