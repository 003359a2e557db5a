// ecrLogin(registry: '<account>.dkr.ecr.<region>.amazonaws.com', role: 'ecr-push'): docker login to
// Amazon ECR with a withAwsRole role. Help: ecrLogin.txt; the logic: src/org/withawsrole/EcrLogin.groovy.
import org.withawsrole.AwsRole
import org.withawsrole.EcrLogin

// ecrLogin() or ecrLogin(email: ..., registryIds: [...]): the pipeline-aws plugin's step, whose login
// command it returns (EcrLogin.PLUGIN_OPTIONS), so pipelines written for that plugin keep working.
def call() {
    return AwsRole.ecrLogin(this, [:])
}

def call(Map options) {
    return AwsRole.ecrLogin(this, options)
}

// ecrLogin(registry: ..., role: ...) { sh 'docker push ...' }: the login lasts only for the block.
def call(Map options, Closure body) {
    return AwsRole.ecrLogin(this, options, body)
}

def call(Object... ignored) {
    error("ecrLogin: ${EcrLogin.EXAMPLE}; valid options: ${EcrLogin.validOptions().join(', ')}")
}
