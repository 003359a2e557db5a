package org.withawsrole

/**
 * The API for an organisation's own library code: the withAwsRole and ecrLogin steps, callable
 * from classes in another shared library's src/ (or its vars/), with the pipeline script passed
 * in as library classes do.
 *
 * <pre>
 * import org.withawsrole.AwsRole
 *
 * class Deployer implements Serializable {
 *     def script
 *     def deploy(String stack) {
 *         AwsRole.withRole(script, [role: 'deploy', roleArn: 'arn:aws:iam::123456789012:role/jenkins-deploy-role']) {
 *             script.sh "set +x; aws cloudformation deploy --stack-name ${stack} --template-file stack.yaml"
 *         }
 *     }
 * }
 * </pre>
 *
 * The options, the environment of the block, masking, errors and the log line are exactly those
 * of the steps (vars/withAwsRole.txt, vars/ecrLogin.txt): the steps call these methods. Both
 * libraries must be trusted (global) libraries: this one loads native code.
 */
class AwsRole implements Serializable {
    private static final long serialVersionUID = 1L

    /**
     * withAwsRole(options) { body }: runs body with the role's credentials; returns what body
     * returns. With `refresh` in the options, credentials that renew themselves (docs/refresh.md);
     * with `roles`, one named AWS profile per role (RoleProfiles).
     */
    static withRole(script, Map options, Closure body) {
        String problem = RefreshingCredentials.modeProblem(options)
        if (problem != null) {
            script.error(StepMessages.oneLine("withAwsRole: ${problem}"))
        }
        if (RefreshingCredentials.requested(options)) {
            return new RefreshingCredentials(script).run(options, body)
        }
        // refresh: false is the default said out loud (and then without timeout: modeProblem).
        Map rest = options?.containsKey('refresh') ? RefreshingCredentials.withoutOwnOptions(options) : options
        if (RoleProfiles.requested(rest)) {
            return new RoleProfiles(script).run(rest, body)
        }
        return new AwsRoleStep(script).run(rest, body)
    }

    /** ecrLogin(options): docker login to options.registry with the role's credentials. */
    static ecrLogin(script, Map options) {
        return new EcrLogin(script).run(options, null)
    }

    /** ecrLogin(options) { body }: the same, with the login kept private to body; returns what body returns. */
    static ecrLogin(script, Map options, Closure body) {
        return new EcrLogin(script).run(options, body)
    }
}
