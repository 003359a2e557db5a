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
    /**
     * The directory every build runs in; null (the default): each build gets a fresh directory of
     * its own under java.io.tmpdir, removed when the build ends unless keepWorkspace is set.
     */
    File workspace
    /** Keep each build's fresh workspace (and its @tmp sibling) for inspection; the log says where. */
    boolean keepWorkspace
    /**
     * Where each finished build's record is kept, as Jenkins keeps jobs/<job>/builds/<n>: its console
     * log and its step records (`log`, `step-records.txt`), which outlive the build there; null: not
     * kept. `make test` keeps them under build/tmp, which its leak scan greps for minted secrets.
     */
    File buildsDirectory = System.getProperty(BUILDS_DIRECTORY_PROPERTY) ? new File(System.getProperty(BUILDS_DIRECTORY_PROPERTY)) : null
    static final String BUILDS_DIRECTORY_PROPERTY = 'withawsrole.replay.builds'
    /**
     * What `checkout scm` (and Declarative's implicit checkout) brings into the workspace, as a job
     * of type "Pipeline script from SCM" or Multibranch would; null: an inline-script job, which has
     * no `scm` (Declarative skips its checkout, `checkout scm` fails as in Jenkins).
     */
    ScmSource scm
    /** What an `input` step answers: ReplayInput.PROCEED (its parameters' defaults) or ReplayInput.ABORT. */
    String inputAnswer = ReplayInput.PROCEED
    /** Builds run on an emulated Windows agent: isUnix() is false, bat and powershell run (WindowsShell). */
    boolean windowsAgent
    /** Tool installations (`tool 'name'`, the `tools` directive): installation name -> home directory. */
    final Map<String, File> tools = new LinkedHashMap<String, File>()
    /** Stand-ins for steps the runner does not have (StepStandIns). */
    final StepStandIns standIns = new StepStandIns()
    /** The job's full name, folders included (team-a/app/main): JOB_NAME and the build's identity. */
    String jobName = 'replay'
    /** The branch of a multibranch job (env.BRANCH_NAME, `when { branch }`); null for a plain Pipeline job. */
    String branchName
    /** The values builds are started with ("Build with Parameters"): params and environment variables. */
    final Map<String, Object> parameters = new LinkedHashMap<String, Object>()
    /** The result of the last finished build (the previous build of the next one: changed, fixed, regression). */
    volatile String lastResult
    /** The build run() is running now, if any (abortRunningBuild). */
    volatile PipelineRun running
    /** The environment the "controller" and its `sh` steps inherit. */
    Map<String, String> baseEnvironment = new LinkedHashMap<String, String>(System.getenv())
    /**
     * The agent's own process environment, which every process a step starts (sh, bat, powershell)
     * begins from: Jenkins' launcher starts a process from the agent JVM's environment and applies
     * the build's computed environment on top (Launcher.inherit), so a variable that withEnv took
     * out of the computed environment (an empty value) comes back when the agent's process has it.
     * Null: the agent is the built-in node, i.e. this controller's own (baseEnvironment).
     */
    Map<String, String> agentEnvironment
    /**
     * Restarts the controller before the first step of a build for which this returns true (called
     * with the step's name and its arguments by name): see ProgramState.restart. Null: no restart.
     */
    Closure<Boolean> restartBefore
    /** Where each console line is also printed as it comes; null for none. */
    PrintStream echo
    /** What withCredentials finds. */
    final CredentialsStore credentials = new CredentialsStore()
    /**
     * Plugins whose steps or wrappers exist here beyond the basic steps: `mask-passwords` (the
     * MaskPasswordsBuildWrapper of `wrap`), `credentials-binding` (withCredentials). Tests remove
     * one to see how the library copes with a controller that lacks it.
     */
    final Set<String> plugins = Collections.synchronizedSet(['mask-passwords', 'credentials-binding'] as LinkedHashSet<String>)
    /**
     * Where builds get withAwsRole when not from libraryDirectory: a Git repository (URL or path),
     * checked out at the version a build's @Library names, as a Modern SCM library in Jenkins
     * (LocalLibrary.forBuild). Null: libraryDirectory, as it is.
     */
    String libraryRepository
    /** The version loaded when @Library names none (Jenkins' defaultVersion); null: a version must be named. */
    String libraryDefaultVersion
    /** Jenkins' allowVersionOverride: false refuses @Library('withAwsRole@<another version>'). */
    boolean allowVersionOverride = true
    /** Where builds' library checkouts go, a fresh directory each. */
    File libraryCheckouts = new File(System.getProperty('java.io.tmpdir'), 'withawsrole-replay-libs')
    /** Other shared libraries every build loads along with this one (name -> directory). */
    final Map<String, File> otherLibraries = new LinkedHashMap<String, File>()
    private final AtomicInteger nextBuildNumber

    PipelineRunner(File libraryDirectory, int firstBuildNumber = 1) {
        this.libraryDirectory = libraryDirectory.absoluteFile
        this.nextBuildNumber = new AtomicInteger(firstBuildNumber)
    }

    /** The library directory given by the test task (-Dwithawsrole.library.dir), else the working directory. */
    static PipelineRunner forThisProject() {
        return new PipelineRunner(new File(System.getProperty('withawsrole.library.dir', '.')))
    }

    /** The Stop button for the build run() is running on another thread (BuildAbort); false when none runs. */
    boolean abortRunningBuild() {
        PipelineRun build = running
        build?.abort?.abort()
        return build != null
    }

    BuildResult run(String jenkinsfile) {
        return new PipelineRun(this, nextBuildNumber.getAndIncrement()).execute(jenkinsfile)
    }

    BuildResult run(File jenkinsfile) {
        return run(jenkinsfile.getText('UTF-8'))
    }

    /** Every build also loads the library in this directory (as if configured to load implicitly). */
    PipelineRunner withLibrary(String name, File directory) {
        otherLibraries[name] = directory.absoluteFile
        return this
    }

    /** The libraries a build loads: this one first, then the others. */
    Map<String, File> libraries() {
        Map<String, File> all = new LinkedHashMap<String, File>()
        all[LocalLibrary.NAME] = libraryDirectory
        all.putAll(otherLibraries)
        return all
    }

    int peekNextBuildNumber() {
        return nextBuildNumber.get()
    }
}
