package org.withawsrole.bridge

import org.junit.Test
import org.withawsrole.World
import org.withawsrole.WorldTestBase
import org.withawsrole.bridge.internal.Native
import org.withawsrole.bridge.internal.NativeLoader

import static org.junit.Assert.*

/**
 * The bridge jar (native library inside) against the real world, through JNI. A request carries
 * the step's choices only: the bridge adds the running build (World.asBuild) and the library's
 * purposes config packed into the jar, and the controller's settings come from its environment
 * and -Dwithawsrole.* properties (the ControllerSettings rule).
 */
class AwsRoleBrokerTest extends WorldTestBase {
    @Test
    void ecr_push_credentials_come_from_the_assumed_role() {
        Map<String, String> credentials = World.asBuild('broker-test', 1) {
            AwsRoleBroker.shared().credentials([purpose: 'ecr-push'])
        }
        assertTrue(credentials.arn, credentials.arn.endsWith('assumed-role/jenkins-ecr-push-role/jenkins-broker-test-1'))
        for (String key : ['access_key_id', 'secret_access_key', 'session_token', 'expiration', 'expires_at_epoch_seconds',
                           'session_name', 'lease_duration_seconds', 'cache']) {
            assertTrue("result has ${key}: ${credentials.keySet()}", credentials[key] as boolean)
        }
        assertTrue(credentials.expiration, credentials.expiration ==~ /\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z/)
        assertTrue(credentials.cache in ['hit', 'miss'])
        assertTrue('the library was extracted from the jar', NativeLoader.loadedFrom().contains('withawsrole-native-'))
    }

    @Test
    void second_request_is_a_cache_hit() {
        AwsRoleBroker broker = AwsRoleBroker.shared()
        Map<String, String> first = ecrPushAsBuild('broker-test-cache', 1)
        Map<String, String> second = ecrPushAsBuild('broker-test-cache', 1)
        assertEquals('hit', second.cache)
        assertEquals(first.access_key_id, second.access_key_id)
        assertTrue(broker.stats().keySet().containsAll(['vault_calls', 'vault_logins', 'cache_hits', 'cache_misses', 'retries']))
        assertTrue(broker.stats().cache_hits.toLong() >= 1)
    }

    @Test
    void another_build_of_the_same_job_is_another_cache_entry() {
        Map<String, String> first = ecrPushAsBuild('broker-test-builds', 1)
        Map<String, String> second = ecrPushAsBuild('broker-test-builds', 2)
        assertEquals('miss', second.cache)
        assertTrue(second.arn, second.arn.endsWith('/jenkins-broker-test-builds-2'))
        assertNotEquals(first.access_key_id, second.access_key_id)
    }

    @Test
    void forbidden_role_is_permission_denied() {
        // Vault's own refusal: a controller whose purposes config lists a role its policy denies.
        controller.set('WITHAWSROLE_CONFIG', World.purposesFile().path)
        PermissionDeniedException e = thrownBy(PermissionDeniedException) { AwsRoleBroker.shared().credentials([purpose: 'forbidden']) }
        assertTrue(e instanceof AwsRoleException)
        assertTrue('Vault refused, not the config: ' + e.message, e.message.contains('aws/sts/forbidden'))
        assertNoSecretIn(e.message)
    }

    @Test
    void purpose_the_purposes_config_does_not_list_is_permission_denied_before_vault() {
        long before = World.requestsSeen()
        PermissionDeniedException e = thrownBy(PermissionDeniedException) { AwsRoleBroker.shared().credentials([purpose: 'forbidden']) }
        assertTrue(e.message, e.message.contains('purpose `forbidden` is not in the purposes config org/withawsrole/purposes.toml'))
        assertEquals('nothing reached the world', before, World.requestsSeen())
    }

    @Test
    void what_the_bridge_fills_itself_is_refused_in_a_request() {
        // The running build and the reviewed purposes config: a Jenkinsfile that calls the bridge
        // through the library's classes must not pick the job a purpose admits, or its own config.
        [job: 'team-a/app/main', build: '7', config_text: '[purposes.forbidden]\n', config_name: 'evil.toml'].each { String key, String value ->
            [credentials: { AwsRoleBroker.shared().credentials([purpose: 'forbidden', (key): value]) },
             'child token': { AwsRoleBroker.shared().createChildToken([purpose: 'forbidden', (key): value]) }].each { String call, Closure request ->
                InvalidRequestException e = thrownBy(InvalidRequestException, "${key} (${call})", request)
                assertTrue(e.message, e.message.contains("'${key}' is filled by the bridge itself"))
            }
        }
    }

