package org.withawsrole.security

import org.junit.AfterClass
import org.junit.Before
import org.junit.BeforeClass
import org.junit.Test
import org.junit.runner.RunWith
import org.junit.runners.Parameterized
import org.withawsrole.PipelineTestBase
import org.withawsrole.World
import org.withawsrole.replay.BuildResult

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertFailedWithOneLine
import static org.withawsrole.BuildAssertions.assertSucceeded

/**
 * The trust boundary (docs/security.md), tested as an attacker would: Jenkinsfiles written by
 * someone who can push a branch try to move, borrow or widen the controller's Vault identity.
 *
 * The controller is logged in to the world's Vault from its own environment (a token, or AppRole
 * in the `approle` cases); a recording listener stands where the attacker wants the login to go.
 * Every case passes only when: no request reaches the listener, neither the controller's token
 * nor its secret_id appears in the log or in any file of the workspace, the build ends as
 * documented (credentials from the controller's Vault, or one clear error line), and every
 * session name names the real job and build.
 */
@RunWith(Parameterized)
class HostileJenkinsfileTest extends PipelineTestBase {
    static final String JOB = 'team-a/app/main'
    static final String SESSION_PREFIX = 'jenkins-team-a-app-main-'
    static RecordingListener listener

    /** name, Jenkinsfile (LISTENER stands for the listener's URL), expected outcome. */
    @Parameterized.Parameters(name = '{0}')
    static Collection<Object[]> cases() {
        List<Object[]> all = []
        Closure ok = { String name, String jenkinsfile -> all << ([name, jenkinsfile, null, false] as Object[]) }
        Closure refused = { String name, String jenkinsfile, String error -> all << ([name, jenkinsfile, error, false] as Object[]) }
        Closure okAsAppRole = { String name, String jenkinsfile -> all << ([name, jenkinsfile, null, true] as Object[]) }
        String block = "withAwsRole('ecr-push') { sh 'set +x; echo \"caller=\$(aws sts get-caller-identity --query Arn --output text)\"' }"

        // ---- Vault's address, TLS and namespace: ignored wherever the pipeline sets them
        ok('withEnv VAULT_ADDR', "withEnv(['VAULT_ADDR=LISTENER']) { ${block} }")
        okAsAppRole('withEnv VAULT_ADDR with the controller on AppRole', "withEnv(['VAULT_ADDR=LISTENER']) { ${block} }")
        ok('env.VAULT_ADDR =', "env.VAULT_ADDR = 'LISTENER'\n${block}")
        okAsAppRole('env.VAULT_ADDR = with the controller on AppRole', "env.VAULT_ADDR = 'LISTENER'\n${block}")
        ok('Declarative environment VAULT_ADDR', declarative("VAULT_ADDR = 'LISTENER'", block))
        ok('withEnv VAULT_SKIP_VERIFY and VAULT_CACERT', "withEnv(['VAULT_SKIP_VERIFY=true', 'VAULT_CACERT=/tmp/attacker-ca.pem']) { ${block} }")
        ok('withEnv VAULT_NAMESPACE', "withEnv(['VAULT_NAMESPACE=team-a']) { ${block} }")
        ok('Declarative environment VAULT_NAMESPACE', declarative("VAULT_NAMESPACE = 'team-a'", block))
        // ---- the controller's login: a pipeline cannot swap or complete it
        ok('withEnv VAULT_TOKEN', "withEnv(['VAULT_TOKEN=hvs.attacker-chosen']) { ${block} }")
        okAsAppRole('withEnv VAULT_ROLE_ID and VAULT_SECRET_ID', "withEnv(['VAULT_ROLE_ID=attacker', 'VAULT_SECRET_ID=attacker']) { ${block} }")
        ok('withEnv VAULT_JWT and VAULT_JWT_ROLE', "withEnv(['VAULT_JWT=eyJhbGciOiJub25lIn0.e30.', 'VAULT_JWT_ROLE=jenkins']) { ${block} }")
        ok('env VAULT_K8S_ROLE and VAULT_AUTH_MOUNT', "env.VAULT_K8S_ROLE = 'jenkins'\nenv.VAULT_AUTH_MOUNT = 'userpass'\n${block}")
        ok('withEnv VAULT_TOKEN_FILE naming a workspace file', "writeFile file: 'token', text: 'hvs.attacker'\nwithEnv([\"VAULT_TOKEN_FILE=\${pwd()}/token\"]) { ${block} }")
        refused('jwtRole without a credential of its own', "withAwsRole(role: 'ecr-push', jwtRole: 'jenkins') { echo 'never here' }",
                "withAwsRole: jwtRole names the Vault JWT role")
        // ---- the reviewed purposes config: a pipeline cannot swap it or step outside it
        refused('WITHAWSROLE_CONFIG listing a forbidden purpose', "writeFile file: 'evil.toml', text: '[purposes.forbidden]\\n'\n" +
                "withEnv([\"WITHAWSROLE_CONFIG=\${pwd()}/evil.toml\"]) { withAwsRole('forbidden') { echo 'never here' } }",
                "withAwsRole('forbidden'): purpose `forbidden` is not in the purposes config")
        refused('configFile option', "writeFile file: 'evil.toml', text: '[purposes.forbidden]\\n'\n" +
                "withAwsRole(role: 'forbidden', configFile: \"\${pwd()}/evil.toml\") { echo 'never here' }",
                'withAwsRole: configFile is not a pipeline\'s choice')
        refused('a purpose the config does not list', "withAwsRole('forbidden') { echo 'never here' }",
                "withAwsRole('forbidden'): purpose `forbidden` is not in the purposes config")
        refused('vaultRole option pointing at another role', "withAwsRole(role: 'ecr-push', vaultRole: 'forbidden') { echo 'never here' }",
                'withAwsRole: vaultRole is not a pipeline\'s choice')
        refused('mount option', "withAwsRole(role: 'ecr-push', mount: 'team-b/aws') { echo 'never here' }",
                'withAwsRole: mount is not a pipeline\'s choice')
        refused('namespace option', "withAwsRole(role: 'ecr-push', namespace: 'team-a') { echo 'never here' }",
                'withAwsRole: namespace is not a pipeline\'s choice')
        refused('roleArn the purpose does not offer', "withAwsRole(role: 'deploy', roleArn: 'arn:aws:iam::123456789012:role/jenkins-admin-role') { echo 'never here' }",
                "withAwsRole('deploy'): purpose `deploy` does not let a pipeline assume arn:aws:iam::123456789012:role/jenkins-admin-role")
        refused('ttl above the purpose\'s max_ttl', "withAwsRole(role: 'ecr-push', ttl: '12h') { echo 'never here' }",
                "withAwsRole('ecr-push'): purpose `ecr-push` does not let a pipeline ask for ttl 12h")
        ok('WITHAWSROLE_TOKEN_ROLE and WITHAWSROLE_DEADLINE_SECONDS', "withEnv(['WITHAWSROLE_TOKEN_ROLE=attacker', 'WITHAWSROLE_DEADLINE_SECONDS=1']) { ${block} }")
        // ---- the job's identity: session names always name the real job and build
        ok('withEnv JOB_NAME and BUILD_NUMBER', "withEnv(['JOB_NAME=team-b/payments/main', 'BUILD_NUMBER=999']) { ${block} }")
        ok('env.JOB_NAME =', "env.JOB_NAME = 'team-b/payments/main'\nenv.BUILD_NUMBER = '999'\n${block}")
        ok('Declarative environment JOB_NAME', declarative("JOB_NAME = 'team-b/payments/main'\nBUILD_NUMBER = '999'", block))
        refused('sessionName forging another job', "withAwsRole(role: 'ecr-push', sessionName: 'jenkins-team-b-payments-main-1') { echo 'never here' }",
                'withAwsRole: sessionName is not a pipeline\'s choice')
        // ---- AWS variables: the block's own, replaced by the step's credentials
        ok('withEnv AWS keys and endpoint', "withEnv(['AWS_ACCESS_KEY_ID=AKIAATTACKER', 'AWS_SECRET_ACCESS_KEY=x', 'AWS_SESSION_TOKEN=y']) { ${block} }")
        // ---- other names for the keys (accessKeyVariable, ...): names only, never a way to swap or inject
        refused('accessKeyVariable naming the secret key\'s variable',
                "withAwsRole(role: 'ecr-push', accessKeyVariable: 'AWS_SECRET_ACCESS_KEY') { echo 'never here' }",
                'withAwsRole: accessKeyVariable cannot be AWS_SECRET_ACCESS_KEY: the block sets that variable to something else')
        refused('a key variable name that writes another variable',
                "withAwsRole(role: 'ecr-push', secretKeyVariable: 'X=1\\nVAULT_ADDR') { echo 'never here' }",
                'withAwsRole: secretKeyVariable must name an environment variable')
        refused('two keys under one name', "withAwsRole(role: 'ecr-push', accessKeyVariable: 'K', secretKeyVariable: 'K') { echo 'never here' }",
                'withAwsRole: secretKeyVariable and accessKeyVariable both name K')
        ok('a key under a controller setting\'s name', "withAwsRole(role: 'ecr-push', accessKeyVariable: 'VAULT_ADDR', " +
                "sessionTokenVariable: 'VAULT_TOKEN') { sh 'set +x; echo \"caller=\$(aws sts get-caller-identity --query Arn --output text)\"' }")
        // ---- the same inside parallel branches and nested blocks
        ok('parallel branches, one hostile', "parallel hostile: { withEnv(['VAULT_ADDR=LISTENER', 'JOB_NAME=team-b/x']) { ${block} } }, " +
                "plain: { ${block} }")
        ok('nested blocks with a hostile env between them', "withAwsRole('deploy') { withEnv(['VAULT_ADDR=LISTENER', 'VAULT_TOKEN=hvs.x']) { ${block} } }")
        okAsAppRole('refresh: true block with a hostile env', "withEnv(['VAULT_ADDR=LISTENER', 'WITHAWSROLE_TOKEN_ROLE=attacker']) { " +
                "withAwsRole(role: 'ecr-push', refresh: true, timeout: '10m') { sh 'set +x; echo \"caller=\$(aws sts get-caller-identity --query Arn --output text)\"; echo \"agent vault=\$VAULT_ADDR\"' } }")
        // ---- the library's API with a script object the Jenkinsfile made up
        ok('AwsRole.withRole with an impostor script object', '''
            class Impostor implements Serializable { // or Jenkins fails to save the program that holds it
                def real
                Map env = [VAULT_ADDR: 'LISTENER', VAULT_TOKEN: 'hvs.x', JOB_NAME: 'team-b/payments/main', BUILD_NUMBER: '999']
                def methodMissing(String name, Object args) { real.invokeMethod(name, args) }
            }
            org.withawsrole.AwsRole.withRole(new Impostor(real: this), [role: 'ecr-push']) {
                sh 'set +x; echo "caller=$(aws sts get-caller-identity --query Arn --output text)"'
            }
        ''')
        // ---- the library's classes called directly (Jenkins lets a sandboxed Jenkinsfile call any
        // method of a trusted library's classes): the bridge fills identity and config itself
        String direct = 'String digest = org.withawsrole.NativeBridge.libraryDigest()\n'
        refused('NativeBridge.credentials with a config of its own', direct + '''
            try {
                org.withawsrole.NativeBridge.credentials(digest, [purpose: 'forbidden', config_text: '[purposes.forbidden]\\n'])
                echo 'never here'
            } catch (e) { error("refused: ${e.message}") }''', "refused: request key 'config_text' is filled by the bridge itself")
        refused('NativeBridge.credentials naming another job', direct + '''
            try {
                org.withawsrole.NativeBridge.credentials(digest, [purpose: 'ecr-push', job: 'team-b/payments/main', build: '1'])
                echo 'never here'
            } catch (e) { error("refused: ${e.message}") }''', "refused: request key 'job' is filled by the bridge itself")
        refused('BridgeGateway.attempt for an unlisted purpose', direct + '''
            Map outcome = org.withawsrole.BridgeGateway.attempt(digest, 'credentialsWithin', [purpose: 'forbidden'])
            error("refused: ${outcome.failure}")''', 'refused: purpose `forbidden` is not in the purposes config')
        refused('NativeBridge.install of a jar of its own', '''
            String jar = 'UEsFBgAAAAAAAAAAAAAAAAAAAAAAAA=='
            String sha = java.security.MessageDigest.getInstance('SHA-256').digest(jar.decodeBase64()).encodeHex().toString()
            try {
                org.withawsrole.NativeBridge.install(sha, jar)
                echo 'never here'
            } catch (e) { error("refused: ${e.message}") }''', 'refused: withAwsRole: this library installs only its own bridge jar')
        return all
    }

