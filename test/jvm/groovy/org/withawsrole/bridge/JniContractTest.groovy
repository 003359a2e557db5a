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
            #[unsafe(no_mangle)]
            pub extern "system" fn Java_org_withawsrole_bridge_internal_Native_Broker_1doThing<
                'local,
            >(
                mut env: EnvUnowned<'local>,
                _class: JClass<'local>,
                pairs: JObjectArray<'local, JString<'local>>,
                text: JString<'local>,
            ) -> JObjectArray<'local, JString<'local>> {
        '''
        assertEquals(['Broker_doThing': 'String[] (String[], String)'], exports(source))
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
        return exports(new File(EXPORTS).getText('UTF-8'))
    }

    /** Export name (JNI's `_1` decoded to `_`) → "return (arguments)", in Java's words. */
    private static Map<String, String> exports(String source) {
        Map<String, String> methods = [:]
        String withoutLifetimes = source.replaceAll(/'local,?\s*/, '').replaceAll(/<\s*>/, '')
        def declarations = withoutLifetimes =~ /(?s)extern "system" fn (\w+)\s*\((.*?)\)\s*(->\s*([^{]+?))?\s*\{/
        declarations.each { List<String> found ->
            String name = found[1]
            assertTrue("${name} is named for Native.java".toString(), name.startsWith(PREFIX))
            List<String> parameters = found[2].split(',')*.trim().findAll { it }
            List<String> arguments = parameters.drop(2).collect { javaType(it.substring(it.indexOf(':') + 1)) }
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
