package org.withawsrole.replay

import groovy.json.JsonSlurper

/**
 * gradle replay -Pjenkinsfile=<path> (make replay JENKINSFILE=<path>): runs one Jenkinsfile with this
 * library as a build of a "Pipeline script from SCM" job whose SCM is the Jenkinsfile's working tree,
 * prints the console log and exits 1 exactly when Jenkins would mark the build FAILURE (0 for SUCCESS,
 * UNSTABLE, ABORTED and NOT_BUILT, which the last line names: "Finished: UNSTABLE"); 2 for bad options.
 * Build numbers and the previous build's result go on from run to run (--state).
 *
 * Each build runs in a fresh workspace of its own under java.io.tmpdir, never in a checkout; options
 * from the environment (README, "Trying a Jenkinsfile: make replay"):
 * REPLAY_PARAMS='{"DEPLOY": true, "REGION": "us-east-1"}' the build's parameters (a JSON object),
 * REPLAY_KEEP_WORKSPACE=true keeps the workspace (the log says where),
 * REPLAY_SCM=<git URL or path>[#branch] what `checkout scm` clones instead of copying the working tree,
 * REPLAY_BRANCH=<name> builds as that branch of a multibranch job (BRANCH_NAME, `when { branch }`),
 * REPLAY_JOB=<folder/job> the job's full name (JOB_NAME),
 * REPLAY_INPUT=proceed|abort how `input` is answered (proceed: the parameters' defaults),
 * REPLAY_AGENT_OS=windows runs on an emulated Windows agent (isUnix() false, bat and powershell: WindowsShell),
 * REPLAY_AGENT_ENV=<NAME>=<value>[,...] variables the agent's own process environment has beyond this one's, which
 * every process a step starts inherits unless the block sets them (PipelineRunner.agentEnvironment),
 * REPLAY_TOOLS=<name>=<home>[,...] tool installations (`tool`, `tools { }`),
 * REPLAY_STUB_STEPS=<step>[,...] steps that do nothing here (a block still runs),
 * REPLAY_STEPS=<file.groovy> stand-ins written in Groovy (`def slackSend(Map args) { echo ... }`),
 * REPLAY_CREDENTIALS=<file.json> gives withCredentials its credentials (format: CredentialsStore.load),
 * --library-repo <git URL or path> [--library-version <default>] (make replay LIBRARY_REPO=... [LIBRARY_VERSION=...])
 * loads withAwsRole as Jenkins' Modern SCM retriever does: @Library('withAwsRole@<ref>') is checked out of
 * that repository into a fresh directory (default version: LIBRARY_VERSION, else the repository's HEAD branch),
 * REPLAY_LIBRARIES=<name>=<dir>[,<name>=<dir>...] loads other shared libraries along with this one,
 * REPLAY_WITHOUT_PLUGINS=<plugin id>[,<plugin id>...] runs as a controller that lacks those plugins
 * (ids as in PipelineRunner.plugins, e.g. `make replay JENKINSFILE=... REPLAY_WITHOUT_PLUGINS=mask-passwords`
 * shows how the library copes without the Mask Passwords plugin); an id the runner does not know fails.
 */
