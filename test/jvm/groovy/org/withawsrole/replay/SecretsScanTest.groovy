package org.withawsrole.replay

import org.junit.Before
import org.junit.Rule
import org.junit.Test
import org.junit.rules.TemporaryFolder

import static org.junit.Assert.*

/** The secrets grep that pipeline tests run after a build. No world needed. */
class SecretsScanTest {
    @Rule
    public TemporaryFolder folder = new TemporaryFolder()

    PipelineRunner runner
    File workspace

    @Before
    void runner() {
        workspace = folder.newFolder('ws')
        runner = PipelineRunner.forThisProject()
        runner.workspace = workspace
    }

    @Test
    void finds_secrets_in_the_log_and_in_workspace_and_tmp_files() {
        BuildResult build = runner.run('''
            echo 'printed: log-secret'
            writeFile file: 'sub/dir/creds', text: 'aws_secret_access_key=file-secret'
            writeFile file: "${pwd(tmp: true)}/script.sh", text: 'export TOKEN=tmp-secret'
        ''')
        assertTrue(build.log, build.success)
        SecretsScan scan = build.secretsFound(['log-secret', 'file-secret', 'tmp-secret', 'nowhere-secret'], workspace)
        assertEquals(['log-secret'], scan.log)
        assertEquals([(new File(workspace, 'sub/dir/creds').absolutePath): ['file-secret'],
                      (new File(folder.root, 'ws@tmp/script.sh').absolutePath): ['tmp-secret']], scan.files)
        assertEquals(['log-secret', 'file-secret', 'tmp-secret'] as Set, scan.all)
        assertFalse(scan.empty)
        assertFalse('the report names places, not values', scan.toString().contains('secret='))
        assertFalse(scan.toString().contains('file-secret'))
    }

    @Test
    void a_masked_build_leaves_nothing() {
        BuildResult build = runner.run('''
            wrap([$class: 'MaskPasswordsBuildWrapper', varPasswordPairs: [[var: 'S', password: 'masked-secret']]]) {
                echo 'masked-secret'
            }
        ''')
        SecretsScan scan = build.secretsFound(['masked-secret'], workspace)
        assertTrue(scan.toString(), scan.empty)
        assertEquals('no secret found', scan.toString())
    }
}
