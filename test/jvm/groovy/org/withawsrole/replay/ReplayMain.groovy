package org.withawsrole.replay

/**
 * gradle replay -Pjenkinsfile=<path>: runs one Jenkinsfile with this library, prints the console log,
 * exits 0 when the build succeeded and 1 otherwise. Build numbers go on from run to run (--state).
 *
 * From the environment, for Jenkinsfiles that need more than this library:
 * REPLAY_CREDENTIALS=<file.json> gives withCredentials its credentials (format: CredentialsStore.load),
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
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case '--library': library = new File(args[++i]); break
                case '--workspace': workspace = new File(args[++i]); break
                case '--state': state = new File(args[++i]); break
                default: jenkinsfile = new File(args[i])
            }
        }
        if (jenkinsfile == null || !jenkinsfile.isFile()) {
            System.err.println("replay: no Jenkinsfile at ${jenkinsfile}; usage: gradle replay -Pjenkinsfile=<path>")
            System.exit(2)
        }
        File counter = state == null ? null : new File(state, 'nextBuildNumber')
        int number = counter?.isFile() ? counter.text.trim().toInteger() : 1
        if (counter != null) {
            counter.parentFile.mkdirs()
            counter.text = "${number + 1}\n"
        }
        PipelineRunner runner = new PipelineRunner(library, number)
        if (workspace != null) {
            runner.workspace = workspace.absoluteFile
        }
        runner.echo = System.out
        String credentials = System.getenv('REPLAY_CREDENTIALS')
        if (credentials) {
            runner.credentials.load(new File(credentials))
        }
        System.getenv('REPLAY_LIBRARIES')?.tokenize(',')?.each { String entry ->
            List<String> nameAndDirectory = entry.split('=', 2) as List<String>
            if (nameAndDirectory.size() != 2) {
                System.err.println("replay: REPLAY_LIBRARIES entry '${entry}' is not <name>=<directory>")
                System.exit(2)
            }
            runner.withLibrary(nameAndDirectory[0].trim(), new File(nameAndDirectory[1].trim()))
        }
        System.getenv('REPLAY_WITHOUT_PLUGINS')?.tokenize(',')?.each { String plugin ->
            if (!runner.plugins.remove(plugin.trim())) {
                System.err.println("replay: REPLAY_WITHOUT_PLUGINS names '${plugin.trim()}', not one of ${runner.plugins}")
                System.exit(2)
            }
            println("replay: running without the ${plugin.trim()} plugin")
        }
        BuildResult result = runner.run(jenkinsfile)
        System.out.flush()
        System.exit(result.success ? 0 : 1)
    }
}