class ReplayMain {
    static void main(String[] args) {
        File library = new File('.')
        File workspace = null
        File state = null
        File jenkinsfile = null
        String repository = null
        String defaultVersion = null
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case '--library': library = new File(args[++i]); break
                case '--workspace': workspace = new File(args[++i]); break
                case '--state': state = new File(args[++i]); break
                case '--library-repo': repository = args[++i]; break
                case '--library-version': defaultVersion = args[++i]; break
                default: jenkinsfile = new File(args[i])
            }
        }
        PipelineRunner runner
        try {
            if (jenkinsfile == null || !jenkinsfile.isFile()) {
                refuse("no Jenkinsfile at ${jenkinsfile}; usage: gradle replay -Pjenkinsfile=<path>")
            }
            runner = configure(library, workspace, state, jenkinsfile, System.getenv())
            if (repository != null) {
                // make replay LIBRARY_REPO=...: withAwsRole as a Modern SCM library of that repository.
                runner.libraryRepository = repository
                runner.libraryDefaultVersion = defaultVersion ?: defaultBranchOf(repository)
            }
        } catch (BadOption e) {
            System.err.println("replay: ${e.message}")
            System.exit(2)
        }
        BuildResult result = runner.run(jenkinsfile)
        if (state != null) {
            new File(state, 'lastResult').text = "${result.result}\n"
        }
        System.out.flush()
        System.exit(exitCode(result))
    }

    /** The default version when LIBRARY_VERSION names none: the branch the repository's HEAD names. */
    static String defaultBranchOf(String repository) {
        Process process = new ProcessBuilder('git', 'ls-remote', '--symref', repository, 'HEAD').redirectErrorStream(true).start()
        String out = process.inputStream.getText('UTF-8')
        process.waitFor()
        def branch = out =~ /ref: refs\/heads\/(\S+)\s+HEAD/
        return branch.find() ? branch.group(1) : null
    }

    /** 1 exactly when Jenkins would mark the build FAILURE; UNSTABLE, ABORTED and NOT_BUILT are not failures of the replay. */
    static int exitCode(BuildResult result) {
        return result.result == 'FAILURE' ? 1 : 0
    }

    /** An option the replay cannot run with: exit 2, nothing run. */
    static class BadOption extends RuntimeException {
        BadOption(String message) {
            super(message)
        }
    }

    static PipelineRunner configure(File library, File workspace, File state, File jenkinsfile, Map<String, String> options,
                                    PrintStream echo = System.out) {
        File counter = state == null ? null : new File(state, 'nextBuildNumber')
        int number = counter?.isFile() ? counter.text.trim().toInteger() : 1
        PipelineRunner runner = new PipelineRunner(library, number)
        if (workspace != null) {
            File chosen = workspace.canonicalFile
            File checkout = ScmSource.ofWorkingTree(jenkinsfile.absoluteFile.parentFile).workingTree.canonicalFile
            if (chosen == checkout || checkout.toPath().startsWith(chosen.toPath()) || chosen == library.canonicalFile) {
                refuse("--workspace ${chosen} holds the Jenkinsfile's checkout; a replay never runs there (leave --workspace out: a fresh one is made)")
            }
            runner.workspace = chosen
        }
        File lastResult = state == null ? null : new File(state, 'lastResult')
        if (lastResult?.isFile()) {
            runner.lastResult = lastResult.text.trim()
        }
        runner.keepWorkspace = options.REPLAY_KEEP_WORKSPACE in ['true', '1', 'yes']
        runner.echo = echo
        if (options.REPLAY_JOB) {
            runner.jobName = options.REPLAY_JOB
        }
        if (options.REPLAY_BRANCH) {
            runner.branchName = options.REPLAY_BRANCH
        }
        if (options.REPLAY_SCM) {
            List<String> repositoryAndBranch = options.REPLAY_SCM.split('#', 2) as List<String>
            runner.scm = ScmSource.ofRepository(repositoryAndBranch[0], repositoryAndBranch.size() == 2 ? repositoryAndBranch[1] : null)
        } else {
            runner.scm = ScmSource.ofWorkingTree(jenkinsfile.absoluteFile.parentFile)
        }
        if (options.REPLAY_PARAMS) {
            Object parameters
            try {
                parameters = new JsonSlurper().parseText(options.REPLAY_PARAMS)
            } catch (Exception e) {
                refuse("REPLAY_PARAMS is not JSON (${e.message.readLines()[0]}); write it as '{\"NAME\": \"value\", \"FLAG\": true}'")
            }
            if (!(parameters instanceof Map)) {
                refuse('REPLAY_PARAMS is not a JSON object; write it as \'{"NAME": "value", "FLAG": true}\'')
            }
            runner.parameters.putAll((Map<String, Object>) parameters)
        }
        if (options.REPLAY_AGENT_OS) {
            if (!(options.REPLAY_AGENT_OS in ['linux', 'windows'])) {
                refuse("REPLAY_AGENT_OS is '${options.REPLAY_AGENT_OS}', not linux or windows")
            }
            runner.windowsAgent = options.REPLAY_AGENT_OS == 'windows'
        }
        if (options.REPLAY_INPUT) {
            if (!(options.REPLAY_INPUT in [ReplayInput.PROCEED, ReplayInput.ABORT])) {
                refuse("REPLAY_INPUT is '${options.REPLAY_INPUT}', not ${ReplayInput.PROCEED} or ${ReplayInput.ABORT}")
            }
            runner.inputAnswer = options.REPLAY_INPUT
        }
        Map<String, String> agentOwn = pairs('REPLAY_AGENT_ENV', options.REPLAY_AGENT_ENV)
        if (agentOwn) {
            runner.agentEnvironment = new LinkedHashMap<String, String>(runner.baseEnvironment)
            runner.agentEnvironment.putAll(agentOwn)
        }
        pairs('REPLAY_TOOLS', options.REPLAY_TOOLS).each { String name, String home -> runner.tools[name] = new File(home) }
        options.REPLAY_STUB_STEPS?.tokenize(',')?.each { String step -> runner.standIns.noOps << step.trim() }
        if (options.REPLAY_STEPS) {
            File file = new File(options.REPLAY_STEPS)
            if (!file.isFile()) {
                refuse("REPLAY_STEPS names ${file}, which is not a file")
            }
            runner.standIns.file = file
        }
        String credentials = options.REPLAY_CREDENTIALS
        if (credentials) {
            runner.credentials.load(new File(credentials))
        }
        pairs('REPLAY_LIBRARIES', options.REPLAY_LIBRARIES).each { String name, String directory ->
            runner.withLibrary(name, new File(directory))
        }
        options.REPLAY_WITHOUT_PLUGINS?.tokenize(',')?.each { String plugin ->
            if (!runner.plugins.remove(plugin.trim())) {
                refuse("REPLAY_WITHOUT_PLUGINS names '${plugin.trim()}', not one of ${runner.plugins}")
            }
            runner.echo?.println("replay: running without the ${plugin.trim()} plugin")
        }
        if (counter != null) {
            counter.parentFile.mkdirs()
            counter.text = "${number + 1}\n"
        }
        return runner
    }

    private static Map<String, String> pairs(String option, String value) {
        Map<String, String> pairs = new LinkedHashMap<String, String>()
        value?.tokenize(',')?.each { String entry ->
            List<String> nameAndValue = entry.split('=', 2) as List<String>
            if (nameAndValue.size() != 2) {
                refuse("${option} entry '${entry}' is not <name>=<value>")
            }
            pairs[nameAndValue[0].trim()] = nameAndValue[1].trim()
        }
        return pairs
    }

    private static void refuse(String message) {
        throw new BadOption(message)
    }
}
