package org.withawsrole

import org.junit.Before
import org.junit.Rule
import org.junit.rules.TemporaryFolder
import org.junit.rules.TestName
import org.withawsrole.replay.PipelineRunner

import static org.junit.Assert.assertTrue

/**
 * What every test that runs Jenkinsfiles against the world starts from: WorldTestBase, and each
 * test has its own workspace and its own job (named after the test),
 * and `runner` is ready to run a Jenkinsfile with this library. A subclass's own `@Before` runs
 * after this one and may change the runner (another job name, a fixture on PATH, ...).
 */
abstract class PipelineTestBase extends WorldTestBase {
    @Rule
    public TemporaryFolder workspace = new TemporaryFolder()

    @Rule
    public TestName test = new TestName()

    PipelineRunner runner

    @Before
    void newRunner() {
        // Session names (jenkins-<job>-<build>) are part of the cache key: one job per test keeps
        // the tests of this JVM from sharing cached credentials.
        runner = runnerIn(workspace.root, test.methodName.replace('_', '-'))
    }

    /**
     * For a test whose Jenkinsfile shows the block's secrets on purpose (the control of a masking
     * test, an `echo` of a key): its build's log and step records are not kept for the leak scan.
     */
    void buildShowsSecretsOnPurpose() {
        runner.buildsDirectory = null
    }

    /** A runner of this library for `job`, in `directory`. */
    static PipelineRunner runnerIn(File directory, String job) {
        PipelineRunner runner = PipelineRunner.forThisProject()
        runner.workspace = directory
        runner.jobName = job
        return runner
    }

    /** The controller's own purposes config (WITHAWSROLE_CONFIG) for this test: `toml`. */
    void controllerPurposes(String toml) {
        controller.purposes(new File(workspace.root, 'controller-purposes.toml'), toml)
    }

    /**
     * `docker` on the runner's PATH is the recording fixture (test/jvm/fixtures/bin): it writes
     * each call to `record` instead of talking to a daemon.
     */
    static void withFakeDocker(PipelineRunner runner, File record) {
        File bin = new File(runner.libraryDirectory, 'test/jvm/fixtures/bin')
        runner.baseEnvironment.PATH = "${bin.absolutePath}:${runner.baseEnvironment.PATH}".toString()
        runner.baseEnvironment.FAKE_DOCKER_RECORD = record.absolutePath
    }

    /** A file the build wrote to its workspace (which it must have written). */
    String workspaceFile(String name) {
        File file = new File(runner.workspace, name)
        assertTrue("${name} written by the build", file.isFile())
        return file.getText('UTF-8')
    }
}
