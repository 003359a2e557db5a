package org.withawsrole

import org.junit.Test
import org.withawsrole.replay.BuildResult
import org.withawsrole.replay.PipelineRunner

import static org.junit.Assert.*
import static org.withawsrole.BuildAssertions.assertLogLacks
import static org.withawsrole.BuildAssertions.assertLogShows

/**
 * Jenkins compiles src/ and vars/ in a new classloader for every build and Replay, while a native
 * library binds to one classloader per JVM. Several builds in one JVM must all get credentials
 * from the one bridge loader, the one native instance and its one cache.
 *
 * The cache key holds the STS session name, jenkins-<job>-<build>, so only the same job and build
 * number ask for the same key: each run here is build #1 of one job, compiled afresh.
 */
class LibraryClassLoaderTest extends WorldTestBase {
    static final String JENKINSFILE = '''
        @Library('withAwsRole') _
        withAwsRole(role: 'ecr-push') {
            sh 'set +x; aws sts get-caller-identity --query Arn --output text'
        }
    '''

    @Test
    void builds_in_fresh_classloaders_share_one_native_library_and_cache() {
        World.resetCounters()
        File workspace = File.createTempDir()
        List<BuildResult> builds = (1..3).collect {
            PipelineRunner runner = new PipelineRunner(new File(System.getProperty('withawsrole.library.dir', '.')), 1)
            runner.workspace = workspace
            runner.jobName = 'classloader-test'
            runner.run(JENKINSFILE)
        }

        builds.each { BuildResult build ->
            assertTrue("${build}\n${build.log}", build.success)
            assertLogShows(build, 'assumed-role/jenkins-ecr-push-role/jenkins-classloader-test-1,')
            assertLogLacks(build, 'UnsatisfiedLinkError')
        }
        List<Class> stepClasses = builds.collect { it.libraryClassLoader.loadClass('org.withawsrole.AwsRoleStep') }
        assertEquals('each build compiled the library itself', 3, stepClasses.toSet().size())
        assertTrue(builds[0].log, builds[0].log.contains('(cache miss)'))
        assertTrue(builds[1].log, builds[1].log.contains('(cache hit)'))
        assertTrue(builds[2].log, builds[2].log.contains('(cache hit)'))
        // The bridge's digest is on the library's classpath and the bridge packs the purposes
        // config: only the first build reads a resource, the jar it installs.
        assertEquals('the first build installs the bridge jar', 1, builds[0].log.count('[Pipeline] libraryResource'))
        assertEquals('later builds find it installed', 0, builds[1].log.count('[Pipeline] libraryResource'))

        List<Object> loaderKeys = System.properties.keySet().toList().findAll { it.toString().startsWith('org.withawsrole.bridge.loader.') }
        assertEquals('one bridge loader in the JVM', 1, loaderKeys.size())
        ClassLoader bridgeLoader = (ClassLoader) System.properties.get(loaderKeys[0])
        assertSame('the bridge loader sees nothing of any build', ClassLoader.platformClassLoader, bridgeLoader.parent)
        assertEquals('one STS call for the shared key', 1, World.stsCalls('aws/ecr-push'))
    }
}
