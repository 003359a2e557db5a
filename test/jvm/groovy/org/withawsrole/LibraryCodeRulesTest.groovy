package org.withawsrole

import com.cloudbees.groovy.cps.NonCPS
import org.junit.Test
import org.withawsrole.replay.LocalLibrary

import java.lang.reflect.Method
import java.lang.reflect.Modifier

import static org.junit.Assert.*

/**
 * Jenkins' rules for library classes that this runner cannot enforce by running them (it does not
 * CPS-transform; groovy-cps is not on Maven Central): classes are Serializable, and methods that
 * call into Java are @NonCPS, so the only CPS methods are those that call steps and closures,
 * all listed here: a new one is a deliberate entry, not an oversight. The bodies of @NonCPS
 * methods and constructors, in src/ and vars/, call no step and no closure (NonCpsBodies).
 */
class LibraryCodeRulesTest {
    /** Methods that call steps or run the block: they must stay CPS. */
    static final Set<String> CPS_METHODS = [
            'org.withawsrole.AwsRole.withRole',
            'org.withawsrole.AwsRole.ecrLogin',
            'org.withawsrole.AwsRoleStep.run',
            'org.withawsrole.BridgeGateway.install',
            'org.withawsrole.BridgeGateway.credentials',
            'org.withawsrole.BridgeGateway.childToken',
            'org.withawsrole.BridgeGateway.settingVariables',
            'org.withawsrole.BridgeGateway.revoke',
            'org.withawsrole.BridgeGateway.answer',
            'org.withawsrole.BridgeGateway.withVaultLogin',
            'org.withawsrole.BridgeGateway.await',
            'org.withawsrole.BlockRunner.run',
            'org.withawsrole.BlockRunner.inEnvironment',
            'org.withawsrole.BlockRunner.withEnvironment',
            'org.withawsrole.RoleProfiles.run',
            'org.withawsrole.RoleProfiles.writeProfileFiles',
            'org.withawsrole.RoleProfiles.temporaryFiles',
            'org.withawsrole.VaultCredential.fetch',
            'org.withawsrole.VaultCredential.fetchAsSecretText',
            'org.withawsrole.EcrLogin.run',
            'org.withawsrole.EcrLogin.login',
            'org.withawsrole.EcrLogin.pluginStep',
            'org.withawsrole.EcrLogin.withPrivateDockerConfig',
            'org.withawsrole.RefreshingCredentials.run',
            'org.withawsrole.RefreshingCredentials.revokeAll',
            'org.withawsrole.RefreshingCredentials.prepareAgent',
    ] as Set

    static final Set<String> GROOVY_GENERATED = ['getMetaClass', 'setMetaClass', 'invokeMethod', 'getProperty', 'setProperty'] as Set

    @Test
    void library_classes_are_serializable_and_only_step_calling_methods_are_cps() {
        LocalLibrary library = LocalLibrary.compile(new File(System.getProperty('withawsrole.library.dir', '.')))
        File src = new File(library.directory, 'src')
        List<String> classNames = []
        src.eachFileRecurse { File file ->
            if (file.name.endsWith('.groovy')) {
                classNames << (file.path - src.path - '.groovy').replaceAll('^/', '').replace('/', '.')
            }
        }
        assertTrue(classNames.toString(), classNames.containsAll(['org.withawsrole.AwsRoleStep', 'org.withawsrole.NativeBridge']))

        List<String> problems = []
        classNames.each { String name ->
            Class type = library.classLoader.loadClass(name)
            if (!Serializable.isAssignableFrom(type)) {
                problems << "${name} is not Serializable"
            }
            Set<String> propertyAccessors = type.declaredFields.collectMany { field ->
                String suffix = field.name.capitalize()
                ["get${suffix}", "set${suffix}", "is${suffix}"]
            }*.toString() as Set
            type.declaredMethods.findAll { Method method ->
                !method.synthetic && !method.name.contains('$') && !(method.name in GROOVY_GENERATED) &&
                        !(method.name in propertyAccessors)
            }.each { Method method ->
                String qualified = "${name}.${method.name}"
                boolean nonCps = method.isAnnotationPresent(NonCPS)
                if (qualified in CPS_METHODS && nonCps) {
                    problems << "${qualified} calls steps: it must not be @NonCPS"
                } else if (!(qualified in CPS_METHODS) && !nonCps) {
                    problems << "${qualified} (${Modifier.toString(method.modifiers)}) is not @NonCPS"
                }
            }
        }
        assertTrue(problems.join('\n'), problems.isEmpty())
    }

    @Test
    void no_nonCps_method_or_constructor_calls_a_step_or_a_closure_in_src_or_vars() {
        File library = new File(System.getProperty('withawsrole.library.dir', '.'))
        List<String> problems = []
        int read = 0
        ['src': false, 'vars': true].each { String folder, boolean script ->
            new File(library, folder).eachFileRecurse { File file ->
                if (file.name.endsWith('.groovy')) {
                    read++
                    problems.addAll(NonCpsBodies.problemsIn(file, script))
                }
            }
        }
        assertTrue(String.valueOf(read), read >= 12)
        assertTrue(problems.join('\n'), problems.isEmpty())
    }

    @Test
    void the_body_reader_finds_steps_and_closure_calls_where_jenkins_cannot_run_them() {
        File bad = File.createTempFile('BadStep', '.groovy')
        bad.deleteOnExit()
        bad.text = '''
            import com.cloudbees.groovy.cps.NonCPS
            class BadStep implements Serializable {
                def script
                BadStep(script) { this.script = script; script.echo('constructed') }
                @NonCPS
                static String quiet(script, Closure body) { [1].each { script.sh('true') }; body(); body.call(); return 'x' }
                @NonCPS
                String fine(List values) { return values.collect { it * 2 }.join(',') }
                def cps(Closure body) { script.echo('ok'); body() }
            }
        '''
        assertEquals(['BadStep.<init> (line 5): calls the step echo on script',
                      'BadStep.quiet (line 7): calls the step sh on script',
                      'BadStep.quiet (line 7): calls the closure body',
                      'BadStep.quiet (line 7): calls the closure body'], NonCpsBodies.problemsIn(bad, false))
        bad.text = '''
            @NonCPS
            def helper() { sh 'true'; return env.X }
            def call() { sh 'fine here' }
        '''
        assertEquals(['BadStep.helper (line 3): calls the step sh'].toString(),
                NonCpsBodies.problemsIn(bad, true).collect { it.replaceFirst(/^BadStep\d+/, 'BadStep') }.toString())
    }
}
