package org.withawsrole.replay

import java.util.concurrent.atomic.AtomicInteger

/**
 * Runs Jenkinsfiles with this shared library loaded, as builds of one job in one JVM: each build
 * compiles the library afresh (like a Jenkins build or Replay), all share the JVM.
 *
 * Why a runner of our own and not JenkinsPipelineUnit: the versions on Maven Central (0.12, 1.0,
 * 1.1) have no libraryResource, run parallel branches one after another and keep one `env` map for
 * all branches (so withEnv in concurrent branches would clobber each other), mock sh instead of
 * running it and have no console log to mask; overriding all of that would have left only script
 * loading, the small part. Later versions need groovy-cps, which Maven Central does not carry.
 * Neither CPS-transforms without it; LibraryCodeRulesTest checks the CPS rules statically instead.
 */
class PipelineRunner {
    final File libraryDirectory
    File workspace
    String jobName = 'replay'
    /** The environment the "controller" and its `sh` steps inherit. */
    Map<String, String> baseEnvironment = new LinkedHashMap<String, String>(System.getenv())
    /** Where each console line is also printed as it comes; null for none. */
    PrintStream echo
    private final AtomicInteger nextBuildNumber

    PipelineRunner(File libraryDirectory, int firstBuildNumber = 1) {
        this.libraryDirectory = libraryDirectory.absoluteFile
        this.workspace = this.libraryDirectory
        this.nextBuildNumber = new AtomicInteger(firstBuildNumber)
    }

    /** The library directory given by the test task (-Dwithawsrole.library.dir), else the working directory. */
    static PipelineRunner forThisProject() {
        return new PipelineRunner(new File(System.getProperty('withawsrole.library.dir', '.')))
    }

    BuildResult run(String jenkinsfile) {
        return new PipelineRun(this, nextBuildNumber.getAndIncrement()).execute(jenkinsfile)
    }

    BuildResult run(File jenkinsfile) {
        return run(jenkinsfile.getText('UTF-8'))
    }

    int peekNextBuildNumber() {
        return nextBuildNumber.get()
    }
}
