package org.withawsrole.security

import org.junit.Before
import org.junit.Test
import org.withawsrole.PipelineTestBase
import org.withawsrole.World
import org.withawsrole.replay.BuildResult
import org.withawsrole.replay.OidcProvider

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertEnded
import static org.withawsrole.BuildAssertions.assertFailedWithOneLine
import static org.withawsrole.BuildAssertions.assertLogLacks

/**
 * A controller that holds no Vault secret of its own: every block logs in to Vault with the
 * running build's OpenID Connect id token (WITHAWSROLE_JOB_ID_TOKEN, WITHAWSROLE_JOB_JWT_ROLE),
 * so Vault's bound claims decide which job gets what. The world's JWT role jenkins-team-a-builds
 * admits the builds of folder team-a only; the Jenkinsfile asks for nothing special.
 */
class PerBuildVaultIdentityTest extends PipelineTestBase {
    static final String BLOCK = "withAwsRole('ecr-push') { sh 'set +x; echo \"caller=\$(aws sts get-caller-identity --query Arn --output text)\"' }"

    @Before
    void controllerLogsInAsEachBuild() {
        OidcProvider jenkins = new OidcProvider('https://jenkins.world.test/', new File(System.getenv('WORLD_JWT_KEY_FILE')))
        runner.credentials.buildIdToken('vault-build-id-token', 'withawsrole', jenkins)
        // No shared secret on the controller: neither its token nor its AppRole.
        ['VAULT_TOKEN', 'VAULT_ROLE_ID', 'VAULT_SECRET_ID'].each { controller.set(it, null) }
        controller.set('WITHAWSROLE_JOB_ID_TOKEN', 'vault-build-id-token')
        controller.set('WITHAWSROLE_JOB_JWT_ROLE', 'jenkins-team-a-builds')
    }

    @Test
    void a_job_the_bound_claims_admit_gets_credentials_as_itself() {
        runner.jobName = 'team-a/app/main'
        int logins = World.proxiedCalls('auth/jwt/login')
        BuildResult build = runner.run(BLOCK)
        assertEnded(build, 'SUCCESS', "assumed-role/jenkins-ecr-push-role/jenkins-team-a-app-main-${build.number},".toString())
        assertTrue('the block logged in with its build\'s id token', World.proxiedCalls('auth/jwt/login') > logins)
        // Known to be an id token: bound as secret text at once, no failed username/password binding.
        assertLogLacks(build, 'is of type')
        assertEquals(build.log, 1, build.log.count('[Pipeline] withCredentials'))
    }

    @Test
    void a_job_outside_the_bound_claims_is_refused_by_vault_whatever_its_env_says() {
        runner.jobName = 'team-b/app/main'
        int calls = World.stsCalls('aws/ecr-push')
        BuildResult build = runner.run("withEnv(['JOB_NAME=team-a/app/main', 'JOB_URL=https://jenkins.world.test/job/team-a/job/app/']) { ${BLOCK} }")
        assertFailedWithOneLine(build, "withAwsRole('ecr-push'): Vault refused the JWT login")
        assertEquals('no STS call for a refused job', calls, World.stsCalls('aws/ecr-push'))
    }

    @Test
    void the_controllers_own_login_is_never_the_fallback() {
        // Even with a token on the controller, a build login that cannot be made is a failure,
        // not a silent use of the controller's identity.
        controller.set('VAULT_TOKEN', System.getenv('VAULT_TOKEN'))
        runner.jobName = 'team-b/app/main'
        BuildResult build = runner.run(BLOCK)
        assertFailedWithOneLine(build, "withAwsRole('ecr-push'): Vault refused the JWT login")
    }
}
