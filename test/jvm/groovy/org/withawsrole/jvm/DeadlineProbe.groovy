package org.withawsrole.jvm

import org.withawsrole.World
import org.withawsrole.bridge.AwsRoleBroker

import java.util.concurrent.CountDownLatch

/**
 * RuntimeTest's child JVM (it needs WITHAWSROLE_DEADLINE_SECONDS in its environment, which the
 * native library reads once). Vault's address is the controller's setting: the child's
 * environment (VAULT_ADDR), never the request. Each caller runs as build 1 of its own job
 * (World.asBuild), so its own session and cache entry. Prints one line per fact:
 *   threads-before-first-call <n>
 *   call <purpose> <elapsed ms> <outcome>        (outcome: ok or the exception's class and message)
 *   runtime-threads <n> <names>
 *
 *   DeadlineProbe <threads> <purpose> <job prefix> [role_arn]
 */
class DeadlineProbe {
    static void main(String[] args) {
        int threads = args[0] as int
        String purpose = args[1]
        String prefix = args[2]
        String roleArn = args.length > 3 ? args[3] : null
        println "threads-before-first-call ${ProcSelf.runtimeThreads()}"
        AwsRoleBroker broker = AwsRoleBroker.shared()
        CountDownLatch go = new CountDownLatch(1)
        List<String> lines = Collections.synchronizedList([])
        List<Thread> callers = (1..threads).collect { int n ->
            Thread.start("caller-${n}") {
                Map<String, String> request = [purpose: purpose]
                if (roleArn) {
                    request.role_arn = roleArn
                }
                go.await()
                long started = System.nanoTime()
                String outcome
                try {
                    World.asBuild("${prefix}-${n}".toString(), 1) { broker.credentials(request) }
                    outcome = 'ok'
                } catch (Throwable e) {
                    outcome = "${e.class.name} ${e.message}"
                }
                lines << "call ${purpose} ${(System.nanoTime() - started).intdiv(1_000_000)} ${outcome}".toString()
            }
        }
        go.countDown()
        callers*.join()
        lines.each { println it }
        List<String> names = ProcSelf.threadNames().findAll { it.startsWith(ProcSelf.RUNTIME_THREAD_PREFIX) }
        println "runtime-threads ${names.size()} ${names}"
        System.out.flush()
        System.exit(0)
    }
}
