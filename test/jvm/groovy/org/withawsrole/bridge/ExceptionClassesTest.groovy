package org.withawsrole.bridge

import org.junit.Test

import static org.junit.Assert.assertEquals
import static org.junit.Assert.assertFalse
import static org.junit.Assert.assertTrue

/**
 * Expected and unexpected failures are different types across the FFI: rust/jni/src/ffi.rs maps
 * each core error kind to a Java class (the one place that does), and the step reports a failure
 * to the user only when it is an AwsRoleException. So every kind the user can act on must map to
 * an AwsRoleException, and the internal kind to a class that is not one, or a bug would read as
 * "fix your input" (or a Vault refusal as a stack trace).
 */
class ExceptionClassesTest {
    private static final String MAPPING = 'rust/jni/src/ffi.rs'
    private static final List<String> EXPECTED_KINDS = ['InvalidRequest', 'PermissionDenied', 'Unavailable']

    @Test
    void each_expected_error_kind_is_an_aws_role_exception_and_the_internal_one_is_not() {
        Map<String, Class> classOfKind = classesOfKinds(new File(MAPPING).text)
        assertEquals("${MAPPING} maps these kinds".toString(), (EXPECTED_KINDS + 'Internal') as Set, classOfKind.keySet())
        EXPECTED_KINDS.each { String kind ->
            assertTrue("${kind} -> ${classOfKind[kind].name}", AwsRoleException.isAssignableFrom(classOfKind[kind]))
        }
        assertFalse('Internal is a bug, not an AwsRoleException', AwsRoleException.isAssignableFrom(classOfKind.Internal))
        assertTrue(RuntimeException.isAssignableFrom(classOfKind.Internal))
    }

    @Test
    void a_platform_without_a_native_library_is_expected_too() {
        assertTrue(AwsRoleException.isAssignableFrom(NativeLibraryUnavailableException))
    }

    /** ErrorKind::X => jni_str!("org/.../Y") or => INTERNAL, as exception_class() writes them. */
    static Map<String, Class> classesOfKinds(String source) {
        String internal = (source =~ /const INTERNAL: &JNIStr = jni_str!\("([^"]+)"\)/)[0][1]
        Map<String, Class> classes = [:]
        (source =~ /ErrorKind::(\w+)\s*=>\s*\{?\s*(?:jni_str!\("([^"]+)"\)|INTERNAL)/).each { List<String> match ->
            String name = (match[2] ?: internal).replace('/', '.')
            classes[match[1]] = AwsRoleException.classLoader.loadClass(name)
        }
        return classes
    }
}
