package org.withawsrole

import groovy.json.JsonSlurper
import org.jenkinsci.plugins.workflow.cps.CpsThread
import org.junit.Assert

/**
 * The test world (test/world/up): real OpenBao, moto and the AWS-engine front. Tests that need it
 * call require() first and fail, never skip, when it is not there.
 */
class World {
    static final String HOW_TO_START = 'start the world: test/world/up && . test/world/.run/env'

    /**
     * The world's purposes config: ecr-push, deploy, and the two the library's own purposes.toml
     * refuses before Vault is asked, forbidden (Vault's policy denies it) and no-such-role (no
     * such Vault role). A controller's WITHAWSROLE_CONFIG, for tests that need Vault's own answer.
     */
    static final String PURPOSES_PATH = 'test/jvm/fixtures/world-purposes.toml'

    static void require() {
        for (String variable : ['VAULT_ADDR', 'WORLD_CONTROL_URL', 'AWS_ENDPOINT_URL']) {
            if (!System.getenv(variable)) {
                Assert.fail("${variable} is not set; ${HOW_TO_START}".toString())
            }
        }
    }

    static File purposesFile() {
        return new File(System.getProperty('withawsrole.library.dir', '.'), PURPOSES_PATH).absoluteFile
    }

    /**
     * Runs `call` on this thread as build `number` of job `job`, which is how the bridge tells
     * builds apart: it reads CpsThread.current() (the runner's stand-in here) and names the STS
     * session, part of the cache key, jenkins-<job>-<number>. Direct bridge calls outside it have
     * no build: jenkins-<purpose>.
     */
    static <T> T asBuild(String job, int number, Closure<T> call) {
        CpsThread.ReplayScope scope = CpsThread.enterForReplay(job, number)
        try {
            return call()
        } finally {
            scope.close()
        }
    }

    /** GET $WORLD_CONTROL_URL/counters: {"sts_calls": {"aws/ecr-push": n}, "sts_total": n, ...} */
    static Map counters() {
        return (Map) new JsonSlurper().parse(new URL("${System.getenv('WORLD_CONTROL_URL')}/counters"))
    }

    static int stsCalls(String mountAndRole) {
        return ((Map) counters().sts_calls)?.get(mountAndRole) as Integer ?: 0
    }

    /** GET $WORLD_CONTROL_URL/counters, proxied calls to one path after /v1/ (e.g. auth/approle/login). */
    static int proxiedCalls(String path) {
        return ((Map) counters().proxied)?.get(path) as Integer ?: 0
    }

    /** A JWT the world's OpenBao accepts at auth/jwt (role jenkins), as Jenkins' OIDC provider would sign it. */
    static String mintJwt(List<String> arguments = []) {
        File script = new File(System.getProperty('withawsrole.library.dir', '.'), 'test/world/mint_jwt.py')
        List<String> command = ["${System.getenv('WORLD_VENV')}/bin/python".toString(), script.absolutePath] + arguments
        Process process = new ProcessBuilder(command).start()
        String jwt = process.inputStream.getText('UTF-8').trim()
        if (process.waitFor() != 0) {
            throw new AssertionError("${command}: ${process.errorStream.getText('UTF-8')}".toString())
        }
        return jwt
    }

    /** Every request the world has answered so far: STS calls and calls proxied to Vault. */
    static long requestsSeen() {
        Map counters = counters()
        return (counters.sts_total as long) + (counters.proxied_total as long)
    }

    /** POST $WORLD_CONTROL_URL/faults (test/world/README.md): returns the fault's id for deleteFault. */
    static String addFault(Map fault) {
        HttpURLConnection connection = (HttpURLConnection) new URL("${System.getenv('WORLD_CONTROL_URL')}/faults").openConnection()
        connection.requestMethod = 'POST'
        connection.doOutput = true
        connection.setRequestProperty('Content-Type', 'application/json')
        connection.outputStream.withStream { it << groovy.json.JsonOutput.toJson(fault).getBytes('UTF-8') }
        if (connection.responseCode >= 300) {
            throw new AssertionError("POST ${connection.URL}: HTTP ${connection.responseCode}".toString())
        }
        return ((Map) new JsonSlurper().parse(connection.inputStream)).id.toString()
    }

    static void deleteFault(String id) {
        HttpURLConnection connection = (HttpURLConnection) new URL("${System.getenv('WORLD_CONTROL_URL')}/faults/${id}").openConnection()
        connection.requestMethod = 'DELETE'
        if (connection.responseCode >= 300) {
            throw new AssertionError("DELETE ${connection.URL}: HTTP ${connection.responseCode}".toString())
        }
    }

    static void resetCounters() {
        HttpURLConnection connection = (HttpURLConnection) new URL("${System.getenv('WORLD_CONTROL_URL')}/reset").openConnection()
        connection.requestMethod = 'POST'
        connection.doOutput = true
        connection.outputStream.close()
        int status = connection.responseCode
        if (status >= 300) {
            throw new AssertionError("POST ${connection.URL}: HTTP ${status}".toString())
        }
    }
}
