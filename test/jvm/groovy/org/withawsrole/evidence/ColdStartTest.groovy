package org.withawsrole.evidence

import org.junit.Test
import org.withawsrole.WorldTestBase
import org.withawsrole.jvm.ChildJvm

import static org.junit.Assert.*

/**
 * Evidence, not a timed assertion: the cold start of the first block in a fresh JVM, part by part
 * (ColdStartProbe), in three fresh child JVMs, each extracting into a directory of its own; then
 * one child that loads the .so the first one extracted, which gives System.load alone (extraction
 * = native_load of a cold run minus this). Results: build/evidence/cold-start.md (copied into
 * docs/benchmarks.md, "Cold start").
 */
class ColdStartTest extends WorldTestBase {
    static final int RUNS = 3

    static Map<String, String> probe(List<String> jvmArgs) {
        String library = new File(System.getProperty('withawsrole.library.dir', '.')).absolutePath
        ChildJvm child = ChildJvm.start(ColdStartProbe, [library], [:], jvmArgs)
        assertEquals(child.output, 0, child.waitFor(180))
        String line = child.output.readLines().find { it.startsWith('COLD ') }
        assertNotNull(child.output, line)
        return (line - 'COLD ').tokenize(' ').collectEntries { String pair -> pair.tokenize('=') as List }
    }

    @Test
    void the_first_block_in_a_fresh_jvm_part_by_part() {
        List<Map<String, String>> cold = (1..RUNS).collect {
            File dir = File.createTempDir()
            dir.deleteDir()
            probe(["-Dwithawsrole.native.dir=${dir}".toString()])
        }
        cold.each { Map<String, String> run ->
            assertEquals(run.toString(), 'miss', run.first)
            assertEquals(run.toString(), 'hit', run.second)
        }
        Map<String, String> loadOnly = probe(["-Dwithawsrole.native.library=${cold[0].loaded_from}".toString()])
        List<String> parts = ['compile', 'read_resource', 'install', 'native_load', 'first_vault_call', 'cache_hit', 'total']
        StringBuilder text = new StringBuilder("| part | ${(1..RUNS).collect { "run ${it} (ms)" }.join(' | ')} | " +
                'System.load only (ms) |\n')
        text << "|---|${'---:|' * (RUNS + 1)}\n"
        parts.each { String part ->
            text << "| ${part} | ${cold.collect { it[part] }.join(' | ')} | ${part == 'native_load' ? loadOnly[part] : ''} |\n"
        }
        File dir = new File(System.getProperty('withawsrole.library.dir', '.'), 'build/evidence')
        dir.mkdirs()
        new File(dir, 'cold-start.md').text = text.toString()
    }
}
