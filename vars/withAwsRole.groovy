// withAwsRole('ecr-push') { sh '...' } runs the block with short-lived AWS credentials for a role.
// Options and behaviour: withAwsRole.txt; the logic: src/org/withawsrole/AwsRoleStep.groovy.
import org.withawsrole.AwsRole
import org.withawsrole.AwsRoleOptions
import org.withawsrole.StepMessages

def call(String role, Closure body) {
    return AwsRole.withRole(this, [role: role], body)
}

// withAwsRole('ecr-push', ttl: '15m') { ... }: Groovy passes the named options first.
def call(Map options, String role, Closure body) {
    if (options.containsKey('role')) {
        error("withAwsRole: the role is given twice, as '${StepMessages.shown(role)}' and as role: " +
                "'${StepMessages.shown(options.role)}'; give it once")
    }
    return AwsRole.withRole(this, options + [role: role], body)
}

def call(Map options, Closure body) {
    return AwsRole.withRole(this, options, body)
}

// Anything else (no block, a number for the role, ...): say how to call it, not Groovy's
// MissingMethodException with a stack trace.
def call(Object... ignored) {
    error("withAwsRole: ${AwsRoleOptions.USAGE}; valid options: ${AwsRoleOptions.validOptions().join(', ')}")
}
