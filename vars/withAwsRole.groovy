// withAwsRole('ecr-push') { sh '...' } runs the block with short-lived AWS credentials for a purpose.
// Options and behaviour: withAwsRole.txt; the logic: src/org/withawsrole/AwsRoleStep.groovy.

def call(String purpose, Closure body) {
    return call([purpose: purpose], body)
}

// withAwsRole('ecr-push', ttl: '15m') { ... }: Groovy passes the named options first.
def call(Map options, String purpose, Closure body) {
    return call(options + [purpose: purpose], body)
}

def call(Map options = [:], Closure body) {
    return new org.withawsrole.AwsRoleStep(this).run(options, body)
}
