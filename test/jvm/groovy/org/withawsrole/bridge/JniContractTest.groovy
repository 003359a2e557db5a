package org.withawsrole.bridge

import org.junit.Test
import org.withawsrole.bridge.internal.Native

import java.lang.reflect.Method
import java.lang.reflect.Modifier

import static org.junit.Assert.assertEquals
import static org.junit.Assert.assertTrue

/**
 * The JNI contract has two sides written by hand: the native methods of Native.java (in the
 * bridge jar) and the exports of rust/jni/src/lib.rs. A method on one side only, or with other
 * argument types, links fine and fails at the first call in a build (UnsatisfiedLinkError, or a
 * crash for mismatched types); this test fails first.
 */
class JniContractTest {
    private static final String EXPORTS = 'rust/jni/src/lib.rs'
    private static final String PREFIX = 'Java_org_withawsrole_bridge_internal_Native_'
    /** The jni crate's types as Java sees them. */
    private static final Map<String, String> JAVA_TYPE_OF = [
            'JString'              : 'String',
            'JObjectArray<JString>': 'String[]',
            'JavaPairs'            : 'String[]',
            'unit'                 : 'void',
            'jlong'                : 'long',
            'jint'                 : 'int',
            'jboolean'             : 'boolean',
    ]

    @Test
    void every_native_method_has_an_export_with_the_same_types_and_back() {
        Map<String, String> java = javaSide()
        Map<String, String> rust = rustSide()
        assertTrue('Native.java declares native methods', java.size() >= 5)
        assertEquals("Native.java (left) and ${EXPORTS} (right) must declare the same methods".toString(),
                java.sort(), rust.sort())
    }

    @Test
    void the_parser_reads_an_export_with_several_lines_and_lifetimes() {
        String source = '''
            jni_export! {
                /// A doc line (with parentheses).
                fn Java_org_withawsrole_bridge_internal_Native_Broker_1doThing(
                    env,
                    pairs: JavaPairs<'local>,
                    text: JString<'local>,
                ) -> JObjectArray<'local, JString<'local>> {
                    body(env)
                }
            }
            jni_export! {
                fn Java_org_withawsrole_bridge_internal_Native_Broker_1clear(_env) {
                    Ok(())
                }
            }
        '''
        assertEquals(['Broker_doThing': 'String[] (String[], String)', 'Broker_clear': 'void ()'], exports(source))
    }

    private static Map<String, String> javaSide() {
        Map<String, String> methods = [:]
        for (Method method : Native.declaredMethods) {
            if (Modifier.isNative(method.modifiers)) {
                String arguments = method.parameterTypes*.simpleName.join(', ')
                methods[method.name] = "${method.returnType.simpleName} (${arguments})".toString()
            }
        }
        return methods
    }

    private static Map<String, String> rustSide() {
        String source = new File(EXPORTS).getText('UTF-8')
        // An export written by hand would skip run_ffi_safe, and this parser would not see it.
        assertEquals('every export is written with jni_export! (the one extern "system" fn is the macro\'s)',
                1, source.count('pub extern "system" fn'))
        return exports(source)
    }

    /** Export name (JNI's `_1` decoded to `_`) → "return (arguments)", in Java's words. */
    private static Map<String, String> exports(String source) {
        Map<String, String> methods = [:]
        String withoutLifetimes = source.replaceAll(/'local,?\s*/, '').replaceAll(/<\s*>/, '')
        // Exports are written `jni_export! { fn Java_…(env, argument: Type, …) -> Type { … } }`; the
        // macro adds the JNI environment and class arguments.
        def declarations = withoutLifetimes =~ /(?s)\bfn (Java_\w+)\s*\(\s*\w+\s*,?(.*?)\)\s*(->\s*([^{]+?))?\s*\{/
        declarations.each { List<String> found ->
            String name = found[1]
            assertTrue("${name} is named for Native.java".toString(), name.startsWith(PREFIX))
            List<String> parameters = found[2].split(',')*.trim().findAll { it }
            List<String> arguments = parameters.collect { javaType(it.substring(it.indexOf(':') + 1)) }
            String returned = javaType(found[4] ?: 'unit')
            methods[name.substring(PREFIX.length()).replace('_1', '_')] = "${returned} (${arguments.join(', ')})".toString()
        }
        return methods
    }

    private static String javaType(String rustType) {
        String type = rustType.replaceAll(/\s+/, '')
        String java = JAVA_TYPE_OF[type]
        assertTrue("a JNI type this test knows: ${type}".toString(), java != null)
        return java
    }
}
