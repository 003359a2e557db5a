package org.withawsrole

import com.cloudbees.groovy.cps.NonCPS

/**
 * ecrLogin: `docker login` to an Amazon ECR registry with the credentials of a withAwsRole role.
 *
 * The registry host names the account and the region; the ECR password comes from
 * `aws ecr get-login-password` inside a withAwsRole block and reaches `docker login` on stdin,
 * never on a command line or in a trace. Without a block the login lasts, as `docker login` does;
 * with a block it is kept in a private DOCKER_CONFIG that is deleted afterwards, as the Docker
 * Pipeline plugin's withRegistry does, so later builds on the agent cannot push with it.
 *
 * CPS: run, login and withPrivateDockerConfig call steps; the rest is @NonCPS.
 */
class EcrLogin implements Serializable {
    private static final long serialVersionUID = 1L

    /** <account>.dkr.ecr[-fips].<region>.amazonaws.com[.cn]: group 1 the account, 2 the region. */
    static final String REGISTRY_SHAPE = /(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-\d{1,2})\.amazonaws\.com(?:\.cn)?/

    static final String EXAMPLE = "call it as ecrLogin(registry: '123456789012.dkr.ecr.eu-west-1.amazonaws.com', role: 'ecr-push')"

    /**
     * The options of the pipeline-aws plugin's ecrLogin step. A call with only these (or none) is
     * the plugin's: Jenkins resolves `ecrLogin` to this library's global variable first, so such a
     * call goes on to the plugin's step, and pipelines that used it keep working.
     */
    static final List<String> PLUGIN_OPTIONS = ['email', 'registryIds'].asImmutable()

    /** How long the login `aws ecr get-login-password` gives lasts (ECR's documented 12 hours). */
    static final long ECR_LOGIN_SECONDS = 12 * 3600

    /** Options of ecrLogin: the registry, and withAwsRole's except region, which the registry names. */
    static final List<String> OWN_OPTIONS = ['registry'].asImmutable()

    final script

    EcrLogin(script) {
        this.script = script
    }

    def run(Map options, Closure body) {
        if (body == null && madeThePluginsWay(options)) {
            return pluginStep(options)
        }
        String problem = problemWith(options)
        if (problem != null) {
            script.error(StepMessages.oneLine("ecrLogin: ${problem}"))
        }
        String registry = options.registry
        if (!script.isUnix()) {
            script.error(StepMessages.oneLine('ecrLogin: logs Docker in with sh, which this Windows agent does not run; ' +
                    "on Windows, log in inside a plain block: withAwsRole('${StepMessages.shown(String.valueOf(options.role))}') " +
                    "{ powershell \"aws ecr get-login-password --region ${regionOf(registry)} | " +
                    "docker login --username AWS --password-stdin ${StepMessages.shown(registry)}\" }"))
        }
        return new AwsRoleStep(script).run(roleOptionsOf(options)) {
            if (body == null) {
                login(registry)
                return null
            }
            return withPrivateDockerConfig {
                login(registry, PrivateDirectories.removalOfDeadBeside('"$DOCKER_CONFIG"') + '; ')
                body()
            }
        }
    }

    /**
     * The password goes through a shell variable rather than a pipe: `sh` runs without pipefail,
     * so a failing `aws` would otherwise surface as a confusing `docker login` error. printf is
     * a shell builtin, so the password is never in a process's arguments. beforeLogin: sh run first
     * in the same step (a private DOCKER_CONFIG's sweep of dead folders).
     */
    def login(String registry, String beforeLogin = '') {
        script.sh("""\
            set +x
            ${beforeLogin}password=\$(aws ecr get-login-password --region '${regionOf(registry)}')
            printf '%s' "\$password" | docker login --username AWS --password-stdin '${registry}'
            """.stripIndent())
    }

    /**
     * The pipeline-aws plugin's ecrLogin, called through the DSL (`steps`) so that this global is
     * skipped; returns its login command. Without the plugin, the DSL throws NoSuchMethodError (an
     * Error, so the catch is narrow on purpose): it becomes one line that says what to call instead.
     */
    @SuppressWarnings('CatchError')
    def pluginStep(Map options) {
        try {
            return script.steps.ecrLogin(options)
        } catch (NoSuchMethodError ignored) {
            script.error("ecrLogin: a call without registry and role is the pipeline-aws plugin's ecrLogin(), which is not installed; " +
                    "to log in with a withAwsRole role, ${EXAMPLE}")
        }
    }

    def withPrivateDockerConfig(Closure block) {
        // Jenkins' own place for a build's temporary files, next to the workspace, not in it.
        String temporaryFiles = script.pwd(tmp: true)
        // Named with when its login dies (ECR's token lasts 12 hours): PrivateDirectories.
        String dockerConfig = PrivateDirectories.named(temporaryFiles, PrivateDirectories.now() + ECR_LOGIN_SECONDS)
        return script.withEnv(["DOCKER_CONFIG=${dockerConfig}"]) {
            try {
                return block()
            } finally {
                script.sh('set +x; rm -rf "$DOCKER_CONFIG"')
            }
        }
    }

    /** What is wrong with the options, as one sentence for the build log; null when nothing is. */
    @NonCPS
    static String problemWith(Map options) {
        String problem = AwsRoleOptions.problemWith(options, validOptions(), EXAMPLE)
        if (problem != null) {
            return problem
        }
        Object registry = options.registry
        if (registry == null) {
            return "name the registry: ${EXAMPLE}"
        }
        if (!(registry.toString() ==~ REGISTRY_SHAPE)) {
            return "registry '${StepMessages.shown(registry)}' is not an ECR registry host like " +
                    '123456789012.dkr.ecr.eu-west-1.amazonaws.com (no https://, no repository path); the region comes from it'
        }
        return null
    }

    @NonCPS
    static boolean madeThePluginsWay(Map options) {
        return options.keySet().every { Object name -> name in PLUGIN_OPTIONS }
    }

    @NonCPS
    static List<String> validOptions() {
        return OWN_OPTIONS + (AwsRoleOptions.validOptions() - ['region'])
    }

    @NonCPS
    static String regionOf(String registry) {
        return (registry =~ REGISTRY_SHAPE)[0][2]
    }

    /** withAwsRole's options for the login: the role's, with the registry's region. */
    @NonCPS
    static Map roleOptionsOf(Map options) {
        return AwsRoleOptions.optionsWith(options, OWN_OPTIONS, [region: regionOf(options.registry.toString())])
    }

}
