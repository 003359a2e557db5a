package org.withawsrole.replay

import groovy.json.JsonSlurper

/**
 * Steps of plugins that Jenkinsfiles moving to this library already call, for the runner's
 * plugins that provide them. As in Jenkins (CpsScript.invokeMethod), a library's global variable
 * of the same name wins over a plugin step; `steps.<name>` (DslSteps) reaches the step itself.
 *
 * pipeline-aws: ecrLogin([email: boolean, registryIds: [...]]) returns the `docker login` command
 * the plugin builds from ECR's GetAuthorizationToken, called on the controller with the AWS
 * credentials and region of the step's environment (what withAWS or withAwsRole put there). Here
 * the call is the aws CLI's, against the AWS the environment names (the world's moto).
 */
class PluginSteps {
    static final Map<String, List<String>> STEPS_OF_PLUGIN = ['pipeline-aws': ['ecrLogin']].asImmutable()

    static List<String> available(Collection<String> plugins) {
        return STEPS_OF_PLUGIN.findAll { it.key in plugins }.collectMany { it.value }
    }

    static boolean provides(Collection<String> plugins, String name) {
        return name in available(plugins)
    }

    static Object invoke(PipelineScript script, String name, Object[] args) {
        if (name != 'ecrLogin') {
            throw new IllegalStateException("no plugin step ${name}")
        }
        Map options = args.length == 0 ? [:] : (Map) args[0]
        return ecrLogin(script.pipelineRun.currentContext(), options)
    }

    /** The pipeline-aws plugin's ecrLogin (ECRLoginStep): the login command, password inside. */
    static String ecrLogin(StepContext context, Map options) {
        Set<String> unknown = options.keySet().collect { String.valueOf(it) } as Set<String>
        unknown.removeAll(['email', 'registryIds'])
        if (!unknown.isEmpty()) {
            throw new IllegalArgumentException("WARNING: Unknown parameter(s) found for class type " +
                    "'de.taimos.pipeline.aws.ECRLoginStep': ${unknown.join(',')}")
        }
        context.log('[Pipeline] ecrLogin')
        List<String> command = ['aws', 'ecr', 'get-authorization-token', '--output', 'json']
        if (options.registryIds) {
            command += ['--registry-ids'] + (options.registryIds as List).collect { String.valueOf(it) }
        }
        ProcessBuilder builder = new ProcessBuilder(command)
        builder.environment().clear()
        builder.environment().putAll(context.environment())
        builder.redirectInput(ProcessBuilder.Redirect.from(new File('/dev/null')))
        Process process = builder.start()
        ByteArrayOutputStream errors = new ByteArrayOutputStream()
        Thread errorReader = Thread.start { errors << process.errorStream }
        String output = process.inputStream.getText('UTF-8')
        errorReader.join()
        if (process.waitFor() != 0) {
            throw new PipelineFailure("ecrLogin: ${new String(errors.toByteArray(), 'UTF-8').trim()}")
        }
        Map data = (Map) ((List) ((Map) new JsonSlurper().parseText(output)).authorizationData)[0]
        List<String> userAndPassword = new String(Base64.decoder.decode((String) data.authorizationToken), 'UTF-8').split(':', 2) as List
        String email = options.email ? '-e none' : ''
        return "docker login -u ${userAndPassword[0]} -p ${userAndPassword[1]} ${email} ${data.proxyEndpoint}".toString()
    }
}
