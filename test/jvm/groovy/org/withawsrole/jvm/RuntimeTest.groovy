package org.withawsrole.jvm

import groovy.json.JsonOutput
import groovy.json.JsonSlurper
import org.junit.Test
import org.withawsrole.WorldTestBase

import static org.junit.Assert.*

/**
 * The native runtime as a Jenkins controller sees it: no threads before the first call, a small
 * fixed number after, and a Jenkins thread blocked on a slow Vault for no longer than the deadline.
 */
class RuntimeTest extends WorldTestBase {
    static final String DEPLOY_READONLY = 'arn:aws:iam::123456789012:role/jenkins-deploy-readonly-role'

    @Test
    void callers_blocked_on_a_slow_vault_return_at_the_deadline() {
        // Only this role's STS path is slowed (8 s), so suites sharing the world are not disturbed.
        String fault = addFault([path: '^aws/sts/deploy$', mode: 'delay', delay_ms: 8000])
        ChildJvm child
        try {
            child = ChildJvm.start(DeadlineProbe, [8, 'deploy', 'deadline-test', DEPLOY_READONLY],
                    [WITHAWSROLE_DEADLINE_SECONDS: '2'])
            assertEquals(child.output, 0, child.waitFor(60))
        } finally {
            deleteFault(fault)
        }
        println "runtime: ${child.output}"
        List<String> calls = child.output.readLines().findAll { it.startsWith('call ') }
        assertEquals(child.output, 8, calls.size())
        calls.each { String line ->
            List<String> parts = line.split(' ', 4).toList()
            long elapsed = parts[2] as long
            assertTrue(line, parts[3].startsWith('org.withawsrole.bridge.VaultUnavailableException'))
            assertTrue("blocked for ${elapsed} ms with a 2 s deadline: ${line}", elapsed >= 1500 && elapsed < 3500)
            assertFalse(line, parts[3].contains(System.getenv('VAULT_TOKEN')))
        }
        assertTrue(child.output, child.output.contains('threads-before-first-call 0'))
        assertTrue(child.output, runtimeThreads(child.output) in 1..4)
    }

    @Test
    void a_vault_addressed_by_name_does_not_grow_the_runtime_beyond_a_few_threads() {
        // A host name (not an IP) makes the HTTP client resolve it on tokio's blocking pool.
        String byName = System.getenv('VAULT_ADDR').replace('127.0.0.1', 'localhost')
        ChildJvm child = ChildJvm.start(DeadlineProbe, [16, 'ecr-push', 'runtime-by-name'], [VAULT_ADDR: byName])
        assertEquals(child.output, 0, child.waitFor(60))
        println "runtime: ${child.output}"
        assertEquals(child.output, 16, child.output.readLines().count { it.startsWith('call ecr-push') && it.endsWith(' ok') })
        assertTrue(child.output, runtimeThreads(child.output) <= 2 + 8)
    }

    private static int runtimeThreads(String output) {
        return output.readLines().find { it.startsWith('runtime-threads ') }.split(' ')[1] as int
    }

    private static String addFault(Map fault) {
        HttpURLConnection connection = (HttpURLConnection) new URL("${System.getenv('WORLD_CONTROL_URL')}/faults").openConnection()
        connection.requestMethod = 'POST'
        connection.doOutput = true
        connection.setRequestProperty('Content-Type', 'application/json')
        connection.outputStream.withStream { it << JsonOutput.toJson(fault).getBytes('UTF-8') }
        assertTrue("POST faults: HTTP ${connection.responseCode}", connection.responseCode < 300)
        return ((Map) new JsonSlurper().parse(connection.inputStream)).id.toString()
    }

    private static void deleteFault(String id) {
        HttpURLConnection connection = (HttpURLConnection) new URL("${System.getenv('WORLD_CONTROL_URL')}/faults/${id}").openConnection()
        connection.requestMethod = 'DELETE'
        assertTrue("DELETE faults/${id}: HTTP ${connection.responseCode}", connection.responseCode < 300)
    }
}
