package org.withawsrole.replay

/**
 * gradle replay -Pjenkinsfile=<path>: runs one Jenkinsfile with this library, prints the console log,
 * exits 0 when the build succeeded and 1 otherwise. Build numbers go on from run to run (--state).
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
        BuildResult result = runner.run(jenkinsfile)
        System.out.flush()
        System.exit(result.success ? 0 : 1)
    }
}
