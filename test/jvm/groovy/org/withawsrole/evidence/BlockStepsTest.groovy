package org.withawsrole.evidence

import org.junit.AfterClass
import org.junit.Test
import org.withawsrole.WorldTestBase
import org.withawsrole.replay.BuildResult
import org.withawsrole.replay.PipelineRunner

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertSucceeded

/**
 * How many pipeline steps each kind of block records: every step is a flow node Jenkins writes to
 * the build's directory (and, while the block runs, into program.dat), so fewer is cheaper for the
 * controller. Counted from the runner's "[Pipeline] <step>" lines between two markers, the block's
 * own body (one echo) left out; the bridge is installed already, as for every block after the
 * first in a JVM (the first adds one libraryResource: LibraryClassLoaderTest). A plain block's three
 * steps are the least it can record: the Mask Passwords wrapper, the summary line, the environment.
 * Results: build/evidence/block-steps.md (copied into docs/benchmarks.md, "Steps per block").
 */
class BlockStepsTest extends WorldTestBase {
    static final Map<String, String> BLOCKS = [
            'plain'                      : "withAwsRole('ecr-push') { echo 'body' }",
            'plain, mask: false'         : "withAwsRole(role: 'ecr-push', mask: false) { echo 'body' }",
            'two roles'                  : "withAwsRole(roles: ['ecr-push', 'deploy']) { echo 'body' }",
            'refresh: true'              : "withAwsRole(role: 'ecr-push', refresh: true, timeout: '10m') { echo 'body' }",
            'refresh: true, two roles'   : "withAwsRole(roles: ['ecr-push', 'deploy'], refresh: true, timeout: '10m') { echo 'body' }",
            'ecrLogin with a block'      : "ecrLogin(registry: '123456789012.dkr.ecr.eu-west-1.amazonaws.com', role: 'ecr-push') " +
                    "{ echo 'body' }",
    ]

    static final Map<String, List<String>> RECORDED = [:]

    static List<String> stepsOf(String block) {
        PipelineRunner runner = PipelineRunner.forThisProject()
        File workspace = File.createTempDir()
        runner.workspace = workspace
        runner.jobName = 'block-steps'
        File fakeDocker = new File(runner.libraryDirectory, 'test/jvm/fixtures/bin')
        runner.baseEnvironment.PATH = "${fakeDocker.absolutePath}:${runner.baseEnvironment.PATH}".toString()
        runner.baseEnvironment.FAKE_DOCKER_RECORD = new File(workspace, 'docker-calls').absolutePath
        runner.baseEnvironment.HOME = workspace.absolutePath
        runner.baseEnvironment.remove('DOCKER_CONFIG')
        BuildResult build = runner.run("""
            node {
                withAwsRole('ecr-push') { echo 'warm' }
                echo 'MARK-START'
                ${block}
                echo 'MARK-END'
            }
        """)
        assertSucceeded(build)
        List<String> lines = build.log.substring(build.log.indexOf('MARK-START\n'), build.log.indexOf('MARK-END\n')).readLines()
        List<String> steps = []
        lines.eachWithIndex { String line, int i ->
            boolean bodyEcho = line == '[Pipeline] echo' && i + 1 < lines.size() && lines[i + 1] == 'body'
            if (line ==~ /\[Pipeline\] [A-Za-z]+/ && !bodyEcho) {
                steps << (line - '[Pipeline] ')
            }
        }
        // The closing marker's own echo step.
        steps.removeAt(steps.size() - 1)
        return steps
    }

    @Test
    void a_plain_block_records_three_steps() {
        assertEquals(['wrap', 'echo', 'withEnv'], record('plain'))
        assertEquals(['echo', 'withEnv'], record('plain, mask: false'))
    }

    @Test
    void every_kind_of_block_is_counted() {
        ['two roles', 'refresh: true', 'refresh: true, two roles', 'ecrLogin with a block'].each { String kind ->
            assertTrue(kind, record(kind).size() > 3)
        }
    }

    static List<String> record(String kind) {
        List<String> steps = stepsOf(BLOCKS[kind])
        RECORDED[kind] = steps
        return steps
    }

    @AfterClass
    static void report() {
        File dir = new File(System.getProperty('withawsrole.library.dir', '.'), 'build/evidence')
        dir.mkdirs()
        StringBuilder text = new StringBuilder('| block | steps | recorded (bridge installed already) |\n|---|---:|---|\n')
        BLOCKS.keySet().findAll { RECORDED.containsKey(it) }.each { String kind ->
            text << "| ${kind} | ${RECORDED[kind].size()} | ${RECORDED[kind].join(', ')} |\n"
        }
        new File(dir, 'block-steps.md').text = text.toString()
    }
}