    /** The block inside a Declarative Pipeline whose environment {} holds `environment`. */
    static String declarative(String environment, String block) {
        return """
            pipeline {
                agent any
                environment {
                    ${environment}
                }
                stages {
                    stage('hostile') {
                        steps {
                            ${block}
                        }
                    }
                }
            }
        """
    }

    @Parameterized.Parameter(0)
    public String name
    @Parameterized.Parameter(1)
    public String jenkinsfile
    /** The start of the one ERROR line, or null when the block must get the controller's credentials. */
    @Parameterized.Parameter(2)
    public String expectedError
    /** Log the controller in with AppRole (its secret_id is what the attacker wants) instead of its token. */
    @Parameterized.Parameter(3)
    public boolean appRole

    @BeforeClass
    static void startListener() {
        listener = new RecordingListener()
    }

    @AfterClass
    static void stopListener() {
        listener?.close()
    }

    @Before
    void asTheAttackersJob() {
        runner.jobName = JOB
        listener.requests.clear()
        if (appRole) {
            controller.set('VAULT_TOKEN', null)
        }
    }

    @Test
    void the_controllers_vault_identity_stays_with_the_controller() {
        int vaultCallsBefore = World.stsCalls('aws/forbidden')
        BuildResult build = runner.run(jenkinsfile.replace('LISTENER', listener.url))

        assertEquals("requests reached the attacker's listener: ${listener.requests}\n${build.log}".toString(), 0, listener.requests.size())
        assertNoControllerSecretIn(build)
        if (expectedError == null) {
            assertSucceeded(build)
            List<String> sessions = (build.log =~ /assumed-role\/[^\/\s]+\/([^,\s]+)/).collect { it[1] }
            assertFalse(build.log, sessions.isEmpty())
            sessions.each { String session ->
                assertEquals("every session names the real job and build:\n${build.log}".toString(), "${SESSION_PREFIX}${build.number}".toString(), session)
            }
        } else {
            assertFailedWithOneLine(build, expectedError)
        }
        assertEquals('a refused purpose never reaches Vault', vaultCallsBefore, World.stsCalls('aws/forbidden'))
    }

    private void assertNoControllerSecretIn(BuildResult build) {
        List<String> secrets = [System.getenv('VAULT_TOKEN'), System.getenv('VAULT_SECRET_ID')].findAll { it }
        secrets.each { String secret ->
            assertFalse("a controller secret is in the log:\n${build.log}".toString(), build.log.contains(secret))
        }
        workspace.root.eachFileRecurse { File file ->
            if (file.isFile()) {
                String text = file.getText('ISO-8859-1')
                secrets.each { String secret ->
                    assertFalse("a controller secret is in ${file}".toString(), text.contains(secret))
                }
            }
        }
    }
}
