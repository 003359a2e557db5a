package org.withawsrole.bridge

import org.junit.BeforeClass
import org.junit.Test
import org.withawsrole.World
import org.withawsrole.bridge.internal.Native
import org.withawsrole.bridge.internal.NativeLoader

import static org.junit.Assert.*

/** The bridge jar (native library inside) against the real world, through JNI. */
class AwsRoleBrokerTest {
    @BeforeClass
    static void world() {
        World.require()
    }

    @Test
    void ecr_push_credentials_come_from_the_assumed_role() {
        Map<String, String> credentials = AwsRoleBroker.shared().credentials([purpose: 'ecr-push'])
        assertTrue(credentials.arn, credentials.arn.contains('assumed-role/jenkins-ecr-push-role/'))
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
        Map<String, String> first = broker.credentials([purpose: 'ecr-push', session_name: 'broker-test-cache'])
        Map<String, String> second = broker.credentials([purpose: 'ecr-push', session_name: 'broker-test-cache'])
        assertEquals('hit', second.cache)
        assertEquals(first.access_key_id, second.access_key_id)
        assertTrue(broker.stats().keySet().containsAll(['vault_calls', 'vault_logins', 'cache_hits', 'cache_misses', 'retries']))
        assertTrue(broker.stats().cache_hits.toLong() >= 1)
    }

    @Test
    void forbidden_role_is_permission_denied() {
        try {
            AwsRoleBroker.shared().credentials([purpose: 'forbidden'])
            fail('expected PermissionDeniedException')
        } catch (PermissionDeniedException e) {
            assertTrue(e instanceof AwsRoleException)
            assertNoSecretIn(e.message)
        }
    }

    @Test
    void purpose_that_escapes_its_path_is_an_invalid_request() {
        try {
            AwsRoleBroker.shared().credentials([purpose: '../x'])
            fail('expected InvalidRequestException')
        } catch (InvalidRequestException e) {
            assertTrue(e.message, e.message.contains('purpose'))
        }
    }

    @Test
    void unknown_request_key_is_an_invalid_request() {
        try {
            AwsRoleBroker.shared().credentials([purpose: 'ecr-push', colour: 'blue'])
            fail('expected InvalidRequestException')
        } catch (InvalidRequestException e) {
            assertTrue(e.message, e.message.contains('colour'))
        }
    }

    @Test
    void non_ascii_request_text_reaches_rust_intact() {
        // Packed as modified UTF-8: a supplementary character travels as a surrogate pair.
        try {
            AwsRoleBroker.shared().credentials([purpose: 'ecr-push', 'c\u00f6lour\uD83D\uDE80': 'blue'])
            fail('expected InvalidRequestException')
        } catch (InvalidRequestException e) {
            assertTrue(e.message, e.message.contains('c\u00f6lour\uD83D\uDE80'))
        }
    }

    @Test
    void nul_in_a_request_value_is_refused_before_the_native_call() {
        AwsRoleBroker broker = AwsRoleBroker.shared()
        String callsBefore = broker.stats().cache_hits + '/' + broker.stats().cache_misses
        try {
            broker.credentials([purpose: 'ecr-push', session_name: 'a\u0000b'])
            fail('expected InvalidRequestException')
        } catch (InvalidRequestException e) {
            assertTrue(e.message, e.message.contains("'session_name'") && e.message.contains('NUL'))
        }
        assertEquals('the native broker was not asked', callsBefore, broker.stats().cache_hits + '/' + broker.stats().cache_misses)
    }

    @Test
    void unreachable_vault_is_vault_unavailable() {
        AwsRoleBroker.shared().clearCache()
        try {
            AwsRoleBroker.shared().credentials([purpose: 'ecr-push', vault_addr: 'http://127.0.0.1:1'])
            fail('expected VaultUnavailableException')
        } catch (VaultUnavailableException e) {
            assertTrue(e instanceof AwsRoleException)
            assertNoSecretIn(e.message)
        }
    }

    @Test
    void panic_in_rust_becomes_an_exception_and_the_jvm_lives_on() {
        AwsRoleBroker broker = AwsRoleBroker.shared()
        try {
            Native.Diagnostics_panic('on purpose, from AwsRoleBrokerTest')
            fail('expected InternalBridgeException')
        } catch (InternalBridgeException e) {
            assertTrue(e.message, e.message.contains('on purpose'))
        }
        Map<String, String> credentials = broker.credentials([purpose: 'ecr-push'])
        assertTrue(credentials.arn.contains('assumed-role/jenkins-ecr-push-role/'))
        assertFalse(broker.version().isEmpty())
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
