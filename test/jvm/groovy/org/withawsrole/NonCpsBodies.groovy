package org.withawsrole

import org.codehaus.groovy.ast.ASTNode
import org.codehaus.groovy.ast.ClassCodeVisitorSupport
import org.codehaus.groovy.ast.ClassNode
import org.codehaus.groovy.ast.MethodNode
import org.codehaus.groovy.ast.Parameter
import org.codehaus.groovy.ast.expr.MethodCallExpression
import org.codehaus.groovy.ast.expr.PropertyExpression
import org.codehaus.groovy.ast.expr.VariableExpression
import org.codehaus.groovy.ast.stmt.BlockStatement
import org.codehaus.groovy.control.CompilationUnit
import org.codehaus.groovy.control.CompilePhase
import org.codehaus.groovy.control.SourceUnit
import org.withawsrole.replay.PipelineScript

/**
 * Reads the bodies of a library's @NonCPS methods and constructors (src/ and vars/) for what
 * Jenkins cannot run there: a step (a call on `script`, or in vars/ a step name on `this`) or a
 * closure given as a parameter (`body()`, `body.call()`). In Jenkins a step in @NonCPS code fails
 * or misbehaves, and a CPS closure called from it does not run as written.
 */
class NonCpsBodies {
    /** Steps a library's vars/ scripts may call on `this`: the runner's steps and the plugin steps the library uses. */
    static final Set<String> STEP_NAMES = (PipelineScript.STEPS + ['ecrLogin']).toSet().asImmutable()

    /** One line per call that must not be there: `Class.method (line n): calls the step sh`. */
    static List<String> problemsIn(File source, boolean script) {
        CompilationUnit unit = new CompilationUnit()
        SourceUnit sourceUnit = unit.addSource(source)
        unit.compile(CompilePhase.CONVERSION.phaseNumber)
        List<String> problems = []
        sourceUnit.AST.classes.each { ClassNode type ->
            (type.declaredConstructors + type.methods).each { MethodNode method ->
                boolean constructor = method.name == '<init>'
                if (constructor || method.annotations.any { it.classNode.nameWithoutPackage == 'NonCPS' }) {
                    String where = "${type.name}.${constructor ? '<init>' : method.name}"
                    problems.addAll(callsIn(method, script).collect { "${where} ${it}".toString() })
                }
            }
        }
        return problems
    }

    private static List<String> callsIn(MethodNode method, boolean script) {
        Set<String> closureParameters = method.parameters.findAll { Parameter p -> p.type.nameWithoutPackage == 'Closure' }*.name as Set
        List<String> found = []
        if (!(method.code instanceof BlockStatement)) {
            return found
        }
        new ClassCodeVisitorSupport() {
            @Override
            protected SourceUnit getSourceUnit() {
                return null
            }

            @Override
            void visitMethodCallExpression(MethodCallExpression call) {
                String problem = problemWith(call, closureParameters, script)
                if (problem != null) {
                    found << "(line ${((ASTNode) call).lineNumber}): ${problem}".toString()
                }
                super.visitMethodCallExpression(call)
            }
        }.visitBlockStatement((BlockStatement) method.code)
        return found
    }

    private static String problemWith(MethodCallExpression call, Set<String> closureParameters, boolean script) {
        String name = call.methodAsString
        Object receiver = call.objectExpression
        if (isScript(receiver)) {
            return "calls the step ${name} on script"
        }
        if (call.implicitThis && name in closureParameters) {
            return "calls the closure ${name}"
        }
        if (name == 'call' && receiver instanceof VariableExpression && ((VariableExpression) receiver).name in closureParameters) {
            return "calls the closure ${((VariableExpression) receiver).name}"
        }
        if (script && call.implicitThis && name in STEP_NAMES) {
            return "calls the step ${name}"
        }
        return null
    }

    /** `script` or `this.script`: the pipeline script a library class holds. */
    private static boolean isScript(Object receiver) {
        if (receiver instanceof VariableExpression) {
            return ((VariableExpression) receiver).name == 'script'
        }
        return receiver instanceof PropertyExpression && ((PropertyExpression) receiver).propertyAsString == 'script' &&
                ((PropertyExpression) receiver).objectExpression instanceof VariableExpression &&
                ((VariableExpression) ((PropertyExpression) receiver).objectExpression).thisExpression
    }
}