    @Test
    void controller_settings_in_a_request_are_invalid() {
        // Vault's address, TLS, the purposes file and the controller's login are the controller's;
        // a request that carries one is refused, whatever its value.
        long before = World.requestsSeen()
        [vault_addr: 'http://127.0.0.1:1', vault_namespace: 'team-a', vault_skip_verify: 'true',
         config_file: '/tmp/evil.toml'].each { String key, String value ->
            InvalidRequestException e = thrownBy(InvalidRequestException, "${key}") { AwsRoleBroker.shared().credentials([purpose: 'ecr-push', (key): value]) }
            assertTrue(e.message, e.message.contains("`${key}`") && e.message.contains('controller'))
        }
        assertEquals('nothing reached the world', before, World.requestsSeen())
    }

    @Test
    void mount_vault_role_and_session_name_are_the_purposes_config_s() {
        long before = World.requestsSeen()
        [mount: 'aws', vault_role: 'forbidden', session_name: 'jenkins-other-job-1'].each { String key, String value ->
            InvalidRequestException e = thrownBy(InvalidRequestException, "${key}") { AwsRoleBroker.shared().credentials([purpose: 'ecr-push', (key): value]) }
            assertTrue(e.message, e.message.startsWith('purpose `ecr-push` does not let a pipeline '))
        }
        assertEquals('nothing reached the world', before, World.requestsSeen())
    }

    @Test
    void purpose_that_escapes_its_path_is_an_invalid_request() {
        InvalidRequestException e = thrownBy(InvalidRequestException) { AwsRoleBroker.shared().credentials([purpose: '../x']) }
        assertTrue(e.message, e.message.contains('purpose'))
    }

    @Test
    void unknown_request_key_is_an_invalid_request() {
        InvalidRequestException e = thrownBy(InvalidRequestException) { AwsRoleBroker.shared().credentials([purpose: 'ecr-push', colour: 'blue']) }
        assertTrue(e.message, e.message.contains('colour'))
    }

    @Test
    void non_ascii_request_text_reaches_rust_intact() {
        // Packed as modified UTF-8: a supplementary character travels as a surrogate pair.
        InvalidRequestException e = thrownBy(InvalidRequestException) { AwsRoleBroker.shared().credentials([purpose: 'ecr-push', 'c\u00f6lour\uD83D\uDE80': 'blue']) }
        assertTrue(e.message, e.message.contains('c\u00f6lour\uD83D\uDE80'))
    }

    @Test
    void nul_in_a_request_value_is_refused_before_the_native_call() {
        AwsRoleBroker broker = AwsRoleBroker.shared()
        String callsBefore = broker.stats().cache_hits + '/' + broker.stats().cache_misses
        InvalidRequestException e = thrownBy(InvalidRequestException) { broker.credentials([purpose: 'ecr-push', region: 'eu-west-1\u0000b']) }
        assertTrue(e.message, e.message.contains("'region'") && e.message.contains('NUL'))
        assertEquals('the native broker was not asked', callsBefore, broker.stats().cache_hits + '/' + broker.stats().cache_misses)
    }

    @Test
    void unreachable_vault_is_vault_unavailable() {
        AwsRoleBroker.shared().clearCache()
        controller.set('VAULT_ADDR', 'http://127.0.0.1:1')
        VaultUnavailableException e = thrownBy(VaultUnavailableException) { AwsRoleBroker.shared().credentials([purpose: 'ecr-push']) }
        assertTrue(e instanceof AwsRoleException)
        assertNoSecretIn(e.message)
    }

    @Test
    void panic_in_rust_becomes_an_exception_and_the_jvm_lives_on() {
        AwsRoleBroker broker = AwsRoleBroker.shared()
        InternalBridgeException e = thrownBy(InternalBridgeException) { Native.Diagnostics_panic('on purpose, from AwsRoleBrokerTest') }
        assertTrue(e.message, e.message.contains('on purpose'))
        Map<String, String> credentials = broker.credentials([purpose: 'ecr-push'])
        assertTrue(credentials.arn.contains('assumed-role/jenkins-ecr-push-role/'))
        assertFalse(broker.version().isEmpty())
    }

    /** The ecr-push credentials that the shared broker gives build `number` of `job`. */
    private static Map<String, String> ecrPushAsBuild(String job, int number) {
        return World.asBuild(job, number) { AwsRoleBroker.shared().credentials([purpose: 'ecr-push']) }
    }

    /** What `call` throws, which must be a `type` (a failure names `request`, when given). */
    private static <T extends Throwable> T thrownBy(Class<T> type, Object request = null, Closure call) {
        try {
            call()
        } catch (Throwable e) {
            if (type.isInstance(e)) {
                return type.cast(e)
            }
            throw e
        }
        fail("expected ${type.simpleName}${request == null ? '' : " for ${request}"}")
        return null
    }

    private static void assertNoSecretIn(String message) {
        for (String variable : ['VAULT_TOKEN', 'VAULT_SECRET_ID']) {
            String secret = System.getenv(variable)
            if (secret) {
                assertFalse("message shows ${variable}: ${message}", message.contains(secret))
            }
        }
    }
}
