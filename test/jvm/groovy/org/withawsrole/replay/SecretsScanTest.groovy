package org.withawsrole.replay

import org.junit.Test

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertEnded
import static org.withawsrole.BuildAssertions.assertLogLacks
import static org.withawsrole.BuildAssertions.assertSucceeded

/** The secrets grep that pipeline tests run after a build. No world needed. */
class SecretsScanTest extends ReplayTestBase {
    @Test
    void finds_secrets_in_the_log_and_in_workspace_and_tmp_files() {
        BuildResult build = runner.run('''
            echo 'printed: log-secret'
            writeFile file: 'sub/dir/creds', text: 'aws_secret_access_key=file-secret'
            writeFile file: "${pwd(tmp: true)}/script.sh", text: 'export TOKEN=tmp-secret'
        ''')
        assertSucceeded(build)
        SecretsScan scan = build.secretsFound(['log-secret', 'file-secret', 'tmp-secret', 'nowhere-secret'], workspace)
        assertEquals(['log-secret'], scan.log)
        assertEquals([(new File(workspace, 'sub/dir/creds').absolutePath): ['file-secret'],
                      (new File(temporary.root, 'workspace@tmp/script.sh').absolutePath): ['tmp-secret']], scan.files)
        assertEquals(['log-secret', 'file-secret', 'tmp-secret'] as Set, scan.all)
        assertFalse(scan.empty)
        assertFalse('the report names places, not values', scan.toString().contains('secret='))
        assertFalse(scan.toString().contains('file-secret'))
    }

    @Test
    void a_masked_build_leaves_nothing_in_the_log() {
        BuildResult build = runner.run('''
            echo 'nothing secret'
        ''')
        assertEquals('no secret found', build.secretsFound(['masked-secret'], workspace).toString())
        build = runner.run('''
            wrap([$class: 'MaskPasswordsBuildWrapper', varPasswordPairs: [[var: 'S', password: 'masked-secret']]]) {
                echo 'masked-secret'
            }
        ''')
        SecretsScan scan = build.secretsFound(['masked-secret'], workspace)
        assertEquals([], scan.log)
        // As MaskPasswordsWorkflowTest finds in Jenkins: the wrap step's arguments are in program.dat
        // while the block runs and in the flow node store for good.
        assertEquals(['masked-secret'], scan.savedState)
        assertEquals(['masked-secret'], scan.stepRecords)
        assertEquals('secrets found in step records: 1 secret(s); saved program state: 1 secret(s)', scan.toString())
    }

    @Test
    void step_records_keep_arguments_as_jenkins_stores_them() {
        runner.credentials.secretText('the-id', 'bound-secret')
        String long1025 = 'x' * 1025
        BuildResult build = runner.run("""
            withCredentials([string(credentialsId: 'the-id', variable: 'BOUND')]) {
                sh 'echo bound-secret > /dev/null'
                writeFile file: 'f', text: '${long1025}'
            }
            withEnv(['SHORT=short-secret']) { echo 'x' }
            withEnv(['LONG=${'y' * 1020}', 'SHORT_TOO=short-too']) { echo 'y' }
            withEnv(['A=${'y' * 600}', 'B=${'y' * 600}', 'LONG_SECRET=long-secret']) { echo 'z' }
        """)
        assertSucceeded(build)
        // A sensitive variable's value becomes its name; an oversized string or list is not kept.
        assertTrue(build.stepRecords.join('\n'), 'sh [script:echo \${BOUND} > /dev/null]' in build.stepRecords)
        assertTrue(build.stepRecords.join('\n'), 'writeFile [file:f, text:OVERSIZE_VALUE]' in build.stepRecords)
        assertTrue(build.stepRecords.join('\n'), 'withEnv [overrides:[OVERSIZE_VALUE, SHORT_TOO=short-too]]' in build.stepRecords)
        assertTrue(build.stepRecords.join('\n'), 'withEnv [overrides:OVERSIZE_VALUE]' in build.stepRecords)
        assertEquals(['short-secret', 'short-too'],
                build.secretsFound(['bound-secret', 'short-secret', 'short-too', 'long-secret']).stepRecords)
    }

    @Test
    void a_closure_passed_to_a_step_that_holds_what_cannot_be_saved_fails_the_build() {
        BuildResult build = runner.run('''
            def matcher = ('abc' =~ /b/)
            node {
                echo "found: ${matcher.find()}"
            }
        ''')
        assertEnded(build, 'FAILURE', 'java.io.NotSerializableException: java.util.regex.Matcher')
        assertLogLacks(build, 'found: ')
    }
}
