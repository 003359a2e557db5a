package org.withawsrole.replay

import org.junit.Before
import org.junit.Rule
import org.junit.rules.TemporaryFolder

/**
 * What every test of the replay runner itself starts from (no world needed): a temporary folder of
 * its own, and `runner`, this project's library ready to run a Jenkinsfile in `workspace`, a folder
 * of that temporary one (so that `workspace@tmp` and `workspace@2` go with it). A subclass's own
 * `@Before` runs after this one and may change the runner (a job name, library checkouts, ...).
 */
abstract class ReplayTestBase {
    @Rule
    public TemporaryFolder temporary = new TemporaryFolder()

    File workspace
    PipelineRunner runner

    @Before
    void newRunner() {
        workspace = temporary.newFolder('workspace')
        runner = PipelineRunner.forThisProject()
        runner.workspace = workspace
    }
}
