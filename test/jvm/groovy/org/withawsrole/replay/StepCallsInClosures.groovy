package org.withawsrole.replay

import org.codehaus.groovy.ast.ClassCodeExpressionTransformer
import org.codehaus.groovy.ast.ClassNode
import org.codehaus.groovy.ast.expr.ClosureExpression
import org.codehaus.groovy.ast.expr.Expression
import org.codehaus.groovy.ast.expr.MethodCallExpression
import org.codehaus.groovy.ast.expr.VariableExpression
import org.codehaus.groovy.classgen.GeneratorContext
import org.codehaus.groovy.control.CompilePhase
import org.codehaus.groovy.control.SourceUnit
import org.codehaus.groovy.control.customizers.CompilationCustomizer

/**
 * In plain Groovy, `sleep 5` inside a closure calls Object.sleep(long) (5 ms) on the closure; in
 * Jenkins it is the sleep step (5 s). Calls to those step names that plain Groovy would bind to the
 * closure itself are rewritten to `this.name(...)`, the script, as CPS does.
 */
class StepCallsInClosures extends CompilationCustomizer {
    static final Set<String> SHADOWED_STEPS = ['sleep'].toSet().asImmutable()

    StepCallsInClosures() {
        super(CompilePhase.SEMANTIC_ANALYSIS)
    }

    @Override
    void call(SourceUnit source, GeneratorContext context, ClassNode classNode) {
        new ClassCodeExpressionTransformer() {
            @Override
            protected SourceUnit getSourceUnit() {
                return source
            }

            @Override
            Expression transform(Expression expression) {
                if (expression == null) {
                    return null
                }
                if (expression instanceof ClosureExpression) {
                    ((ClosureExpression) expression).code.visit(this)
                    return expression
                }
                if (expression instanceof MethodCallExpression) {
                    MethodCallExpression call = (MethodCallExpression) expression
                    if (call.implicitThis && call.methodAsString in SHADOWED_STEPS) {
                        MethodCallExpression onScript = new MethodCallExpression(
                                VariableExpression.THIS_EXPRESSION, call.method, transform(call.arguments))
                        onScript.implicitThis = false
                        onScript.sourcePosition = call
                        return onScript
                    }
                }
                return expression.transformExpression(this)
            }
        }.visitClass(classNode)
    }
}
